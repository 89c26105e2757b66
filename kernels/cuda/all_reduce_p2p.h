// all_reduce_p2p.h — a one-shot all-reduce over peer memory for small messages (tensor parallelism's
// decode-step all-reduces), used by the CUDA communicator (native/backends/cuda/nccl_comm.cc) in place
// of NCCL where every pair of the group's GPUs can reach each other's memory.
//
// Why: a decode step of an 8B model at TP=2 makes 64 all-reduces of 8 KB (batch 1) to 512 KB; NCCL's
// small-message latency (~15–20 µs a call) costs about a millisecond a step. One kernel per call, each
// rank: copy its data into its own staging buffer, tell every peer (a flag written into the peer's
// memory), wait for the peers' flags, then read every rank's staging buffer over NVLink and sum — in
// f32, in rank order 0, 1, ..., world-1, rounded once: the host communicator's result, bit for bit.
// vLLM's custom all-reduce is the same idea; this is our own.
//
// Synchronisation, per block (every call launches the same kP2pBlocks blocks; block b owns chunk b):
// block b of each rank keeps a call counter epoch[b] in its own memory; call number e (= epoch[b] + 1)
// uses staging half e % 2 and writes e into flags[peer][b][rank] of every peer; it proceeds when its
// own flags[b][q] reach e for every peer q. Two halves are enough: a rank writes half e % 2 again only
// in call e + 2, after passing call e + 1's wait, which every peer's block b signals only after its
// whole call-e kernel (which read that half) has finished. Counters live in device memory, so the
// kernel is the same launch every call and can be recorded into a CUDA graph.
//
// A wait that never ends (a peer's step failed and will not arrive) would hang the GPU: the wait also
// watches an abort word in host-mapped memory (set by the communicator's abort) and gives up after
// kP2pTimeoutNs; either way it writes a failure word the communicator reports on its next call.
#ifndef UPDRAFT_CUDA_ALL_REDUCE_P2P_H
#define UPDRAFT_CUDA_ALL_REDUCE_P2P_H

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../../native/include/updraft/device_abi.h"

namespace updraft::cuda {

constexpr int kP2pMaxRanks = 8;
constexpr int kP2pBlocks = 16;
constexpr int64_t kP2pMaxBytes = 512 * 1024;  // larger messages go to NCCL (bandwidth, not latency)
constexpr uint64_t kP2pTimeoutNs = 10ull * 1000 * 1000 * 1000;

// One rank's view of the group's buffers (device pointers; peers' are reachable by peer access).
struct P2pAllReduceView {
  int32_t world = 0;
  int32_t rank = 0;
  void *staging[kP2pMaxRanks] = {};     // rank q's staging buffer: [2][kP2pMaxBytes]
  uint32_t *flags[kP2pMaxRanks] = {};   // rank q's flags: [kP2pBlocks][kP2pMaxRanks], written by the peers
  uint32_t *epoch = nullptr;            // this rank's call counters: [kP2pBlocks]
  volatile int32_t *abort = nullptr;    // host-mapped: nonzero = give up waiting
  int32_t *failed = nullptr;            // host-mapped: set by a wait that gave up (1 abort, 2 timeout)
};

// Whether a message takes the peer path: a float dtype, at most kP2pMaxBytes, whole 16-byte vectors.
bool p2p_all_reduce_takes(const void *data, int64_t count, int32_t dtype);

// Enqueues the all-reduce of `data` (count elements of dtype, this rank's device) on `stream`.
// UD_OK or a launch error with its message in *error.
ud_status launch_all_reduce_p2p(const P2pAllReduceView &view, void *data, int64_t count, int32_t dtype,
                                cudaStream_t stream, std::string *error);

}  // namespace updraft::cuda

#endif
