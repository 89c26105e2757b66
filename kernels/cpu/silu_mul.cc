// UD_OP_SILU_MUL: out[m, i] = silu(gate[m, i]) * up[m, i], gate and up the two halves of each row.
// silu is rounded to the output dtype before the multiply, as HF's act_fn(gate) * up does in bf16.
#include <cmath>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_silu_mul(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &gate_up = op.src[0];  // [M, 2*I]
  const ud_tensor &out = op.dst[0];      // [M, I]
  OperandChecker check(ctx, "silu_mul");
  check.required(gate_up, "src0 (gate_up)").required(out, "dst0 (out)")
      .float_dtype(gate_up, "src0 (gate_up)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t m = rows(gate_up), two_i = row_size(gate_up), inter = two_i / 2;
  check.that(two_i % 2 == 0, "src0 (gate_up) rows must have an even length, got " + std::to_string(two_i))
      .rows_are(out, m, "dst0 (out)").row_size_is(out, inter, "dst0 (out)");
  if (!check.ok()) return check.status();

  ctx.pool.parallel_for(m, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(two_i)), result(static_cast<size_t>(inter));
    for (int64_t r = begin; r < end; r++) {
      load_row_f32(gate_up.data, gate_up.dtype, r * two_i, two_i, row.data());
      for (int64_t i = 0; i < inter; i++) {
        const float g = row[i];
        const float silu = round_to_dtype(g / (1.0f + std::exp(-g)), out.dtype);
        result[i] = silu * row[inter + i];
      }
      store_row_f32(out.data, out.dtype, r * inter, inter, result.data());
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
