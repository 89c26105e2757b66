// cpu_backend.h — the factory of the CPU backend (always compiled in; see native/src/registry.cc).
#ifndef UPDRAFT_CPU_BACKEND_H
#define UPDRAFT_CPU_BACKEND_H

#include "updraft/device_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

ud_status ud_cpu_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error, size_t error_len);

#ifdef __cplusplus
}
#endif
#endif
