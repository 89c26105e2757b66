// attention_decode_tc_fp8.cuh — variant 4 over an FP8 E4M3 KV cache (`--kv-cache-dtype fp8`).
//
// Why: a throughput decode step is mostly this kernel streaming K/V (bench/NOTES.md); FP8 halves
// those bytes. Same work split, split-KV, per-warp cp.async pipelines, online softmax and warp merge
// as the 16-bit kernel (attention_decode_tc.cuh); what differs is how K and V reach the tensor cores.
//
// - There is no 8-bit ldmatrix on sm_90, so fragments are read from shared memory with 16-byte loads
//   and widened in registers (cvt.rn.f16x2.e4m3x2: two values per instruction, exact — every E4M3
//   value is an f16). The mma runs in f16 (f32 accumulate) whatever the activation dtype.
// - Q·Kᵀ sums over head dims in any order, so the k index of the mma is mapped to head dims to suit
//   the loads: in k-step kk, lane column tq's k = 2tq, 2tq+1 are dims tq·KD + 4kk + {0, 1} and
//   k = 2tq+8, 2tq+9 are dims tq·KD + 4kk + {2, 3} (KD = headDim / 4). Each lane then reads one
//   contiguous KD-byte slice of a k row, and each 4-byte word of it is one k-step's B fragment.
//   Q is loaded in the same order.
// - P·V's B fragment pairs positions (2tq, 2tq+1) and (2tq+8, 2tq+9) of one head dim: a lane reads
//   its VD = headDim / 8 dims of those four v rows and interleaves the bytes of two rows with one
//   prmt per 2 dims. Output column n of n8 block db is head dim n·VD + db (undone at the merge).
// - Q in f16: bf16 q can exceed f16's range, so each q-head row is scaled by a power of two that puts
//   its largest |q| in [2^14, 2^15) (exact, bf16 has fewer mantissa bits than f16), and the softmax
//   scale of that row is divided by the same power.
//
// Shared memory per warp stage: P positions × headDim bytes × (k, v), rows of 16-byte chunks
// swizzled by chunk ^ (row mod chunksPerRow), + a per-position bias. Two layouts (P, a template
// parameter; attention_decode_host.cuh picks):
// - P = 32: 8 KiB a stage at headDim 128 (as the 16-bit kernel's 16 positions), 2 stages, 4 warps:
//   66 KiB, 3 CTAs per SM, as the 16-position layout. The per-tile work that does not scale with
//   bytes (pipeline control, block-table lookups, the softmax's reductions, rescaling o) is paid once
//   per 8 KiB. The default: 326 µs, 88% of copy bandwidth at batch 512 × 1152 (NOTES run 29; 3
//   stages and 2 CTAs per SM were slower, 359 µs, run 24).
// - P = 16 (UPDRAFT_ATTN_FP8_WIDE_STAGES=0): 4 KiB a stage, 4 stages: 65 KiB, 3 CTAs per SM. 336 µs,
//   85%: instruction-bound, as many instructions as the 16-bit kernel for half the bytes (NOTES run 23).
#ifndef UPDRAFT_CUDA_ATTENTION_DECODE_TC_FP8_CUH
#define UPDRAFT_CUDA_ATTENTION_DECODE_TC_FP8_CUH

#include <cuda_fp8.h>

#include "attention_decode_tc.cuh"

namespace updraft::cuda::attn {

// P: positions per warp stage (16 or 32).
template <int HD, int P_> struct DecodeTcFp8Shape {
  static_assert(HD == 64 || HD == 128, "decode-tc fp8: headDim 64 or 128");
  static_assert(P_ == 16 || P_ == 32, "decode-tc fp8: 16 or 32 positions per stage");
  static constexpr int P = P_;
  // Stages per warp: P = 32 keeps the 16-position layout's 16 KiB per warp at headDim 128 (2 stages:
  // 66 KiB per CTA, 3 CTAs per SM); 3 stages (2 CTAs per SM) lost to it in GPU run 24.
  static constexpr int S = P == 32 && HD == 128 ? 2 : 4;
  static constexpr int NB = P / 8;                // n8 blocks of S = Q·Kᵀ per stage
  static constexpr int CPR = HD / 16;             // 16-byte chunks per row (a row is headDim bytes)
  static constexpr int STAGE_BYTES = 2 * P * HD;
  static constexpr int KSTEPS = HD / 16;
  static constexpr int DBLK = HD / 8;
  static constexpr int KD = HD / 4;               // head dims of a lane's k slice (one per quad column)
  static constexpr int VD = HD / 8;               // head dims of a lane's v slice (one per quad row)
};

template <int HD, int P> constexpr size_t decode_tc_fp8_smem_bytes() {
  using Sh = DecodeTcFp8Shape<HD, P>;
  return size_t(kTcWarps) * Sh::S * (Sh::STAGE_BYTES + Sh::P * sizeof(float));
}

// Two E4M3 values (the low 16 bits, low byte first) → an f16x2 register, exactly.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t bits) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(bits & 0xffffu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}

// Bytes [a0, b0, a1, b1] (lo) and [a2, b2, a3, b3] (hi) of two words: two rows' values of 4 dims.
__device__ __forceinline__ uint32_t interleave_lo(uint32_t a, uint32_t b) { return __byte_perm(a, b, 0x5140); }
__device__ __forceinline__ uint32_t interleave_hi(uint32_t a, uint32_t b) { return __byte_perm(a, b, 0x7362); }

// N / 4 words of N shared-memory bytes (N = 8 or 16) at a shared-space address.
template <int N> __device__ __forceinline__ void lds_words(uint32_t (&w)[N / 4], unsigned addr) {
  static_assert(N == 8 || N == 16, "lds_words: 8 or 16 bytes");
  if constexpr (N == 16)
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(w[0]), "=r"(w[1]), "=r"(w[2]), "=r"(w[3]) : "r"(addr));
  else
    asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];\n" : "=r"(w[0]), "=r"(w[1]) : "r"(addr));
}

template <typename T, int HD, int GC, int POSITIONS>
__global__ void __launch_bounds__(kTcThreads) attention_decode_tc_fp8_kernel(const Args a, const int num_splits,
                                                                             const int hsub) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  static_assert(GC >= 1 && GC <= 8, "decode-tc: up to 8 q heads per CTA");
  using Sh = DecodeTcFp8Shape<HD, POSITIONS>;
  using F16 = Half16<__half>;
  constexpr int S = Sh::S, CPR = Sh::CPR, KSTEPS = Sh::KSTEPS, DBLK = Sh::DBLK;
  constexpr int KD = Sh::KD, VD = Sh::VD;
  constexpr int NW = kTcWarps, P = Sh::P, NB = Sh::NB;
  extern __shared__ uint4 tc8_smem[];

  if (blockIdx.x == 0 && blockIdx.y == 0) validate_batch(a);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  DecodeCtaWork work;
  if (!decode_cta_work(a, num_splits, hsub, GC, work)) return;  // untouched row: uniform across the CTA
  const int kvh = work.kvh, split = work.split, t = work.t, s = work.s, c0 = work.c0, c1 = work.c1, h0 = work.h0;

  const int g = lane >> 2, tq = lane & 3;
  uint32_t qa[KSTEPS][2];  // Q as the A operand in f16 (loaded by the pipeline's prepare step)
  float sl = 0.0f;         // this row's softmax scale (log2 domain), divided by its q scaling
  float o[DBLK][4];
#pragma unroll
  for (int d = 0; d < DBLK; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run = neg_inf(), l_run = 0.0f;  // row g; l_run is this lane's partial (its 2 columns per n8 block)

  // Shared-space offsets from the stage base: chunk c of row r at r·HD + ((c ^ (r & (CPR-1))) << 4).
  constexpr unsigned kStageBytes = Sh::STAGE_BYTES, kVOff = P * HD;
  const unsigned warp_smem = static_cast<unsigned>(__cvta_generic_to_shared(tc8_smem)) + warp * S * kStageBytes;
  float *const bias_all = reinterpret_cast<float *>(reinterpret_cast<uint8_t *>(tc8_smem) + NW * S * kStageBytes) + warp * S * P;
  const int ntiles = (c1 - c0 + P - 1) / P;
  const int nt_w = ntiles > warp ? (ntiles - warp + NW - 1) / NW : 0;  // tiles warp, warp+NW, ...
  const long long kv_row = (long long)a.num_kv_heads * HD;  // bytes
  const uint8_t *const kc = static_cast<const uint8_t *>(a.k) + (long long)kvh * HD;
  const uint8_t *const vc = static_cast<const uint8_t *>(a.v) + (long long)kvh * HD;
  auto chunk_off = [](int row, int chunk) -> unsigned { return row * HD + ((chunk ^ (row & (CPR - 1))) << 4); };

  int bad = -1;  // a block id outside the cache, reported after the loop
  auto lookup = [&](int k) -> int {  // position lane mod P of the warp's k-th tile
    const int pos = c0 + (warp + k * NW) * P + (lane & (P - 1));
    return pos < c1 ? cache_row(a, s, pos, bad) : -1;
  };
  auto issue = [&](int stage, int crow) {
    issue_stage_rows<HD, P>(warp_smem + stage * kStageBytes, kVOff, kc, vc, kv_row, crow, bias_all + stage * P, lane);
  };

  // Q, row g = head h0 + g (g < GC; rows g + 8 are 0), in the k order above.
  auto load_q = [&]() {
    float qf[KD];
    const T *qp = static_cast<const T *>(a.q) + ((long long)t * a.num_heads + h0 + (g < GC ? g : 0)) * HD + tq * KD;
#pragma unroll
    for (int c = 0; c < KD / 8; c++) Half16<T>::to_f32x8(*reinterpret_cast<const uint4 *>(qp + c * 8), qf + c * 8);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < KD; i++) amax = fmaxf(amax, fabsf(qf[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    // e with amax < 2^e: frexpf's exponent, read from the bits (a subnormal amax gives -126, still
    // an upper bound); 0 for amax 0, inf or NaN (then the row is garbage in any dtype).
    const int biased = static_cast<int>((__float_as_uint(amax) >> 23) & 0xffu);
    const int e = amax > 0.0f && biased != 0xff ? biased - 126 : 0;
    // Scale by 2^q_exp as two exact power-of-two factors (q_exp is in [-113, 141]; each half fits an
    // f32 exponent).
    const int q_exp = 15 - e, q_exp1 = q_exp / 2, q_exp2 = q_exp - q_exp1;
    const float f1 = __uint_as_float(static_cast<uint32_t>(127 + q_exp1) << 23);
    const float f2 = __uint_as_float(static_cast<uint32_t>(127 + q_exp2) << 23);
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
      qa[kk][0] = g < GC ? F16::pack2(qf[4 * kk] * f1 * f2, qf[4 * kk + 1] * f1 * f2) : 0u;
      qa[kk][1] = g < GC ? F16::pack2(qf[4 * kk + 2] * f1 * f2, qf[4 * kk + 3] * f1 * f2) : 0u;
    }
    sl = a.scale * kLog2e / f1 / f2;
  };
  decode_tc_pipeline<S>(nt_w, lookup, issue, load_q, [&](int stage) {
    const unsigned st = warp_smem + stage * kStageBytes;
    const float *bias = bias_all + stage * P;

    // S = Q · Kᵀ: 16 (heads) × P (positions); n8 block nb's column g is position nb·8 + g.
    float sc[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
      sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
      const int row = nb * 8 + g;
#pragma unroll
      for (int i = 0; i < KD / 16; i++) {
        uint32_t w[4];
        lds_words<16>(w, st + chunk_off(row, tq * (KD / 16) + i));
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const uint32_t af[4] = {qa[4 * i + j][0], 0u, qa[4 * i + j][1], 0u};
          mma_16816<__half>(sc[nb], af, e4m3x2_to_f16x2(w[j]), e4m3x2_to_f16x2(w[j] >> 16));
        }
      }
    }
    float xv[NB][2];
    decode_tc_softmax<HD, NB>(sc, sl, bias, tq, m_run, l_run, o, xv);

    // O += P · V, one k-step per 16 positions (h): P is the A operand (rows g + 8 are 0); the B
    // fragment of block db is v rows 16h + (2tq, 2tq+1) and 16h + (2tq+8, 2tq+9) at head dim g·VD + db.
#pragma unroll
    for (int h = 0; h < P / 16; h++) {
      const uint32_t pa[4] = {F16::pack2(xv[2 * h][0], xv[2 * h][1]), 0u, F16::pack2(xv[2 * h + 1][0], xv[2 * h + 1][1]), 0u};
      uint32_t v[4][VD / 4];  // rows 16h + 2tq, +1, +8, +9: bytes [g·VD, g·VD + VD)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int row = 16 * h + 2 * tq + (r & 1) + (r >> 1) * 8;
        lds_words<VD>(v[r], st + kVOff + chunk_off(row, (g * VD) >> 4) + ((g * VD) & 15));
      }
#pragma unroll
      for (int j = 0; j < VD / 4; j++) {
        const uint32_t lo01 = interleave_lo(v[0][j], v[1][j]), hi01 = interleave_hi(v[0][j], v[1][j]);
        const uint32_t lo89 = interleave_lo(v[2][j], v[3][j]), hi89 = interleave_hi(v[2][j], v[3][j]);
        mma_16816<__half>(o[4 * j], pa, e4m3x2_to_f16x2(lo01), e4m3x2_to_f16x2(lo89));
        mma_16816<__half>(o[4 * j + 1], pa, e4m3x2_to_f16x2(lo01 >> 16), e4m3x2_to_f16x2(lo89 >> 16));
        mma_16816<__half>(o[4 * j + 2], pa, e4m3x2_to_f16x2(hi01), e4m3x2_to_f16x2(hi89));
        mma_16816<__half>(o[4 * j + 3], pa, e4m3x2_to_f16x2(hi01 >> 16), e4m3x2_to_f16x2(hi89 >> 16));
      }
    }
  });
  report_bad_block(a, s, bad);

  // The quad's partial sums of row g.
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);

  decode_tc_merge<T, HD, GC>(a, tc8_smem, o, m_run, l_run, warp, g, tq, t, h0, split, num_splits,
                             [](int db, int col) { return col * VD + db; });
}

}  // namespace updraft::cuda::attn

#endif
