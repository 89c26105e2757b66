// UD_OP_PROCESS_LOGITS: in place on rows [0, R) of f32 logits, in vLLM's order (kernels/ops.h): the
// allowed-token mask, additive biases / bans, then the repetition and frequency / presence penalties of
// each seen token. Every step is one f32 rounding per operation, as the CPU reference computes it.
//
// Vector cores, one row per work item (contiguous shares). The mask streams the row through UB in chunks
// (Select with the allowed words read as the bit mask: bit i of the little-endian word stream is token
// i). Biases and penalties touch single tokens: each is a read-modify-write of one element through a
// 32-byte UB slot (GM -> UB, the scalar unit, UB -> GM), ordered one after another because a bias and a
// penalty may hit the same token.
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

class ProcessLogitsKernel {
 public:
  __aicore__ inline void Run(GM_ADDR flags, GM_ADDR penalties, GM_ADDR token_ids, GM_ADDR token_counts, GM_ADDR extra_ids, GM_ADDR bias_ids,
                             GM_ADDR bias_values, GM_ADDR allowed, GM_ADDR logits, GM_ADDR errors, int32_t launch, const ProcessLogitsTiling &t) {
    t_ = t;
    const uint32_t r = t.num_rows;
    flags_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(flags), r);                      // [R]
    pen_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(penalties), uint64_t{r} * 3);          // [R, 3]
    if (t.num_tokens) {
      ids_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(token_ids), uint64_t{r} * t.num_tokens);      // [R, P]
      counts_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(token_counts), uint64_t{r} * t.num_tokens);  // [R, P]
    }
    if (t.has_extra) extra_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(extra_ids), r);  // [R]
    if (t.num_bias) {
      bias_ids_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(bias_ids), uint64_t{r} * t.num_bias);   // [R, B]
      bias_val_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(bias_values), uint64_t{r} * t.num_bias);    // [R, B]
    }
    if (t.num_words) allowed_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t *>(allowed), uint64_t{r} * t.num_words * 4);  // [R, W] u32
    logits_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(logits), uint64_t{r} * t.vocab);   // rows [0, R) of [S, V]
    errors_.Init(pipe_, errors, 10 /* UD_OP_PROCESS_LOGITS */, launch);
    pipe_.InitBuffer(x_q_, 2, t.chunk * sizeof(f32));
    pipe_.InitBuffer(m_q_, 2, t.chunk / 8);
    pipe_.InitBuffer(y_q_, 2, t.chunk * sizeof(f32));
    pipe_.InitBuffer(one_, kBlockBytes);
    uint64_t begin = 0, end = 0;
    BlockShare(r, begin, end);
    for (uint64_t row = begin; row < end; row++) Row(static_cast<uint32_t>(row));
  }

 private:
  __aicore__ inline bool InVocab(int32_t id) const { return id >= 0 && static_cast<uint32_t>(id) < t_.vocab; }

  // Tokens whose allowed bit is 0 become -inf, chunk by chunk.
  __aicore__ inline void Mask(uint32_t row) {
    for (uint32_t col = 0; col < t_.vocab; col += t_.chunk) {
      const uint32_t n = MinU(t_.chunk, t_.vocab - col);
      const uint64_t at = uint64_t{row} * t_.vocab + col;
      LocalTensor<f32> x = x_q_.AllocTensor<f32>();
      CopyInPadded(x, logits_[at], n);
      x_q_.EnQue(x);
      LocalTensor<uint8_t> m = m_q_.AllocTensor<uint8_t>();
      CopyInPadded(m, allowed_[uint64_t{row} * t_.num_words * 4 + col / 8], CeilDiv(n, 8));
      m_q_.EnQue(m);
      x = x_q_.DeQue<f32>();
      m = m_q_.DeQue<uint8_t>();
      LocalTensor<f32> y = y_q_.AllocTensor<f32>();
      Select(y, m, x, -INFINITY, SELMODE::VSEL_TENSOR_SCALAR_MODE, n);
      x_q_.FreeTensor(x);
      m_q_.FreeTensor(m);
      y_q_.EnQue(y);
      y = y_q_.DeQue<f32>();
      CopyOutPadded(logits_[at], y, n);
      y_q_.FreeTensor(y);
    }
  }

  // logit[row, id] read into the scalar unit (after every earlier write of this block to GM).
  __aicore__ inline float Load(uint32_t row, int32_t id) {
    event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE3_MTE2);
    SetFlag<HardEvent::MTE3_MTE2>(e);
    WaitFlag<HardEvent::MTE3_MTE2>(e);
    LocalTensor<f32> one = one_.Get<f32>();
    DataCopyExtParams p;
    p.blockCount = 1;
    p.blockLen = sizeof(f32);
    p.srcStride = 0;
    p.dstStride = 0;
    DataCopyPadExtParams<f32> pad;
    pad.isPad = false;
    DataCopyPad(one, logits_[uint64_t{row} * t_.vocab + static_cast<uint32_t>(id)], p, pad);
    CopyInToScalar();
    return one.GetValue(0);
  }
  __aicore__ inline void Store(uint32_t row, int32_t id, float v) {
    LocalTensor<f32> one = one_.Get<f32>();
    one.SetValue(0, v);
    ScalarToCopyOut();
    CopyOutPadded(logits_[uint64_t{row} * t_.vocab + static_cast<uint32_t>(id)], one, 1);
  }
  static __aicore__ inline float Repetition(float x, float r) { return x > 0.0f ? x / r : x * r; }
  static __aicore__ inline float FrequencyPresence(float x, int32_t count, float frequency, float presence) {
    const float scaled = frequency * static_cast<float>(count);
    return (x - scaled) - presence;
  }

  __aicore__ inline void Row(uint32_t row) {
    const int32_t f = flags_.GetValue(row);
    if (f == 0) return;
    if (f & 4) {
      if (t_.num_words != CeilDiv(t_.vocab, 32)) {
        errors_.Report(kMaskWords, static_cast<int32_t>(row), static_cast<int32_t>(t_.num_words), static_cast<int32_t>(t_.vocab));
        return;
      }
      Mask(row);
    }
    if (f & 2) {
      for (uint32_t j = 0; j < t_.num_bias; j++) {
        const int32_t id = bias_ids_.GetValue(uint64_t{row} * t_.num_bias + j);
        if (InVocab(id)) Store(row, id, Load(row, id) + bias_val_.GetValue(uint64_t{row} * t_.num_bias + j));
      }
    }
    if (f & 1) {
      const float presence = pen_.GetValue(uint64_t{row} * 3), frequency = pen_.GetValue(uint64_t{row} * 3 + 1), r = pen_.GetValue(uint64_t{row} * 3 + 2);
      const int32_t extra = t_.has_extra ? extra_.GetValue(row) : -1;
      const int32_t extra_id = InVocab(extra) ? extra : -1;
      bool extra_listed = false;
      for (uint32_t j = 0; j < t_.num_tokens; j++) {
        const int32_t id = ids_.GetValue(uint64_t{row} * t_.num_tokens + j);
        if (!InVocab(id)) continue;
        int32_t count = counts_.GetValue(uint64_t{row} * t_.num_tokens + j);
        if (id == extra_id) {
          count += 1;
          extra_listed = true;
        }
        float x = Repetition(Load(row, id), r);
        if (count > 0) x = FrequencyPresence(x, count, frequency, presence);
        Store(row, id, x);
      }
      if (extra_id >= 0 && !extra_listed) Store(row, extra_id, FrequencyPresence(Repetition(Load(row, extra_id), r), 1, frequency, presence));
    }
    CopyOutToScalar();  // the last store has read `one` before the next row writes it
  }

  ProcessLogitsTiling t_;
  TPipe pipe_;
  TQue<TPosition::VECIN, 2> x_q_, m_q_;
  TQue<TPosition::VECOUT, 2> y_q_;
  TBuf<TPosition::VECCALC> one_;
  ErrorSlot errors_;
  GlobalTensor<int32_t> flags_, ids_, counts_, extra_, bias_ids_;
  GlobalTensor<f32> pen_, bias_val_, logits_;
  GlobalTensor<uint8_t> allowed_;
};

extern "C" __global__ __aicore__ void ud_process_logits(GM_ADDR flags, GM_ADDR penalties, GM_ADDR token_ids, GM_ADDR token_counts, GM_ADDR extra_ids,
                                                        GM_ADDR bias_ids, GM_ADDR bias_values, GM_ADDR allowed, GM_ADDR logits, GM_ADDR errors, int32_t launch,
                                                        ProcessLogitsTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  ProcessLogitsKernel kernel;
  kernel.Run(flags, penalties, token_ids, token_counts, extra_ids, bias_ids, bias_values, allowed, logits, errors, launch, tiling);
}

}  // namespace updraft_ascendc

namespace updraft::ascendc {

ud_status launch_process_logits(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &flags = op.src[0];         // [R] i32
  const ud_tensor &penalties = op.src[1];     // [R, 3] f32
  const ud_tensor &token_ids = op.src[2];     // [R, P] i32
  const ud_tensor &token_counts = op.src[3];  // [R, P] i32
  const ud_tensor &extra_ids = op.src[4];     // [R] i32, optional
  const ud_tensor &bias_ids = op.src[5];      // [R, B] i32
  const ud_tensor &bias_values = op.src[6];   // [R, B] f32
  const ud_tensor &allowed = op.src[7];       // [R, W] u32, optional
  const ud_tensor &logits = op.dst[0];        // [S, V] f32, in place
  Checker check(ctx, "process_logits");
  check.required(flags, "src0 (flags)").required(penalties, "src1 (penalties)").required(token_ids, "src2 (token_ids)")
      .required(token_counts, "src3 (token_counts)").shape_valid(extra_ids, "src4 (extra_ids)").required(bias_ids, "src5 (bias_ids)")
      .required(bias_values, "src6 (bias_values)").shape_valid(allowed, "src7 (allowed)").required(logits, "dst0 (logits)")
      .dtype(flags, UD_I32, "src0 (flags)").dtype(penalties, UD_F32, "src1 (penalties)").dtype(token_ids, UD_I32, "src2 (token_ids)")
      .dtype(token_counts, UD_I32, "src3 (token_counts)").dtype(extra_ids, UD_I32, "src4 (extra_ids)").dtype(bias_ids, UD_I32, "src5 (bias_ids)")
      .dtype(bias_values, UD_F32, "src6 (bias_values)").dtype(allowed, UD_U32, "src7 (allowed)").dtype(logits, UD_F32, "dst0 (logits)");
  if (!check.ok()) return check.status();
  const int64_t num_rows = numel(flags), vocab = row_size(logits), num_tokens = row_size(token_ids), num_bias = row_size(bias_ids);
  const int64_t num_words = present(allowed) ? row_size(allowed) : 0;
  check.that(num_rows <= rows(logits), "src0 (flags) has " + std::to_string(num_rows) + " rows, more than dst0 (logits) " + shape_string(logits))
      .numel_is(penalties, num_rows * 3, "src1 (penalties)").rows_are(token_ids, num_rows, "src2 (token_ids)")
      .rows_are(token_counts, num_rows, "src3 (token_counts)").row_size_is(token_counts, num_tokens, "src3 (token_counts)")
      .numel_is(extra_ids, num_rows, "src4 (extra_ids)").rows_are(bias_ids, num_rows, "src5 (bias_ids)")
      .rows_are(bias_values, num_rows, "src6 (bias_values)").row_size_is(bias_values, num_bias, "src6 (bias_values)")
      .rows_are(allowed, num_rows, "src7 (allowed)").fits_u32(vocab, "vocab").fits_u32(num_tokens, "P").fits_u32(num_bias, "B");
  if (!check.ok()) return check.status();
  if (num_rows == 0) return UD_OK;
  const int64_t mask_words = (vocab + 31) / 32;
  if (num_words != 0 && num_words != mask_words)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "process_logits: src7 (allowed) " + shape_string(allowed) + " should have rows of 0 or " +
                                                 std::to_string(mask_words) + " words for a vocabulary of " + std::to_string(vocab));
  updraft_ascendc::ProcessLogitsTiling t{};
  t.num_rows = static_cast<uint32_t>(num_rows);
  t.vocab = static_cast<uint32_t>(vocab);
  t.num_tokens = static_cast<uint32_t>(num_tokens);
  t.num_bias = static_cast<uint32_t>(num_bias);
  t.num_words = static_cast<uint32_t>(num_words);
  t.has_extra = present(extra_ids) ? 1 : 0;
  t.chunk = std::min<uint32_t>(align_up(std::max<uint32_t>(t.vocab, 1), 256), 4096);
  const uint32_t blocks = std::min<uint32_t>(t.num_rows, ctx.aiv_cores);
  return UD_ASCENDC_LAUNCH(ctx, "process_logits", blocks, updraft_ascendc::ud_process_logits, gm(flags), gm(penalties), gm(token_ids), gm(token_counts),
                           gm(extra_ids), gm(bias_ids), gm(bias_values), gm(allowed), gm(logits), static_cast<uint8_t *>(ctx.error_slots), ctx.launch_index, t);
}

}  // namespace updraft::ascendc
