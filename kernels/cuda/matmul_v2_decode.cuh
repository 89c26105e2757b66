// matmul variant 2 — small M (decode, M <= 16): a bandwidth-bound stream over W.
//
// The product is computed transposed, yᵀ[N, M] = W[N, K] · xᵀ, on the tensor cores (mma.sync
// m16n8k16): W rows are the MMA's 16-row A operand and the (at most 16) rows of x its 8-column B
// operand, so the arithmetic never limits the stream whatever M is. The trick that keeps every load
// 16 bytes wide: a dot product does not care in which order k is visited, so each lane loads 8
// consecutive k of one W row (and the same 8 k of one x row) with one 16-byte load and feeds them to two
// MMAs under a fixed permutation of k that is the same for A and B:
//   lane (g = lane/4, t = lane%4) loads W[n0+g][32c+8t .. +8], W[n0+g+8][same], x[g][same] (x[g+8] too
//   when M > 8); MMA #1 takes 32-bit words 0,1 of each (k = 32c+8t+{0,1} as MMA k = 2t+{0,1}, and
//   32c+8t+{2,3} as 2t+8+{0,1}); MMA #2 takes words 2,3 (32c+8t+4..7).
// So a warp streams 16 W rows × 32 k (1 KB) per pair of MMAs; U such chunks are loaded before any is
// used (16·U bytes × 2 rows in flight per lane, U = 4: 128 bytes).
//
// Work split: a block of NW warps owns 16 rows of W (one MMA tile of N); its warps take interleaved
// groups of U 32-k chunks (split-K inside the block), then sum their partial tiles through shared memory
// in warp order. When N/16 blocks cannot fill the GPU, K is also split across blocks (gridDim.y): each
// split writes f32 partials to ctx.workspace and reduce_partials_kernel sums them in split order.
// Every reduction has a fixed order: results are reproducible run to run, and an output does not depend
// on M (the same k partition and order serve M = 1 and M = 16).
//
// W is read exactly once (each row by one block, each chunk by one warp), through the non-coherent
// path without L1 allocation; x (at most 16 × K) is re-read by every block through L1/L2.
//
// Takes: x and W both bf16 or both f16, M <= 16, K % 8 == 0 and K > 0, x and W 16-byte aligned; y
// any float dtype; bias any float dtype or none.
#ifndef UPDRAFT_CUDA_MATMUL_V2_DECODE_CUH
#define UPDRAFT_CUDA_MATMUL_V2_DECODE_CUH

#include "matmul_common.cuh"
#include "matmul_ptx.cuh"

namespace updraft::cuda::matmul_detail {

constexpr int kV2MaxM = 16;
constexpr int kV2Warps = 8;   // NW: warps per block, all on the same 16 W rows
constexpr int kV2Unroll = 4;  // U: 32-k chunks loaded before use

// Resources (nvcc 13.0, sm_90a, see kernels/dev/matmul/PREDICTIONS.md): registers and shared memory are
// recorded there per instantiation; no local memory.
template <typename T, typename TY, int NB, int NW, int U>
__global__ void __launch_bounds__(NW * 32)
    matmul_v2_kernel(const T *__restrict__ x, const T *__restrict__ w, const void *__restrict__ bias,
                     int32_t bias_dtype, TY *__restrict__ y, float *__restrict__ partial, int m, int n, int k,
                     int splits) {
  // red[warp][n within the tile][m]; the +1 keeps the column reads of the final sum conflict-free.
  __shared__ float red[NW][16][NB * 8 + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int n0 = blockIdx.x * 16;
  const int split = blockIdx.y;

  const bool row_a = n0 + g < n, row_b = n0 + g + 8 < n;
  const T *wa_ptr = w + int64_t(row_a ? n0 + g : 0) * k + 8 * t;
  const T *wb_ptr = w + int64_t(row_b ? n0 + g + 8 : 0) * k + 8 * t;
  const T *x_ptr[NB];
  bool x_row[NB];
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
    x_row[nb] = nb * 8 + g < m;
    x_ptr[nb] = x + int64_t(x_row[nb] ? nb * 8 + g : 0) * k + 8 * t;
  }

  float acc[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; nb++) acc[nb][0] = acc[nb][1] = acc[nb][2] = acc[nb][3] = 0.0f;

  const int chunks = (k + 31) / 32;
  const int slices = splits * NW;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  for (int c0 = (split * NW + warp) * U; c0 < chunks; c0 += slices * U) {
    uint4 wa[U], wb[U], xv[NB][U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int kk = (c0 + u) * 32;
      const bool in_k = kk + 8 * t < k;  // k % 8 == 0: the 8 elements are all in or all out
      wa[u] = (in_k && row_a) ? ld_stream16(wa_ptr + kk) : zero;
      wb[u] = (in_k && row_b) ? ld_stream16(wb_ptr + kk) : zero;
#pragma unroll
      for (int nb = 0; nb < NB; nb++) xv[nb][u] = (in_k && x_row[nb]) ? ld_shared_use16(x_ptr[nb] + kk) : zero;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
#pragma unroll
      for (int nb = 0; nb < NB; nb++) {
        mma_16816<T>(acc[nb], wa[u].x, wb[u].x, wa[u].y, wb[u].y, xv[nb][u].x, xv[nb][u].y);
        mma_16816<T>(acc[nb], wa[u].z, wb[u].z, wa[u].w, wb[u].w, xv[nb][u].z, xv[nb][u].w);
      }
    }
  }

  // D fragment: acc[nb][0..1] = yᵀ[n0+g][nb*8+2t+{0,1}], acc[nb][2..3] = yᵀ[n0+g+8][same].
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
    red[warp][g][nb * 8 + 2 * t] = acc[nb][0];
    red[warp][g][nb * 8 + 2 * t + 1] = acc[nb][1];
    red[warp][g + 8][nb * 8 + 2 * t] = acc[nb][2];
    red[warp][g + 8][nb * 8 + 2 * t + 1] = acc[nb][3];
  }
  __syncthreads();
  for (int o = threadIdx.x; o < 16 * NB * 8; o += NW * 32) {
    const int r = o & 15, c = o >> 4;  // r: W row within the tile (consecutive threads: coalesced y)
    const int col = n0 + r;
    if (c >= m || col >= n) continue;
    float s = red[0][r][c];
#pragma unroll
    for (int j = 1; j < NW; j++) s += red[j][r][c];
    if (splits == 1) {
      y[int64_t(c) * n + col] = from_float<TY>(s + bias_at(bias, bias_dtype, col));
    } else {
      partial[(int64_t(split) * m + c) * n + col] = s;
    }
  }
}

inline bool v2_accepts(const Problem &p, std::string *why) {
  auto no = [&](const std::string &reason) {
    if (why) *why = "variant 2 (small-M stream) " + reason;
    return false;
  };
  if (!tensor_core_dtypes(p)) return no("needs x and W both bf16 or both f16");
  if (p.m > kV2MaxM) return no("takes M <= " + std::to_string(kV2MaxM) + " (" + dims_string(p) + ")");
  if (p.k <= 0 || p.k % 8 != 0) return no("needs K a positive multiple of 8 (" + dims_string(p) + ")");
  if (p.k > (int64_t(1) << 30) || p.n > (int64_t(1) << 30)) return no("takes K and N below 2^30");
  if ((p.x && !aligned16(p.x)) || (p.w && !aligned16(p.w))) return no("needs 16-byte aligned x and W");
  return true;
}

// Splits of K across blocks: only when N/16 blocks cannot give every multiprocessor one block, and
// never so many that a split gets less than one full round of its warps' chunks.
inline int v2_splits(const Problem &p, int sm_count, size_t workspace_bytes) {
  const int64_t blocks_n = (p.n + 15) / 16;
  if (blocks_n >= sm_count) return 1;
  const int64_t chunks = (p.k + 31) / 32;
  int64_t splits = (2 * int64_t(sm_count) + blocks_n - 1) / blocks_n;
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, chunks / (kV2Warps * kV2Unroll)));
  splits = std::min<int64_t>(splits, 32);
  while (splits > 1 && size_t(splits) * size_t(p.m) * size_t(p.n) * sizeof(float) > workspace_bytes) splits--;
  return static_cast<int>(std::max<int64_t>(splits, 1));
}

template <typename T, typename TY, int NB>
ud_status run_v2_typed(const Problem &p, int splits, KernelContext &ctx) {
  const dim3 grid(static_cast<unsigned>((p.n + 15) / 16), static_cast<unsigned>(splits));
  matmul_v2_kernel<T, TY, NB, kV2Warps, kV2Unroll><<<grid, kV2Warps * 32, 0, ctx.stream>>>(
      static_cast<const T *>(p.x), static_cast<const T *>(p.w), p.bias, p.bias_dtype, static_cast<TY *>(p.y),
      static_cast<float *>(ctx.workspace), static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k),
      splits);
  return check_launch(ctx, "matmul variant 2");
}

template <typename T, int NB>
ud_status run_v2_nb(const Problem &p, int splits, KernelContext &ctx) {
  switch (p.y_dtype) {
    case UD_BF16: return run_v2_typed<T, __nv_bfloat16, NB>(p, splits, ctx);
    case UD_F16: return run_v2_typed<T, __half, NB>(p, splits, ctx);
    default: return run_v2_typed<T, float, NB>(p, splits, ctx);
  }
}

inline ud_status run_v2(const Problem &p, KernelContext &ctx) {
  const int splits = ctx.workspace ? v2_splits(p, sm_count_of(ctx), ctx.workspace_bytes) : 1;
  ud_status status;
  if (p.w_dtype == UD_BF16) {
    status = p.m <= 8 ? run_v2_nb<__nv_bfloat16, 1>(p, splits, ctx) : run_v2_nb<__nv_bfloat16, 2>(p, splits, ctx);
  } else {
    status = p.m <= 8 ? run_v2_nb<__half, 1>(p, splits, ctx) : run_v2_nb<__half, 2>(p, splits, ctx);
  }
  if (status != UD_OK || splits == 1) return status;
  return launch_reduce_partials(p, static_cast<const float *>(ctx.workspace), splits, ctx);
}

}  // namespace updraft::cuda::matmul_detail

#endif
