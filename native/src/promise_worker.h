// promise_worker.h — an AsyncWorker that settles a promise: `run` on a libuv worker thread, then
// `result` (or a rejection with the failure's message and code) on the JS thread.
#ifndef UPDRAFT_NATIVE_PROMISE_WORKER_H
#define UPDRAFT_NATIVE_PROMISE_WORKER_H

#include <napi.h>

#include "js_errors.h"

namespace updraft::js {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char *name, Napi::Promise::Deferred deferred)
      : Napi::AsyncWorker(env, name), deferred_(deferred) {}

 protected:
  virtual void run() = 0;                              // worker thread; may throw
  virtual Napi::Value result(Napi::Env env) = 0;       // JS thread
  virtual void settled() {}                            // JS thread, after resolve or reject

 private:
  void Execute() final {
    try {
      run();
    } catch (const Error &e) {
      status_ = e.status();
      SetError(e.what());
    } catch (const std::bad_alloc &) {
      status_ = UD_ERR_OUT_OF_MEMORY;
      SetError("out of host memory");
    } catch (const std::exception &e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(result(env));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception &e) {
      deferred_.Reject(make_error(env, e).Value());
    }
    settled();
  }
  void OnError(const Napi::Error &e) final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Reject(make_error(env, e.Message(), status_).Value());
    settled();
  }

  Napi::Promise::Deferred deferred_;
  ud_status status_ = UD_OK;
};

}  // namespace updraft::js

#endif
