// UD_OP_ATTENTION: paged causal attention with GQA over a batch of prompt and decode rows (ops.h).
//
// Vector version (AIV cores only): one work item per (query row, kv head), shared out in contiguous
// ranges; the group of q heads sharing the kv head is computed together so each K/V chunk is read and
// converted once. The context is walked KV block by KV block in chunks of up to `chunk` positions with an
// online softmax in f32 (running max and sum per head, the accumulator rescaled when the max grows):
//   scores = (K ⊙ q) summed per row      Mul (repeat form, q broadcast with a 0 repeat stride), folds of
//                                        64-column segments, WholeReduceSum per row; times scale
//   w = exp(scores - max)                ReduceMax, Adds, Exp; sum by ReduceSum
//   acc += Σ_p w_p V[p, :]               Brcb (w_p to a 32-byte block per row), Mul with block stride 0,
//                                        a halving tree of row Adds
// Blocks whose id is -1 are skipped; a row that sees no position is written as zeros; rows of no active
// sequence stay untouched. Every block first validates the batch layout (query_start_loc, seq_lens, block
// ids), reports the first problem in its error slot and then does nothing, as the CPU kernel fails before
// computing.
//
// Not yet here: the cube version (QKᵀ and PV on the cube unit, softmax on the vector cores, with
// cross-core synchronisation) that a real 910B wants for prefill; this one is correct for prefill and
// decode alike but does prefill rows one at a time.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "host_common.h"

namespace updraft_ascendc {

template <typename TQ, typename TC> class AttentionKernel {
 public:
  __aicore__ inline void Run(GM_ADDR q, GM_ADDR k_cache, GM_ADDR v_cache, GM_ADDR block_tables, GM_ADDR seq_lens, GM_ADDR query_start_loc,
                             GM_ADDR out, GM_ADDR errors, int32_t launch, const AttentionTiling &t) {
    t_ = t;
    const uint64_t q_row = uint64_t{t.num_heads} * t.head_dim;
    kv_row_ = t.num_kv_heads * t.head_dim;
    q_.SetGlobalBuffer(reinterpret_cast<__gm__ TQ *>(q), uint64_t{t.num_tokens} * q_row);                                   // [T, H, D]
    k_.SetGlobalBuffer(reinterpret_cast<__gm__ TC *>(k_cache), uint64_t{t.num_blocks} * t.block_size * kv_row_);          // [blocks, bs, KV, D]
    v_.SetGlobalBuffer(reinterpret_cast<__gm__ TC *>(v_cache), uint64_t{t.num_blocks} * t.block_size * kv_row_);
    table_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(block_tables), uint64_t{t.num_seqs} * t.max_blocks);        // [S, maxBlocks]
    lens_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(seq_lens), t.num_seqs);                                     // [S]
    starts_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t *>(query_start_loc), t.num_seqs + 1);                        // [S + 1]
    out_.SetGlobalBuffer(reinterpret_cast<__gm__ TQ *>(out), uint64_t{t.num_tokens} * q_row);                              // [T, H * D]
    errors_.Init(pipe_, errors, 4 /* UD_OP_ATTENTION */, launch);
    const uint32_t p = t.chunk, dp = t.d_pad, g = t.group;
    pipe_.InitBuffer(kc_q_, 1, p * dp * sizeof(TC));
    pipe_.InitBuffer(vc_q_, 1, p * dp * sizeof(TC));
    pipe_.InitBuffer(kf_, p * dp * sizeof(f32));
    pipe_.InitBuffer(vf_, p * dp * sizeof(f32));
    pipe_.InitBuffer(prod_, p * dp * sizeof(f32));
    pipe_.InitBuffer(qin_, g * t.q_pad * sizeof(TQ));
    pipe_.InitBuffer(qf_, g * dp * sizeof(f32));
    pipe_.InitBuffer(acc_, g * dp * sizeof(f32));
    pipe_.InitBuffer(scores_, AlignUp(p, 8) * sizeof(f32));
    pipe_.InitBuffer(wb_, AlignUp(p, 8) * kBlockBytes);
    pipe_.InitBuffer(small_, kBlockBytes);
    pipe_.InitBuffer(red_, kBlockBytes);
    pipe_.InitBuffer(work_, AlignUp(CeilDiv(p * sizeof(f32), kRepeatBytes), 8) * sizeof(f32));
    pipe_.InitBuffer(ostage_, g * t.q_pad * sizeof(TQ));
    if (!Validate()) return;
    uint64_t begin = 0, end = 0;
    BlockShare(uint64_t{t.num_tokens} * t.num_kv_heads, begin, end);
    for (uint64_t item = begin; item < end; item++) Item(static_cast<uint32_t>(item / t.num_kv_heads), static_cast<uint32_t>(item % t.num_kv_heads));
  }

 private:
  // The CPU kernel's checks of the batch layout; false (and an error recorded) on the first failure.
  __aicore__ inline bool Validate() {
    if (t_.num_seqs == 0) return true;
    const int32_t first = starts_.GetValue(0), last = starts_.GetValue(t_.num_seqs);
    if (first < 0 || last > static_cast<int32_t>(t_.num_tokens)) {
      errors_.Report(kQueryStartLocBad, 0, first, last);
      return false;
    }
    for (uint32_t s = 0; s < t_.num_seqs; s++) {
      const int32_t a = starts_.GetValue(s), b = starts_.GetValue(s + 1), len = lens_.GetValue(s);
      if (b < a) {
        errors_.Report(kQueryStartLocBad, static_cast<int32_t>(s), a, b);
        return false;
      }
      if (len == 0) continue;
      if (len < b - a) {
        errors_.Report(kSeqLenTooShort, static_cast<int32_t>(s), len, b - a);
        return false;
      }
      if (len < 0 || static_cast<uint64_t>(len) > uint64_t{t_.max_blocks} * t_.block_size) {
        errors_.Report(kSeqLenBeyondTable, static_cast<int32_t>(s), len, static_cast<int32_t>(t_.max_blocks * t_.block_size));
        return false;
      }
      for (uint32_t j = 0; j < CeilDiv(static_cast<uint32_t>(len), t_.block_size); j++) {
        const int32_t block = table_.GetValue(uint64_t{s} * t_.max_blocks + j);
        if (block < -1 || block >= static_cast<int32_t>(t_.num_blocks)) {
          errors_.Report(kBlockOutOfRange, static_cast<int32_t>(s), block, static_cast<int32_t>(t_.num_blocks));
          return false;
        }
      }
    }
    return true;
  }

  // The sequence owning query row `row`, or -1 (padding): the s with starts[s] <= row < starts[s + 1].
  __aicore__ inline int32_t SequenceOf(uint32_t row) {
    uint32_t lo = 1, hi = t_.num_seqs + 1;  // first j in [1, S] with starts[j] > row
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      if (starts_.GetValue(mid) > static_cast<int32_t>(row)) hi = mid;
      else lo = mid + 1;
    }
    if (lo > t_.num_seqs || starts_.GetValue(lo - 1) > static_cast<int32_t>(row)) return -1;
    return static_cast<int32_t>(lo - 1);
  }

  // K and V rows [off, off + n) of kv head `h` in cache block `block`, appended at row `at` of the
  // chunk buffers (rows of d_pad, zero padded).
  __aicore__ inline void LoadSegment(const LocalTensor<TC> &kc, const LocalTensor<TC> &vc, int32_t block, uint32_t off, uint32_t n, uint32_t at, uint32_t h) {
    DataCopyExtParams p;
    p.blockCount = n;
    p.blockLen = t_.head_dim * sizeof(TC);
    p.srcStride = (kv_row_ - t_.head_dim) * sizeof(TC);
    p.dstStride = 0;
    DataCopyPadExtParams<TC> pad;
    pad.isPad = true;
    pad.leftPadding = 0;
    pad.rightPadding = t_.d_pad - t_.head_dim;
    pad.paddingValue = TC(0);
    const uint64_t src = (uint64_t(block) * t_.block_size + off) * kv_row_ + uint64_t{h} * t_.head_dim;
    DataCopyPad(kc[at * t_.d_pad], k_[src], p, pad);
    DataCopyPad(vc[at * t_.d_pad], v_[src], p, pad);
  }

  // The next chunk of visible positions from `pos` on: up to `chunk` rows gathered from consecutive KV
  // blocks (blocks with id -1 skipped), converted to f32 into kf / vf. Returns the row count (0 at the end).
  __aicore__ inline uint32_t NextChunk(int32_t s, uint32_t num_ctx, uint32_t h, uint32_t &pos) {
    uint32_t n = 0;
    LocalTensor<TC> kc = kc_q_.template AllocTensor<TC>(), vc = vc_q_.template AllocTensor<TC>();
    while (pos < num_ctx && n < t_.chunk) {
      const uint32_t off = pos % t_.block_size;
      const uint32_t seg = MinU(MinU(t_.block_size - off, num_ctx - pos), t_.chunk - n);
      const int32_t block = table_.GetValue(uint64_t(s) * t_.max_blocks + pos / t_.block_size);
      if (block >= 0) {
        LoadSegment(kc, vc, block, off, seg, n, h);
        n += seg;
      }
      pos += seg;
    }
    if (n == 0) {
      kc_q_.FreeTensor(kc);
      vc_q_.FreeTensor(vc);
      return 0;
    }
    kc_q_.EnQue(kc);
    vc_q_.EnQue(vc);
    kc = kc_q_.template DeQue<TC>();
    ToF32(kf_.Get<f32>(), kc, n * t_.d_pad);
    kc_q_.FreeTensor(kc);
    vc = vc_q_.template DeQue<TC>();
    ToF32(vf_.Get<f32>(), vc, n * t_.d_pad);
    vc_q_.FreeTensor(vc);
    return n;
  }

  // dst[r, :] = a[r, :] op b[r or 0, :] over n rows of d_pad, in 64-column (one repeat) segments.
  __aicore__ inline void RowMul(const LocalTensor<f32> &dst, const LocalTensor<f32> &a, const LocalTensor<f32> &b, uint32_t n, bool broadcast_b,
                                bool b_is_block) {
    const uint32_t rep = t_.d_pad / 8;  // row stride in 32-byte blocks
    for (uint32_t c = 0; c < t_.d_pad; c += 64) {
      BinaryRepeatParams p;
      p.dstBlkStride = 1;
      p.src0BlkStride = 1;
      p.src1BlkStride = b_is_block ? 0 : 1;
      p.dstRepStride = rep;
      p.src0RepStride = rep;
      p.src1RepStride = b_is_block ? 1 : (broadcast_b ? 0 : rep);
      Mul(dst[c], a[c], b_is_block ? b : b[c], MinU(64, t_.d_pad - c), n, p);
    }
  }

  __aicore__ inline void Item(uint32_t row, uint32_t h) {
    const int32_t s = SequenceOf(row);
    if (s < 0) return;
    const int32_t len = lens_.GetValue(s);
    if (len == 0) return;  // idle sequence: its rows stay untouched
    const int32_t qlen = starts_.GetValue(s + 1) - starts_.GetValue(s);
    const uint32_t num_ctx = static_cast<uint32_t>(len - qlen + (static_cast<int32_t>(row) - starts_.GetValue(s)) + 1);
    const uint32_t g_count = t_.group, dp = t_.d_pad, qp = t_.q_pad, d = t_.head_dim;

    // q heads of the group -> f32 rows of d_pad, zero padded.
    LocalTensor<TQ> qin = qin_.Get<TQ>();
    LocalTensor<f32> qf = qf_.Get<f32>(), acc = acc_.Get<f32>();
    VectorToCopyIn();  // the previous item's casts have read qin
    const uint64_t q_base = uint64_t{row} * t_.num_heads * d + uint64_t{h} * g_count * d;
    for (uint32_t g = 0; g < g_count; g++) CopyInPadded(qin[g * qp], q_[q_base + uint64_t{g} * d], d);
    CopyInToVector();
    Duplicate(qf, 0.0f, g_count * dp);
    Duplicate(acc, 0.0f, g_count * dp);
    for (uint32_t g = 0; g < g_count; g++) ToF32(qf[g * dp], qin[g * qp], d);

    float run_max[kMaxGroup], run_sum[kMaxGroup];
    for (uint32_t g = 0; g < g_count; g++) {
      run_max[g] = -INFINITY;
      run_sum[g] = 0.0f;
    }
    LocalTensor<f32> kf = kf_.Get<f32>(), vf = vf_.Get<f32>(), prod = prod_.Get<f32>(), sc = scores_.Get<f32>();
    LocalTensor<f32> wb = wb_.Get<f32>(), small = small_.Get<f32>(), red = red_.Get<f32>(), work = work_.Get<f32>();
    uint32_t pos = 0;
    while (pos < num_ctx) {
      const uint32_t n = NextChunk(s, num_ctx, h, pos);
      if (n == 0) break;
      for (uint32_t g = 0; g < g_count; g++) {
        // scores[p] = scale * sum_d K[p, d] q[d]
        Duplicate(sc, 0.0f, AlignUp(n, 8));
        RowMul(prod, kf, qf[g * dp], n, true, false);
        for (uint32_t c = 64; c < dp; c += 64) {
          BinaryRepeatParams p;
          p.dstRepStride = dp / 8;
          p.src0RepStride = dp / 8;
          p.src1RepStride = dp / 8;
          Add(prod, prod, prod[c], MinU(64, dp - c), n, p);
        }
        WholeReduceSum(sc, prod, static_cast<int32_t>(MinU(64, dp)), n, 1, 1, static_cast<int32_t>(dp / 8));
        Muls(sc, sc, t_.scale, n);
        ReduceMax(red, sc, work, static_cast<int32_t>(n));
        VectorToScalar();
        const float chunk_max = red.GetValue(0);
        const float new_max = run_max[g] > chunk_max ? run_max[g] : chunk_max;
        // alpha = exp(old max - new max) rescales what was accumulated (0 before the first chunk).
        Duplicate(small, run_max[g] - new_max, 8);
        Exp(small, small, 8);
        Adds(sc, sc, -new_max, n);
        Exp(sc, sc, n);
        ReduceSum(red, sc, work, static_cast<int32_t>(n));
        VectorToScalar();
        const float alpha = small.GetValue(0);
        run_sum[g] = run_sum[g] * alpha + red.GetValue(0);
        run_max[g] = new_max;
        LocalTensor<f32> a = acc[g * dp];
        Muls(a, a, alpha, dp);
        // acc += sum_p w_p V[p, :]: w_p into one block per row, rows scaled, then a halving tree of adds.
        BrcbRepeatParams bp;
        bp.dstBlkStride = 1;
        bp.dstRepStride = 8;
        Brcb(wb, sc, CeilDiv(n, 8), bp);
        RowMul(prod, vf, wb, n, false, true);
        for (uint32_t rows = n; rows > 1;) {
          const uint32_t half = rows / 2;
          Add(prod, prod, prod[(rows - half) * dp], half * dp);
          rows -= half;
        }
        Add(a, a, prod, dp);
      }
    }
    // out = acc / sum (zeros when nothing was visible), cast, written as G contiguous heads.
    LocalTensor<TQ> o = ostage_.Get<TQ>();
    CopyOutToVector();  // the previous item's copy out of the staging rows is done
    for (uint32_t g = 0; g < g_count; g++) {
      const float inv = run_sum[g] > 0.0f ? 1.0f / run_sum[g] : 0.0f;
      Muls(acc[g * dp], acc[g * dp], inv, d);
      FromF32(o[g * qp], acc[g * dp], d);
    }
    VectorToCopyOut();
    DataCopyExtParams p;
    p.blockCount = g_count;
    p.blockLen = d * sizeof(TQ);
    p.srcStride = (qp * sizeof(TQ) - AlignUp(d * sizeof(TQ), kBlockBytes)) / kBlockBytes;
    p.dstStride = 0;
    DataCopyPad(out_[q_base], o, p);
  }

 public:
  static constexpr uint32_t kMaxGroup = 64;  // q heads per kv head the kernel keeps running stats for

 private:
  AttentionTiling t_;
  uint32_t kv_row_ = 0;
  TPipe pipe_;
  TQue<TPosition::VECIN, 1> kc_q_, vc_q_;
  TBuf<TPosition::VECCALC> kf_, vf_, prod_, qin_, qf_, acc_, scores_, wb_, small_, red_, work_;
  TBuf<TPosition::VECOUT> ostage_;
  ErrorSlot errors_;
  GlobalTensor<TQ> q_, out_;
  GlobalTensor<TC> k_, v_;
  GlobalTensor<int32_t> table_, lens_, starts_;
};

template <typename TQ, typename TC>
__aicore__ inline void Attention(GM_ADDR q, GM_ADDR k_cache, GM_ADDR v_cache, GM_ADDR block_tables, GM_ADDR seq_lens, GM_ADDR query_start_loc,
                                 GM_ADDR out, GM_ADDR errors, int32_t launch, AttentionTiling tiling) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  AttentionKernel<TQ, TC> kernel;
  kernel.Run(q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, out, errors, launch, tiling);
}

UD_ASCENDC_ENTRIES2(ud_attention,
                    (GM_ADDR q, GM_ADDR k_cache, GM_ADDR v_cache, GM_ADDR block_tables, GM_ADDR seq_lens, GM_ADDR query_start_loc, GM_ADDR out,
                     GM_ADDR errors, int32_t launch, AttentionTiling tiling),
                    (q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, out, errors, launch, tiling), Attention)

}  // namespace updraft_ascendc

namespace updraft::ascendc {

using updraft_ascendc::bf16;
using updraft_ascendc::f16;
using updraft_ascendc::f32;

ud_status launch_attention(const ud_op &op, LaunchContext &ctx) {
  const ud_tensor &q = op.src[0];                // [numTokens, numHeads, headDim]
  const ud_tensor &k_cache = op.src[1];          // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &v_cache = op.src[2];          // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &block_tables = op.src[3];     // [numSeqs, maxBlocksPerSeq] i32
  const ud_tensor &seq_lens = op.src[4];         // [numSeqs] i32
  const ud_tensor &query_start_loc = op.src[5];  // [numSeqs + 1] i32
  const ud_tensor &out = op.dst[0];              // [numTokens, numHeads * headDim]
  const ud_attention_params &p = op.params.attention;
  Checker check(ctx, "attention");
  check.required(q, "src0 (q)").required(k_cache, "src1 (k_cache)").required(v_cache, "src2 (v_cache)")
      .required(block_tables, "src3 (block_tables)").required(seq_lens, "src4 (seq_lens)").required(query_start_loc, "src5 (query_start_loc)")
      .required(out, "dst0 (out)").float_dtype(q, "src0 (q)").float_dtype(k_cache, "src1 (k_cache)").float_dtype(v_cache, "src2 (v_cache)")
      .dtype(block_tables, UD_I32, "src3 (block_tables)").dtype(seq_lens, UD_I32, "src4 (seq_lens)")
      .dtype(query_start_loc, UD_I32, "src5 (query_start_loc)").float_dtype(out, "dst0 (out)")
      .unsupported_if(out.dtype != q.dtype || v_cache.dtype != k_cache.dtype, "out must have q's dtype and v_cache k_cache's on ascend")
      .unsupported_if(p.variant != 0, "no attention variant " + std::to_string(p.variant) + " on ascend")
      .that(p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0 && p.block_size > 0, "num_heads, num_kv_heads, head_dim and block_size must be > 0")
      .that(p.num_heads % std::max(1, p.num_kv_heads) == 0, "num_heads must be a multiple of num_kv_heads")
      .that(std::isfinite(p.scale), "scale must be finite");
  if (!check.ok()) return check.status();
  const int64_t num_tokens = rows(q), head_dim = p.head_dim, num_seqs = numel(seq_lens);
  const int64_t kv_row = int64_t{p.num_kv_heads} * head_dim, block_elems = p.block_size * kv_row;
  const int64_t q_row = int64_t{p.num_heads} * head_dim;
  check.row_size_is(q, q_row, "src0 (q)")
      .that(numel(k_cache) % block_elems == 0, "src1 (k_cache) " + shape_string(k_cache) + " is not a whole number of [blockSize, numKvHeads, headDim] blocks")
      .that(k_cache.ndim != 4 || (k_cache.ne[1] == p.block_size && k_cache.ne[2] == p.num_kv_heads && k_cache.ne[3] == head_dim),
            "src1 (k_cache) " + shape_string(k_cache) + " does not match block_size, num_kv_heads and head_dim")
      .numel_is(v_cache, numel(k_cache), "src2 (v_cache)").rows_are(block_tables, num_seqs, "src3 (block_tables)")
      .numel_is(query_start_loc, num_seqs + 1, "src5 (query_start_loc)").rows_are(out, num_tokens, "dst0 (out)").row_size_is(out, q_row, "dst0 (out)")
      .fits_u32(num_tokens, "numTokens").fits_u32(numel(k_cache), "cache size")
      .unsupported_if(p.num_heads / p.num_kv_heads > 64, "more than 64 q heads per kv head on ascend");
  if (!check.ok()) return check.status();
  if (num_tokens == 0 && num_seqs == 0) return UD_OK;

  updraft_ascendc::AttentionTiling t{};
  t.num_tokens = static_cast<uint32_t>(num_tokens);
  t.num_heads = static_cast<uint32_t>(p.num_heads);
  t.num_kv_heads = static_cast<uint32_t>(p.num_kv_heads);
  t.head_dim = static_cast<uint32_t>(head_dim);
  t.block_size = static_cast<uint32_t>(p.block_size);
  t.num_seqs = static_cast<uint32_t>(num_seqs);
  t.max_blocks = static_cast<uint32_t>(row_size(block_tables));
  t.num_blocks = static_cast<uint32_t>(numel(k_cache) / block_elems);
  t.group = t.num_heads / t.num_kv_heads;
  t.d_pad = align_up(t.head_dim, k_cache.dtype == UD_F32 ? 8 : 16);
  t.q_pad = align_up(t.head_dim, 16);
  t.scale = p.scale;
  // Chunk: as many positions as fit ~144 KiB of UB (cache rows twice, in f32 three times), at most 128
  // (a repeat count); a chunk gathers rows from as many KV blocks as it spans.
  const uint64_t per_position = uint64_t{t.d_pad} * (2 * (k_cache.dtype == UD_F32 ? 4 : 2) + 3 * 4) + 4 + 32;
  uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(128, (144 * 1024) / per_position));
  if (chunk == 0) return ctx.fail(UD_ERR_UNSUPPORTED, "attention: head_dim " + std::to_string(head_dim) + " is too large for UB on ascend");
  t.chunk = chunk;
  const uint64_t items = uint64_t{t.num_tokens} * t.num_kv_heads;
  const uint32_t blocks = static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(items, ctx.aiv_cores)));
#define UD_LAUNCH(A, B)                                                                                                                      \
  return UD_ASCENDC_LAUNCH(ctx, "attention<" #A "," #B ">", blocks, updraft_ascendc::ud_attention_##A##_##B, gm(q), gm(k_cache), gm(v_cache), \
                           gm(block_tables), gm(seq_lens), gm(query_start_loc), gm(out), static_cast<uint8_t *>(ctx.error_slots), ctx.launch_index, t)
  UD_ASCENDC_FLOAT_CASES2(q.dtype, k_cache.dtype, UD_LAUNCH)
#undef UD_LAUNCH
  return ctx.fail(UD_ERR_UNSUPPORTED, "attention: unsupported dtypes");
}

}  // namespace updraft::ascendc
