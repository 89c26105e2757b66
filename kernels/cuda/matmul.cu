// UD_OP_MATMUL on CUDA: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]), accumulated in f32, the bias added in
// f32 before the one rounding to y's dtype (kernels/cpu/matmul.cc is the reference).
//
// The ladder (`ud_matmul_params.variant`; numbers are stable, tests and benchmarks use them):
//
//   variant  file                   design                                          takes
//   1        matmul_v1_simple.cuh   16×16 shared-memory tiles, f32 FMA, run-time    everything: any float dtypes
//                                   dtype loads; one output per thread              (x, W, bias, y), any M, N, K
//   2        matmul_v2_decode.cuh   decode stream: W read once with 16-byte loads,  x, W both bf16 or both f16;
//                                   tensor cores on yᵀ = W·xᵀ, split-K in the block M <= 16; K % 8 == 0;
//                                   and (small N) across blocks + ordered reduce    x, W 16-byte aligned
//   3        matmul_v3_mma.cuh      mma.sync m16n8k16 + ldmatrix + cp.async,        x, W both bf16 or both f16;
//                                   swizzled smem, 128×256 or 64×128 tiles, 3-4     K % 8 == 0; aligned x, W;
//                                   stages, split-K for small grids                 y f32 or x's dtype; sm_80+
//   4        matmul_v4_wgmma.cuh    Hopper: wgmma + TMA + mbarrier pipeline,        as 3, plus a CC 9.0 device
//                                   producer + 2 consumer warpgroups, 128×256×64    and an sm_90a build
//                                   (or 128×128×64) tiles
//   5        matmul_v5_decode.cuh   decode stream, persistent: one 16-warp block    as 2 (x, W both bf16 or
//                                   per SM, balanced contiguous tile ranges, split- both f16; M <= 16;
//                                   K across warps in the block, register double-  K % 8 == 0; x, W 16-byte
//                                   buffered W loads, mma.sync as in v2; one        aligned)
//                                   barrier, ordered reduce in shared memory
//   6        matmul_v4_wgmma.cuh    variant 4's kernel on a persistent grid: one    as 4
//                                   CTA per SM looping over tiles, the next tile's
//                                   loads overlapping the current tile's epilogue
//   7        matmul_v4_wgmma.cuh    variant 4 in clusters of 2 CTAs along M: each   as 4
//                                   W tile copied once from L2 into both (TMA
//                                   multicast, half each)
//   8        matmul_v4_wgmma.cuh    7 on a persistent grid (as 6)                   as 4
//   9        matmul_cublas.cuh      cuBLAS (cublasGemmEx, f32 compute), loaded at   x, W both bf16 or both f16;
//                                   run time (cublas_api.h); not ours: the vendor   y f32 or x's dtype; no
//                                   GEMM, as vLLM uses through PyTorch              bias; the backend has a
//                                                                                   cuBLAS handle
//
// Variants 1, 2 and 5 write y in any float dtype; 3, 4 and 6-9 in f32 or x's dtype (the pairs the model uses;
// fewer instantiations). The bias may be any float dtype or absent everywhere. Auto (variant 0): v1 when the dtypes or the
// shape rule out the tensor-core variants (f32 or mixed x/W, K % 8 != 0, K == 0, unaligned bases);
// else, for M <= 16, v5 (UPDRAFT_GEMM_DECODE=2 turns it off: then v3 when N >= kAutoTallDecodeN and v2
// below); for M >= kAutoWgmmaMinM, v9 (cuBLAS) where it takes the op, else v6 (UPDRAFT_GEMM_PERSISTENT=0:
// v4 instead; UPDRAFT_GEMM_WGMMA=0 turns both off); v3 between. UPDRAFT_GEMM_CUBLAS=0 keeps cuBLAS
// unloaded (cublas_api.h).
// An explicitly requested variant that cannot take the op returns UD_ERR_UNSUPPORTED with the reason;
// matmul_supports() gives the same answer without data (pointer alignment is only known at launch).
//
// Every launch only enqueues work on ctx.stream (capturable): no allocation, no synchronisation; split-K
// partials go to ctx.workspace; the tensor maps of v4 are built on the host per launch and passed by
// value. Results are deterministic: no atomics, every reduction in a fixed order.
#include <cstdlib>
#include <cstring>
#include <string>

#include "matmul.cuh"
#include "matmul_common.cuh"
#include "matmul_v1_simple.cuh"
#include "matmul_v2_decode.cuh"
#include "matmul_v3_mma.cuh"
#include "matmul_v4_wgmma.cuh"
#include "matmul_v5_decode.cuh"
#include "matmul_cublas.cuh"
#include "env_switch.h"

namespace updraft::cuda {

namespace {

using matmul_detail::Problem;

constexpr int kNumVariants = 9;
constexpr int64_t kAutoWgmmaMinM = 128;
constexpr int64_t kAutoTallDecodeN = 16384;

std::string shape_string(const ud_tensor &t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; i++) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}

bool shape_ok(const ud_tensor &t) {
  if (t.ndim < 1 || t.ndim > UD_MAX_DIMS) return false;
  for (int i = 0; i < t.ndim; i++)
    if (t.ne[i] < 0) return false;
  return true;
}

// Operand checks, in the CPU kernel's order and wording ("matmul: src1 (W) [2, 4] should have rows of 3
// elements"). Returns UD_OK and fills `p`, or the failure status with ctx.error set.
// `with_data`: operands are real (launch) rather than dtype/shape descriptions (supports).
ud_status describe(const ud_op &op, KernelContext &ctx, Problem &p) {
  const ud_tensor &x = op.src[0], &w = op.src[1], &bias = op.src[2], &y = op.dst[0];
  const char *names[4] = {"src0 (x)", "src1 (W)", "src2 (bias)", "dst0 (y)"};
  const ud_tensor *tensors[4] = {&x, &w, &bias, &y};
  if (op.n_src < 2 || op.n_dst < 1) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "matmul: needs src0 (x), src1 (W) and dst0 (y)");
  for (int i = 0; i < 4; i++) {
    const ud_tensor &t = *tensors[i];
    const bool optional = i == 2;
    if (i == 2 && op.n_src < 3) continue;
    if (!present(t)) {
      if (optional) continue;
      return ctx.fail(UD_ERR_INVALID_ARGUMENT, std::string("matmul: ") + names[i] + " is required");
    }
    if (!shape_ok(t))
      return ctx.fail(UD_ERR_INVALID_ARGUMENT, std::string("matmul: ") + names[i] + " has an invalid shape " +
                                                   shape_string(t));
  }
  for (int i = 0; i < 4; i++) {
    const ud_tensor &t = *tensors[i];
    if (i == 2 && op.n_src < 3) continue;
    if (present(t) && !is_float_dtype(t.dtype))
      return ctx.fail(UD_ERR_UNSUPPORTED, std::string("matmul: ") + names[i] + " must be f32, f16 or bf16, got " +
                                              dtype_name(t.dtype));
  }
  const bool has_bias = op.n_src >= 3 && present(bias);
  p.m = rows(x);
  p.k = row_size(x);
  p.n = rows(w);
  if (row_size(w) != p.k)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "matmul: src1 (W) " + shape_string(w) + " should have rows of " +
                                                 std::to_string(p.k) + " elements");
  if (has_bias && numel(bias) != p.n)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "matmul: src2 (bias) " + shape_string(bias) + " should have " +
                                                 std::to_string(p.n) + " elements");
  if (rows(y) != p.m)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "matmul: dst0 (y) " + shape_string(y) + " should have " +
                                                 std::to_string(p.m) + " rows");
  if (row_size(y) != p.n)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "matmul: dst0 (y) " + shape_string(y) + " should have rows of " +
                                                 std::to_string(p.n) + " elements");
  p.x = x.data;
  p.w = w.data;
  p.bias = has_bias ? bias.data : nullptr;
  p.y = y.data;
  p.x_dtype = x.dtype;
  p.w_dtype = w.dtype;
  p.bias_dtype = has_bias ? bias.dtype : -1;
  p.y_dtype = y.dtype;
  return UD_OK;
}

// v4 passed every check on an H200 (bench_matmul, 266 cases) and runs at 83–100% of cuBLAS for
// M >= 512, so auto uses it; UPDRAFT_GEMM_WGMMA=0 turns it off (read once).
bool wgmma_enabled_by_env() {
  static const bool enabled = env_switch_on("UPDRAFT_GEMM_WGMMA");
  return enabled;
}

// The persistent grid (v6) rather than one CTA per tile (v4) for auto's wgmma GEMMs;
// UPDRAFT_GEMM_PERSISTENT=0 turns it off for A/B runs (read once).
bool persistent_gemm_by_env() {
  static const bool enabled = env_switch_on("UPDRAFT_GEMM_PERSISTENT");
  return enabled;
}

// Auto runs variant 5 for M <= 16 (where it takes the op). Measured on an H200 in the 8B decode (no L2
// flush, kernels back to back): 5.57 ms/token with v5 against 6.43 ms with v2/v3 — although, with L2
// flushed before every launch, bench_matmul shows v5 no faster than v2 on qkv/o. UPDRAFT_GEMM_DECODE=2
// restores the v2/v3 choice (read once).
bool decode_v5_by_env() {
  static const bool enabled = [] {
    const char *v = std::getenv("UPDRAFT_GEMM_DECODE");
    return v == nullptr || std::strcmp(v, "2") != 0;
  }();
  return enabled;
}

bool variant_accepts(int variant, const Problem &p, std::string *why) {
  switch (variant) {
    case 1: return matmul_detail::v1_accepts(p, why);
    case 2: return matmul_detail::v2_accepts(p, why);
    case 3: return matmul_detail::v3_accepts(p, why);
    case 4: return matmul_detail::v4_accepts(p, why);
    case 5: return matmul_detail::v5_accepts(p, why);
    case 6:
    case 7:
    case 8: return matmul_detail::v4_accepts(p, why);
    case 9: return matmul_detail::cublas_accepts(p, why);
    default:
      if (why) *why = "matmul has variants 1.." + std::to_string(kNumVariants) + ", not " + std::to_string(variant);
      return false;
  }
}

// What auto (variant 0) runs for this problem; `have_cublas`: the backend holds a cuBLAS handle.
int auto_variant(const Problem &p, bool have_cublas) {
  if (p.m <= matmul_detail::kV5MaxM && decode_v5_by_env() && matmul_detail::v5_accepts(p, nullptr)) return 5;
  // Measured on an H200 at M = 1..16: v3's wide tiles stream a tall W (N >= 16k: gate_up, lm_head)
  // at 70–88% of copy bandwidth where v2 reaches 45–60%; v2 wins on the shorter projections.
  if (p.m <= matmul_detail::kV2MaxM && p.n >= kAutoTallDecodeN && matmul_detail::v3_accepts(p, nullptr)) return 3;
  if (p.m <= matmul_detail::kV2MaxM && matmul_detail::v2_accepts(p, nullptr)) return 2;
  if (have_cublas && p.m >= kAutoWgmmaMinM && matmul_detail::cublas_accepts(p, nullptr)) return 9;
  if (wgmma_enabled_by_env() && p.m >= kAutoWgmmaMinM && matmul_detail::v4_accepts(p, nullptr))
    return persistent_gemm_by_env() ? 6 : 4;
  if (matmul_detail::v3_accepts(p, nullptr)) return 3;
  return 1;
}

ud_status run_variant(int variant, const Problem &p, KernelContext &ctx) {
  switch (variant) {
    case 2: return matmul_detail::run_v2(p, ctx);
    case 3: return matmul_detail::run_v3(p, ctx);
    case 4: return matmul_detail::run_v4(p, ctx);
    case 5: return matmul_detail::run_v5(p, ctx);
    case 6: return matmul_detail::run_v4(p, ctx, {/*persistent=*/true, /*cluster_m=*/1});
    case 7: return matmul_detail::run_v4(p, ctx, {/*persistent=*/false, /*cluster_m=*/2});
    case 8: return matmul_detail::run_v4(p, ctx, {/*persistent=*/true, /*cluster_m=*/2});
    case 9: return matmul_detail::run_cublas(p, ctx);
    default: return matmul_detail::run_v1(p, ctx);
  }
}

}  // namespace

int matmul_num_variants() { return kNumVariants; }

int32_t matmul_supports(const ud_op &op) {
  KernelContext scratch;
  Problem p;
  const ud_status status = describe(op, scratch, p);
  if (status == UD_ERR_UNSUPPORTED) return 0;
  if (status != UD_OK) return 1;  // a malformed op is launch_matmul's to report, as an invalid argument
  const int variant = op.params.matmul.variant;
  if (variant == 0) return 1;
  // Data pointers are stand-ins here: alignment is checked at launch.
  p.x = p.w = nullptr;
  return variant_accepts(variant, p, nullptr) ? 1 : 0;
}

ud_status launch_matmul(const ud_op &op, KernelContext &ctx) {
  Problem p;
  const ud_status status = describe(op, ctx, p);
  if (status != UD_OK) return status;
  const int requested = op.params.matmul.variant;
  if (requested < 0 || requested > kNumVariants)
    return ctx.fail(UD_ERR_UNSUPPORTED, "matmul: variant " + std::to_string(requested) + " does not exist (0 = auto, 1.." +
                                            std::to_string(kNumVariants) + ")");
  if (p.m == 0 || p.n == 0) return UD_OK;
  if (requested == 0) {
    int variant = auto_variant(p, ctx.cublas != nullptr);
    ud_status s = run_variant(variant, p, ctx);
    // A fast path that turns out unavailable at run time (no tensor-map encoder, too little shared
    // memory, not a Hopper device, cuBLAS refusing the case) falls back: v9 to v6, v4 and v6-v8 to v3,
    // anything to the simple kernel, which always runs.
    if (s == UD_ERR_UNSUPPORTED && variant == 9 && matmul_detail::v4_accepts(p, nullptr)) {
      variant = 6;
      s = run_variant(variant, p, ctx);
    }
    if (s == UD_ERR_UNSUPPORTED && (variant == 4 || variant >= 6) && matmul_detail::v3_accepts(p, nullptr)) {
      variant = 3;
      s = run_variant(variant, p, ctx);
    }
    if (s == UD_ERR_UNSUPPORTED && variant != 1) return run_variant(1, p, ctx);
    return s;
  }
  std::string why;
  if (!variant_accepts(requested, p, &why)) return ctx.fail(UD_ERR_UNSUPPORTED, "matmul: " + why);
  return run_variant(requested, p, ctx);
}

}  // namespace updraft::cuda
