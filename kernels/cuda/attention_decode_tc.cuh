// attention_decode_tc.cuh — variant 4: paged decode attention on tensor cores (flash-decoding).
//
// Same work split as variant 2 (attention_decode.cuh): one CTA per (query row, kv head, head
// subgroup, split) — or per sequence instead of row when variant 5 hands it the single-row sequences
// of a mixed step (Args::rows) — rows looked up on the device, split-KV with the same split_range and the same
// partial layout / reduce kernel, 4 warps with warp-private cp.async pipelines and no CTA barriers in
// the main loop. What differs is the arithmetic: the GC (≤ 8) q heads of the GQA group are the M rows
// of mma.sync.m16n8k16 (rows GC..15 are zero), so per 16 positions a warp issues HD/16 ldmatrix + HD/8
// mma for S = Q·Kᵀ and HD/16 ldmatrix.trans + HD/8 mma for O += P·V, instead of the ~1800 CUDA-core
// instructions variant 2 needs: the tensor cores waste 7/8 of their work, which costs nothing here,
// and the instruction count per k/v byte drops ~10x, which is what lets one SM keep up with its share
// of HBM bandwidth.
//
// Warp stage: 16 positions of k and v, copied whole rows per cp.async instruction (issue_stage_rows;
// 10-25% faster than 32 bytes of 16 rows per instruction, bench/NOTES.md run 19) into swizzled
// 16-byte chunks (chunk ^ (row & 7), so ldmatrix is conflict free), plus a per-position bias (0, or
// -inf for masked block ids and positions past the split). Fragments (lane = 4·g + t): S rows g
// (heads), columns 2t, 2t+1 of each n8 block (positions); rows g + 8 are never used. Online softmax
// on those fragments in f32, log2 domain.
//
// q / cache / out all bf16 or all f16; head dim 64 or 128; any block size; GQA chunk 1, 2, 4 or 8.
// Shared memory: 4 warps × S stages × 2 · 16 · headDim · 2 bytes + bias = 64.5 KiB (headDim 64, S 4)
// / 96.75 KiB (headDim 128, S 3).
#ifndef UPDRAFT_CUDA_ATTENTION_DECODE_TC_CUH
#define UPDRAFT_CUDA_ATTENTION_DECODE_TC_CUH

#include "attention_decode.cuh"

namespace updraft::cuda::attn {

constexpr int kTcWarps = 4;
constexpr int kTcThreads = kTcWarps * 32;
constexpr int kTcP = 16;  // positions per warp stage

template <int HD> struct DecodeTcShape {
  static_assert(HD == 64 || HD == 128, "decode-tc: headDim 64 or 128");
  static constexpr int S = HD == 128 ? 3 : 4;     // stages per warp
  static constexpr int CPR = HD / 8;              // 16-byte chunks per row
  static constexpr int STAGE_ELEMS = 2 * kTcP * HD;
  static constexpr int KSTEPS = HD / 16;
  static constexpr int DBLK = HD / 8;
};

template <int HD> constexpr size_t decode_tc_smem_bytes() {
  using Sh = DecodeTcShape<HD>;
  return size_t(kTcWarps) * Sh::S * (Sh::STAGE_ELEMS * 2 + kTcP * sizeof(float));
}

// The per-warp cp.async pipeline of the variant-4 kernels: the warp's tiles k = 0 .. nt_w-1 flow
// through S shared-memory stages. lookup(k): the cache row this lane copies for tile k (its block
// table entry is read S tiles ahead of use); issue(stage, row): start that copy into `stage`;
// compute(stage): consume a landed tile; prepare(): the CTA's own setup (loading q), run once the
// first copies are in flight so that its global-load latency overlaps theirs. No CTA barrier: each
// warp owns its stages.
template <int S, typename Lookup, typename Issue, typename Prepare, typename Compute>
__device__ __forceinline__ void decode_tc_pipeline(int nt_w, Lookup &&lookup, Issue &&issue, Prepare &&prepare,
                                                   Compute &&compute) {
#pragma unroll
  for (int st = 0; st < S - 1; st++) {
    if (st < nt_w) issue(st, lookup(st));
    cp_async_commit();
  }
  int next_row = (S - 1 < nt_w) ? lookup(S - 1) : -1;
  prepare();
  int st_issue = S - 1, st_comp = 0;  // stage of the next issue / of the tile computed now
  for (int k = 0; k < nt_w; k++) {
    if (k + S - 1 < nt_w) issue(st_issue, next_row);
    cp_async_commit();
    st_issue = st_issue == S - 1 ? 0 : st_issue + 1;
    if (k + S < nt_w) next_row = lookup(k + S);
    cp_async_wait<S - 1>();
    __syncwarp();
    compute(st_comp);
    st_comp = st_comp == S - 1 ? 0 : st_comp + 1;
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  cp_async_wait<0>();
}

// Starts copying one warp stage — POSITIONS (16 or 32) positions' k and v rows of ROW_BYTES each,
// into swizzled rows (chunk c of row r at chunk c ^ (r & min(7, chunks − 1))) — with whole rows per
// cp.async instruction: lane = (row ri, chunk c), so one instruction covers 32 / chunks full rows.
// (32 bytes of each of 16 rows per instruction, the first layout, left the FP8 kernel at 70% of copy
// bandwidth with L2 busier than DRAM: bench/NOTES.md.) crow: the cache row of position
// lane mod POSITIONS of the tile, -1 when masked (zero-filled, bias -inf); kbase / vbase: this CTA's
// kv head in row 0.
template <int ROW_BYTES, int POSITIONS = kTcP>
__device__ __forceinline__ void issue_stage_rows(unsigned st, unsigned v_off, const uint8_t *kbase, const uint8_t *vbase,
                                                 long long row_stride, int crow, float *bias, int lane) {
  constexpr int CPR = ROW_BYTES / 16, RPI = 32 / CPR, SW = CPR < 8 ? CPR - 1 : 7;
  static_assert(CPR >= 2 && CPR <= 32 && POSITIONS % RPI == 0 && POSITIONS <= 32, "issue_stage_rows: row size");
  const int ri = lane / CPR, c = lane % CPR;
#pragma unroll
  for (int q = 0; q < POSITIONS / RPI; q++) {
    const int row = ri + q * RPI;
    const int rq = __shfl_sync(0xffffffffu, crow, row);
    const long long off = rq >= 0 ? (long long)rq * row_stride + c * 16 : 0;
    const int bytes = rq >= 0 ? 16 : 0;  // masked / past-the-end rows: zero-filled, never read
    const unsigned dst = st + row * ROW_BYTES + ((c ^ (row & SW)) << 4);
    cp_async16_s(dst, kbase + off, bytes);
    cp_async16_s(dst + v_off, vbase + off, bytes);
  }
  if (lane < POSITIONS) bias[lane] = crow >= 0 ? 0.0f : neg_inf();
}

// One tile's online softmax on q-head row g of a variant-4 warp: scores sc (columns 2·tq, 2·tq + 1
// of NB n8 blocks; the quad holds the tile's NB·8 positions) → weights xv in the log2 domain, with
// the running max / this lane's partial sum updated and the accumulator o rescaled.
template <int HD, int NB>
__device__ __forceinline__ void decode_tc_softmax(const float (&sc)[NB][4], float sl, const float *bias, int tq,
                                                  float &m_run, float &l_run, float (&o)[HD / 8][4],
                                                  float (&xv)[NB][2]) {
#pragma unroll
  for (int nb = 0; nb < NB; nb++)
#pragma unroll
    for (int e = 0; e < 2; e++) xv[nb][e] = fmaf(sc[nb][e], sl, bias[nb * 8 + 2 * tq + e]);
  float mx = fmaxf(xv[0][0], xv[0][1]);
#pragma unroll
  for (int nb = 1; nb < NB; nb++) mx = fmaxf(mx, fmaxf(xv[nb][0], xv[nb][1]));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m_run, mx);
  const float m_use = m_new == neg_inf() ? 0.0f : m_new;  // nothing visible yet: weights stay 0
  const float corr = fast_exp2(m_run - m_use);
  m_run = m_new;
  float ls = 0.0f;
#pragma unroll
  for (int nb = 0; nb < NB; nb++)
#pragma unroll
    for (int e = 0; e < 2; e++) {
      xv[nb][e] = fast_exp2(xv[nb][e] - m_use);
      ls += xv[nb][e];
    }
  l_run = l_run * corr + ls;
#pragma unroll
  for (int d = 0; d < HD / 8; d++) {
    o[d][0] *= corr;
    o[d][1] *= corr;
  }
}

// The end of a variant-4 CTA: merges its warps' (o, m, l) through shared memory (reusing the pipeline
// buffers, as variant 2 does) and writes out (one split) or this split's partials. o is the warp's
// accumulator of q-head row g (< GC), columns 2·tq, 2·tq + 1 of each n8 block db; dim_of(db, col) is
// the head dim of column col of block db in the caller's layout. l_run is already the quad's sum.
template <typename T, int HD, int GC, typename DimOf>
__device__ __forceinline__ void decode_tc_merge(const Args &a, uint4 *smem, const float (&o)[HD / 8][4], float m_run,
                                                float l_run, int warp, int g, int tq, int t, int h0, int split,
                                                int num_splits, DimOf dim_of) {
  constexpr int NW = kTcWarps, DBLK = HD / 8;
  __syncthreads();
  float *const macc = reinterpret_cast<float *>(smem);  // [NW][GC][HD]
  float *const mm = macc + NW * GC * HD;                 // [NW][GC]
  float *const ml = mm + NW * GC;                        // [NW][GC]
  if (g < GC) {
#pragma unroll
    for (int d = 0; d < DBLK; d++) {
      macc[(warp * GC + g) * HD + dim_of(d, 2 * tq)] = o[d][0];
      macc[(warp * GC + g) * HD + dim_of(d, 2 * tq + 1)] = o[d][1];
    }
    if (tq == 0) {
      mm[warp * GC + g] = m_run;
      ml[warp * GC + g] = l_run;
    }
  }
  __syncthreads();
  merge_warp_partials<T, HD, GC, NW>(a, macc, mm, ml, t, h0, split, num_splits);
}

template <typename T, int HD, int GC>
__global__ void __launch_bounds__(kTcThreads) attention_decode_tc_kernel(const Args a, const int num_splits, const int hsub) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  static_assert(GC >= 1 && GC <= 8, "decode-tc: up to 8 q heads per CTA");
  using Sh = DecodeTcShape<HD>;
  using H16 = Half16<T>;
  constexpr int S = Sh::S, KSTEPS = Sh::KSTEPS, DBLK = Sh::DBLK;
  constexpr int NW = kTcWarps, P = kTcP;
  extern __shared__ uint4 tc_smem[];

  if (blockIdx.x == 0 && blockIdx.y == 0) validate_batch(a);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  DecodeCtaWork work;
  if (!decode_cta_work(a, num_splits, hsub, GC, work)) return;  // untouched row: uniform across the CTA
  const int kvh = work.kvh, split = work.split, t = work.t, s = work.s, c0 = work.c0, c1 = work.c1, h0 = work.h0;

  const int g = lane >> 2, tq = lane & 3;
  uint32_t qa[KSTEPS][2];  // Q as the A operand (loaded by the pipeline's prepare step)
  const float sl = a.scale * kLog2e;
  float o[DBLK][4];
#pragma unroll
  for (int d = 0; d < DBLK; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run = neg_inf(), l_run = 0.0f;  // row g; l_run is this lane's partial (its 2 columns per n8 block)

  // Shared-space addresses, as offsets from the stage base. Column chunk c of row r sits at chunk
  // (c ^ (r & 7)) of the row. Rows are whole multiples of 128 bytes, so when c = c0 ^ x with x
  // touching only bits that (c0 ^ (r & 7)) carries unchanged, the offset is offset(c0) ^ (x << 4):
  // one XOR per ldmatrix / cp.async instead of recomputing the swizzle (emulate_decode_tc.py checks
  // these offsets against the plain formula).
  constexpr unsigned kRowBytes = HD * 2, kStageBytes = Sh::STAGE_ELEMS * 2, kVOff = P * HD * 2;
  const unsigned warp_smem = static_cast<unsigned>(__cvta_generic_to_shared(tc_smem)) + warp * S * kStageBytes;
  float *const bias_all = reinterpret_cast<float *>(reinterpret_cast<T *>(tc_smem) + NW * S * Sh::STAGE_ELEMS) + warp * S * P;
  const int ntiles = (c1 - c0 + P - 1) / P;
  const int nt_w = ntiles > warp ? (ntiles - warp + NW - 1) / NW : 0;  // tiles warp, warp+NW, ...
  // ldmatrix rows: K (non-trans) rows (lane & 7) + 8·(lane >> 4), chunk 2·kk + ((lane >> 3) & 1);
  // V (trans) rows (lane & 7) + 8·((lane >> 3) & 1), chunk 2·db2 + (lane >> 4).
  const unsigned k_off = ((lane & 7) + ((lane >> 4) << 3)) * kRowBytes + ((((lane >> 3) & 1) ^ (lane & 7)) << 4);
  const unsigned v_off = kVOff + ((lane & 7) + (((lane >> 3) & 1) << 3)) * kRowBytes + (((lane >> 4) ^ (lane & 7)) << 4);
  const long long kv_row_bytes = (long long)a.num_kv_heads * HD * 2;
  const uint8_t *const kc = reinterpret_cast<const uint8_t *>(static_cast<const T *>(a.k) + (long long)kvh * HD);
  const uint8_t *const vc = reinterpret_cast<const uint8_t *>(static_cast<const T *>(a.v) + (long long)kvh * HD);

  int bad = -1;  // a block id outside the cache, reported after the loop
  auto lookup = [&](int k) -> int {  // position lane & 15 of the warp's k-th tile
    const int pos = c0 + (warp + k * NW) * P + (lane & (P - 1));
    return pos < c1 ? cache_row(a, s, pos, bad) : -1;
  };
  auto issue = [&](int stage, int crow) {
    issue_stage_rows<HD * 2>(warp_smem + stage * kStageBytes, kVOff, kc, vc, kv_row_bytes, crow, bias_all + stage * P, lane);
  };

  // Q: row g = head h0 + g (g < GC), columns = head dims. Rows g + 8 (a1, a3) are 0.
  auto load_q = [&]() {
    const T *qp = static_cast<const T *>(a.q) + ((long long)t * a.num_heads + h0 + (g < GC ? g : 0)) * HD + 2 * tq;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      qa[kk][0] = g < GC ? *reinterpret_cast<const uint32_t *>(qp + kk * 16) : 0u;
      qa[kk][1] = g < GC ? *reinterpret_cast<const uint32_t *>(qp + kk * 16 + 8) : 0u;
    }
  };
  decode_tc_pipeline<S>(nt_w, lookup, issue, load_q, [&](int stage) {
    const unsigned st = warp_smem + stage * kStageBytes;
    const float *bias = bias_all + stage * P;

    // S = Q · Kᵀ: 16 (heads) × 16 (positions).
    float sc[2][4];
#pragma unroll
    for (int nb = 0; nb < 2; nb++) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      uint32_t b[4];
      ldmatrix_x4_s(b, st + (k_off ^ (kk << 5)));
      const uint32_t af[4] = {qa[kk][0], 0u, qa[kk][1], 0u};
      mma_16816<T>(sc[0], af, b[0], b[1]);
      mma_16816<T>(sc[1], af, b[2], b[3]);
    }
    float xv[2][2];
    decode_tc_softmax<HD, 2>(sc, sl, bias, tq, m_run, l_run, o, xv);
    // O += P · V: P is the A operand of one k-step (16 positions); rows g + 8 are 0.
    const uint32_t pa[4] = {H16::pack2(xv[0][0], xv[0][1]), 0u, H16::pack2(xv[1][0], xv[1][1]), 0u};
#pragma unroll
    for (int db2 = 0; db2 < HD / 16; db2++) {
      uint32_t b[4];
      ldmatrix_x4_trans_s(b, st + (v_off ^ (db2 << 5)));
      mma_16816<T>(o[2 * db2], pa, b[0], b[1]);
      mma_16816<T>(o[2 * db2 + 1], pa, b[2], b[3]);
    }
  });
  report_bad_block(a, s, bad);

  // The quad's partial sums of row g.
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);

  decode_tc_merge<T, HD, GC>(a, tc_smem, o, m_run, l_run, warp, g, tq, t, h0, split, num_splits,
                             [](int db, int col) { return db * 8 + col; });
}

}  // namespace updraft::cuda::attn

#endif
