// js_convert.h — JS values to the native structs and back (the only file that reads JS objects).
//
// Every conversion happens on the JS thread, once per call; the results own their data, so worker
// threads never touch JS memory. Malformed input throws updraft::Error with the path of the bad
// field ("spec.tensors[3].shape[1]: ...").
#ifndef UPDRAFT_NATIVE_JS_CONVERT_H
#define UPDRAFT_NATIVE_JS_CONVERT_H

#include <napi.h>

#include <string>
#include <vector>

#include "host_array.h"
#include "program_spec.h"
#include "run_op.h"

namespace updraft::js {

HostArray host_array_from_js(const Napi::Value &value, const std::string &what);
Napi::Value host_array_to_js(Napi::Env env, const HostArray &array);

ProgramSpec program_spec_from_js(const Napi::Value &value);
StepRequest step_request_from_js(const Napi::Value &value);
OpCall op_call_from_js(const Napi::Value &value);
ud_backend_options backend_options_from_js(const Napi::Value &value);

// openDeviceGroup's options (src/device/binding.ts NativeDeviceGroupOptions).
struct DeviceGroupOptions {
  int32_t size = 1;
  int32_t num_threads = 0;
  std::vector<int32_t> device_indices;  // rank r's device; default r
  bool host_communicator = false;       // the host communicator even where the backend has its own
};
DeviceGroupOptions device_group_options_from_js(const Napi::Value &value);

// A device's info() object (src/device/binding.ts NativeDeviceInfo).
Napi::Object device_info_to_js(Napi::Env env, const char *backend, const ud_device_info &device);

}  // namespace updraft::js

#endif
