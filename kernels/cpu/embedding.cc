// UD_OP_EMBEDDING: out[t, :] = table[ids[t], :]; ids outside [0, vocab) give zero rows.
#include <algorithm>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_embedding(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &table = op.src[0];  // [vocab, hidden]
  const ud_tensor &ids = op.src[1];    // [numTokens] i32
  const ud_tensor &out = op.dst[0];    // [numTokens, hidden]
  OperandChecker check(ctx, "embedding");
  check.required(table, "src0 (table)").required(ids, "src1 (ids)").required(out, "dst0 (out)")
      .float_dtype(table, "src0 (table)").dtype(ids, UD_I32, "src1 (ids)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t vocab = rows(table), hidden = row_size(table), num_tokens = numel(ids);
  check.rows_are(out, num_tokens, "dst0 (out)").numel_is(out, num_tokens * hidden, "dst0 (out)");
  if (!check.ok()) return check.status();

  const int32_t *id = static_cast<const int32_t *>(ids.data);
  ctx.pool.parallel_for(num_tokens, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(hidden));
    for (int64_t t = begin; t < end; t++) {
      if (id[t] >= 0 && id[t] < vocab) {
        load_row_f32(table.data, table.dtype, id[t] * hidden, hidden, row.data());
      } else {
        std::fill(row.begin(), row.end(), 0.0f);
      }
      store_row_f32(out.data, out.dtype, t * hidden, hidden, row.data());
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
