// communicator.h — an owning C++ handle on one rank's communicator (device_abi.h ud_comm_iface):
// failed statuses become updraft::Error with the communicator's last_error.
#ifndef UPDRAFT_NATIVE_COMMUNICATOR_H
#define UPDRAFT_NATIVE_COMMUNICATOR_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace updraft {

class Communicator {
 public:
  // One communicator per rank over `ranks` (instances of one backend, rank r = ranks[r]): the
  // backend's own collectives (cuda: NCCL), or the host communicator when `host_only` or when the
  // backend has none. Throws Error (UD_ERR_UNAVAILABLE: no NCCL, HCCL not implemented, ...).
  static std::vector<std::shared_ptr<Communicator>> open_group(const std::vector<std::shared_ptr<Backend>> &ranks,
                                                               bool host_only);
  ~Communicator();
  Communicator(const Communicator &) = delete;
  Communicator &operator=(const Communicator &) = delete;

  const char *name() const { return handle_.iface->name; }
  bool capturable() const { return handle_.iface->capturable != 0; }
  // In place over the group; `what` prefixes errors, e.g. "op 12 (all_reduce)". Call from the thread
  // that holds the rank's backend mutex.
  void all_reduce_sum(void *data, int64_t count, ud_dtype dtype, const std::string &what);
  // Releases every rank waiting in a collective of this group; the group is unusable afterwards.
  void abort();

 private:
  explicit Communicator(ud_comm_handle handle) : handle_(handle) {}
  ud_comm_handle handle_;
};

}  // namespace updraft

#endif
