// margins.h — whether a sampling row sits within rounding of a boundary, so that a device summing
// f32 weights (in any order or in fixed point) may legitimately pick another token than the f64
// reference: the margins of test/device/reference.ts (keptSet / drawFromKept), recomputed in f64.
// Used by emulate.cc and bench_sample.cu to skip exactly those rows when comparing tokens.
#ifndef UPDRAFT_DEV_SAMPLE_MARGINS_H
#define UPDRAFT_DEV_SAMPLE_MARGINS_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "../../ops.h"

namespace updraft::dev {

constexpr double kMassMargin = 1e-5;    // of the top-k set's or the kept set's mass
constexpr double kWeightMargin = 1e-4;  // of min_p, for a weight exp(s - s_max)

inline bool ambiguous(const float *logits, int vocab, float temperature, int top_k, float top_p, float min_p_arg,
                      uint64_t seed, int32_t counter) {
  if (!(temperature > 0)) return false;
  const size_t V = static_cast<size_t>(vocab);
  std::vector<double> s(V);
  double s_max = -INFINITY;
  for (size_t i = 0; i < V; i++) {
    const float x = std::isnan(logits[i]) ? -INFINITY : logits[i];
    s[i] = static_cast<float>(x / temperature);
    s_max = std::max(s_max, s[i]);
  }
  if (!std::isfinite(s_max)) return false;
  std::vector<double> w(V);
  for (size_t i = 0; i < V; i++) w[i] = std::exp(s[i] - s_max);
  bool amb = false;
  double threshold = -INFINITY;
  std::vector<double> sorted(s);
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  if (top_k > 0 && static_cast<size_t>(top_k) < V) threshold = sorted[top_k - 1];
  if (top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < V; i++)
      if (s[i] >= threshold) mass += w[i];
    const double target = static_cast<double>(top_p) * mass;
    double cumulative = 0;
    for (size_t k = 0; k < V;) {
      const double value = sorted[k];
      if (value < threshold) break;
      const double before = cumulative;
      for (; k < V && sorted[k] == value; k++) cumulative += std::exp(value - s_max);
      if (target > 0 && std::abs(cumulative - target) < kMassMargin * mass) amb = true;
      if (before > 0 && std::abs(before - target) < kMassMargin * mass) amb = true;
      if (cumulative >= target) {
        threshold = value;
        break;
      }
    }
  }
  threshold = std::min(threshold, s_max);
  const double min_p = min_p_arg > 0 ? min_p_arg : 0;
  std::vector<size_t> kept;
  double mass = 0;
  for (size_t i = 0; i < V; i++) {
    bool keep = s[i] == s_max;
    if (!keep && s[i] >= threshold) {
      if (min_p > 0 && std::abs(w[i] - min_p) < kWeightMargin * min_p) amb = true;
      keep = w[i] >= min_p;
    }
    if (keep) {
      kept.push_back(i);
      mass += w[i];
    }
  }
  const double target = static_cast<double>(ud_uniform(seed, static_cast<uint32_t>(counter))) * mass;
  double cumulative = 0;
  for (size_t i : kept) {
    const double before = cumulative;
    cumulative += w[i];
    if (target < cumulative) {
      if (before > 0 && target - before < kMassMargin * mass) amb = true;
      if (cumulative - target < kMassMargin * mass) amb = true;
      return amb;
    }
  }
  return true;
}

}  // namespace updraft::dev

#endif
