// ascend_backend.h — the `ascend` backend's factory (registered in native/src/registry.cc).
#ifndef UPDRAFT_ASCEND_BACKEND_H
#define UPDRAFT_ASCEND_BACKEND_H

#include "updraft/device_abi.h"

extern "C" ud_status ud_ascend_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error, size_t error_len);

#endif
