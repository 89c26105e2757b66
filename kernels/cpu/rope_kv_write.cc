// UD_OP_ROPE_KV_WRITE: rotate q and k (rotate-half layout on the first rotaryDim features), write q
// to q_out and k, v into the paged cache row slot_mapping[t] (skipped when -1).
//
// angle = float(position) * inv_freq[i] in f32 and cosf/sinf of that f32, as PyTorch computes the
// HF Llama rotary table in float32; each rotated value is computed in f32 and rounded once to its
// destination's dtype (an f8e4m3 cache included: round to nearest even, saturating at +-448).
#include <cmath>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {
namespace {

// Rotates one head of head_dim features (in place, f32).
void rotate_half(float *head, int64_t rotary_dim, const float *cos_t, const float *sin_t) {
  const int64_t half = rotary_dim / 2;
  for (int64_t i = 0; i < half; i++) {
    const float a = head[i], b = head[i + half];
    head[i] = a * cos_t[i] - b * sin_t[i];
    head[i + half] = b * cos_t[i] + a * sin_t[i];
  }
}

}  // namespace

ud_status launch_rope_kv_write(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &qkv = op.src[0];           // [numTokens, numHeads + 2*numKvHeads, headDim]
  const ud_tensor &positions = op.src[1];     // [numTokens] i32
  const ud_tensor &inv_freq = op.src[2];      // [rotaryDim/2] f32
  const ud_tensor &slot_mapping = op.src[3];  // [numTokens] i32
  const ud_tensor &q_out = op.dst[0];         // [numTokens, numHeads, headDim]
  const ud_tensor &k_cache = op.dst[1];       // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &v_cache = op.dst[2];       // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_rope_kv_write_params &p = op.params.rope_kv_write;

  OperandChecker check(ctx, "rope_kv_write");
  check.required(qkv, "src0 (qkv)").required(positions, "src1 (positions)").required(inv_freq, "src2 (inv_freq)")
      .required(slot_mapping, "src3 (slot_mapping)").required(q_out, "dst0 (q_out)")
      .required(k_cache, "dst1 (k_cache)").required(v_cache, "dst2 (v_cache)")
      .float_dtype(qkv, "src0 (qkv)").dtype(positions, UD_I32, "src1 (positions)")
      .dtype(inv_freq, UD_F32, "src2 (inv_freq)").dtype(slot_mapping, UD_I32, "src3 (slot_mapping)")
      .float_dtype(q_out, "dst0 (q_out)").kv_cache_dtype(k_cache, "dst1 (k_cache)")
      .kv_cache_dtype(v_cache, "dst2 (v_cache)").same_dtype(k_cache, "dst1 (k_cache)", v_cache, "dst2 (v_cache)")
      .that(p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0, "num_heads, num_kv_heads and head_dim must be > 0")
      .that(p.rotary_dim >= 0 && p.rotary_dim <= p.head_dim && p.rotary_dim % 2 == 0,
            "rotary_dim must be even and in [0, head_dim], got " + std::to_string(p.rotary_dim));
  if (!check.ok()) return check.status();
  const int64_t num_tokens = rows(qkv), head_dim = p.head_dim, kv_row = int64_t{p.num_kv_heads} * head_dim;
  const int64_t qkv_row = (int64_t{p.num_heads} + 2 * int64_t{p.num_kv_heads}) * head_dim;
  check.row_size_is(qkv, qkv_row, "src0 (qkv)").numel_is(positions, num_tokens, "src1 (positions)")
      .numel_is(inv_freq, p.rotary_dim / 2, "src2 (inv_freq)").numel_is(slot_mapping, num_tokens, "src3 (slot_mapping)")
      .rows_are(q_out, num_tokens, "dst0 (q_out)").numel_is(q_out, num_tokens * p.num_heads * head_dim, "dst0 (q_out)")
      .that(numel(k_cache) % kv_row == 0, "dst1 (k_cache) " + shape_string(k_cache) +
                                             " is not a whole number of [numKvHeads, headDim] rows")
      .numel_is(v_cache, numel(k_cache), "dst2 (v_cache)");
  if (!check.ok()) return check.status();
  const int64_t num_slots = numel(k_cache) / kv_row;
  const int32_t *slot = static_cast<const int32_t *>(slot_mapping.data);
  for (int64_t t = 0; t < num_tokens; t++) {
    if (slot[t] < -1 || slot[t] >= num_slots)
      return ctx.fail(UD_ERR_INVALID_ARGUMENT, "rope_kv_write: slot_mapping[" + std::to_string(t) + "] = " +
                                                   std::to_string(slot[t]) + " is outside the cache's " +
                                                   std::to_string(num_slots) + " slots");
  }

  const int32_t *pos = static_cast<const int32_t *>(positions.data);
  const float *freq = static_cast<const float *>(inv_freq.data);
  const int64_t half = p.rotary_dim / 2, q_row = int64_t{p.num_heads} * head_dim;
  ctx.pool.parallel_for(num_tokens, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(qkv_row)), cos_t(static_cast<size_t>(half)),
        sin_t(static_cast<size_t>(half));
    for (int64_t t = begin; t < end; t++) {
      for (int64_t i = 0; i < half; i++) {
        const float angle = static_cast<float>(pos[t]) * freq[i];
        cos_t[i] = std::cos(angle);
        sin_t[i] = std::sin(angle);
      }
      load_row_f32(qkv.data, qkv.dtype, t * qkv_row, qkv_row, row.data());
      // q heads, then k heads, are rotated; v heads are copied as they are.
      for (int64_t h = 0; h < p.num_heads + p.num_kv_heads; h++)
        rotate_half(row.data() + h * head_dim, p.rotary_dim, cos_t.data(), sin_t.data());
      store_row_f32(q_out.data, q_out.dtype, t * q_row, q_row, row.data());
      if (slot[t] < 0) continue;
      store_row_f32(k_cache.data, k_cache.dtype, slot[t] * kv_row, kv_row, row.data() + q_row);
      store_row_f32(v_cache.data, v_cache.dtype, slot[t] * kv_row, kv_row, row.data() + q_row + kv_row);
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
