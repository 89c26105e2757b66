// bench_matmul.cu — standalone check and benchmark of the CUDA matmul ladder (kernels/cuda/matmul*.cu*).
//
// Build (on the GPU machine; bench/gpu/build_and_run_gemm.sh does this):
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DUD_BENCH_WITH_CUBLAS
//        -o bench_matmul kernels/dev/matmul/bench_matmul.cu -lcublas
// Without -DUD_BENCH_WITH_CUBLAS (and -lcublas) it builds anywhere nvcc is, and runs without the
// cuBLAS columns and the cuBLAS cross-check.
//
// The kernels are the production ones: this file includes kernels/cuda/matmul.cu and calls
// launch_matmul with an explicit variant, exactly as the backend does.
//
// Runs, in order:
//  1. capture: each variant launched inside CUDA stream capture (global mode) before anything else ran
//     (so its first-call set-up happens during capture), the graph replayed, checked against a CPU
//     float64 reference.
//  2. correctness: awkward shapes (tails in M, N, K; K < 64; one row) × every dtype combination of
//     x, W, y (+ bias) × every variant that takes them, against a CPU float64 reference with the
//     conformance suite's tolerances; outputs poisoned with NaN first. Also both tile shapes of v3 and v4.
//  3. determinism: split-K paths (v2, v3 across blocks; v5 across the warps of a block) run twice,
//     compared bit for bit.
//  4. performance: Llama-3.1-8B projections × M in {1, 2, 4, 8, 16, 64, 512, 2048, 4096}; every variant
//     that takes the shape and cuBLAS (cublasGemmEx, bf16 in, f32 compute), CUDA events around each
//     launch, L2 flushed (256 MiB memset) before each, 3 warm-ups, median of --reps (default 25); each
//     variant checked against cuBLAS's f32 output (max |y - ref| / max |ref|). Ceilings measured in the
//     same run: device-to-device copy of 1 GiB (read + written bytes / time).
// Prints a table (stdout) and writes every number as JSON (--json PATH).
#include "../../cuda/matmul.cu"

#ifdef UD_BENCH_WITH_CUBLAS
#include <cublas_v2.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using updraft::cuda::KernelContext;
using updraft::cuda::launch_matmul;
namespace md = updraft::cuda::matmul_detail;

#define CK(call)                                                                                  \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

#ifdef UD_BENCH_WITH_CUBLAS
#define CKB(call)                                                                          \
  do {                                                                                     \
    cublasStatus_t s_ = (call);                                                            \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                     \
      std::fprintf(stderr, "%s:%d: %s: cublas status %d\n", __FILE__, __LINE__, #call, int(s_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)
#endif

namespace {

// ---------------------------------------------------------------------------------------------------
// Host helpers

const char *dt_name(int d) { return d == UD_F32 ? "f32" : d == UD_F16 ? "f16" : "bf16"; }
size_t dt_size(int d) { return d == UD_F32 ? 4 : 2; }

// Rounds v to dtype d and returns the rounded value as float.
float round_to(int d, float v) {
  if (d == UD_BF16) return __bfloat162float(__float2bfloat16_rn(v));
  if (d == UD_F16) return __half2float(__float2half_rn(v));
  return v;
}

std::vector<unsigned char> encode(int d, const std::vector<float> &v) {
  std::vector<unsigned char> out(v.size() * dt_size(d));
  for (size_t i = 0; i < v.size(); i++) {
    if (d == UD_F32) {
      std::memcpy(&out[i * 4], &v[i], 4);
    } else if (d == UD_BF16) {
      __nv_bfloat16 b = __float2bfloat16_rn(v[i]);
      std::memcpy(&out[i * 2], &b, 2);
    } else {
      __half h = __float2half_rn(v[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

std::vector<float> decode(int d, const std::vector<unsigned char> &bytes, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; i++) {
    if (d == UD_F32) {
      std::memcpy(&out[i], &bytes[i * 4], 4);
    } else if (d == UD_BF16) {
      __nv_bfloat16 b;
      std::memcpy(&b, &bytes[i * 2], 2);
      out[i] = __bfloat162float(b);
    } else {
      __half h;
      std::memcpy(&h, &bytes[i * 2], 2);
      out[i] = __half2float(h);
    }
  }
  return out;
}

ud_tensor tensor(void *data, int dtype, int64_t rows, int64_t cols) {
  ud_tensor t;
  std::memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.ndim = cols < 0 ? 1 : 2;
  t.ne[0] = rows;
  t.ne[1] = cols < 0 ? 1 : cols;
  t.ne[2] = t.ne[3] = 1;
  return t;
}

ud_op matmul_op(int variant, void *x, int xd, void *w, int wd, void *b, int bd, void *y, int yd, int64_t m,
                int64_t n, int64_t k) {
  ud_op op;
  std::memset(&op, 0, sizeof op);
  op.kind = UD_OP_MATMUL;
  op.n_src = 3;
  op.n_dst = 1;
  op.params.matmul.variant = variant;
  op.src[0] = tensor(x, xd, m, k);
  op.src[1] = tensor(w, wd, n, k);
  op.src[2] = b ? tensor(b, bd, n, -1) : tensor(nullptr, UD_F32, 0, -1);
  op.dst[0] = tensor(y, yd, m, n);
  return op;
}

// Variants to check and time (--variants; 0 = auto, checked only, not timed).
constexpr int kMaxVariant = 15;
bool g_enabled[kMaxVariant + 1] = {true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true};

struct Bench {
  cudaStream_t stream = nullptr;
  KernelContext ctx;
  cudaDeviceProp prop{};
#ifdef UD_BENCH_WITH_CUBLAS
  cublasHandle_t cublas = nullptr;
#endif
};

// ---------------------------------------------------------------------------------------------------
// Small-shape checks against a CPU float64 reference

struct Case {
  int64_t m, k, n;
  int xd, wd, yd;
  bool bias;
};

struct HostCase {
  Case c;
  std::vector<float> x, w, b;  // values already rounded to their dtypes
  std::vector<double> ref;     // [m, n]
};

HostCase make_host_case(const Case &c, std::mt19937 &rng) {
  HostCase h;
  h.c = c;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<float> &v, size_t n, int d) {
    v.resize(n);
    for (auto &e : v) {
      float r;
      do r = round_to(d, normal(rng));
      while (r == 0.0f);
      e = r;
    }
  };
  fill(h.x, size_t(c.m * c.k), c.xd);
  fill(h.w, size_t(c.n * c.k), c.wd);
  if (c.bias) fill(h.b, size_t(c.n), c.wd);
  h.ref.assign(size_t(c.m * c.n), 0.0);
  for (int64_t i = 0; i < c.m; i++)
    for (int64_t j = 0; j < c.n; j++) {
      double s = 0.0;
      const float *xr = &h.x[i * c.k], *wr = &h.w[j * c.k];
      for (int64_t kk = 0; kk < c.k; kk++) s += double(xr[kk]) * double(wr[kk]);
      if (c.bias) s += h.b[j];
      h.ref[i * c.n + j] = s;
    }
  return h;
}

// Conformance tolerances (test/device/harness.ts): the loosest dtype decides; f32's atol grows with √K.
void tolerance(const Case &c, double &rtol, double &atol) {
  auto rank = [](int d) { return d == UD_F32 ? 0 : d == UD_F16 ? 1 : 2; };
  const int loosest = std::max({rank(c.xd), rank(c.wd), rank(c.yd)});
  if (loosest == 0) {
    rtol = 1e-5;
    atol = 1e-5 * std::sqrt(double(std::max<int64_t>(1, c.k)));
  } else if (loosest == 1) {
    rtol = atol = 2e-3;
  } else {
    rtol = atol = 1.6e-2;
  }
}

struct DeviceCase {
  void *x = nullptr, *w = nullptr, *b = nullptr, *y = nullptr;
  ~DeviceCase() {
    cudaFree(x);
    cudaFree(w);
    cudaFree(b);
    cudaFree(y);
  }
};

void upload_case(const HostCase &h, DeviceCase &d) {
  const Case &c = h.c;
  auto up = [](void **dst, const std::vector<unsigned char> &bytes) {
    CK(cudaMalloc(dst, std::max<size_t>(bytes.size(), 16)));
    if (!bytes.empty()) CK(cudaMemcpy(*dst, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  };
  up(&d.x, encode(c.xd, h.x));
  up(&d.w, encode(c.wd, h.w));
  if (c.bias) up(&d.b, encode(c.wd, h.b));
  CK(cudaMalloc(&d.y, std::max<size_t>(size_t(c.m * c.n) * dt_size(c.yd), 16)));
}

// Checks y (on the device) against the reference; returns "" when it passes, else a description.
std::string compare(const HostCase &h, const DeviceCase &d) {
  const Case &c = h.c;
  const size_t count = size_t(c.m * c.n);
  std::vector<unsigned char> bytes(count * dt_size(c.yd));
  CK(cudaMemcpy(bytes.data(), d.y, bytes.size(), cudaMemcpyDeviceToHost));
  const std::vector<float> y = decode(c.yd, bytes, count);
  double rtol, atol;
  tolerance(c, rtol, atol);
  double worst = 0.0;
  size_t worst_i = 0;
  bool bad = false;
  for (size_t i = 0; i < count; i++) {
    const double err = std::fabs(double(y[i]) - h.ref[i]);
    const double excess = std::isnan(y[i]) ? 1e30 : err - (atol + rtol * std::fabs(h.ref[i]));
    if (excess > 0 && (!bad || excess > worst)) {
      bad = true;
      worst = excess;
      worst_i = i;
    }
  }
  if (!bad) return "";
  char buf[256];
  std::snprintf(buf, sizeof buf, "y[%lld, %lld] = %.6g, expected %.6g (atol %.2g, rtol %.2g)",
                (long long)(worst_i / c.n), (long long)(worst_i % c.n), double(y[worst_i]), h.ref[worst_i], atol,
                rtol);
  return buf;
}

// Runs one variant on a case: "" pass, "skip: ..." unsupported, else the failure.
std::string run_case(Bench &bench, const HostCase &h, DeviceCase &d, int variant) {
  const Case &c = h.c;
  if (variant >= 0 && variant <= kMaxVariant && !g_enabled[variant]) return "skip: not selected";
  // NaN in every float dtype; on the kernels' stream: a cudaMemset (legacy default stream) is not
  // ordered with a non-blocking stream and could land while the kernel writes y.
  CK(cudaMemsetAsync(d.y, 0xFF, size_t(c.m * c.n) * dt_size(c.yd), bench.stream));
  ud_op op = matmul_op(variant, d.x, c.xd, d.w, c.wd, d.b, c.wd, d.y, c.yd, c.m, c.n, c.k);
  const ud_status s = launch_matmul(op, bench.ctx);
  if (s == UD_ERR_UNSUPPORTED) return "skip: " + bench.ctx.error;
  if (s != UD_OK) return "launch failed (" + std::to_string(int(s)) + "): " + bench.ctx.error;
  const cudaError_t e = cudaStreamSynchronize(bench.stream);
  if (e != cudaSuccess) {
    std::fprintf(stderr, "FATAL: variant %d on M=%lld K=%lld N=%lld: %s\n", variant, (long long)c.m,
                 (long long)c.k, (long long)c.n, cudaGetErrorString(e));
    std::exit(2);  // a device fault poisons the context: nothing after it can be trusted
  }
  return compare(h, d);
}

std::string case_label(const Case &c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "M=%lld K=%lld N=%lld x %s W %s -> y %s%s", (long long)c.m, (long long)c.k,
                (long long)c.n, dt_name(c.xd), dt_name(c.wd), dt_name(c.yd), c.bias ? " +bias" : "");
  return buf;
}

struct CheckTally {
  int pass = 0, fail = 0, skip = 0;
  std::vector<std::string> failures;
};

void record(CheckTally &t, const std::string &label, const std::string &result) {
  if (result.empty()) {
    t.pass++;
  } else if (result.rfind("skip", 0) == 0) {
    t.skip++;
  } else {
    t.fail++;
    t.failures.push_back(label + ": " + result);
  }
}

// 1. Each variant's first launch inside stream capture, then the graph replayed.
void check_capture(Bench &bench, CheckTally &tally, std::mt19937 &rng) {
  struct Item {
    int variant;
    Case c;
  };
  const Item items[] = {
      {1, {7, 33, 29, UD_BF16, UD_BF16, UD_BF16, true}},
      {2, {5, 4096, 520, UD_BF16, UD_BF16, UD_BF16, true}},     // split-K across blocks + reduction
      {3, {40, 1032, 300, UD_BF16, UD_BF16, UD_F32, true}},     // small tiles, split-K
      {4, {300, 264, 700, UD_BF16, UD_BF16, UD_BF16, true}},
      {5, {5, 4096, 520, UD_BF16, UD_BF16, UD_BF16, true}},     // split tiles reduced in shared memory
      {5, {9, 200, 20011, UD_BF16, UD_BF16, UD_F32, true}},     // NB=2, warps crossing tile boundaries
      {6, {1200, 264, 3500, UD_BF16, UD_BF16, UD_BF16, true}},  // persistent: 280 tiles, > 1 per CTA
      {7, {300, 264, 700, UD_BF16, UD_BF16, UD_BF16, true}},    // 2-CTA clusters, odd number of M tiles
      {8, {1200, 264, 3500, UD_BF16, UD_BF16, UD_BF16, true}},  // clusters on a persistent grid
      {9, {300, 264, 700, UD_BF16, UD_BF16, UD_BF16, false}},   // cuBLAS (no bias) inside a graph
      {9, {1200, 264, 3500, UD_BF16, UD_BF16, UD_F32, false}},
  };
  for (const Item &it : items) {
    if (!g_enabled[it.variant]) continue;
    HostCase h = make_host_case(it.c, rng);
    DeviceCase d;
    upload_case(h, d);
    CK(cudaMemset(d.y, 0xFF, size_t(it.c.m * it.c.n) * dt_size(it.c.yd)));
    CK(cudaDeviceSynchronize());
    ud_op op = matmul_op(it.variant, d.x, it.c.xd, d.w, it.c.wd, d.b, it.c.wd, d.y, it.c.yd, it.c.m, it.c.n, it.c.k);
    const std::string label = "capture v" + std::to_string(it.variant) + " " + case_label(it.c);
    CK(cudaStreamBeginCapture(bench.stream, cudaStreamCaptureModeGlobal));
    const ud_status s = launch_matmul(op, bench.ctx);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(bench.stream, &graph);
    if (s != UD_OK || end != cudaSuccess) {
      record(tally, label,
             "capture failed: status " + std::to_string(int(s)) + " " + bench.ctx.error + " / " + cudaGetErrorString(end));
      (void)cudaGetLastError();
      if (graph) cudaGraphDestroy(graph);
      continue;
    }
    cudaGraphExec_t exec = nullptr;
    CK(cudaGraphInstantiate(&exec, graph, 0));
    CK(cudaGraphLaunch(exec, bench.stream));
    CK(cudaStreamSynchronize(bench.stream));
    record(tally, label, compare(h, d));
    // Replay once more: same result (the graph's parameters, tensor maps included, stay valid).
    CK(cudaMemset(d.y, 0xFF, size_t(it.c.m * it.c.n) * dt_size(it.c.yd)));
    CK(cudaGraphLaunch(exec, bench.stream));
    CK(cudaStreamSynchronize(bench.stream));
    record(tally, label + " (replay)", compare(h, d));
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
}

// 2. Awkward shapes × dtypes × variants.
void check_shapes(Bench &bench, CheckTally &tally, std::mt19937 &rng) {
  const int dts[3] = {UD_F32, UD_F16, UD_BF16};
  // Conformance-suite shapes (every dtype combination).
  const int64_t small_shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {7, 33, 29}, {1, 515, 131}, {69, 67, 45}, {130, 40, 70},
                                     {3, 37, 29}, {2, 8, 3}, {17, 72, 33}};
  // Shapes aimed at the fast paths' branches (tensor-core dtypes only).
  const int64_t tc_shapes[][3] = {
      {1, 4096, 520},    // v2 NB=1, split-K across blocks
      {5, 4096, 520},    // idem
      {13, 512, 2200},   // v2 NB=2, no split
      {16, 1000, 77},    // v2 NB=2, split, N tail
      {9, 8, 1031},      // K = 8
      {40, 1032, 300},   // v3 small tiles + split-K
      {300, 264, 700},   // K tail (264 = 4·64 + 8)
      {257, 520, 1030},  // M, N tails on both tile shapes
      {129, 4104, 260},  // long K with a tail
      {1, 64, 2},        // one row on the GEMM paths
      // v5 (persistent decode stream): the work split of a block into its warps' contiguous ranges.
      {3, 40, 29},       // 2 tiles, 2 chunks (K tail: 40 = 32 + 8): most warps idle, N tail
      {4, 64, 40000},    // ~19 tiles a block, 2.4 chunks a warp: many split tiles, ranges crossing tiles
      {9, 200, 20011},   // NB=2, K tail (200 = 6·32 + 8), N % 16 = 11
      {2, 1336, 2100},   // 132 tiles: one per block, split over 16 warps; N % 16 = 4
      {16, 264, 333},    // fewer tiles than SMs, M = 16
      {7, 96, 4097},     // one row in the last tile
      {1, 4104, 300},    // long K with a tail, few tiles
  };
  for (auto &s : small_shapes)
    for (int xd : dts)
      for (int wd : dts)
        for (int yd : {xd, int(UD_F32)}) {
          for (bool bias : {false, true}) {
            const Case c{s[0], s[1], s[2], xd, wd, yd, bias};
            HostCase h = make_host_case(c, rng);
            DeviceCase d;
            upload_case(h, d);
            for (int v = 0; v <= updraft::cuda::matmul_num_variants(); v++)
              record(tally, "v" + std::to_string(v) + " " + case_label(c), run_case(bench, h, d, v));
          }
          if (xd == UD_F32) break;  // y ∈ {x dtype, f32} is one dtype for x f32
        }
  for (auto &s : tc_shapes)
    for (int td : {int(UD_BF16), int(UD_F16)})
      for (int yd : {td, int(UD_F32)})
        for (bool bias : {false, true}) {
          const Case c{s[0], s[1], s[2], td, td, yd, bias};
          HostCase h = make_host_case(c, rng);
          DeviceCase d;
          upload_case(h, d);
          for (int v = 0; v <= updraft::cuda::matmul_num_variants(); v++)
            record(tally, "v" + std::to_string(v) + " " + case_label(c), run_case(bench, h, d, v));
          // Both tile shapes of v3 and v4, whichever the heuristic picks.
          for (int tile : {1, 2}) {
            md::g_v3_force_tile = tile;
            record(tally, std::string("v3/") + (tile == 1 ? "big " : "small ") + case_label(c), run_case(bench, h, d, 3));
          }
          md::g_v3_force_tile = 0;
          for (int bn : {128, 256}) {
            md::g_v4_force_bn = bn;
            record(tally, "v4/bn" + std::to_string(bn) + " " + case_label(c), run_case(bench, h, d, 4));
            record(tally, "v7/bn" + std::to_string(bn) + " " + case_label(c), run_case(bench, h, d, 7));
            // The persistent grids cut to 1-4 CTAs: each walks many tiles, and the stage ring's phases
            // run on across tile boundaries (at K = 8 a tile is one k-step; at 4104, 65); variant 8
            // in one or two clusters of two.
            for (int ctas : {1, 2, 3}) {
              md::g_v6_max_ctas = ctas;
              record(tally, "v6/bn" + std::to_string(bn) + "/ctas" + std::to_string(ctas) + " " + case_label(c),
                     run_case(bench, h, d, 6));
            }
            for (int ctas : {2, 4}) {
              md::g_v6_max_ctas = ctas;
              record(tally, "v8/bn" + std::to_string(bn) + "/ctas" + std::to_string(ctas) + " " + case_label(c),
                     run_case(bench, h, d, 8));
            }
            md::g_v6_max_ctas = 0;
          }
          md::g_v4_force_bn = 0;
        }
}

// 3. Split-K paths twice, bit for bit.
void check_determinism(Bench &bench, CheckTally &tally, std::mt19937 &rng) {
  const Case cases[] = {{5, 4096, 520, UD_BF16, UD_BF16, UD_F32, true},
                        {40, 1032, 300, UD_BF16, UD_BF16, UD_F32, true},
                        {5, 4096, 520, UD_BF16, UD_BF16, UD_F32, true},
                        {16, 1336, 6160, UD_BF16, UD_BF16, UD_F32, true}};
  const int variants[] = {2, 3, 5, 5};
  for (int i = 0; i < 4; i++) {
    const Case &c = cases[i];
    if (!g_enabled[variants[i]]) continue;
    HostCase h = make_host_case(c, rng);
    DeviceCase d;
    upload_case(h, d);
    std::vector<unsigned char> first(size_t(c.m * c.n) * 4), second(first.size());
    for (int rep = 0; rep < 2; rep++) {
      run_case(bench, h, d, variants[i]);
      CK(cudaMemcpy(rep == 0 ? first.data() : second.data(), d.y, first.size(), cudaMemcpyDeviceToHost));
    }
    record(tally, "determinism v" + std::to_string(variants[i]) + " " + case_label(c),
           first == second ? "" : "two runs differ");
  }
}

// ---------------------------------------------------------------------------------------------------
// Performance

__device__ uint64_t mix64(uint64_t z) {  // splitmix64 finalizer (as ud_mix64)
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void fill_uniform_kernel(__nv_bfloat16 *p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed ^ mix64(i));
    const float u = float(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    const float v = 2.0f * u - 1.0f;
    p[i] = __float2bfloat16_rn(v == 0.0f ? 0.5f : v);
  }
}

// max |y - ref| and max |ref| (as ordered float bits: both are >= 0), and a NaN count.
__global__ void error_kernel(const void *y, int y_dtype, const float *ref, size_t n, unsigned *max_diff,
                             unsigned *max_ref, unsigned *nans) {
  float md_ = 0.0f, mr = 0.0f;
  unsigned nan_count = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = y_dtype == UD_F32 ? static_cast<const float *>(y)[i]
                                      : __bfloat162float(static_cast<const __nv_bfloat16 *>(y)[i]);
    if (isnan(v)) {
      nan_count++;
      continue;
    }
    md_ = fmaxf(md_, fabsf(v - ref[i]));
    mr = fmaxf(mr, fabsf(ref[i]));
  }
  atomicMax(max_diff, __float_as_uint(md_));
  atomicMax(max_ref, __float_as_uint(mr));
  if (nan_count) atomicAdd(nans, nan_count);
}

struct Timer {
  std::vector<cudaEvent_t> start, stop;
  explicit Timer(int reps) : start(reps), stop(reps) {
    for (int i = 0; i < reps; i++) {
      CK(cudaEventCreate(&start[i]));
      CK(cudaEventCreate(&stop[i]));
    }
  }
  ~Timer() {
    for (size_t i = 0; i < start.size(); i++) {
      cudaEventDestroy(start[i]);
      cudaEventDestroy(stop[i]);
    }
  }
};

// Median milliseconds of `reps` runs of f, each after an L2 flush; < 0 when f fails.
double time_median(Bench &bench, void *flush, size_t flush_bytes, int reps, const std::function<bool()> &f) {
  for (int i = 0; i < 3; i++)
    if (!f()) return -1.0;
  CK(cudaStreamSynchronize(bench.stream));
  Timer t(reps);
  for (int i = 0; i < reps; i++) {
    CK(cudaMemsetAsync(flush, i & 0xFF, flush_bytes, bench.stream));
    CK(cudaEventRecord(t.start[i], bench.stream));
    if (!f()) return -1.0;
    CK(cudaEventRecord(t.stop[i], bench.stream));
  }
  CK(cudaStreamSynchronize(bench.stream));
  std::vector<double> ms(reps);
  for (int i = 0; i < reps; i++) {
    float v = 0.0f;
    CK(cudaEventElapsedTime(&v, t.start[i], t.stop[i]));
    ms[i] = v;
  }
  std::sort(ms.begin(), ms.end());
  return reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
}

double measure_copy_bandwidth(Bench &bench) {
  const size_t bytes = size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  CK(cudaMemset(b, 2, bytes));
  Timer t(11);
  for (int i = 0; i < 3; i++) CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, bench.stream));
  for (int i = 0; i < 11; i++) {
    CK(cudaEventRecord(t.start[i], bench.stream));
    CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, bench.stream));
    CK(cudaEventRecord(t.stop[i], bench.stream));
  }
  CK(cudaStreamSynchronize(bench.stream));
  std::vector<double> ms(11);
  for (int i = 0; i < 11; i++) {
    float v;
    CK(cudaEventElapsedTime(&v, t.start[i], t.stop[i]));
    ms[i] = v;
  }
  std::sort(ms.begin(), ms.end());
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * double(bytes) / (ms[5] * 1e-3) / 1e9;  // GB/s, read + written
}

struct Shape {
  const char *name;
  int64_t k, n;
  int yd;
};

struct Row {
  std::string shape, label;
  int64_t m, n, k;
  double ms, tflops, gbps, vs_cublas, vs_copy, err;
  int nans;
  std::string note;
};

std::string json_escape(const std::string &s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

}  // namespace

namespace {

// Writes everything gathered so far (called after the checks and after each shape, so that a run
// stopped by a time limit still leaves its numbers).
void write_json(const std::string &json_path, const Bench &bench, double copy_gbps, int reps, const CheckTally &tally,
                const std::vector<Row> &rows) {
  if (json_path.empty()) return;
  FILE *f = std::fopen(json_path.c_str(), "w");
  if (!f) {
    std::perror(json_path.c_str());
    return;
  }
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"sm_count\": %d,\n  \"copy_gbps\": %.1f,\n  \"reps\": %d,\n",
               json_escape(bench.prop.name).c_str(), bench.prop.multiProcessorCount, copy_gbps, reps);
  std::fprintf(f, "  \"checks\": {\"passed\": %d, \"failed\": %d, \"skipped\": %d, \"failures\": [", tally.pass,
               tally.fail, tally.skip);
  for (size_t i = 0; i < tally.failures.size(); i++)
    std::fprintf(f, "%s\"%s\"", i ? ", " : "", json_escape(tally.failures[i]).c_str());
  std::fprintf(f, "]},\n  \"rows\": [\n");
  for (size_t i = 0; i < rows.size(); i++) {
    const Row &r = rows[i];
    std::fprintf(f,
                 "    {\"shape\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"kernel\": \"%s\", \"ms\": %.6f, "
                 "\"tflops\": %.2f, \"weight_gbps\": %.1f, \"vs_cublas\": %.4f, \"vs_copy\": %.4f, "
                 "\"max_rel_err\": %.3g, \"nans\": %d, \"note\": \"%s\"}%s\n",
                 r.shape.c_str(), (long long)r.m, (long long)r.n, (long long)r.k, r.label.c_str(), r.ms, r.tflops,
                 r.gbps, r.vs_cublas, r.vs_copy, r.err, r.nans, json_escape(r.note).c_str(),
                 i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

}  // namespace

int main(int argc, char **argv) {
  std::string json_path;
  int reps = 25;
  bool skip_checks = false, skip_perf = false;
  std::vector<int64_t> ms_list = {1, 2, 4, 8, 16, 64, 512, 2048, 4096};
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::max(5, std::atoi(argv[++i]));
    else if (a == "--no-checks") skip_checks = true;
    else if (a == "--no-perf") skip_perf = true;
    else if (a == "--variants" && i + 1 < argc) {
      for (int v = 0; v <= kMaxVariant; v++) g_enabled[v] = false;
      for (char *tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ",")) {
        const int v = std::atoi(tok);
        if (v >= 0 && v <= kMaxVariant) g_enabled[v] = true;
      }
    }
    else if (a == "--m" && i + 1 < argc) {
      ms_list.clear();
      for (char *tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ",")) ms_list.push_back(std::atoll(tok));
    } else {
      std::fprintf(stderr, "usage: %s [--json PATH] [--reps N] [--m 1,2,...] [--variants 0,1,2,3,4,5,6,7,8,9] [--no-checks] [--no-perf]\n",
                   argv[0]);
      return 1;
    }
  }

  Bench bench;
  int device = 0;
  CK(cudaSetDevice(device));
  CK(cudaGetDeviceProperties(&bench.prop, device));
  CK(cudaStreamCreateWithFlags(&bench.stream, cudaStreamNonBlocking));
  bench.ctx.stream = bench.stream;
  bench.ctx.device = device;
  bench.ctx.sm_count = bench.prop.multiProcessorCount;
  CK(cudaDeviceGetAttribute(&bench.ctx.max_smem_per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CK(cudaMalloc(&bench.ctx.workspace, updraft::cuda::kWorkspaceBytes));
  bench.ctx.workspace_bytes = updraft::cuda::kWorkspaceBytes;
  {
    // Variant 9's handle, as the backend opens it (cuBLAS loaded at run time, on the bench's stream,
    // with a workspace of its own).
    std::string why;
    void *cublas_workspace = nullptr;
    CK(cudaMalloc(&cublas_workspace, updraft::cuda::CublasApi::kWorkspaceBytes));
    bench.ctx.cublas = updraft::cuda::cublas_open_handle(bench.stream, cublas_workspace,
                                                         updraft::cuda::CublasApi::kWorkspaceBytes, &why);
    if (!bench.ctx.cublas) std::printf("variant 9: no cuBLAS handle (%s)\n", why.c_str());
  }
  std::printf("device: %s, %d SMs, CC %d.%d, L2 %d MiB, smem opt-in %d B\n", bench.prop.name,
              bench.prop.multiProcessorCount, bench.prop.major, bench.prop.minor, bench.prop.l2CacheSize >> 20,
              bench.ctx.max_smem_per_block);
#ifdef UD_BENCH_WITH_CUBLAS
  CKB(cublasCreate(&bench.cublas));
  CKB(cublasSetStream(bench.cublas, bench.stream));
  int cublas_version = 0;
  CKB(cublasGetVersion(bench.cublas, &cublas_version));
  std::printf("cuBLAS %d\n", cublas_version);
#endif

  std::mt19937 rng(1234);
  CheckTally tally;
  if (!skip_checks) {
    check_capture(bench, tally, rng);
    check_shapes(bench, tally, rng);
    check_determinism(bench, tally, rng);
    std::printf("\nchecks: %d passed, %d failed, %d skipped (variant does not take the case)\n", tally.pass,
                tally.fail, tally.skip);
    for (size_t i = 0; i < tally.failures.size() && i < 60; i++) std::printf("  FAIL %s\n", tally.failures[i].c_str());
    std::fflush(stdout);
  }

  std::vector<Row> rows;
  double copy_gbps = 0.0;
  write_json(json_path, bench, copy_gbps, reps, tally, rows);
  if (!skip_perf) {
    copy_gbps = measure_copy_bandwidth(bench);
    std::printf("\ndevice-to-device copy (1 GiB, read + written): %.0f GB/s\n", copy_gbps);
    const Shape shapes[] = {{"qkv", 4096, 6144, UD_BF16},
                            {"o", 4096, 4096, UD_BF16},
                            {"gate_up", 4096, 28672, UD_BF16},
                            {"down", 14336, 4096, UD_BF16},
                            {"lm_head", 4096, 128256, UD_F32}};
    const int64_t max_m = *std::max_element(ms_list.begin(), ms_list.end());
    int64_t max_k = 0, max_nk = 0, max_mn_bytes = 0;
    for (const Shape &s : shapes) {
      max_k = std::max(max_k, s.k);
      max_nk = std::max(max_nk, s.n * s.k);
      max_mn_bytes = std::max<int64_t>(max_mn_bytes, max_m * s.n * 4);
    }
    void *x = nullptr, *w = nullptr, *y = nullptr, *ref = nullptr, *flush = nullptr;
    const size_t flush_bytes = size_t(256) << 20;
    CK(cudaMalloc(&x, size_t(max_m * max_k) * 2));
    CK(cudaMalloc(&w, size_t(max_nk) * 2));
    CK(cudaMalloc(&y, size_t(max_mn_bytes)));
    CK(cudaMalloc(&ref, size_t(max_mn_bytes)));
    CK(cudaMalloc(&flush, flush_bytes));
    unsigned *stats = nullptr;
    CK(cudaMalloc(&stats, 3 * sizeof(unsigned)));
    fill_uniform_kernel<<<4096, 256, 0, bench.stream>>>(static_cast<__nv_bfloat16 *>(x), size_t(max_m * max_k), 1);
    fill_uniform_kernel<<<4096, 256, 0, bench.stream>>>(static_cast<__nv_bfloat16 *>(w), size_t(max_nk), 2);
    CK(cudaStreamSynchronize(bench.stream));

    std::printf("\nbest = fastest of our kernels that matched cuBLAS; GB/s = weight bytes / time; %%copy = that over the copy rate\n");
    std::printf("%-8s %5s | %9s | %-9s %8s %7s %7s | %-4s | %s\n", "shape", "M", "cuBLAS ms", "best", "TFLOP/s", "GB/s",
                "%copy", "auto", "each kernel: ms (! = mismatch)");
    for (const Shape &s : shapes) {
      for (int64_t m : ms_list) {
        const int64_t n = s.n, k = s.k;
        const double flops = 2.0 * double(m) * double(n) * double(k);
        const double w_bytes = double(n) * double(k) * 2.0;
        const size_t y_count = size_t(m * n);
        auto add_row = [&](const std::string &label, double ms, double cublas_ms, double err, int nans,
                           const std::string &note) {
          Row r;
          r.shape = s.name;
          r.label = label;
          r.m = m;
          r.n = n;
          r.k = k;
          r.ms = ms;
          r.tflops = ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0;
          r.gbps = ms > 0 ? w_bytes / (ms * 1e-3) / 1e9 : 0;
          r.vs_cublas = (ms > 0 && cublas_ms > 0) ? cublas_ms / ms : 0;
          r.vs_copy = (ms > 0 && copy_gbps > 0) ? r.gbps / copy_gbps : 0;
          r.err = err;
          r.nans = nans;
          r.note = note;
          rows.push_back(r);
        };

        // cuBLAS: reference output (f32) and its time with the model's output dtype.
        double cublas_ms = -1.0;
        bool have_ref = false;
#ifdef UD_BENCH_WITH_CUBLAS
        {
          const float alpha = 1.0f, beta = 0.0f;
          // Column-major view: yᵀ[N, M] = op_T(W as K×N) · x as K×M.
          auto gemm = [&](void *out, cudaDataType out_type) {
            return cublasGemmEx(bench.cublas, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &alpha, w, CUDA_R_16BF,
                                int(k), x, CUDA_R_16BF, int(k), &beta, out, out_type, int(n), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
          };
          have_ref = gemm(ref, CUDA_R_32F);
          CK(cudaStreamSynchronize(bench.stream));
          const cudaDataType yt = s.yd == UD_F32 ? CUDA_R_32F : CUDA_R_16BF;
          cublas_ms = time_median(bench, flush, flush_bytes, reps, [&] { return gemm(y, yt); });
          add_row("cublas", cublas_ms, cublas_ms, 0.0, 0, "");
        }
#endif
        // Each variant (and the forced tile shapes of 3 and 4 from M = 64 on).
        struct Run {
          std::string label;
          int variant, v3_tile, v4_bn;
        };
        std::vector<Run> runs = {{"v1", 1, 0, 0}, {"v2", 2, 0, 0}, {"v3", 3, 0, 0}, {"v4", 4, 0, 0}, {"v5", 5, 0, 0}, {"v6", 6, 0, 0}, {"v7", 7, 0, 0}, {"v8", 8, 0, 0}, {"v9", 9, 0, 0}};
        if (m >= 64) {
          runs.push_back({"v3:big", 3, 1, 0});
          runs.push_back({"v3:small", 3, 2, 0});
          runs.push_back({"v4:bn256", 4, 0, 256});
          runs.push_back({"v4:bn128", 4, 0, 128});
          runs.push_back({"v6:bn256", 6, 0, 256});
          runs.push_back({"v6:bn128", 6, 0, 128});
          runs.push_back({"v7:bn256", 7, 0, 256});
          runs.push_back({"v7:bn128", 7, 0, 128});
          runs.push_back({"v8:bn256", 8, 0, 256});
          runs.push_back({"v8:bn128", 8, 0, 128});
        }
        std::string summary;
        double best_ms = -1;
        std::string best_label;
        for (const Run &run : runs) {
          if (!g_enabled[run.variant]) continue;
          if (run.variant == 1 && flops > 1.2e11) continue;  // the simple kernel would take seconds here
          md::g_v3_force_tile = run.v3_tile;
          md::g_v4_force_bn = run.v4_bn;
          ud_op op = matmul_op(run.variant, x, UD_BF16, w, UD_BF16, nullptr, UD_BF16, y, s.yd, m, n, k);
          // Correctness first: poisoned output, one launch, compared with cuBLAS's f32 result.
          CK(cudaMemsetAsync(y, 0xFF, y_count * dt_size(s.yd), bench.stream));
          ud_status st = launch_matmul(op, bench.ctx);
          if (st == UD_ERR_UNSUPPORTED) continue;
          if (st != UD_OK) {
            std::printf("  %s M=%lld %s: launch failed: %s\n", s.name, (long long)m, run.label.c_str(), bench.ctx.error.c_str());
            continue;
          }
          const cudaError_t e = cudaStreamSynchronize(bench.stream);
          if (e != cudaSuccess) {
            std::printf("FATAL: %s M=%lld %s: %s\n", s.name, (long long)m, run.label.c_str(), cudaGetErrorString(e));
            std::exit(2);
          }
          double err = -1.0;
          unsigned host_stats[3] = {0, 0, 0};
          if (have_ref) {
            CK(cudaMemsetAsync(stats, 0, 3 * sizeof(unsigned), bench.stream));
            error_kernel<<<1024, 256, 0, bench.stream>>>(y, s.yd, static_cast<const float *>(ref), y_count, stats,
                                                         stats + 1, stats + 2);
            CK(cudaMemcpyAsync(host_stats, stats, sizeof host_stats, cudaMemcpyDeviceToHost, bench.stream));
            CK(cudaStreamSynchronize(bench.stream));
            float max_diff, max_ref;
            std::memcpy(&max_diff, &host_stats[0], 4);
            std::memcpy(&max_ref, &host_stats[1], 4);
            err = max_ref > 0 ? double(max_diff) / double(max_ref) : double(max_diff);
          }
          const double ms = time_median(bench, flush, flush_bytes, reps, [&] { return launch_matmul(op, bench.ctx) == UD_OK; });
          std::string note;
          if (run.variant == 3) {
            const md::V3Plan plan = md::v3_choose(md::Problem{x, w, nullptr, y, m, n, k, UD_BF16, UD_BF16, -1, s.yd},
                                                  bench.ctx.sm_count, bench.ctx.workspace_bytes);
            note = std::string(plan.big ? "128x256" : "64x128") + " splits=" + std::to_string(plan.splits);
          } else if (run.variant == 4 || run.variant >= 6) {
            note = "128x" + std::to_string(md::v4_choose_bn(md::Problem{x, w, nullptr, y, m, n, k, UD_BF16, UD_BF16, -1, s.yd},
                                                             bench.ctx.sm_count));
          } else if (run.variant == 5) {
            note = "blocks=" + std::to_string(md::v5_ctas(md::Problem{x, w, nullptr, y, m, n, k, UD_BF16, UD_BF16, -1, s.yd},
                                                          bench.ctx.sm_count));
          } else if (run.variant == 2) {
            note = "splits=" + std::to_string(md::v2_splits(md::Problem{x, w, nullptr, y, m, n, k, UD_BF16, UD_BF16, -1, s.yd},
                                                            bench.ctx.sm_count, bench.ctx.workspace_bytes));
          }
          const bool bad = have_ref && (host_stats[2] != 0 || err > 2e-2);
          if (bad) note += " MISMATCH";
          add_row(run.label, ms, cublas_ms, err, int(host_stats[2]), note);
          char buf[64];
          std::snprintf(buf, sizeof buf, "%s:%.4g%s ", run.label.c_str(), ms, bad ? "!" : "");
          summary += buf;
          if (ms > 0 && !bad && (best_ms < 0 || ms < best_ms)) {
            best_ms = ms;
            best_label = run.label;
          }
        }
        md::g_v3_force_tile = 0;
        md::g_v4_force_bn = 0;
        const md::Problem auto_p{x, w, nullptr, y, m, n, k, UD_BF16, UD_BF16, -1, s.yd};
        const int auto_v = updraft::cuda::auto_variant(auto_p, bench.ctx.cublas != nullptr);
        const double best_tflops = best_ms > 0 ? flops / (best_ms * 1e-3) / 1e12 : 0;
        const double best_gbps = best_ms > 0 ? w_bytes / (best_ms * 1e-3) / 1e9 : 0;
        std::printf("%-8s %5lld | %9.4f | %-9s %8.1f %7.0f %6.1f%% | v%d | %s\n", s.name, (long long)m, cublas_ms,
                    best_label.c_str(), best_tflops, best_gbps, copy_gbps > 0 ? 100.0 * best_gbps / copy_gbps : 0.0,
                    auto_v, summary.c_str());
        std::fflush(stdout);
      }
      write_json(json_path, bench, copy_gbps, reps, tally, rows);
    }
    cudaFree(x);
    cudaFree(w);
    cudaFree(y);
    cudaFree(ref);
    cudaFree(flush);
    cudaFree(stats);
  }

  write_json(json_path, bench, copy_gbps, reps, tally, rows);
  const bool ok = tally.fail == 0;
  std::printf("\n%d passed, %d failed\n", tally.pass, tally.fail);
  return ok ? 0 : 3;
}
