// attention_decode.cuh — variant 2: paged decode attention (flash-decoding) on CUDA cores.
//
// Work item: one CTA per (query row, kv head, head subgroup, split). The CTA computes the GC q heads
// of one GQA group (GC = numHeads/numKvHeads when that is 1, 2, 4 or 8) against one kv head, so every
// cached k/v byte is read once per step. Rows are looked up on the device (attention_common.cuh), so
// the kernel is right for any batch layout — prompt rows included — and fast when every sequence
// has one query row.
//
// Inside the CTA: 4 warps, each with its own 4-stage cp.async pipeline (no CTA barriers in the main
// loop, only __syncwarp). A warp stage holds P positions of k and v (4 KiB for 16-bit data); the
// warp takes every 4th stage-sized tile of the CTA's position range. Lane layout for compute: TD =
// headDim/8 lanes share one position, each owning 8 dims (one 16-byte smem load of k and of v),
// RPW = 32/TD positions per warp instruction. The q·k partial sums are reduced across the TD lanes
// with xor shuffles; the tile max is shared across the whole warp so (max, sum, acc) of all lanes
// use one running max, and merging the lanes / warps at the end is a plain rescaled sum.
// Softmax runs in the log2 domain (q pre-multiplied by scale·log2 e), f32 throughout.
//
// Split-KV: the host picks num_splits from shapes only (numTokens, numKvHeads, maxBlocksPerSeq, SM
// count, occupancy, workspace) so the launch is graph-capturable. On the device each row divides its
// real context into min(num_splits, ceil(ctx / kMinChunk)) chunks; CTAs whose chunk is empty still
// write an empty partial (max -inf, sum 0, acc 0). With num_splits > 1 every CTA writes (max, sum,
// acc) to ctx.workspace and attention_split_reduce_kernel combines them in split order:
// deterministic, no atomics.
//
// Resources (ptxas, sm_90a, bf16, headDim 128, GC 4): see attention.cu's header for the table.
// Shared memory: 4 warps × 4 stages × 4 KiB + flags = 64.5 KiB (headDim ≥ 16).
#ifndef UPDRAFT_CUDA_ATTENTION_DECODE_CUH
#define UPDRAFT_CUDA_ATTENTION_DECODE_CUH

#include "attention_common.cuh"

namespace updraft::cuda::attn {

constexpr int kDecWarps = 4;
constexpr int kDecThreads = kDecWarps * 32;
constexpr int kDecStages = 4;
constexpr int kMinChunk = 128;  // fewest positions a split gets (device side), so partials stay cheap
constexpr int kMaxSplits = 64;

template <int HD> struct DecodeShape {
  static_assert(HD % 8 == 0 && HD >= 8 && HD <= 256 && (HD & (HD - 1)) == 0, "headDim: power of 2 in [8, 256]");
  static constexpr int TD = HD / 8;           // lanes sharing one position (8 dims = 16 bytes each)
  static constexpr int RPW = 32 / TD;         // positions a warp covers per instruction
  static constexpr int P0 = 1024 / HD;        // positions per stage for 4 KiB of k + v
  static constexpr int P = P0 > 32 ? 32 : (P0 < RPW ? RPW : P0);
  static constexpr int NR = P / RPW;          // positions each lane computes per stage
  static constexpr int LPR = 32 / P;          // lanes issuing the copies of one position
  static constexpr int CPL = TD / LPR;        // 16-byte chunks per lane per position, per tensor
  static constexpr int STAGE_ELEMS = 2 * P * HD;
  static_assert(P % RPW == 0 && TD % LPR == 0 && 32 % P == 0, "decode tile shape");
};

template <int HD> constexpr size_t decode_smem_bytes() {
  using Sh = DecodeShape<HD>;
  return size_t(kDecWarps) * kDecStages * (Sh::STAGE_ELEMS * 2 + Sh::P * sizeof(int));
}

// The [c0, c1) slice of a row's ctx positions that split `split` of `num_splits` covers. The same
// function decides which splits are empty; the reduce kernel does not need it (every split writes).
__device__ __forceinline__ void split_range(int ctx, int num_splits, int split, int &c0, int &c1) {
  c0 = c1 = 0;
  if (ctx <= 0) return;
  const int active = min(num_splits, (ctx + kMinChunk - 1) / kMinChunk);
  int chunk = (ctx + active - 1) / active;
  chunk = (chunk + 15) & ~15;
  c0 = min(ctx, split * chunk);
  c1 = min(ctx, c0 + chunk);
}

// The CTA's work for the decode kernels (variants 2 and 4): (row or sequence, kv head, head
// subgroup) from blockIdx.x, the split from blockIdx.y. False when the row is untouched (uniform
// across the CTA); else the row t, its sequence s, the split's positions [c0, c1) and first q head h0.
struct DecodeCtaWork {
  int kvh, split, t, s, c0, c1, h0;
};
__device__ __forceinline__ bool decode_cta_work(const Args &a, int num_splits, int hsub, int gc, DecodeCtaWork &w) {
  int x = blockIdx.x;
  const int hs = x % hsub;
  x /= hsub;
  w.kvh = x % a.num_kv_heads;
  w.split = blockIdx.y;
  int ctx;
  if (!decode_row_context(a, x / a.num_kv_heads, w.t, w.s, ctx)) return false;
  split_range(ctx, num_splits, w.split, w.c0, w.c1);
  w.h0 = w.kvh * a.group + hs * gc;
  return true;
}

// The last step of a decode CTA: every warp's (acc, max, sum) for each of the GC heads is in shared
// memory (macc [NW][GC][HD], mm / ml [NW][GC]); combines them and writes out (one split) or this
// split's partials for attention_split_reduce_kernel. Called by every thread after a barrier.
template <typename T, int HD, int GC, int NW>
__device__ __forceinline__ void merge_warp_partials(const Args &a, const float *macc, const float *mm, const float *ml,
                                                    int t, int h0, int split, int num_splits) {
  for (int idx = threadIdx.x; idx < GC * HD; idx += blockDim.x) {
    const int g = idx / HD, d = idx % HD;
    float M = mm[g];
#pragma unroll
    for (int w = 1; w < NW; w++) M = fmaxf(M, mm[w * GC + g]);
    const float Mu = M == neg_inf() ? 0.0f : M;
    float L = 0.0f, A = 0.0f;
#pragma unroll
    for (int w = 0; w < NW; w++) {
      const float f = fast_exp2(mm[w * GC + g] - Mu);
      L += ml[w * GC + g] * f;
      A += macc[(w * GC + g) * HD + d] * f;
    }
    const long long th = (long long)t * a.num_heads + h0 + g;
    if (num_splits == 1) {
      static_cast<T *>(a.out)[th * HD + d] = from_float<T>(L > 0.0f ? A / L : 0.0f);
    } else {
      const long long part = th * num_splits + split;
      a.ws[part * HD + d] = A;
      if (d == 0) {
        float *pml = a.ws + (long long)a.num_tokens * a.num_heads * num_splits * HD;
        pml[part * 2] = M;
        pml[part * 2 + 1] = L;
      }
    }
  }
}

template <typename T, int HD, int GC>
__global__ void __launch_bounds__(kDecThreads) attention_decode_kernel(const Args a, const int num_splits, const int hsub) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  using Sh = DecodeShape<HD>;
  using H16 = Half16<T>;
  constexpr int TD = Sh::TD, RPW = Sh::RPW, P = Sh::P, NR = Sh::NR, LPR = Sh::LPR, CPL = Sh::CPL;
  constexpr int NW = kDecWarps, S = kDecStages;
  extern __shared__ uint4 dec_smem[];

  if (blockIdx.x == 0 && blockIdx.y == 0) validate_batch(a);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  DecodeCtaWork work;
  if (!decode_cta_work(a, num_splits, hsub, GC, work)) return;  // untouched row: uniform across the CTA
  const int kvh = work.kvh, split = work.split, t = work.t, s = work.s, c0 = work.c0, c1 = work.c1, h0 = work.h0;

  // Compute layout: lane = (r, dl): position slot r in [0, RPW), dims [8·dl, 8·dl + 8).
  const int dl = lane % TD, r = lane / TD;
  float qv[GC][8];
  {
    const float qscale = a.scale * kLog2e;
    const T *qp = static_cast<const T *>(a.q) + ((long long)t * a.num_heads + h0) * HD + dl * 8;
#pragma unroll
    for (int g = 0; g < GC; g++) {
      H16::to_f32x8(*reinterpret_cast<const uint4 *>(qp + g * HD), qv[g]);
#pragma unroll
      for (int e = 0; e < 8; e++) qv[g][e] *= qscale;
    }
  }
  float m_run[GC], l_run[GC], acc[GC][8];
#pragma unroll
  for (int g = 0; g < GC; g++) {
    m_run[g] = neg_inf();
    l_run[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; e++) acc[g][e] = 0.0f;
  }

  T *const stages = reinterpret_cast<T *>(dec_smem) + warp * S * Sh::STAGE_ELEMS;
  int *const flags = reinterpret_cast<int *>(reinterpret_cast<T *>(dec_smem) + NW * S * Sh::STAGE_ELEMS) + warp * S * P;
  const int ntiles = (c1 - c0 + P - 1) / P;
  const int nt_w = ntiles > warp ? (ntiles - warp + NW - 1) / NW : 0;  // tiles warp, warp+NW, ...
  // Issue layout: lane = (ri, u): position ri of the tile, chunks u, u+LPR, ... of its k and v rows.
  const int ri = lane / LPR, u = lane % LPR;
  const long long kv_row = (long long)a.num_kv_heads * HD;
  const T *const kc = static_cast<const T *>(a.k) + (long long)kvh * HD;
  const T *const vc = static_cast<const T *>(a.v) + (long long)kvh * HD;

  int bad = -1;  // a block id outside the cache, reported after the loop
  auto lookup = [&](int k) -> int {  // cache row of this lane's issue position in the warp's k-th tile
    const int pos = c0 + (warp + k * NW) * P + ri;
    return pos < c1 ? cache_row(a, s, pos, bad) : -1;
  };
  auto issue = [&](int stage, int crow) {
    T *ks = stages + stage * Sh::STAGE_ELEMS + ri * HD;
    T *vs = ks + P * HD;
    const long long off = crow >= 0 ? (long long)crow * kv_row : 0;
    const int bytes = crow >= 0 ? 16 : 0;  // masked / past-the-end rows: zero-filled, never read
#pragma unroll
    for (int q = 0; q < CPL; q++) {
      const int dc = (u + q * LPR) * 8;
      cp_async16(ks + dc, kc + off + dc, bytes);
      cp_async16(vs + dc, vc + off + dc, bytes);
    }
    if (u == 0) flags[stage * P + ri] = crow >= 0;
  };

  // Prologue: tiles 0 .. S-2 in flight, the cache row of tile S-1 prefetched.
#pragma unroll
  for (int st = 0; st < S - 1; st++) {
    if (st < nt_w) issue(st, lookup(st));
    cp_async_commit();
  }
  int next_row = (S - 1 < nt_w) ? lookup(S - 1) : -1;

  for (int k = 0; k < nt_w; k++) {
    if (k + S - 1 < nt_w) issue((k + S - 1) % S, next_row);
    cp_async_commit();
    if (k + S < nt_w) next_row = lookup(k + S);  // lands while this tile is computed
    cp_async_wait<S - 1>();                        // this lane's copies of tile k are done
    __syncwarp();                                  // ... and every lane's are visible

    const int stage = k % S;
    const T *ks = stages + stage * Sh::STAGE_ELEMS;
    const T *vs = ks + P * HD;
    const int *fl = flags + stage * P;
    float sc[NR][GC];
#pragma unroll
    for (int jj = 0; jj < NR; jj++) {
      float kf[8];
      H16::to_f32x8(*reinterpret_cast<const uint4 *>(ks + (r + jj * RPW) * HD + dl * 8), kf);
#pragma unroll
      for (int g = 0; g < GC; g++) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) d = fmaf(qv[g][e], kf[e], d);
        sc[jj][g] = d;
      }
    }
#pragma unroll
    for (int o = TD / 2; o > 0; o >>= 1)
#pragma unroll
      for (int jj = 0; jj < NR; jj++)
#pragma unroll
        for (int g = 0; g < GC; g++) sc[jj][g] += __shfl_xor_sync(0xffffffffu, sc[jj][g], o);
#pragma unroll
    for (int jj = 0; jj < NR; jj++)
      if (!fl[r + jj * RPW])
#pragma unroll
        for (int g = 0; g < GC; g++) sc[jj][g] = neg_inf();
#pragma unroll
    for (int g = 0; g < GC; g++) {
      float mt = sc[0][g];
#pragma unroll
      for (int jj = 1; jj < NR; jj++) mt = fmaxf(mt, sc[jj][g]);
#pragma unroll
      for (int o = TD; o < 32; o <<= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
      const float m_new = fmaxf(m_run[g], mt);
      const float m_use = m_new == neg_inf() ? 0.0f : m_new;  // nothing visible yet: weights stay 0
      const float corr = fast_exp2(m_run[g] - m_use);
      m_run[g] = m_new;
      float ls = 0.0f;
#pragma unroll
      for (int jj = 0; jj < NR; jj++) {
        sc[jj][g] = fast_exp2(sc[jj][g] - m_use);
        ls += sc[jj][g];
      }
      l_run[g] = l_run[g] * corr + ls;
#pragma unroll
      for (int e = 0; e < 8; e++) acc[g][e] *= corr;
    }
#pragma unroll
    for (int jj = 0; jj < NR; jj++) {
      float vf[8];
      H16::to_f32x8(*reinterpret_cast<const uint4 *>(vs + (r + jj * RPW) * HD + dl * 8), vf);
#pragma unroll
      for (int g = 0; g < GC; g++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[g][e] = fmaf(sc[jj][g], vf[e], acc[g][e]);
    }
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  cp_async_wait<0>();  // only empty groups can be pending here; keep the smem reuse below obviously safe
  report_bad_block(a, s, bad);

  // Lanes of different position slots hold partial sums under the same running max: add them up.
#pragma unroll
  for (int o = TD; o < 32; o <<= 1)
#pragma unroll
    for (int g = 0; g < GC; g++) {
      l_run[g] += __shfl_xor_sync(0xffffffffu, l_run[g], o);
#pragma unroll
      for (int e = 0; e < 8; e++) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
    }

  // Merge the warps through shared memory (reusing the pipeline buffers).
  __syncthreads();
  float *const macc = reinterpret_cast<float *>(dec_smem);  // [NW][GC][HD]
  float *const mm = macc + NW * GC * HD;                     // [NW][GC]
  float *const ml = mm + NW * GC;                            // [NW][GC]
  if (r == 0) {
#pragma unroll
    for (int g = 0; g < GC; g++)
#pragma unroll
      for (int e = 0; e < 8; e++) macc[(warp * GC + g) * HD + dl * 8 + e] = acc[g][e];
  }
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < GC; g++) {
      mm[warp * GC + g] = m_run[g];
      ml[warp * GC + g] = l_run[g];
    }
  }
  __syncthreads();
  merge_warp_partials<T, HD, GC, NW>(a, macc, mm, ml, t, h0, split, num_splits);
}

// Combines the num_splits partials of each (row, head) in split order. One CTA per (row, head), or
// per (sequence, head) for kSingleRowSeqs, as the decode kernel was launched.
template <typename T>
__global__ void __launch_bounds__(128) attention_split_reduce_kernel(const Args a, const int num_splits) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  const int h = blockIdx.y;
  int t, s, ctx;
  if (!decode_row_context(a, blockIdx.x, t, s, ctx)) return;  // the decode kernel skipped it too: untouched
  const int hd = a.head_dim;
  const long long th = (long long)t * a.num_heads + h;
  const float *acc = a.ws + th * num_splits * hd;
  const float *pml = a.ws + (long long)a.num_tokens * a.num_heads * num_splits * hd + th * num_splits * 2;
  float M = neg_inf();
  for (int i = 0; i < num_splits; i++) M = fmaxf(M, pml[2 * i]);
  const float Mu = M == neg_inf() ? 0.0f : M;
  float L = 0.0f;
  for (int i = 0; i < num_splits; i++) L += pml[2 * i + 1] * fast_exp2(pml[2 * i] - Mu);
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float A = 0.0f;
    for (int i = 0; i < num_splits; i++) A += acc[(long long)i * hd + d] * fast_exp2(pml[2 * i] - Mu);
    static_cast<T *>(a.out)[th * hd + d] = from_float<T>(A * inv);
  }
}

}  // namespace updraft::cuda::attn

#endif
