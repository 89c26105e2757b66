// host_comm.cc — the host communicator (device_abi.h: ud_host_comms_open): all-reduce through host
// memory, for several ranks of one process, over any backend's copy entries.
//
// Each all_reduce_sum: every rank downloads its buffer (and synchronises its stream, so the sum sees
// everything launched before it) and widens it to f32 in its slot of the group; barrier; rank r sums
// the r-th chunk of the elements over slots 0, 1, ..., world-1 in that order, in f32, into slot 0;
// barrier; every rank rounds the whole sum to its dtype; barrier (slot 0 is free for the next call);
// upload and synchronise. The fixed order makes the result deterministic and identical on every
// rank, whatever the threads' timing. Three barriers per call: meant for the CPU backend and tests,
// not for speed on GPUs (that is NCCL's job, native/backends/cuda/nccl_comm.cc).
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../../../kernels/cpu/dtype_convert.h"
#include "updraft/device_abi.h"

namespace updraft {
namespace {

// What the ranks of one group share.
class HostCommGroup {
 public:
  explicit HostCommGroup(int32_t world) : world_(world), slots_(static_cast<size_t>(world)) {}

  int32_t world() const { return world_; }
  std::vector<float> &slot(int32_t rank) { return slots_[static_cast<size_t>(rank)]; }  // [count] f32

  // Waits until every rank has arrived. False when the group was aborted (before or while waiting).
  bool barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (aborted_) return false;
    const uint64_t generation = generation_;
    if (++waiting_ == world_) {
      waiting_ = 0;
      generation_++;
      changed_.notify_all();
      return true;
    }
    changed_.wait(lock, [&] { return aborted_ || generation_ != generation; });
    return generation_ != generation;
  }

  void abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    changed_.notify_all();
  }

 private:
  const int32_t world_;
  std::vector<std::vector<float>> slots_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int32_t waiting_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
};

struct HostComm {
  std::shared_ptr<HostCommGroup> group;
  int32_t rank = 0;
  ud_backend_handle backend{};
  std::vector<uint8_t> staging;  // this rank's buffer in its dtype, on the host
  std::string error;
};

HostComm *self(ud_comm *c) { return reinterpret_cast<HostComm *>(c); }

ud_status fail(HostComm *comm, ud_status status, const std::string &message) {
  comm->error = "host all_reduce (rank " + std::to_string(comm->rank) + "): " + message;
  return status;
}

// A failed copy: the backend's reason, and the group aborted so no rank waits for this one.
ud_status copy_failed(HostComm *comm, ud_status status, const char *what) {
  const char *detail = comm->backend.iface->last_error ? comm->backend.iface->last_error(comm->backend.ctx) : nullptr;
  comm->group->abort();
  return fail(comm, status, std::string(what) + ": " + (detail && detail[0] ? detail : "failed"));
}

ud_status aborted(HostComm *comm) { return fail(comm, UD_ERR_DEVICE, "the group was aborted (another rank failed)"); }

ud_status all_reduce_sum(ud_comm *c, void *data, int64_t count, int32_t dtype) {
  HostComm *comm = self(c);
  if (dtype != UD_F32 && dtype != UD_BF16 && dtype != UD_F16) {
    comm->group->abort();
    return fail(comm, UD_ERR_UNSUPPORTED, "dtype " + std::to_string(dtype) + " is not f32, bf16 or f16");
  }
  if (count < 0) {
    comm->group->abort();
    return fail(comm, UD_ERR_INVALID_ARGUMENT, "negative count");
  }
  const ud_backend_iface &f = *comm->backend.iface;
  const size_t bytes = static_cast<size_t>(count) * ud_dtype_size(static_cast<ud_dtype>(dtype));
  HostCommGroup &group = *comm->group;
  std::vector<float> &mine = group.slot(comm->rank);
  try {
    comm->staging.resize(bytes);
    mine.resize(static_cast<size_t>(count));
  } catch (const std::bad_alloc &) {
    group.abort();
    return fail(comm, UD_ERR_OUT_OF_MEMORY, "out of host memory for " + std::to_string(bytes) + " bytes");
  }
  ud_status status = bytes ? f.download(comm->backend.ctx, comm->staging.data(), data, bytes) : UD_OK;
  if (status == UD_OK) status = f.synchronize(comm->backend.ctx);
  if (status != UD_OK) return copy_failed(comm, status, "download");
  cpu::load_row_f32(comm->staging.data(), dtype, 0, count, mine.data());

  if (!group.barrier()) return aborted(comm);
  const int32_t world = group.world();
  for (int32_t r = 0; r < world; r++) {
    if (static_cast<int64_t>(group.slot(r).size()) != count) {
      // Every rank sees the same mismatch and fails the same way; no one is left waiting.
      return fail(comm, UD_ERR_INVALID_ARGUMENT, "rank " + std::to_string(r) + " reduces " +
                                                     std::to_string(group.slot(r).size()) + " elements, this rank " +
                                                     std::to_string(count));
    }
  }
  const int64_t begin = count * comm->rank / world, end = count * (comm->rank + 1) / world;
  float *sum = group.slot(0).data();
  for (int64_t i = begin; i < end; i++) {
    float s = sum[i];
    for (int32_t r = 1; r < world; r++) s += group.slot(r)[static_cast<size_t>(i)];
    sum[i] = s;
  }
  if (!group.barrier()) return aborted(comm);
  cpu::store_row_f32(comm->staging.data(), dtype, 0, count, sum);
  if (!group.barrier()) return aborted(comm);  // slot 0 may be overwritten from here on

  status = bytes ? f.upload(comm->backend.ctx, data, comm->staging.data(), bytes) : UD_OK;
  if (status == UD_OK) status = f.synchronize(comm->backend.ctx);  // the staging is reused next call
  if (status != UD_OK) return copy_failed(comm, status, "upload");
  return UD_OK;
}

void abort_group(ud_comm *c) { self(c)->group->abort(); }
const char *last_error(ud_comm *c) { return self(c)->error.c_str(); }
void destroy(ud_comm *c) { delete self(c); }

const ud_comm_iface kHostCommIface = {
    "host",
    0,  // synchronises the stream: cannot be recorded in a graph
    all_reduce_sum,
    abort_group,
    last_error,
    destroy,
};

}  // namespace
}  // namespace updraft

extern "C" ud_status ud_host_comms_open(const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out, char *error,
                                        size_t error_len) {
  using namespace updraft;
  if (world < 1 || !ranks || !out) {
    if (error && error_len) std::snprintf(error, error_len, "host communicator: a group needs at least one rank");
    return UD_ERR_INVALID_ARGUMENT;
  }
  try {
    auto group = std::make_shared<HostCommGroup>(world);
    std::vector<std::unique_ptr<HostComm>> comms;
    for (int32_t r = 0; r < world; r++) {
      auto comm = std::make_unique<HostComm>();
      comm->group = group;
      comm->rank = r;
      comm->backend = ranks[r];
      comms.push_back(std::move(comm));
    }
    for (int32_t r = 0; r < world; r++) {
      out[r].iface = &kHostCommIface;
      out[r].ctx = reinterpret_cast<ud_comm *>(comms[static_cast<size_t>(r)].release());
    }
    return UD_OK;
  } catch (const std::bad_alloc &) {
    if (error && error_len) std::snprintf(error, error_len, "host communicator: out of host memory");
    return UD_ERR_OUT_OF_MEMORY;
  }
}
