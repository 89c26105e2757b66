// emulate.cc — runs the CUDA sample kernel's device code (kernels/cuda/sample.cu) on the host through
// emu_cuda.h and compares it with the CPU reference kernel (kernels/cpu/sample.cc) on many rows:
// vocabularies from 1 to 128256, greedy and every filter, ties, -inf / NaN / +-0 / overflow rows,
// top-K from 0 to 64. Tokens must match exactly except where the row sits within rounding of a
// boundary (the same margins as test/device/reference.ts, recomputed here in f64).
//
//   kernels/dev/sample/emulate.sh            (builds with 1024 and with 64 threads per block, runs both)
//
// This checks the kernel's logic and its use of barriers and warp collectives, not the GPU's timing
// or its expf; the conformance suite on a GPU remains the judge.
#define UPDRAFT_SAMPLE_EMULATION 1
#include "emu_cuda.h"

namespace updraft::cuda {
constexpr int kSampleMaxTopLogprobs = 64;
}

#include "../../cuda/sample.cu"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>
#include <string>

#include "../../cpu/cpu_kernels.h"
#include "margins.h"

namespace {

struct Row {
  std::vector<float> logits;
  float temperature = 1, top_p = 1, min_p = 0;
  int32_t top_k = 0;
  uint64_t seed = 0;
  int32_t counter = 0;
  std::string what;
};

ud_tensor tensor(void *data, ud_dtype dtype, std::initializer_list<int64_t> shape) {
  ud_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<int32_t>(shape.size());
  int i = 0;
  for (int64_t n : shape) t.ne[i++] = n;
  for (; i < UD_MAX_DIMS; i++) t.ne[i] = 1;
  return t;
}

struct Outputs {
  std::vector<int32_t> ids, top_ids;
  std::vector<float> logprobs, top_logprobs;
};

struct Stats {
  int rows = 0, compared = 0, failures = 0, differing_ambiguous = 0;
  uint64_t switches = 0;
};

bool close(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= 1e-5f + 1e-5f * std::abs(b);
}

// Runs one batch (rows of one vocabulary) on both and compares.
void run_batch(const std::vector<Row> &rows, int num_top, bool pass_ids, bool pass_logprobs, Stats &stats,
               updraft::cpu::ThreadPool &pool) {
  const int S = static_cast<int>(rows.size());
  const int V = static_cast<int>(rows[0].logits.size());
  std::vector<float> logits(static_cast<size_t>(S) * V), temperature(S), top_p(S), min_p(S);
  std::vector<int32_t> top_k(S), counters(S);
  std::vector<uint64_t> seeds(S);
  for (int s = 0; s < S; s++) {
    std::copy(rows[s].logits.begin(), rows[s].logits.end(), logits.begin() + static_cast<size_t>(s) * V);
    temperature[s] = rows[s].temperature;
    top_p[s] = rows[s].top_p;
    min_p[s] = rows[s].min_p;
    top_k[s] = rows[s].top_k;
    counters[s] = rows[s].counter;
    seeds[s] = rows[s].seed;
  }
  Outputs gpu, cpu;
  for (Outputs *o : {&gpu, &cpu}) {
    o->ids.assign(S, -77);
    o->logprobs.assign(S, NAN);
    o->top_ids.assign(static_cast<size_t>(S) * num_top, -77);
    o->top_logprobs.assign(static_cast<size_t>(S) * num_top, NAN);
  }

  updraft::cuda::SampleArgs args{};
  args.logits = logits.data();
  args.temperature = temperature.data();
  args.top_k = top_k.data();
  args.top_p = top_p.data();
  args.min_p = min_p.data();
  args.seeds = seeds.data();
  args.counters = counters.data();
  args.token_ids = gpu.ids.data();
  args.token_logprobs = gpu.logprobs.data();
  args.top_ids = num_top > 0 && pass_ids ? gpu.top_ids.data() : nullptr;
  args.top_logprobs = num_top > 0 && pass_logprobs ? gpu.top_logprobs.data() : nullptr;
  args.vocab = V;
  args.num_top = num_top;
  stats.switches += emu::launch(S, updraft::cuda::kThreads, [&] { updraft::cuda::sample_kernel(args); });

  ud_op op{};
  op.kind = UD_OP_SAMPLE;
  op.n_src = 7;
  op.n_dst = 4;
  op.params.sample.num_top_logprobs = num_top;
  op.src[0] = tensor(logits.data(), UD_F32, {S, V});
  op.src[1] = tensor(temperature.data(), UD_F32, {S});
  op.src[2] = tensor(top_k.data(), UD_I32, {S});
  op.src[3] = tensor(top_p.data(), UD_F32, {S});
  op.src[4] = tensor(min_p.data(), UD_F32, {S});
  op.src[5] = tensor(seeds.data(), UD_U64, {S});
  op.src[6] = tensor(counters.data(), UD_I32, {S});
  op.dst[0] = tensor(cpu.ids.data(), UD_I32, {S});
  op.dst[1] = tensor(cpu.logprobs.data(), UD_F32, {S});
  if (num_top > 0) {
    op.dst[2] = tensor(cpu.top_ids.data(), UD_I32, {S, num_top});
    op.dst[3] = tensor(cpu.top_logprobs.data(), UD_F32, {S, num_top});
  }
  updraft::cpu::KernelContext ctx{pool, {}};
  if (updraft::cpu::launch_sample(op, ctx) != UD_OK) {
    std::fprintf(stderr, "cpu launch failed: %s\n", ctx.error.c_str());
    std::exit(2);
  }

  for (int s = 0; s < S; s++) {
    const Row &r = rows[s];
    stats.rows++;
    const auto report = [&](const std::string &msg) {
      stats.failures++;
      if (stats.failures <= 40)
        std::printf("FAIL V=%d row %d (%s; T=%g k=%d p=%g min_p=%g seed=%llu counter=%d): %s\n", V, s, r.what.c_str(),
                    r.temperature, r.top_k, r.top_p, r.min_p, static_cast<unsigned long long>(r.seed), r.counter,
                    msg.c_str());
    };
    if (!updraft::dev::ambiguous(r.logits.data(), V, r.temperature, r.top_k, r.top_p, r.min_p, r.seed, r.counter)) {
      stats.compared++;
      if (gpu.ids[s] != cpu.ids[s])
        report("token " + std::to_string(gpu.ids[s]) + ", cpu " + std::to_string(cpu.ids[s]));
    } else if (gpu.ids[s] != cpu.ids[s]) {
      stats.differing_ambiguous++;
    }
    if (gpu.ids[s] < 0 || gpu.ids[s] >= V) {
      report("token out of range: " + std::to_string(gpu.ids[s]));
      continue;
    }
    const float lp = cpu.logprobs[s];  // the gpu's token may differ (ambiguous): compare its own logprob
    const float expect = gpu.ids[s] == cpu.ids[s] ? lp : NAN;
    if (gpu.ids[s] == cpu.ids[s] && !close(gpu.logprobs[s], expect))
      report("logprob " + std::to_string(gpu.logprobs[s]) + ", cpu " + std::to_string(expect));
    for (int j = 0; j < num_top; j++) {
      const size_t at = static_cast<size_t>(s) * num_top + j;
      if (pass_ids && gpu.top_ids[at] != cpu.top_ids[at])
        report("top id " + std::to_string(j) + ": " + std::to_string(gpu.top_ids[at]) + ", cpu " +
               std::to_string(cpu.top_ids[at]));
      if (!pass_ids && gpu.top_ids[at] != -77) report("wrote an absent top_ids view");
      if (pass_logprobs && !close(gpu.top_logprobs[at], cpu.top_logprobs[at]))
        report("top logprob " + std::to_string(j) + ": " + std::to_string(gpu.top_logprobs[at]) + ", cpu " +
               std::to_string(cpu.top_logprobs[at]));
      if (!pass_logprobs && !std::isnan(gpu.top_logprobs[at])) report("wrote an absent top_logprobs view");
    }
  }
}

std::vector<float> normals(std::mt19937_64 &rng, int n, float std_dev) {
  std::normal_distribution<float> dist(0.0f, std_dev);
  std::vector<float> v(n);
  for (float &x : v) x = dist(rng);
  return v;
}

}  // namespace

int main(int argc, char **argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::mt19937_64 rng(20240611);
  updraft::cpu::ThreadPool pool(1);
  Stats stats;
  const auto start = std::chrono::steady_clock::now();

  const std::vector<int> vocabs = quick ? std::vector<int>{1, 7, 77, 1000, 32003}
                                        : std::vector<int>{1, 2, 5, 31, 77, 300, 1000, 4099, 32003, 128256};
  for (int V : vocabs) {
    std::vector<Row> rows;
    const auto add = [&](std::vector<float> logits, float T, int k, float p, float min_p, const std::string &what) {
      Row r;
      r.logits = std::move(logits);
      r.temperature = T;
      r.top_k = k;
      r.top_p = p;
      r.min_p = min_p;
      r.seed = rng();
      r.counter = static_cast<int32_t>(rng() & 0x7fffffff);
      r.what = what;
      rows.push_back(std::move(r));
    };
    const int per_setting = V >= 32003 ? 1 : 3;
    const float temps[] = {0.0f, 0.5f, 1.0f, 1.7f};
    const int ks[] = {0, 1, 2, 50, V - 1, V, V + 5};
    const float ps[] = {1.0f, 0.9f, 0.5f, 0.0f, 1e-30f, NAN};
    const float min_ps[] = {0.0f, 0.05f, 0.3f, 1.5f, NAN};
    for (int rep = 0; rep < per_setting; rep++) {
      for (float T : temps)
        for (int k : ks) add(normals(rng, V, 3), T, k, 1.0f, 0.0f, "normal/top-k");
      for (float p : ps) add(normals(rng, V, 2), 1.0f, 0, p, 0.0f, "normal/top-p");
      for (float m : min_ps) add(normals(rng, V, 1), 0.8f, 0, 1.0f, m, "normal/min-p");
      add(normals(rng, V, 3), 1.2f, 40, 0.8f, 0.02f, "normal/all filters");
      add(normals(rng, V, 2), 0.7f, std::max(1, V / 3), 0.95f, 0.0f, "normal/k+p");
    }
    // Quantised logits: ties everywhere, at every threshold.
    for (int rep = 0; rep < per_setting; rep++) {
      for (int k : {1, 2, 3, 10, 100}) {
        std::vector<float> q = normals(rng, V, 2);
        for (float &x : q) x = std::round(x * 2) / 2;
        add(q, 1.0f, k, 1.0f, 0.0f, "quantised/top-k");
        add(q, 0.9f, 0, 0.3f + 0.1f * static_cast<float>(k % 5), 0.0f, "quantised/top-p");
        add(q, 1.1f, k, 0.7f, 0.1f, "quantised/all");
        add(q, 0.0f, 0, 1.0f, 0.0f, "quantised/greedy");
      }
    }
    // Special values.
    {
      std::vector<float> masked = normals(rng, V, 2);
      for (int i = 0; i < V; i++)
        if (i % 3 != 1) masked[i] = -INFINITY;
      add(masked, 1.0f, 0, 1.0f, 0.0f, "masked");
      add(masked, 1.0f, std::max(1, V - 1), 0.9f, 0.0f, "masked/top-k into -inf");
      add(masked, 0.0f, 0, 1.0f, 0.0f, "masked/greedy");
      std::vector<float> nan = normals(rng, V, 2);
      for (int i = 0; i < V; i += 5) nan[i] = NAN;
      add(nan, 1.0f, 3, 0.8f, 0.05f, "nan");
      add(nan, 0.0f, 0, 1.0f, 0.0f, "nan/greedy");
      add(std::vector<float>(V, -INFINITY), 1.0f, 2, 0.5f, 0.1f, "all -inf");
      add(std::vector<float>(V, -INFINITY), 0.0f, 0, 1.0f, 0.0f, "all -inf/greedy");
      add(std::vector<float>(V, NAN), 1.0f, 0, 1.0f, 0.0f, "all NaN");
      add(std::vector<float>(V, 0.25f), 1.0f, 3, 0.5f, 0.0f, "all equal");
      add(std::vector<float>(V, 0.25f), 1.0f, 0, 1.0f, 0.0f, "all equal/no filter");
      std::vector<float> zeros(V);
      for (int i = 0; i < V; i++) zeros[i] = (i % 2) ? -0.0f : 0.0f;
      if (V > 2) zeros[V / 2] = -1.0f;
      add(zeros, 1.0f, 1, 1.0f, 0.0f, "+-0 ties");
      add(zeros, 0.0f, 0, 1.0f, 0.0f, "+-0 greedy");
      std::vector<float> over = normals(rng, V, 1);
      over[V - 1] = 5.0f;
      if (V > 3) over[V / 3] = 4.5f;
      add(over, 1e-38f, 0, 1.0f, 0.0f, "overflow to +inf");
      std::vector<float> tiny = normals(rng, V, 1e-38f);
      add(tiny, 1e-3f, 5, 0.9f, 0.0f, "denormal-ish");
      std::vector<float> huge = normals(rng, V, 1e30f);
      add(huge, 1e29f, 5, 0.9f, 0.0f, "huge");
      std::vector<float> inf = normals(rng, V, 1);
      inf[V / 2] = INFINITY;
      add(inf, 0.0f, 0, 1.0f, 0.0f, "+inf/greedy");
      add(inf, 1.0f, 0, 1.0f, 0.0f, "+inf");
      std::vector<float> steep = normals(rng, V, 1);
      for (int i = 0; i < V; i++) steep[i] = -static_cast<float>(i % 97) * 0.37f;  // ties, a wide range
      add(steep, 1.3f, 7, 0.6f, 0.001f, "steep ties");
      add(steep, 3.0f, 0, 0.999f, 0.0f, "steep/top-p 0.999");
      // Several ids share the maximum: min_p > 1 and top_p 0 keep exactly those.
      std::vector<float> top_ties = normals(rng, V, 1);
      for (int i : {V / 4, V / 2, (3 * V) / 4}) top_ties[i] = 10.0f;
      add(top_ties, 1.0f, 0, 1.0f, 1.5f, "max ties/min-p > 1");
      add(top_ties, 0.9f, 0, 0.0f, 0.0f, "max ties/top-p 0");
      add(top_ties, 0.9f, 2, 1.0f, 0.0f, "max ties/top-k 2");
    }
    // Draws at the ends of [0, 1): u = 0 must give the first kept id (never a weightless one before
    // it) and u = 1 - 2^-24 the last. Seeds and counters found by search (ud_uniform's 24 bits).
    {
      const std::pair<uint64_t, int32_t> ends[] = {{0, 33897418}, {0, 14790804}};
      for (const auto &[seed, counter] : ends) {
        const size_t first = rows.size();
        std::vector<float> half = normals(rng, V, 2);
        for (int i = 0; i < V / 2; i++) half[i] = -INFINITY;
        add(half, 1.0f, 0, 1.0f, 0.0f, "u end/first half masked");
        add(normals(rng, V, 2), 1.0f, 5, 1.0f, 0.0f, "u end/top-k 5");
        add(normals(rng, V, 2), 0.8f, 0, 0.5f, 0.0f, "u end/top-p");
        add(normals(rng, V, 2), 1.0f, 0, 1.0f, 0.2f, "u end/min-p");
        // x / 1.7 rounds 2 and the float just below it to the same s: both are the maximum of s.
        if (V >= 2) {
          std::vector<float> div = normals(rng, V, 0.3f);
          div[V / 3] = 1.99999988f;
          div[(2 * V) / 3 == V / 3 ? V - 1 : (2 * V) / 3] = 2.0f;
          add(div, 1.7f, 1, 1.0f, 0.0f, "s tie from rounding/top-k 1");
          add(div, 1.7f, 0, 1e-6f, 0.0f, "s tie from rounding/top-p");
          add(div, 1.7f, 0, 1.0f, 1.5f, "s tie from rounding/min-p > 1");
          add(div, 0.0f, 0, 1.0f, 0.0f, "s tie from rounding/greedy");
          std::vector<float> div2 = div;  // the tie as the k-th value below the maximum
          div2[0 == V / 3 ? V - 1 : 0] = 5.0f;
          if (V >= 3) add(div2, 1.7f, 2, 1.0f, 0.0f, "s tie from rounding/top-k 2");
        }
        for (size_t i = first; i < rows.size(); i++) {
          rows[i].seed = seed;
          rows[i].counter = counter;
        }
      }
    }

    const int tops[] = {0, 1, 5, std::min(V, 20), std::min(V, 64)};
    int variant = 0;
    for (int num_top : tops) {
      if (num_top > V) continue;
      // Split rows over the top-K settings so each batch stays small; K = 0 and absent views too.
      std::vector<Row> batch;
      for (size_t i = variant; i < rows.size(); i += 5) batch.push_back(rows[i]);
      variant++;
      if (batch.empty()) continue;
      run_batch(batch, num_top, variant != 3, variant != 4, stats, pool);
    }
    std::printf("V=%d: %d rows so far, %d compared, %d failures (%.1fs)\n", V, stats.rows, stats.compared, stats.failures,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  }
  std::printf("%s: %d rows, %d tokens compared (the rest sit within rounding of a boundary, of which %d differ), "
              "%d failures, %llu fiber switches, kThreads=%d\n",
              stats.failures ? "FAILED" : "OK", stats.rows, stats.compared, stats.differing_ambiguous, stats.failures,
              static_cast<unsigned long long>(stats.switches), updraft::cuda::kThreads);
  return stats.failures ? 1 : 0;
}
