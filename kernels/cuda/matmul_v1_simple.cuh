// matmul variant 1 — the simple reference kernel: every dtype combination, every shape.
//
// A 16×16 thread block computes a 16×16 tile of y, one output per thread, stepping through K in
// slices of 16 that the block stages in shared memory as f32 (x rows and W rows, each loaded along K so
// that neighbouring threads read neighbouring elements). Each thread accumulates its dot product in
// f32, in K order, then adds the bias and rounds once to the output dtype. Operand dtypes are read at
// run time (a switch per element load), which keeps this to one instantiation; it is the slow path.
#ifndef UPDRAFT_CUDA_MATMUL_V1_SIMPLE_CUH
#define UPDRAFT_CUDA_MATMUL_V1_SIMPLE_CUH

#include "matmul_common.cuh"

namespace updraft::cuda::matmul_detail {

constexpr int kV1Tile = 16;

__global__ void __launch_bounds__(kV1Tile *kV1Tile)
    matmul_v1_kernel(const void *__restrict__ x, int32_t x_dtype, const void *__restrict__ w, int32_t w_dtype,
                     const void *__restrict__ bias, int32_t bias_dtype, void *__restrict__ y, int32_t y_dtype,
                     int64_t m, int64_t n, int64_t k) {
  __shared__ float xs[kV1Tile][kV1Tile + 1];  // [row of the tile][k]
  __shared__ float ws[kV1Tile][kV1Tile + 1];  // [column of the tile][k]; +1 avoids bank conflicts
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t row0 = int64_t(blockIdx.y) * kV1Tile, col0 = int64_t(blockIdx.x) * kV1Tile;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += kV1Tile) {
    // Thread (ty, tx) loads element k0 + tx of tile row ty, for x and for W.
    const int64_t kk = k0 + tx;
    const int64_t xr = row0 + ty, wr = col0 + ty;
    xs[ty][tx] = (xr < m && kk < k) ? load_any(x, x_dtype, xr * k + kk) : 0.0f;
    ws[ty][tx] = (wr < n && kk < k) ? load_any(w, w_dtype, wr * k + kk) : 0.0f;
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kV1Tile; j++) acc = fmaf(xs[ty][j], ws[tx][j], acc);
    __syncthreads();
  }
  const int64_t row = row0 + ty, col = col0 + tx;
  if (row < m && col < n) store_any(y, y_dtype, row * n + col, acc + bias_at(bias, bias_dtype, col));
}

inline bool v1_accepts(const Problem &p, std::string *why) {
  if (p.m > int64_t(65535) * kV1Tile) {
    if (why) *why = "variant 1 takes at most " + std::to_string(65535 * kV1Tile) + " rows";
    return false;
  }
  return true;
}

inline ud_status run_v1(const Problem &p, KernelContext &ctx) {
  const dim3 block(kV1Tile, kV1Tile);
  const dim3 grid(static_cast<unsigned>(ceil_div(p.n, kV1Tile)), static_cast<unsigned>(ceil_div(p.m, kV1Tile)));
  matmul_v1_kernel<<<grid, block, 0, ctx.stream>>>(p.x, p.x_dtype, p.w, p.w_dtype, p.bias, p.bias_dtype, p.y,
                                                   p.y_dtype, p.m, p.n, p.k);
  return check_launch(ctx, "matmul variant 1");
}

}  // namespace updraft::cuda::matmul_detail

#endif
