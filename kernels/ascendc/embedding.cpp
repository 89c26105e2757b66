// UD_OP_EMBEDDING: out[t, :] = table[ids[t], :] converted to the output dtype; ids outside [0, vocab)
// give zero rows. The row-gather kernel of row_gather.h, one entry per (table, out) dtype pair.
#include "row_gather.h"

namespace updraft_ascendc {

UD_ASCENDC_ENTRIES2(ud_embedding, (GM_ADDR table, GM_ADDR ids, GM_ADDR out, RowGatherTiling tiling), (table, ids, out, tiling), RowGather)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_embedding(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &table = op.src[0];  // [vocab, hidden]
  const ud_tensor &ids = op.src[1];    // [numTokens] i32
  const ud_tensor &out = op.dst[0];    // [numTokens, hidden]
  Checker check(ctx, "embedding");
  check.required(table, "src0 (table)").required(ids, "src1 (ids)").required(out, "dst0 (out)")
      .float_dtype(table, "src0 (table)").dtype(ids, UD_I32, "src1 (ids)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t vocab = rows(table), hidden = row_size(table), num_tokens = numel(ids);
  check.rows_are(out, num_tokens, "dst0 (out)").numel_is(out, num_tokens * hidden, "dst0 (out)")
      .fits_u32(vocab, "vocab").fits_u32(hidden, "hidden").fits_u32(num_tokens, "numTokens");
  if (!check.ok()) return check.status();
  if (num_tokens == 0 || hidden == 0) return UD_OK;
  const updraft_ascendc::RowGatherTiling tiling = row_gather_tiling(num_tokens, hidden, vocab);
  const uint32_t blocks = row_gather_blocks(ctx, tiling);
#define UD_LAUNCH(A, B) \
  return UD_ASCENDC_LAUNCH(ctx, "embedding<" #A "," #B ">", blocks, updraft_ascendc::ud_embedding_##A##_##B, gm(table), gm(ids), gm(out), tiling)
  UD_ASCENDC_FLOAT_CASES2(table.dtype, out.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "embedding: unsupported dtypes");
}

}  // namespace updraft::ascendc
