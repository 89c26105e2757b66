// cpu_kernels.h — the CPU reference kernels, one launch function per op (one op per file).
//
// Every launch function validates its operands (dtypes, shapes, ids that would index out of
// bounds) and returns a ud_status; on failure it leaves a message in ctx.error. Kernels never
// exit, abort or throw across this interface.
//
// Shapes: an operand's `ne[0]` is its row count and the remaining dims are flattened into the row,
// so a [numTokens, numHeads, headDim] tensor written by one op can be read as [numTokens,
// numHeads * headDim] by the next. Sizes the op derives from params (heads, headDim) are checked
// against the element counts.
#ifndef UPDRAFT_CPU_KERNELS_H
#define UPDRAFT_CPU_KERNELS_H

#include <string>

#include "../../native/include/updraft/device_abi.h"
#include "thread_pool.h"

namespace updraft::cpu {

struct KernelContext {
  ThreadPool &pool;
  std::string error;  // why the last launch failed

  ud_status fail(ud_status status, std::string message) {
    error = std::move(message);
    return status;
  }
};

ud_status launch_embedding(const ud_op &op, KernelContext &ctx);
ud_status launch_matmul(const ud_op &op, KernelContext &ctx);
ud_status launch_rmsnorm(const ud_op &op, KernelContext &ctx);
ud_status launch_rope_kv_write(const ud_op &op, KernelContext &ctx);
ud_status launch_attention(const ud_op &op, KernelContext &ctx);
ud_status launch_silu_mul(const ud_op &op, KernelContext &ctx);
ud_status launch_gather_rows(const ud_op &op, KernelContext &ctx);
ud_status launch_sample(const ud_op &op, KernelContext &ctx);
ud_status launch_fill_random(const ud_op &op, KernelContext &ctx);
ud_status launch_select_tokens(const ud_op &op, KernelContext &ctx);
ud_status launch_process_logits(const ud_op &op, KernelContext &ctx);

// Dispatches on op.kind.
ud_status launch_op(const ud_op &op, KernelContext &ctx);

// 1 when the kernels implement this op for these operand dtypes (shapes are checked at launch).
int32_t supports_op(const ud_op &op);

}  // namespace updraft::cpu

#endif
