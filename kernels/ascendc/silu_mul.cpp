// UD_OP_SILU_MUL: out[m, i] = silu(gate[m, i]) * up[m, i], gate and up the two halves of each row of
// gate_up. As the CPU reference: silu = g / (1 + exp(-g)) in f32, rounded to the output dtype before the
// multiply (HF's act_fn(gate) * up in bf16).
//
// Vector cores. Work items are (row, chunk of up to 2048 columns), a contiguous share per block; gate and
// up chunks come in through 2-deep queues, the result goes out through one.
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename TIn, typename TOut> class SiluMulKernel {
 public:
  __aicore__ inline void Run(GM_ADDR gate_up,  // [M, 2I] TIn
                             GM_ADDR out,      // [M, I] TOut
                             const SiluMulTiling &t) {
    in_.SetGlobalBuffer(reinterpret_cast<__gm__ TIn *>(gate_up), uint64_t{t.num_rows} * 2 * t.inter);
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ TOut *>(out), uint64_t{t.num_rows} * t.inter);
    pipe_.InitBuffer(gate_q_, 2, t.chunk * sizeof(TIn));
    pipe_.InitBuffer(up_q_, 2, t.chunk * sizeof(TIn));
    pipe_.InitBuffer(out_q_, 2, t.chunk * sizeof(TOut));
    pipe_.InitBuffer(g_buf_, t.chunk * sizeof(f32));
    pipe_.InitBuffer(u_buf_, t.chunk * sizeof(f32));
    pipe_.InitBuffer(e_buf_, t.chunk * sizeof(f32));
    pipe_.InitBuffer(round_buf_, t.chunk * sizeof(TOut));
    uint64_t begin = 0, end = 0;
    BlockShare(uint64_t{t.num_rows} * t.chunks_per_row, begin, end);
    for (uint64_t item = begin; item < end; item++) {
      const uint64_t row = item / t.chunks_per_row;
      const uint32_t col = static_cast<uint32_t>(item % t.chunks_per_row) * t.chunk;
      const uint32_t n = MinU(t.chunk, t.inter - col);
      const uint64_t base = row * 2 * t.inter + col;
      LocalTensor<TIn> g = gate_q_.template AllocTensor<TIn>();
      CopyInPadded(g, in_[base], n);
      gate_q_.EnQue(g);
      LocalTensor<TIn> u = up_q_.template AllocTensor<TIn>();
      CopyInPadded(u, in_[base + t.inter], n);
      up_q_.EnQue(u);
      Compute(n);
      LocalTensor<TOut> y = out_q_.template DeQue<TOut>();
      CopyOutPadded(out_[row * t.inter + col], y, n);
      out_q_.FreeTensor(y);
    }
  }

 private:
  __aicore__ inline void Compute(uint32_t n) {
    LocalTensor<f32> g = g_buf_.Get<f32>(), u = u_buf_.Get<f32>(), e = e_buf_.Get<f32>();
    LocalTensor<TIn> gin = gate_q_.template DeQue<TIn>();
    ToF32(g, gin, n);
    gate_q_.FreeTensor(gin);
    LocalTensor<TIn> uin = up_q_.template DeQue<TIn>();
    ToF32(u, uin, n);
    up_q_.FreeTensor(uin);
    Muls(e, g, -1.0f, n);  // exp(-g)
    Exp(e, e, n);
    Adds(e, e, 1.0f, n);   // 1 + exp(-g)
    Div(e, g, e, n);       // silu(g)
    RoundTo(e, round_buf_.Get<TOut>(), n);
    Mul(e, e, u, n);
    LocalTensor<TOut> y = out_q_.template AllocTensor<TOut>();
    FromF32(y, e, n);
    out_q_.EnQue(y);
  }

  TPipe pipe_;
  TQue<TPosition::VECIN, 2> gate_q_, up_q_;
  TQue<TPosition::VECOUT, 2> out_q_;
  TBuf<TPosition::VECCALC> g_buf_, u_buf_, e_buf_, round_buf_;
  GlobalTensor<TIn> in_;
  GlobalTensor<TOut> out_;
};

template <typename TIn, typename TOut> __aicore__ inline void SiluMul(GM_ADDR gate_up, GM_ADDR out, SiluMulTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  SiluMulKernel<TIn, TOut> kernel;
  kernel.Run(gate_up, out, tiling);
}

UD_ASCENDC_ENTRIES2(ud_silu_mul, (GM_ADDR gate_up, GM_ADDR out, SiluMulTiling tiling), (gate_up, out, tiling), SiluMul)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_silu_mul(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &gate_up = op.src[0];  // [M, 2*I]
  const ud_tensor &out = op.dst[0];      // [M, I]
  Checker check(ctx, "silu_mul");
  check.required(gate_up, "src0 (gate_up)").required(out, "dst0 (out)").float_dtype(gate_up, "src0 (gate_up)").float_dtype(out, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t m = rows(gate_up), two_i = row_size(gate_up), inter = two_i / 2;
  check.that(two_i % 2 == 0, "src0 (gate_up) rows must have an even length, got " + std::to_string(two_i))
      .rows_are(out, m, "dst0 (out)").row_size_is(out, inter, "dst0 (out)").fits_u32(m, "rows").fits_u32(two_i, "row length");
  if (!check.ok()) return check.status();
  if (m == 0 || inter == 0) return UD_OK;
  updraft_ascendc::SiluMulTiling tiling{};
  tiling.num_rows = static_cast<uint32_t>(m);
  tiling.inter = static_cast<uint32_t>(inter);
  tiling.chunk = std::min<uint32_t>(align_up(static_cast<uint32_t>(inter), 16), 2048);
  tiling.chunks_per_row = ceil_div(static_cast<uint64_t>(inter), tiling.chunk);
  const uint32_t blocks = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{tiling.num_rows} * tiling.chunks_per_row, ctx.aiv_cores));
#define UD_LAUNCH(A, B) \
  return UD_ASCENDC_LAUNCH(ctx, "silu_mul<" #A "," #B ">", blocks, updraft_ascendc::ud_silu_mul_##A##_##B, gm(gate_up), gm(out), tiling)
  UD_ASCENDC_FLOAT_CASES2(gate_up.dtype, out.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "silu_mul: unsupported dtypes");
}

}  // namespace updraft::ascendc
