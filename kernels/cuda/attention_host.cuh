// attention_host.cuh — host-side pieces shared by the attention translation units (attention.cu,
// attention_decode.cu, attention_prefill.cu): per-device kernel preparation and the entry points of
// variants 2 and 3, which launch_attention (attention.cu) calls after validating the op.
#ifndef UPDRAFT_CUDA_ATTENTION_HOST_CUH
#define UPDRAFT_CUDA_ATTENTION_HOST_CUH

#include <atomic>

#include "attention_common.cuh"

namespace updraft::cuda::attn {

constexpr int kMaxDevices = 64;

// Heads of one GQA group handled by one CTA (variants 2, 3): the largest of 8, 4, 2, 1 dividing it.
inline int gqa_chunk(int group) {
  for (int c : {8, 4, 2, 1})
    if (group % c == 0) return c;
  return 1;
}

inline int current_device() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) dev = 0;
  return dev;
}

inline int sm_count(const KernelContext &ctx) {
  if (ctx.sm_count > 0) return ctx.sm_count;
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, current_device()) != cudaSuccess || n <= 0) n = 132;
  return n;
}

// Raises a kernel's dynamic shared-memory limit (once per device, cached in `cache`) and returns its
// resident CTAs per SM. Host-side calls only (nothing is enqueued), so it is safe inside capture.
template <typename Kernel>
int prepare_kernel(Kernel kernel, size_t smem, int threads, std::atomic<int> (&cache)[kMaxDevices]) {
  const int dev = current_device();
  const int cached = cache[dev].load(std::memory_order_relaxed);
  if (cached > 0) return cached;
  if (smem > 48 * 1024) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem) != cudaSuccess || n <= 0) n = 1;
  (void)cudaGetLastError();  // a failed query must not surface as the next launch's error
  cache[dev].store(n, std::memory_order_relaxed);
  return n;
}

// Variants 2 (tensor_cores false: head_dim 8..256, a power of 2) and 4 (true: head_dim 64 / 128), in
// attention_decode.cu: q, caches and out all of `dtype` (bf16 or f16). decode_num_splits: the
// split-KV count the launch would use for these args (1: no split, no reduce kernel).
ud_status launch_decode(int32_t dtype, const Args &a, KernelContext &ctx, bool tensor_cores);
int decode_num_splits(int32_t dtype, const Args &a, KernelContext &ctx, bool tensor_cores);

// Variant 3 (attention_prefill.cu): q, caches and out all of `dtype` (bf16 or f16), head_dim 64/128.
ud_status launch_prefill(int32_t dtype, const Args &a, KernelContext &ctx);

}  // namespace updraft::cuda::attn

#endif
