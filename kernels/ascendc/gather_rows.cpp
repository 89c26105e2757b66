// UD_OP_GATHER_ROWS: out[i, :] = x[indices[i], :] converted to the output dtype; indices outside [0, T)
// (e.g. -1 padding) give zero rows. The row-gather kernel of row_gather.h, one entry per dtype pair.
#include "row_gather.h"

namespace updraft_ascendc {

UD_ASCENDC_ENTRIES2(ud_gather_rows, (GM_ADDR x, GM_ADDR indices, GM_ADDR out, RowGatherTiling tiling), (x, indices, out, tiling), RowGather)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_gather_rows(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &x = op.src[0];        // [T, H]
  const ud_tensor &indices = op.src[1];  // [S] i32
  const ud_tensor &out = op.dst[0];      // [S, H]
  Checker check(ctx, "gather_rows");
  check.required(x, "src0 (x)").required(indices, "src1 (indices)").required(out, "dst0 (out)")
      .float_dtype(x, "src0 (x)").dtype(indices, UD_I32, "src1 (indices)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t num_src_rows = rows(x), hidden = row_size(x), num_out = numel(indices);
  check.rows_are(out, num_out, "dst0 (out)").numel_is(out, num_out * hidden, "dst0 (out)")
      .fits_u32(num_src_rows, "rows").fits_u32(hidden, "hidden").fits_u32(num_out, "indices");
  if (!check.ok()) return check.status();
  if (num_out == 0 || hidden == 0) return UD_OK;
  const updraft_ascendc::RowGatherTiling tiling = row_gather_tiling(num_out, hidden, num_src_rows);
  const uint32_t blocks = row_gather_blocks(ctx, tiling);
#define UD_LAUNCH(A, B) \
  return UD_ASCENDC_LAUNCH(ctx, "gather_rows<" #A "," #B ">", blocks, updraft_ascendc::ud_gather_rows_##A##_##B, gm(x), gm(indices), gm(out), tiling)
  UD_ASCENDC_FLOAT_CASES2(x.dtype, out.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "gather_rows: unsupported dtypes");
}

}  // namespace updraft::ascendc
