// sample.cuh — capability hook and limits of the CUDA sample kernel (kernels/cuda/sample.cu).
//
// dispatch.cu's supports_op asks sample_supports for UD_OP_SAMPLE: the CPU backend's dtype rule
// (logits, temperature, top_p, min_p f32; top_k, counters, token ids, top ids i32; seeds u64;
// logprobs f32) plus the kernel's limits below.
#ifndef UPDRAFT_CUDA_SAMPLE_CUH
#define UPDRAFT_CUDA_SAMPLE_CUH

#include <cstdint>

#include "cuda_kernels.h"

namespace updraft::cuda {

// The most top logprobs per row (K, the dst2/dst3 column count, and num_top_logprobs when > 0).
// The engine asks for at most 20 (MAX_TOP_LOGPROBS in src/sampling/params.ts).
constexpr int kSampleMaxTopLogprobs = 64;
// The largest vocabulary: probability masses are fixed-point u64 sums of up to V terms of <= 2^40.
constexpr int64_t kSampleMaxVocab = int64_t{1} << 23;

// 1 when launch_sample handles this op (dtypes and limits); shapes are checked at launch.
int32_t sample_supports(const ud_op &op);

}  // namespace updraft::cuda

#endif
