#include "device_group_wrap.h"

#include <mutex>

#include "addon_data.h"
#include "communicator.h"
#include "js_convert.h"
#include "js_errors.h"
#include "program_wrap.h"
#include "promise_worker.h"
#include "sharded_program.h"

namespace updraft::js {
namespace {

struct OpenedGroup {
  std::vector<std::shared_ptr<Backend>> ranks;
  bool host_communicator = false;
};

// Opens the communicators and builds every rank's program off the JS thread.
class CreateShardedProgramWorker : public PromiseWorker {
 public:
  CreateShardedProgramWorker(Napi::Env env, std::vector<std::shared_ptr<Backend>> ranks, bool host_communicator,
                             std::vector<ProgramSpec> specs, Napi::Promise::Deferred deferred)
      : PromiseWorker(env, "updraft.createShardedProgram", deferred),
        ranks_(std::move(ranks)),
        host_communicator_(host_communicator),
        specs_(std::move(specs)) {}

 private:
  void run() override {
    auto comms = Communicator::open_group(ranks_, host_communicator_);
    program_ = std::make_shared<ShardedProgram>(ranks_, std::move(specs_), std::move(comms));
    ranks_.clear();
  }
  Napi::Value result(Napi::Env env) override { return ProgramWrap::create(env, std::move(program_)); }

  std::vector<std::shared_ptr<Backend>> ranks_;
  bool host_communicator_;
  std::vector<ProgramSpec> specs_;
  std::shared_ptr<Executable> program_;
};

}  // namespace

Napi::Function DeviceGroupWrap::define_class(Napi::Env env) {
  return DefineClass(env, "DeviceGroup",
                     {InstanceMethod<&DeviceGroupWrap::info>("info"),
                      InstanceMethod<&DeviceGroupWrap::create_program>("createProgram"),
                      InstanceMethod<&DeviceGroupWrap::close>("close")});
}

Napi::Object DeviceGroupWrap::open(Napi::Env env, const std::string &name, const Napi::Value &options_value) {
  const DeviceGroupOptions options = device_group_options_from_js(options_value);
  auto group = std::make_unique<OpenedGroup>();
  group->host_communicator = options.host_communicator;
  for (int32_t r = 0; r < options.size; r++) {
    const ud_backend_options backend_options{options.device_indices[static_cast<size_t>(r)], options.num_threads};
    try {
      group->ranks.push_back(Backend::open(name, backend_options));
    } catch (const Error &e) {
      throw Error("tensor-parallel rank " + std::to_string(r) + " of " + std::to_string(options.size) + ": " + e.what(),
                  e.status());
    }
  }
  return addon_data(env).device_group_class.New({Napi::External<OpenedGroup>::New(env, group.release(), [](Napi::Env, OpenedGroup *g) { delete g; })});
}

DeviceGroupWrap::DeviceGroupWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<DeviceGroupWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "DeviceGroup cannot be constructed directly; use openDeviceGroup()");
  OpenedGroup *group = info[0].As<Napi::External<OpenedGroup>>().Data();
  ranks_ = std::move(group->ranks);
  host_communicator_ = group->host_communicator;
}

Napi::Value DeviceGroupWrap::info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (ranks_.empty()) throw Error("device group is closed");
    Napi::Array out = Napi::Array::New(env, ranks_.size());
    for (size_t r = 0; r < ranks_.size(); r++) {
      Backend &backend = *ranks_[r];
      ud_device_info device;
      {
        std::lock_guard<std::mutex> lock(backend.mutex());
        device = backend.info();
      }
      out.Set(static_cast<uint32_t>(r), device_info_to_js(env, backend.name(), device));
    }
    return out;
  });
}

Napi::Value DeviceGroupWrap::create_program(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  try {
    if (ranks_.empty()) throw Error("device group is closed");
    if (info.Length() < 1 || !info[0].IsArray()) throw Error("createProgram(specs): specs must be an array, one per rank");
    const Napi::Array array = info[0].As<Napi::Array>();
    if (array.Length() != ranks_.size())
      throw Error("createProgram(specs): " + std::to_string(array.Length()) + " specs for " + std::to_string(ranks_.size()) + " ranks");
    std::vector<ProgramSpec> specs;
    for (uint32_t r = 0; r < array.Length(); r++) specs.push_back(program_spec_from_js(array.Get(r)));
    (new CreateShardedProgramWorker(env, ranks_, host_communicator_, std::move(specs), deferred))->Queue();
  } catch (const std::exception &e) {
    deferred.Reject(make_error(env, e).Value());
  }
  return deferred.Promise();
}

Napi::Value DeviceGroupWrap::close(const Napi::CallbackInfo &info) {
  ranks_.clear();  // idempotent; programs keep their ranks' backends until they are disposed
  return info.Env().Undefined();
}

}  // namespace updraft::js
