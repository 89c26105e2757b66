// rowwise.cuh — helpers for the memory-bound row kernels (embedding, gather_rows, rmsnorm, silu_mul,
// rope_kv_write, fill_random): 8-element vector loads/stores with dtype conversion, a block-wide sum,
// a host-side operand checker with the CPU kernels' wording, and the row gather shared by embedding
// and gather_rows.
//
// Everything lives in namespace updraft::cuda::rowwise so that it can never clash (or silently merge,
// through the one-definition rule) with helpers of the same name in other kernel files.
#ifndef UPDRAFT_CUDA_ROWWISE_CUH
#define UPDRAFT_CUDA_ROWWISE_CUH

#include <cstdint>
#include <initializer_list>
#include <string>

#include "common.cuh"

namespace updraft::cuda::rowwise {

// --- 8 elements at a time ------------------------------------------------------------------------
// A chunk of 8 elements is 16 bytes of a 16-bit dtype or 32 of f32: one or two 16-byte accesses.
// Callers use these only when the row length is a multiple of 8 and the base pointers are 16-byte
// aligned (vector_ok below), so every chunk is aligned too.
constexpr int kChunk = 8;

__device__ __forceinline__ void load8(const float *p, float (&v)[8]) {
  const float4 a = reinterpret_cast<const float4 *>(p)[0];
  const float4 b = reinterpret_cast<const float4 *>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16 *p, float (&v)[8]) {
  alignas(16) __nv_bfloat162 h[4];
  *reinterpret_cast<uint4 *>(h) = *reinterpret_cast<const uint4 *>(p);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const __half *p, float (&v)[8]) {
  alignas(16) __half2 h[4];
  *reinterpret_cast<uint4 *>(h) = *reinterpret_cast<const uint4 *>(p);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 f = __half22float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}

// Stores round to nearest even, like the CPU's f32_to_bf16 / f32_to_f16.
__device__ __forceinline__ void store8(float *p, const float (&v)[8]) {
  reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16 *p, const float (&v)[8]) {
  alignas(16) __nv_bfloat162 h[4];
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4 *>(p) = *reinterpret_cast<const uint4 *>(h);
}
__device__ __forceinline__ void store8(__half *p, const float (&v)[8]) {
  alignas(16) __half2 h[4];
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4 *>(p) = *reinterpret_cast<const uint4 *>(h);
}

// The value a tensor of element type T would hold for v, back in f32 (the CPU's round_to_dtype).
template <typename T> __device__ __forceinline__ float round_to(float v) { return to_float(from_float<T>(v)); }

inline bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether rows of `row_len` elements starting at these pointers can be read and written in chunks.
inline bool vector_ok(int64_t row_len, std::initializer_list<const void *> pointers) {
  if (row_len % kChunk != 0) return false;
  for (const void *p : pointers)
    if (p != nullptr && !aligned16(p)) return false;
  return true;
}

// Threads per block for a row of `work_items` (chunks or elements), one block per row: a whole number
// of warps, at most `max_threads`.
inline int threads_for(int64_t work_items, int max_threads = 256) {
  int64_t t = (work_items + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > max_threads) t = max_threads;
  return static_cast<int>(t);
}

// --- block-wide sum --------------------------------------------------------------------------------
// Every thread gets the total. `scratch` holds at least 32 floats; blockDim.x is a multiple of 32.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// --- operand checks (host) -------------------------------------------------------------------------
inline std::string shape_string(const ud_tensor &t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; i++) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}

// The CPU kernels' OperandChecker (kernels/cpu/operand_checks.h) for the CUDA KernelContext, so both
// backends word a bad operand the same way. Each check records the first failure in ctx.
class Checker {
 public:
  Checker(KernelContext &ctx, const char *op_name) : ctx_(ctx), op_(op_name) {}
  bool ok() const { return ok_; }
  ud_status status() const { return status_; }

  Checker &shape_valid(const ud_tensor &t, const char *what) {
    if (!ok_ || !present(t)) return *this;
    if (t.ndim < 1 || t.ndim > UD_MAX_DIMS) return fail(std::string(what) + " has ndim " + std::to_string(t.ndim));
    for (int i = 0; i < t.ndim; i++)
      if (t.ne[i] < 0) return fail(std::string(what) + " has a negative dim " + shape_string(t));
    return *this;
  }
  Checker &required(const ud_tensor &t, const char *what) {
    if (ok_ && !present(t)) return fail(std::string(what) + " is required");
    return shape_valid(t, what);
  }
  Checker &float_dtype(const ud_tensor &t, const char *what) {
    if (ok_ && present(t) && !is_float_dtype(t.dtype))
      return unsupported(std::string(what) + " must be f32, f16 or bf16, got " + dtype_name(t.dtype));
    return *this;
  }
  Checker &kv_dtype(const ud_tensor &t, const char *what) {
    if (ok_ && present(t) && !is_kv_dtype(t.dtype))
      return unsupported(std::string(what) + " must be f32, f16, bf16 or f8e4m3, got " + dtype_name(t.dtype));
    return *this;
  }
  Checker &dtype(const ud_tensor &t, int32_t dtype, const char *what) {
    if (ok_ && present(t) && t.dtype != dtype)
      return unsupported(std::string(what) + " must be " + dtype_name(dtype) + ", got " + dtype_name(t.dtype));
    return *this;
  }
  // CUDA-only restriction (fewer template instantiations): `t` must have the dtype of `like`.
  Checker &same_dtype(const ud_tensor &t, const ud_tensor &like, const char *what, const char *like_what) {
    if (ok_ && present(t) && present(like) && t.dtype != like.dtype)
      return unsupported(std::string(what) + " must have the dtype of " + like_what + " (" + dtype_name(like.dtype) +
                         ") on cuda, got " + dtype_name(t.dtype));
    return *this;
  }
  Checker &numel_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && numel(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) + " elements");
    return *this;
  }
  Checker &rows_are(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && rows(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) + " rows");
    return *this;
  }
  Checker &row_size_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && row_size(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have rows of " + std::to_string(expected) +
                  " elements");
    return *this;
  }
  Checker &that(bool condition, const std::string &message) {
    if (ok_ && !condition) return fail(message);
    return *this;
  }

 private:
  Checker &fail(const std::string &message, ud_status status = UD_ERR_INVALID_ARGUMENT) {
    ok_ = false;
    status_ = ctx_.fail(status, std::string(op_) + ": " + message);
    return *this;
  }
  Checker &unsupported(const std::string &message) { return fail(message, UD_ERR_UNSUPPORTED); }

  KernelContext &ctx_;
  const char *op_;
  bool ok_ = true;
  ud_status status_ = UD_OK;
};

// Calls f(TIn{}, TOut{}) for two float dtypes; false when either is not one.
template <typename F> bool dispatch_float2(int32_t a, int32_t b, F &&f) {
  bool ok = false;
  dispatch_float(a, [&](auto x) { ok = dispatch_float(b, [&](auto y) { f(x, y); }); });
  return ok;
}

// --- row gather (embedding, gather_rows) -------------------------------------------------------------
// out[r, :] = src[index[r], :], converted; an index outside [0, num_src_rows) gives a zero row.
// One block per output row; kVec: 8-element chunks (row_len % 8 == 0, 16-byte aligned bases).
template <typename TIn, typename TOut, bool kVec>
__global__ void gather_rows_kernel(const TIn *__restrict__ src,     // [num_src_rows, row_len]
                                   int64_t num_src_rows, int64_t row_len,
                                   const int32_t *__restrict__ index,  // [num_out_rows]
                                   TOut *__restrict__ out) {           // [num_out_rows, row_len]
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  const int64_t r = blockIdx.x;
  const int32_t i = index[r];
  const bool valid = i >= 0 && i < num_src_rows;
  const TIn *s = src + (valid ? static_cast<int64_t>(i) : 0) * row_len;
  TOut *o = out + r * row_len;
  if constexpr (kVec) {
    const int64_t chunks = row_len / kChunk;
    for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
      float v[8];
      if (valid) {
        load8(s + c * kChunk, v);
      } else {
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = 0.0f;
      }
      store8(o + c * kChunk, v);
    }
  } else {
    for (int64_t j = threadIdx.x; j < row_len; j += blockDim.x) o[j] = from_float<TOut>(valid ? to_float(s[j]) : 0.0f);
  }
}

// Enqueues the gather; operands already validated. `what` names the kernel in launch errors.
inline ud_status launch_gather(KernelContext &ctx, const char *what, const ud_tensor &src, int64_t num_src_rows,
                               int64_t row_len, const ud_tensor &index, int64_t num_out_rows, const ud_tensor &out) {
  if (num_out_rows == 0 || row_len == 0) return UD_OK;
  if (num_out_rows > 0x7fffffff) return ctx.fail(UD_ERR_INVALID_ARGUMENT, std::string(what) + ": too many rows");
  const bool vec = vector_ok(row_len, {src.data, out.data});
  const int threads = threads_for(vec ? row_len / kChunk : row_len);
  const bool dispatched = dispatch_float2(src.dtype, out.dtype, [&](auto in_t, auto out_t) {
    using TIn = decltype(in_t);
    using TOut = decltype(out_t);
    const auto *s = static_cast<const TIn *>(src.data);
    const auto *idx = static_cast<const int32_t *>(index.data);
    auto *o = static_cast<TOut *>(out.data);
    if (vec) {
      gather_rows_kernel<TIn, TOut, true><<<static_cast<unsigned>(num_out_rows), threads, 0, ctx.stream>>>(
          s, num_src_rows, row_len, idx, o);
    } else {
      gather_rows_kernel<TIn, TOut, false><<<static_cast<unsigned>(num_out_rows), threads, 0, ctx.stream>>>(
          s, num_src_rows, row_len, idx, o);
    }
  });
  if (!dispatched) return ctx.fail(UD_ERR_UNSUPPORTED, std::string(what) + ": unsupported dtypes");
  return check_launch(ctx, what);
}

}  // namespace updraft::cuda::rowwise

#endif
