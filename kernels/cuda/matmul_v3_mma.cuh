// matmul variant 3 — tensor-core tiled GEMM (Ampere-style, runs on sm_80 and later):
// mma.sync m16n8k16 (HMMA) fed by ldmatrix from an XOR-swizzled shared-memory tile that a cp.async
// pipeline of STAGES stages fills.
//
// Both operands are K-major (x [M, K], W [N, K]), so A and B tiles are loaded and laid out the same
// way: BM (or BN) rows × BK = 64 k, i.e. rows of 128 bytes = eight 16-byte chunks, chunk c of row r
// stored at chunk position c ^ (r % 8). ldmatrix reads 8 rows of one logical chunk, which land in 8
// different bank groups (conflict-free), and the cp.async stores of a warp (4 rows × 8 chunks) too.
// Rows past M or N and k past K are zero-filled by cp.async (src-size 0), so any M, N and any K that is
// a multiple of 8 work; the epilogue bounds-checks every store.
//
// Two tile shapes:
//   big   BM=128, BN=256, 8 warps (2×4), warp tile 64×64, 3 stages (144 KiB smem), 1 block/SM
//   small BM=64,  BN=128, 4 warps (2×2), warp tile 32×64, 4 stages (96 KiB smem), 2 blocks/SM
// The host picks the shape that wastes fewer multiprocessor-waves (see v3_choose) and, when even the
// small tiles cannot fill the GPU (small M, e.g. 17..128 rows), splits K across blocks (gridDim.y) with
// f32 partials in ctx.workspace summed in order by reduce_partials_kernel (deterministic).
// Blocks are rasterised in groups of 8 M-tiles so that concurrently running blocks share x and W
// tiles in L2.
//
// Takes: x and W both bf16 or both f16, K % 8 == 0 and K > 0, x and W 16-byte aligned; any M, N; y f32
// or x's dtype; bias any float dtype or none. Needs sm_80+.
#ifndef UPDRAFT_CUDA_MATMUL_V3_MMA_CUH
#define UPDRAFT_CUDA_MATMUL_V3_MMA_CUH

#include <atomic>

#include "matmul_common.cuh"
#include "matmul_ptx.cuh"

namespace updraft::cuda::matmul_detail {

constexpr int kV3BK = 64;
constexpr int kV3GroupM = 8;

template <int BM_, int BN_, int WM_, int WN_, int STAGES_>
struct V3Config {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int kWarpM = BM / WM, kWarpN = BN / WN;  // warp tile
  static constexpr int MI = kWarpM / 16, NI = kWarpN / 8;   // m16 and n8 MMA tiles per warp
  static constexpr int kStageElems = (BM + BN) * kV3BK;
  static constexpr int kSmemBytes = STAGES * kStageElems * 2;
  static_assert(NI % 2 == 0, "B fragments are loaded two n8 tiles at a time");
  static_assert((BM * 8) % kThreads == 0 && (BN * 8) % kThreads == 0, "whole chunks per thread");
};
using V3Big = V3Config<128, 256, 2, 4, 3>;
using V3Small = V3Config<64, 128, 2, 2, 4>;

// Element offset of (row, 16-byte chunk) in a swizzled [rows][64] tile.
__device__ __forceinline__ int v3_swizzle(int row, int chunk) { return row * kV3BK + ((chunk ^ (row & 7)) << 3); }

// Resources (nvcc 13.0, sm_90a): see kernels/dev/matmul/PREDICTIONS.md.
template <typename T, typename TY, typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    matmul_v3_kernel(const T *__restrict__ x, const T *__restrict__ w, const void *__restrict__ bias,
                     int32_t bias_dtype, TY *__restrict__ y, float *__restrict__ partial, int m, int n, int k,
                     int k_tiles_per_split) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, STAGES = Cfg::STAGES, THREADS = Cfg::kThreads;
  constexpr int MI = Cfg::MI, NI = Cfg::NI;
  extern __shared__ __align__(128) unsigned char v3_smem[];
  T *smem = reinterpret_cast<T *>(v3_smem);

  // Tile coordinates, grouped along M for L2 reuse.
  const int num_m = (m + BM - 1) / BM, num_n = (n + BN - 1) / BN;
  const int pid = blockIdx.x;
  const int group = pid / (kV3GroupM * num_n);
  const int first_m = group * kV3GroupM;
  const int group_size = min(num_m - first_m, kV3GroupM);
  const int tile_m = first_m + (pid % (kV3GroupM * num_n)) % group_size;
  const int tile_n = (pid % (kV3GroupM * num_n)) / group_size;
  const int m0 = tile_m * BM, n0 = tile_n * BN;

  const int split = blockIdx.y;
  const int k_tiles = (k + kV3BK - 1) / kV3BK;
  const int kt_begin = split * k_tiles_per_split;
  const int kt_end = min(k_tiles, kt_begin + k_tiles_per_split);
  const int num_kt = max(0, kt_end - kt_begin);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp / Cfg::WN, warp_n = warp % Cfg::WN;

  // Loads one k-tile (64 k) of A (x rows m0..) and B (W rows n0..) into stage `stage` with cp.async.
  auto load_tile = [&](int stage, int kt) {
    T *sa = smem + stage * Cfg::kStageElems;
    T *sb = sa + BM * kV3BK;
    const int kbase = kt * kV3BK;
#pragma unroll
    for (int i = 0; i < BM * 8 / THREADS; i++) {
      const int ci = tid + i * THREADS, row = ci >> 3, chunk = ci & 7;
      const int gk = kbase + chunk * 8;
      const bool ok = m0 + row < m && gk < k;
      const T *src = ok ? x + int64_t(m0 + row) * k + gk : x;
      cp_async16(smem_u32(sa + v3_swizzle(row, chunk)), src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < BN * 8 / THREADS; i++) {
      const int ci = tid + i * THREADS, row = ci >> 3, chunk = ci & 7;
      const int gk = kbase + chunk * 8;
      const bool ok = n0 + row < n && gk < k;
      const T *src = ok ? w + int64_t(n0 + row) * k + gk : w;
      cp_async16(smem_u32(sb + v3_swizzle(row, chunk)), src, ok ? 16 : 0);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;

  // Prologue: stages 0 .. STAGES-2 in flight. Every iteration commits exactly one group (possibly
  // empty), so "group i complete" is always "wait until at most STAGES-2 are pending".
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < num_kt) load_tile(s, kt_begin + s);
    cp_async_commit();
  }

  for (int it = 0; it < num_kt; it++) {
    cp_async_wait<STAGES - 2>();
    // Makes tile `it` visible to every thread, and guarantees every thread has finished computing on
    // tile it-1, whose stage the load below overwrites.
    __syncthreads();
    const int next = it + STAGES - 1;
    if (next < num_kt) load_tile(next % STAGES, kt_begin + next);
    cp_async_commit();

    const T *sa = smem + (it % STAGES) * Cfg::kStageElems;
    const T *sb = sa + BM * kV3BK;
#pragma unroll
    for (int kk = 0; kk < kV3BK / 16; kk++) {
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int i = 0; i < MI; i++) {
        // Lanes 0-15: rows 0-15 at k chunk 2kk; lanes 16-31: the same rows at chunk 2kk+1.
        const int row = warp_m * Cfg::kWarpM + i * 16 + (lane & 15);
        ldmatrix_x4(af[i], smem_u32(sa + v3_swizzle(row, kk * 2 + (lane >> 4))));
      }
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        // Matrices: (n 0-7, chunk 2kk), (n 0-7, 2kk+1), (n 8-15, 2kk), (n 8-15, 2kk+1).
        const int row = warp_n * Cfg::kWarpN + j * 8 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t r[4];
        ldmatrix_x4(r, smem_u32(sb + v3_swizzle(row, kk * 2 + ((lane >> 3) & 1))));
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
          mma_16816<T>(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], bf[j][0], bf[j][1]);
    }
  }
  cp_async_wait<0>();  // nothing useful is pending, but leave no copy in flight at exit

  // Epilogue straight from the accumulators: D[g][2t..2t+1] and D[g+8][2t..2t+1] of each MMA tile.
  const int g = lane >> 2, t = lane & 3;
  const bool final_output = gridDim.y == 1;
  float *part = final_output ? nullptr : partial + int64_t(split) * m * n;
#pragma unroll
  for (int i = 0; i < MI; i++) {
#pragma unroll
    for (int j = 0; j < NI; j++) {
      const int col = n0 + warp_n * Cfg::kWarpN + j * 8 + 2 * t;
      if (col >= n) continue;
      float b0 = 0.0f, b1 = 0.0f;
      if (final_output && bias) {
        b0 = load_any(bias, bias_dtype, col);
        if (col + 1 < n) b1 = load_any(bias, bias_dtype, col + 1);
      }
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int row = m0 + warp_m * Cfg::kWarpM + i * 16 + g + 8 * h;
        if (row >= m) continue;
        if (final_output) {
          store_pair<TY>(y, n, row, col, acc[i][j][2 * h] + b0, acc[i][j][2 * h + 1] + b1);
        } else {
          store_pair<float>(part, n, row, col, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        }
      }
    }
  }
}

inline bool v3_accepts(const Problem &p, std::string *why) {
  auto no = [&](const std::string &reason) {
    if (why) *why = "variant 3 (mma.sync GEMM) " + reason;
    return false;
  };
  if (!tensor_core_dtypes(p)) return no("needs x and W both bf16 or both f16");
  if (p.y_dtype != UD_F32 && p.y_dtype != p.w_dtype) return no("writes y as f32 or as x's dtype");
  if (p.k <= 0 || p.k % 8 != 0) return no("needs K a positive multiple of 8 (" + dims_string(p) + ")");
  if (p.m >= (int64_t(1) << 31) || p.n >= (int64_t(1) << 31) || p.k >= (int64_t(1) << 31))
    return no("takes M, N, K below 2^31");
  if ((p.x && !aligned16(p.x)) || (p.w && !aligned16(p.w))) return no("needs 16-byte aligned x and W");
  return true;
}

// Benchmark/test hook (kernels/dev/matmul/bench_matmul.cu): 0 = choose, 1 = force big, 2 = force small.
inline int g_v3_force_tile = 0;

struct V3Plan {
  bool big = true;
  int splits = 1;
  int k_tiles_per_split = 0;
};

// Tile shape by multiprocessor-waves: one big tile per SM at a time, two small ones; a pair of small
// tiles (half the MMAs of a big one, less reuse per shared-memory byte) costs ~0.65 of a big tile's time.
inline V3Plan v3_choose(const Problem &p, int sm_count, size_t workspace_bytes) {
  V3Plan plan;
  const int64_t tiles_big = ((p.m + V3Big::BM - 1) / V3Big::BM) * ((p.n + V3Big::BN - 1) / V3Big::BN);
  const int64_t tiles_small = ((p.m + V3Small::BM - 1) / V3Small::BM) * ((p.n + V3Small::BN - 1) / V3Small::BN);
  const double cost_big = double((tiles_big + sm_count - 1) / sm_count);
  const double cost_small = 0.65 * double((tiles_small + 2 * sm_count - 1) / (2 * sm_count));
  plan.big = g_v3_force_tile ? g_v3_force_tile == 1 : cost_big <= cost_small;
  const int k_tiles = static_cast<int>((p.k + kV3BK - 1) / kV3BK);
  plan.k_tiles_per_split = k_tiles;
  if (!plan.big && tiles_small < sm_count && workspace_bytes > 0) {
    // Split K so that about two blocks per SM run, each with at least 4 k-tiles.
    int64_t splits = (2 * int64_t(sm_count) + tiles_small - 1) / tiles_small;
    splits = std::min<int64_t>(splits, std::max(1, k_tiles / 4));
    splits = std::min<int64_t>(splits, 64);
    while (splits > 1 && size_t(splits) * size_t(p.m) * size_t(p.n) * sizeof(float) > workspace_bytes) splits--;
    if (splits > 1) {
      plan.k_tiles_per_split = static_cast<int>((k_tiles + splits - 1) / splits);
      plan.splits = (k_tiles + plan.k_tiles_per_split - 1) / plan.k_tiles_per_split;  // no empty split
    }
  }
  return plan;
}

// Raises the kernel's dynamic shared-memory limit once per device (a host-side attribute).
template <typename Kernel>
inline cudaError_t ensure_smem_limit(Kernel kernel, int bytes, int device, std::atomic<uint64_t> &done_mask) {
  const uint64_t bit = (device >= 0 && device < 64) ? (uint64_t(1) << device) : 0;
  if (bit && (done_mask.load(std::memory_order_relaxed) & bit)) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err == cudaSuccess && bit) done_mask.fetch_or(bit, std::memory_order_relaxed);
  return err;
}

template <typename T, typename TY, typename Cfg>
ud_status run_v3_typed(const Problem &p, const V3Plan &plan, KernelContext &ctx) {
  auto kernel = matmul_v3_kernel<T, TY, Cfg>;
  static std::atomic<uint64_t> smem_set{0};
  if (ctx.max_smem_per_block > 0 && Cfg::kSmemBytes > ctx.max_smem_per_block)
    return ctx.fail(UD_ERR_UNSUPPORTED, "matmul variant 3: needs " + std::to_string(Cfg::kSmemBytes) +
                                            " bytes of shared memory per block");
  if (ensure_smem_limit(kernel, Cfg::kSmemBytes, ctx.device, smem_set) != cudaSuccess)
    return check_launch(ctx, "matmul variant 3 (shared-memory attribute)");
  const int64_t tiles = ((p.m + Cfg::BM - 1) / Cfg::BM) * ((p.n + Cfg::BN - 1) / Cfg::BN);
  if (tiles >= (int64_t(1) << 31)) return ctx.fail(UD_ERR_UNSUPPORTED, "matmul variant 3: too many tiles");
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(plan.splits));
  kernel<<<grid, Cfg::kThreads, Cfg::kSmemBytes, ctx.stream>>>(
      static_cast<const T *>(p.x), static_cast<const T *>(p.w), p.bias, p.bias_dtype, static_cast<TY *>(p.y),
      static_cast<float *>(ctx.workspace), static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k),
      plan.k_tiles_per_split);
  return check_launch(ctx, "matmul variant 3");
}

// y is x's dtype or f32 (v3_accepts): two output types per input type.
template <typename T, typename Cfg>
ud_status run_v3_cfg(const Problem &p, const V3Plan &plan, KernelContext &ctx) {
  if (p.y_dtype == UD_F32) return run_v3_typed<T, float, Cfg>(p, plan, ctx);
  return run_v3_typed<T, T, Cfg>(p, plan, ctx);
}

inline ud_status run_v3(const Problem &p, KernelContext &ctx) {
  V3Plan plan = v3_choose(p, sm_count_of(ctx), ctx.workspace ? ctx.workspace_bytes : 0);
  // GPUs with less shared memory per block than Hopper's 227 KiB (e.g. 99 KiB on sm_86/89): small tiles.
  if (plan.big && ctx.max_smem_per_block > 0 && V3Big::kSmemBytes > ctx.max_smem_per_block) {
    plan.big = false;
    plan.splits = 1;
    plan.k_tiles_per_split = static_cast<int>((p.k + kV3BK - 1) / kV3BK);
  }
  ud_status status;
  if (p.w_dtype == UD_BF16) {
    status = plan.big ? run_v3_cfg<__nv_bfloat16, V3Big>(p, plan, ctx) : run_v3_cfg<__nv_bfloat16, V3Small>(p, plan, ctx);
  } else {
    status = plan.big ? run_v3_cfg<__half, V3Big>(p, plan, ctx) : run_v3_cfg<__half, V3Small>(p, plan, ctx);
  }
  if (status != UD_OK || plan.splits == 1) return status;
  return launch_reduce_partials(p, static_cast<const float *>(ctx.workspace), plan.splits, ctx);
}

}  // namespace updraft::cuda::matmul_detail

#endif
