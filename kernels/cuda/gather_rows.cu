// UD_OP_GATHER_ROWS: out[i, :] = x[indices[i], :]; indices outside [0, T) (e.g. -1 padding) give zero
// rows, so a padded batch never reads out of bounds. Same kernel as embedding (rowwise.cuh).
#include "rowwise.cuh"

namespace updraft::cuda {

ud_status launch_gather_rows(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &x = op.src[0];        // [T, H]
  const ud_tensor &indices = op.src[1];  // [S] i32
  const ud_tensor &out = op.dst[0];      // [S, H]
  rowwise::Checker check(ctx, "gather_rows");
  check.required(x, "src0 (x)").required(indices, "src1 (indices)").required(out, "dst0 (out)")
      .float_dtype(x, "src0 (x)").dtype(indices, UD_I32, "src1 (indices)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t num_src_rows = rows(x), hidden = row_size(x), num_out = numel(indices);
  check.rows_are(out, num_out, "dst0 (out)").numel_is(out, num_out * hidden, "dst0 (out)");
  if (!check.ok()) return check.status();
  return rowwise::launch_gather(ctx, "gather_rows", x, num_src_rows, hidden, indices, num_out, out);
}

}  // namespace updraft::cuda
