// UD_OP_ROPE_KV_WRITE: rotate-half RoPE on the q and k heads of each token, q to q_out, k and v into the
// paged cache row slot_mapping[t] (skipped for -1; a slot outside the cache is reported). As the CPU
// reference: angle = float(position) * inv_freq[i] in f32, cos/sin of that, each rotated value computed
// in f32 (a*cos - b*sin, b*cos + a*sin, one rounding per operation) and rounded once to its dtype.
//
// Vector cores; tokens are shared out in contiguous ranges. Heads need not be 32-byte multiples
// (head_dim 12 is legal), so each head's two rotary halves and its pass-through tail are copied with one
// strided DataCopyPad each into UB rows padded to 16 elements, computed head by head, and written back
// the same way. Heads go through UB in groups sized to fit the UB budget.
#include <algorithm>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename T, typename TQ, typename TC> class RopeKvWriteKernel {
 public:
  __aicore__ inline void Run(GM_ADDR qkv, GM_ADDR positions, GM_ADDR inv_freq, GM_ADDR slot_mapping, GM_ADDR q_out, GM_ADDR k_cache,
                             GM_ADDR v_cache, GM_ADDR errors, int32_t launch, const RopeTiling &t) {
    t_ = t;
    half_ = t.rotary_dim / 2;
    pass_ = t.head_dim - t.rotary_dim;
    row_ = (t.num_heads + 2 * t.num_kv_heads) * t.head_dim;
    kv_row_ = t.num_kv_heads * t.head_dim;
    qkv_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(qkv), uint64_t{t.num_tokens} * row_);  // [T, H + 2KV, D]
    pos_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(positions), t.num_tokens);      // [T]
    if (half_ > 0) freq_.SetGlobalBuffer(reinterpret_cast<__gm__ f32 *>(inv_freq), half_);  // [R/2]
    slot_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(slot_mapping), t.num_tokens);  // [T]
    q_.SetGlobalBuffer(reinterpret_cast<__gm__ TQ *>(q_out), uint64_t{t.num_tokens} * t.num_heads * t.head_dim);  // [T, H, D]
    k_.SetGlobalBuffer(reinterpret_cast<__gm__ TC *>(k_cache), uint64_t{t.num_slots} * kv_row_);  // [slots, KV, D]
    v_.SetGlobalBuffer(reinterpret_cast<__gm__ TC *>(v_cache), uint64_t{t.num_slots} * kv_row_);
    errors_.Init(pipe_, errors, 3 /* UD_OP_ROPE_KV_WRITE */, launch);
    const uint32_t hp = t.half_pad, pp = t.pass_pad, g = t.group;
    pipe_.InitBuffer(x1_q_, 1, g * hp * sizeof(T));
    pipe_.InitBuffer(x2_q_, 1, g * hp * sizeof(T));
    if (pass_ > 0) pipe_.InitBuffer(xp_q_, 1, g * pp * sizeof(T));
    pipe_.InitBuffer(v_q_, 1, t.v_chunk * sizeof(T));
    pipe_.InitBuffer(a1_, g * hp * sizeof(f32));
    pipe_.InitBuffer(a2_, g * hp * sizeof(f32));
    pipe_.InitBuffer(o1_, g * hp * sizeof(f32));
    pipe_.InitBuffer(o2_, g * hp * sizeof(f32));
    pipe_.InitBuffer(tmp_, hp * sizeof(f32));
    if (pass_ > 0) pipe_.InitBuffer(ap_, g * pp * sizeof(f32));
    pipe_.InitBuffer(freq_buf_, hp * sizeof(f32));
    pipe_.InitBuffer(cos_buf_, hp * sizeof(f32));
    pipe_.InitBuffer(sin_buf_, hp * sizeof(f32));
    pipe_.InitBuffer(out1_, g * hp * MaxOutSize());
    pipe_.InitBuffer(out2_, g * hp * MaxOutSize());
    if (pass_ > 0) pipe_.InitBuffer(outp_, g * pp * MaxOutSize());
    pipe_.InitBuffer(vf_, t.v_chunk * sizeof(f32));
    pipe_.InitBuffer(vout_, t.v_chunk * sizeof(TC));

    if (half_ > 0) {
      CopyInPadded(freq_buf_.Get<f32>(), freq_, half_);
      CopyInToVector();
    }
    uint64_t begin = 0, end = 0;
    BlockShare(t.num_tokens, begin, end);
    for (uint64_t tok = begin; tok < end; tok++) Token(static_cast<uint32_t>(tok));
  }

 private:
  static __aicore__ inline constexpr uint32_t MaxOutSize() { return sizeof(TQ) > sizeof(TC) ? sizeof(TQ) : sizeof(TC); }

  // Strided GM -> UB: `count` heads, `len` elements each from `offset` within each head, into rows of `pad`.
  __aicore__ inline void LoadParts(const LocalTensor<T> &dst, uint64_t first_elem, uint32_t count, uint32_t len, uint32_t pad) {
    DataCopyExtParams p;
    p.blockCount = count;
    p.blockLen = len * sizeof(T);
    p.srcStride = (t_.head_dim - len) * sizeof(T);
    p.dstStride = (pad * sizeof(T) - AlignUp(len * sizeof(T), kBlockBytes)) / kBlockBytes;
    DataCopyPadExtParams<T> pad_params;
    pad_params.isPad = false;
    DataCopyPad(dst, qkv_[first_elem], p, pad_params);
  }
  // Strided UB -> GM: `count` rows of `pad` elements in UB, `len` of each written at head stride.
  template <typename TO> __aicore__ inline void StoreParts(const GlobalTensor<TO> &dst, const LocalTensor<TO> &src, uint32_t count, uint32_t len, uint32_t pad) {
    DataCopyExtParams p;
    p.blockCount = count;
    p.blockLen = len * sizeof(TO);
    p.srcStride = (pad * sizeof(TO) - AlignUp(len * sizeof(TO), kBlockBytes)) / kBlockBytes;
    p.dstStride = (t_.head_dim - len) * sizeof(TO);
    DataCopyPad(dst, src, p);
  }

  __aicore__ inline void Token(uint32_t tok) {
    const int32_t slot = slot_.GetValue(tok);
    bool write_cache = slot >= 0;
    if (slot < -1 || (slot >= 0 && static_cast<uint32_t>(slot) >= t_.num_slots)) {
      errors_.Report(kSlotOutOfRange, static_cast<int32_t>(tok), slot, static_cast<int32_t>(t_.num_slots));
      write_cache = false;
    }
    // cos / sin of this token's angles (half_ of them), shared by every head.
    if (half_ > 0) {
      const float position = static_cast<float>(pos_.GetValue(tok));
      LocalTensor<f32> c = cos_buf_.Get<f32>(), s = sin_buf_.Get<f32>(), angle = tmp_.Get<f32>();
      Muls(angle, freq_buf_.Get<f32>(), position, half_);
      Cos(c, angle, half_);
      Sin(s, angle, half_);
    }
    const uint32_t rotated = t_.num_heads + t_.num_kv_heads;
    for (uint32_t h0 = 0; h0 < rotated; h0 += t_.group) Heads(tok, h0, MinU(t_.group, rotated - h0), write_cache, slot);
    if (write_cache) Values(tok, static_cast<uint32_t>(slot));
  }

  // Heads [h0, h0 + count) of token `tok`: rotate, then write q heads to q_out and k heads to the cache.
  __aicore__ inline void Heads(uint32_t tok, uint32_t h0, uint32_t count, bool write_cache, int32_t slot) {
    const uint32_t hp = t_.half_pad, pp = t_.pass_pad;
    const uint64_t head0 = uint64_t{tok} * row_ + uint64_t{h0} * t_.head_dim;
    LocalTensor<T> x1, x2, xp;
    if (half_ > 0) {
      x1 = x1_q_.template AllocTensor<T>();
      LoadParts(x1, head0, count, half_, hp);
      x1_q_.EnQue(x1);
      x2 = x2_q_.template AllocTensor<T>();
      LoadParts(x2, head0 + half_, count, half_, hp);
      x2_q_.EnQue(x2);
    }
    if (pass_ > 0) {
      xp = xp_q_.template AllocTensor<T>();
      LoadParts(xp, head0 + t_.rotary_dim, count, pass_, pp);
      xp_q_.EnQue(xp);
    }
    CopyOutToVector();  // the previous group's copies out of out1_/out2_/outp_ are done before they are rewritten
    LocalTensor<f32> a1 = a1_.Get<f32>(), a2 = a2_.Get<f32>(), o1 = o1_.Get<f32>(), o2 = o2_.Get<f32>(), tmp = tmp_.Get<f32>();
    LocalTensor<f32> c = cos_buf_.Get<f32>(), s = sin_buf_.Get<f32>();
    if (half_ > 0) {
      x1 = x1_q_.template DeQue<T>();
      x2 = x2_q_.template DeQue<T>();
      for (uint32_t h = 0; h < count; h++) {
        const uint32_t o = h * hp;
        ToF32(a1[o], x1[o], half_);
        ToF32(a2[o], x2[o], half_);
        Mul(o1[o], a1[o], c, half_);  // a * cos - b * sin
        Mul(tmp, a2[o], s, half_);
        Sub(o1[o], o1[o], tmp, half_);
        Mul(o2[o], a2[o], c, half_);  // b * cos + a * sin
        Mul(tmp, a1[o], s, half_);
        Add(o2[o], o2[o], tmp, half_);
      }
      x1_q_.FreeTensor(x1);
      x2_q_.FreeTensor(x2);
    }
    LocalTensor<f32> ap;
    if (pass_ > 0) {
      ap = ap_.Get<f32>();
      xp = xp_q_.template DeQue<T>();
      for (uint32_t h = 0; h < count; h++) ToF32(ap[h * pp], xp[h * pp], pass_);
      xp_q_.FreeTensor(xp);
    }
    // q heads of the group, then k heads.
    const uint32_t q_count = h0 < t_.num_heads ? MinU(count, t_.num_heads - h0) : 0;
    if (q_count > 0) {
      Emit<TQ>(q_, (uint64_t{tok} * t_.num_heads + h0) * t_.head_dim, 0, q_count, o1, o2, ap);
    }
    if (count > q_count && write_cache) {
      const uint32_t k_first = h0 + q_count - t_.num_heads;  // kv head index
      Emit<TC>(k_, uint64_t(slot) * kv_row_ + uint64_t{k_first} * t_.head_dim, q_count, count - q_count, o1, o2, ap);
    }
  }

  // Casts heads [first, first + count) of the group to TO and writes them at `gm_offset` (head stride D).
  template <typename TO>
  __aicore__ inline void Emit(const GlobalTensor<TO> &dst, uint64_t gm_offset, uint32_t first, uint32_t count, const LocalTensor<f32> &o1,
                              const LocalTensor<f32> &o2, const LocalTensor<f32> &ap) {
    const uint32_t hp = t_.half_pad, pp = t_.pass_pad;
    LocalTensor<TO> c1 = out1_.Get<TO>(), c2 = out2_.Get<TO>(), cp;
    if (pass_ > 0) cp = outp_.Get<TO>();
    CopyOutToVector();
    for (uint32_t h = 0; h < count; h++) {
      if (half_ > 0) {
        FromF32(c1[h * hp], o1[(first + h) * hp], half_);
        FromF32(c2[h * hp], o2[(first + h) * hp], half_);
      }
      if (pass_ > 0) FromF32(cp[h * pp], ap[(first + h) * pp], pass_);
    }
    VectorToCopyOut();
    if (half_ > 0) {
      StoreParts(dst[gm_offset], c1, count, half_, hp);
      StoreParts(dst[gm_offset + half_], c2, count, half_, hp);
    }
    if (pass_ > 0) StoreParts(dst[gm_offset + t_.rotary_dim], cp, count, pass_, pp);
  }

  // v heads of token `tok`, copied as they are into cache row `slot`.
  __aicore__ inline void Values(uint32_t tok, uint32_t slot) {
    const uint64_t src = uint64_t{tok} * row_ + uint64_t(t_.num_heads + t_.num_kv_heads) * t_.head_dim;
    for (uint32_t col = 0; col < kv_row_; col += t_.v_chunk) {
      const uint32_t n = MinU(t_.v_chunk, kv_row_ - col);
      LocalTensor<T> x = v_q_.template AllocTensor<T>();
      CopyInPadded(x, qkv_[src + col], n);
      v_q_.EnQue(x);
      x = v_q_.template DeQue<T>();
      LocalTensor<f32> f = vf_.Get<f32>();
      LocalTensor<TC> y = vout_.Get<TC>();
      CopyOutToVector();
      ToF32(f, x, n);
      v_q_.FreeTensor(x);
      FromF32(y, f, n);
      VectorToCopyOut();
      CopyOutPadded(v_[uint64_t{slot} * kv_row_ + col], y, n);
    }
  }

  RopeTiling t_;
  uint32_t half_ = 0, pass_ = 0, row_ = 0, kv_row_ = 0;
  TPipe pipe_;
  TQue<TPosition::VECIN, 1> x1_q_, x2_q_, xp_q_, v_q_;
  TBuf<TPosition::VECCALC> a1_, a2_, o1_, o2_, tmp_, ap_, freq_buf_, cos_buf_, sin_buf_, vf_;
  TBuf<TPosition::VECOUT> out1_, out2_, outp_, vout_;
  ErrorSlot errors_;
  GlobalTensor<T> qkv_;
  GlobalTensor<int32_t> pos_, slot_;
  GlobalTensor<f32> freq_;
  GlobalTensor<TQ> q_;
  GlobalTensor<TC> k_, v_;
};

template <typename T, typename TC>
__aicore__ inline void RopeKvWrite(GM_ADDR qkv, GM_ADDR positions, GM_ADDR inv_freq, GM_ADDR slot_mapping, GM_ADDR q_out, GM_ADDR k_cache,
                                   GM_ADDR v_cache, GM_ADDR errors, int32_t launch, RopeTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  RopeKvWriteKernel<T, T, TC> kernel;  // q_out shares qkv's dtype (the executor's layout)
  kernel.Run(qkv, positions, inv_freq, slot_mapping, q_out, k_cache, v_cache, errors, launch, tiling);
}

UD_ASCENDC_ENTRIES2(ud_rope_kv_write,
                    (GM_ADDR qkv, GM_ADDR positions, GM_ADDR inv_freq, GM_ADDR slot_mapping, GM_ADDR q_out, GM_ADDR k_cache, GM_ADDR v_cache,
                     GM_ADDR errors, int32_t launch, RopeTiling tiling),
                    (qkv, positions, inv_freq, slot_mapping, q_out, k_cache, v_cache, errors, launch, tiling), RopeKvWrite)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_rope_kv_write(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &qkv = op.src[0];           // [numTokens, numHeads + 2*numKvHeads, headDim]
  const ud_tensor &positions = op.src[1];     // [numTokens] i32
  const ud_tensor &inv_freq = op.src[2];      // [rotaryDim/2] f32
  const ud_tensor &slot_mapping = op.src[3];  // [numTokens] i32
  const ud_tensor &q_out = op.dst[0];         // [numTokens, numHeads, headDim]
  const ud_tensor &k_cache = op.dst[1];       // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &v_cache = op.dst[2];       // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_rope_kv_write_params &p = op.params.rope_kv_write;
  Checker check(ctx, "rope_kv_write");
  check.required(qkv, "src0 (qkv)").required(positions, "src1 (positions)").required(inv_freq, "src2 (inv_freq)")
      .required(slot_mapping, "src3 (slot_mapping)").required(q_out, "dst0 (q_out)").required(k_cache, "dst1 (k_cache)")
      .required(v_cache, "dst2 (v_cache)").float_dtype(qkv, "src0 (qkv)").dtype(positions, UD_I32, "src1 (positions)")
      .dtype(inv_freq, UD_F32, "src2 (inv_freq)").dtype(slot_mapping, UD_I32, "src3 (slot_mapping)").float_dtype(q_out, "dst0 (q_out)")
      .float_dtype(k_cache, "dst1 (k_cache)").float_dtype(v_cache, "dst2 (v_cache)")
      .unsupported_if(q_out.dtype != qkv.dtype || v_cache.dtype != k_cache.dtype,
                      "q_out must have qkv's dtype and v_cache k_cache's on ascend")
      .that(p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0, "num_heads, num_kv_heads and head_dim must be > 0")
      .that(p.rotary_dim >= 0 && p.rotary_dim <= p.head_dim && p.rotary_dim % 2 == 0,
            "rotary_dim must be even and in [0, head_dim], got " + std::to_string(p.rotary_dim));
  if (!check.ok()) return check.status();
  const int64_t num_tokens = rows(qkv), head_dim = p.head_dim, kv_row = int64_t{p.num_kv_heads} * head_dim;
  const int64_t qkv_row = (int64_t{p.num_heads} + 2 * int64_t{p.num_kv_heads}) * head_dim;
  check.row_size_is(qkv, qkv_row, "src0 (qkv)").numel_is(positions, num_tokens, "src1 (positions)")
      .numel_is(inv_freq, p.rotary_dim / 2, "src2 (inv_freq)").numel_is(slot_mapping, num_tokens, "src3 (slot_mapping)")
      .rows_are(q_out, num_tokens, "dst0 (q_out)").numel_is(q_out, num_tokens * p.num_heads * head_dim, "dst0 (q_out)")
      .that(numel(k_cache) % kv_row == 0, "dst1 (k_cache) " + shape_string(k_cache) + " is not a whole number of [numKvHeads, headDim] rows")
      .numel_is(v_cache, numel(k_cache), "dst2 (v_cache)").fits_u32(num_tokens, "numTokens").fits_u32(numel(k_cache) / std::max<int64_t>(kv_row, 1), "slots");
  if (!check.ok()) return check.status();
  if (num_tokens == 0) return UD_OK;
  updraft_ascendc::RopeTiling tiling{};
  tiling.num_tokens = static_cast<uint32_t>(num_tokens);
  tiling.num_heads = static_cast<uint32_t>(p.num_heads);
  tiling.num_kv_heads = static_cast<uint32_t>(p.num_kv_heads);
  tiling.head_dim = static_cast<uint32_t>(head_dim);
  tiling.rotary_dim = static_cast<uint32_t>(p.rotary_dim);
  tiling.half_pad = std::max<uint32_t>(align_up(static_cast<uint32_t>(p.rotary_dim / 2), 16), 16);
  tiling.pass_pad = std::max<uint32_t>(align_up(static_cast<uint32_t>(head_dim - p.rotary_dim), 16), 16);
  // UB per head of a group: two input halves and the tail (<= 4 bytes/elem), four f32 rows and the tail
  // in f32, and two output halves and the tail (<= 4 bytes/elem): 36 bytes per half element, 12 per tail.
  const uint64_t per_head = uint64_t{tiling.half_pad} * 36 + uint64_t{tiling.pass_pad} * 12;
  const uint64_t budget = 128 * 1024;
  tiling.group = static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(p.num_heads + p.num_kv_heads, budget / per_head)));
  tiling.v_chunk = std::min<uint32_t>(align_up(static_cast<uint32_t>(kv_row), 16), 2048);
  tiling.num_slots = static_cast<uint32_t>(numel(k_cache) / kv_row);
  if (per_head > budget)
    return ctx.fail(UD_ERR_UNSUPPORTED, "rope_kv_write: head_dim " + std::to_string(head_dim) + " does not fit one head in UB");
  const uint32_t blocks = static_cast<uint32_t>(std::min<int64_t>(num_tokens, ctx.aiv_cores));
#define UD_LAUNCH(A, B)                                                                                                                       \
  return UD_ASCENDC_LAUNCH(ctx, "rope_kv_write<" #A "," #B ">", blocks, updraft_ascendc::ud_rope_kv_write_##A##_##B, gm(qkv), gm(positions), \
                           gm(inv_freq), gm(slot_mapping), gm(q_out), gm(k_cache), gm(v_cache), static_cast<uint8_t *>(ctx.error_slots), ctx.launch_index, tiling)
  UD_ASCENDC_FLOAT_CASES2(qkv.dtype, k_cache.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "rope_kv_write: unsupported dtypes");
}

}  // namespace updraft::ascendc
