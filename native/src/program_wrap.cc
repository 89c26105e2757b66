#include "program_wrap.h"

#include "addon_data.h"
#include "js_convert.h"
#include "js_errors.h"
#include "promise_worker.h"

namespace updraft::js {
namespace {

class StepWorker : public PromiseWorker {
 public:
  StepWorker(ProgramWrap *wrap, std::shared_ptr<Executable> program, StepRequest request, Napi::Promise::Deferred deferred)
      : PromiseWorker(wrap->Env(), "updraft.step", deferred),
        wrap_(wrap),
        keep_wrap_alive_(Napi::Persistent(wrap->Value())),
        program_(std::move(program)),
        request_(std::move(request)) {}

 private:
  void run() override { outputs_ = program_->step(request_); }
  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    for (const auto &[name, array] : outputs_) out.Set(name, host_array_to_js(env, array));
    return out;
  }
  void settled() override {
    program_.reset();  // a disposed program's memory goes now, not when this worker is deleted
    wrap_->step_settled();
  }

  ProgramWrap *wrap_;
  Napi::ObjectReference keep_wrap_alive_;  // no GC of the JS Program while its step is in flight
  std::shared_ptr<Executable> program_;
  StepRequest request_;
  StepOutputs outputs_;
};

}  // namespace

Napi::Function ProgramWrap::define_class(Napi::Env env) {
  return DefineClass(env, "Program",
                     {InstanceMethod<&ProgramWrap::step>("step"),
                      InstanceMethod<&ProgramWrap::memory_usage>("memoryUsage"),
                      InstanceMethod<&ProgramWrap::graph_stats>("graphStats"),
                      InstanceMethod<&ProgramWrap::dispose>("dispose")});
}

Napi::Object ProgramWrap::create(Napi::Env env, std::shared_ptr<Executable> program) {
  return addon_data(env).program_class.New({Napi::External<std::shared_ptr<Executable>>::New(env, &program)});
}

ProgramWrap::ProgramWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ProgramWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Program cannot be constructed directly; use device.createProgram()");
  program_ = *info[0].As<Napi::External<std::shared_ptr<Executable>>>().Data();
}

Napi::Value ProgramWrap::step(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  try {
    if (!program_) throw Error("program is disposed");
    pending_.push_back(PendingStep{step_request_from_js(info[0]), deferred});
    if (!step_running_) start_next_step(env);
  } catch (const std::exception &e) {
    deferred.Reject(make_error(env, e).Value());
  }
  return deferred.Promise();
}

void ProgramWrap::start_next_step(Napi::Env env) {
  if (pending_.empty()) return;
  PendingStep next = std::move(pending_.front());
  pending_.pop_front();
  if (!program_) {
    next.deferred.Reject(make_error(env, "program is disposed").Value());
    start_next_step(env);
    return;
  }
  step_running_ = true;
  (new StepWorker(this, program_, std::move(next.request), next.deferred))->Queue();
}

void ProgramWrap::step_settled() {
  step_running_ = false;
  try {
    start_next_step(Env());
  } catch (const std::exception &) {
    // start_next_step only creates rejections; nothing useful to do if even that fails.
  }
}

Napi::Value ProgramWrap::memory_usage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!program_) throw Error("program is disposed");
    const MemoryUsage usage = program_->memory_usage();
    Napi::Object out = Napi::Object::New(env);
    out.Set("weight", static_cast<double>(usage.weight));
    out.Set("state", static_cast<double>(usage.state));
    out.Set("activation", static_cast<double>(usage.activation));
    out.Set("input", static_cast<double>(usage.input));
    out.Set("output", static_cast<double>(usage.output));
    out.Set("total", static_cast<double>(usage.total()));
    return out;
  });
}

// Diagnostics for tests and benchmarks: how steps that asked for graphs were run (GraphStats).
Napi::Value ProgramWrap::graph_stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!program_) throw Error("program is disposed");
    const GraphStats stats = program_->graph_stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("enabled", Napi::Boolean::New(env, stats.enabled));
    out.Set("captured", static_cast<double>(stats.captured));
    out.Set("replayed", static_cast<double>(stats.replayed));
    out.Set("eager", static_cast<double>(stats.eager));
    out.Set("error", stats.error.empty() ? env.Null() : Napi::String::New(env, stats.error));
    return out;
  });
}

Napi::Value ProgramWrap::dispose(const Napi::CallbackInfo &info) {
  program_.reset();  // idempotent; an in-flight step keeps its own hold until it settles
  Napi::Env env = info.Env();
  while (!pending_.empty()) {
    pending_.front().deferred.Reject(make_error(env, "program is disposed").Value());
    pending_.pop_front();
  }
  return env.Undefined();
}

}  // namespace updraft::js
