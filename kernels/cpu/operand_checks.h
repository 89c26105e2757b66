// operand_checks.h — validation helpers shared by the CPU kernels, so every kernel reports a bad
// operand the same way ("matmul: src1 (W) must be f32, f16 or bf16, got i32").
#ifndef UPDRAFT_CPU_OPERAND_CHECKS_H
#define UPDRAFT_CPU_OPERAND_CHECKS_H

#include <cstdint>
#include <string>

#include "cpu_kernels.h"

namespace updraft::cpu {

inline const char *dtype_name(int32_t dtype) {
  switch (dtype) {
    case UD_F32: return "f32";
    case UD_F16: return "f16";
    case UD_BF16: return "bf16";
    case UD_I32: return "i32";
    case UD_U32: return "u32";
    case UD_U64: return "u64";
    case UD_F8E4M3: return "f8e4m3";
    default: return "unknown dtype";
  }
}

// The dtypes kernels compute in. FP8 is not one of them: it is storage for the KV cache only.
inline bool is_float_dtype(int32_t dtype) { return dtype == UD_F32 || dtype == UD_F16 || dtype == UD_BF16; }

// What a KV cache (rope_kv_write's k/v destinations, attention's k/v sources) may hold.
inline bool is_kv_cache_dtype(int32_t dtype) { return is_float_dtype(dtype) || dtype == UD_F8E4M3; }

inline bool present(const ud_tensor &t) { return t.data != nullptr; }

inline int64_t numel(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; i++) n *= t.ne[i];
  return n;
}

// ne[0], the row count (see cpu_kernels.h).
inline int64_t rows(const ud_tensor &t) { return t.ndim >= 1 ? t.ne[0] : 1; }

// Elements per row: the product of every dim after the first.
inline int64_t row_size(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 1; i < t.ndim; i++) n *= t.ne[i];
  return n;
}

inline std::string shape_string(const ud_tensor &t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; i++) {
    if (i) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + "]";
}

// Each check returns true when the operand is fine; otherwise it records the error in ctx.
class OperandChecker {
 public:
  OperandChecker(KernelContext &ctx, const char *op_name) : ctx_(ctx), op_(op_name) {}

  bool ok() const { return ok_; }
  ud_status status() const { return status_; }

  OperandChecker &shape_valid(const ud_tensor &t, const char *what) {
    if (!ok_ || !present(t)) return *this;
    if (t.ndim < 1 || t.ndim > UD_MAX_DIMS) return fail(std::string(what) + " has ndim " + std::to_string(t.ndim));
    for (int i = 0; i < t.ndim; i++)
      if (t.ne[i] < 0) return fail(std::string(what) + " has a negative dim " + shape_string(t));
    return *this;
  }
  OperandChecker &required(const ud_tensor &t, const char *what) {
    if (ok_ && !present(t)) return fail(std::string(what) + " is required");
    return shape_valid(t, what);
  }
  OperandChecker &float_dtype(const ud_tensor &t, const char *what) {
    if (ok_ && present(t) && !is_float_dtype(t.dtype))
      return unsupported(std::string(what) + " must be f32, f16 or bf16, got " + dtype_name(t.dtype));
    return *this;
  }
  OperandChecker &kv_cache_dtype(const ud_tensor &t, const char *what) {
    if (ok_ && present(t) && !is_kv_cache_dtype(t.dtype))
      return unsupported(std::string(what) + " must be f32, f16, bf16 or f8e4m3, got " + dtype_name(t.dtype));
    return *this;
  }
  // The k and v caches are one cache in two halves: a backend stores and reads both the same way.
  OperandChecker &same_dtype(const ud_tensor &a, const char *a_what, const ud_tensor &b, const char *b_what) {
    if (ok_ && present(a) && present(b) && a.dtype != b.dtype)
      return unsupported(std::string(b_what) + " must have " + a_what + "'s dtype " + dtype_name(a.dtype) + ", got " +
                         dtype_name(b.dtype));
    return *this;
  }
  OperandChecker &dtype(const ud_tensor &t, int32_t dtype, const char *what) {
    if (ok_ && present(t) && t.dtype != dtype)
      return unsupported(std::string(what) + " must be " + dtype_name(dtype) + ", got " + dtype_name(t.dtype));
    return *this;
  }
  OperandChecker &numel_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && numel(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) +
                  " elements");
    return *this;
  }
  OperandChecker &rows_are(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && rows(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have " + std::to_string(expected) +
                  " rows");
    return *this;
  }
  OperandChecker &row_size_is(const ud_tensor &t, int64_t expected, const char *what) {
    if (ok_ && present(t) && row_size(t) != expected)
      return fail(std::string(what) + " " + shape_string(t) + " should have rows of " + std::to_string(expected) +
                  " elements");
    return *this;
  }
  OperandChecker &that(bool condition, const std::string &message) {
    if (ok_ && !condition) return fail(message);
    return *this;
  }

  ud_status finish() const { return status_; }

 private:
  OperandChecker &fail(const std::string &message, ud_status status = UD_ERR_INVALID_ARGUMENT) {
    ok_ = false;
    status_ = ctx_.fail(status, std::string(op_) + ": " + message);
    return *this;
  }
  OperandChecker &unsupported(const std::string &message) { return fail(message, UD_ERR_UNSUPPORTED); }

  KernelContext &ctx_;
  const char *op_;
  bool ok_ = true;
  ud_status status_ = UD_OK;
};

}  // namespace updraft::cpu

#endif
