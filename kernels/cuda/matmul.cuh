// matmul.cuh — what the rest of the CUDA backend may ask the matmul kernels (kernels/cuda/matmul.cu).
//
// The ladder (stable numbers; `ud_matmul_params.variant`, 0 = auto):
//   1  simple: shared-memory tiled f32 FMA, every dtype combination and shape (the fallback)
//   2  small-M (decode) streaming kernel: W read once with 16-byte loads, tensor cores (mma.sync)
//      on the swapped product yᵀ = W·xᵀ, split-K inside the block and, for small N, across blocks
//   3  tensor-core tiled GEMM: mma.sync m16n8k16 + ldmatrix + cp.async multi-stage pipeline
//   4  Hopper GEMM: wgmma.mma_async + TMA + mbarrier pipeline, producer/consumer warpgroups (sm_90a)
//   5  small-M (decode) persistent stream: one block per SM over a balanced range of 16-row tiles,
//      register-pipelined W loads, mma.sync on yᵀ = W·xᵀ, split-K across the block's warps
// See the top of matmul.cu for which shapes and dtypes each one takes.
#ifndef UPDRAFT_CUDA_MATMUL_CUH
#define UPDRAFT_CUDA_MATMUL_CUH

#include <cstdint>

#include "cuda_kernels.h"

namespace updraft::cuda {

// Number of ladder variants: valid explicit `variant` values are 1..matmul_num_variants().
int matmul_num_variants();

// 1 when launch_matmul can run this op (operand dtypes are f32/f16/bf16, variant in range and, for
// an explicit variant, that variant takes these dtypes and this shape; shapes that fail validation are
// still "supported": launch_matmul reports them as invalid arguments). For supports_op (dispatch.cu).
int32_t matmul_supports(const ud_op &op);

}  // namespace updraft::cuda

#endif
