// attention_prefill.cuh — variant 3: FlashAttention-2-style paged prefill on tensor cores.
//
// Tile: 64 "M rows" per CTA = BQ query rows × GP q heads of one GQA group (BQ = 64/GP; GP is the
// largest of 8, 4, 2, 1 dividing numHeads/numKvHeads), so the k/v tiles loaded for the CTA serve
// every head of the group. M row m is (head m / BQ, query row m % BQ). 4 warps, 16 M rows each.
// K/V tiles of 64 positions are gathered row by row through the block table into shared memory with
// cp.async, double buffered (tile j+1 in flight while tile j is computed; the block-table entries of
// tile j+2 are loaded into registers meanwhile). S = Q·Kᵀ and O += P·V use mma.sync.m16n8k16
// (bf16 or f16 in, f32 accumulate) with ldmatrix (.trans for V); Q fragments stay in registers.
// Online softmax in f32 registers, log2 domain; the causal comparison runs only on tiles that cross
// the tile's first row position; masked block ids and positions past the tile's last row are a
// per-column -inf bias written next to the tile (their k/v rows are zero-filled, never read).
// Shared-memory rows are 16-byte-chunk swizzled (chunk ^ (row & 7)): ldmatrix and the cp.async
// writes are bank-conflict free.
//
// CTA → work: query_start_loc lives on the device, so the grid is an upper bound, numTokens/BQ +
// numSeqs slots (× numKvHeads × head subgroups in y). Sequence s owns slots [key(s), key(s+1)) with
// key(s) = floor(qsl[s] / BQ) + s, which holds at least ceil(queryLen_s / BQ) slots; each CTA finds
// its sequence by binary search over key() and exits when its slot is past the sequence's tiles.
// Slots run in reverse order so the longest (last) q tiles start first.
//
// FP8 E4M3 cache (KV = __nv_fp8_e4m3): the tiles are copied with cp.async into a double-buffered
// byte staging area, and the whole CTA widens tile j to T (exact: every E4M3 value is a bf16 and an
// f16) into single K / V tiles right before computing it; the rest is unchanged. Tile j+1 is in
// flight meanwhile, as with a 16-bit cache. Prefill is compute-bound, so the widening (one more
// barrier and ~4 instructions per 2 values per tile, shared by the CTA's 64 M rows) costs little.
//
// Resources (ptxas, sm_90a, bf16): see attention.cu's header. Shared memory: (5 · 64 · headDim) · 2
// bytes + 512 = 80.5 KiB (headDim 128) / 40.5 KiB (headDim 64), with either cache dtype (FP8: Q, K
// and V tiles of T, plus 2 stages × (k, v) × 64 · headDim bytes).
#ifndef UPDRAFT_CUDA_ATTENTION_PREFILL_CUH
#define UPDRAFT_CUDA_ATTENTION_PREFILL_CUH

#include <cuda_fp8.h>

#include <type_traits>

#include "attention_common.cuh"

namespace updraft::cuda::attn {

constexpr int kPfThreads = 128;
constexpr int kPfBM = 64;  // M rows per CTA (4 warps × 16)
constexpr int kPfBN = 64;  // positions per k/v tile

template <int HD> struct PrefillShape {
  static_assert(HD == 64 || HD == 128, "prefill: headDim 64 or 128");
  static constexpr int CPR = HD / 8;             // 16-byte chunks per row
  static constexpr int RPP = kPfThreads / CPR;   // rows one copy pass covers
  static constexpr int NP = kPfBN / RPP;         // copy passes per tile (rows per thread)
  static constexpr int KSTEPS = HD / 16;         // k-steps of Q·Kᵀ
  static constexpr int DBLK = HD / 8;            // n8 blocks of O
  static_assert(kPfBM == kPfBN, "Q and K/V tiles share the copy layout");
  // FP8 cache staging: rows of headDim bytes, 16-byte chunks (16 values).
  static constexpr int CPR8 = HD / 16;
  static constexpr int RPP8 = kPfThreads / CPR8;
  static constexpr int NP8 = kPfBN / RPP8;
};

// 4 E4M3 values (bytes of w, low first) → 4 values of T (bf16 or f16), packed in two words; exact.
template <typename T> __device__ __forceinline__ void widen_e4m3x4(uint32_t w, uint32_t &lo, uint32_t &hi) {
  uint32_t out[2];
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const __half2_raw raw = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>((w >> (16 * h)) & 0xffffu), __NV_E4M3);
    if constexpr (std::is_same_v<T, __half>) {
      out[h] = static_cast<uint32_t>(raw.x) | (static_cast<uint32_t>(raw.y) << 16);
    } else {
      const float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&raw));
      out[h] = Half16<T>::pack2(f.x, f.y);
    }
  }
  lo = out[0];
  hi = out[1];
}

template <int HD> constexpr size_t prefill_smem_bytes() {
  return size_t(kPfBM + 4 * kPfBN) * HD * 2 + 2 * kPfBN * sizeof(float);
}

// Largest s in [0, numSeqs) with key(s) = floor(clamp(qsl[s]) / bq) + s <= x, or -1.
__device__ __forceinline__ int find_tile_seq(const Args &a, int bq, int x) {
  auto key = [&](int s) {
    const int v = min(max(__ldg(a.qsl + s), 0), a.num_tokens);
    return v / bq + s;
  };
  if (a.num_seqs <= 0 || key(0) > x) return -1;
  int lo = 0, hi = a.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (key(mid) <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <typename T, typename KV, int HD, int GP>
__global__ void __launch_bounds__(kPfThreads, 2) attention_prefill_kernel(const Args a, const int hsub) {
  using Sh = PrefillShape<HD>;
  using H16 = Half16<T>;
  constexpr bool kFp8 = std::is_same_v<KV, __nv_fp8_e4m3>;
  static_assert(kFp8 || std::is_same_v<KV, T>, "prefill: the cache is T or FP8 E4M3");
  constexpr int BQ = kPfBM / GP;
  constexpr int CPR = Sh::CPR, RPP = Sh::RPP, NP = Sh::NP, KSTEPS = Sh::KSTEPS, DBLK = Sh::DBLK;
  constexpr int kStages = kFp8 ? 1 : 2;  // K / V tiles of T: double-buffered copies, or the widened FP8 tile
  extern __shared__ uint4 pf_smem[];
  T *const sQ = reinterpret_cast<T *>(pf_smem);  // [64][HD], later the output staging area
  T *const sK = sQ + kPfBM * HD;                  // [kStages][64][HD]
  T *const sV = sK + kStages * kPfBN * HD;        // [kStages][64][HD]
  uint8_t *const s8 = reinterpret_cast<uint8_t *>(sV + kStages * kPfBN * HD);  // FP8: [2 stages][k, v][64][HD] bytes
  float *const sBias = reinterpret_cast<float *>(s8 + (kFp8 ? 4 * kPfBN * HD : 0));  // [2][64]

  if (blockIdx.x == 0 && blockIdx.y == 0) validate_batch(a);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int slot = gridDim.x - 1 - blockIdx.x;
  const int hs = blockIdx.y % hsub, kvh = blockIdx.y / hsub;
  const int s = find_tile_seq(a, BQ, slot);
  if (s < 0) return;
  const int len = __ldg(a.seq_lens + s);
  if (len <= 0) return;  // idle sequence: rows untouched
  const int qb = min(max(__ldg(a.qsl + s), 0), a.num_tokens);
  const int qe = min(max(__ldg(a.qsl + s + 1), qb), a.num_tokens);
  const int qlen = qe - qb;
  if (a.rows == kMultiRowSeqs && qlen == 1) return;  // variant 5: the decode kernel computes this row
  const int q0 = (slot - (qb / BQ + s)) * BQ;  // first query row (within the sequence) of this tile
  if (q0 >= qlen) return;                        // spare slot
  const int rows_here = min(BQ, qlen - q0);
  const int first_pos = len - qlen + q0;         // position of the tile's query row 0
  long long kvl = (long long)first_pos + rows_here;  // positions the tile's last row sees
  if (kvl < 0) kvl = 0;
  if (kvl > a.ctx_cap) kvl = a.ctx_cap;
  const int kv_len = (int)kvl;
  const int nt = (kv_len + kPfBN - 1) / kPfBN;
  const int h_first = kvh * a.group + hs * GP;

  // Copy layout: thread = (row r0 + p·RPP, chunk ch) — for an FP8 cache's tiles (kr0 + p·RPP8, kch)
  // with 16-value chunks.
  const int ch = tid % CPR, r0 = tid / CPR;
  constexpr int KV_NP = kFp8 ? Sh::NP8 : NP, KV_RPP = kFp8 ? Sh::RPP8 : RPP, KV_CPR = kFp8 ? Sh::CPR8 : CPR;
  const int kch = tid % KV_CPR, kr0 = tid / KV_CPR;
  const long long kv_row = (long long)a.num_kv_heads * HD;
  const KV *const kc = static_cast<const KV *>(a.k) + (long long)kvh * HD;
  const KV *const vc = static_cast<const KV *>(a.v) + (long long)kvh * HD;

  // Q tile (zero rows past the sequence's query rows).
  {
    const T *qg = static_cast<const T *>(a.q);
#pragma unroll
    for (int p = 0; p < NP; p++) {
      const int m = r0 + p * RPP, qi = m % BQ;
      const bool ok = qi < rows_here;
      const long long src = ok ? ((long long)(qb + q0 + qi) * a.num_heads + h_first + m / BQ) * HD + ch * 8 : 0;
      cp_async16(sQ + swz<HD>(m, ch * 8), qg + src, ok ? 16 : 0);
    }
  }
  int rows_next[KV_NP];  // cache rows of the next tile to issue (-1: masked)
  int bad = -1;          // a block id outside the cache, reported after the loop
  auto lookup = [&](int n0) {
#pragma unroll
    for (int p = 0; p < KV_NP; p++) {
      const int pos = n0 + kr0 + p * KV_RPP;
      rows_next[p] = pos < kv_len ? cache_row(a, s, pos, bad) : -1;
    }
  };
  auto issue = [&](int stage) {
#pragma unroll
    for (int p = 0; p < KV_NP; p++) {
      const int n = kr0 + p * KV_RPP, crow = rows_next[p];
      constexpr int kChunkElems = 16 / sizeof(KV);
      const long long off = crow >= 0 ? (long long)crow * kv_row + kch * kChunkElems : 0;
      const int bytes = crow >= 0 ? 16 : 0;
      if constexpr (kFp8) {  // staging rows are not swizzled: the widening reads them in order
        uint8_t *k8 = s8 + (stage * 2) * kPfBN * HD, *v8 = k8 + kPfBN * HD;
        cp_async16(k8 + n * HD + kch * 16, kc + off, bytes);
        cp_async16(v8 + n * HD + kch * 16, vc + off, bytes);
      } else {
        cp_async16(sK + stage * kPfBN * HD + swz<HD>(n, kch * 8), kc + off, bytes);
        cp_async16(sV + stage * kPfBN * HD + swz<HD>(n, kch * 8), vc + off, bytes);
      }
      if (kch == 0) sBias[stage * kPfBN + n] = crow >= 0 ? 0.0f : neg_inf();
    }
  };
  // FP8: tile `stage` of the staging area → the K / V tiles of T (swizzled as the 16-bit copies are).
  auto widen = [&](int stage) {
    const uint8_t *k8 = s8 + (stage * 2) * kPfBN * HD;
    for (int idx = tid; idx < 2 * kPfBN * Sh::CPR8; idx += kPfThreads) {
      const int tensor = idx / (kPfBN * Sh::CPR8), rem = idx % (kPfBN * Sh::CPR8);
      const int n = rem / Sh::CPR8, c = rem % Sh::CPR8;
      const uint4 raw = *reinterpret_cast<const uint4 *>(k8 + tensor * kPfBN * HD + n * HD + c * 16);
      const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
      uint32_t out[8];
#pragma unroll
      for (int i = 0; i < 4; i++) widen_e4m3x4<T>(w[i], out[2 * i], out[2 * i + 1]);
      T *dst = (tensor == 0 ? sK : sV);
      *reinterpret_cast<uint4 *>(dst + swz<HD>(n, c * 16)) = make_uint4(out[0], out[1], out[2], out[3]);
      *reinterpret_cast<uint4 *>(dst + swz<HD>(n, c * 16 + 8)) = make_uint4(out[4], out[5], out[6], out[7]);
    }
  };
  if (nt > 0) {
    lookup(0);
    issue(0);
  }
  cp_async_commit();  // group 0: Q and tile 0
  if (nt > 1) lookup(kPfBN);

  // Fragment coordinates: rows g and g + 8 of the warp's 16, columns 2·tq, 2·tq + 1 of each n8 block.
  const int g = lane >> 2, tq = lane & 3;
  const int m0 = warp * 16 + g, m1 = m0 + 8;
  const int pos0 = first_pos + m0 % BQ, pos1 = first_pos + m1 % BQ;
  const float sl = a.scale * kLog2e;

  uint32_t qf[KSTEPS][4];
  float o[DBLK][4];
#pragma unroll
  for (int d = 0; d < DBLK; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run0 = neg_inf(), m_run1 = neg_inf(), l_run0 = 0.0f, l_run1 = 0.0f;

  for (int j = 0; j < nt; j++) {
    if (j + 1 < nt) issue((j + 1) & 1);
    cp_async_commit();
    if (j + 2 < nt) lookup((j + 2) * kPfBN);  // lands while tile j is computed
    cp_async_wait<1>();                        // groups up to tile j (and Q) are done
    __syncthreads();
    if constexpr (kFp8) {
      widen(j & 1);
      __syncthreads();
    }
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < KSTEPS; kk++)
        ldmatrix_x4(qf[kk], sQ + swz<HD>(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
    }
    const T *ks = sK + (kFp8 ? 0 : (j & 1) * kPfBN * HD);
    const T *vs = sV + (kFp8 ? 0 : (j & 1) * kPfBN * HD);
    const float *bias = sBias + (j & 1) * kPfBN;

    // S = Q · Kᵀ (16 × 64 per warp).
    float sc[8][4];
#pragma unroll
    for (int nb = 0; nb < 8; nb++) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
#pragma unroll
      for (int nb2 = 0; nb2 < 4; nb2++) {
        uint32_t b[4];
        ldmatrix_x4(b, ks + swz<HD>(nb2 * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 16 + ((lane >> 3) & 1) * 8));
        mma_16816<T>(sc[2 * nb2], qf[kk], b[0], b[1]);
        mma_16816<T>(sc[2 * nb2 + 1], qf[kk], b[2], b[3]);
      }
    }

    // Scale to the log2 domain, mask, online softmax.
    const int n0 = j * kPfBN;
    const bool diag = n0 + kPfBN - 1 > first_pos;
    float mx0 = neg_inf(), mx1 = neg_inf();
#pragma unroll
    for (int nb = 0; nb < 8; nb++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int col = nb * 8 + 2 * tq + (e & 1);
        float x = fmaf(sc[nb][e], sl, bias[col]);
        if (diag && n0 + col > (e < 2 ? pos0 : pos1)) x = neg_inf();
        sc[nb][e] = x;
      }
      mx0 = fmaxf(mx0, fmaxf(sc[nb][0], sc[nb][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[nb][2], sc[nb][3]));
    }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    const float mn0 = fmaxf(m_run0, mx0), mn1 = fmaxf(m_run1, mx1);
    const float mu0 = mn0 == neg_inf() ? 0.0f : mn0, mu1 = mn1 == neg_inf() ? 0.0f : mn1;
    const float corr0 = fast_exp2(m_run0 - mu0), corr1 = fast_exp2(m_run1 - mu1);
    m_run0 = mn0;
    m_run1 = mn1;
    float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
    for (int nb = 0; nb < 8; nb++) {
      sc[nb][0] = fast_exp2(sc[nb][0] - mu0);
      sc[nb][1] = fast_exp2(sc[nb][1] - mu0);
      sc[nb][2] = fast_exp2(sc[nb][2] - mu1);
      sc[nb][3] = fast_exp2(sc[nb][3] - mu1);
      ls0 += sc[nb][0] + sc[nb][1];
      ls1 += sc[nb][2] + sc[nb][3];
    }
    l_run0 = l_run0 * corr0 + ls0;  // per-thread partial; the quad's partials are added at the end
    l_run1 = l_run1 * corr1 + ls1;
#pragma unroll
    for (int d = 0; d < DBLK; d++) {
      o[d][0] *= corr0;
      o[d][1] *= corr0;
      o[d][2] *= corr1;
      o[d][3] *= corr1;
    }

    // O += P · V: the S accumulators of n8 blocks 2k, 2k+1 are the A fragment of k-step k.
#pragma unroll
    for (int kk = 0; kk < kPfBN / 16; kk++) {
      uint32_t pa[4];
      pa[0] = H16::pack2(sc[2 * kk][0], sc[2 * kk][1]);
      pa[1] = H16::pack2(sc[2 * kk][2], sc[2 * kk][3]);
      pa[2] = H16::pack2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
      pa[3] = H16::pack2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
      for (int db2 = 0; db2 < HD / 16; db2++) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vs + swz<HD>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, db2 * 16 + (lane >> 4) * 8));
        mma_16816<T>(o[2 * db2], pa, b[0], b[1]);
        mma_16816<T>(o[2 * db2 + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // tile j's buffers are refilled by the next iteration
  }
  cp_async_wait<0>();
  report_bad_block(a, s, bad);
  __syncthreads();  // nothing in flight into sQ (nt == 0 leaves the Q copy pending until here)

  // Normalise and write: stage the warp's 16 rows in sQ (its own rows only), then 16-byte stores.
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_run0 += __shfl_xor_sync(0xffffffffu, l_run0, off);
    l_run1 += __shfl_xor_sync(0xffffffffu, l_run1, off);
  }
  const float inv0 = l_run0 > 0.0f ? 1.0f / l_run0 : 0.0f, inv1 = l_run1 > 0.0f ? 1.0f / l_run1 : 0.0f;
#pragma unroll
  for (int d = 0; d < DBLK; d++) {
    *reinterpret_cast<uint32_t *>(sQ + swz<HD>(m0, d * 8) + 2 * tq) = H16::pack2(o[d][0] * inv0, o[d][1] * inv0);
    *reinterpret_cast<uint32_t *>(sQ + swz<HD>(m1, d * 8) + 2 * tq) = H16::pack2(o[d][2] * inv1, o[d][3] * inv1);
  }
  __syncwarp();
  T *outg = static_cast<T *>(a.out);
#pragma unroll
  for (int idx = lane; idx < 16 * CPR; idx += 32) {
    const int m = warp * 16 + idx / CPR, c = idx % CPR, qi = m % BQ;
    if (qi < rows_here) {
      const long long dst = ((long long)(qb + q0 + qi) * a.num_heads + h_first + m / BQ) * HD + c * 8;
      *reinterpret_cast<uint4 *>(outg + dst) = *reinterpret_cast<const uint4 *>(sQ + swz<HD>(m, c * 8));
    }
  }
}

}  // namespace updraft::cuda::attn

#endif
