// matmul_common.cuh — pieces shared by the matmul variants (matmul_v*.cuh): the problem description,
// run-time-dtype element access, the epilogue store and the deterministic split-K reduction.
// Included only by matmul.cu (and by kernels/dev/matmul/bench_matmul.cu through matmul.cu).
#ifndef UPDRAFT_CUDA_MATMUL_COMMON_CUH
#define UPDRAFT_CUDA_MATMUL_COMMON_CUH

#include <cstdint>
#include <string>
#include <type_traits>

#include "common.cuh"

namespace updraft::cuda::matmul_detail {

// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]); all row-major and contiguous.
struct Problem {
  const void *x = nullptr;     // [m, k]
  const void *w = nullptr;     // [n, k]
  const void *bias = nullptr;  // [n] or null
  void *y = nullptr;           // [m, n]
  int64_t m = 0, n = 0, k = 0;
  int32_t x_dtype = UD_F32, w_dtype = UD_F32, bias_dtype = -1, y_dtype = UD_F32;  // bias_dtype -1: none
};

// Element i of a float tensor whose dtype is known only at run time.
__device__ __forceinline__ float load_any(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case UD_BF16: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    case UD_F16: return __half2float(static_cast<const __half *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
  }
}

__device__ __forceinline__ void store_any(void *p, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case UD_BF16: static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v); break;
    case UD_F16: static_cast<__half *>(p)[i] = __float2half_rn(v); break;
    default: static_cast<float *>(p)[i] = v; break;
  }
}

__device__ __forceinline__ float bias_at(const void *bias, int32_t dtype, int64_t n) {
  return bias ? load_any(bias, dtype, n) : 0.0f;
}

// Writes y[row, col] and y[row, col + 1] (the second only when col + 1 < n) of a row-major [*, n]
// output, as one 4- or 8-byte store when both exist and the address is aligned for it.
template <typename TY>
__device__ __forceinline__ void store_pair(TY *y, int64_t n, int64_t row, int64_t col, float v0, float v1) {
  TY *p = y + row * n + col;
  if (col + 1 < n) {
    if constexpr (sizeof(TY) == 2) {
      if ((reinterpret_cast<uintptr_t>(p) & 3) == 0) {
        if constexpr (std::is_same<TY, __nv_bfloat16>::value) {
          *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(v0, v1);
        } else {
          *reinterpret_cast<__half2 *>(p) = __floats2half2_rn(v0, v1);
        }
        return;
      }
    } else {
      if ((reinterpret_cast<uintptr_t>(p) & 7) == 0) {
        *reinterpret_cast<float2 *>(p) = make_float2(v0, v1);
        return;
      }
    }
    p[0] = from_float<TY>(v0);
    p[1] = from_float<TY>(v1);
  } else {
    p[0] = from_float<TY>(v0);
  }
}

// The multiprocessor count: from the context, or asked of the runtime (a host-side query, fine during
// graph capture) when the backend left it unset.
inline int sm_count_of(const KernelContext &ctx) {
  if (ctx.sm_count > 0) return ctx.sm_count;
  int count = 0;
  if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, ctx.device) != cudaSuccess || count <= 0) {
    (void)cudaGetLastError();
    count = 132;
  }
  return count;
}

// Split-K finish: y[m, n] = sum over s (in order) of partial[s, m, n] (+ bias[n]). Deterministic: each
// element is summed by one thread in a fixed order, so results do not change from run to run.
__global__ void reduce_partials_kernel(const float *__restrict__ partial, int splits, int64_t mn, int64_t n,
                                       const void *bias, int32_t bias_dtype, void *y, int32_t y_dtype) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < mn; i += int64_t(gridDim.x) * blockDim.x) {
    float s = partial[i];
    for (int j = 1; j < splits; j++) s += partial[j * mn + i];
    if (bias) s += load_any(bias, bias_dtype, i % n);
    store_any(y, y_dtype, i, s);
  }
}

inline ud_status launch_reduce_partials(const Problem &p, const float *partial, int splits, KernelContext &ctx) {
  const int64_t mn = p.m * p.n;
  const int threads = 256;
  const int64_t want = (mn + threads - 1) / threads;
  const int blocks = static_cast<int>(want < int64_t(sm_count_of(ctx)) * 16 ? want : int64_t(sm_count_of(ctx)) * 16);
  reduce_partials_kernel<<<blocks > 0 ? blocks : 1, threads, 0, ctx.stream>>>(partial, splits, mn, p.n, p.bias,
                                                                             p.bias_dtype, p.y, p.y_dtype);
  return check_launch(ctx, "matmul: split-K reduction");
}

// 16-byte alignment of an operand's base address (row starts are then aligned when k % 8 == 0).
inline bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// x and W both bf16 or both f16: what the tensor-core variants multiply.
inline bool tensor_core_dtypes(const Problem &p) {
  return p.x_dtype == p.w_dtype && (p.w_dtype == UD_BF16 || p.w_dtype == UD_F16);
}

inline std::string dims_string(const Problem &p) {
  return "M=" + std::to_string(p.m) + ", N=" + std::to_string(p.n) + ", K=" + std::to_string(p.k);
}

}  // namespace updraft::cuda::matmul_detail

#endif
