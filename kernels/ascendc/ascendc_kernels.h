// ascendc_kernels.h — the AscendC kernels' host side: one launch function per op (one op per file,
// kernels/ascendc/<op>.cpp, kernel and launch function together), the launch context the backends fill
// in, and the dispatch table.
//
// Same contract as kernels/cpu/cpu_kernels.h and kernels/cuda/cuda_kernels.h: every launch function
// validates its operands and returns a ud_status, leaving a message in ctx.error; it never exits or
// throws. Launch functions only enqueue work: no host reads of device memory, no allocation (scratch
// comes from ctx.workspace), so a decode step can be captured into an ACL graph. Operand values only the
// device can read (ids, slots, block tables) are checked by the kernels, reported through per-block
// error slots (tiling.h) and turned into messages by format_device_error.
//
// Two builds of the same sources: `ascend` (bisheng, a real NPU; kernels launched with <<<>>> on
// ctx.stream) and `ascend-sim` (g++ against kernels/ascendc/shim; UPDRAFT_ASCEND_SIM defined, kernels run
// on the host through ctx.sim_run, which checks the chip's rules).
#ifndef UPDRAFT_ASCENDC_KERNELS_H
#define UPDRAFT_ASCENDC_KERNELS_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "../../native/include/updraft/device_abi.h"
#include "tiling.h"

namespace updraft::ascendc {

struct LaunchContext {
  void *stream = nullptr;   // aclrtStream on a chip; unused by the sim
  uint32_t aiv_cores = 48;  // vector cores (blockDim limit of vector kernels)
  uint32_t aic_cores = 24;  // cube cores (blockDim limit of cube kernels)
  // Device memory: kMaxBlocks error slots of kErrorSlotInts int32 each, zero when no error is pending.
  void *error_slots = nullptr;
  // This launch's index among the backend's launches since its last synchronize (or graph capture
  // begin); kernels record it with an operand error so the host can name the failing op.
  int32_t launch_index = 0;
  // Device scratch, stable across calls (graph capture replays it). Launch functions needing more than
  // workspace_bytes call reserve_workspace first (never while a graph is being captured).
  void *workspace = nullptr;
  size_t workspace_bytes = 0;
  std::function<ud_status(LaunchContext &, size_t)> reserve_workspace;
  // ascend-sim: runs a kernel (every block, through the shim's checks); set by that backend.
  using SimRun = std::function<ud_status(LaunchContext &, const char *kernel, uint32_t blocks, const std::function<void()> &body)>;
  SimRun sim_run;
  std::string error;

  ud_status fail(ud_status status, std::string message) {
    error = std::move(message);
    return status;
  }
};

ud_status launch_embedding(const ud_op &op, LaunchContext &ctx);
ud_status launch_matmul(const ud_op &op, LaunchContext &ctx);
ud_status launch_rmsnorm(const ud_op &op, LaunchContext &ctx);
ud_status launch_rope_kv_write(const ud_op &op, LaunchContext &ctx);
ud_status launch_attention(const ud_op &op, LaunchContext &ctx);
ud_status launch_silu_mul(const ud_op &op, LaunchContext &ctx);
ud_status launch_gather_rows(const ud_op &op, LaunchContext &ctx);
ud_status launch_sample(const ud_op &op, LaunchContext &ctx);
ud_status launch_fill_random(const ud_op &op, LaunchContext &ctx);
ud_status launch_select_tokens(const ud_op &op, LaunchContext &ctx);
ud_status launch_process_logits(const ud_op &op, LaunchContext &ctx);

// Dispatches on op.kind.
ud_status launch_op(const ud_op &op, LaunchContext &ctx);
// 1 when these kernels implement the op with these operand dtypes (and variant).
int32_t supports_op(const ud_op &op);

// The message of a device error slot ("rope_kv_write: slot_mapping[1] = 8 is outside the cache's 8
// slots", the CPU kernels' wording). `slot` points at kErrorSlotInts int32.
std::string format_device_error(const int32_t *slot);
// The first error recorded in an error area of kMaxBlocks slots (the lowest launch index; among a
// launch's blocks the lowest block), or "" when none; *launch (when given) gets its launch index, -1
// when none.
std::string first_device_error(const int32_t *slots, int32_t *launch = nullptr);

}  // namespace updraft::ascendc

#endif
