// UD_OP_SAMPLE: greedy or seeded sampling with temperature, top-k, top-p and min-p, exactly as ops.h
// states it, plus the token's raw logprob and optionally the top-K raw logprobs.
//
// Vector cores, one row per work item (contiguous shares). No sort and no per-row buffer of the whole
// vocabulary in UB: the row is streamed from GM in chunks, once per question asked of it.
//   pass 1  raw keys (NaN -> -inf): max and the lowest id holding it (greedy, log-softmax);
//   pass 2  sum of exp(key - max): the log-softmax normaliser;
//   pass 3  s = key / temperature (an f32 division), written to the workspace row; max of s and its id;
//   top-k   the k-th largest s, by bisection over the ordered bit patterns of f32 (32 counting passes:
//           CompareScalar, Select, ReduceSum per chunk): the largest t with #{s >= t} >= k;
//   top-p   the largest t <= max s with mass{s >= t} >= top_p * mass(top-k set), the same way (mass =
//           sums of w = exp(s - max s), f32 per chunk);
//   min-p   w >= min_p per element;
//   draw    kept = (s == max) | (s >= threshold & w >= min_p); target = u * kept mass with
//           u = ud_uniform(seed, counter); chunk sums find the chunk, a scalar walk the id (ascending).
// Thresholds are values, so every token tied with one is kept. Masses are f32 sums (the CPU reference
// uses f64): a draw within ~1e-6 of a boundary may differ, as ops.h allows.
// Top-K logprobs: the K-th largest raw key by the same bisection, then one pass collects the ids above it
// and the lowest-id ties, sorted on the scalar unit.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

class SampleKernel {
 public:
  static constexpr uint32_t kMaxTop = 64;

  __aicore__ inline void Run(GM_ADDR logits, GM_ADDR temperature, GM_ADDR top_k, GM_ADDR top_p, GM_ADDR min_p, GM_ADDR seeds, GM_ADDR counters,
                             GM_ADDR token_ids, GM_ADDR token_logprobs, GM_ADDR top_ids, GM_ADDR top_logprobs, GM_ADDR workspace,
                             const SampleTiling &t) {
    t_ = t;
    const uint64_t cells = uint64_t{t.num_rows} * t.vocab;
    logits_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(logits), cells);  // [S, V]
    temp_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(temperature), t.num_rows);
    top_k_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(top_k), t.num_rows);
    top_p_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(top_p), t.num_rows);
    min_p_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(min_p), t.num_rows);
    seeds_.SetGlobalBuffer(reinterpret_cast<__gm__ uint64_t *>(seeds), t.num_rows);
    counters_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(counters), t.num_rows);
    ids_out_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(token_ids), t.num_rows);
    lp_out_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(token_logprobs), t.num_rows);
    if (t.has_top_ids) top_ids_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(top_ids), uint64_t{t.num_rows} * t.num_top);
    if (t.has_top_logprobs) top_lp_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(top_logprobs), uint64_t{t.num_rows} * t.num_top);
    ws_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(workspace), cells);  // [S, V] scaled logits
    const uint32_t c = t.chunk;
    pipe_.InitBuffer(in_q_, 2, c * sizeof(f32));
    pipe_.InitBuffer(x_buf_, c * sizeof(f32));
    pipe_.InitBuffer(w_buf_, c * sizeof(f32));
    pipe_.InitBuffer(ones_buf_, c * sizeof(f32));
    pipe_.InitBuffer(tv_buf_, c * sizeof(f32));
    pipe_.InitBuffer(m1_buf_, c / 8);
    pipe_.InitBuffer(m2_buf_, c / 8);
    pipe_.InitBuffer(m3_buf_, c / 8);
    pipe_.InitBuffer(red_buf_, kBlockBytes);
    pipe_.InitBuffer(work_buf_, AlignUp(CeilDiv(c * sizeof(f32), kRepeatBytes), 8) * sizeof(f32));
    pipe_.InitBuffer(res_buf_, 2 * kMaxTop * sizeof(f32));
    Duplicate(ones_buf_.Get<f32>(), 1.0f, c);
    uint64_t begin = 0, end = 0;
    BlockShare(t.num_rows, begin, end);
    for (uint64_t row = begin; row < end; row++) Row(static_cast<uint32_t>(row));
  }

 private:
  // f32 <-> an unsigned key with the same order (for bisection over values). A union reinterprets the
  // bits (defined by GCC and clang, bisheng's base; a pointer cast would break strict aliasing).
  union Bits {
    float f;
    uint32_t u;
  };
  static __aicore__ inline uint32_t Key(float f) {
    Bits b;
    b.f = f == 0.0f ? 0.0f : f;  // -0 and +0 are one value
    return (b.u & 0x80000000u) ? ~b.u : (b.u | 0x80000000u);
  }
  static __aicore__ inline float Value(uint32_t k) {
    Bits b;
    b.u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    return b.f;
  }

  __aicore__ inline uint32_t ChunkLen(uint32_t c) const { return MinU(t_.chunk, t_.vocab - c * t_.chunk); }
  __aicore__ inline uint32_t Chunks() const { return CeilDiv(t_.vocab, t_.chunk); }

  // Elements [c * chunk, + n) of `src` into x_buf_, -inf beyond n up to whole repeats; returns the padded count.
  __aicore__ inline uint32_t Load(const GlobalTensor<f32> &src, uint64_t row_base, uint32_t c) {
    const uint32_t n = ChunkLen(c), n8 = AlignUp(n, 8), padded = AlignUp(n, 64);
    LocalTensor<f32> in = in_q_.AllocTensor<f32>();
    DataCopyExtParams p;
    p.blockCount = 1;
    p.blockLen = n * sizeof(f32);
    p.srcStride = 0;
    p.dstStride = 0;
    DataCopyPadExtParams<f32> pad;
    pad.isPad = true;
    pad.leftPadding = 0;
    pad.rightPadding = n8 - n;
    pad.paddingValue = -INFINITY;
    DataCopyPad(in, src[row_base + uint64_t{c} * t_.chunk], p, pad);
    in_q_.EnQue(in);
    in = in_q_.DeQue<f32>();
    if (padded > n8) Duplicate(in[n8], -INFINITY, padded - n8);
    LocalTensor<f32> x = x_buf_.Get<f32>();
    Muls(x, in, 1.0f, padded);
    in_q_.FreeTensor(in);
    return padded;
  }
  // A chunk of raw logits as keys: NaN -> -inf.
  __aicore__ inline uint32_t LoadKeys(uint64_t row_base, uint32_t c) {
    const uint32_t padded = Load(logits_, row_base, c);
    LocalTensor<f32> x = x_buf_.Get<f32>();
    LocalTensor<uint8_t> m = m1_buf_.Get<uint8_t>();
    Compare(m, x, x, CMPMODE::EQ, padded);
    Select(x, m, x, -INFINITY, SELMODE::VSEL_TENSOR_SCALAR_MODE, padded);
    return padded;
  }
  __aicore__ inline float Sum(const LocalTensor<f32> &v, uint32_t n) {
    LocalTensor<f32> red = red_buf_.Get<f32>();
    ReduceSum(red, v, work_buf_.Get<f32>(), static_cast<int32_t>(n));
    VectorToScalar();
    return red.GetValue(0);
  }
  // Max of x_buf_[0, n) and the index of its first occurrence.
  __aicore__ inline float MaxWithIndex(uint32_t n, uint32_t &index) {
    LocalTensor<f32> red = red_buf_.Get<f32>();
    ReduceMax(red, x_buf_.Get<f32>(), work_buf_.Get<f32>(), static_cast<int32_t>(n), true);
    VectorToScalar();
    index = red.ReinterpretCast<uint32_t>().GetValue(1);
    return red.GetValue(0);
  }
  // exp(x) of a scalar, on the vector unit.
  __aicore__ inline float ExpScalar(float v, bool log) {
    LocalTensor<f32> red = red_buf_.Get<f32>();
    Duplicate(red, v, 8);
    if (log) Ln(red, red, 8);
    else Exp(red, red, 8);
    VectorToScalar();
    return red.GetValue(0);
  }

  // #{key >= t} over the row (keys from the logits when `raw`, else s from the workspace).
  __aicore__ inline uint32_t CountAtLeast(uint64_t row_base, bool raw, float t) {
    float count = 0.0f;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = raw ? LoadKeys(row_base, c) : Load(ws_, row_base, c);
      LocalTensor<uint8_t> m = m1_buf_.Get<uint8_t>();
      LocalTensor<f32> w = w_buf_.Get<f32>();
      CompareScalar(m, x_buf_.Get<f32>(), t, CMPMODE::GE, padded);
      Select(w, m, ones_buf_.Get<f32>(), 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, padded);
      count += Sum(w, padded);
    }
    return static_cast<uint32_t>(count);
  }
  // w = exp(s - smax) of the chunk in x_buf_ (into w_buf_).
  __aicore__ inline void Weights(uint32_t padded, float smax) {
    LocalTensor<f32> w = w_buf_.Get<f32>();
    Adds(w, x_buf_.Get<f32>(), -smax, padded);
    Exp(w, w, padded);
  }
  // Σ w over s >= t.
  __aicore__ inline float MassAtLeast(uint64_t row_base, float t, float smax) {
    float mass = 0.0f;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = Load(ws_, row_base, c);
      Weights(padded, smax);
      LocalTensor<uint8_t> m = m1_buf_.Get<uint8_t>();
      LocalTensor<f32> w = w_buf_.Get<f32>();
      CompareScalar(m, x_buf_.Get<f32>(), t, CMPMODE::GE, padded);
      Select(w, m, w, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, padded);
      mass += Sum(w, padded);
    }
    return mass;
  }
  // Largest key t in [lo, hi] with pred(t) (pred(lo) holds, pred is monotone non-increasing).
  template <typename Pred> __aicore__ inline float Bisect(float lo_value, float hi_value, Pred pred) {
    uint32_t lo = Key(lo_value), hi = Key(hi_value);
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      if (pred(Value(mid))) lo = mid;
      else hi = mid - 1;
    }
    return Value(lo);
  }
  // kept mask of the chunk in x_buf_ (weights in w_buf_) into m3_buf_, and w zeroed outside it.
  __aicore__ inline void Kept(uint32_t padded, float threshold, float min_p, float smax) {
    LocalTensor<uint8_t> m1 = m1_buf_.Get<uint8_t>(), m2 = m2_buf_.Get<uint8_t>(), m3 = m3_buf_.Get<uint8_t>();
    LocalTensor<f32> x = x_buf_.Get<f32>(), w = w_buf_.Get<f32>();
    CompareScalar(m1, x, threshold, CMPMODE::GE, padded);
    CompareScalar(m2, w, min_p, CMPMODE::GE, padded);
    CompareScalar(m3, x, smax, CMPMODE::EQ, padded);
    And(m1.ReinterpretCast<uint16_t>(), m1.ReinterpretCast<uint16_t>(), m2.ReinterpretCast<uint16_t>(), padded / 16);
    Or(m3.ReinterpretCast<uint16_t>(), m3.ReinterpretCast<uint16_t>(), m1.ReinterpretCast<uint16_t>(), padded / 16);
    Select(w, m3, w, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, padded);
  }

  __aicore__ inline int32_t Draw(uint32_t row, uint64_t base, float smax) {
    const int32_t top_k = top_k_.GetValue(row);
    float top_p = top_p_.GetValue(row), min_p = min_p_.GetValue(row);
    if (top_p != top_p) top_p = 1.0f;  // NaN filters are off
    if (!(min_p > 0.0f)) min_p = 0.0f;
    float threshold = -INFINITY;
    if (top_k > 0 && static_cast<uint32_t>(top_k) < t_.vocab) {
      threshold = Bisect(-INFINITY, smax, [&](float v) { return CountAtLeast(base, false, v) >= static_cast<uint32_t>(top_k); });
    }
    if (top_p < 1.0f) {
      const float target = top_p * MassAtLeast(base, threshold, smax);
      const float floor = threshold;
      threshold = Bisect(floor, smax, [&](float v) { return MassAtLeast(base, v, smax) >= target; });
    }
    if (threshold > smax) threshold = smax;
    // Kept mass, then the chunk holding the target and the id inside it, both in ascending id order.
    float kept_mass = 0.0f;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = Load(ws_, base, c);
      Weights(padded, smax);
      Kept(padded, threshold, min_p, smax);
      kept_mass += Sum(w_buf_.Get<f32>(), padded);
    }
    const float target = Uniform(seeds_.GetValue(row), static_cast<uint32_t>(counters_.GetValue(row))) * kept_mass;
    float cumulative = 0.0f;
    int32_t last_kept = -1;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = Load(ws_, base, c), n = ChunkLen(c);
      Weights(padded, smax);
      Kept(padded, threshold, min_p, smax);
      LocalTensor<f32> w = w_buf_.Get<f32>();
      const float chunk_mass = Sum(w, padded);
      const bool last_chunk = c + 1 == Chunks();
      if (cumulative + chunk_mass > target || last_chunk) {
        // Walk the chunk on the scalar unit (Sum synchronised the vector work already).
        LocalTensor<uint8_t> m = m3_buf_.Get<uint8_t>();
        float walk = cumulative;
        for (uint32_t j = 0; j < n; j++) {
          if (!((m.GetValue(j / 8) >> (j % 8)) & 1)) continue;
          last_kept = static_cast<int32_t>(c * t_.chunk + j);
          walk += w.GetValue(j);
          if (target < walk) return last_kept;
        }
      } else if (chunk_mass > 0.0f) {
        last_kept = -2;  // some kept id lies in an earlier chunk; found below if no draw lands
      }
      cumulative += chunk_mass;
    }
    return last_kept;  // only through rounding (ops.h: the last kept id)
  }

  // Token and raw logprob into the result staging, then the top-K logprobs of the row.
  __aicore__ inline void WriteResults(uint32_t row, int32_t token, float logprob) {
    LocalTensor<f32> res = res_buf_.Get<f32>();
    CopyOutToScalar();  // the previous row's copies out of `res` are done
    res.ReinterpretCast<int32_t>().SetValue(0, token);
    res.SetValue(8, logprob);
    ScalarToCopyOut();
    CopyOutPadded(ids_out_[row], res.ReinterpretCast<int32_t>(), 1);
    CopyOutPadded(lp_out_[row], res[8], 1);
  }

  __aicore__ inline void TopLogprobs(uint32_t row, uint64_t base, float log_norm) {
    const uint32_t k = t_.num_top;
    const float tk = Bisect(-INFINITY, INFINITY, [&](float v) { return CountAtLeast(base, true, v) >= k; });
    // Collect every key > tk and the lowest-id keys == tk, ascending.
    int32_t ids[kMaxTop];
    float keys[kMaxTop];
    uint32_t found = 0, greater = 0;
    for (uint32_t c = 0; c < Chunks() && found < k; c++) {
      const uint32_t padded = LoadKeys(base, c), n = ChunkLen(c);
      LocalTensor<uint8_t> m = m1_buf_.Get<uint8_t>();
      LocalTensor<f32> w = w_buf_.Get<f32>(), x = x_buf_.Get<f32>();
      CompareScalar(m, x, tk, CMPMODE::GE, padded);
      Select(w, m, ones_buf_.Get<f32>(), 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, padded);
      if (Sum(w, padded) == 0.0f) continue;
      for (uint32_t j = 0; j < n && found < kMaxTop; j++) {
        const float v = x.GetValue(j);
        if (v > tk) {
          ids[found] = static_cast<int32_t>(c * t_.chunk + j);
          keys[found++] = v;
          greater++;
        } else if (v == tk) {
          ids[found] = static_cast<int32_t>(c * t_.chunk + j);
          keys[found++] = v;
        }
      }
    }
    // The ties beyond what K leaves room for are the highest ids: drop them, then sort (key desc, id asc).
    uint32_t ties_kept = 0, out = 0;
    for (uint32_t i = 0; i < found; i++) {
      if (keys[i] > tk || ties_kept++ < k - (greater < k ? greater : k)) {
        ids[out] = ids[i];
        keys[out++] = keys[i];
      }
    }
    for (uint32_t i = 1; i < out; i++) {
      const int32_t id = ids[i];
      const float key = keys[i];
      uint32_t j = i;
      while (j > 0 && (keys[j - 1] < key || (keys[j - 1] == key && ids[j - 1] > id))) {
        ids[j] = ids[j - 1];
        keys[j] = keys[j - 1];
        j--;
      }
      ids[j] = id;
      keys[j] = key;
    }
    LocalTensor<f32> res = res_buf_.Get<f32>();
    CopyOutToScalar();
    for (uint32_t i = 0; i < k; i++) {
      res.ReinterpretCast<int32_t>().SetValue(i, i < out ? ids[i] : 0);
      res.SetValue(kMaxTop + i, i < out ? keys[i] - log_norm : -INFINITY);
    }
    ScalarToCopyOut();
    if (t_.has_top_ids) CopyOutPadded(top_ids_[uint64_t{row} * k], res.ReinterpretCast<int32_t>(), k);
    if (t_.has_top_logprobs) CopyOutPadded(top_lp_[uint64_t{row} * k], res[kMaxTop], k);
  }

  __aicore__ inline void Row(uint32_t row) {
    const uint64_t base = uint64_t{row} * t_.vocab;
    // Pass 1: max raw key and the lowest id holding it.
    float raw_max = -INFINITY;
    int32_t argmax = 0;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = LoadKeys(base, c);
      uint32_t index = 0;
      const float m = MaxWithIndex(padded, index);
      if (c == 0 || m > raw_max) {
        raw_max = m;
        argmax = static_cast<int32_t>(c * t_.chunk + index);
      }
    }
    // Pass 2: log-softmax normaliser of the raw keys.
    float sum = 0.0f;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = LoadKeys(base, c);
      LocalTensor<f32> w = w_buf_.Get<f32>();
      Adds(w, x_buf_.Get<f32>(), -raw_max, padded);
      Exp(w, w, padded);
      sum += Sum(w, padded);
    }
    const float log_norm = raw_max + ExpScalar(sum, true);

    int32_t token = argmax;
    const float temperature = temp_.GetValue(row);
    if (temperature > 0.0f) {
      // Pass 3: s = key / T into the workspace row; its max and the lowest id holding it.
      float smax = -INFINITY;
      int32_t smax_id = 0;
      LocalTensor<f32> tv = tv_buf_.Get<f32>();
      Duplicate(tv, temperature, t_.chunk);
      for (uint32_t c = 0; c < Chunks(); c++) {
        const uint32_t padded = LoadKeys(base, c), n = ChunkLen(c);
        LocalTensor<f32> x = x_buf_.Get<f32>(), w = w_buf_.Get<f32>();
        CopyOutToVector();  // the previous chunk's copy out of w is done
        Div(w, x, tv, padded);
        Muls(x, w, 1.0f, padded);
        uint32_t index = 0;
        const float m = MaxWithIndex(padded, index);
        if (c == 0 || m > smax) {
          smax = m;
          smax_id = static_cast<int32_t>(c * t_.chunk + index);
        }
        VectorToCopyOut();
        CopyOutPadded(ws_[base + uint64_t{c} * t_.chunk], w, n);
      }
      // This block's workspace writes are read back below.
      event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE3_MTE2);
      SetFlag<HardEvent::MTE3_MTE2>(e);
      WaitFlag<HardEvent::MTE3_MTE2>(e);
      CopyOutToVector();
      if (!(smax > -INFINITY && smax < INFINITY)) {
        token = smax_id;  // nothing possible, or a tiny temperature overflowed: the lowest id holding the max
      } else {
        token = Draw(row, base, smax);
        if (token == -2 || token < 0) token = LastKept(base, smax, row);
      }
    }
    float key = logits_.GetValue(base + static_cast<uint64_t>(token));
    if (key != key) key = -INFINITY;
    WriteResults(row, token, key - log_norm);
    if (t_.num_top > 0) TopLogprobs(row, base, log_norm);
  }

  // The last kept id of the row (the draw's fallback when rounding left no id past the target).
  __aicore__ inline int32_t LastKept(uint64_t base, float smax, uint32_t row) {
    (void)row;
    int32_t last = 0;
    // Recomputes the filters once more; reached only through rounding.
    const int32_t top_k = top_k_.GetValue(row);
    float top_p = top_p_.GetValue(row), min_p = min_p_.GetValue(row);
    if (top_p != top_p) top_p = 1.0f;
    if (!(min_p > 0.0f)) min_p = 0.0f;
    float threshold = -INFINITY;
    if (top_k > 0 && static_cast<uint32_t>(top_k) < t_.vocab)
      threshold = Bisect(-INFINITY, smax, [&](float v) { return CountAtLeast(base, false, v) >= static_cast<uint32_t>(top_k); });
    if (top_p < 1.0f) {
      const float target = top_p * MassAtLeast(base, threshold, smax);
      threshold = Bisect(threshold, smax, [&](float v) { return MassAtLeast(base, v, smax) >= target; });
    }
    if (threshold > smax) threshold = smax;
    for (uint32_t c = 0; c < Chunks(); c++) {
      const uint32_t padded = Load(ws_, base, c), n = ChunkLen(c);
      Weights(padded, smax);
      Kept(padded, threshold, min_p, smax);
      (void)Sum(w_buf_.Get<f32>(), padded);  // orders the vector work before the scalar reads
      LocalTensor<uint8_t> m = m3_buf_.Get<uint8_t>();
      for (uint32_t j = 0; j < n; j++)
        if ((m.GetValue(j / 8) >> (j % 8)) & 1) last = static_cast<int32_t>(c * t_.chunk + j);
    }
    return last;
  }

  SampleTiling t_;
  TPipe pipe_;
  TQue<TPosition::VECIN, 2> in_q_;
  TBuf<TPosition::VECCALC> x_buf_, w_buf_, ones_buf_, tv_buf_, m1_buf_, m2_buf_, m3_buf_, red_buf_, work_buf_;
  TBuf<TPosition::VECOUT> res_buf_;
  GlobalTensor<f32> logits_, temp_, top_p_, min_p_, lp_out_, top_lp_, ws_;
  GlobalTensor<int32_t> top_k_, counters_, ids_out_, top_ids_;
  GlobalTensor<uint64_t> seeds_;
};

extern "C" __global__ __aicore__ void ud_sample(GM_ADDR logits, GM_ADDR temperature, GM_ADDR top_k, GM_ADDR top_p, GM_ADDR min_p, GM_ADDR seeds,
                                                GM_ADDR counters, GM_ADDR token_ids, GM_ADDR token_logprobs, GM_ADDR top_ids, GM_ADDR top_logprobs,
                                                GM_ADDR workspace, SampleTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  SampleKernel kernel;
  kernel.Run(logits, temperature, top_k, top_p, min_p, seeds, counters, token_ids, token_logprobs, top_ids, top_logprobs, workspace, tiling);
}

}  // namespace updraft_ascendc

namespace updraft::ascendc {

ud_status launch_sample(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &logits = op.src[0];          // [S, V] f32
  const ud_tensor &temperature = op.src[1];     // [S] f32
  const ud_tensor &top_k = op.src[2];           // [S] i32
  const ud_tensor &top_p = op.src[3];           // [S] f32
  const ud_tensor &min_p = op.src[4];           // [S] f32
  const ud_tensor &seeds = op.src[5];           // [S] u64
  const ud_tensor &counters = op.src[6];        // [S] i32
  const ud_tensor &token_ids = op.dst[0];       // [S] i32
  const ud_tensor &token_logprobs = op.dst[1];  // [S] f32
  const ud_tensor &top_ids = op.dst[2];         // [S, K] i32, optional
  const ud_tensor &top_logprobs = op.dst[3];    // [S, K] f32, optional
  Checker check(ctx, "sample");
  check.required(logits, "src0 (logits)").required(temperature, "src1 (temperature)").required(top_k, "src2 (top_k)")
      .required(top_p, "src3 (top_p)").required(min_p, "src4 (min_p)").required(seeds, "src5 (seeds)").required(counters, "src6 (sample_counters)")
      .required(token_ids, "dst0 (token_ids)").required(token_logprobs, "dst1 (token_logprobs)").shape_valid(top_ids, "dst2 (top_ids)")
      .shape_valid(top_logprobs, "dst3 (top_logprobs)").dtype(logits, UD_F32, "src0 (logits)").dtype(temperature, UD_F32, "src1 (temperature)")
      .dtype(top_k, UD_I32, "src2 (top_k)").dtype(top_p, UD_F32, "src3 (top_p)").dtype(min_p, UD_F32, "src4 (min_p)")
      .dtype(seeds, UD_U64, "src5 (seeds)").dtype(counters, UD_I32, "src6 (sample_counters)").dtype(token_ids, UD_I32, "dst0 (token_ids)")
      .dtype(token_logprobs, UD_F32, "dst1 (token_logprobs)").dtype(top_ids, UD_I32, "dst2 (top_ids)").dtype(top_logprobs, UD_F32, "dst3 (top_logprobs)");
  if (!check.ok()) return check.status();
  const int64_t num_seqs = rows(logits), vocab = row_size(logits);
  const ud_tensor &top_view = present(top_ids) ? top_ids : top_logprobs;
  const int64_t num_top = present(top_view) ? row_size(top_view) : 0;
  const int32_t max_top = op.params.sample.num_top_logprobs;
  for (const ud_tensor *t : {&temperature, &top_k, &top_p, &min_p, &seeds, &counters, &token_ids, &token_logprobs})
    check.numel_is(*t, num_seqs, "per-sequence operand");
  check.rows_are(top_ids, num_seqs, "dst2 (top_ids)").rows_are(top_logprobs, num_seqs, "dst3 (top_logprobs)")
      .row_size_is(top_ids, num_top, "dst2 (top_ids)").row_size_is(top_logprobs, num_top, "dst3 (top_logprobs)")
      .that(num_top <= vocab, "cannot return " + std::to_string(num_top) + " top logprobs from a vocabulary of " + std::to_string(vocab))
      .that(max_top <= 0 || num_top <= max_top,
            "top logprob views have " + std::to_string(num_top) + " columns, more than num_top_logprobs = " + std::to_string(max_top))
      .that(vocab > 0 || num_seqs == 0, "logits have no columns").fits_u32(num_seqs, "rows").fits_u32(vocab, "vocab")
      .unsupported_if(num_top > updraft_ascendc::SampleKernel::kMaxTop, "more than 64 top logprobs on ascend");
  if (!check.ok()) return check.status();
  if (num_seqs == 0) return UD_OK;
  if (ud_status s = need_workspace(ctx, size_t(num_seqs) * vocab * 4, "sample"); s != UD_OK) return s;
  updraft_ascendc::SampleTiling t{};
  t.num_rows = static_cast<uint32_t>(num_seqs);
  t.vocab = static_cast<uint32_t>(vocab);
  t.chunk = std::min<uint32_t>(align_up(t.vocab, 64), 4096);
  t.num_top = static_cast<uint32_t>(num_top);
  t.has_top_ids = present(top_ids) ? 1 : 0;
  t.has_top_logprobs = present(top_logprobs) ? 1 : 0;
  const uint32_t blocks = std::min<uint32_t>(t.num_rows, ctx.aiv_cores);
  return UD_ASCENDC_LAUNCH(ctx, "sample", blocks, updraft_ascendc::ud_sample, gm(logits), gm(temperature), gm(top_k), gm(top_p), gm(min_p), gm(seeds),
                           gm(counters), gm(token_ids), gm(token_logprobs), gm(top_ids), gm(top_logprobs), static_cast<uint8_t *>(ctx.workspace), t);
}

}  // namespace updraft::ascendc
