// attention.cuh — what kernels/cuda/attention.cu exports besides launch_attention (cuda_kernels.h).
#ifndef UPDRAFT_CUDA_ATTENTION_CUH
#define UPDRAFT_CUDA_ATTENTION_CUH

#include <cstdint>

#include "cuda_kernels.h"

namespace updraft::cuda {

// 1 when launch_attention implements this op's dtypes / head dim for the variant it names
// (op.params.attention.variant; 0 = auto, which always has variant 1 to fall back on). Looks at
// dtypes and params only, never at data: shape errors are left to launch_attention to report.
// (launch_attention also falls back from / refuses variants 2 and 3 when an operand's address is not
// 16-byte aligned, which supports cannot see.)
int32_t attention_supports(const ud_op &op);

// Variants 1..attention_num_variants() exist (see the table at the top of attention.cu).
int attention_num_variants();

}  // namespace updraft::cuda

#endif
