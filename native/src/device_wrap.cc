#include "device_wrap.h"

#include <mutex>

#include "addon_data.h"
#include "host_array.h"
#include "js_convert.h"
#include "js_errors.h"
#include "program_wrap.h"
#include "promise_worker.h"
#include "run_op.h"

namespace updraft::js {
namespace {

// Builds a Program (allocation and weight loading) off the JS thread.
class CreateProgramWorker : public PromiseWorker {
 public:
  CreateProgramWorker(Napi::Env env, std::shared_ptr<Backend> backend, ProgramSpec spec, Napi::Promise::Deferred deferred)
      : PromiseWorker(env, "updraft.createProgram", deferred), backend_(std::move(backend)), spec_(std::move(spec)) {}

 private:
  void run() override {
    program_ = std::make_shared<Program>(backend_, std::move(spec_));
    backend_.reset();
  }
  Napi::Value result(Napi::Env env) override { return ProgramWrap::create(env, std::move(program_)); }

  std::shared_ptr<Backend> backend_;
  ProgramSpec spec_;
  std::shared_ptr<Executable> program_;
};

}  // namespace

Napi::Function DeviceWrap::define_class(Napi::Env env) {
  return DefineClass(env, "Device",
                     {InstanceMethod<&DeviceWrap::info>("info"),
                      InstanceMethod<&DeviceWrap::create_program>("createProgram"),
                      InstanceMethod<&DeviceWrap::run_op>("runOp"),
                      InstanceMethod<&DeviceWrap::supports_op>("supportsOp"),
                      InstanceMethod<&DeviceWrap::close>("close")});
}

Napi::Object DeviceWrap::create(Napi::Env env, std::shared_ptr<Backend> backend) {
  return addon_data(env).device_class.New({Napi::External<std::shared_ptr<Backend>>::New(env, &backend)});
}

DeviceWrap::DeviceWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<DeviceWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Device cannot be constructed directly; use openDevice()");
  backend_ = *info[0].As<Napi::External<std::shared_ptr<Backend>>>().Data();
}

Backend &DeviceWrap::open_backend() const {
  if (!backend_) throw Error("device is closed");
  return *backend_;
}

Napi::Value DeviceWrap::info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend &backend = open_backend();
    ud_device_info device;
    {
      std::lock_guard<std::mutex> lock(backend.mutex());
      device = backend.info();
    }
    return device_info_to_js(env, backend.name(), device);
  });
}

Napi::Value DeviceWrap::create_program(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  try {
    open_backend();
    (new CreateProgramWorker(env, backend_, program_spec_from_js(info[0]), deferred))->Queue();
  } catch (const std::exception &e) {
    deferred.Reject(make_error(env, e).Value());
  }
  return deferred.Promise();
}

Napi::Value DeviceWrap::run_op(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend &backend = open_backend();
    const std::vector<std::optional<HostArray>> results = updraft::run_op(backend, op_call_from_js(info[0]));
    Napi::Array out = Napi::Array::New(env, results.size());
    for (size_t i = 0; i < results.size(); i++)
      out.Set(static_cast<uint32_t>(i), results[i] ? host_array_to_js(env, *results[i]) : env.Null());
    return out;
  });
}

Napi::Value DeviceWrap::supports_op(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    return Napi::Boolean::New(env, op_supported(open_backend(), op_call_from_js(info[0])));
  });
}

Napi::Value DeviceWrap::close(const Napi::CallbackInfo &info) {
  backend_.reset();  // idempotent
  return info.Env().Undefined();
}

}  // namespace updraft::js
