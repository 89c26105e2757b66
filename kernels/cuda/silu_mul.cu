// UD_OP_SILU_MUL: out[m, i] = silu(gate[m, i]) * up[m, i], gate and up the two halves of each row.
//
// As on the CPU (kernels/cpu/silu_mul.cc): silu = g / (1 + exp(-g)) in f32 with the accurate expf
// (no fast math), rounded to the output dtype before the multiply (HF's act_fn(gate) * up in bf16),
// and explicit _rn intrinsics so nvcc cannot contract the arithmetic into a different rounding.
// One thread per 8 outputs (16-byte loads of gate and up) when the row allows, else per output.
#include "rowwise.cuh"

namespace updraft::cuda {
namespace {

template <typename TOut> __device__ __forceinline__ float silu_times(float g, float u) {
  const float silu = rowwise::round_to<TOut>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
  return __fmul_rn(silu, u);
}

template <typename TIn, typename TOut, bool kVec>
__global__ void silu_mul_kernel(const TIn *__restrict__ gate_up,  // [rows, 2 * inter]
                                TOut *__restrict__ out,           // [rows, inter]
                                int64_t rows, int64_t inter) {
  pdl_launch_dependents();  // a PDL-launched consumer (matmul v5) may start streaming its weights
  const int64_t per_row = kVec ? inter / rowwise::kChunk : inter;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (item >= rows * per_row) return;
  const int64_t r = item / per_row, c = item - r * per_row;
  const TIn *gate = gate_up + r * 2 * inter;
  const TIn *up = gate + inter;
  if constexpr (kVec) {
    float g[8], u[8], y[8];
    rowwise::load8(gate + c * rowwise::kChunk, g);
    rowwise::load8(up + c * rowwise::kChunk, u);
#pragma unroll
    for (int e = 0; e < 8; e++) y[e] = silu_times<TOut>(g[e], u[e]);
    rowwise::store8(out + r * inter + c * rowwise::kChunk, y);
  } else {
    out[r * inter + c] = from_float<TOut>(silu_times<TOut>(to_float(gate[c]), to_float(up[c])));
  }
}

}  // namespace

ud_status launch_silu_mul(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &gate_up = op.src[0];  // [M, 2*I]
  const ud_tensor &out = op.dst[0];      // [M, I]
  rowwise::Checker check(ctx, "silu_mul");
  check.required(gate_up, "src0 (gate_up)").required(out, "dst0 (out)")
      .float_dtype(gate_up, "src0 (gate_up)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t m = rows(gate_up), two_i = row_size(gate_up), inter = two_i / 2;
  check.that(two_i % 2 == 0, "src0 (gate_up) rows must have an even length, got " + std::to_string(two_i))
      .rows_are(out, m, "dst0 (out)").row_size_is(out, inter, "dst0 (out)");
  if (!check.ok()) return check.status();
  if (m == 0 || inter == 0) return UD_OK;

  // The up half starts `inter` elements into the row: aligned whenever inter % 8 == 0.
  const bool vec = rowwise::vector_ok(inter, {gate_up.data, out.data});
  const int64_t items = m * (vec ? inter / rowwise::kChunk : inter);
  constexpr int kThreads = 256;
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "silu_mul: tensor too large");
  const bool dispatched = rowwise::dispatch_float2(gate_up.dtype, out.dtype, [&](auto in_t, auto out_t) {
    using TIn = decltype(in_t);
    using TOut = decltype(out_t);
    const auto *in = static_cast<const TIn *>(gate_up.data);
    auto *o = static_cast<TOut *>(out.data);
    if (vec) {
      silu_mul_kernel<TIn, TOut, true><<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream>>>(in, o, m, inter);
    } else {
      silu_mul_kernel<TIn, TOut, false><<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream>>>(in, o, m, inter);
    }
  });
  if (!dispatched) return ctx.fail(UD_ERR_UNSUPPORTED, "silu_mul: unsupported dtypes");
  return check_launch(ctx, "silu_mul");
}

}  // namespace updraft::cuda
