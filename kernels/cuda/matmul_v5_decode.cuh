// matmul variant 5 — small M (decode, M <= 16): a persistent, balanced stream over W.
//
// Same arithmetic as variant 2 (read that header first): yᵀ[N, M] = W[N, K] · xᵀ on the tensor cores
// (mma.sync m16n8k16), a "tile" being 16 rows of W (the MMA's A operand) and a "chunk" 32 k of them
// (1 KB of bf16/f16). Lane (g = lane/4, t = lane%4) loads W[n0+g][32c+8t .. +8] and W[n0+g+8][same] with
// one 16-byte load each, and x[g][same] (x[g+8] too when M > 8), and feeds them to two MMAs under v2's
// fixed k-permutation (words 0,1 to MMA #1, words 2,3 to MMA #2; identical for A and B).
//
// What changes against v2, and why (v2 streamed W at 40–60 % of copy bandwidth on an H200):
//
//  1. Persistent, balanced grid. v2 launches one 8-warp block per tile (qkv: 384 blocks on 132 SMs),
//     and each warp does only a few load→use rounds. v5 launches G = min(tiles, #SMs) blocks of 16
//     warps, one per SM (__launch_bounds__(512, 1): up to 128 registers a thread), and gives block b
//     the contiguous tiles [b·T/G, (b+1)·T/G). Every block then streams the same amount of W to within
//     one tile (qkv 2.91 tiles per SM → 3: 97 %; o/down 1.94 → 2: 97 %; gate_up 13.6 → 14: 97 %;
//     lm_head 60.7 → 61: 99.5 %); no second wave, no block launch/drain in the middle of the stream.
//
//  2. Balanced split inside the block, one barrier. The block's (tile, chunk) work items, tile-major,
//     are cut into NW = 16 contiguous, equal ranges (±1 chunk), one per warp. A warp's range is a run
//     of segments: (tile, [cb, ce)) pieces, all complete tiles except possibly its first and its last.
//     A complete tile goes straight to y (bias added in f32, one rounding). A partial one is written
//     as f32 to the warp's shared-memory slot (slot 0: its first segment, slot 1: its last), and after
//     the block's only __syncthreads the first warp touching a split tile sums that tile's partials in
//     warp order, adds the bias and stores y. No atomics, no workspace, no second kernel: the result
//     depends only on (N, K, the number of SMs), so it is bit-for-bit reproducible run to run and the
//     same for every M (an output element never depends on the other rows of x).
//
//  3. Software-pipelined stream in registers. Within a segment, a warp keeps two register stages of U
//     chunks (W: 2·U 16-byte loads a lane, x: NB·U) and issues stage i+1's loads before it runs stage
//     i's MMAs, so its loads stay in flight across iterations (v2 drained each warp's pipe between
//     rounds). Bytes of W in flight per SM: 16 warps × up to 2 stages × U KB = 64 KB (NB 2, U 2) to
//     96 KB (NB 1, U 3), against the ~33 KB the latency-bandwidth product asks (4.3 TB/s / 132 SMs ×
//     ~1 µs). U is set so that both stages fit in the 128-register budget of a 512-thread block.
//     W loads are ld.global.nc.L1::no_allocate with an L2::256B prefetch hint (a lane group reads 64 B
//     of a row per instruction and the warp reads the row on, 64 B per chunk, so the rest of the 256 B
//     is asked for shortly after anyway); x (≤ 16 × K, re-read by each tile's warps) goes through L1.
//     The loads are `asm volatile` so that the compiler keeps them ahead of the (volatile) MMAs as
//     written; the per-chunk "does this chunk exist" tests are warp-uniform.
//
//  4. Programmatic dependent launch (pdl.cuh). v5 is launched with the PDL attribute and the kernels
//     that produce its x (rmsnorm, silu_mul, the attention kernels, gather_rows) let dependents start
//     early, so each warp issues its first stage of W before pdl_wait() — while that producer (often a
//     few blocks on a few SMs at batch 1) finishes — and reads x and writes y only after it.
//
// Index math (v5_* helpers below) is shared with the host emulation in
// kernels/dev/matmul/emulate_v5.cu, which checks on the host that every (row, k) of every shape it tries
// is multiplied exactly once, that each stage is loaded before it is used and not overwritten before,
// and that the reduction picks up every partial once.
//
// Not covered: a split of one tile across blocks. When N/16 < #SMs only N/16 SMs work (small shapes,
// not the model's projections); v2 remains the better kernel there.
//
// Takes: x and W both bf16 or both f16, M <= 16, K % 8 == 0 and K > 0, K and N below 2^30, x and W
// 16-byte aligned; y any float dtype; bias any float dtype or none.
#ifndef UPDRAFT_CUDA_MATMUL_V5_DECODE_CUH
#define UPDRAFT_CUDA_MATMUL_V5_DECODE_CUH

#include <algorithm>
#include <type_traits>

#include "matmul_common.cuh"
#include "matmul_ptx.cuh"
#include "pdl.cuh"

namespace updraft::cuda::matmul_detail {

constexpr int kV5MaxM = 16;
constexpr int kV5Warps = 16;  // NW: warps per block (one block per SM)
constexpr int kV5Threads = kV5Warps * 32;
constexpr int kV5ChunkK = 32;  // k per chunk; a tile is 16 rows of W
// U: chunks per register stage (two stages). NB = 1 (M <= 8): 2·U W + U x vectors a stage;
// NB = 2: 2·U + 2·U. Both stay near 32–36 registers a stage.
template <int NB> struct V5Unroll {
  static constexpr int value = NB == 1 ? 3 : 2;
};

// ---- index math, shared with the host emulation -------------------------------------------------
// Tiles [v5_cta_tile(b), v5_cta_tile(b + 1)) of T belong to block b of G.
__host__ __device__ __forceinline__ int64_t v5_cta_tile(int64_t b, int64_t tiles, int64_t ctas) {
  return b * tiles / ctas;
}
// First work item of warp w when a block has `total` items (tile-major: item = local tile · C + chunk).
__host__ __device__ __forceinline__ int64_t v5_warp_begin(int64_t w, int64_t total) { return w * total / kV5Warps; }
// The warp whose (non-empty) range holds item i: the largest w with v5_warp_begin(w) <= i.
__host__ __device__ __forceinline__ int v5_warp_of(int64_t i, int64_t total) {
  return static_cast<int>(((i + 1) * kV5Warps - 1) / total);
}
// The segment that starts at item i of a warp whose range ends at ie: local tile lt, chunks [cb, ce).
__host__ __device__ __forceinline__ void v5_segment_at(int64_t i, int64_t ie, int64_t chunks, int64_t &lt, int &cb,
                                                       int &ce) {
  lt = i / chunks;
  cb = static_cast<int>(i - lt * chunks);
  const int64_t end = cb + (ie - i);
  ce = static_cast<int>(end < chunks ? end : chunks);
}
// Shared-memory slot of warp w's partial of local tile lt: 0 when lt is the warp's first tile, else 1
// (its last). Only the first and the last segment of a range can be partial.
__host__ __device__ __forceinline__ int v5_slot(int64_t warp_begin_item, int64_t lt, int64_t chunks) {
  return warp_begin_item / chunks == lt ? 0 : 1;
}

// The two-stage register pipeline over chunks [cb, ce) of one tile: load(S, c0) fills stage S with
// chunks c0 .. c0+U-1 (those < ce), compute(S, c0) multiplies them. S is a compile-time constant
// (std::integral_constant), so the stage arrays stay in registers.
#pragma nv_exec_check_disable
template <int U, typename Load, typename Compute>
__host__ __device__ __forceinline__ void v5_pipeline(int cb, int ce, Load &&load, Compute &&compute) {
  using S0 = std::integral_constant<int, 0>;
  using S1 = std::integral_constant<int, 1>;
  if (cb >= ce) return;
  load(S0{}, cb);
  for (int c = cb; c < ce; c += 2 * U) {
    if (c + U < ce) load(S1{}, c + U);
    compute(S0{}, c);
    if (c + U >= ce) break;
    if (c + 2 * U < ce) load(S0{}, c + 2 * U);
    compute(S1{}, c + U);
  }
}

// ---- device code ---------------------------------------------------------------------------------
// W: read once, not kept in L1; the 256-byte L2 prefetch hint pulls the rest of the row piece early.
// volatile: stays in program order with the MMAs (also volatile), i.e. ahead of the previous stage's math.
// (The L2 prefetch size needs sm_80; compiled for older targets, where the host never runs v5, it is left off.)
__device__ __forceinline__ uint4 v5_ld_w(const void *p) {
  uint4 v;
#if UD_MATMUL_PRE_SM80
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
#else
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
#endif
  return v;
}
// x: re-read by the warps of every tile; cached in L1.
__device__ __forceinline__ uint4 v5_ld_x(const void *p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// Resources (nvcc 13.0, sm_90a): see kernels/dev/matmul/PREDICTIONS.md (v5 section); no local memory.
template <typename T, typename TY, int NB, int U>
__global__ void __launch_bounds__(kV5Threads, 1)
    matmul_v5_kernel(const T *__restrict__ x, const T *__restrict__ w, const void *__restrict__ bias,
                     int32_t bias_dtype, TY *__restrict__ y, int m, int n, int k, int64_t tiles, int64_t chunks) {
  // part[warp][slot][row within the tile][m]; +1 against bank conflicts in the column-wise sums.
  __shared__ float part[kV5Warps][2][16][NB * 8 + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;

  const int64_t tb = v5_cta_tile(blockIdx.x, tiles, gridDim.x);
  const int64_t total = (v5_cta_tile(blockIdx.x + 1, tiles, gridDim.x) - tb) * chunks;
  const int64_t ib = v5_warp_begin(warp, total), ie = v5_warp_begin(warp + 1, total);

  const T *x_ptr[NB];
  bool x_row[NB];
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
    x_row[nb] = nb * 8 + g < m;
    x_ptr[nb] = x + int64_t(x_row[nb] ? nb * 8 + g : 0) * k + 8 * t;
  }
  const uint4 zero = make_uint4(0, 0, 0, 0);
  bool dependency_resolved = false;  // pdl_wait() done (a warp with no work never needs it)

  for (int64_t i = ib; i < ie;) {
    int64_t lt;
    int cb, ce;
    v5_segment_at(i, ie, chunks, lt, cb, ce);
    const int64_t n0 = (tb + lt) * 16;
    const bool row_a = n0 + g < n, row_b = n0 + g + 8 < n;
    const T *wa_ptr = w + (row_a ? n0 + g : 0) * int64_t(k) + 8 * t;
    const T *wb_ptr = w + (row_b ? n0 + g + 8 : 0) * int64_t(k) + 8 * t;

    float acc[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; nb++) acc[nb][0] = acc[nb][1] = acc[nb][2] = acc[nb][3] = 0.0f;

    uint4 wa[2][U], wb[2][U], xv[2][NB][U];
    auto load = [&](auto stage, int c0) {
      constexpr int S = decltype(stage)::value;
      // k % 8 == 0: a lane's 8 elements are all inside K or all outside.
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int kk = (c0 + u) * kV5ChunkK;
        const bool in = c0 + u < ce && kk + 8 * t < k;
        wa[S][u] = (in && row_a) ? v5_ld_w(wa_ptr + kk) : zero;
        wb[S][u] = (in && row_b) ? v5_ld_w(wb_ptr + kk) : zero;
      }
      // W is the model's, written by no earlier kernel: the warp's first stage of it is in flight
      // before the wait for the kernel that writes x (pdl.cuh); x and y are touched only after it.
      if (!dependency_resolved) {
        pdl_wait();
        dependency_resolved = true;
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int kk = (c0 + u) * kV5ChunkK;
        const bool in = c0 + u < ce && kk + 8 * t < k;
#pragma unroll
        for (int nb = 0; nb < NB; nb++) xv[S][nb][u] = (in && x_row[nb]) ? v5_ld_x(x_ptr[nb] + kk) : zero;
      }
    };
    auto compute = [&](auto stage, int c0) {
      constexpr int S = decltype(stage)::value;
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (c0 + u >= ce) break;  // warp-uniform
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
          mma_16816<T>(acc[nb], wa[S][u].x, wb[S][u].x, wa[S][u].y, wb[S][u].y, xv[S][nb][u].x, xv[S][nb][u].y);
          mma_16816<T>(acc[nb], wa[S][u].z, wb[S][u].z, wa[S][u].w, wb[S][u].w, xv[S][nb][u].z, xv[S][nb][u].w);
        }
      }
    };
    v5_pipeline<U>(cb, ce, load, compute);

    // D fragment: acc[nb][0..1] = yᵀ[n0+g][nb*8+2t+{0,1}], acc[nb][2..3] = yᵀ[n0+g+8][same].
    if (cb == 0 && ce == chunks) {  // the whole tile: straight to y
#pragma unroll
      for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int64_t col = n0 + g + 8 * h;
          if (col >= n) continue;
          const float b = bias_at(bias, bias_dtype, col);
#pragma unroll
          for (int j = 0; j < 2; j++) {
            const int row = nb * 8 + 2 * t + j;
            if (row < m) y[int64_t(row) * n + col] = from_float<TY>(acc[nb][2 * h + j] + b);
          }
        }
    } else {
      const int slot = v5_slot(ib, lt, chunks);
#pragma unroll
      for (int nb = 0; nb < NB; nb++) {
        part[warp][slot][g][nb * 8 + 2 * t] = acc[nb][0];
        part[warp][slot][g][nb * 8 + 2 * t + 1] = acc[nb][1];
        part[warp][slot][g + 8][nb * 8 + 2 * t] = acc[nb][2];
        part[warp][slot][g + 8][nb * 8 + 2 * t + 1] = acc[nb][3];
      }
    }
    i += ce - cb;
  }

  __syncthreads();  // every warp reaches it (no early exit above)

  // Split tiles: the first warp touching one sums its partials, warp by warp in order. A tile is split
  // when its first and last items belong to different warps; its first warp's range then ends in it.
  if (ib < ie) {
    const int64_t lt = (ie - 1) / chunks;
    const int first = v5_warp_of(lt * chunks, total), last = v5_warp_of((lt + 1) * chunks - 1, total);
    if (first == warp && last != warp) {
      const int64_t n0 = (tb + lt) * 16;
      for (int o = lane; o < 16 * m; o += 32) {
        const int r = o & 15, c = o >> 4;  // consecutive lanes: consecutive columns of y
        const int64_t col = n0 + r;
        if (col >= n) continue;
        float s = 0.0f;
        for (int v = first; v <= last; v++) {
          const int64_t vb = v5_warp_begin(v, total);
          if (vb == v5_warp_begin(v + 1, total)) continue;  // an empty range (total < NW) wrote nothing
          s += part[v][v5_slot(vb, lt, chunks)][r][c];
        }
        y[int64_t(c) * n + col] = from_float<TY>(s + bias_at(bias, bias_dtype, col));
      }
    }
  }
}

inline bool v5_accepts(const Problem &p, std::string *why) {
  auto no = [&](const std::string &reason) {
    if (why) *why = "variant 5 (persistent decode stream) " + reason;
    return false;
  };
  if (!tensor_core_dtypes(p)) return no("needs x and W both bf16 or both f16");
  if (p.m > kV5MaxM) return no("takes M <= " + std::to_string(kV5MaxM) + " (" + dims_string(p) + ")");
  if (p.k <= 0 || p.k % 8 != 0) return no("needs K a positive multiple of 8 (" + dims_string(p) + ")");
  if (p.k >= (int64_t(1) << 30) || p.n >= (int64_t(1) << 30)) return no("takes K and N below 2^30");
  if ((p.x && !aligned16(p.x)) || (p.w && !aligned16(p.w))) return no("needs 16-byte aligned x and W");
  return true;
}

// Blocks: one per multiprocessor, fewer when there are fewer tiles (every block owns >= 1 tile).
inline int v5_ctas(const Problem &p, int sm_count) {
  const int64_t tiles = (p.n + 15) / 16;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(tiles, sm_count)));
}

template <typename T, typename TY, int NB>
ud_status run_v5_typed(const Problem &p, KernelContext &ctx) {
  const int64_t tiles = (p.n + 15) / 16, chunks = (p.k + kV5ChunkK - 1) / kV5ChunkK;
  // Launched with PDL: the kernel streams its first weights while the one producing x finishes.
  const cudaError_t err = launch_with_pdl(matmul_v5_kernel<T, TY, NB, V5Unroll<NB>::value>, dim3(v5_ctas(p, sm_count_of(ctx))),
                                          dim3(kV5Threads), 0, ctx.stream, static_cast<const T *>(p.x),
                                          static_cast<const T *>(p.w), p.bias, p.bias_dtype, static_cast<TY *>(p.y),
                                          static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k), tiles, chunks);
  if (err != cudaSuccess) (void)cudaGetLastError();
  if (err != cudaSuccess) return ctx.fail(UD_ERR_DEVICE, std::string("matmul variant 5: ") + cudaGetErrorString(err));
  return check_launch(ctx, "matmul variant 5");
}

template <typename T, int NB>
ud_status run_v5_nb(const Problem &p, KernelContext &ctx) {
  switch (p.y_dtype) {
    case UD_BF16: return run_v5_typed<T, __nv_bfloat16, NB>(p, ctx);
    case UD_F16: return run_v5_typed<T, __half, NB>(p, ctx);
    default: return run_v5_typed<T, float, NB>(p, ctx);
  }
}

inline ud_status run_v5(const Problem &p, KernelContext &ctx) {
  if (p.w_dtype == UD_BF16) return p.m <= 8 ? run_v5_nb<__nv_bfloat16, 1>(p, ctx) : run_v5_nb<__nv_bfloat16, 2>(p, ctx);
  return p.m <= 8 ? run_v5_nb<__half, 1>(p, ctx) : run_v5_nb<__half, 2>(p, ctx);
}

}  // namespace updraft::cuda::matmul_detail

#endif
