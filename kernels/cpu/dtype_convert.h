// dtype_convert.h — scalar conversions between f32 and the 16-bit float formats.
//
// Shared by the CPU kernels and by the executor's host-side weight conversion, so a weight loaded
// from a bf16 file and a bf16 activation written by a kernel round the same way (round to nearest,
// ties to even, NaN kept NaN).
#ifndef UPDRAFT_CPU_DTYPE_CONVERT_H
#define UPDRAFT_CPU_DTYPE_CONVERT_H

#include <cstdint>
#include <cstring>

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
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  uint32_t v = abs - 0x38000000u;
  v += 0xfffu + ((v >> 13) & 1u);
  return static_cast<uint16_t>(sign | (v >> 13));
}

// Loads element i of a buffer of dtype `dtype` (a float dtype) as f32.
inline float load_as_f32(const void *data, int32_t dtype, int64_t i) {
  switch (dtype) {
    case 0: return static_cast<const float *>(data)[i];                       // UD_F32
    case 1: return f16_to_f32(static_cast<const uint16_t *>(data)[i]);        // UD_F16
    default: return bf16_to_f32(static_cast<const uint16_t *>(data)[i]);      // UD_BF16
  }
}

// Stores an f32 value into element i of a float buffer, rounding to the buffer's dtype.
inline void store_from_f32(void *data, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case 0: static_cast<float *>(data)[i] = v; break;
    case 1: static_cast<uint16_t *>(data)[i] = f32_to_f16(v); break;
    default: static_cast<uint16_t *>(data)[i] = f32_to_bf16(v); break;
  }
}

// Rounds an f32 value to what a buffer of `dtype` would hold, keeping it in f32.
inline float round_to_dtype(float v, int32_t dtype) {
  switch (dtype) {
    case 0: return v;
    case 1: return f16_to_f32(f32_to_f16(v));
    default: return bf16_to_f32(f32_to_bf16(v));
  }
}

// Converts n contiguous elements of a float buffer to f32.
inline void load_row_f32(const void *data, int32_t dtype, int64_t offset, int64_t n, float *out) {
  if (dtype == 0) {
    std::memcpy(out, static_cast<const float *>(data) + offset, static_cast<size_t>(n) * 4);
    return;
  }
  const uint16_t *p = static_cast<const uint16_t *>(data) + offset;
  if (dtype == 1) {
    for (int64_t i = 0; i < n; i++) out[i] = f16_to_f32(p[i]);
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(p[i]);
  }
}

// Writes n f32 values into a float buffer, rounding to its dtype.
inline void store_row_f32(void *data, int32_t dtype, int64_t offset, int64_t n, const float *in) {
  if (dtype == 0) {
    std::memcpy(static_cast<float *>(data) + offset, in, static_cast<size_t>(n) * 4);
    return;
  }
  uint16_t *p = static_cast<uint16_t *>(data) + offset;
  if (dtype == 1) {
    for (int64_t i = 0; i < n; i++) p[i] = f32_to_f16(in[i]);
  } else {
    for (int64_t i = 0; i < n; i++) p[i] = f32_to_bf16(in[i]);
  }
}

}  // namespace updraft::cpu

#endif
