// hccl_comm.cc — the ascend backend's communicator: the seam where HCCL (Huawei's counterpart of
// NCCL) will go. Not implemented yet: opening a group fails with UD_ERR_UNAVAILABLE and says so,
// rather than silently falling back to the host communicator, which would be correct but far too
// slow to serve with. Registered for "ascend" in native/src/registry.cc.
#include <cstdio>

#include "updraft/device_abi.h"

extern "C" ud_status ud_hccl_comms_open(const ud_backend_handle *, int32_t world, ud_comm_handle *, char *error,
                                        size_t error_len) {
  if (error && error_len) {
    std::snprintf(error, error_len,
                  "hccl: tensor parallelism on the ascend backend needs HCCL collectives, which are not implemented "
                  "yet (asked for a group of %d ranks)",
                  static_cast<int>(world));
  }
  return UD_ERR_UNAVAILABLE;
}
