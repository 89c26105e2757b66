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

#ifdef __cplusplus
}
#endif
#endif
