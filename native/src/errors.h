// errors.h — the exception the executor and the addon's C++ layers use internally.
//
// Nothing throws across the C device ABI: backends and kernels return ud_status. The executor turns
// a failed status into an Error carrying the backend's message, and the addon turns every Error
// (and every other std::exception) into a JS Error or a rejected promise.
#ifndef UPDRAFT_NATIVE_ERRORS_H
#define UPDRAFT_NATIVE_ERRORS_H

#include <stdexcept>
#include <string>

#include "updraft/device_abi.h"

namespace updraft {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string &message, ud_status status = UD_ERR_INVALID_ARGUMENT)
      : std::runtime_error(message), status_(status) {}
  ud_status status() const { return status_; }

 private:
  ud_status status_;
};

inline const char *status_name(ud_status status) {
  switch (status) {
    case UD_OK: return "ok";
    case UD_ERR_INVALID_ARGUMENT: return "invalid argument";
    case UD_ERR_OUT_OF_MEMORY: return "out of memory";
    case UD_ERR_UNSUPPORTED: return "unsupported";
    case UD_ERR_DEVICE: return "device error";
    case UD_ERR_UNAVAILABLE: return "unavailable";
    case UD_ERR_IO: return "I/O error";
    default: return "unknown status";
  }
}

}  // namespace updraft

#endif
