// device_wrap.h — the JS Device object: info(), createProgram(spec), runOp(call), supportsOp(call),
// close().
//
// close() (or garbage collection) drops this object's hold on the backend; the backend instance is
// destroyed once every Program created from it is gone too, since they still use its memory.
#ifndef UPDRAFT_NATIVE_DEVICE_WRAP_H
#define UPDRAFT_NATIVE_DEVICE_WRAP_H

#include <napi.h>

#include <memory>

#include "backend.h"

namespace updraft::js {

class DeviceWrap : public Napi::ObjectWrap<DeviceWrap> {
 public:
  static Napi::Function define_class(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<Backend> backend);

  explicit DeviceWrap(const Napi::CallbackInfo &info);

 private:
  Napi::Value info(const Napi::CallbackInfo &info);
  Napi::Value create_program(const Napi::CallbackInfo &info);
  Napi::Value run_op(const Napi::CallbackInfo &info);
  Napi::Value supports_op(const Napi::CallbackInfo &info);
  Napi::Value close(const Napi::CallbackInfo &info);
  Backend &open_backend() const;  // throws when closed

  std::shared_ptr<Backend> backend_;  // null once closed
};

}  // namespace updraft::js

#endif
