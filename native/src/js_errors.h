// js_errors.h — turning native failures into JS Errors, on the JS thread.
//
// node-addon-api only converts Napi::Error into a JS exception; any other C++ exception escaping a
// callback would terminate the process. Every callback therefore runs through `guarded`.
#ifndef UPDRAFT_NATIVE_JS_ERRORS_H
#define UPDRAFT_NATIVE_JS_ERRORS_H

#include <napi.h>

#include <exception>
#include <string>

#include "errors.h"

namespace updraft::js {

// A JS Error with `message` and, when known, `code` = "UD_ERR_..." naming the ud_status.
inline Napi::Error make_error(Napi::Env env, const std::string &message, ud_status status = UD_OK) {
  Napi::Error error = Napi::Error::New(env, message);
  static const char *const codes[] = {"UD_OK", "UD_ERR_INVALID_ARGUMENT", "UD_ERR_OUT_OF_MEMORY", "UD_ERR_UNSUPPORTED",
                                      "UD_ERR_DEVICE", "UD_ERR_UNAVAILABLE", "UD_ERR_IO"};
  if (status > UD_OK && status <= UD_ERR_IO) error.Set("code", Napi::String::New(env, codes[status]));
  return error;
}

inline Napi::Error make_error(Napi::Env env, const std::exception &e) {
  if (const auto *native = dynamic_cast<const Error *>(&e)) return make_error(env, native->what(), native->status());
  if (dynamic_cast<const std::bad_alloc *>(&e)) return make_error(env, "out of host memory", UD_ERR_OUT_OF_MEMORY);
  return make_error(env, e.what());
}

// Runs fn; rethrows any C++ exception as a JS exception.
template <typename Fn>
Napi::Value guarded(Napi::Env env, Fn &&fn) {
  try {
    return fn();
  } catch (const Napi::Error &) {
    throw;
  } catch (const std::exception &e) {
    throw make_error(env, e);
  }
}

}  // namespace updraft::js

#endif
