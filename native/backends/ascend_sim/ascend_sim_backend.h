// ascend_sim_backend.h — the ascend-sim backend's factory (registered in native/src/registry.cc) and the
// shim device behind an open instance (for tools that read its per-kernel statistics).
#ifndef UPDRAFT_ASCEND_SIM_BACKEND_H
#define UPDRAFT_ASCEND_SIM_BACKEND_H

#include "updraft/device_abi.h"

namespace AscendC::shim {
class Device;
}

extern "C" ud_status ud_ascend_sim_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error, size_t error_len);

namespace updraft::ascend_sim {
// The shim device of an ascend-sim instance (its per-kernel peak UB/L1/L0 use: Device::stats()).
AscendC::shim::Device *sim_device(ud_backend *b);
}

#endif
