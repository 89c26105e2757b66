// UD_OP_RMSNORM, optionally fused with the residual add (vLLM's fused_add_rms_norm).
//
// HF Llama order: mean of squares in f32, x * rsqrt(var + eps) in f32, rounded to the input dtype,
// then multiplied by the weight and rounded to the output dtype. With add_residual, the sum is
// rounded to the residual dtype before it is normalised. dst1 may alias src1: each row is read in
// full before any of it is written.
#include <cmath>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_rmsnorm(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &x = op.src[0];         // [M, H]
  const ud_tensor &residual = op.src[1];  // [M, H], used when add_residual
  const ud_tensor &weight = op.src[2];    // [H]
  const ud_tensor &out = op.dst[0];       // [M, H]
  const ud_tensor &residual_out = op.dst[1];  // [M, H], optional without add_residual
  const ud_rmsnorm_params &p = op.params.rmsnorm;
  const bool add_residual = p.add_residual != 0;

  OperandChecker check(ctx, "rmsnorm");
  check.required(x, "src0 (x)").required(weight, "src2 (weight)").required(out, "dst0 (out)")
      .shape_valid(residual_out, "dst1 (residual out)")
      .float_dtype(x, "src0 (x)").float_dtype(weight, "src2 (weight)").float_dtype(out, "dst0 (out)")
      .float_dtype(residual_out, "dst1 (residual out)");
  if (add_residual) {
    check.required(residual, "src1 (residual)").required(residual_out, "dst1 (residual out)")
        .float_dtype(residual, "src1 (residual)");
  }
  if (!check.ok()) return check.status();
  const int64_t hidden = numel(weight), total = numel(x);
  const int64_t m = hidden > 0 ? total / hidden : 0;
  check.that(hidden > 0 && total % hidden == 0,
             "src0 (x) " + shape_string(x) + " is not a whole number of rows of the weight's " +
                 std::to_string(hidden) + " elements")
      .numel_is(out, total, "dst0 (out)").numel_is(residual_out, total, "dst1 (residual out)");
  if (add_residual) check.numel_is(residual, total, "src1 (residual)");
  check.that(std::isfinite(p.eps) && p.eps >= 0.0f, "eps must be a finite number >= 0");
  if (!check.ok()) return check.status();

  // The normalised value is rounded to the dtype of the tensor being normalised.
  const int32_t normed_dtype = add_residual ? residual_out.dtype : x.dtype;
  ctx.pool.parallel_for(m, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(hidden)), other(static_cast<size_t>(hidden)),
        w(static_cast<size_t>(hidden));
    load_row_f32(weight.data, weight.dtype, 0, hidden, w.data());
    for (int64_t r = begin; r < end; r++) {
      load_row_f32(x.data, x.dtype, r * hidden, hidden, row.data());
      if (add_residual) {
        load_row_f32(residual.data, residual.dtype, r * hidden, hidden, other.data());
        for (int64_t i = 0; i < hidden; i++) row[i] = round_to_dtype(row[i] + other[i], residual_out.dtype);
      }
      if (present(residual_out)) store_row_f32(residual_out.data, residual_out.dtype, r * hidden, hidden, row.data());
      // Eight partial sums: vectorisable, and closer to PyTorch's pairwise reduction than one sum.
      float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= hidden; i += 8)
        for (int l = 0; l < 8; l++) partial[l] += row[i + l] * row[i + l];
      for (; i < hidden; i++) partial[0] += row[i] * row[i];
      const float sum_sq = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                           ((partial[4] + partial[5]) + (partial[6] + partial[7]));
      const float inv_rms = 1.0f / std::sqrt(sum_sq / static_cast<float>(hidden) + p.eps);
      for (i = 0; i < hidden; i++) other[i] = round_to_dtype(row[i] * inv_rms, normed_dtype) * w[i];
      store_row_f32(out.data, out.dtype, r * hidden, hidden, other.data());
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
