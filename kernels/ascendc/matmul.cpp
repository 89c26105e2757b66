// UD_OP_MATMUL: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) on the cube unit, accumulated in f32.
//
// Cube kernel (AIC cores): output tiles of base_m x base_n are shared out in contiguous ranges. Per tile,
// K advances in L1 chunks: x and W chunks are copied GM -> L1 with the ND -> Nz conversion (A1 / B1,
// double-buffered), then in L0 steps of base_k moved into L0A ("Zz", one LoadData per 16-row strip) and
// L0B ("Zn": W's Nz fractals are Wᵀ's Zn fractals, so one LoadData and no transpose) and multiplied into
// an f32 L0C tile (Mmad; the first step initialises it). Fixpipe writes the tile to y with the conversion
// to y's dtype. K tails: the ND -> Nz copy zero-fills the last partial fractal column; M / N tails are
// computed in the padding rows / columns and never written out.
//
// x and W must share a dtype on the cube: mixed operands are converted to f32 first (a vector kernel into
// the workspace). A bias goes through an f32 result in the workspace and a vector epilogue
// (y = round(acc + bias), one rounding as the CPU reference).
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename CT, typename TY> class MatmulCubeKernel {
 public:
  __aicore__ inline void Run(GM_ADDR x, GM_ADDR w, GM_ADDR y, const MatmulTiling &t) {
    t_ = t;
    x_.SetGlobalBuffer(reinterpret_cast<__gm__ CT *>(x), uint64_t{t.m} * t.k);  // [M, K]
    w_.SetGlobalBuffer(reinterpret_cast<__gm__ CT *>(w), uint64_t{t.n} * t.k);  // [N, K]
    y_.SetGlobalBuffer(reinterpret_cast<__gm__ TY *>(y), uint64_t{t.m} * t.n);  // [M, N]
    pipe_.InitBuffer(a1_q_, 2, t.base_m * t.k_l1 * sizeof(CT));
    pipe_.InitBuffer(b1_q_, 2, t.base_n * t.k_l1 * sizeof(CT));
    pipe_.InitBuffer(a2_q_, 2, t.base_m * t.base_k * sizeof(CT));
    pipe_.InitBuffer(b2_q_, 2, t.base_n * t.base_k * sizeof(CT));
    pipe_.InitBuffer(c_q_, 2, t.base_m * t.base_n * sizeof(f32));
    uint64_t begin = 0, end = 0;
    BlockShare(uint64_t{t.tiles_m} * t.tiles_n, begin, end);
    for (uint64_t tile = begin; tile < end; tile++) {
      const uint32_t tm = static_cast<uint32_t>(tile / t.tiles_n), tn = static_cast<uint32_t>(tile % t.tiles_n);
      Tile(tm * t.base_m, tn * t.base_n);
    }
  }

 private:
  static constexpr uint32_t kC0 = 32 / sizeof(CT);                 // fractal columns (K per fractal)
  static constexpr uint32_t kFractal = 512 / sizeof(CT);           // elements per fractal

  // GM [rows, cols] at `src` (row stride K) -> L1 Nz with `pad_rows` rows per 32-byte column strip.
  __aicore__ inline void ToNz(const LocalTensor<CT> &dst, const GlobalTensor<CT> &src, uint32_t rows, uint32_t cols, uint32_t pad_rows) {
    Nd2NzParams p;
    p.ndNum = 1;
    p.nValue = rows;
    p.dValue = cols;
    p.srcNdMatrixStride = 0;
    p.srcDValue = t_.k;
    p.dstNzC0Stride = pad_rows;
    p.dstNzNStride = 1;
    p.dstNzMatrixStride = 0;
    DataCopy(dst, src, p);
  }

  __aicore__ inline void Tile(uint32_t m0, uint32_t n0) {
    const uint32_t mv = MinU(t_.base_m, t_.m - m0), nv = MinU(t_.base_n, t_.n - n0);
    const uint32_t m_pad = AlignUp(mv, 16), n_pad = AlignUp(nv, 16);
    const uint32_t m_fr = m_pad / 16, n_fr = n_pad / 16;
    LocalTensor<f32> c = c_q_.template AllocTensor<f32>();
    for (uint32_t k0 = 0; k0 < t_.k; k0 += t_.k_l1) {
      const uint32_t kv = MinU(t_.k_l1, t_.k - k0);
      LocalTensor<CT> a1 = a1_q_.template AllocTensor<CT>();
      ToNz(a1, x_[uint64_t{m0} * t_.k + k0], mv, kv, m_pad);
      a1_q_.EnQue(a1);
      LocalTensor<CT> b1 = b1_q_.template AllocTensor<CT>();
      ToNz(b1, w_[uint64_t{n0} * t_.k + k0], nv, kv, n_pad);
      b1_q_.EnQue(b1);
      a1 = a1_q_.template DeQue<CT>();
      b1 = b1_q_.template DeQue<CT>();
      for (uint32_t ks = 0; ks < kv; ks += t_.base_k) {
        const uint32_t kstep = MinU(t_.base_k, kv - ks);
        const uint32_t k_fr = CeilDiv(kstep, kC0), k_strip = ks / kC0;
        // L1 Nz (strip-major) -> L0A Zz (row-major fractals): one LoadData per 16-row strip.
        LocalTensor<CT> a2 = a2_q_.template AllocTensor<CT>();
        for (uint32_t mb = 0; mb < m_fr; mb++) {
          LoadData2DParams p;
          p.startIndex = k_strip * m_fr + mb;
          p.repeatTimes = k_fr;
          p.srcStride = m_fr;
          p.sid = 0;
          p.dstGap = 0;
          p.ifTranspose = false;
          p.addrMode = 0;
          LoadData(a2[mb * k_fr * kFractal], a1, p);
        }
        a2_q_.EnQue(a2);
        // L1 Nz of W == L0B Zn of Wᵀ: the k_fr x n_fr fractals in order, at most 255 per LoadData.
        LocalTensor<CT> b2 = b2_q_.template AllocTensor<CT>();
        const uint32_t fractals = k_fr * n_fr;
        for (uint32_t f = 0; f < fractals; f += 255) {
          LoadData2DParams p;
          p.startIndex = k_strip * n_fr + f;
          p.repeatTimes = MinU(255, fractals - f);
          p.srcStride = 1;
          p.sid = 0;
          p.dstGap = 0;
          p.ifTranspose = false;
          p.addrMode = 0;
          LoadData(b2[f * kFractal], b1, p);
        }
        b2_q_.EnQue(b2);
        a2 = a2_q_.template DeQue<CT>();
        b2 = b2_q_.template DeQue<CT>();
        MmadParams mp;
        mp.m = mv;
        mp.n = nv;
        mp.k = kstep;
        mp.cmatrixInitVal = k0 == 0 && ks == 0;
        mp.cmatrixSource = false;
        mp.isBias = false;
        Mmad(c, a2, b2, mp);
        a2_q_.FreeTensor(a2);
        b2_q_.FreeTensor(b2);
      }
      a1_q_.FreeTensor(a1);
      b1_q_.FreeTensor(b1);
    }
    c_q_.EnQue(c);
    c = c_q_.template DeQue<f32>();
    FixpipeParamsV220 fp;
    fp.nSize = nv;
    fp.mSize = mv;
    fp.srcStride = m_pad;
    fp.dstStride = t_.n;
    fp.ndNum = 1;
    if constexpr (std::is_same<TY, f32>::value) fp.quantPre = QuantMode_t::NoQuant;
    else if constexpr (std::is_same<TY, f16>::value) fp.quantPre = QuantMode_t::F322F16;
    else fp.quantPre = QuantMode_t::F322BF16;
    Fixpipe<TY, f32, CFG_ROW_MAJOR>(y_[uint64_t{m0} * t_.n + n0], c, fp);
    c_q_.FreeTensor(c);
  }

  MatmulTiling t_;
  TPipe pipe_;
  TQue<TPosition::A1, 2> a1_q_;
  TQue<TPosition::B1, 2> b1_q_;
  TQue<TPosition::A2, 2> a2_q_;
  TQue<TPosition::B2, 2> b2_q_;
  TQue<TPosition::CO1, 2> c_q_;
  GlobalTensor<CT> x_, w_;
  GlobalTensor<TY> y_;
};

template <typename CT, typename TY> __aicore__ inline void MatmulCube(GM_ADDR x, GM_ADDR w, GM_ADDR y, MatmulTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
  MatmulCubeKernel<CT, TY> kernel;
  kernel.Run(x, w, y, tiling);
}

// dst[i] = src[i] converted (vector cores; chunks shared out in contiguous ranges).
template <typename TIn, typename TOut> __aicore__ inline void MatmulCast(GM_ADDR src, GM_ADDR dst, MatmulVectorTiling t) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  TPipe pipe;
  TQue<TPosition::VECIN, 2> in_q;
  TQue<TPosition::VECOUT, 2> out_q;
  TBuf<TPosition::VECCALC> work;
  GlobalTensor<TIn> in;
  GlobalTensor<TOut> out;
  in.SetGlobalBuffer(reinterpret_cast<__gm__ TIn *>(src), t.count);
  out.SetGlobalBuffer(reinterpret_cast<__gm__ TOut *>(dst), t.count);
  pipe.InitBuffer(in_q, 2, t.chunk * sizeof(TIn));
  pipe.InitBuffer(out_q, 2, t.chunk * sizeof(TOut));
  pipe.InitBuffer(work, t.chunk * sizeof(f32));
  uint64_t begin = 0, end = 0;
  BlockShare(CeilDiv64(t.count, t.chunk), begin, end);
  for (uint64_t item = begin; item < end; item++) {
    const uint64_t first = item * t.chunk;
    const uint32_t n = static_cast<uint32_t>(MinU64(t.chunk, t.count - first));
    LocalTensor<TIn> a = in_q.AllocTensor<TIn>();
    CopyInPadded(a, in[first], n);
    in_q.EnQue(a);
    a = in_q.DeQue<TIn>();
    LocalTensor<f32> f = work.Get<f32>();
    ToF32(f, a, n);
    in_q.FreeTensor(a);
    LocalTensor<TOut> b = out_q.AllocTensor<TOut>();
    FromF32(b, f, n);
    out_q.EnQue(b);
    b = out_q.DeQue<TOut>();
    CopyOutPadded(out[first], b, n);
    out_q.FreeTensor(b);
  }
}

// y[m, :] = round(acc[m, :] + bias) (vector cores; (row, chunk) items in contiguous ranges).
template <typename TB, typename TY> __aicore__ inline void MatmulBias(GM_ADDR acc, GM_ADDR bias, GM_ADDR y, MatmulVectorTiling t) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  TPipe pipe;
  TQue<TPosition::VECIN, 2> acc_q;
  TQue<TPosition::VECIN, 2> bias_q;
  TQue<TPosition::VECOUT, 2> out_q;
  TBuf<TPosition::VECCALC> work;
  GlobalTensor<f32> a;
  GlobalTensor<TB> b;
  GlobalTensor<TY> out;
  a.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(acc), t.count * t.row_len);   // [M, N] f32
  b.SetGlobalBuffer(reinterpret_cast<__gm__ TB *>(bias), t.row_len);             // [N]
  out.SetGlobalBuffer(reinterpret_cast<__gm__ TY *>(y), t.count * t.row_len);    // [M, N]
  pipe.InitBuffer(acc_q, 2, t.chunk * sizeof(f32));
  pipe.InitBuffer(bias_q, 2, t.chunk * sizeof(TB));
  pipe.InitBuffer(out_q, 2, t.chunk * sizeof(TY));
  pipe.InitBuffer(work, t.chunk * sizeof(f32));
  uint64_t begin = 0, end = 0;
  BlockShare(t.count * t.chunks_per_row, begin, end);
  for (uint64_t item = begin; item < end; item++) {
    const uint64_t row = item / t.chunks_per_row;
    const uint32_t col = static_cast<uint32_t>(item % t.chunks_per_row) * t.chunk;
    const uint32_t n = MinU(t.chunk, t.row_len - col);
    LocalTensor<f32> x = acc_q.AllocTensor<f32>();
    CopyInPadded(x, a[row * t.row_len + col], n);
    acc_q.EnQue(x);
    LocalTensor<TB> bb = bias_q.AllocTensor<TB>();
    CopyInPadded(bb, b[col], n);
    bias_q.EnQue(bb);
    x = acc_q.DeQue<f32>();
    bb = bias_q.DeQue<TB>();
    LocalTensor<f32> f = work.Get<f32>();
    ToF32(f, bb, n);
    Add(f, x, f, n);
    acc_q.FreeTensor(x);
    bias_q.FreeTensor(bb);
    LocalTensor<TY> o = out_q.AllocTensor<TY>();
    FromF32(o, f, n);
    out_q.EnQue(o);
    o = out_q.DeQue<TY>();
    CopyOutPadded(out[row * t.row_len + col], o, n);
    out_q.FreeTensor(o);
  }
}

UD_ASCENDC_ENTRIES2(ud_matmul_cube, (GM_ADDR x, GM_ADDR w, GM_ADDR y, MatmulTiling tiling), (x, w, y, tiling), MatmulCube)
UD_ASCENDC_ENTRIES2(ud_matmul_cast, (GM_ADDR src, GM_ADDR dst, MatmulVectorTiling tiling), (src, dst, tiling), MatmulCast)
UD_ASCENDC_ENTRIES2(ud_matmul_bias, (GM_ADDR acc, GM_ADDR bias, GM_ADDR y, MatmulVectorTiling tiling), (acc, bias, y, tiling), MatmulBias)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

namespace {

size_t align512(size_t bytes) { return (bytes + 511) / 512 * 512; }

ud_status cast_operand(LaunchContext &ctx, uint8_t *src, int32_t src_dtype, uint8_t *dst, uint64_t count) {
  updraft_ascendc::MatmulVectorTiling t{};
  t.count = count;
  t.chunk = 4096;
  const uint32_t blocks = static_cast<uint32_t>(std::min<uint64_t>(ceil_div(count, t.chunk), ctx.aiv_cores));
#define UD_LAUNCH(A) return UD_ASCENDC_LAUNCH(ctx, "matmul_cast<" #A ",f32>", blocks, updraft_ascendc::ud_matmul_cast_##A##_f32, src, dst, t)
  UD_ASCENDC_FLOAT_CASES1(src_dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "matmul: unsupported dtype");
}

}  // namespace

ud_status launch_matmul(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &x = op.src[0];     // [M, K]
  const ud_tensor &w = op.src[1];     // [N, K]
  const ud_tensor &bias = op.src[2];  // [N], optional
  const ud_tensor &y = op.dst[0];     // [M, N]
  Checker check(ctx, "matmul");
  check.required(x, "src0 (x)").required(w, "src1 (W)").shape_valid(bias, "src2 (bias)").required(y, "dst0 (y)")
      .float_dtype(x, "src0 (x)").float_dtype(w, "src1 (W)").float_dtype(bias, "src2 (bias)").float_dtype(y, "dst0 (y)")
      .unsupported_if(op.params.matmul.variant != 0, "no variant " + std::to_string(op.params.matmul.variant) + " on ascend");
  if (!check.ok()) return check.status();
  const int64_t m = rows(x), k = row_size(x), n = rows(w);
  check.row_size_is(w, k, "src1 (W)").numel_is(bias, n, "src2 (bias)").rows_are(y, m, "dst0 (y)").row_size_is(y, n, "dst0 (y)")
      .fits_u32(m, "M").fits_u32(n, "N").fits_u32(k, "K");
  if (!check.ok()) return check.status();
  if (m == 0 || n == 0) return UD_OK;

  // The cube multiplies one dtype: x and W as they are when they agree, else both in f32.
  const int32_t ct = x.dtype == w.dtype ? x.dtype : UD_F32;
  const size_t ct_size = ct == UD_F32 ? 4 : 2;
  size_t x_bytes = 0, w_bytes = 0, acc_bytes = 0;
  if (x.dtype != ct) x_bytes = align512(size_t(m) * k * 4);
  if (w.dtype != ct) w_bytes = align512(size_t(n) * k * 4);
  if (present(bias)) acc_bytes = align512(size_t(m) * n * 4);
  if (ud_status s = need_workspace(ctx, x_bytes + w_bytes + acc_bytes, "matmul"); s != UD_OK) return s;
  uint8_t *ws = static_cast<uint8_t *>(ctx.workspace);
  uint8_t *xp = gm(x), *wp = gm(w), *yp = gm(y);
  if (x_bytes) {
    if (ud_status s = cast_operand(ctx, gm(x), x.dtype, ws, uint64_t(m) * k); s != UD_OK) return s;
    xp = ws;
  }
  if (w_bytes) {
    if (ud_status s = cast_operand(ctx, gm(w), w.dtype, ws + x_bytes, uint64_t(n) * k); s != UD_OK) return s;
    wp = ws + x_bytes;
  }
  const int32_t cube_out = present(bias) ? UD_F32 : y.dtype;
  if (present(bias)) yp = ws + x_bytes + w_bytes;

  // Tiles: 128 x 128 outputs (fewer rows for decode), L0 steps of one 32-byte strip x 4 fractals deep.
  updraft_ascendc::MatmulTiling t{};
  t.m = static_cast<uint32_t>(m);
  t.n = static_cast<uint32_t>(n);
  t.k = static_cast<uint32_t>(k);
  t.base_m = std::min<uint32_t>(128, align_up(t.m, 16));
  t.base_n = std::min<uint32_t>(128, align_up(t.n, 16));
  t.base_k = static_cast<uint32_t>(128 / ct_size);  // 64 (16-bit) or 32 (f32): 16 KiB of L0A per 128 rows
  t.k_l1 = 4 * t.base_k;
  t.tiles_m = ceil_div(t.m, t.base_m);
  t.tiles_n = ceil_div(t.n, t.base_n);
  if (k == 0) return ctx.fail(UD_ERR_UNSUPPORTED, "matmul: K = 0 is not supported on ascend");
  const uint32_t blocks = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{t.tiles_m} * t.tiles_n, ctx.aic_cores));
  ud_status status = UD_ERR_UNSUPPORTED;
#define UD_LAUNCH(A, B) \
  status = UD_ASCENDC_LAUNCH(ctx, "matmul_cube<" #A "," #B ">", blocks, updraft_ascendc::ud_matmul_cube_##A##_##B, xp, wp, yp, t); break
  UD_ASCENDC_FLOAT_CASES2(ct, cube_out, UD_LAUNCH)
#undef UD_LAUNCH
  if (status != UD_OK || !present(bias)) return status;

  updraft_ascendc::MatmulVectorTiling e{};
  e.count = static_cast<uint64_t>(m);
  e.row_len = static_cast<uint32_t>(n);
  e.chunk = std::min<uint32_t>(align_up(t.n, 16), 4096);
  e.chunks_per_row = ceil_div(t.n, e.chunk);
  const uint32_t vblocks = static_cast<uint32_t>(std::min<uint64_t>(e.count * e.chunks_per_row, ctx.aiv_cores));
#define UD_LAUNCH(A, B) \
  return UD_ASCENDC_LAUNCH(ctx, "matmul_bias<" #A "," #B ">", vblocks, updraft_ascendc::ud_matmul_bias_##A##_##B, yp, gm(bias), gm(y), e)
  UD_ASCENDC_FLOAT_CASES2(bias.dtype, y.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "matmul: unsupported dtypes");
}

}  // namespace updraft::ascendc
