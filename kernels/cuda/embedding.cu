// UD_OP_EMBEDDING: out[t, :] = table[ids[t], :], converted to the output dtype; ids outside
// [0, vocab) give zero rows. One block per token, 16-byte chunks when the row allows (rowwise.cuh).
#include "rowwise.cuh"

namespace updraft::cuda {

ud_status launch_embedding(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &table = op.src[0];  // [vocab, hidden]
  const ud_tensor &ids = op.src[1];    // [numTokens] i32
  const ud_tensor &out = op.dst[0];    // [numTokens, hidden]
  rowwise::Checker check(ctx, "embedding");
  check.required(table, "src0 (table)").required(ids, "src1 (ids)").required(out, "dst0 (out)")
      .float_dtype(table, "src0 (table)").dtype(ids, UD_I32, "src1 (ids)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t vocab = rows(table), hidden = row_size(table), num_tokens = numel(ids);
  check.rows_are(out, num_tokens, "dst0 (out)").numel_is(out, num_tokens * hidden, "dst0 (out)");
  if (!check.ok()) return check.status();
  return rowwise::launch_gather(ctx, "embedding", table, vocab, hidden, ids, num_tokens, out);
}

}  // namespace updraft::cuda
