// bench_sample.cu — standalone check + benchmark of the CUDA sample kernel (kernels/cuda/sample.cu),
// built on the GPU machine by bench/gpu/build_and_run_sample.sh.
//
//   bench_sample [--quick] [--json FILE]
//
// 1. Self-test against the CPU reference kernel (kernels/cpu/sample.cc, linked in): rows of
//    V = 128256, 32003 and 77 over greedy, temperature, top-k, top-p, min-p and their combinations,
//    ties, -inf / NaN rows, the draws at u = 0 and u = 1 - 2^-24, top-K = 0 / 5 / 20. Tokens must be
//    equal except on rows within rounding of a boundary (margins.h, as test/device/reference.ts);
//    top ids exactly; logprobs within 1e-5 + 1e-5·|x|. Then: run-to-run determinism (bitwise), and a
//    CUDA-graph capture of the launch replayed with new seeds / counters uploaded in between.
// 2. Timing: V = 128256 f32 logits, S in {1, 64, 256}, for greedy, temperature only, top-k 50,
//    top-p 0.9 (the brief's four), plus all filters and greedy with 20 top logprobs. Each call reads a
//    different slice of >= 256 MiB of logits (so rows come from HBM, not L2, like after an lm_head
//    matmul that wrote more than L2 holds), 5 warm-up calls, then CUDA events around N calls (N such
//    that the loop lasts >= ~20 ms). Prints µs per call and GB/s = S·V·4 bytes of logits / time (each
//    row is read more than once by the filter passes; this counts it once).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../cpu/cpu_kernels.h"
#include "../../cuda/sample.cuh"
#include "margins.h"

#define CK(x)                                                                                          \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      std::exit(2);                                                                                    \
    }                                                                                                  \
  } while (0)

namespace {

FILE *g_txt = nullptr;
std::string g_json = "{";
int g_failures = 0;

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fputs(buf, stdout);
  std::fflush(stdout);
  if (g_txt) std::fputs(buf, g_txt);
}

void json_field(const std::string &key, const std::string &value) {
  if (g_json.size() > 1) g_json += ",";
  g_json += "\"" + key + "\":" + value;
}

struct Params {
  std::vector<float> temperature, top_p, min_p;
  std::vector<int32_t> top_k, counters;
  std::vector<uint64_t> seeds;
  void resize(int s) {
    temperature.assign(s, 1.0f);
    top_p.assign(s, 1.0f);
    min_p.assign(s, 0.0f);
    top_k.assign(s, 0);
    counters.assign(s, 0);
    seeds.assign(s, 0);
  }
};

ud_tensor view(void *data, ud_dtype dtype, std::initializer_list<int64_t> shape) {
  ud_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<int32_t>(shape.size());
  int i = 0;
  for (int64_t n : shape) t.ne[i++] = n;
  for (; i < UD_MAX_DIMS; i++) t.ne[i] = 1;
  return t;
}

// Device buffers of one call (parameters and outputs; logits passed separately).
struct DeviceCall {
  int S = 0, K = 0;
  float *temperature = nullptr, *top_p = nullptr, *min_p = nullptr, *logprobs = nullptr, *top_logprobs = nullptr;
  int32_t *top_k = nullptr, *counters = nullptr, *ids = nullptr, *top_ids = nullptr;
  uint64_t *seeds = nullptr;

  DeviceCall(int s, int k) : S(s), K(k) {
    CK(cudaMalloc(&temperature, 4 * S));
    CK(cudaMalloc(&top_p, 4 * S));
    CK(cudaMalloc(&min_p, 4 * S));
    CK(cudaMalloc(&top_k, 4 * S));
    CK(cudaMalloc(&counters, 4 * S));
    CK(cudaMalloc(&seeds, 8 * S));
    CK(cudaMalloc(&ids, 4 * S));
    CK(cudaMalloc(&logprobs, 4 * S));
    if (K > 0) {
      CK(cudaMalloc(&top_ids, 4 * static_cast<size_t>(S) * K));
      CK(cudaMalloc(&top_logprobs, 4 * static_cast<size_t>(S) * K));
    }
  }
  ~DeviceCall() {
    for (void *p : {static_cast<void *>(temperature), static_cast<void *>(top_p), static_cast<void *>(min_p),
                    static_cast<void *>(top_k), static_cast<void *>(counters), static_cast<void *>(seeds),
                    static_cast<void *>(ids), static_cast<void *>(logprobs), static_cast<void *>(top_ids),
                    static_cast<void *>(top_logprobs)})
      if (p) cudaFree(p);
  }
  void upload(const Params &p, cudaStream_t stream) {
    CK(cudaMemcpyAsync(temperature, p.temperature.data(), 4 * S, cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(top_p, p.top_p.data(), 4 * S, cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(min_p, p.min_p.data(), 4 * S, cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(top_k, p.top_k.data(), 4 * S, cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(counters, p.counters.data(), 4 * S, cudaMemcpyHostToDevice, stream));
    CK(cudaMemcpyAsync(seeds, p.seeds.data(), 8 * S, cudaMemcpyHostToDevice, stream));
  }
  ud_op op(const float *logits, int V) const {
    ud_op o{};
    o.kind = UD_OP_SAMPLE;
    o.n_src = 7;
    o.n_dst = 4;
    o.params.sample.num_top_logprobs = K;
    o.src[0] = view(const_cast<float *>(logits), UD_F32, {S, V});
    o.src[1] = view(temperature, UD_F32, {S});
    o.src[2] = view(top_k, UD_I32, {S});
    o.src[3] = view(top_p, UD_F32, {S});
    o.src[4] = view(min_p, UD_F32, {S});
    o.src[5] = view(seeds, UD_U64, {S});
    o.src[6] = view(counters, UD_I32, {S});
    o.dst[0] = view(ids, UD_I32, {S});
    o.dst[1] = view(logprobs, UD_F32, {S});
    if (K > 0) {
      o.dst[2] = view(top_ids, UD_I32, {S, K});
      o.dst[3] = view(top_logprobs, UD_F32, {S, K});
    }
    return o;
  }
};

struct HostOut {
  std::vector<int32_t> ids, top_ids;
  std::vector<float> logprobs, top_logprobs;
};

HostOut download(const DeviceCall &c) {
  HostOut o;
  o.ids.resize(c.S);
  o.logprobs.resize(c.S);
  o.top_ids.resize(static_cast<size_t>(c.S) * c.K);
  o.top_logprobs.resize(static_cast<size_t>(c.S) * c.K);
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(o.ids.data(), c.ids, 4 * c.S, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(o.logprobs.data(), c.logprobs, 4 * c.S, cudaMemcpyDeviceToHost));
  if (c.K > 0) {
    CK(cudaMemcpy(o.top_ids.data(), c.top_ids, 4 * o.top_ids.size(), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(o.top_logprobs.data(), c.top_logprobs, 4 * o.top_logprobs.size(), cudaMemcpyDeviceToHost));
  }
  return o;
}

void launch(const DeviceCall &c, const float *logits, int V, updraft::cuda::KernelContext &ctx) {
  const ud_op op = c.op(logits, V);
  const ud_status st = updraft::cuda::launch_sample(op, ctx);
  if (st != UD_OK) {
    std::fprintf(stderr, "launch_sample failed (%d): %s\n", static_cast<int>(st), ctx.error.c_str());
    std::exit(2);
  }
}

HostOut cpu_reference(const std::vector<float> &logits, int V, const Params &p, int K, updraft::cpu::ThreadPool &pool) {
  const int S = static_cast<int>(p.temperature.size());
  HostOut o;
  o.ids.resize(S);
  o.logprobs.resize(S);
  o.top_ids.resize(static_cast<size_t>(S) * K);
  o.top_logprobs.resize(static_cast<size_t>(S) * K);
  ud_op op{};
  op.kind = UD_OP_SAMPLE;
  op.n_src = 7;
  op.n_dst = 4;
  op.params.sample.num_top_logprobs = K;
  op.src[0] = view(const_cast<float *>(logits.data()), UD_F32, {S, V});
  op.src[1] = view(const_cast<float *>(p.temperature.data()), UD_F32, {S});
  op.src[2] = view(const_cast<int32_t *>(p.top_k.data()), UD_I32, {S});
  op.src[3] = view(const_cast<float *>(p.top_p.data()), UD_F32, {S});
  op.src[4] = view(const_cast<float *>(p.min_p.data()), UD_F32, {S});
  op.src[5] = view(const_cast<uint64_t *>(p.seeds.data()), UD_U64, {S});
  op.src[6] = view(const_cast<int32_t *>(p.counters.data()), UD_I32, {S});
  op.dst[0] = view(o.ids.data(), UD_I32, {S});
  op.dst[1] = view(o.logprobs.data(), UD_F32, {S});
  if (K > 0) {
    op.dst[2] = view(o.top_ids.data(), UD_I32, {S, K});
    op.dst[3] = view(o.top_logprobs.data(), UD_F32, {S, K});
  }
  updraft::cpu::KernelContext ctx{pool, {}};
  if (updraft::cpu::launch_sample(op, ctx) != UD_OK) {
    std::fprintf(stderr, "cpu launch_sample failed: %s\n", ctx.error.c_str());
    std::exit(2);
  }
  return o;
}

bool close(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= 1e-5f + 1e-5f * std::abs(b);
}

std::vector<float> normals(std::mt19937_64 &rng, int n, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float &x : v) x = d(rng);
  return v;
}

// --- 1. self-test --------------------------------------------------------------------------------
void self_test(updraft::cuda::KernelContext &ctx, updraft::cpu::ThreadPool &pool, bool quick) {
  std::mt19937_64 rng(7);
  int rows_total = 0, compared = 0, token_mismatch = 0, top_mismatch = 0, logprob_bad = 0;
  bool deterministic = true, graph_ok = true;
  for (int V : {128256, 32003, 77}) {
    std::vector<std::vector<float>> rows;
    Params p;
    const auto add = [&](std::vector<float> logits, float T, int k, float tp, float mp) {
      rows.push_back(std::move(logits));
      p.temperature.push_back(T);
      p.top_k.push_back(k);
      p.top_p.push_back(tp);
      p.min_p.push_back(mp);
      p.seeds.push_back(rng());
      p.counters.push_back(static_cast<int32_t>(rng() & 0x7fffffff));
    };
    const int reps = quick ? 1 : 3;
    for (int r = 0; r < reps; r++) {
      for (float T : {0.0f, 0.6f, 1.0f, 1.5f}) {
        add(normals(rng, V, 3), T, 0, 1.0f, 0.0f);
        add(normals(rng, V, 3), T, 50, 1.0f, 0.0f);
        add(normals(rng, V, 2), T, 0, 0.9f, 0.0f);
        add(normals(rng, V, 1), T, 0, 1.0f, 0.05f);
        add(normals(rng, V, 3), T, 50, 0.9f, 0.05f);
        add(normals(rng, V, 2), T, 1000, 0.95f, 0.0f);
      }
      std::vector<float> q = normals(rng, V, 2);
      for (float &x : q) x = std::round(x * 2) / 2;  // ties at every threshold
      add(q, 1.0f, 10, 1.0f, 0.0f);
      add(q, 0.9f, 0, 0.6f, 0.0f);
      add(q, 1.1f, 100, 0.7f, 0.1f);
      std::vector<float> masked = normals(rng, V, 2);
      for (int i = 0; i < V; i++)
        if (i % 3 != 1) masked[i] = -INFINITY;
      for (int i = 0; i < V; i += 11) masked[i] = NAN;
      add(masked, 1.0f, 5, 0.9f, 0.0f);
      add(std::vector<float>(V, -INFINITY), 1.0f, 0, 1.0f, 0.0f);
    }
    // u = 0 and u = 1 - 2^-24 (seed 0 with these counters): the first and the last kept id.
    for (int32_t counter : {33897418, 14790804}) {
      std::vector<float> half = normals(rng, V, 2);
      for (int i = 0; i < V / 2; i++) half[i] = -INFINITY;
      add(half, 1.0f, 0, 1.0f, 0.0f);
      add(normals(rng, V, 2), 1.0f, 7, 1.0f, 0.0f);
      p.seeds[p.seeds.size() - 1] = p.seeds[p.seeds.size() - 2] = 0;
      p.counters[p.counters.size() - 1] = p.counters[p.counters.size() - 2] = counter;
    }
    const int S = static_cast<int>(rows.size());
    std::vector<float> logits(static_cast<size_t>(S) * V);
    for (int s = 0; s < S; s++) std::copy(rows[s].begin(), rows[s].end(), logits.begin() + static_cast<size_t>(s) * V);
    float *d_logits;
    CK(cudaMalloc(&d_logits, 4 * logits.size()));
    CK(cudaMemcpy(d_logits, logits.data(), 4 * logits.size(), cudaMemcpyHostToDevice));
    for (int K : {0, 5, 20}) {
      if (K > V) continue;
      DeviceCall call(S, K);
      call.upload(p, ctx.stream);
      launch(call, d_logits, V, ctx);
      const HostOut gpu = download(call);
      const HostOut cpu = cpu_reference(logits, V, p, K, pool);
      for (int s = 0; s < S; s++) {
        rows_total++;
        if (!updraft::dev::ambiguous(rows[s].data(), V, p.temperature[s], p.top_k[s], p.top_p[s], p.min_p[s], p.seeds[s],
                                     p.counters[s])) {
          compared++;
          if (gpu.ids[s] != cpu.ids[s]) {
            token_mismatch++;
            if (token_mismatch <= 10)
              say("  MISMATCH V=%d row %d (T=%g k=%d p=%g min_p=%g): gpu %d, cpu %d\n", V, s, p.temperature[s],
                  p.top_k[s], p.top_p[s], p.min_p[s], gpu.ids[s], cpu.ids[s]);
          }
        }
        if (gpu.ids[s] == cpu.ids[s] && !close(gpu.logprobs[s], cpu.logprobs[s])) logprob_bad++;
        for (int j = 0; j < K; j++) {
          const size_t at = static_cast<size_t>(s) * K + j;
          if (gpu.top_ids[at] != cpu.top_ids[at]) top_mismatch++;
          if (!close(gpu.top_logprobs[at], cpu.top_logprobs[at])) logprob_bad++;
        }
      }
      // Determinism: the same call again gives the same bits.
      launch(call, d_logits, V, ctx);
      const HostOut again = download(call);
      if (again.ids != gpu.ids || std::memcmp(again.logprobs.data(), gpu.logprobs.data(), 4 * S) != 0 ||
          again.top_ids != gpu.top_ids)
        deterministic = false;
      // Graph: capture once, then replay with other counters uploaded in between.
      if (K == 5) {
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeGlobal));
        launch(call, d_logits, V, ctx);
        CK(cudaStreamEndCapture(ctx.stream, &graph));
        CK(cudaGraphInstantiate(&exec, graph, 0));
        Params q2 = p;
        for (int32_t &c : q2.counters) c ^= 0x5a5a5;
        call.upload(q2, ctx.stream);
        CK(cudaGraphLaunch(exec, ctx.stream));
        const HostOut replay = download(call);
        DeviceCall eager(S, K);
        eager.upload(q2, ctx.stream);
        launch(eager, d_logits, V, ctx);
        const HostOut direct = download(eager);
        if (replay.ids != direct.ids || replay.top_ids != direct.top_ids) graph_ok = false;
        CK(cudaGraphExecDestroy(exec));
        CK(cudaGraphDestroy(graph));
      }
    }
    CK(cudaFree(d_logits));
  }
  say("self-test: %d rows, %d tokens compared with the CPU reference (the rest within rounding of a boundary): "
      "%d mismatches; top ids %d mismatches; logprobs outside 1e-5: %d; deterministic: %s; graph replay: %s\n",
      rows_total, compared, token_mismatch, top_mismatch, logprob_bad, deterministic ? "yes" : "NO",
      graph_ok ? "matches eager" : "DIFFERS");
  const bool ok = token_mismatch == 0 && top_mismatch == 0 && logprob_bad == 0 && deterministic && graph_ok;
  if (!ok) g_failures++;
  json_field("self_test", "{\"rows\":" + std::to_string(rows_total) + ",\"compared\":" + std::to_string(compared) +
                              ",\"token_mismatches\":" + std::to_string(token_mismatch) +
                              ",\"top_id_mismatches\":" + std::to_string(top_mismatch) +
                              ",\"logprob_errors\":" + std::to_string(logprob_bad) +
                              ",\"deterministic\":" + (deterministic ? "true" : "false") +
                              ",\"graph_ok\":" + (graph_ok ? "true" : "false") + "}");
}

// --- 2. timing -----------------------------------------------------------------------------------
__global__ void fill_logits(float *out, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u1 = (static_cast<float>(z >> 40) + 0.5f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((z >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    out[i] = 3.0f * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2) - 2.0f;  // N(-2, 3²), like LM logits
  }
}

struct Mode {
  const char *name;
  float temperature;
  int top_k;
  float top_p, min_p;
  int K;
};

void timing(updraft::cuda::KernelContext &ctx, bool quick) {
  constexpr int V = 128256;
  const Mode modes[] = {
      {"greedy", 0.0f, 0, 1.0f, 0.0f, 0},       {"temperature 0.8", 0.8f, 0, 1.0f, 0.0f, 0},
      {"top-k 50", 0.8f, 50, 1.0f, 0.0f, 0},     {"top-p 0.9", 0.8f, 0, 0.9f, 0.0f, 0},
      {"k50 p0.9 min-p0.05", 0.8f, 50, 0.9f, 0.05f, 0}, {"greedy + 20 logprobs", 0.0f, 0, 1.0f, 0.0f, 20},
  };
  const int sizes[] = {1, 64, 256};
  // >= 256 MiB of logits, as whole batches of the largest S, so every call reads rows L2 does not hold.
  const size_t batch_elems = static_cast<size_t>(256) * V;
  const int copies = static_cast<int>((size_t(256) << 20) / (batch_elems * 4)) + 1;
  float *d_logits;
  CK(cudaMalloc(&d_logits, 4 * batch_elems * copies));
  fill_logits<<<1024, 256>>>(d_logits, batch_elems * copies, 42);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  CK(cudaEventCreate(&start));
  CK(cudaEventCreate(&stop));

  say("\ntiming: V = %d f32 logits, N(-2, 3^2); µs per call (GB/s of logits, each row counted once)\n", V);
  say("%-22s", "mode");
  for (int S : sizes) say("  %8s S=%-4d", "", S);
  say("\n");
  std::string json = "[";
  for (const Mode &m : modes) {
    say("%-22s", m.name);
    for (int S : sizes) {
      DeviceCall call(S, m.K);
      Params p;
      p.resize(S);
      for (int s = 0; s < S; s++) {
        p.temperature[s] = m.temperature;
        p.top_k[s] = m.top_k;
        p.top_p[s] = m.top_p;
        p.min_p[s] = m.min_p;
        p.seeds[s] = 1000 + s;
        p.counters[s] = s;
      }
      call.upload(p, ctx.stream);
      const int slices = static_cast<int>((batch_elems * copies) / (static_cast<size_t>(S) * V));
      int next = 0;
      const auto one = [&] {
        launch(call, d_logits + static_cast<size_t>(next) * S * V, V, ctx);
        next = (next + 1) % slices;
      };
      for (int i = 0; i < 5; i++) one();
      CK(cudaStreamSynchronize(ctx.stream));
      // Calibrate N: a loop of >= ~20 ms (5 ms in --quick).
      int n = 4;
      float ms = 0;
      const float want = quick ? 5.0f : 20.0f;
      for (;;) {
        CK(cudaEventRecord(start, ctx.stream));
        for (int i = 0; i < n; i++) one();
        CK(cudaEventRecord(stop, ctx.stream));
        CK(cudaEventSynchronize(stop));
        CK(cudaEventElapsedTime(&ms, start, stop));
        if (ms >= want || n >= (1 << 16)) break;
        n = std::max(n * 2, static_cast<int>(n * want / std::max(ms, 0.01f)));
      }
      const double us = 1000.0 * ms / n;
      const double gbs = static_cast<double>(S) * V * 4 / (us * 1e-6) / 1e9;
      say("  %9.1f (%5.0f)", us, gbs);
      if (json.size() > 1) json += ",";
      json += "{\"mode\":\"" + std::string(m.name) + "\",\"S\":" + std::to_string(S) + ",\"us\":" + std::to_string(us) +
              ",\"gbs\":" + std::to_string(gbs) + "}";
    }
    say("\n");
  }
  json += "]";
  json_field("timing", json);
  CK(cudaFree(d_logits));
}

}  // namespace

int main(int argc, char **argv) {
  bool quick = false;
  std::string json_path, txt_path;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--txt" && i + 1 < argc) txt_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_sample [--quick] [--json FILE] [--txt FILE]\n");
      return 2;
    }
  }
  if (!txt_path.empty()) g_txt = std::fopen(txt_path.c_str(), "w");
  int device = 0;
  CK(cudaSetDevice(device));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, device));
  say("device: %s (sm_%d%d, %d SMs, %.0f MiB L2)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
      prop.l2CacheSize / 1048576.0);
  updraft::cuda::KernelContext ctx;
  CK(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  ctx.device = device;
  ctx.sm_count = prop.multiProcessorCount;
  updraft::cpu::ThreadPool pool(0);

  const auto t0 = std::chrono::steady_clock::now();
  self_test(ctx, pool, quick);
  say("(self-test took %.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  timing(ctx, quick);

  g_json += ",\"failures\":" + std::to_string(g_failures) + "}";
  if (!json_path.empty()) {
    FILE *f = std::fopen(json_path.c_str(), "w");
    if (f) {
      std::fputs(g_json.c_str(), f);
      std::fclose(f);
    }
  }
  say("%s\n", g_failures ? "FAILED" : "OK");
  if (g_txt) std::fclose(g_txt);
  return g_failures ? 1 : 0;
}
