// UD_OP_FILL_RANDOM: dst[i] = std * z(seed, i) with the CPU reference's formula (kernels/cpu/fill_random.cc):
// r = mix64(seed ^ mix64(i)), z = (sum of its four 16-bit fields - 2 * 65535) * sqrt(3) / 65536, all exact
// integer work plus two f32 multiplies, so every backend fills bit-identical dummy weights.
//
// Vector cores for the conversion, the scalar unit for the 64-bit hashing (the vector unit has no 64-bit
// multiply). Work items are chunks of 2048 elements, a contiguous share per block.
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename TOut> class FillRandomKernel {
 public:
  __aicore__ inline void Run(GM_ADDR out,  // [count] TOut
                             const FillRandomTiling &t) {
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ TOut *>(out), t.count);
    pipe_.InitBuffer(out_q_, 2, t.chunk * sizeof(TOut));
    pipe_.InitBuffer(values_, t.chunk * sizeof(f32));
    const float unit = 1.7320508f / 65536.0f;
    uint64_t begin = 0, end = 0;
    BlockShare(CeilDiv64(t.count, t.chunk), begin, end);
    LocalTensor<f32> v = values_.Get<f32>();
    for (uint64_t item = begin; item < end; item++) {
      const uint64_t first = item * t.chunk;
      const uint32_t n = static_cast<uint32_t>(MinU64(t.chunk, t.count - first));
      if (item != begin) VectorToScalar();  // the previous chunk's cast has read `v`
      for (uint32_t j = 0; j < n; j++) {
        const uint64_t r = Mix64(t.seed ^ Mix64(first + j));
        const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
        const float z = static_cast<float>(sum - 2 * 65535) * unit;
        v.SetValue(j, z * t.std);
      }
      ScalarToVector();
      LocalTensor<TOut> y = out_q_.template AllocTensor<TOut>();
      FromF32(y, v, n);
      out_q_.EnQue(y);
      y = out_q_.template DeQue<TOut>();
      CopyOutPadded(out_[first], y, n);
      out_q_.FreeTensor(y);
    }
  }

 private:
  TPipe pipe_;
  TQue<TPosition::VECOUT, 2> out_q_;
  TBuf<TPosition::VECCALC> values_;
  GlobalTensor<TOut> out_;
};

template <typename TOut> __aicore__ inline void FillRandom(GM_ADDR out, FillRandomTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  FillRandomKernel<TOut> kernel;
  kernel.Run(out, tiling);
}

UD_ASCENDC_ENTRIES1(ud_fill_random, (GM_ADDR out, FillRandomTiling tiling), (out, tiling), FillRandom)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_fill_random(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &out = op.dst[0];  // any shape, float dtype
  const ud_fill_random_params &p = op.params.fill_random;
  Checker check(ctx, "fill_random");
  check.required(out, "dst0 (out)").float_dtype(out, "dst0 (out)").that(std::isfinite(p.std), "std must be finite");
  if (!check.ok()) return check.status();
  const int64_t count = numel(out);
  if (count == 0) return UD_OK;
  updraft_ascendc::FillRandomTiling tiling{};
  tiling.seed = p.seed;
  tiling.count = static_cast<uint64_t>(count);
  tiling.std = p.std;
  tiling.chunk = 2048;
  const uint32_t blocks = static_cast<uint32_t>(std::min<uint64_t>(ceil_div(tiling.count, tiling.chunk), ctx.aiv_cores));
#define UD_LAUNCH(A) return UD_ASCENDC_LAUNCH(ctx, "fill_random<" #A ">", blocks, updraft_ascendc::ud_fill_random_##A, gm(out), tiling)
  UD_ASCENDC_FLOAT_CASES1(out.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "fill_random: unsupported dtype");
}

}  // namespace updraft::ascendc
