// shim_copy.h — data movement: DataCopy (GM <-> UB, GM -> L1 with ND->Nz conversion, UB -> UB) and
// DataCopyPad (unaligned lengths, padding).
//
// Rules enforced: DataCopy moves whole 32-byte blocks (its length must be a multiple of 32 bytes);
// local operands start 32-byte aligned; every GM access stays inside the GlobalTensor's extent; u16
// parameters must fit; copies run on their pipes (MTE2 into local memory, MTE3 out of UB) for the hazard
// checks. DataCopyPad's destination blocks in UB start at 32-byte boundaries; bytes between a block's
// end and the next boundary are garbage on the chip unless padded, and the shim treats them so.
#ifndef UPDRAFT_ASCENDC_SHIM_COPY_H
#define UPDRAFT_ASCENDC_SHIM_COPY_H

#include "shim_tensor.h"

namespace AscendC {

// Block copy parameters. blockLen is in 32-byte units for DataCopy and in bytes for DataCopyPad; the
// strides are gaps between blocks (end of one to start of the next).
struct DataCopyParams {
  DataCopyParams() = default;
  DataCopyParams(shim::Field<uint16_t> count, shim::Field<uint16_t> len, shim::Field<uint16_t> src_stride, shim::Field<uint16_t> dst_stride)
      : blockCount(count), blockLen(len), srcStride(src_stride), dstStride(dst_stride) {}
  shim::Field<uint16_t> blockCount = 1;
  shim::Field<uint16_t> blockLen = 0;
  shim::Field<uint16_t> srcStride = 0;
  shim::Field<uint16_t> dstStride = 0;
};

// DataCopyPad's wider parameters: blockLen in bytes; GM-side stride in bytes, UB-side stride in 32-byte
// blocks.
struct DataCopyExtParams {
  DataCopyExtParams() = default;
  DataCopyExtParams(shim::Field<uint16_t> count, shim::Field<uint32_t> len, shim::Field<uint32_t> src_stride,
                    shim::Field<uint32_t> dst_stride, shim::Field<uint32_t> reserved)
      : blockCount(count), blockLen(len), srcStride(src_stride), dstStride(dst_stride), rsv(reserved) {}
  shim::Field<uint16_t> blockCount = 1;
  shim::Field<uint32_t> blockLen = 0;
  shim::Field<uint32_t> srcStride = 0;
  shim::Field<uint32_t> dstStride = 0;
  shim::Field<uint32_t> rsv = 0;
};

// Padding of each block on its way into UB: leftPadding / rightPadding elements of paddingValue.
template <typename T> struct DataCopyPadExtParams {
  DataCopyPadExtParams() = default;
  DataCopyPadExtParams(bool is_pad, shim::Field<uint8_t> left, shim::Field<uint8_t> right, T value)
      : isPad(is_pad), leftPadding(left), rightPadding(right), paddingValue(value) {}
  bool isPad = false;
  shim::Field<uint8_t> leftPadding = 0;
  shim::Field<uint8_t> rightPadding = 0;
  T paddingValue = T();
};
struct DataCopyPadParams {
  DataCopyPadParams() = default;
  DataCopyPadParams(bool is_pad, shim::Field<uint8_t> left, shim::Field<uint8_t> right, uint64_t value)
      : isPad(is_pad), leftPadding(left), rightPadding(right), paddingValue(value) {}
  bool isPad = false;
  shim::Field<uint8_t> leftPadding = 0;
  shim::Field<uint8_t> rightPadding = 0;
  uint64_t paddingValue = 0;
};

// ND -> Nz conversion on the way from GM into L1 (see DataCopy below).
struct Nd2NzParams {
  Nd2NzParams() = default;
  shim::Field<uint16_t> ndNum = 1;
  shim::Field<uint16_t> nValue = 0;
  shim::Field<uint16_t> dValue = 0;
  shim::Field<uint16_t> srcNdMatrixStride = 0;
  shim::Field<uint16_t> srcDValue = 0;
  shim::Field<uint16_t> dstNzC0Stride = 0;
  shim::Field<uint16_t> dstNzNStride = 1;
  shim::Field<uint16_t> dstNzMatrixStride = 0;
};

namespace shim {

inline void require_mem(Mem m, std::initializer_list<Mem> allowed, const char *op) {
  for (Mem a : allowed)
    if (a == m) return;
  violation("unsupported data path", std::string(op) + " cannot move data in or out of " + mem_name(m));
}

template <typename T> Mem mem_of_tensor(const LocalTensor<T> &t, const char *op) { return region_of(t, op).mem; }

// Strided block copy between GM and local memory, all units in bytes.
template <typename T>
void gm_to_local_blocks(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint64_t count, uint64_t len, uint64_t src_gap,
                        uint64_t dst_gap, const char *op) {
  for (uint64_t i = 0; i < count; i++) {
    const uint64_t s = i * (len + src_gap), d = i * (len + dst_gap);
    const T *from = src.span(s / sizeof(T), len / sizeof(T), false, op);
    uint8_t *to = local_bytes(dst, d, len, PIPE_MTE2, true, op);
    std::memcpy(to, from, len);
  }
}

template <typename T>
void local_to_gm_blocks(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint64_t count, uint64_t len, uint64_t src_gap,
                        uint64_t dst_gap, const char *op) {
  Device &dev = *cur().device;
  for (uint64_t i = 0; i < count; i++) {
    const uint64_t s = i * (len + src_gap), d = i * (len + dst_gap);
    const uint8_t *from = local_bytes(src, s, len, PIPE_MTE3, false, op);
    T *to = dst.span(d / sizeof(T), len / sizeof(T), true, op);
    dev.gm_write(to, from, len);
  }
}

inline void require_whole_blocks(uint64_t bytes, const char *op, const char *what) {
  if (bytes % 32 != 0)
    violation("misaligned copy", std::string(op) + ": " + what + " is " + std::to_string(bytes) +
                                     " bytes, not a multiple of 32 (DataCopy moves whole 32-byte blocks; use DataCopyPad for tails)");
}

}  // namespace shim

// GM -> UB or L1, contiguous: count elements, a multiple of 32 bytes.
template <typename T> void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint32_t count) {
  const char *op = "DataCopy(GM->local)";
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::UB, shim::Mem::L1}, op);
  shim::require_whole_blocks(uint64_t{count} * sizeof(T), op, "the length");
  shim::gm_to_local_blocks(dst, src, 1, uint64_t{count} * sizeof(T), 0, 0, op);
}
// UB -> GM, contiguous.
template <typename T> void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint32_t count) {
  const char *op = "DataCopy(UB->GM)";
  shim::require_mem(shim::mem_of_tensor(src, op), {shim::Mem::UB}, op);
  shim::require_whole_blocks(uint64_t{count} * sizeof(T), op, "the length");
  shim::local_to_gm_blocks(dst, src, 1, uint64_t{count} * sizeof(T), 0, 0, op);
}
// UB -> UB (vector pipe), contiguous.
template <typename T> void DataCopy(const LocalTensor<T> &dst, const LocalTensor<T> &src, uint32_t count) {
  const char *op = "DataCopy(UB->UB)";
  shim::require_mem(shim::mem_of_tensor(src, op), {shim::Mem::UB}, op);
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::UB}, op);
  shim::require_whole_blocks(uint64_t{count} * sizeof(T), op, "the length");
  const uint8_t *from = shim::local_bytes(src, 0, uint64_t{count} * sizeof(T), PIPE_V, false, op);
  std::vector<uint8_t> tmp(from, from + uint64_t{count} * sizeof(T));
  uint8_t *to = shim::local_bytes(dst, 0, tmp.size(), PIPE_V, true, op);
  std::memcpy(to, tmp.data(), tmp.size());
}

// Strided forms: blockCount blocks of blockLen 32-byte units, gaps in 32-byte units on both sides.
template <typename T> void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const DataCopyParams &p) {
  const char *op = "DataCopy(GM->local, DataCopyParams)";
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::UB, shim::Mem::L1}, op);
  shim::gm_to_local_blocks(dst, src, p.blockCount.get("blockCount"), uint64_t{p.blockLen.get("blockLen")} * 32,
                           uint64_t{p.srcStride.get("srcStride")} * 32, uint64_t{p.dstStride.get("dstStride")} * 32, op);
}
template <typename T> void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyParams &p) {
  const char *op = "DataCopy(UB->GM, DataCopyParams)";
  shim::require_mem(shim::mem_of_tensor(src, op), {shim::Mem::UB}, op);
  shim::local_to_gm_blocks(dst, src, p.blockCount.get("blockCount"), uint64_t{p.blockLen.get("blockLen")} * 32,
                           uint64_t{p.srcStride.get("srcStride")} * 32, uint64_t{p.dstStride.get("dstStride")} * 32, op);
}
template <typename T> void DataCopy(const LocalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyParams &p) {
  const char *op = "DataCopy(UB->UB, DataCopyParams)";
  shim::require_mem(shim::mem_of_tensor(src, op), {shim::Mem::UB}, op);
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::UB}, op);
  const uint64_t count = p.blockCount.get("blockCount"), len = uint64_t{p.blockLen.get("blockLen")} * 32;
  const uint64_t sg = uint64_t{p.srcStride.get("srcStride")} * 32, dg = uint64_t{p.dstStride.get("dstStride")} * 32;
  for (uint64_t i = 0; i < count; i++) {
    const uint8_t *from = shim::local_bytes(src, i * (len + sg), len, PIPE_V, false, op);
    std::vector<uint8_t> tmp(from, from + len);
    std::memcpy(shim::local_bytes(dst, i * (len + dg), len, PIPE_V, true, op), tmp.data(), len);
  }
}

// GM -> L1 with ND -> Nz conversion. Matrix k (of ndNum), row n (< nValue), column d (< dValue) of the
// row-major source (rows srcDValue elements apart, matrices srcNdMatrixStride apart) lands at
//   k * dstNzMatrixStride + (d / C0) * dstNzC0Stride * C0 + n * dstNzNStride * C0 + d % C0
// with C0 = 32 bytes / sizeof(T): columns are cut into 32-byte strips and each strip's rows are stored
// one after another. A partial last strip is zero-filled up to C0 (the fractal format's padding);
// rows past nValue are not written. (Assumption to confirm on a chip: the zero fill of the last strip.)
template <typename T> void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const Nd2NzParams &p) {
  const char *op = "DataCopy(GM->L1, Nd2NzParams)";
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::L1}, op);
  constexpr uint64_t c0 = 32 / sizeof(T);
  const uint64_t nd = p.ndNum.get("ndNum"), n = p.nValue.get("nValue"), d = p.dValue.get("dValue");
  const uint64_t src_mat = p.srcNdMatrixStride.get("srcNdMatrixStride"), src_row = p.srcDValue.get("srcDValue");
  const uint64_t c0_stride = p.dstNzC0Stride.get("dstNzC0Stride"), n_stride = p.dstNzNStride.get("dstNzNStride");
  const uint64_t dst_mat = p.dstNzMatrixStride.get("dstNzMatrixStride");
  if (n > 0 && d > src_row) shim::violation("invalid Nd2NzParams", "dValue " + std::to_string(d) + " exceeds the source row stride srcDValue " + std::to_string(src_row));
  const uint64_t strips = (d + c0 - 1) / c0;
  for (uint64_t k = 0; k < nd; k++) {
    for (uint64_t row = 0; row < n; row++) {
      const T *from = src.span(k * src_mat + row * src_row, d, false, op);
      for (uint64_t s = 0; s < strips; s++) {
        const uint64_t at = k * dst_mat + s * c0_stride * c0 + row * n_stride * c0;
        T *to = shim::local_span(dst, at, c0, PIPE_MTE2, true, op, true);
        for (uint64_t j = 0; j < c0; j++) {
          const uint64_t col = s * c0 + j;
          to[j] = col < d ? from[col] : T();
        }
      }
    }
  }
}

// GM -> UB, unaligned: blockCount blocks of blockLen bytes, srcStride bytes apart in GM (gap), each landing
// at a 32-byte boundary in UB with dstStride 32-byte blocks between them (gap). With isPad, leftPadding
// and rightPadding elements of paddingValue surround each block; the rest of its last 32 bytes is garbage.
template <typename T>
void DataCopyPad(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const DataCopyExtParams &p, const DataCopyPadExtParams<T> &pad) {
  const char *op = "DataCopyPad(GM->UB)";
  shim::require_mem(shim::mem_of_tensor(dst, op), {shim::Mem::UB}, op);
  const uint64_t count = p.blockCount.get("blockCount"), len = p.blockLen.get("blockLen");
  const uint64_t src_gap = p.srcStride.get("srcStride"), dst_gap = uint64_t{p.dstStride.get("dstStride")} * 32;
  const uint64_t left = pad.isPad ? pad.leftPadding.get("leftPadding") : 0, right = pad.isPad ? pad.rightPadding.get("rightPadding") : 0;
  if (len % sizeof(T) != 0) shim::violation("invalid DataCopyPad", "blockLen " + std::to_string(len) + " is not a whole number of elements");
  if ((left + right) * sizeof(T) > 32 || left * sizeof(T) >= 32 || right * sizeof(T) >= 32)
    shim::violation("invalid DataCopyPad", "padding of " + std::to_string(left) + " + " + std::to_string(right) + " elements exceeds one 32-byte block");
  const uint64_t used = left * sizeof(T) + len + right * sizeof(T);
  const uint64_t span = (used + 31) / 32 * 32;
  for (uint64_t i = 0; i < count; i++) {
    const uint64_t base = i * (span + dst_gap);
    const T *from = src.span(i * (len + src_gap) / sizeof(T), len / sizeof(T), false, op);
    if (i * (len + src_gap) % sizeof(T) != 0) shim::violation("invalid DataCopyPad", "srcStride is not a whole number of elements");
    uint8_t *to = shim::local_bytes(dst, base, span, PIPE_MTE2, true, op);
    T *elems = reinterpret_cast<T *>(to);
    for (uint64_t j = 0; j < left; j++) elems[j] = pad.paddingValue;
    std::memcpy(to + left * sizeof(T), from, len);
    for (uint64_t j = 0; j < right; j++) elems[left + len / sizeof(T) + j] = pad.paddingValue;
    if (span > used) shim::local_bytes(dst, base + used, span - used, PIPE_MTE2, true, op, false, /*garbage=*/true);
  }
}
template <typename T>
void DataCopyPad(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const DataCopyParams &p, const DataCopyPadParams &pad) {
  DataCopyExtParams e;
  e.blockCount = p.blockCount.get("blockCount");
  e.blockLen = p.blockLen.get("blockLen");
  e.srcStride = p.srcStride.get("srcStride");
  e.dstStride = p.dstStride.get("dstStride");
  T value;
  std::memcpy(&value, &pad.paddingValue, sizeof(T) < 8 ? sizeof(T) : 8);
  DataCopyPad(dst, src, e, DataCopyPadExtParams<T>(pad.isPad, pad.leftPadding.get("leftPadding"), pad.rightPadding.get("rightPadding"), value));
}

// UB -> GM, unaligned: blockCount blocks of blockLen bytes, each starting at a 32-byte boundary in UB
// with srcStride 32-byte blocks between them (gap), written dstStride bytes apart in GM (gap).
template <typename T> void DataCopyPad(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyExtParams &p) {
  const char *op = "DataCopyPad(UB->GM)";
  shim::require_mem(shim::mem_of_tensor(src, op), {shim::Mem::UB}, op);
  const uint64_t count = p.blockCount.get("blockCount"), len = p.blockLen.get("blockLen");
  const uint64_t src_gap = uint64_t{p.srcStride.get("srcStride")} * 32, dst_gap = p.dstStride.get("dstStride");
  if (len % sizeof(T) != 0 || dst_gap % sizeof(T) != 0) shim::violation("invalid DataCopyPad", "blockLen and dstStride must be whole elements");
  const uint64_t span = (len + 31) / 32 * 32;
  shim::Device &dev = *shim::cur().device;
  for (uint64_t i = 0; i < count; i++) {
    const uint8_t *from = shim::local_bytes(src, i * (span + src_gap), len, PIPE_MTE3, false, op);
    T *to = dst.span(i * (len + dst_gap) / sizeof(T), len / sizeof(T), true, op);
    dev.gm_write(to, from, len);
  }
}
template <typename T> void DataCopyPad(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyParams &p) {
  DataCopyExtParams e;
  e.blockCount = p.blockCount.get("blockCount");
  e.blockLen = p.blockLen.get("blockLen");
  e.srcStride = p.srcStride.get("srcStride");
  e.dstStride = p.dstStride.get("dstStride");
  DataCopyPad(dst, src, e);
}

}  // namespace AscendC

#endif
