// UD_OP_FILL_RANDOM: dst0[i] = std * z(seed, i), z a deterministic, roughly standard normal value.
//
// z is an Irwin–Hall sum of four 16-bit uniforms taken from r = ud_mix64(seed ^ ud_mix64(i)):
// an integer sum, one int→float conversion and two f32 multiplies, all exactly rounded, so every
// backend fills `--load-format dummy` weights with bit-identical values (before the final rounding
// to a 16-bit dtype, which is exact too). The spread is the normal's ±3.46σ, enough for dummy weights.
#include <cmath>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {

ud_status launch_fill_random(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &out = op.dst[0];  // any shape, float dtype
  const ud_fill_random_params &p = op.params.fill_random;
  OperandChecker check(ctx, "fill_random");
  check.required(out, "dst0 (out)").float_dtype(out, "dst0 (out)")
      .that(std::isfinite(p.std), "std must be finite");
  if (!check.ok()) return check.status();

  // sqrt(3) / 65536: the sum of four uniforms on [0, 65535] has standard deviation ~65536/sqrt(3).
  const float unit = 1.7320508f / 65536.0f;
  ctx.pool.parallel_for(numel(out), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const uint64_t r = ud_mix64(p.seed ^ ud_mix64(static_cast<uint64_t>(i)));
      const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
      const float z = static_cast<float>(sum - 2 * 65535) * unit;
      store_from_f32(out.data, out.dtype, i, z * p.std);
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
