// UD_OP_SAMPLE: one token per row of logits, plus its logprob and optionally the top-K logprobs.
//
// Semantics (ops.h): with s = logits / temperature, the kept set is {i : s_i >= threshold} where the
// threshold is the largest of the top-k one (the k-th largest s), the top-p one (the value of the
// last token of the smallest descending prefix of the top-k set whose mass reaches top_p of that
// set's mass) and min-p (exp(s_i - s_max) >= min_p), capped at s_max. Every token tied with the
// threshold is kept. The token is drawn by inverse CDF over the kept set in ascending id order with
// u = ud_uniform(seed, counter). Probabilities and sums are computed in f64 so this reference is at
// least as exact as any device's f32 / fixed-point version.
//
// Top-k is an nth_element; top-p walks a lazily sorted descending order (nth_element + sort of a
// growing prefix) that usually stops after a few hundred tokens, so a 150k vocabulary is rarely
// fully sorted. The draw itself needs no order. NaN logits are treated as -inf so the ordering stays
// a strict weak order.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "operand_checks.h"

namespace updraft::cpu {
namespace {

const float kNegInf = -std::numeric_limits<float>::infinity();

// ids sorted by (key descending, id ascending), materialised only as far as asked.
class LazyDescendingOrder {
 public:
  explicit LazyDescendingOrder(const std::vector<float> &key) : key_(key), ids_(key.size()) {
    std::iota(ids_.begin(), ids_.end(), 0);
  }
  // The id at rank r (r < size).
  int32_t at(int64_t r) {
    if (r >= sorted_) extend(r + 1);
    return ids_[static_cast<size_t>(r)];
  }

 private:
  bool before(int32_t a, int32_t b) const { return key_[a] > key_[b] || (key_[a] == key_[b] && a < b); }
  void extend(int64_t n) {
    const int64_t size = static_cast<int64_t>(ids_.size());
    n = std::min(size, std::max({n, sorted_ * 2, int64_t{64}}));
    const auto cmp = [this](int32_t a, int32_t b) { return before(a, b); };
    if (n < size) std::nth_element(ids_.begin() + sorted_, ids_.begin() + n, ids_.end(), cmp);
    std::sort(ids_.begin() + sorted_, ids_.begin() + n, cmp);
    sorted_ = n;
  }

  const std::vector<float> &key_;
  std::vector<int32_t> ids_;
  int64_t sorted_ = 0;  // ids_[0, sorted_) are in final order; every later id ranks after them
};

// Draws the token of one row from its temperature-scaled logits (`scaled`, NaN already -inf).
int32_t draw_token(const std::vector<float> &scaled, int32_t top_k, float top_p, float min_p, float u) {
  if (std::isnan(top_p)) top_p = 1.0f;  // NaN filters mean "off", the same in every branch below
  if (!(min_p > 0.0f)) min_p = 0.0f;
  const int64_t vocab = static_cast<int64_t>(scaled.size());
  const auto max_it = std::max_element(scaled.begin(), scaled.end());  // the lowest id on ties
  const float max_scaled = *max_it;
  // All -inf (nothing possible) or +inf (a tiny temperature overflowed): the lowest id holding the max.
  if (!std::isfinite(max_scaled)) return static_cast<int32_t>(max_it - scaled.begin());
  // Unnormalised probabilities relative to the most likely token (which has weight 1).
  std::vector<double> weight(static_cast<size_t>(vocab));
  for (int64_t id = 0; id < vocab; id++)
    weight[id] = std::exp(static_cast<double>(scaled[id]) - static_cast<double>(max_scaled));

  // Top-k: keep s >= the k-th largest s (every token tied with it too).
  float threshold = kNegInf;
  if (top_k > 0 && top_k < vocab) {
    std::vector<float> copy(scaled);
    std::nth_element(copy.begin(), copy.begin() + (top_k - 1), copy.end(), std::greater<float>());
    threshold = copy[static_cast<size_t>(top_k - 1)];
  }

  // Top-p over the top-k set: the value at which the descending cumulative mass first reaches
  // top_p of the set's mass; ties with it stay in (the threshold is a value, not a rank).
  if (top_p < 1.0f) {
    double top_k_mass = 0.0;
    for (int64_t id = 0; id < vocab; id++)
      if (scaled[id] >= threshold) top_k_mass += weight[id];
    const double target = static_cast<double>(top_p) * top_k_mass;
    LazyDescendingOrder order(scaled);
    double cumulative = 0.0;
    for (int64_t r = 0; r < vocab; r++) {
      const int32_t id = order.at(r);
      if (scaled[id] < threshold) break;  // only through rounding: keep the whole top-k set
      cumulative += weight[id];
      if (cumulative >= target) {
        threshold = scaled[id];
        break;
      }
    }
  }
  threshold = std::min(threshold, max_scaled);  // always keep the most likely token(s)

  // Min-p (p / p_max = weight >= min_p) and the draw, both in ascending id order. The most likely
  // tokens have weight 1 and pass min-p unless min_p > 1, hence the explicit s == max.
  const auto kept = [&](int64_t id) {
    return scaled[id] == max_scaled || (scaled[id] >= threshold && weight[id] >= static_cast<double>(min_p));
  };
  double kept_mass = 0.0;
  for (int64_t id = 0; id < vocab; id++)
    if (kept(id)) kept_mass += weight[id];
  const double target = static_cast<double>(u) * kept_mass;
  double cumulative = 0.0;
  int64_t last = max_it - scaled.begin();
  for (int64_t id = 0; id < vocab; id++) {
    if (!kept(id)) continue;
    cumulative += weight[id];
    last = id;
    if (target < cumulative) return static_cast<int32_t>(id);
  }
  return static_cast<int32_t>(last);  // only reached through rounding
}

}  // namespace

ud_status launch_sample(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &logits = op.src[0];       // [S, V] f32
  const ud_tensor &temperature = op.src[1];  // [S] f32
  const ud_tensor &top_k = op.src[2];        // [S] i32
  const ud_tensor &top_p = op.src[3];        // [S] f32
  const ud_tensor &min_p = op.src[4];        // [S] f32
  const ud_tensor &seeds = op.src[5];        // [S] u64
  const ud_tensor &counters = op.src[6];     // [S] i32
  const ud_tensor &token_ids = op.dst[0];    // [S] i32
  const ud_tensor &token_logprobs = op.dst[1];  // [S] f32
  const ud_tensor &top_ids = op.dst[2];         // [S, K] i32, optional
  const ud_tensor &top_logprobs = op.dst[3];    // [S, K] f32, optional

  OperandChecker check(ctx, "sample");
  check.required(logits, "src0 (logits)").required(temperature, "src1 (temperature)")
      .required(top_k, "src2 (top_k)").required(top_p, "src3 (top_p)").required(min_p, "src4 (min_p)")
      .required(seeds, "src5 (seeds)").required(counters, "src6 (sample_counters)")
      .required(token_ids, "dst0 (token_ids)").required(token_logprobs, "dst1 (token_logprobs)")
      .shape_valid(top_ids, "dst2 (top_ids)").shape_valid(top_logprobs, "dst3 (top_logprobs)")
      .dtype(logits, UD_F32, "src0 (logits)").dtype(temperature, UD_F32, "src1 (temperature)")
      .dtype(top_k, UD_I32, "src2 (top_k)").dtype(top_p, UD_F32, "src3 (top_p)").dtype(min_p, UD_F32, "src4 (min_p)")
      .dtype(seeds, UD_U64, "src5 (seeds)").dtype(counters, UD_I32, "src6 (sample_counters)")
      .dtype(token_ids, UD_I32, "dst0 (token_ids)").dtype(token_logprobs, UD_F32, "dst1 (token_logprobs)")
      .dtype(top_ids, UD_I32, "dst2 (top_ids)").dtype(top_logprobs, UD_F32, "dst3 (top_logprobs)");
  if (!check.ok()) return check.status();
  const int64_t num_seqs = rows(logits), vocab = row_size(logits);
  // K comes from the views (it is a per-step dim in a program); num_top_logprobs, when set, bounds it.
  const ud_tensor &top_view = present(top_ids) ? top_ids : top_logprobs;
  const int64_t num_top = present(top_view) ? row_size(top_view) : 0;
  const int32_t max_top = op.params.sample.num_top_logprobs;
  for (const ud_tensor *t : {&temperature, &top_k, &top_p, &min_p, &seeds, &counters, &token_ids, &token_logprobs})
    check.numel_is(*t, num_seqs, "per-sequence operand");
  check.rows_are(top_ids, num_seqs, "dst2 (top_ids)").rows_are(top_logprobs, num_seqs, "dst3 (top_logprobs)")
      .row_size_is(top_ids, num_top, "dst2 (top_ids)").row_size_is(top_logprobs, num_top, "dst3 (top_logprobs)")
      .that(num_top <= vocab, "cannot return " + std::to_string(num_top) + " top logprobs from a vocabulary of " +
                                  std::to_string(vocab))
      .that(max_top <= 0 || num_top <= max_top, "top logprob views have " + std::to_string(num_top) +
                                                    " columns, more than num_top_logprobs = " + std::to_string(max_top))
      .that(vocab > 0 || num_seqs == 0, "logits have no columns");
  if (!check.ok()) return check.status();

  const float *all_logits = static_cast<const float *>(logits.data);
  const float *temp = static_cast<const float *>(temperature.data);
  const int32_t *k_of = static_cast<const int32_t *>(top_k.data);
  const float *p_of = static_cast<const float *>(top_p.data);
  const float *min_p_of = static_cast<const float *>(min_p.data);
  const uint64_t *seed_of = static_cast<const uint64_t *>(seeds.data);
  const int32_t *counter_of = static_cast<const int32_t *>(counters.data);

  ctx.pool.parallel_for(num_seqs, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> key(static_cast<size_t>(vocab));
    for (int64_t s = begin; s < end; s++) {
      const float *row = all_logits + s * vocab;
      // Raw logits with NaN as -inf: the order for greedy and top logprobs, and log-softmax's input.
      for (int64_t i = 0; i < vocab; i++) key[i] = std::isnan(row[i]) ? kNegInf : row[i];
      const double max_raw = *std::max_element(key.begin(), key.end());
      double sum = 0.0;
      for (int64_t i = 0; i < vocab; i++) sum += std::exp(static_cast<double>(key[i]) - max_raw);
      const double log_norm = max_raw + std::log(sum);
      const auto logprob = [&](int32_t id) { return static_cast<float>(static_cast<double>(key[id]) - log_norm); };

      if (num_top > 0) {
        std::vector<int32_t> ids(static_cast<size_t>(vocab));
        std::iota(ids.begin(), ids.end(), 0);
        std::partial_sort(ids.begin(), ids.begin() + num_top, ids.end(), [&](int32_t a, int32_t b) {
          return key[a] > key[b] || (key[a] == key[b] && a < b);
        });
        for (int64_t j = 0; j < num_top; j++) {
          if (present(top_ids)) static_cast<int32_t *>(top_ids.data)[s * num_top + j] = ids[j];
          if (present(top_logprobs)) static_cast<float *>(top_logprobs.data)[s * num_top + j] = logprob(ids[j]);
        }
      }

      int32_t token;
      if (!(temp[s] > 0.0f)) {  // 0 (or a negative / NaN temperature): greedy, lowest id on ties
        token = static_cast<int32_t>(std::max_element(key.begin(), key.end()) - key.begin());
      } else {
        std::vector<float> scaled(static_cast<size_t>(vocab));
        for (int64_t i = 0; i < vocab; i++) scaled[i] = key[i] / temp[s];
        const float u = ud_uniform(seed_of[s], static_cast<uint32_t>(counter_of[s]));
        token = draw_token(scaled, k_of[s], p_of[s], min_p_of[s], u);
      }
      static_cast<int32_t *>(token_ids.data)[s] = token;
      static_cast<float *>(token_logprobs.data)[s] = logprob(token);
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
