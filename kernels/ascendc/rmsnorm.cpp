// UD_OP_RMSNORM, optionally fused with the residual add (vLLM's fused_add_rms_norm), in the CPU
// reference's order: with add_residual, sum = round(x + residual) to the residual dtype (written to dst1,
// which may alias src1); mean of squares in f32; y = round(v * 1/sqrt(mean + eps)) to the normalised
// tensor's dtype, times the weight, rounded to the output dtype.
//
// Vector cores; a block owns whole rows (contiguous share). A row of up to 4096 elements stays in UB
// between the sum-of-squares pass and the normalisation; longer rows are processed in chunks twice,
// the second pass re-reading x, or the rounded sum from dst1 (after ordering this block's own GM writes
// before its reads). Activations (x, residual, out, residual out) share one dtype T; the weight has its
// own (TW).
#include <algorithm>
#include <cmath>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename T, typename TW> class RmsNormKernel {
 public:
  __aicore__ inline void Run(GM_ADDR x, GM_ADDR residual, GM_ADDR weight, GM_ADDR out, GM_ADDR residual_out, const RmsNormTiling &t) {
    t_ = t;
    const uint64_t total = uint64_t{t.num_rows} * t.hidden;
    x_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(x), total);            // [M, H]
    if (t.add_residual) res_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(residual), total);  // [M, H]
    w_.SetGlobalBuffer(reinterpret_cast<__gm__ TW *>(weight), t.hidden);  // [H]
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(out), total);        // [M, H]
    if (t.write_residual) res_out_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(residual_out), total);  // [M, H]
    pipe_.InitBuffer(x_q_, 2, t.chunk * sizeof(T));
    pipe_.InitBuffer(r_q_, 2, t.chunk * sizeof(T));
    pipe_.InitBuffer(w_q_, 1, t.chunk * sizeof(TW));
    pipe_.InitBuffer(out_q_, 2, t.chunk * sizeof(T));
    pipe_.InitBuffer(v_buf_, t.chunk * sizeof(f32));
    pipe_.InitBuffer(tmp_buf_, t.chunk * sizeof(f32));
    pipe_.InitBuffer(round_buf_, t.chunk * sizeof(T));
    pipe_.InitBuffer(red_buf_, kBlockBytes);
    pipe_.InitBuffer(work_buf_, AlignUp(CeilDiv(t.chunk * sizeof(f32), kRepeatBytes), 8) * sizeof(f32));
    uint64_t begin = 0, end = 0;
    BlockShare(t.num_rows, begin, end);
    for (uint64_t row = begin; row < end; row++) Row(row);
  }

 private:
  // Pass 1 over one chunk: v = x (+ residual, rounded), optionally written to dst1; returns its sum of squares.
  __aicore__ inline float LoadChunk(uint64_t offset, uint32_t n) {
    LocalTensor<T> xin = x_q_.template AllocTensor<T>();
    CopyInPadded(xin, x_[offset], n);
    x_q_.EnQue(xin);
    if (t_.add_residual) {
      LocalTensor<T> rin = r_q_.template AllocTensor<T>();
      CopyInPadded(rin, res_[offset], n);
      r_q_.EnQue(rin);
    }
    LocalTensor<f32> v = v_buf_.Get<f32>(), tmp = tmp_buf_.Get<f32>();
    xin = x_q_.template DeQue<T>();
    ToF32(v, xin, n);
    x_q_.FreeTensor(xin);
    if (t_.add_residual) {
      LocalTensor<T> rin = r_q_.template DeQue<T>();
      ToF32(tmp, rin, n);
      r_q_.FreeTensor(rin);
      Add(v, v, tmp, n);
      RoundTo(v, round_buf_.Get<T>(), n);
    }
    if (t_.write_residual) {
      LocalTensor<T> y = out_q_.template AllocTensor<T>();
      FromF32(y, v, n);
      out_q_.EnQue(y);
      y = out_q_.template DeQue<T>();
      CopyOutPadded(res_out_[offset], y, n);
      out_q_.FreeTensor(y);
    }
    Mul(tmp, v, v, n);
    LocalTensor<f32> red = red_buf_.Get<f32>();
    ReduceSum(red, tmp, work_buf_.Get<f32>(), n);
    VectorToScalar();
    return red.GetValue(0);
  }

  // Pass 2 over one chunk (v holds the chunk): out = round(v * inv_rms) * w.
  __aicore__ inline void StoreChunk(uint64_t offset, uint32_t col, uint32_t n, float inv_rms) {
    LocalTensor<TW> win = w_q_.template AllocTensor<TW>();
    CopyInPadded(win, w_[col], n);
    w_q_.EnQue(win);
    LocalTensor<f32> v = v_buf_.Get<f32>(), tmp = tmp_buf_.Get<f32>();
    Muls(v, v, inv_rms, n);
    RoundTo(v, round_buf_.Get<T>(), n);
    win = w_q_.template DeQue<TW>();
    ToF32(tmp, win, n);
    w_q_.FreeTensor(win);
    Mul(v, v, tmp, n);
    LocalTensor<T> y = out_q_.template AllocTensor<T>();
    FromF32(y, v, n);
    out_q_.EnQue(y);
    y = out_q_.template DeQue<T>();
    CopyOutPadded(out_[offset], y, n);
    out_q_.FreeTensor(y);
  }

  // Pass 2's reload of a chunk when the row did not fit: the rounded sum from dst1, or x.
  __aicore__ inline void ReloadChunk(uint64_t offset, uint32_t n) {
    LocalTensor<T> xin = x_q_.template AllocTensor<T>();
    if (t_.add_residual) {
      // dst1 was written by this block's MTE3 in pass 1: order those writes before this read.
      event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE3_MTE2);
      SetFlag<HardEvent::MTE3_MTE2>(e);
      WaitFlag<HardEvent::MTE3_MTE2>(e);
      CopyInPadded(xin, res_out_[offset], n);
    } else {
      CopyInPadded(xin, x_[offset], n);
    }
    x_q_.EnQue(xin);
    xin = x_q_.template DeQue<T>();
    ToF32(v_buf_.Get<f32>(), xin, n);
    x_q_.FreeTensor(xin);
  }

  __aicore__ inline void Row(uint64_t row) {
    const uint64_t base = row * t_.hidden;
    float sum_sq = 0.0f;
    for (uint32_t c = 0; c < t_.chunks_per_row; c++) {
      const uint32_t col = c * t_.chunk, n = MinU(t_.chunk, t_.hidden - col);
      sum_sq += LoadChunk(base + col, n);
    }
    // inv_rms = 1 / sqrt(mean + eps): the square root on the vector unit (one block of 8 lanes).
    LocalTensor<f32> red = red_buf_.Get<f32>();
    const float mean_eps = sum_sq / static_cast<float>(t_.hidden) + t_.eps;
    Duplicate(red, mean_eps, 8);
    Sqrt(red, red, 8);
    VectorToScalar();
    const float inv_rms = 1.0f / red.GetValue(0);
    for (uint32_t c = 0; c < t_.chunks_per_row; c++) {
      const uint32_t col = c * t_.chunk, n = MinU(t_.chunk, t_.hidden - col);
      if (t_.chunks_per_row > 1) ReloadChunk(base + col, n);
      StoreChunk(base + col, col, n, inv_rms);
    }
    VectorToScalar();  // the next row's scalar reads of `red` follow this row's vector work
  }

  RmsNormTiling t_;
  TPipe pipe_;
  TQue<TPosition::VECIN, 2> x_q_, r_q_;
  TQue<TPosition::VECIN, 1> w_q_;
  TQue<TPosition::VECOUT, 2> out_q_;
  TBuf<TPosition::VECCALC> v_buf_, tmp_buf_, round_buf_, red_buf_, work_buf_;
  GlobalTensor<T> x_, res_, out_, res_out_;
  GlobalTensor<TW> w_;
};

template <typename T, typename TW>
__aicore__ inline void RmsNorm(GM_ADDR x, GM_ADDR residual, GM_ADDR weight, GM_ADDR out, GM_ADDR residual_out, RmsNormTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  RmsNormKernel<T, TW> kernel;
  kernel.Run(x, residual, weight, out, residual_out, tiling);
}

UD_ASCENDC_ENTRIES2(ud_rmsnorm, (GM_ADDR x, GM_ADDR residual, GM_ADDR weight, GM_ADDR out, GM_ADDR residual_out, RmsNormTiling tiling),
                    (x, residual, weight, out, residual_out, tiling), RmsNorm)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_rmsnorm(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &x = op.src[0];             // [M, H]
  const ud_tensor &residual = op.src[1];      // [M, H], used when add_residual
  const ud_tensor &weight = op.src[2];        // [H]
  const ud_tensor &out = op.dst[0];           // [M, H]
  const ud_tensor &residual_out = op.dst[1];  // [M, H], optional without add_residual
  const ud_rmsnorm_params &p = op.params.rmsnorm;
  const bool add_residual = p.add_residual != 0;
  Checker check(ctx, "rmsnorm");
  check.required(x, "src0 (x)").required(weight, "src2 (weight)").required(out, "dst0 (out)").shape_valid(residual_out, "dst1 (residual out)")
      .float_dtype(x, "src0 (x)").float_dtype(weight, "src2 (weight)").float_dtype(out, "dst0 (out)").float_dtype(residual_out, "dst1 (residual out)");
  if (add_residual) check.required(residual, "src1 (residual)").required(residual_out, "dst1 (residual out)").float_dtype(residual, "src1 (residual)");
  // One activation dtype per launch (fewer kernel instantiations); the weight may differ.
  check.unsupported_if(out.dtype != x.dtype || (present(residual_out) && residual_out.dtype != x.dtype) ||
                           (add_residual && residual.dtype != x.dtype),
                       "x, residual, out and residual out must share one dtype on ascend");
  if (!check.ok()) return check.status();
  const int64_t hidden = numel(weight), total = numel(x);
  const int64_t m = hidden > 0 ? total / hidden : 0;
  check.that(hidden > 0 && total % hidden == 0,
             "src0 (x) " + shape_string(x) + " is not a whole number of rows of the weight's " + std::to_string(hidden) + " elements")
      .numel_is(out, total, "dst0 (out)").numel_is(residual_out, total, "dst1 (residual out)");
  if (add_residual) check.numel_is(residual, total, "src1 (residual)");
  check.that(std::isfinite(p.eps) && p.eps >= 0.0f, "eps must be a finite number >= 0").fits_u32(m, "rows").fits_u32(hidden, "hidden");
  if (!check.ok()) return check.status();
  if (m == 0) return UD_OK;
  updraft_ascendc::RmsNormTiling tiling{};
  tiling.num_rows = static_cast<uint32_t>(m);
  tiling.hidden = static_cast<uint32_t>(hidden);
  tiling.chunk = std::min<uint32_t>(align_up(static_cast<uint32_t>(hidden), 16), 4096);
  tiling.chunks_per_row = ceil_div(static_cast<uint64_t>(hidden), tiling.chunk);
  tiling.eps = p.eps;
  tiling.add_residual = add_residual ? 1 : 0;
  tiling.write_residual = present(residual_out) ? 1 : 0;
  const uint32_t blocks = static_cast<uint32_t>(std::min<int64_t>(m, ctx.aiv_cores));
#define UD_LAUNCH(A, B) \
  return UD_ASCENDC_LAUNCH(ctx, "rmsnorm<" #A "," #B ">", blocks, updraft_ascendc::ud_rmsnorm_##A##_##B, gm(x), gm(residual), gm(weight), gm(out), gm(residual_out), tiling)
  UD_ASCENDC_FLOAT_CASES2(x.dtype, weight.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "rmsnorm: unsupported dtypes");
}

}  // namespace updraft::ascendc
