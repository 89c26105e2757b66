// cuda_kernels.h — the CUDA kernels, one launch function per op (one op per file, kernels/cuda/<op>.cu).
//
// Same contract as kernels/cpu/cpu_kernels.h: every launch function validates its operands and
// returns a ud_status, leaving a message in ctx.error on failure; it never exits or throws.
// Shapes: ne[0] is the row count; later dims flatten into the row.
//
// Launch functions only enqueue work on ctx.stream. They must stay capturable into a CUDA graph:
// no allocation, no synchronisation, no reading device memory on the host, and no state that
// changes between calls other than the tensors themselves. Scratch memory comes from
// ctx.workspace (owned by the backend, stable across calls, so a captured graph keeps using it).
#ifndef UPDRAFT_CUDA_KERNELS_H
#define UPDRAFT_CUDA_KERNELS_H

#include <cuda_runtime.h>

#include <string>

#include "../../native/include/updraft/device_abi.h"

namespace updraft::cuda {

struct KernelContext {
  cudaStream_t stream = nullptr;
  int device = 0;
  int sm_count = 0;
  // cudaDevAttrMaxSharedMemoryPerBlockOptin: kernels needing > 48 KiB must cudaFuncSetAttribute first.
  int max_smem_per_block = 0;
  // Device scratch for split-KV partials, sampling, etc. Ops run in stream order, so each op may use
  // all of it. kWorkspaceBytes is what the backend allocates.
  void *workspace = nullptr;
  size_t workspace_bytes = 0;
  std::string error;

  ud_status fail(ud_status status, std::string message) {
    error = std::move(message);
    return status;
  }
};

constexpr size_t kWorkspaceBytes = size_t(256) << 20;

ud_status launch_embedding(const ud_op &op, KernelContext &ctx);
ud_status launch_matmul(const ud_op &op, KernelContext &ctx);
ud_status launch_rmsnorm(const ud_op &op, KernelContext &ctx);
ud_status launch_rope_kv_write(const ud_op &op, KernelContext &ctx);
ud_status launch_attention(const ud_op &op, KernelContext &ctx);
ud_status launch_silu_mul(const ud_op &op, KernelContext &ctx);
ud_status launch_gather_rows(const ud_op &op, KernelContext &ctx);
ud_status launch_sample(const ud_op &op, KernelContext &ctx);
ud_status launch_fill_random(const ud_op &op, KernelContext &ctx);

// Dispatches on op.kind.
ud_status launch_op(const ud_op &op, KernelContext &ctx);
// 1 when the CUDA kernels implement this op with these operand dtypes.
int32_t supports_op(const ud_op &op);

}  // namespace updraft::cuda

#endif
