// dtype_convert.h — scalar conversions between f32 and the narrower float formats (f16, bf16 and
// the KV cache's FP8 E4M3).
//
// Shared by the CPU kernels and by the executor's host-side weight conversion, so a weight loaded
// from a bf16 file and a bf16 activation written by a kernel round the same way (round to nearest,
// ties to even, NaN kept NaN).
#ifndef UPDRAFT_CPU_DTYPE_CONVERT_H
#define UPDRAFT_CPU_DTYPE_CONVERT_H

#include <cstdint>
#include <cstring>
#include <limits>

#include "../ops.h"

namespace updraft::cpu {

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

// value >> shift (shift in [1, 31]), rounded to nearest with ties to even instead of truncated.
inline uint32_t shift_right_round_even(uint32_t value, uint32_t shift) {
  const uint32_t kept = value >> shift;
  const uint32_t dropped = value & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  return dropped > half || (dropped == half && (kept & 1u)) ? kept + 1u : kept;
}

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);
    // Subnormal: value = mant * 2^-24, exact in f32.
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in f16: quantise to multiples of 2^-24 with ties to even.
    if (abs < 0x33000000u) return sign;  // < 2^-25 rounds to zero
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exp;  // so that mant >> shift is the value in units of 2^-24
    return static_cast<uint16_t>(sign | shift_right_round_even(mant, shift));
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  return static_cast<uint16_t>(sign | shift_right_round_even(abs - 0x38000000u, 13));
}

// FP8 E4M3 (OCP e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, 0x7f/0xff
// are NaN, the largest finite value is 448 (0x7e), subnormals are m * 2^-9. Every code is exact in f32.
inline float f8e4m3_to_f32(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  const uint32_t exp = (code >> 3) & 0xfu;
  const uint32_t mant = code & 0x7u;
  if ((code & 0x7fu) == 0x7fu) return f32_from_bits(sign | 0x7fc00000u);  // NaN
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 512.0f);  // subnormal (or zero): mant * 2^-9
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 120u) << 23) | (mant << 20));  // rebias 7 -> 127
}

// Round to nearest, ties to even, saturating: what CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE,
// __NV_E4M3) stores, so a cache written on CPU and one written on GPU hold the same bytes. Finite
// values beyond 448 and +-inf become +-448 (the KV cache must never hold NaN for an overflow); NaN
// becomes 0x7f whatever its sign (CUDA's canonical NaN); -0 and values that round to zero keep the sign.
inline uint8_t f32_to_f8e4m3(float f) {
  const uint32_t u = f32_bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return 0x7fu;                                 // NaN
  if (abs > 0x43e00000u) return static_cast<uint8_t>(sign | 0x7eu);    // beyond 448 (inf too): saturate
  if (abs < 0x3c800000u) {
    // Below 2^-6, the smallest normal: quantise to multiples of 2^-9 with ties to even. A result of
    // 8 units is 2^-6, whose code (0x08) is the smallest normal, so the carry needs no special case.
    const uint32_t exp = abs >> 23;
    if (exp < 117u) return sign;  // below 2^-10, half the smallest subnormal: rounds to zero
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    return static_cast<uint8_t>(sign | shift_right_round_even(mant, 141u - exp));  // units of 2^-9
  }
  // Normal: rebias the exponent (127 -> 7) and round the 20 dropped mantissa bits to nearest even.
  // At most 448 here, so the rounding cannot carry into the NaN code.
  return static_cast<uint8_t>(sign | shift_right_round_even(abs - 0x3c000000u, 20));
}

// The dtype switches below take the ud_dtype integer of a float operand (or UD_F8E4M3). Operands are
// validated before any kernel converts them, so the unreachable default loads NaN and stores nothing
// rather than reinterpreting the bytes as some other format.

// Loads element i of a buffer of dtype `dtype` as f32.
inline float load_as_f32(const void *data, int32_t dtype, int64_t i) {
  switch (dtype) {
    case UD_F32: return static_cast<const float *>(data)[i];
    case UD_F16: return f16_to_f32(static_cast<const uint16_t *>(data)[i]);
    case UD_BF16: return bf16_to_f32(static_cast<const uint16_t *>(data)[i]);
    case UD_F8E4M3: return f8e4m3_to_f32(static_cast<const uint8_t *>(data)[i]);
    default: return std::numeric_limits<float>::quiet_NaN();
  }
}

// Stores an f32 value into element i of a buffer, rounding to the buffer's dtype.
inline void store_from_f32(void *data, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case UD_F32: static_cast<float *>(data)[i] = v; break;
    case UD_F16: static_cast<uint16_t *>(data)[i] = f32_to_f16(v); break;
    case UD_BF16: static_cast<uint16_t *>(data)[i] = f32_to_bf16(v); break;
    case UD_F8E4M3: static_cast<uint8_t *>(data)[i] = f32_to_f8e4m3(v); break;
    default: break;
  }
}

// Rounds an f32 value to what a buffer of `dtype` would hold, keeping it in f32.
inline float round_to_dtype(float v, int32_t dtype) {
  switch (dtype) {
    case UD_F32: return v;
    case UD_F16: return f16_to_f32(f32_to_f16(v));
    case UD_BF16: return bf16_to_f32(f32_to_bf16(v));
    case UD_F8E4M3: return f8e4m3_to_f32(f32_to_f8e4m3(v));
    default: return std::numeric_limits<float>::quiet_NaN();
  }
}

// Converts n contiguous elements of a buffer to f32.
inline void load_row_f32(const void *data, int32_t dtype, int64_t offset, int64_t n, float *out) {
  switch (dtype) {
    case UD_F32:
      std::memcpy(out, static_cast<const float *>(data) + offset, static_cast<size_t>(n) * 4);
      return;
    case UD_F16: {
      const uint16_t *p = static_cast<const uint16_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) out[i] = f16_to_f32(p[i]);
      return;
    }
    case UD_BF16: {
      const uint16_t *p = static_cast<const uint16_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case UD_F8E4M3: {
      const uint8_t *p = static_cast<const uint8_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) out[i] = f8e4m3_to_f32(p[i]);
      return;
    }
    default:
      for (int64_t i = 0; i < n; i++) out[i] = std::numeric_limits<float>::quiet_NaN();
      return;
  }
}

// Writes n f32 values into a buffer, rounding each to its dtype once.
inline void store_row_f32(void *data, int32_t dtype, int64_t offset, int64_t n, const float *in) {
  switch (dtype) {
    case UD_F32:
      std::memcpy(static_cast<float *>(data) + offset, in, static_cast<size_t>(n) * 4);
      return;
    case UD_F16: {
      uint16_t *p = static_cast<uint16_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) p[i] = f32_to_f16(in[i]);
      return;
    }
    case UD_BF16: {
      uint16_t *p = static_cast<uint16_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) p[i] = f32_to_bf16(in[i]);
      return;
    }
    case UD_F8E4M3: {
      uint8_t *p = static_cast<uint8_t *>(data) + offset;
      for (int64_t i = 0; i < n; i++) p[i] = f32_to_f8e4m3(in[i]);
      return;
    }
    default: return;
  }
}

}  // namespace updraft::cpu

#endif
