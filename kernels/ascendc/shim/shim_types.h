// shim_types.h — the scalar types, enums, qualifiers and checked parameter fields of the AscendC shim.
//
// Clean-room: written from the public AscendC API documentation (names, parameter meanings, value
// ranges), not from Huawei's headers. Only the subset Updraft's kernels use exists here.
#ifndef UPDRAFT_ASCENDC_SHIM_TYPES_H
#define UPDRAFT_ASCENDC_SHIM_TYPES_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

// Qualifiers of the AscendC dialect: meaningful to bisheng, empty for g++.
#define __aicore__
#define __global__
#define __gm__
#define GM_ADDR uint8_t *

namespace AscendC {
namespace shim {

// A rule of the chip broken by a kernel. Thrown by the shim, caught by Device::launch and turned into a
// status with the message, so the caller sees which kernel, which block and which rule.
class Violation : public std::runtime_error {
 public:
  explicit Violation(const std::string &what) : std::runtime_error(what) {}
};

// Implemented in shim_runtime.h: prefixes "kernel K block B: " and throws Violation.
[[noreturn]] inline void violation(const std::string &rule, const std::string &detail);

// ------------------------------------------------------------------------------------------------
// 16-bit floats. Storage is the bit pattern; arithmetic happens in f32 and is rounded back, as the
// vector unit does for its 16-bit inputs.

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace shim

// Rounding modes of Cast (AscendC RoundMode). CAST_NONE: the conversion's default (exact widening,
// round to nearest even when narrowing f32 to f16).
enum class RoundMode : uint8_t { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD };

namespace shim {

inline const char *round_mode_name(RoundMode m) {
  switch (m) {
    case RoundMode::CAST_NONE: return "CAST_NONE";
    case RoundMode::CAST_RINT: return "CAST_RINT";
    case RoundMode::CAST_FLOOR: return "CAST_FLOOR";
    case RoundMode::CAST_CEIL: return "CAST_CEIL";
    case RoundMode::CAST_ROUND: return "CAST_ROUND";
    case RoundMode::CAST_TRUNC: return "CAST_TRUNC";
    case RoundMode::CAST_ODD: return "CAST_ODD";
  }
  return "?";
}

// Rounds the non-negative integer part `q` + fraction `frac` (in [0, 1)) of a magnitude by `mode`,
// `negative` giving the sign so FLOOR/CEIL round the right way. Returns the rounded magnitude.
inline double round_magnitude(double q, double frac, bool negative, RoundMode mode) {
  switch (mode) {
    case RoundMode::CAST_NONE:
    case RoundMode::CAST_RINT:
      if (frac > 0.5 || (frac == 0.5 && std::fmod(q, 2.0) != 0.0)) return q + 1;
      return q;
    case RoundMode::CAST_ROUND: return frac >= 0.5 ? q + 1 : q;
    case RoundMode::CAST_TRUNC: return q;
    case RoundMode::CAST_FLOOR: return (negative && frac > 0) ? q + 1 : q;
    case RoundMode::CAST_CEIL: return (!negative && frac > 0) ? q + 1 : q;
    case RoundMode::CAST_ODD: return (frac > 0 && std::fmod(q, 2.0) == 0.0) ? q + 1 : q;
  }
  return q;
}

// f32 -> bf16 bits with a rounding mode (NaN stays a quiet NaN).
inline uint16_t bf16_from_f32(float f, RoundMode mode) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  const bool negative = (u >> 31) != 0;
  const uint32_t magnitude = u & 0x7fffffffu;
  const uint32_t lower = magnitude & 0xffffu;
  uint32_t upper = magnitude >> 16;
  const double frac = lower / 65536.0;
  upper = static_cast<uint32_t>(round_magnitude(upper, frac, negative, mode));
  return static_cast<uint16_t>((negative ? 0x8000u : 0u) | upper);
}
inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// f16 bits of a value exactly representable in f16 (or +-inf).
inline uint16_t f16_bits_exact(double v) {
  const uint16_t sign = std::signbit(v) ? 0x8000u : 0u;
  const double a = std::fabs(v);
  if (std::isinf(a)) return sign | 0x7c00u;
  if (a == 0) return sign;
  if (a < 6.103515625e-05) return static_cast<uint16_t>(sign | static_cast<uint16_t>(a / 5.9604644775390625e-08));  // subnormal
  int e = 0;
  const double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const uint32_t exp = static_cast<uint32_t>(e - 1 + 15);
  const uint32_t mant = static_cast<uint32_t>((m * 2.0 - 1.0) * 1024.0);
  return static_cast<uint16_t>(sign | (exp << 10) | mant);
}

// f32 -> f16 bits with a rounding mode; overflow goes to inf or to the largest finite value as the
// direction of rounding says.
inline uint16_t f16_from_f32(float f, RoundMode mode) {
  if (std::isnan(f)) return 0x7e00u;
  const bool negative = std::signbit(f);
  const double a = std::fabs(static_cast<double>(f));
  if (std::isinf(a)) return (negative ? 0x8000u : 0u) | 0x7c00u;
  int e = 0;
  if (a > 0) {
    std::frexp(a, &e);
    e -= 1;  // a in [2^e, 2^(e+1))
  }
  if (e < -14) e = -14;  // subnormal range shares the quantum 2^-24
  const double quantum = std::ldexp(1.0, e - 10);
  const double scaled = a / quantum;  // exact: a is an f32, quantum a power of two
  const double q = std::floor(scaled);
  double r = round_magnitude(q, scaled - q, negative, mode) * quantum;
  if (r > 65504.0) {
    const bool to_inf = mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_RINT || mode == RoundMode::CAST_ROUND ||
                        (mode == RoundMode::CAST_CEIL && !negative) || (mode == RoundMode::CAST_FLOOR && negative);
    r = to_inf ? std::numeric_limits<double>::infinity() : 65504.0;
  }
  return f16_bits_exact(negative ? -r : r);
}
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f) : bits(f16_from_f32(f, RoundMode::CAST_RINT)) {}  // NOLINT: implicit, as the dialect's half
  Half(double f) : Half(static_cast<float>(f)) {}
  Half(int v) : Half(static_cast<float>(v)) {}
  operator float() const { return f16_to_f32(bits); }
  static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(bf16_from_f32(f, RoundMode::CAST_RINT)) {}  // NOLINT
  BFloat16(double f) : BFloat16(static_cast<float>(f)) {}
  BFloat16(int v) : BFloat16(static_cast<float>(v)) {}
  operator float() const { return bf16_to_f32(bits); }
  static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

template <typename T> struct TypeName { static const char *get() { return "?"; } };
template <> struct TypeName<float> { static const char *get() { return "float"; } };
template <> struct TypeName<Half> { static const char *get() { return "half"; } };
template <> struct TypeName<BFloat16> { static const char *get() { return "bfloat16_t"; } };
template <> struct TypeName<int32_t> { static const char *get() { return "int32_t"; } };
template <> struct TypeName<uint32_t> { static const char *get() { return "uint32_t"; } };
template <> struct TypeName<int16_t> { static const char *get() { return "int16_t"; } };
template <> struct TypeName<uint16_t> { static const char *get() { return "uint16_t"; } };
template <> struct TypeName<uint8_t> { static const char *get() { return "uint8_t"; } };
template <> struct TypeName<int8_t> { static const char *get() { return "int8_t"; } };
template <> struct TypeName<int64_t> { static const char *get() { return "int64_t"; } };
template <> struct TypeName<uint64_t> { static const char *get() { return "uint64_t"; } };

template <typename T> constexpr bool is_float16() { return std::is_same<T, Half>::value || std::is_same<T, BFloat16>::value; }
template <typename T> constexpr bool is_float_like() { return std::is_same<T, float>::value || is_float16<T>(); }

// Element value as f32 / from f32 with round-to-nearest-even (what the vector unit does when it writes
// a 16-bit result).
template <typename T> inline float to_f32(T v) { return static_cast<float>(v); }
template <typename T> inline T from_f32(float v) {
  if constexpr (std::is_same<T, Half>::value) return Half(v);
  else if constexpr (std::is_same<T, BFloat16>::value) return BFloat16(v);
  else return static_cast<T>(v);
}

// ------------------------------------------------------------------------------------------------
// Checked parameter fields. The real API declares many parameters as uint8_t / uint16_t: a kernel that
// assigns a larger value compiles (the conversion wraps) and then does the wrong thing on the chip. The
// shim's fields keep the value as assigned and fail, naming the parameter, when it does not fit.
// Kernels fill parameter structs by member assignment (`p.blockCount = n;`), which compiles the same
// with bisheng, so the check sees the unwrapped value.
template <typename U> struct Field {
  int64_t value = 0;
  constexpr Field() = default;
  template <typename I, typename = typename std::enable_if<std::is_integral<I>::value || std::is_enum<I>::value>::type>
  constexpr Field(I v) : value(static_cast<int64_t>(v)) {}  // NOLINT: implicit, like the plain field
  // Read by the shim, with the parameter's name for the message.
  U get(const char *what) const {
    if (value < static_cast<int64_t>(std::numeric_limits<U>::min()) || value > static_cast<int64_t>(std::numeric_limits<U>::max())) {
      violation("parameter out of range",
                std::string(what) + " = " + std::to_string(value) + " does not fit " +
                    (sizeof(U) == 1 ? "uint8_t" : sizeof(U) == 2 ? "uint16_t" : "uint32_t") + " [0, " +
                    std::to_string(static_cast<int64_t>(std::numeric_limits<U>::max())) + "]: on the chip it would wrap to " +
                    std::to_string(static_cast<U>(value)));
    }
    return static_cast<U>(value);
  }
  operator U() const { return get("parameter"); }  // NOLINT
};

}  // namespace shim

// Buffer positions (logical places a tensor lives in). VECIN/VECOUT/VECCALC are the Unified Buffer of a
// vector core; A1/B1 the L1 buffer, A2 L0A, B2 L0B, CO1 L0C of a cube core.
enum class TPosition : uint8_t { GM = 0, A1, A2, B1, B2, C1, C2, CO1, CO2, VECIN, VECOUT, VECCALC, LCM, SPM, SHM, TSCM, MAX };
using QuePosition = TPosition;

// Comparison and select modes (Compare / CompareScalar / Select).
enum class CMPMODE : uint8_t { LT = 0, GT, EQ, LE, GE, NE };
enum class SELMODE : uint8_t { VSEL_CMPMASK_SPR = 0, VSEL_TENSOR_SCALAR_MODE, VSEL_TENSOR_TENSOR_MODE };
// Order of (value, index) pairs written by WholeReduceMax/Min.
enum class ReduceOrder : uint8_t { ORDER_VALUE_INDEX = 0, ORDER_INDEX_VALUE, ORDER_ONLY_VALUE, ORDER_ONLY_INDEX };

// Pipes (instruction queues of one core) and the events that order them.
enum pipe_t : uint8_t { PIPE_S = 0, PIPE_V, PIPE_M, PIPE_MTE1, PIPE_MTE2, PIPE_MTE3, PIPE_FIX, PIPE_ALL, PIPE_COUNT_ };
enum class HardEvent : uint8_t {
  MTE2_MTE1, MTE1_MTE2, MTE1_M, M_MTE1, MTE2_V, V_MTE2, MTE3_V, V_MTE3, M_V, V_M, V_V, MTE3_MTE1, MTE1_MTE3, MTE1_V,
  MTE2_M, M_MTE2, V_MTE1, M_FIX, FIX_M, MTE3_MTE2, MTE2_MTE3, S_V, V_S, S_MTE2, MTE2_S, S_MTE3, MTE3_S, MTE2_FIX,
  FIX_MTE2, FIX_S, M_S, FIX_MTE3, MTE1_FIX, FIX_MTE1, FIX_FIX, MAX
};
using event_t = int32_t;

// Quantisation / conversion applied by Fixpipe on the way out of L0C.
enum class QuantMode_t : uint8_t { NoQuant = 0, F322F16, F322BF16, DEQF16, VDEQF16, QF322B8_PRE, VQF322B8_PRE, REQ8, VREQ8 };

// Core kinds a kernel runs on (KERNEL_TASK_TYPE_DEFAULT).
enum KernelMetaType : uint8_t { KERNEL_TYPE_AIV_ONLY = 1, KERNEL_TYPE_AIC_ONLY = 2, KERNEL_TYPE_MIX_AIC_1_2 = 3 };

}  // namespace AscendC

using half = AscendC::shim::Half;
using bfloat16_t = AscendC::shim::BFloat16;

#endif
