// cuda_backend.h — the factory of the CUDA backend (compiled in when CMake finds nvcc, see
// native/CMakeLists.txt; registered in native/src/registry.cc behind UPDRAFT_WITH_CUDA).
#ifndef UPDRAFT_CUDA_BACKEND_H
#define UPDRAFT_CUDA_BACKEND_H

#include "updraft/device_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

// UD_ERR_UNAVAILABLE ("no CUDA device: ...") on machines without a driver or a GPU, or whose GPU this
// build has no kernels for.
ud_status ud_cuda_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error, size_t error_len);

// For the NCCL communicator (nccl_comm.cc), not part of the device ABI: the GPU and the stream of a
// cuda backend instance. UD_ERR_INVALID_ARGUMENT for a null instance.
ud_status ud_cuda_backend_stream(ud_backend *b, int *device, void **stream);

// The CUDA backend's collectives (device_abi.h ud_comm_factory), registered in native/src/registry.cc.
ud_status ud_nccl_comms_open(const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out, char *error,
                             size_t error_len);

#ifdef __cplusplus
}

#include <cstdio>
#include <string>

namespace updraft::cuda {
// The factories' failure message into the caller's buffer (which may be null or empty).
inline void set_error(char *error, size_t error_len, const std::string &message) {
  if (error && error_len) std::snprintf(error, error_len, "%s", message.c_str());
}
}  // namespace updraft::cuda
#endif
#endif
