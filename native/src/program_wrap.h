// program_wrap.h — the JS Program object: step() (one async native call per model step),
// memoryUsage(), dispose().
//
// Steps run on libuv worker threads, in the order they were requested: a step starts only when the
// previous one of this program has settled (the KV cache makes order matter). dispose() and garbage
// collection drop this object's hold on the executor; device memory is freed as soon as no
// in-flight step holds it either.
#ifndef UPDRAFT_NATIVE_PROGRAM_WRAP_H
#define UPDRAFT_NATIVE_PROGRAM_WRAP_H

#include <napi.h>

#include <deque>
#include <memory>

#include "program.h"

namespace updraft::js {

class ProgramWrap : public Napi::ObjectWrap<ProgramWrap> {
 public:
  static Napi::Function define_class(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<Executable> program);

  explicit ProgramWrap(const Napi::CallbackInfo &info);

  // Called by the step worker on the JS thread once its promise has settled.
  void step_settled();

 private:
  struct PendingStep {
    StepRequest request;
    Napi::Promise::Deferred deferred;
  };

  Napi::Value step(const Napi::CallbackInfo &info);
  Napi::Value memory_usage(const Napi::CallbackInfo &info);
  Napi::Value graph_stats(const Napi::CallbackInfo &info);
  Napi::Value dispose(const Napi::CallbackInfo &info);
  void start_next_step(Napi::Env env);

  std::shared_ptr<Executable> program_;  // null once disposed (a Program, or a ShardedProgram of several ranks)
  std::deque<PendingStep> pending_;
  bool step_running_ = false;
};

}  // namespace updraft::js

#endif
