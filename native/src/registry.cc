// registry.cc — the table of compiled-in backends (device_abi.h: ud_backends, ud_backend_open).
//
// A backend joins by adding its factory (and, optionally, its collectives) here behind its CMake
// option; nothing else in the native layer names a backend.
#include <cstdio>
#include <cstring>

#include "../backends/cpu/cpu_backend.h"
#include "updraft/device_abi.h"

#ifdef UPDRAFT_WITH_CUDA
extern "C" ud_status ud_cuda_backend_open(const ud_backend_options *, ud_backend_handle *, char *, size_t);
extern "C" ud_status ud_nccl_comms_open(const ud_backend_handle *, int32_t, ud_comm_handle *, char *, size_t);
#endif
#ifdef UPDRAFT_WITH_ASCEND
extern "C" ud_status ud_ascend_backend_open(const ud_backend_options *, ud_backend_handle *, char *, size_t);
extern "C" ud_status ud_hccl_comms_open(const ud_backend_handle *, int32_t, ud_comm_handle *, char *, size_t);
#endif
#ifdef UPDRAFT_WITH_ASCEND_SIM
extern "C" ud_status ud_ascend_sim_backend_open(const ud_backend_options *, ud_backend_handle *, char *, size_t);
#endif

namespace {

const ud_backend_entry kBackends[] = {
    {"cpu", ud_cpu_backend_open, nullptr},  // the host communicator: device memory is host memory
#ifdef UPDRAFT_WITH_CUDA
    {"cuda", ud_cuda_backend_open, ud_nccl_comms_open},
#endif
#ifdef UPDRAFT_WITH_ASCEND
    {"ascend", ud_ascend_backend_open, ud_hccl_comms_open},
#endif
#ifdef UPDRAFT_WITH_ASCEND_SIM
    {"ascend-sim", ud_ascend_sim_backend_open, nullptr},  // a simulator on host memory: the host communicator
#endif
};

}  // namespace

extern "C" const ud_backend_entry *ud_backends(int32_t *count) {
  *count = static_cast<int32_t>(sizeof kBackends / sizeof kBackends[0]);
  return kBackends;
}

extern "C" ud_status ud_backend_open(const char *name, const ud_backend_options *opts, ud_backend_handle *out,
                                     char *error, size_t error_len) {
  int32_t count = 0;
  const ud_backend_entry *entries = ud_backends(&count);
  for (int32_t i = 0; i < count; i++) {
    if (std::strcmp(entries[i].name, name) == 0) return entries[i].open(opts, out, error, error_len);
  }
  if (error && error_len) {
    std::snprintf(error, error_len, "backend '%s' is not compiled into this build", name);
  }
  return UD_ERR_UNAVAILABLE;
}

extern "C" ud_status ud_comms_open(const char *name, const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out,
                                   char *error, size_t error_len) {
  int32_t count = 0;
  const ud_backend_entry *entries = ud_backends(&count);
  for (int32_t i = 0; i < count; i++) {
    if (std::strcmp(entries[i].name, name) != 0) continue;
    const ud_comm_factory open = entries[i].open_comms ? entries[i].open_comms : ud_host_comms_open;
    return open(ranks, world, out, error, error_len);
  }
  if (error && error_len) std::snprintf(error, error_len, "backend '%s' is not compiled into this build", name);
  return UD_ERR_UNAVAILABLE;
}
