// UD_OP_SELECT_TOKENS: out[i] = sources[i] >= 0 ? table[sources[i]] : ids[i] for i < T (a step's ids, some
// taken from the previous step's samples still on the device); out[T..D) untouched. A source outside
// [0, R) is reported and that row keeps ids[i].
//
// Vector cores, scalar work: T is a batch of token ids, so each block builds its share in UB with scalar
// reads of ids / sources / table and writes it out with one DataCopyPad per chunk of 1024 ids.
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

class SelectTokensKernel {
 public:
  __aicore__ inline void Run(GM_ADDR ids,      // [T] i32
                             GM_ADDR sources,  // [T] i32 (when has_sources)
                             GM_ADDR table,    // [R] i32 (when has_sources)
                             GM_ADDR out,      // [D >= T] i32
                             GM_ADDR errors, int32_t launch, const SelectTokensTiling &t) {
    ids_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(ids), t.count);
    if (t.has_sources) {
      sources_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(sources), t.count);
      if (t.table_rows > 0) table_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(table), t.table_rows);
    }
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(out), t.count);
    errors_.Init(pipe_, errors, 9 /* UD_OP_SELECT_TOKENS */, launch);
    pipe_.InitBuffer(out_q_, 2, t.chunk * sizeof(int32_t));
    uint64_t begin = 0, end = 0;
    BlockShare(CeilDiv(t.count, t.chunk), begin, end);
    for (uint64_t item = begin; item < end; item++) {
      const uint32_t first = static_cast<uint32_t>(item) * t.chunk;
      const uint32_t n = MinU(t.chunk, t.count - first);
      LocalTensor<int32_t> y = out_q_.AllocTensor<int32_t>();
      for (uint32_t j = 0; j < n; j++) {
        const uint32_t i = first + j;
        const int32_t s = t.has_sources ? sources_.GetValue(i) : -1;
        int32_t v;
        if (s >= 0 && static_cast<uint32_t>(s) < t.table_rows) {
          v = table_.GetValue(s);
        } else {
          if (s >= 0) errors_.Report(kSourceOutOfRange, static_cast<int32_t>(i), s, static_cast<int32_t>(t.table_rows));
          v = ids_.GetValue(i);
        }
        y.SetValue(j, v);
      }
      out_q_.EnQue(y);
      y = out_q_.DeQue<int32_t>();
      CopyOutPadded(out_[first], y, n);
      out_q_.FreeTensor(y);
    }
  }

 private:
  TPipe pipe_;
  TQue<TPosition::VECOUT, 2> out_q_;
  ErrorSlot errors_;
  GlobalTensor<int32_t> ids_, sources_, table_, out_;
};

extern "C" __global__ __aicore__ void ud_select_tokens(GM_ADDR ids, GM_ADDR sources, GM_ADDR table, GM_ADDR out, GM_ADDR errors, int32_t launch,
                                                       SelectTokensTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  SelectTokensKernel kernel;
  kernel.Run(ids, sources, table, out, errors, launch, tiling);
}

}  // namespace updraft_ascendc

namespace updraft::ascendc {

ud_status launch_select_tokens(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &ids = op.src[0];      // [T] i32
  const ud_tensor &sources = op.src[1];  // [T] i32, optional: -1 = keep ids[i]
  const ud_tensor &table = op.src[2];    // [R] i32, optional: the previous step's samples
  const ud_tensor &out = op.dst[0];      // [D >= T] i32
  Checker check(ctx, "select_tokens");
  check.required(ids, "src0 (ids)").required(out, "dst0 (out)").dtype(ids, UD_I32, "src0 (ids)")
      .dtype(sources, UD_I32, "src1 (sources)").dtype(table, UD_I32, "src2 (table)").dtype(out, UD_I32, "dst0 (out)");
  if (!check.ok()) return check.status();
  const int64_t n = numel(ids);
  if (numel(out) < n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: dst0 (out) " + shape_string(out) + " is smaller than src0 (ids) " + shape_string(ids));
  if (present(sources) && numel(sources) != n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) must have one entry per id");
  if (present(sources) && !present(table)) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) needs src2 (table)");
  check.fits_u32(n, "ids").fits_u32(present(table) ? numel(table) : 0, "table");
  if (!check.ok()) return check.status();
  if (n == 0) return UD_OK;
  updraft_ascendc::SelectTokensTiling tiling{};
  tiling.count = static_cast<uint32_t>(n);
  tiling.table_rows = present(sources) ? static_cast<uint32_t>(numel(table)) : 0;
  tiling.has_sources = present(sources) ? 1 : 0;
  tiling.chunk = 1024;
  const uint32_t blocks = std::min<uint32_t>(ceil_div(tiling.count, tiling.chunk), ctx.aiv_cores);
  return UD_ASCENDC_LAUNCH(ctx, "select_tokens", blocks, updraft_ascendc::ud_select_tokens, gm(ids), gm(sources), gm(table), gm(out),
                           static_cast<uint8_t *>(ctx.error_slots), ctx.launch_index, tiling);
}

}  // namespace updraft::ascendc
