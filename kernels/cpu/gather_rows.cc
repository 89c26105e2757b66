// UD_OP_GATHER_ROWS: dst[i, :] = x[indices[i], :]. Indices outside [0, T) (e.g. -1 padding) give
// zero rows, as in embedding, so a padded batch never reads out of bounds.
#include <algorithm>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_gather_rows(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &x = op.src[0];        // [T, H]
  const ud_tensor &indices = op.src[1];  // [S] i32
  const ud_tensor &out = op.dst[0];      // [S, H]
  OperandChecker check(ctx, "gather_rows");
  check.required(x, "src0 (x)").required(indices, "src1 (indices)").required(out, "dst0 (out)")
      .float_dtype(x, "src0 (x)").dtype(indices, UD_I32, "src1 (indices)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t num_src_rows = rows(x), hidden = row_size(x), num_out = numel(indices);
  check.rows_are(out, num_out, "dst0 (out)").numel_is(out, num_out * hidden, "dst0 (out)");
  if (!check.ok()) return check.status();

  const int32_t *index = static_cast<const int32_t *>(indices.data);
  ctx.pool.parallel_for(num_out, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(hidden));
    for (int64_t i = begin; i < end; i++) {
      if (index[i] >= 0 && index[i] < num_src_rows) {
        load_row_f32(x.data, x.dtype, index[i] * hidden, hidden, row.data());
      } else {
        std::fill(row.begin(), row.end(), 0.0f);
      }
      store_row_f32(out.data, out.dtype, i * hidden, hidden, row.data());
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
