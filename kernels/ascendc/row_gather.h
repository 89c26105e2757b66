// row_gather.h — out[r, :] = src[index[r], :] converted to the output dtype, zero rows for indices outside
// [0, num_src_rows): the kernel behind embedding and gather_rows, and its host-side launcher.
//
// Vector cores only. Work items are (row, chunk of up to `chunk` elements); each block takes a
// contiguous share. Per item: GM -> VECIN (DataCopyPad, any length) -> f32 -> output dtype in VECOUT ->
// GM; 2-deep queues so the next item's copy-in overlaps this item's cast and copy-out.
#ifndef UPDRAFT_ASCENDC_ROW_GATHER_H
#define UPDRAFT_ASCENDC_ROW_GATHER_H

#include "common.h"

namespace updraft_ascendc {

template <typename TIn, typename TOut> class RowGatherKernel {
 public:
  __aicore__ inline void Run(GM_ADDR src,    // [num_src_rows, row_len] TIn
                             GM_ADDR index,  // [num_rows] i32
                             GM_ADDR out,    // [num_rows, row_len] TOut
                             const RowGatherTiling &t) {
    t_ = t;
    src_.SetGlobalBuffer(reinterpret_cast<__gm__ TIn *>(src), uint64_t{t.num_src_rows} * t.row_len);
    index_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(index), t.num_rows);
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ TOut *>(out), uint64_t{t.num_rows} * t.row_len);
    pipe_.InitBuffer(in_q_, 2, t.chunk * sizeof(TIn));
    pipe_.InitBuffer(out_q_, 2, t.chunk * sizeof(TOut));
    pipe_.InitBuffer(work_, t.chunk * sizeof(f32));
    uint64_t begin = 0, end = 0;
    BlockShare(uint64_t{t.num_rows} * t.chunks_per_row, begin, end);
    for (uint64_t item = begin; item < end; item++) {
      const uint32_t row = static_cast<uint32_t>(item / t.chunks_per_row);
      const uint32_t col = static_cast<uint32_t>(item % t.chunks_per_row) * t.chunk;
      const uint32_t n = MinU(t.chunk, t.row_len - col);
      const int32_t id = index_.GetValue(row);
      const bool valid = id >= 0 && static_cast<uint32_t>(id) < t.num_src_rows;
      if (valid) CopyIn(static_cast<uint64_t>(id) * t.row_len + col, n);
      Compute(valid, n);
      CopyOut(uint64_t{row} * t.row_len + col, n);
    }
  }

 private:
  __aicore__ inline void CopyIn(uint64_t offset, uint32_t n) {
    LocalTensor<TIn> x = in_q_.template AllocTensor<TIn>();
    CopyInPadded(x, src_[offset], n);
    in_q_.EnQue(x);
  }
  __aicore__ inline void Compute(bool valid, uint32_t n) {
    LocalTensor<f32> w = work_.Get<f32>();
    if (valid) {
      LocalTensor<TIn> x = in_q_.template DeQue<TIn>();
      ToF32(w, x, n);
      in_q_.FreeTensor(x);
    } else {
      Duplicate(w, 0.0f, n);
    }
    LocalTensor<TOut> y = out_q_.template AllocTensor<TOut>();
    FromF32(y, w, n);
    out_q_.EnQue(y);
  }
  __aicore__ inline void CopyOut(uint64_t offset, uint32_t n) {
    LocalTensor<TOut> y = out_q_.template DeQue<TOut>();
    CopyOutPadded(out_[offset], y, n);
    out_q_.FreeTensor(y);
  }

  RowGatherTiling t_;
  TPipe pipe_;
  TQue<TPosition::VECIN, 2> in_q_;
  TQue<TPosition::VECOUT, 2> out_q_;
  TBuf<TPosition::VECCALC> work_;
  GlobalTensor<TIn> src_;
  GlobalTensor<int32_t> index_;
  GlobalTensor<TOut> out_;
};

template <typename TIn, typename TOut>
__aicore__ inline void RowGather(GM_ADDR src, GM_ADDR index, GM_ADDR out, RowGatherTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  RowGatherKernel<TIn, TOut> kernel;
  kernel.Run(src, index, out, tiling);
}

}  // namespace updraft_ascendc

#ifndef __CCE_AICORE__
#include <algorithm>

#include "host_common.h"

namespace updraft::ascendc {

// Tiling for a row gather: chunks of up to 4096 elements (40 KiB of UB per stage pair at most).
inline updraft_ascendc::RowGatherTiling row_gather_tiling(int64_t num_rows, int64_t row_len, int64_t num_src_rows) {
  updraft_ascendc::RowGatherTiling t{};
  t.num_rows = static_cast<uint32_t>(num_rows);
  t.row_len = static_cast<uint32_t>(row_len);
  t.num_src_rows = static_cast<uint32_t>(num_src_rows);
  t.chunk = std::min<uint32_t>(align_up(static_cast<uint32_t>(std::max<int64_t>(row_len, 1)), 16), 4096);
  t.chunks_per_row = ceil_div(static_cast<uint64_t>(row_len), t.chunk);
  return t;
}

inline uint32_t row_gather_blocks(const LaunchContext &ctx, const updraft_ascendc::RowGatherTiling &t) {
  const uint64_t items = uint64_t{t.num_rows} * t.chunks_per_row;
  return static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(items, ctx.aiv_cores)));
}

}  // namespace updraft::ascendc
#endif

#endif
