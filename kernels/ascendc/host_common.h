// host_common.h — host-side helpers of the AscendC launch functions: operand inspection, the operand
// checker (the CPU kernels' wording), dtype dispatch and the launch macro.
#ifndef UPDRAFT_ASCENDC_HOST_COMMON_H
#define UPDRAFT_ASCENDC_HOST_COMMON_H

#include <cstdint>
#include <string>

#include "ascendc_kernels.h"

namespace updraft::ascendc {

inline bool present(const ud_tensor &t) { return t.data != nullptr; }
inline bool is_float_dtype(int32_t d) { return d == UD_F32 || d == UD_F16 || d == UD_BF16; }
inline int64_t numel(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; i++) n *= t.ne[i];
  return n;
}
inline int64_t rows(const ud_tensor &t) { return t.ndim >= 1 ? t.ne[0] : 1; }
inline int64_t row_size(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 1; i < t.ndim; i++) n *= t.ne[i];
  return n;
}
inline const char *dtype_name(int32_t d) {
  switch (d) {
    case UD_F32: return "f32";
    case UD_F16: return "f16";
    case UD_BF16: return "bf16";
    case UD_I32: return "i32";
    case UD_U32: return "u32";
    case UD_U64: return "u64";
    case UD_F8E4M3: return "f8e4m3";
    default: return "unknown";
  }
}
inline std::string shape_string(const ud_tensor &t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; i++) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}
inline uint8_t *gm(const ud_tensor &t) { return static_cast<uint8_t *>(t.data); }
inline uint32_t ceil_div(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }
inline uint32_t align_up(uint32_t a, uint32_t b) { return (a + b - 1) / b * b; }

// The CPU kernels' OperandChecker (kernels/cpu/operand_checks.h) for the AscendC LaunchContext, so
// every backend words a bad operand the same way. Each check records the first failure in ctx.
class Checker {
 public:
  Checker(LaunchContext &ctx, const char *op_name) : ctx_(ctx), op_(op_name) {}
  bool ok() const { return ok_; }
  ud_status status() const { return status_; }

  Checker &shape_valid(const ud_tensor &t, const char *what) {
    if (!ok_ || !present(t)) return *this;
    if (t.ndim < 1 || t.ndim > UD_MAX_DIMS) return fail(std::string(what) + " has ndim " + std::to_string(t.ndim));
    for (int i = 0; i < t.ndim; i++)
      if (t.ne[i] < 0) return fail(std::string(what) + " has a negative dim " + shape_string(t));
    return *this;
  }
  Checker &required(const ud_tensor &t, const char *what) {
    if (ok_ && !present(t)) return fail(std::string(what) + " is required");
    return shape_valid(t, what);
  }
  Checker &float_dtype(const ud_tensor &t, const char *what) {
    if (ok_ && present(t) && !is_float_dtype(t.dtype))
      return unsupported(std::string(what) + " must be f32, f16 or bf16, got " + dtype_name(t.dtype));
    return *this;
  }
  Checker &dtype(const ud_tensor &t, int32_t dtype, const char *what) {
    if (ok_ && present(t) && t.dtype != dtype)
      return unsupported(std::string(what) + " must be " + dtype_name(dtype) + ", got " + dtype_name(t.dtype));
    return *this;
  }
  Checker &numel_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && numel(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) + " elements");
    return *this;
  }
  Checker &rows_are(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && rows(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) + " rows");
    return *this;
  }
  Checker &row_size_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && row_size(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have rows of " + std::to_string(expected) + " elements");
    return *this;
  }
  // A size the kernels keep in 32-bit fields.
  Checker &fits_u32(int64_t v, const char *what) {
    if (ok_ && (v < 0 || v > 0xffffffffLL)) return fail(std::string(what) + " = " + std::to_string(v) + " exceeds the kernels' 32-bit sizes");
    return *this;
  }
  Checker &that(bool condition, const std::string &message) {
    if (ok_ && !condition) return fail(message);
    return *this;
  }
  Checker &unsupported_if(bool condition, const std::string &message) {
    if (ok_ && condition) return unsupported(message);
    return *this;
  }

 private:
  Checker &fail(const std::string &message, ud_status status = UD_ERR_INVALID_ARGUMENT) {
    ok_ = false;
    status_ = ctx_.fail(status, std::string(op_) + ": " + message);
    return *this;
  }
  Checker &unsupported(const std::string &message) { return fail(message, UD_ERR_UNSUPPORTED); }

  LaunchContext &ctx_;
  const char *op_;
  bool ok_ = true;
  ud_status status_ = UD_OK;
};

// Workspace of at least `bytes`, or a failed status.
inline ud_status need_workspace(LaunchContext &ctx, size_t bytes, const char *op) {
  if (bytes <= ctx.workspace_bytes) return UD_OK;
  if (!ctx.reserve_workspace)
    return ctx.fail(UD_ERR_OUT_OF_MEMORY, std::string(op) + ": needs " + std::to_string(bytes) + " bytes of device workspace, the backend has " +
                                              std::to_string(ctx.workspace_bytes));
  return ctx.reserve_workspace(ctx, bytes);
}

}  // namespace updraft::ascendc

// Launches `kernel` on `blocks` cores with the given arguments and yields a ud_status.
//   ascend-sim: the shim runs every block on the host and checks the chip's rules (ctx.sim_run);
//   ascend:     the <<<blockDim, l2ctrl, stream>>> launch of the bisheng toolchain, queued on ctx.stream.
// The sim evaluates the arguments once, at launch, and keeps them by value, as a <<<>>> launch does: a
// runner may then queue the kernel or replay it from a captured graph after this function returned
// (the stand-in ACL runtime of test/ascend does both).
#if defined(UPDRAFT_ASCEND_SIM)
#include <tuple>
#define UD_ASCENDC_LAUNCH(ctx, name, blocks, kernel, ...)                                          \
  ((ctx).sim_run ? (ctx).sim_run((ctx), (name), (blocks),                                          \
                                 [args = std::make_tuple(__VA_ARGS__)]() { std::apply(kernel, args); }) \
                 : (ctx).fail(UD_ERR_DEVICE, "ascend-sim: no kernel runner"))
#else
#define UD_ASCENDC_LAUNCH(ctx, name, blocks, kernel, ...) ((kernel<<<(blocks), nullptr, (ctx).stream>>>(__VA_ARGS__)), UD_OK)
#endif

// Calls MACRO(TypeA, TypeB) for the C++ element types of two float dtypes (f32, f16, bf16), in a switch
// so each combination names its own kernel (a <<<>>> launch needs the kernel's name, not a pointer).
#define UD_ASCENDC_FLOAT_CASES2(a, b, MACRO)                 \
  switch ((a) * 3 + (b)) {                                    \
    case UD_F32 * 3 + UD_F32: MACRO(f32, f32);                \
    case UD_F32 * 3 + UD_F16: MACRO(f32, f16);                \
    case UD_F32 * 3 + UD_BF16: MACRO(f32, bf16);              \
    case UD_F16 * 3 + UD_F32: MACRO(f16, f32);                \
    case UD_F16 * 3 + UD_F16: MACRO(f16, f16);                \
    case UD_F16 * 3 + UD_BF16: MACRO(f16, bf16);              \
    case UD_BF16 * 3 + UD_F32: MACRO(bf16, f32);              \
    case UD_BF16 * 3 + UD_F16: MACRO(bf16, f16);              \
    case UD_BF16 * 3 + UD_BF16: MACRO(bf16, bf16);            \
    default: break;                                           \
  }
#define UD_ASCENDC_FLOAT_CASES1(a, MACRO) \
  switch (a) {                            \
    case UD_F32: MACRO(f32);              \
    case UD_F16: MACRO(f16);              \
    case UD_BF16: MACRO(bf16);            \
    default: break;                       \
  }
// Declares the kernel entry NAME_A_B for each of the nine float dtype pairs, forwarding to IMPL<A, B>.
#define UD_ASCENDC_ENTRY_PAIR(NAME, A, B, PARAMS, ARGS, IMPL) \
  extern "C" __global__ __aicore__ void NAME##_##A##_##B PARAMS { IMPL<A, B> ARGS; }
#define UD_ASCENDC_ENTRIES2(NAME, PARAMS, ARGS, IMPL)          \
  UD_ASCENDC_ENTRY_PAIR(NAME, f32, f32, PARAMS, ARGS, IMPL)     \
  UD_ASCENDC_ENTRY_PAIR(NAME, f32, f16, PARAMS, ARGS, IMPL)     \
  UD_ASCENDC_ENTRY_PAIR(NAME, f32, bf16, PARAMS, ARGS, IMPL)    \
  UD_ASCENDC_ENTRY_PAIR(NAME, f16, f32, PARAMS, ARGS, IMPL)     \
  UD_ASCENDC_ENTRY_PAIR(NAME, f16, f16, PARAMS, ARGS, IMPL)     \
  UD_ASCENDC_ENTRY_PAIR(NAME, f16, bf16, PARAMS, ARGS, IMPL)    \
  UD_ASCENDC_ENTRY_PAIR(NAME, bf16, f32, PARAMS, ARGS, IMPL)    \
  UD_ASCENDC_ENTRY_PAIR(NAME, bf16, f16, PARAMS, ARGS, IMPL)    \
  UD_ASCENDC_ENTRY_PAIR(NAME, bf16, bf16, PARAMS, ARGS, IMPL)
#define UD_ASCENDC_ENTRY_ONE(NAME, A, PARAMS, ARGS, IMPL) \
  extern "C" __global__ __aicore__ void NAME##_##A PARAMS { IMPL<A> ARGS; }
#define UD_ASCENDC_ENTRIES1(NAME, PARAMS, ARGS, IMPL) \
  UD_ASCENDC_ENTRY_ONE(NAME, f32, PARAMS, ARGS, IMPL)  \
  UD_ASCENDC_ENTRY_ONE(NAME, f16, PARAMS, ARGS, IMPL)  \
  UD_ASCENDC_ENTRY_ONE(NAME, bf16, PARAMS, ARGS, IMPL)

#endif
