// UD_OP_SAMPLE on CUDA: one CTA of 1024 threads per row of logits; only the token ids and logprobs
// (and the top-K logprobs) are written, nothing comes back to the host otherwise.
//
// Semantics (kernels/ops.h, reference kernels/cpu/sample.cc): with s = x / T (an IEEE f32 division,
// NaN logits read as -inf), keep {i : s_i >= threshold}, threshold = max(top-k value, top-p value,
// min-p), capped at s_max, every tie with a threshold kept; then inverse CDF over the kept set in
// ascending id order with u = ud_uniform(seed, counter).
//
// Design (every pass streams the row from L2 / HBM, 16-byte loads where aligned; nothing is sorted):
//   Pass A    raw max, its lowest id (greedy) and the log-sum-exp (online, f32) -> logprobs.
//   Top-K     the K-th largest raw value by a radix select (3 histogram passes: 12 + 12 + 8 bits of the
//             order-preserving key of the f32 bits), then one pass collects the ids above it and the
//             lowest-id ties at it (per-warp chunks in id order), sorted by (value desc, id asc).
//   top-k     the same count select on the raw values: x/T is monotone, so the k-th largest s is
//             f(k-th largest x). A scalar bisection over float bits turns an s threshold back into the
//             smallest raw x with x/T >= it, so later passes test `x >= x_thr` and divide only kept
//             elements (ties in s that come from different x are kept, as the semantics say).
//   top-p     a radix select on the raw values weighted by mass: the largest x with
//             sum(x_i >= x, i in the top-k set) w_i >= ceil(top_p * mass of the top-k set); the
//             top-k set's mass is the first pass's total. Its s is the top-p threshold (see
//             draw_token for why raw keys give the s-space answer).
//   min-p     per element in the draw: exp(s_i - s_max) >= min_p (or s_i == s_max).
//   Draw      target = floor(u * total); a hierarchical ordered search: the range is split into 32
//             contiguous warp chunks, each warp sums its chunk, the chunk whose prefix passes the
//             target is kept (and the target reduced), until <= 256 ids remain, which warp 0 walks
//             with an inclusive scan. About 1.03 reads of the row.
//
// Masses are fixed point: w = expf(s - s_max) in [0, 1] is held as round(w * 2^40) in u64 and every
// sum is an integer sum, so all histograms (shared-memory atomics), prefix sums and the draw are
// exact and independent of thread scheduling: the kernel is deterministic. Against the f64
// reference a device may differ only where a mass or weight sits within ~1e-6 relative of a
// boundary: f32 division and expf (<= 2 ulp), the rounding of s - s_max, and 2^-41 per weight of
// quantisation. The conformance tests skip exactly those rows (reference.ts: `ambiguous`, margins
// 1e-5 of a mass and 1e-4 of min_p) and pick counters that draw clear of them for large vocabularies.
//
// Skipped work: greedy rows run pass A only; a row runs the top-k select only when 0 < top_k < V,
// the top-p select only when 0 < top_p < 1 (top_p <= 0 keeps the maximum's ties without a pass),
// the top-K passes only when K > 0. No workspace, no host reads, one launch: graph-capturable.
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

// UPDRAFT_SAMPLE_EMULATION: kernels/dev/sample/emulate.cc compiles the device code of this file on the
// host (threads as fibers, with the barrier and warp-collective semantics checked) to test it where
// there is no GPU; it supplies the CUDA names itself and may build with fewer threads per block.
#ifndef UPDRAFT_SAMPLE_EMULATION
#include "rowwise.cuh"
#include "sample.cuh"
#endif
#ifndef UPDRAFT_SAMPLE_THREADS
#define UPDRAFT_SAMPLE_THREADS 1024
#endif

namespace updraft::cuda {
namespace {

constexpr int kThreads = UPDRAFT_SAMPLE_THREADS;
constexpr int kWarps = kThreads / 32;
static_assert(kThreads % 32 == 0 && kWarps >= 1 && kWarps <= 32, "row_stats reduces the warps' parts in one warp");
constexpr int kMaxBins = 4096;  // the widest radix digit: 12 bits
constexpr int kMaxTop = kSampleMaxTopLogprobs;
constexpr int kWalkSpan = 256;  // the ordered draw narrows the range to at most this many ids
constexpr float kFixedOne = 1099511627776.0f;  // 2^40: weight w in [0, 1] -> round(w * 2^40)

struct SampleArgs {
  const float *logits;  // [S, V]
  const float *temperature;
  const int32_t *top_k;
  const float *top_p;
  const float *min_p;
  const uint64_t *seeds;
  const int32_t *counters;
  int32_t *token_ids;
  float *token_logprobs;
  int32_t *top_ids;       // [S, K] or null
  float *top_logprobs;    // [S, K] or null
  int32_t vocab;
  int32_t num_top;        // K
};

struct TopScratch {
  int32_t ties[kWarps][kMaxTop];  // each warp's first ties at the K-th value, ascending ids
  int32_t tie_count[kWarps];
  int32_t above[kMaxTop];         // ids strictly above the K-th value (any order)
  int32_t cand[kMaxTop];          // the K ids, unsorted
  int32_t num_above;
};

struct Smem {
  union {
    unsigned long long mass[kMaxBins];
    unsigned int count[kMaxBins];
    TopScratch top;
  } u;
  unsigned long long warp_u64[kWarps];
  float warp_max[kWarps];
  float warp_sum[kWarps];
  int32_t warp_arg[kWarps];
  unsigned long long bcast_u64;
  int32_t bcast_i32[2];
  float bcast_f32[2];
};

// --- values and keys ---------------------------------------------------------------------------------
// NaN reads as -inf and -0 as +0 (they compare equal, so they must share a key).
__device__ __forceinline__ float sanitize(float v) { return isnan(v) ? -INFINITY : __fadd_rn(v, 0.0f); }
__device__ __forceinline__ float load(const float *__restrict__ row, int i) { return sanitize(__ldg(row + i)); }

// Order-preserving u32 key of a non-NaN float, and back.
__device__ __forceinline__ uint32_t key_of(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float float_of(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__device__ __forceinline__ unsigned long long to_fixed(float w) { return __float2ull_rn(__fmul_rn(w, kFixedOne)); }

// expf(x / T - s_max) in fixed point: the probability weight relative to the most likely token.
__device__ __forceinline__ unsigned long long fixed_weight(float v, float temperature, float s_max) {
  return to_fixed(expf(__fsub_rn(__fdiv_rn(v, temperature), s_max)));
}

// ud_uniform's 24 bits (kernels/ops.h), on the device.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__device__ __forceinline__ uint64_t uniform_bits(uint64_t seed, uint32_t counter) {
  return mix64(seed ^ mix64(static_cast<uint64_t>(counter))) >> 40;
}

// The smallest float x (in value order) with x / T >= s_star, given that x_hi / T >= s_star. x / T is
// monotone in x, so {i : x_i / T >= s_star} = {i : x_i >= result}. Every thread computes it (same
// inputs, same result), which saves a broadcast.
__device__ float preimage_min(float s_star, float x_hi, float temperature) {
  uint32_t lo = key_of(-INFINITY), hi = key_of(x_hi);
  while (lo < hi) {
    const uint32_t mid = lo + ((hi - lo) >> 1);
    if (__fdiv_rn(float_of(mid), temperature) >= s_star) hi = mid;
    else lo = mid + 1;
  }
  return float_of(lo);
}

// Calls f(i, value) for every element of the row, the block's threads sharing the work, with 16-byte
// loads where the row is 16-byte aligned (scalar loads for the <= 3 elements before and after).
// Each thread meets its ids in increasing order.
template <typename F>
__device__ __forceinline__ void for_each_element(const float *__restrict__ row, int vocab, F &&f) {
  const int misalign = static_cast<int>((reinterpret_cast<uintptr_t>(row) >> 2) & 3);
  const int head = min(vocab, (4 - misalign) & 3);
  const int quads = (vocab - head) >> 2;
  const int t = static_cast<int>(threadIdx.x);
  if (t < head) f(t, load(row, t));
  const float4 *quad = reinterpret_cast<const float4 *>(row + head);
#pragma unroll 2
  for (int c = t; c < quads; c += kThreads) {
    const float4 q = __ldg(quad + c);
    const int i = head + 4 * c;
    f(i, sanitize(q.x));
    f(i + 1, sanitize(q.y));
    f(i + 2, sanitize(q.z));
    f(i + 3, sanitize(q.w));
  }
  const int tail = head + 4 * quads + t;
  if (tail < vocab) f(tail, load(row, tail));
}

// Sum of weight(value) over ids [begin, end) by one warp (lanes share the range; 16-byte loads where
// aligned). Integer sums: the result does not depend on which lane added what.
template <typename WeightFn>
__device__ __forceinline__ unsigned long long warp_range_weight(const float *__restrict__ row, int begin, int end,
                                                               const WeightFn &weight, int lane) {
  unsigned long long part = 0;
  if (begin < end) {
    const int misalign = static_cast<int>((reinterpret_cast<uintptr_t>(row) >> 2) & 3);
    const int aligned = min(end, begin + ((4 - ((misalign + begin) & 3)) & 3));  // first 16-byte-aligned id
    const int quads = (end - aligned) >> 2;
    const int tail = aligned + 4 * quads;
    if (begin + lane < aligned) part += weight(load(row, begin + lane));
    const float4 *quad = reinterpret_cast<const float4 *>(row + aligned);
    for (int c = lane; c < quads; c += 32) {
      const float4 q = __ldg(quad + c);
      part += weight(sanitize(q.x)) + weight(sanitize(q.y)) + weight(sanitize(q.z)) + weight(sanitize(q.w));
    }
    if (tail + lane < end) part += weight(load(row, tail + lane));
  }
  return part;
}

__device__ __forceinline__ unsigned long long warp_sum(unsigned long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// --- pass A: max, argmax (lowest id), log-sum-exp ------------------------------------------------------
struct RowStats {
  float max;
  int argmax;
  float log_norm;  // max + log(sum exp(x - max)); NaN when max is +inf (as the f64 reference)
};

// (m, sum, arg) of two parts: sums rescaled to the larger max; ties of the max keep the lower id.
__device__ __forceinline__ void merge_stats(float &m, float &sum, int &arg, float m2, float sum2, int arg2) {
  const float mm = fmaxf(m, m2);
  const float a = m == -INFINITY ? 0.0f : (m == mm ? sum : __fmul_rn(sum, expf(__fsub_rn(m, mm))));
  const float b = m2 == -INFINITY ? 0.0f : (m2 == mm ? sum2 : __fmul_rn(sum2, expf(__fsub_rn(m2, mm))));
  arg = m > m2 ? arg : (m2 > m ? arg2 : min(arg, arg2));
  m = mm;
  sum = __fadd_rn(a, b);
}

__device__ RowStats row_stats(const float *__restrict__ row, int vocab, Smem &sm) {
  float m = -INFINITY, sum = 0.0f;
  int arg = INT_MAX;
  for_each_element(row, vocab, [&](int i, float v) {
    if (v > m) {
      sum = __fadd_rn(__fmul_rn(sum, expf(__fsub_rn(m, v))), 1.0f);
      m = v;
      arg = i;
    } else {
      if (v == m && i < arg) arg = i;  // ties (and a row of -inf so far): the lowest id
      if (v != -INFINITY) sum = __fadd_rn(sum, expf(__fsub_rn(v, m)));
    }
  });
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_down_sync(0xffffffffu, m, o);
    const float s2 = __shfl_down_sync(0xffffffffu, sum, o);
    const int a2 = __shfl_down_sync(0xffffffffu, arg, o);
    if (lane + o < 32) merge_stats(m, sum, arg, m2, s2, a2);
  }
  if (lane == 0) {
    sm.warp_max[warp] = m;
    sm.warp_sum[warp] = sum;
    sm.warp_arg[warp] = arg;
  }
  __syncthreads();
  if (warp == 0) {
    m = lane < kWarps ? sm.warp_max[lane] : -INFINITY;
    sum = lane < kWarps ? sm.warp_sum[lane] : 0.0f;
    arg = lane < kWarps ? sm.warp_arg[lane] : INT_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float m2 = __shfl_down_sync(0xffffffffu, m, o);
      const float s2 = __shfl_down_sync(0xffffffffu, sum, o);
      const int a2 = __shfl_down_sync(0xffffffffu, arg, o);
      if (lane + o < 32) merge_stats(m, sum, arg, m2, s2, a2);
    }
    if (lane == 0) {
      sm.bcast_f32[0] = m;
      sm.bcast_f32[1] = m == INFINITY ? NAN : __fadd_rn(m, logf(sum));
      sm.bcast_i32[0] = arg;
    }
  }
  __syncthreads();
  RowStats st;
  st.max = sm.bcast_f32[0];
  st.log_norm = sm.bcast_f32[1];
  st.argmax = sm.bcast_i32[0];
  return st;
}

// --- radix select -------------------------------------------------------------------------------------
struct Selected {
  bool found;
  uint32_t key;               // the selected key
  unsigned long long above;   // total weight of keys strictly above it
};

// top_p * total rounded up: the mass the kept prefix must reach (>= 1 as top_p > 0).
__device__ __forceinline__ unsigned long long mass_target(float top_p, unsigned long long total) {
  const double t = ceil(static_cast<double>(top_p) * static_cast<double>(total));
  return t < 1.0 ? 1ull : static_cast<unsigned long long>(t);
}

// The largest key K such that the weights of the elements with key >= K sum to at least `target`
// (counts: kMass false, weight(v) is 0 or 1; masses: kMass true, target = mass_target(top_p, total of
// all weights)). Three histogram passes over the row on digits of 12, 12 and 8 bits; each later pass
// only histograms the elements whose higher digits match the ones chosen. Integer atomics: the
// histograms do not depend on the order in which threads add to them.
template <bool kMass, typename WeightFn>
__device__ Selected select_key(const float *__restrict__ row, int vocab, WeightFn weight,
                               unsigned long long count_target, float top_p, Smem &sm) {
  using Bin = typename std::conditional<kMass, unsigned long long, unsigned int>::type;
  Bin *hist;
  if constexpr (kMass) hist = sm.u.mass;
  else hist = sm.u.count;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t prefix = 0;
  unsigned long long above = 0, target = count_target;
  Selected result{false, 0, 0};
  for (int pass = 0; pass < 3; pass++) {
    const int shift = pass == 0 ? 20 : (pass == 1 ? 8 : 0);
    const int bins = pass < 2 ? 4096 : 256;
    const int high = shift + (pass < 2 ? 12 : 8);  // the bits above this digit: chosen already
    __syncthreads();  // earlier readers of the union and of the broadcasts are done
    for (int b = threadIdx.x; b < bins; b += kThreads) hist[b] = 0;
    if (threadIdx.x == 0) sm.bcast_i32[1] = -1;
    __syncthreads();
    const uint32_t want = pass == 0 ? 0u : prefix >> high;
    for_each_element(row, vocab, [&](int, float v) {
      const uint32_t k = key_of(v);
      if (pass > 0 && (k >> high) != want) return;
      const Bin w = weight(v);
      if (w != 0) atomicAdd(&hist[(k >> shift) & static_cast<uint32_t>(bins - 1)], w);
    });
    __syncthreads();

    // Thread t owns bins [t * per, (t + 1) * per); suffix sums run from the highest bin down.
    const int per = bins >= kThreads ? bins / kThreads : 1;
    const int first = threadIdx.x * per;
    const bool owns = first < bins;
    unsigned long long mine = 0;
    if (owns)
      for (int j = 0; j < per; j++) mine += hist[first + j];
    unsigned long long incl = mine;  // sum over lanes >= this one of the warp
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned long long y = __shfl_down_sync(0xffffffffu, incl, o);
      if (lane + o < 32) incl += y;
    }
    if (lane == 0) sm.warp_u64[warp] = incl;
    __syncthreads();
    unsigned long long later = 0, total = 0;
    for (int w = 0; w < kWarps; w++) {
      const unsigned long long t = sm.warp_u64[w];
      total += t;
      if (w > warp) later += t;
    }
    if constexpr (kMass) {
      if (pass == 0) target = mass_target(top_p, total);
    }
    // Weight above this thread's bins: `above` (keys above the prefix) + later threads' bins.
    unsigned long long acc = above + later + (incl - mine);
    if (owns) {
      for (int j = per - 1; j >= 0; j--) {
        const unsigned long long h = hist[first + j];
        if (acc < target && acc + h >= target) {  // the one bin where the suffix sum reaches target
          sm.bcast_i32[1] = first + j;
          sm.bcast_u64 = acc;
        }
        acc += h;
      }
    }
    __syncthreads();
    const int chosen = sm.bcast_i32[1];
    if (chosen < 0) return result;  // the weights never reach the target (block-uniform)
    prefix |= static_cast<uint32_t>(chosen) << shift;
    above = sm.bcast_u64;
  }
  result.found = true;
  result.key = prefix;
  result.above = above;
  return result;
}

struct CountAll {
  __device__ unsigned int operator()(float) const { return 1u; }
};

// --- top-K logprobs -----------------------------------------------------------------------------------
// The K largest raw logprobs, descending, ties by lower id: the K-th largest value by a count select,
// then the ids above it (fewer than K) and the lowest-id ties at it. Each warp walks a contiguous chunk
// of ids in order and keeps its first ties; the chunks are then taken in order, so the ties are the
// lowest ids whatever the scheduling.
__device__ void top_logprobs(const float *__restrict__ row, int vocab, int num_top, float log_norm,
                             int32_t *ids_out, float *logprobs_out, Smem &sm) {
  const Selected sel = select_key<false>(row, vocab, CountAll{}, static_cast<unsigned long long>(num_top), 0.0f, sm);
  const uint32_t theta = sel.key;  // found: num_top <= vocab
  const int need = num_top - static_cast<int>(sel.above);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // the histogram is no longer read
  if (threadIdx.x == 0) sm.u.top.num_above = 0;
  __syncthreads();
  const int chunk = (vocab + kWarps - 1) / kWarps;
  const int begin = min(vocab, warp * chunk), end = min(vocab, begin + chunk);
  int seen = 0;  // ties met so far in this warp's chunk (warp-uniform)
  for (int base = begin; base < end; base += 32) {
    const int i = base + lane;
    const bool valid = i < end;
    const uint32_t k = valid ? key_of(load(row, i)) : 0u;
    if (valid && k > theta) {
      const int slot = atomicAdd(&sm.u.top.num_above, 1);
      if (slot < kMaxTop) sm.u.top.above[slot] = i;
    }
    const bool tie = valid && k == theta;
    const unsigned mask = __ballot_sync(0xffffffffu, tie);
    if (tie) {
      const int r = seen + __popc(mask & ((1u << lane) - 1u));
      if (r < need) sm.u.top.ties[warp][r] = i;
    }
    seen += __popc(mask);
  }
  if (lane == 0) sm.u.top.tie_count[warp] = min(seen, need);
  __syncthreads();
  if (threadIdx.x == 0) {
    int n = min(sm.u.top.num_above, num_top);
    for (int c = 0; c < n; c++) sm.u.top.cand[c] = sm.u.top.above[c];
    for (int w = 0; w < kWarps && n < num_top; w++)
      for (int j = 0; j < sm.u.top.tie_count[w] && n < num_top; j++) sm.u.top.cand[n++] = sm.u.top.ties[w][j];
    for (; n < num_top; n++) sm.u.top.cand[n] = 0;  // unreachable: the counts always add up to K
  }
  __syncthreads();
  for (int c = threadIdx.x; c < num_top; c += kThreads) {
    const int id = sm.u.top.cand[c];
    const float v = load(row, id);
    int rank = 0;
    for (int j = 0; j < num_top; j++) {
      const int other = sm.u.top.cand[j];
      const float w = load(row, other);
      rank += (w > v || (w == v && other < id)) ? 1 : 0;
    }
    if (ids_out) ids_out[rank] = id;
    if (logprobs_out) logprobs_out[rank] = __fsub_rn(v, log_norm);
  }
}

// --- the draw -----------------------------------------------------------------------------------------
// The lowest id with x >= x_min (there is one).
__device__ int first_id_at_least(const float *__restrict__ row, int vocab, float x_min, Smem &sm) {
  int best = INT_MAX;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    if (load(row, i) >= x_min) {
      best = i;
      break;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) best = min(best, __shfl_xor_sync(0xffffffffu, best, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sm.warp_arg[warp] = best;
  __syncthreads();
  best = INT_MAX;
  for (int w = 0; w < kWarps; w++) best = min(best, sm.warp_arg[w]);
  return best == INT_MAX ? 0 : best;
}

// Inverse CDF in ascending id order over integer weights: the first id whose running sum exceeds
// floor(u * total), u = r24 / 2^24. The range narrows through contiguous warp chunks (exact integer
// sums, so the chunk holding the target is the same however the sums were formed) until warp 0 can
// walk what is left with a warp-wide inclusive scan. `fallback` (the argmax, always kept) is only
// returned if the weights are inconsistent, which cannot happen.
template <typename WeightFn>
__device__ int ordered_draw(const float *__restrict__ row, int vocab, WeightFn weight, uint64_t r24, int fallback,
                            Smem &sm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int begin = 0, end = vocab;
  unsigned long long target = 0;
  bool first = true;
  while (first || end - begin > kWalkSpan) {
    const int chunk = (end - begin + kWarps - 1) / kWarps;
    const int cb = min(end, begin + warp * chunk), ce = min(end, cb + chunk);
    const unsigned long long part = warp_sum(warp_range_weight(row, cb, ce, weight, lane));
    __syncthreads();  // earlier readers of warp_u64 and the broadcasts are done
    if (lane == 0) sm.warp_u64[warp] = part;
    __syncthreads();
    if (threadIdx.x == 0) {
      if (first) {
        unsigned long long total = 0;
        for (int w = 0; w < kWarps; w++) total += sm.warp_u64[w];
        // floor(r24 * total / 2^24) without overflow: the product has up to 87 bits.
        target = (__umul64hi(r24, total) << 40) | ((r24 * total) >> 24);
      }
      int j = 0;
      unsigned long long acc = 0;
      while (j < kWarps - 1 && acc + sm.warp_u64[j] <= target) acc += sm.warp_u64[j++];
      sm.bcast_i32[1] = j;
      sm.bcast_u64 = target - acc;
    }
    __syncthreads();
    const int j = sm.bcast_i32[1];
    target = sm.bcast_u64;
    begin = min(end, begin + j * chunk);
    end = min(end, begin + chunk);
    first = false;
  }
  if (warp == 0) {
    unsigned long long running = 0;
    int token = -1;
    for (int base = begin; base < end; base += 32) {
      const int i = base + lane;
      unsigned long long incl = i < end ? weight(load(row, i)) : 0ull;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      const unsigned hit = __ballot_sync(0xffffffffu, running + incl > target);
      if (hit != 0) {
        token = base + __ffs(hit) - 1;
        break;
      }
      running += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) sm.bcast_i32[0] = token < 0 ? fallback : token;
  }
  __syncthreads();
  return sm.bcast_i32[0];
}

// Weight of an element in the top-p select: its fixed-point weight if it is in the top-k set.
struct TopPWeight {
  float eligible;  // raw threshold of the top-k set (-inf: all)
  float temperature, s_max;
  __device__ unsigned long long operator()(float v) const {
    return v >= eligible ? fixed_weight(v, temperature, s_max) : 0ull;
  }
};

// Weight of an element in the draw: fixed point if kept (x >= x_thr, then min-p), else 0. The most
// likely tokens (s == s_max, weight exactly 1) always stay.
struct KeptWeight {
  float x_thr;
  float temperature, s_max, min_p;
  bool use_min_p;
  __device__ unsigned long long operator()(float v) const {
    if (!(v >= x_thr)) return 0ull;
    const float s = __fdiv_rn(v, temperature);
    const float w = expf(__fsub_rn(s, s_max));
    if (use_min_p && s != s_max && !(w >= min_p)) return 0ull;
    return to_fixed(w);
  }
};

// The token of a row with temperature > 0.
//
// Thresholds are searched on the raw values x, which is exact because s = x / T is monotone: the
// k-th largest s is (k-th largest x) / T; for top-p, with G(x) the mass of {x_i >= x}, the largest x
// with G(x) >= target has x / T equal to the largest s-value v with mass(s_i >= v) >= target (a
// larger v would be reached at the smallest x mapping to it, which would then satisfy G too). Each
// s threshold is turned back into the smallest raw x reaching it (preimage_min), so the kept set is
// {x_i >= x_thr}, ties in s included.
__device__ int draw_token(const float *__restrict__ row, int vocab, float temperature, int top_k, float top_p,
                          float min_p, uint64_t seed, int32_t counter, const RowStats &st, Smem &sm) {
  const float s_max = __fdiv_rn(st.max, temperature);
  if (s_max == -INFINITY) return 0;  // every s is -inf: the lowest id holds the maximum
  if (s_max == INFINITY) {           // x / T overflowed: the lowest id where it does
    return first_id_at_least(row, vocab, preimage_min(INFINITY, st.max, temperature), sm);
  }
  float x_thr = -INFINITY;
  if (top_k > 0 && top_k < vocab) {
    const Selected k = select_key<false>(row, vocab, CountAll{}, static_cast<unsigned long long>(top_k), 0.0f, sm);
    if (k.found) {
      const float x_k = float_of(k.key);
      x_thr = preimage_min(__fdiv_rn(x_k, temperature), x_k, temperature);
    }
  }
  if (top_p < 1.0f) {  // NaN: off
    if (!(top_p > 0.0f)) {
      x_thr = fmaxf(x_thr, preimage_min(s_max, st.max, temperature));  // just the maximum (and its ties)
    } else {
      const Selected p = select_key<true>(row, vocab, TopPWeight{x_thr, temperature, s_max}, 0ull, top_p, sm);
      if (p.found) {
        const float x_p = float_of(p.key);
        x_thr = fmaxf(x_thr, preimage_min(__fdiv_rn(x_p, temperature), x_p, temperature));
      }
    }
  }
  const KeptWeight kept{x_thr, temperature, s_max, min_p, min_p > 0.0f};
  return ordered_draw(row, vocab, kept, uniform_bits(seed, static_cast<uint32_t>(counter)), st.argmax, sm);
}

__global__ void __launch_bounds__(kThreads, 1) sample_kernel(const SampleArgs a) {
  __shared__ Smem sm;
  const int s = blockIdx.x;
  const int vocab = a.vocab;
  const float *row = a.logits + static_cast<int64_t>(s) * vocab;
  const RowStats st = row_stats(row, vocab, sm);

  if (a.num_top > 0 && (a.top_ids != nullptr || a.top_logprobs != nullptr)) {
    const int64_t offset = static_cast<int64_t>(s) * a.num_top;
    top_logprobs(row, vocab, a.num_top, st.log_norm, a.top_ids ? a.top_ids + offset : nullptr,
                 a.top_logprobs ? a.top_logprobs + offset : nullptr, sm);
  }

  const float temperature = a.temperature[s];
  int token = st.argmax;  // greedy for temperature 0 (or negative / NaN)
  if (temperature > 0.0f)
    token = draw_token(row, vocab, temperature, a.top_k[s], a.top_p[s], a.min_p[s], a.seeds[s], a.counters[s], st, sm);
  if (threadIdx.x == 0) {
    a.token_ids[s] = token;
    a.token_logprobs[s] = __fsub_rn(load(row, token), st.log_norm);
  }
}

}  // namespace

#ifndef UPDRAFT_SAMPLE_EMULATION
namespace {

// The CPU backend's dtype rule for sample (ud operand order).
constexpr int32_t kSrcDtypes[7] = {UD_F32, UD_F32, UD_I32, UD_F32, UD_F32, UD_U64, UD_I32};
constexpr int32_t kDstDtypes[4] = {UD_I32, UD_F32, UD_I32, UD_F32};

bool dtypes_ok(const ud_op &op) {
  for (int i = 0; i < op.n_src; i++)
    if (present(op.src[i]) && (i >= 7 || op.src[i].dtype != kSrcDtypes[i])) return false;
  for (int i = 0; i < op.n_dst; i++)
    if (present(op.dst[i]) && (i >= 4 || op.dst[i].dtype != kDstDtypes[i])) return false;
  return true;
}

const ud_tensor &operand(const ud_tensor *list, int count, int i) {
  static const ud_tensor kAbsent{};
  return i < count ? list[i] : kAbsent;
}

// K: the column count of whichever top view is present (0 without one).
int64_t top_columns(const ud_op &op) {
  const ud_tensor &ids = operand(op.dst, op.n_dst, 2), &lps = operand(op.dst, op.n_dst, 3);
  return present(ids) ? row_size(ids) : (present(lps) ? row_size(lps) : 0);
}

}  // namespace

int32_t sample_supports(const ud_op &op) {
  if (op.kind != UD_OP_SAMPLE || !dtypes_ok(op)) return 0;
  if (top_columns(op) > kSampleMaxTopLogprobs) return 0;
  const ud_tensor &logits = operand(op.src, op.n_src, 0);
  if (present(logits) && row_size(logits) > kSampleMaxVocab) return 0;
  return 1;
}

ud_status launch_sample(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &logits = operand(op.src, op.n_src, 0);       // [S, V] f32
  const ud_tensor &temperature = operand(op.src, op.n_src, 1);  // [S] f32
  const ud_tensor &top_k = operand(op.src, op.n_src, 2);        // [S] i32
  const ud_tensor &top_p = operand(op.src, op.n_src, 3);        // [S] f32
  const ud_tensor &min_p = operand(op.src, op.n_src, 4);        // [S] f32
  const ud_tensor &seeds = operand(op.src, op.n_src, 5);        // [S] u64
  const ud_tensor &counters = operand(op.src, op.n_src, 6);     // [S] i32
  const ud_tensor &token_ids = operand(op.dst, op.n_dst, 0);       // [S] i32
  const ud_tensor &token_logprobs = operand(op.dst, op.n_dst, 1);  // [S] f32
  const ud_tensor &top_ids = operand(op.dst, op.n_dst, 2);         // [S, K] i32, optional
  const ud_tensor &top_logprobs = operand(op.dst, op.n_dst, 3);    // [S, K] f32, optional

  rowwise::Checker check(ctx, "sample");
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
  const int64_t num_top = top_columns(op);
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
  if (num_top > kSampleMaxTopLogprobs)
    return ctx.fail(UD_ERR_UNSUPPORTED, "sample: cuda returns at most " + std::to_string(kSampleMaxTopLogprobs) +
                                            " top logprobs per row, asked for " + std::to_string(num_top));
  if (vocab > kSampleMaxVocab)
    return ctx.fail(UD_ERR_UNSUPPORTED, "sample: cuda handles vocabularies up to " + std::to_string(kSampleMaxVocab) +
                                            ", got " + std::to_string(vocab));
  if (num_seqs > INT32_MAX) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "sample: too many rows");
  if (num_seqs == 0) return UD_OK;

  SampleArgs args;
  args.logits = static_cast<const float *>(logits.data);
  args.temperature = static_cast<const float *>(temperature.data);
  args.top_k = static_cast<const int32_t *>(top_k.data);
  args.top_p = static_cast<const float *>(top_p.data);
  args.min_p = static_cast<const float *>(min_p.data);
  args.seeds = static_cast<const uint64_t *>(seeds.data);
  args.counters = static_cast<const int32_t *>(counters.data);
  args.token_ids = static_cast<int32_t *>(token_ids.data);
  args.token_logprobs = static_cast<float *>(token_logprobs.data);
  args.top_ids = num_top > 0 && present(top_ids) ? static_cast<int32_t *>(top_ids.data) : nullptr;
  args.top_logprobs = num_top > 0 && present(top_logprobs) ? static_cast<float *>(top_logprobs.data) : nullptr;
  args.vocab = static_cast<int32_t>(vocab);
  args.num_top = static_cast<int32_t>(num_top);
  sample_kernel<<<static_cast<unsigned>(num_seqs), kThreads, 0, ctx.stream>>>(args);
  return check_launch(ctx, "sample");
}
#endif  // UPDRAFT_SAMPLE_EMULATION

}  // namespace updraft::cuda
