// UD_OP_RMSNORM, optionally fused with the residual add (vLLM's fused_add_rms_norm).
//
// The CPU reference's order (kernels/cpu/rmsnorm.cc, HF Llama): with add_residual the sum x + residual
// is rounded to the residual dtype and written to dst1 before it is normalised; the mean of squares
// is accumulated in f32; inv_rms = 1 / sqrt(sum / H + eps); each value is x * inv_rms rounded to the
// normalised tensor's dtype, then times the weight, rounded to the output dtype. Explicit _rn
// intrinsics keep nvcc from fusing those steps into FMAs that would round differently.
//
// One block per row. Pass 1 reads the row (and the residual), writes dst1, and sums squares; pass 2
// re-reads the row it normalises (dst1 with add_residual: exactly the rounded sums; else x), which
// the same thread just touched, so it comes from L1/L2, and writes dst0. dst1 may alias src1: each
// element is read and written by one thread, read before written, so no pointer is __restrict__.
//
// CUDA restriction (fewer instantiations, every combination the models use): x, residual, dst0 and
// dst1 share one dtype T; the weight may be any float dtype.
#include <cmath>

#include "rowwise.cuh"

namespace updraft::cuda {
namespace {

using rowwise::kChunk;

template <typename T, typename W, bool kAddResidual, bool kVec>
__global__ void rmsnorm_kernel(const T *x,             // [M, H]
                               const T *residual,      // [M, H], read when kAddResidual
                               const W *weight,        // [H]
                               T *out,                 // [M, H]
                               T *residual_out,        // [M, H]; required when kAddResidual, else optional copy of x
                               int64_t hidden, float eps) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * hidden;
  const T *xr = x + base;
  const T *rr = kAddResidual ? residual + base : nullptr;
  T *ro = residual_out ? residual_out + base : nullptr;
  T *yr = out + base;

  float sum_sq = 0.0f;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x; c < hidden / kChunk; c += blockDim.x) {
      float v[8];
      rowwise::load8(xr + c * kChunk, v);
      if constexpr (kAddResidual) {
        float r[8];
        rowwise::load8(rr + c * kChunk, r);
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = rowwise::round_to<T>(__fadd_rn(v[e], r[e]));
      }
      if (ro) rowwise::store8(ro + c * kChunk, v);
#pragma unroll
      for (int e = 0; e < 8; e++) sum_sq = __fmaf_rn(v[e], v[e], sum_sq);
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      float v = to_float(xr[i]);
      if constexpr (kAddResidual) v = rowwise::round_to<T>(__fadd_rn(v, to_float(rr[i])));
      if (ro) ro[i] = from_float<T>(v);
      sum_sq = __fmaf_rn(v, v, sum_sq);
    }
  }
  sum_sq = rowwise::block_sum(sum_sq, scratch);
  const float inv_rms = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(sum_sq, static_cast<float>(hidden)), eps)));

  // Pass 2: the normalised tensor is dst1 (the rounded sums) with add_residual, else x.
  const T *nr = kAddResidual ? ro : xr;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x; c < hidden / kChunk; c += blockDim.x) {
      float v[8], w[8];
      rowwise::load8(nr + c * kChunk, v);
      rowwise::load8(weight + c * kChunk, w);
#pragma unroll
      for (int e = 0; e < 8; e++) v[e] = __fmul_rn(rowwise::round_to<T>(__fmul_rn(v[e], inv_rms)), w[e]);
      rowwise::store8(yr + c * kChunk, v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      const float normed = rowwise::round_to<T>(__fmul_rn(to_float(nr[i]), inv_rms));
      yr[i] = from_float<T>(__fmul_rn(normed, to_float(weight[i])));
    }
  }
}

}  // namespace

ud_status launch_rmsnorm(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &x = op.src[0];             // [M, H]
  const ud_tensor &residual = op.src[1];      // [M, H], used when add_residual
  const ud_tensor &weight = op.src[2];        // [H]
  const ud_tensor &out = op.dst[0];           // [M, H]
  const ud_tensor &residual_out = op.dst[1];  // [M, H], optional without add_residual
  const ud_rmsnorm_params &p = op.params.rmsnorm;
  const bool add_residual = p.add_residual != 0;

  rowwise::Checker check(ctx, "rmsnorm");
  check.required(x, "src0 (x)").required(weight, "src2 (weight)").required(out, "dst0 (out)")
      .shape_valid(residual_out, "dst1 (residual out)")
      .float_dtype(x, "src0 (x)").float_dtype(weight, "src2 (weight)").float_dtype(out, "dst0 (out)")
      .float_dtype(residual_out, "dst1 (residual out)");
  if (add_residual) {
    check.required(residual, "src1 (residual)").required(residual_out, "dst1 (residual out)")
        .float_dtype(residual, "src1 (residual)");
  }
  check.same_dtype(out, x, "dst0 (out)", "src0 (x)").same_dtype(residual_out, x, "dst1 (residual out)", "src0 (x)");
  if (add_residual) check.same_dtype(residual, x, "src1 (residual)", "src0 (x)");
  if (!check.ok()) return check.status();
  const int64_t hidden = numel(weight), total = numel(x);
  const int64_t m = hidden > 0 ? total / hidden : 0;
  check.that(hidden > 0 && total % hidden == 0,
             "src0 (x) " + rowwise::shape_string(x) + " is not a whole number of rows of the weight's " +
                 std::to_string(hidden) + " elements")
      .numel_is(out, total, "dst0 (out)").numel_is(residual_out, total, "dst1 (residual out)");
  if (add_residual) check.numel_is(residual, total, "src1 (residual)");
  check.that(std::isfinite(p.eps) && p.eps >= 0.0f, "eps must be a finite number >= 0");
  if (!check.ok()) return check.status();
  if (m == 0) return UD_OK;
  if (m > 0x7fffffff) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "rmsnorm: too many rows");

  const bool vec = rowwise::vector_ok(hidden, {x.data, add_residual ? residual.data : nullptr, weight.data, out.data,
                                               residual_out.data});
  const int threads = rowwise::threads_for(vec ? hidden / kChunk : hidden, 512);
  const auto blocks = static_cast<unsigned>(m);
  const bool dispatched = rowwise::dispatch_float2(x.dtype, weight.dtype, [&](auto t_tag, auto w_tag) {
    using T = decltype(t_tag);
    using W = decltype(w_tag);
    const auto *xp = static_cast<const T *>(x.data);
    const auto *rp = static_cast<const T *>(add_residual ? residual.data : nullptr);
    const auto *wp = static_cast<const W *>(weight.data);
    auto *yp = static_cast<T *>(out.data);
    auto *rop = static_cast<T *>(residual_out.data);
    if (add_residual) {
      if (vec) rmsnorm_kernel<T, W, true, true><<<blocks, threads, 0, ctx.stream>>>(xp, rp, wp, yp, rop, hidden, p.eps);
      else rmsnorm_kernel<T, W, true, false><<<blocks, threads, 0, ctx.stream>>>(xp, rp, wp, yp, rop, hidden, p.eps);
    } else {
      if (vec) rmsnorm_kernel<T, W, false, true><<<blocks, threads, 0, ctx.stream>>>(xp, rp, wp, yp, rop, hidden, p.eps);
      else rmsnorm_kernel<T, W, false, false><<<blocks, threads, 0, ctx.stream>>>(xp, rp, wp, yp, rop, hidden, p.eps);
    }
  });
  if (!dispatched) return ctx.fail(UD_ERR_UNSUPPORTED, "rmsnorm: unsupported dtypes");
  return check_launch(ctx, "rmsnorm");
}

}  // namespace updraft::cuda
