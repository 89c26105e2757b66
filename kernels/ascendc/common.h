// common.h — device-side helpers shared by the AscendC kernels: element types, 32-byte arithmetic,
// f32 staging of 16-bit rows, the per-block error slot, and the counter-based RNG of ops.h.
//
// Device code only (what runs on an AI core): no std::, no exceptions, no host calls. Every helper is
// `__aicore__ inline` so the same source compiles with bisheng.
#ifndef UPDRAFT_ASCENDC_COMMON_H
#define UPDRAFT_ASCENDC_COMMON_H

#include "kernel_operator.h"
#include "tiling.h"

namespace updraft_ascendc {

using namespace AscendC;

using f32 = float;
using f16 = half;
using bf16 = bfloat16_t;

constexpr uint32_t kBlockBytes = 32;     // the unit of every copy and of UB addressing
constexpr uint32_t kRepeatBytes = 256;   // one vector repeat (8 blocks)

__aicore__ inline uint32_t CeilDiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
__aicore__ inline uint32_t AlignUp(uint32_t a, uint32_t b) { return CeilDiv(a, b) * b; }
__aicore__ inline uint64_t CeilDiv64(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
__aicore__ inline uint32_t MinU(uint32_t a, uint32_t b) { return a < b ? a : b; }
__aicore__ inline uint64_t MinU64(uint64_t a, uint64_t b) { return a < b ? a : b; }
// Elements of T in one 32-byte block.
template <typename T> __aicore__ inline constexpr uint32_t BlockElems() { return kBlockBytes / sizeof(T); }

// The contiguous share [begin, end) of `total` work items that this block owns: blocks take equal
// slices in order, so each output element has exactly one writer.
__aicore__ inline void BlockShare(uint64_t total, uint64_t &begin, uint64_t &end) {
  const uint64_t blocks = GetBlockNum(), idx = GetBlockIdx();
  const uint64_t per = total / blocks, extra = total % blocks;
  begin = idx * per + (idx < extra ? idx : extra);
  end = begin + per + (idx < extra ? 1 : 0);
}

// GM -> UB of `count` elements of T (any length): one DataCopyPad block, zero-padded to the next
// 32-byte boundary so whole-block vector work after it reads no garbage.
template <typename T> __aicore__ inline void CopyInPadded(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint32_t count) {
  DataCopyExtParams p;
  p.blockCount = 1;
  p.blockLen = count * sizeof(T);
  p.srcStride = 0;
  p.dstStride = 0;
  DataCopyPadExtParams<T> pad;
  pad.isPad = true;
  pad.leftPadding = 0;
  pad.rightPadding = AlignUp(count, BlockElems<T>()) - count;
  pad.paddingValue = T(0);
  DataCopyPad(dst, src, p, pad);
}
// UB -> GM of `count` elements (any length).
template <typename T> __aicore__ inline void CopyOutPadded(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint32_t count) {
  DataCopyExtParams p;
  p.blockCount = 1;
  p.blockLen = count * sizeof(T);
  p.srcStride = 0;
  p.dstStride = 0;
  DataCopyPad(dst, src, p);
}

// dst (f32) = src (T), exactly. For f32 sources a multiply by one (a copy that keeps NaN and -0).
template <typename T> __aicore__ inline void ToF32(const LocalTensor<f32> &dst, const LocalTensor<T> &src, uint32_t count) {
  if constexpr (std::is_same<T, f32>::value) Muls(dst, src, 1.0f, count);
  else Cast(dst, src, RoundMode::CAST_NONE, count);
}
// dst (T) = src (f32) rounded to nearest even.
template <typename T> __aicore__ inline void FromF32(const LocalTensor<T> &dst, const LocalTensor<f32> &src, uint32_t count) {
  if constexpr (std::is_same<T, f32>::value) Muls(dst, src, 1.0f, count);
  else Cast(dst, src, RoundMode::CAST_RINT, count);
}
// x = round_to_dtype(x, T) in place, through `scratch` (ops.h: intermediates rounded as HF does).
template <typename T> __aicore__ inline void RoundTo(const LocalTensor<f32> &x, const LocalTensor<T> &scratch, uint32_t count) {
  if constexpr (!std::is_same<T, f32>::value) {
    Cast(scratch, x, RoundMode::CAST_RINT, count);
    Cast(x, scratch, RoundMode::CAST_NONE, count);
  }
}

// Scalar unit <-> vector unit handoffs on UB data (a value the scalar unit reads after a vector
// instruction wrote it, and the other way round).
__aicore__ inline void VectorToScalar() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::V_S);
  SetFlag<HardEvent::V_S>(e);
  WaitFlag<HardEvent::V_S>(e);
}
__aicore__ inline void ScalarToVector() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::S_V);
  SetFlag<HardEvent::S_V>(e);
  WaitFlag<HardEvent::S_V>(e);
}
__aicore__ inline void ScalarToCopyOut() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::S_MTE3);
  SetFlag<HardEvent::S_MTE3>(e);
  WaitFlag<HardEvent::S_MTE3>(e);
}
__aicore__ inline void VectorToCopyOut() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::V_MTE3);
  SetFlag<HardEvent::V_MTE3>(e);
  WaitFlag<HardEvent::V_MTE3>(e);
}
__aicore__ inline void CopyOutToVector() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE3_V);
  SetFlag<HardEvent::MTE3_V>(e);
  WaitFlag<HardEvent::MTE3_V>(e);
}
__aicore__ inline void CopyInToVector() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE2_V);
  SetFlag<HardEvent::MTE2_V>(e);
  WaitFlag<HardEvent::MTE2_V>(e);
}
__aicore__ inline void VectorToCopyIn() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::V_MTE2);
  SetFlag<HardEvent::V_MTE2>(e);
  WaitFlag<HardEvent::V_MTE2>(e);
}
__aicore__ inline void CopyOutToScalar() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE3_S);
  SetFlag<HardEvent::MTE3_S>(e);
  WaitFlag<HardEvent::MTE3_S>(e);
}
__aicore__ inline void CopyInToScalar() {
  event_t e = GetTPipePtr()->FetchEventID(HardEvent::MTE2_S);
  SetFlag<HardEvent::MTE2_S>(e);
  WaitFlag<HardEvent::MTE2_S>(e);
}

// Operand values only the device can check (ids read from GM): each block owns one 32-byte slot of the
// error area (so reports never race) and records its first error there, with the launch's index among
// those since the backend's last synchronize (the executor names the op from it: "launch #N"); the host
// formats it (dispatch.cpp). The area is shared by every launch until the backend clears it, so a report
// first reads the slot back and leaves an earlier launch's error in place (launches on a stream run in
// order): the host then finds the first failing launch, as CUDA's first-error record does. Costs 32 bytes
// of UB, and on the error path only one 32-byte GM read.
class ErrorSlot {
 public:
  __aicore__ inline void Init(TPipe &pipe, GM_ADDR errors, int32_t op, int32_t launch) {
    gm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(errors) + GetBlockIdx() * kErrorSlotInts, kErrorSlotInts);
    pipe.InitBuffer(buf_, kBlockBytes);
    op_ = op;
    launch_ = launch;
  }
  __aicore__ inline void Report(int32_t code, int32_t a, int32_t b, int32_t c) {
    if (reported_) return;
    reported_ = true;
    LocalTensor<int32_t> t = buf_.Get<int32_t>();
    DataCopy(t, gm_, kErrorSlotInts);
    CopyInToScalar();
    if (t.GetValue(0) != kDeviceErrorNone) return;  // an earlier launch's error stays
    t.SetValue(0, code);
    t.SetValue(1, op_);
    t.SetValue(2, a);
    t.SetValue(3, b);
    t.SetValue(4, c);
    t.SetValue(5, launch_);
    t.SetValue(6, 0);
    t.SetValue(7, 0);
    ScalarToCopyOut();
    DataCopy(gm_, t, kErrorSlotInts);
  }

 private:
  GlobalTensor<int32_t> gm_;
  TBuf<TPosition::VECCALC> buf_;
  int32_t op_ = 0;
  int32_t launch_ = 0;
  bool reported_ = false;
};

// ops.h's counter-based RNG, restated for device code (64-bit integer work on the scalar unit).
__aicore__ inline uint64_t Mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__aicore__ inline float Uniform(uint64_t seed, uint32_t counter) {
  const uint64_t r = Mix64(seed ^ Mix64(static_cast<uint64_t>(counter)));
  return static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
}

}  // namespace updraft_ascendc

#endif
