// device_group_wrap.h — the JS DeviceGroup object (tensor parallelism): one backend instance per
// rank, opened together by openDeviceGroup(name, { size, ... }); info(), createProgram(specs) with
// one ProgramSpec per rank (a ShardedProgram behind the usual JS Program), close().
#ifndef UPDRAFT_NATIVE_DEVICE_GROUP_WRAP_H
#define UPDRAFT_NATIVE_DEVICE_GROUP_WRAP_H

#include <napi.h>

#include <memory>
#include <vector>

#include "backend.h"

namespace updraft::js {

class DeviceGroupWrap : public Napi::ObjectWrap<DeviceGroupWrap> {
 public:
  static Napi::Function define_class(Napi::Env env);
  // Opens every rank's backend; throws Error naming the rank that fails.
  static Napi::Object open(Napi::Env env, const std::string &name, const Napi::Value &options);

  explicit DeviceGroupWrap(const Napi::CallbackInfo &info);

 private:
  Napi::Value info(const Napi::CallbackInfo &info);
  Napi::Value create_program(const Napi::CallbackInfo &info);
  Napi::Value close(const Napi::CallbackInfo &info);

  std::vector<std::shared_ptr<Backend>> ranks_;  // empty once closed
  bool host_communicator_ = false;
};

}  // namespace updraft::js

#endif
