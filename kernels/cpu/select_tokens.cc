// UD_OP_SELECT_TOKENS: a step's token ids, some taken from the previous step's samples still on the
// device (async scheduling), or a plain copy of the samples for the next step.
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_select_tokens(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &ids = op.src[0];      // [T] i32
  const ud_tensor &sources = op.src[1];  // [T] i32, optional: -1 = keep ids[i]
  const ud_tensor &table = op.src[2];    // [R] i32, optional: the previous step's samples
  const ud_tensor &out = op.dst[0];      // [D >= T] i32
  OperandChecker check(ctx, "select_tokens");
  check.required(ids, "src0 (ids)").required(out, "dst0 (out)").dtype(ids, UD_I32, "src0 (ids)")
      .dtype(sources, UD_I32, "src1 (sources)").dtype(table, UD_I32, "src2 (table)").dtype(out, UD_I32, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t n = numel(ids);
  if (numel(out) < n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: dst0 (out) " + shape_string(out) + " is smaller than src0 (ids) " + shape_string(ids));
  if (present(sources) && numel(sources) != n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) must have one entry per id");
  if (present(sources) && !present(table)) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) needs src2 (table)");
  const int32_t *in = static_cast<const int32_t *>(ids.data);
  const int32_t *src = present(sources) ? static_cast<const int32_t *>(sources.data) : nullptr;
  const int32_t *tab = present(table) ? static_cast<const int32_t *>(table.data) : nullptr;
  const int64_t table_rows = present(table) ? numel(table) : 0;
  int32_t *dst = static_cast<int32_t *>(out.data);
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    const int32_t s = src ? src[i] : -1;
    if (s >= 0 && s < table_rows) {
      dst[i] = tab[s];
    } else {
      if (s >= table_rows && bad < 0) bad = i;
      dst[i] = in[i];
    }
  }
  if (bad >= 0)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: row " + std::to_string(bad) + " takes sample " + std::to_string(src[bad]) +
                                                 " of a table with " + std::to_string(table_rows));
  return UD_OK;
}

}  // namespace updraft::cpu
