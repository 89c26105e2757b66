// attention_simple.cuh — variant 1: the obviously-right fallback.
//
// One CTA of 128 threads per (query row, q head). The row's visible positions are walked in chunks
// of 128: each thread scores one position (f32 dot of q and the cached k row, times scale), the CTA
// takes the chunk max, rescales the running (max, sum, acc) and adds the chunk's exp-weighted v rows
// (each thread owns a few output dims). Softmax and accumulation are f32 throughout, with expf.
// Any float dtype for q / cache (k and v share one) / out, any headDim 1..1024, any block size.
// Slow (k is read per q head and uncoalesced) but simple enough to check by eye.
//
// Resources: ~30 registers, (2·headDim + 288) · 4 bytes of dynamic shared memory.
#ifndef UPDRAFT_CUDA_ATTENTION_SIMPLE_CUH
#define UPDRAFT_CUDA_ATTENTION_SIMPLE_CUH

#include "attention_common.cuh"

namespace updraft::cuda::attn {

constexpr int kSimpleThreads = 128;  // threads per CTA, and positions per chunk
constexpr int kSimpleMaxHeadDim = 1024;

__device__ __forceinline__ void store_any(void *out, int dtype, long long i, float x) {
  if (dtype == UD_F32) static_cast<float *>(out)[i] = x;
  else if (dtype == UD_BF16) static_cast<__nv_bfloat16 *>(out)[i] = __float2bfloat16_rn(x);
  else static_cast<__half *>(out)[i] = __float2half_rn(x);
}

// Max (is_max) or sum of v over the CTA; every thread gets the result. red: 32 floats of smem.
__device__ __forceinline__ float simple_block_reduce(float v, bool is_max, float *red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < kSimpleThreads / 32; w++) r = is_max ? fmaxf(r, red[w]) : r + red[w];
  __syncthreads();  // red may be rewritten by the next reduction
  return r;
}

template <typename TQ, typename TKV>
__global__ void __launch_bounds__(kSimpleThreads) attention_simple_kernel(const Args a) {
  extern __shared__ float simple_smem[];
  if (blockIdx.x == 0 && blockIdx.y == 0) validate_batch(a);
  const int t = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  int s, ctx;
  if (!row_context(a, t, s, ctx)) return;  // same answer for every thread of the CTA
  const int hd = a.head_dim, kvh = h / a.group;
  float *qs = simple_smem;                           // [hd] q row in f32
  float *acc = qs + hd;                              // [hd] unnormalised output
  float *ps = acc + hd;                              // [128] weights of the chunk
  int *rows = reinterpret_cast<int *>(ps + kSimpleThreads);  // [128] cache rows of the chunk (-1: masked)
  float *red = reinterpret_cast<float *>(rows + kSimpleThreads);  // [32]

  const long long out_base = ((long long)t * a.num_heads + h) * hd;
  const TQ *q = static_cast<const TQ *>(a.q) + out_base;
  for (int d = tid; d < hd; d += kSimpleThreads) {
    qs[d] = to_float(q[d]);
    acc[d] = 0.0f;
  }
  __syncthreads();

  const long long kv_row = (long long)a.num_kv_heads * hd;
  const TKV *kc = static_cast<const TKV *>(a.k) + (long long)kvh * hd;
  const TKV *vc = static_cast<const TKV *>(a.v) + (long long)kvh * hd;
  float m = neg_inf(), l = 0.0f;
  int bad = -1;
  for (int c0 = 0; c0 < ctx; c0 += kSimpleThreads) {
    const int pos = c0 + tid;
    const int row = pos < ctx ? cache_row(a, s, pos, bad) : -1;
    float sc = neg_inf();
    if (row >= 0) {
      const TKV *kr = kc + (long long)row * kv_row;
      float dot = 0.0f;
      for (int d = 0; d < hd; d++) dot += qs[d] * to_float(kr[d]);
      sc = dot * a.scale;
    }
    rows[tid] = row;
    const float m_new = fmaxf(m, simple_block_reduce(sc, true, red));
    const float m_use = m_new == neg_inf() ? 0.0f : m_new;  // nothing visible yet: weights stay 0
    const float corr = expf(m - m_use);
    const float p = row >= 0 ? expf(sc - m_use) : 0.0f;
    ps[tid] = p;
    l = l * corr + simple_block_reduce(p, false, red);  // its barriers publish ps[] and rows[]
    const int n = min(kSimpleThreads, ctx - c0);
    for (int d = tid; d < hd; d += kSimpleThreads) {
      float x = acc[d] * corr;
      for (int j = 0; j < n; j++) {
        const int r = rows[j];
        if (r >= 0) x += ps[j] * to_float(vc[(long long)r * kv_row + d]);
      }
      acc[d] = x;
    }
    m = m_new;
    __syncthreads();  // ps[] and rows[] are rewritten by the next chunk
  }
  report_bad_block(a, s, bad);
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int d = tid; d < hd; d += kSimpleThreads) store_any(a.out, a.out_dtype, out_base + d, acc[d] * inv);
}

inline size_t simple_smem_bytes(int head_dim) {
  return sizeof(float) * (2 * static_cast<size_t>(head_dim) + 2 * kSimpleThreads + 32);
}

template <typename TQ, typename TKV> cudaError_t launch_simple_typed(const Args &a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_heads));
  attention_simple_kernel<TQ, TKV><<<grid, kSimpleThreads, simple_smem_bytes(a.head_dim), stream>>>(a);
  return cudaGetLastError();
}

}  // namespace updraft::cuda::attn

#endif
