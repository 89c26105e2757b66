// shim_vector.h — the vector unit: element-wise arithmetic, scalar forms, Cast with rounding modes,
// Compare / Select with bit masks, reductions, and the repeat-form (mask + repeatTimes + strides)
// instructions the kernels use.
//
// Numerics: float arithmetic is IEEE f32 with separate roundings (no fused multiply-add); half results are
// computed in f32 and rounded to nearest even, once per instruction, as the vector unit writes them.
// Exp/Ln/Sqrt/Sin/Cos use the host's f32 libm: the chip's approximations differ in the last bits, which
// the shim cannot know. bfloat16_t is storage only on this vector unit: arithmetic on it is refused (Cast
// to float first), as is any operand in a memory other than UB.
#ifndef UPDRAFT_ASCENDC_SHIM_VECTOR_H
#define UPDRAFT_ASCENDC_SHIM_VECTOR_H

#include "shim_tensor.h"

namespace AscendC {

struct BinaryRepeatParams {
  BinaryRepeatParams() = default;
  BinaryRepeatParams(shim::Field<uint8_t> dst_blk, shim::Field<uint8_t> src0_blk, shim::Field<uint8_t> src1_blk, shim::Field<uint8_t> dst_rep,
                     shim::Field<uint8_t> src0_rep, shim::Field<uint8_t> src1_rep)
      : dstBlkStride(dst_blk), src0BlkStride(src0_blk), src1BlkStride(src1_blk), dstRepStride(dst_rep), src0RepStride(src0_rep), src1RepStride(src1_rep) {}
  shim::Field<uint8_t> dstBlkStride = 1;
  shim::Field<uint8_t> src0BlkStride = 1;
  shim::Field<uint8_t> src1BlkStride = 1;
  shim::Field<uint8_t> dstRepStride = 8;
  shim::Field<uint8_t> src0RepStride = 8;
  shim::Field<uint8_t> src1RepStride = 8;
};

namespace shim {

template <typename T> void require_arith_type(const char *op) {
  if constexpr (std::is_same<T, BFloat16>::value)
    violation("unsupported dtype", std::string(op) + " on bfloat16_t: the vector unit of this chip computes in half, float and integers; Cast to float first");
}
template <typename T> void require_ub(const LocalTensor<T> &t, const char *op) {
  if (region_of(t, op).mem != Mem::UB) violation("wrong memory", std::string(op) + " needs its operands in UB, got " + describe(t));
}

// Reads `count` elements of src (copied, so dst may alias it).
template <typename T> std::vector<T> read_vec(const LocalTensor<T> &src, uint64_t count, const char *op) {
  require_ub(src, op);
  const T *p = local_span(src, 0, count, PIPE_V, false, op);
  return std::vector<T>(p, p + count);
}
template <typename T> T *write_vec(const LocalTensor<T> &dst, uint64_t count, const char *op) {
  require_ub(dst, op);
  return local_span(dst, 0, count, PIPE_V, true, op);
}

// f(x) in f32 for float-like T (rounded back to T), in the type itself for integers.
template <typename T, typename F> T apply1(T a, F f) {
  if constexpr (is_float_like<T>()) return from_f32<T>(f(to_f32(a)));
  else return static_cast<T>(f(a));
}
template <typename T, typename F> T apply2(T a, T b, F f) {
  if constexpr (is_float_like<T>()) return from_f32<T>(f(to_f32(a), to_f32(b)));
  else return static_cast<T>(f(a, b));
}

template <typename T, typename F> void unary(const char *op, const LocalTensor<T> &dst, const LocalTensor<T> &src, uint32_t count, F f) {
  require_arith_type<T>(op);
  const std::vector<T> a = read_vec(src, count, op);
  T *d = write_vec(dst, count, op);
  for (uint32_t i = 0; i < count; i++) d[i] = apply1(a[i], f);
}
template <typename T, typename F>
void binary(const char *op, const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, uint32_t count, F f) {
  require_arith_type<T>(op);
  const std::vector<T> a = read_vec(src0, count, op), b = read_vec(src1, count, op);
  T *d = write_vec(dst, count, op);
  for (uint32_t i = 0; i < count; i++) d[i] = apply2(a[i], b[i], f);
}

// Repeat form: repeat r, block j (32 bytes) sits at (r * repStride + j * blkStride) * 32 bytes from the
// operand's start; the first `mask` elements of the 8 blocks of each repeat are processed.
template <typename T>
uint64_t repeat_offset(uint64_t r, uint64_t i, uint64_t rep_stride, uint64_t blk_stride) {
  constexpr uint64_t per_block = 32 / sizeof(T);
  return (r * rep_stride * 32 + (i / per_block) * blk_stride * 32) / sizeof(T) + i % per_block;
}
template <typename T, typename F>
void binary_repeat(const char *op, const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, uint64_t mask,
                   const Field<uint8_t> &repeat_times, const BinaryRepeatParams &p, F f) {
  require_arith_type<T>(op);
  constexpr uint64_t per_repeat = 256 / sizeof(T);
  if (mask == 0 || mask > per_repeat)
    violation("parameter out of range", std::string(op) + ": mask " + std::to_string(mask) + " outside [1, " + std::to_string(per_repeat) + "]");
  const uint64_t repeats = repeat_times.get("repeatTimes");
  const uint64_t db = p.dstBlkStride.get("dstBlkStride"), s0b = p.src0BlkStride.get("src0BlkStride"), s1b = p.src1BlkStride.get("src1BlkStride");
  const uint64_t dr = p.dstRepStride.get("dstRepStride"), s0r = p.src0RepStride.get("src0RepStride"), s1r = p.src1RepStride.get("src1RepStride");
  require_ub(dst, op);
  require_ub(src0, op);
  require_ub(src1, op);
  const View<T> a = view(src0, PIPE_V, false, op), b = view(src1, PIPE_V, false, op);
  std::vector<T> out(repeats * mask);
  for (uint64_t r = 0; r < repeats; r++)
    for (uint64_t i = 0; i < mask; i++)
      out[r * mask + i] = apply2(a.read(repeat_offset<T>(r, i, s0r, s0b)), b.read(repeat_offset<T>(r, i, s1r, s1b)), f);
  const View<T> d = view(dst, PIPE_V, true, op);
  for (uint64_t r = 0; r < repeats; r++)
    for (uint64_t i = 0; i < mask; i++) d.write(repeat_offset<T>(r, i, dr, db), out[r * mask + i]);
}

// Sum in a fixed tree order: pairs within groups of 64 (one 256-byte repeat of f32), then the group
// results the same way, level by level (the chip reduces a repeat at a time; its order inside one is
// not documented, so any fixed tree stands for it).
inline float tree_sum(std::vector<float> v) {
  if (v.empty()) return 0.0f;
  while (v.size() > 1) {
    std::vector<float> next;
    for (size_t g = 0; g < v.size(); g += 64) {
      const size_t n = std::min<size_t>(64, v.size() - g);
      std::vector<float> level(v.begin() + g, v.begin() + g + n);
      while (level.size() > 1) {
        std::vector<float> half((level.size() + 1) / 2);
        for (size_t i = 0; i < level.size() / 2; i++) half[i] = level[2 * i] + level[2 * i + 1];
        if (level.size() % 2) half.back() = level.back();
        level.swap(half);
      }
      next.push_back(level[0]);
    }
    v.swap(next);
  }
  return v[0];
}

template <typename T> bool compare(float a, float b, CMPMODE m) {
  switch (m) {
    case CMPMODE::LT: return a < b;
    case CMPMODE::GT: return a > b;
    case CMPMODE::EQ: return a == b;
    case CMPMODE::LE: return a <= b;
    case CMPMODE::GE: return a >= b;
    case CMPMODE::NE: return a != b;
  }
  return false;
}

}  // namespace shim

// ---------------------------------------------------------------------------------------------------
// Element-wise, count form: dst[i] = f(src...[i]) for i < count.
template <typename T> void Add(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  shim::binary("Add", d, a, b, n, [](auto x, auto y) { return x + y; });
}
template <typename T> void Sub(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  shim::binary("Sub", d, a, b, n, [](auto x, auto y) { return x - y; });
}
template <typename T> void Mul(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  shim::binary("Mul", d, a, b, n, [](auto x, auto y) { return x * y; });
}
template <typename T> void Div(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  static_assert(shim::is_float_like<T>(), "Div takes half or float");
  shim::binary("Div", d, a, b, n, [](float x, float y) { return x / y; });
}
template <typename T> void Max(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  shim::binary("Max", d, a, b, n, [](auto x, auto y) { return x > y ? x : y; });
}
template <typename T> void Min(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  shim::binary("Min", d, a, b, n, [](auto x, auto y) { return x < y ? x : y; });
}
// Bitwise, on 16-bit integers (how masks are combined).
template <typename T> void And(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  static_assert(std::is_same<T, uint16_t>::value || std::is_same<T, int16_t>::value, "And takes int16_t / uint16_t");
  shim::binary("And", d, a, b, n, [](auto x, auto y) { return x & y; });
}
template <typename T> void Or(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint32_t n) {
  static_assert(std::is_same<T, uint16_t>::value || std::is_same<T, int16_t>::value, "Or takes int16_t / uint16_t");
  shim::binary("Or", d, a, b, n, [](auto x, auto y) { return x | y; });
}

// Repeat forms (mask = elements per repeat, continuous mode).
template <typename T>
void Add(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint64_t mask, shim::Field<uint8_t> repeatTimes,
         const BinaryRepeatParams &p) {
  shim::binary_repeat("Add", d, a, b, mask, repeatTimes, p, [](auto x, auto y) { return x + y; });
}
template <typename T>
void Mul(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint64_t mask, shim::Field<uint8_t> repeatTimes,
         const BinaryRepeatParams &p) {
  shim::binary_repeat("Mul", d, a, b, mask, repeatTimes, p, [](auto x, auto y) { return x * y; });
}
template <typename T>
void Max(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, uint64_t mask, shim::Field<uint8_t> repeatTimes,
         const BinaryRepeatParams &p) {
  shim::binary_repeat("Max", d, a, b, mask, repeatTimes, p, [](auto x, auto y) { return x > y ? x : y; });
}

template <typename T> void Exp(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Exp", d, s, n, [](float x) { return std::exp(x); });
}
template <typename T> void Ln(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Ln", d, s, n, [](float x) { return std::log(x); });
}
template <typename T> void Sqrt(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Sqrt", d, s, n, [](float x) { return std::sqrt(x); });
}
template <typename T> void Abs(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Abs", d, s, n, [](auto x) { return x < 0 ? -x : x; });
}
template <typename T> void Reciprocal(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Reciprocal", d, s, n, [](float x) { return 1.0f / x; });
}
template <typename T> void Relu(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Relu", d, s, n, [](auto x) { return x > 0 ? x : decltype(x)(0); });
}
// Math-library forms (with or without a shared temporary buffer, which the shim does not need).
template <typename T> void Sin(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Sin", d, s, n, [](float x) { return std::sin(x); });
}
template <typename T> void Cos(const LocalTensor<T> &d, const LocalTensor<T> &s, uint32_t n) {
  shim::unary("Cos", d, s, n, [](float x) { return std::cos(x); });
}
template <typename T> void Sin(const LocalTensor<T> &d, const LocalTensor<T> &s, const LocalTensor<uint8_t> &, uint32_t n) { Sin(d, s, n); }
template <typename T> void Cos(const LocalTensor<T> &d, const LocalTensor<T> &s, const LocalTensor<uint8_t> &, uint32_t n) { Cos(d, s, n); }

// Scalar forms: dst[i] = src[i] op scalar.
template <typename T, typename S> void Muls(const LocalTensor<T> &d, const LocalTensor<T> &s, S v, uint32_t n) {
  const float f = static_cast<float>(v);
  shim::unary("Muls", d, s, n, [f](auto x) { return x * static_cast<decltype(x)>(f); });
}
template <typename T, typename S> void Adds(const LocalTensor<T> &d, const LocalTensor<T> &s, S v, uint32_t n) {
  const float f = static_cast<float>(v);
  shim::unary("Adds", d, s, n, [f](auto x) { return x + static_cast<decltype(x)>(f); });
}
template <typename T, typename S> void Maxs(const LocalTensor<T> &d, const LocalTensor<T> &s, S v, uint32_t n) {
  const float f = static_cast<float>(v);
  shim::unary("Maxs", d, s, n, [f](auto x) { return x > static_cast<decltype(x)>(f) ? x : static_cast<decltype(x)>(f); });
}
template <typename T, typename S> void Mins(const LocalTensor<T> &d, const LocalTensor<T> &s, S v, uint32_t n) {
  const float f = static_cast<float>(v);
  shim::unary("Mins", d, s, n, [f](auto x) { return x < static_cast<decltype(x)>(f) ? x : static_cast<decltype(x)>(f); });
}
// dst[i] = src[i] * scalar + dst[i] (two roundings in the shim).
template <typename T, typename S> void Axpy(const LocalTensor<T> &d, const LocalTensor<T> &s, S v, uint32_t n) {
  const char *op = "Axpy";
  shim::require_arith_type<T>(op);
  const float f = static_cast<float>(v);
  const std::vector<T> a = shim::read_vec(s, n, op), b = shim::read_vec(d, n, op);
  T *out = shim::write_vec(d, n, op);
  for (uint32_t i = 0; i < n; i++) out[i] = shim::from_f32<T>(shim::to_f32(a[i]) * f + shim::to_f32(b[i]));
}

// Brcb: each repeat takes 8 consecutive elements of src and fills one 32-byte block of dst with each
// (block j of repeat r at (r * dstRepStride + j * dstBlkStride) * 32 bytes): a per-row scalar ready for
// block-stride-0 repeat instructions.
struct BrcbRepeatParams {
  BrcbRepeatParams() = default;
  BrcbRepeatParams(shim::Field<uint16_t> blk, shim::Field<uint16_t> rep) : dstBlkStride(blk), dstRepStride(rep) {}
  shim::Field<uint16_t> dstBlkStride = 1;
  shim::Field<uint16_t> dstRepStride = 8;
};
template <typename T> void Brcb(const LocalTensor<T> &d, const LocalTensor<T> &s, shim::Field<uint8_t> repeatTimes, const BrcbRepeatParams &p) {
  const char *op = "Brcb";
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "Brcb takes 16- or 32-bit elements");
  constexpr uint64_t per_block = 32 / sizeof(T);
  const uint64_t repeats = repeatTimes.get("repeatTimes"), blk = p.dstBlkStride.get("dstBlkStride"), rep = p.dstRepStride.get("dstRepStride");
  const std::vector<T> x = shim::read_vec(s, repeats * 8, op);
  shim::require_ub(d, op);
  const shim::View<T> out = shim::view(d, PIPE_V, true, op);
  for (uint64_t r = 0; r < repeats; r++)
    for (uint64_t j = 0; j < 8; j++)
      for (uint64_t e = 0; e < per_block; e++) out.write((r * rep + j * blk) * per_block + e, x[r * 8 + j]);
}

// dst[i] = value for i < count.
template <typename T, typename S> void Duplicate(const LocalTensor<T> &d, S value, uint32_t n) {
  const T v = static_cast<T>(value);
  T *out = shim::write_vec(d, n, "Duplicate");
  for (uint32_t i = 0; i < n; i++) out[i] = v;
}

// Conversion with a rounding mode. Supported here: float <-> half, float <-> bfloat16_t, float <-> int32_t,
// half -> float; a pair the chip has no instruction for (half <-> bfloat16_t) is refused.
template <typename D, typename S> void Cast(const LocalTensor<D> &d, const LocalTensor<S> &s, RoundMode mode, uint32_t n) {
  const char *op = "Cast";
  const std::vector<S> in = shim::read_vec(s, n, op);
  D *out = shim::write_vec(d, n, op);
  constexpr bool widen16 = shim::is_float16<S>() && std::is_same<D, float>::value;
  constexpr bool narrow16 = std::is_same<S, float>::value && shim::is_float16<D>();
  constexpr bool f2i = std::is_same<S, float>::value && std::is_same<D, int32_t>::value;
  constexpr bool i2f = std::is_same<S, int32_t>::value && std::is_same<D, float>::value;
  if constexpr (widen16) {
    if (mode != RoundMode::CAST_NONE) shim::violation("unsupported cast", std::string("widening ") + shim::TypeName<S>::get() + " to float takes CAST_NONE");
    for (uint32_t i = 0; i < n; i++) out[i] = shim::to_f32(in[i]);
  } else if constexpr (narrow16) {
    if (std::is_same<D, bfloat16_t>::value && (mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_ODD))
      shim::violation("unsupported cast", std::string("float to bfloat16_t with ") + shim::round_mode_name(mode) + ": pick CAST_RINT / ROUND / FLOOR / CEIL / TRUNC");
    for (uint32_t i = 0; i < n; i++) {
      if constexpr (std::is_same<D, bfloat16_t>::value) out[i] = bfloat16_t::from_bits(shim::bf16_from_f32(in[i], mode));
      else out[i] = half::from_bits(shim::f16_from_f32(in[i], mode));
    }
  } else if constexpr (f2i) {
    for (uint32_t i = 0; i < n; i++) {
      const double x = in[i];
      const double q = std::floor(std::fabs(x));
      const double r = shim::round_magnitude(q, std::fabs(x) - q, x < 0, mode == RoundMode::CAST_NONE ? RoundMode::CAST_RINT : mode);
      out[i] = static_cast<int32_t>(x < 0 ? -r : r);
    }
  } else if constexpr (i2f) {
    for (uint32_t i = 0; i < n; i++) out[i] = static_cast<float>(in[i]);  // round to nearest even
  } else {
    shim::violation("unsupported cast", std::string("no Cast from ") + shim::TypeName<S>::get() + " to " + shim::TypeName<D>::get() + " on this chip");
  }
}

// Compare: bit i of the uint8_t mask = (src0[i] mode src1[i]). count * sizeof(T) must be a multiple of
// 256 bytes (whole repeats).
template <typename T> void Compare(const LocalTensor<uint8_t> &mask, const LocalTensor<T> &a, const LocalTensor<T> &b, CMPMODE mode, uint32_t n) {
  const char *op = "Compare";
  shim::require_arith_type<T>(op);
  if (uint64_t{n} * sizeof(T) % 256 != 0)
    shim::violation("misaligned count", std::string(op) + " of " + std::to_string(n) + " elements: the count form needs whole 256-byte repeats");
  const std::vector<T> x = shim::read_vec(a, n, op), y = shim::read_vec(b, n, op);
  uint8_t *m = shim::write_vec(mask, n / 8, op);
  for (uint32_t i = 0; i < n; i += 8) {
    uint8_t bits = 0;
    for (uint32_t j = 0; j < 8; j++) bits |= static_cast<uint8_t>(shim::compare<T>(shim::to_f32(x[i + j]), shim::to_f32(y[i + j]), mode)) << j;
    m[i / 8] = bits;
  }
}
template <typename T, typename S> void CompareScalar(const LocalTensor<uint8_t> &mask, const LocalTensor<T> &a, S scalar, CMPMODE mode, uint32_t n) {
  const char *op = "CompareScalar";
  shim::require_arith_type<T>(op);
  if (uint64_t{n} * sizeof(T) % 256 != 0)
    shim::violation("misaligned count", std::string(op) + " of " + std::to_string(n) + " elements: the count form needs whole 256-byte repeats");
  const std::vector<T> x = shim::read_vec(a, n, op);
  const float s = static_cast<float>(scalar);
  uint8_t *m = shim::write_vec(mask, n / 8, op);
  for (uint32_t i = 0; i < n; i += 8) {
    uint8_t bits = 0;
    for (uint32_t j = 0; j < 8; j++) bits |= static_cast<uint8_t>(shim::compare<T>(shim::to_f32(x[i + j]), s, mode)) << j;
    m[i / 8] = bits;
  }
}
// Select: dst[i] = bit i of mask ? src0[i] : src1[i] (or the scalar).
template <typename T>
void Select(const LocalTensor<T> &d, const LocalTensor<uint8_t> &mask, const LocalTensor<T> &a, const LocalTensor<T> &b, SELMODE mode, uint32_t n) {
  const char *op = "Select";
  if (mode != SELMODE::VSEL_TENSOR_TENSOR_MODE) shim::violation("unsupported mode", "Select with two tensors takes VSEL_TENSOR_TENSOR_MODE");
  const std::vector<uint8_t> m = shim::read_vec(mask, (n + 7) / 8, op);
  const std::vector<T> x = shim::read_vec(a, n, op), y = shim::read_vec(b, n, op);
  T *out = shim::write_vec(d, n, op);
  for (uint32_t i = 0; i < n; i++) out[i] = (m[i / 8] >> (i % 8)) & 1 ? x[i] : y[i];
}
template <typename T, typename S>
void Select(const LocalTensor<T> &d, const LocalTensor<uint8_t> &mask, const LocalTensor<T> &a, S scalar, SELMODE mode, uint32_t n) {
  const char *op = "Select";
  if (mode != SELMODE::VSEL_TENSOR_SCALAR_MODE) shim::violation("unsupported mode", "Select with a scalar takes VSEL_TENSOR_SCALAR_MODE");
  const std::vector<uint8_t> m = shim::read_vec(mask, (n + 7) / 8, op);
  const std::vector<T> x = shim::read_vec(a, n, op);
  const T s = static_cast<T>(scalar);
  T *out = shim::write_vec(d, n, op);
  for (uint32_t i = 0; i < n; i++) out[i] = (m[i / 8] >> (i % 8)) & 1 ? x[i] : s;
}

namespace shim {
// Work buffer of the count-form reductions: the chip keeps per-repeat partial results there, so it must
// hold one element per 256-byte repeat of the input (at least 32 bytes); afterwards it is garbage.
template <typename T> void reduce_work(const LocalTensor<T> &work, uint32_t n, const char *op) {
  const uint32_t repeats = (n * sizeof(T) + 255) / 256;
  const uint32_t need = std::max<uint32_t>(repeats, 32 / sizeof(T));
  require_ub(work, op);
  if (work.GetSize() < need)
    violation("work buffer too small", std::string(op) + " of " + std::to_string(n) + " elements needs a work tensor of " + std::to_string(need) +
                                           " elements, got " + std::to_string(work.GetSize()));
  local_bytes(work, 0, need * sizeof(T), PIPE_V, true, op, true, /*garbage=*/true);
}
}  // namespace shim

// dst[0] = max of src[0, count); with calIndex, dst[1] holds the index of the first maximum as uint32_t
// bits (read it with ReinterpretCast<uint32_t>). NaN is not ordered: keep it out of the input.
template <typename T>
void ReduceMax(const LocalTensor<T> &d, const LocalTensor<T> &s, const LocalTensor<T> &work, int32_t n, bool calIndex = false) {
  const char *op = "ReduceMax";
  shim::require_arith_type<T>(op);
  if (n <= 0) shim::violation("empty reduction", "ReduceMax of " + std::to_string(n) + " elements");
  if (calIndex && !std::is_same<T, float>::value) shim::violation("not emulated", "ReduceMax with calIndex on a type other than float");
  const std::vector<T> x = shim::read_vec(s, n, op);
  shim::reduce_work(work, n, op);
  uint32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    if (shim::to_f32(x[i]) > shim::to_f32(x[best])) best = i;
  T *out = shim::write_vec(d, calIndex ? 2 : 1, op);
  out[0] = x[best];
  if (calIndex) std::memcpy(&out[1], &best, sizeof(uint32_t));
}
template <typename T>
void ReduceMin(const LocalTensor<T> &d, const LocalTensor<T> &s, const LocalTensor<T> &work, int32_t n, bool calIndex = false) {
  const char *op = "ReduceMin";
  shim::require_arith_type<T>(op);
  if (n <= 0) shim::violation("empty reduction", "ReduceMin of " + std::to_string(n) + " elements");
  if (calIndex && !std::is_same<T, float>::value) shim::violation("not emulated", "ReduceMin with calIndex on a type other than float");
  const std::vector<T> x = shim::read_vec(s, n, op);
  shim::reduce_work(work, n, op);
  uint32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    if (shim::to_f32(x[i]) < shim::to_f32(x[best])) best = i;
  T *out = shim::write_vec(d, calIndex ? 2 : 1, op);
  out[0] = x[best];
  if (calIndex) std::memcpy(&out[1], &best, sizeof(uint32_t));
}
// dst[0] = sum of src[0, count) in a fixed tree order.
template <typename T> void ReduceSum(const LocalTensor<T> &d, const LocalTensor<T> &s, const LocalTensor<T> &work, int32_t n) {
  const char *op = "ReduceSum";
  shim::require_arith_type<T>(op);
  if (n <= 0) shim::violation("empty reduction", "ReduceSum of " + std::to_string(n) + " elements");
  const std::vector<T> x = shim::read_vec(s, n, op);
  shim::reduce_work(work, n, op);
  std::vector<float> v(n);
  for (int32_t i = 0; i < n; i++) v[i] = shim::to_f32(x[i]);
  T *out = shim::write_vec(d, 1, op);
  out[0] = shim::from_f32<T>(shim::tree_sum(v));
}

// Per repeat r: the sum of the first `mask` elements of the repeat's 8 blocks, written to
// dst[r * dstRepStride].
template <typename T>
void WholeReduceSum(const LocalTensor<T> &d, const LocalTensor<T> &s, int32_t mask, shim::Field<uint8_t> repeatTimes, int32_t dstRepStride,
                    int32_t srcBlkStride, int32_t srcRepStride) {
  const char *op = "WholeReduceSum";
  shim::require_arith_type<T>(op);
  constexpr int32_t per_repeat = 256 / sizeof(T);
  if (mask <= 0 || mask > per_repeat) shim::violation("parameter out of range", std::string(op) + ": mask " + std::to_string(mask));
  const shim::Field<uint8_t> blk(srcBlkStride), srep(srcRepStride);
  const shim::Field<uint16_t> drep(dstRepStride);
  const uint64_t repeats = repeatTimes.get("repeatTimes"), sb = blk.get("srcBlkStride"), sr = srep.get("srcRepStride"), dr = drep.get("dstRepStride");
  shim::require_ub(s, op);
  shim::require_ub(d, op);
  const shim::View<T> in = shim::view(s, PIPE_V, false, op);
  std::vector<float> sums(repeats);
  for (uint64_t r = 0; r < repeats; r++) {
    std::vector<float> v(mask);
    for (int32_t i = 0; i < mask; i++) v[i] = shim::to_f32(in.read(shim::repeat_offset<T>(r, i, sr, sb)));
    sums[r] = shim::tree_sum(v);
  }
  const shim::View<T> out = shim::view(d, PIPE_V, true, op);
  for (uint64_t r = 0; r < repeats; r++) out.write(r * dr, shim::from_f32<T>(sums[r]));
}
// Per repeat r: the max of the first `mask` elements (and, by `order`, its index within the repeat as
// uint32_t bits), written at dst[r * dstRepStride * (pair ? 2 : 1)].
template <typename T>
void WholeReduceMax(const LocalTensor<T> &d, const LocalTensor<T> &s, int32_t mask, shim::Field<uint8_t> repeatTimes, int32_t dstRepStride,
                    int32_t srcBlkStride, int32_t srcRepStride, ReduceOrder order = ReduceOrder::ORDER_VALUE_INDEX) {
  const char *op = "WholeReduceMax";
  shim::require_arith_type<T>(op);
  constexpr int32_t per_repeat = 256 / sizeof(T);
  if (mask <= 0 || mask > per_repeat) shim::violation("parameter out of range", std::string(op) + ": mask " + std::to_string(mask));
  if (order != ReduceOrder::ORDER_ONLY_VALUE && !std::is_same<T, float>::value) shim::violation("not emulated", "WholeReduceMax indices on a type other than float");
  const shim::Field<uint8_t> blk(srcBlkStride), srep(srcRepStride);
  const shim::Field<uint16_t> drep(dstRepStride);
  const uint64_t repeats = repeatTimes.get("repeatTimes"), sb = blk.get("srcBlkStride"), sr = srep.get("srcRepStride"), dr = drep.get("dstRepStride");
  shim::require_ub(s, op);
  shim::require_ub(d, op);
  const shim::View<T> in = shim::view(s, PIPE_V, false, op);
  std::vector<std::pair<T, uint32_t>> best(repeats);
  for (uint64_t r = 0; r < repeats; r++) {
    best[r] = {in.read(shim::repeat_offset<T>(r, 0, sr, sb)), 0};
    for (int32_t i = 1; i < mask; i++) {
      const T v = in.read(shim::repeat_offset<T>(r, i, sr, sb));
      if (shim::to_f32(v) > shim::to_f32(best[r].first)) best[r] = {v, static_cast<uint32_t>(i)};
    }
  }
  const shim::View<T> out = shim::view(d, PIPE_V, true, op);
  const uint64_t width = order == ReduceOrder::ORDER_ONLY_VALUE || order == ReduceOrder::ORDER_ONLY_INDEX ? 1 : 2;
  for (uint64_t r = 0; r < repeats; r++) {
    T idx;
    std::memcpy(&idx, &best[r].second, sizeof(T) < 4 ? sizeof(T) : 4);
    const uint64_t at = r * dr * width;
    switch (order) {
      case ReduceOrder::ORDER_VALUE_INDEX: out.write(at, best[r].first); out.write(at + 1, idx); break;
      case ReduceOrder::ORDER_INDEX_VALUE: out.write(at, idx); out.write(at + 1, best[r].first); break;
      case ReduceOrder::ORDER_ONLY_VALUE: out.write(at, best[r].first); break;
      case ReduceOrder::ORDER_ONLY_INDEX: out.write(at, idx); break;
    }
  }
}

}  // namespace AscendC

#endif
