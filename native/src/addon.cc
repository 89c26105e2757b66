// addon.cc — the module's entry: listBackends(), openDevice(name, options) and
// openDeviceGroup(name, options), plus the Device, DeviceGroup and Program classes (device_wrap.cc,
// device_group_wrap.cc, program_wrap.cc). Typed for TS in src/device/binding.ts.
#include <napi.h>

#include "addon_data.h"
#include "backend.h"
#include "device_group_wrap.h"
#include "device_wrap.h"
#include "js_convert.h"
#include "js_errors.h"
#include "program_wrap.h"

namespace updraft::js {
namespace {

Napi::Value list_backends(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t count = 0;
  const ud_backend_entry *entries = ud_backends(&count);
  Napi::Array names = Napi::Array::New(env, static_cast<size_t>(count));
  for (int32_t i = 0; i < count; i++) names.Set(static_cast<uint32_t>(i), Napi::String::New(env, entries[i].name));
  return names;
}

Napi::Value open_device(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw Error("openDevice(name, options?): name must be a string");
    const ud_backend_options options = backend_options_from_js(info.Length() > 1 ? info[1] : env.Undefined());
    return DeviceWrap::create(env, Backend::open(info[0].As<Napi::String>().Utf8Value(), options));
  });
}

Napi::Value open_device_group(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsString()) throw Error("openDeviceGroup(name, options): name must be a string");
    return DeviceGroupWrap::open(env, info[0].As<Napi::String>().Utf8Value(), info[1]);
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->device_class = Napi::Persistent(DeviceWrap::define_class(env));
  data->program_class = Napi::Persistent(ProgramWrap::define_class(env));
  data->device_group_class = Napi::Persistent(DeviceGroupWrap::define_class(env));
  env.SetInstanceData<AddonData>(data);  // deleted by node-addon-api when the environment goes away
  exports.Set("listBackends", Napi::Function::New<list_backends>(env, "listBackends"));
  exports.Set("openDevice", Napi::Function::New<open_device>(env, "openDevice"));
  exports.Set("openDeviceGroup", Napi::Function::New<open_device_group>(env, "openDeviceGroup"));
  return exports;
}

}  // namespace
}  // namespace updraft::js

// NODE_API_MODULE pastes the function name into an identifier, so it needs an unqualified one.
static Napi::Object init_updraft(Napi::Env env, Napi::Object exports) { return updraft::js::init(env, exports); }
NODE_API_MODULE(updraft, init_updraft)
