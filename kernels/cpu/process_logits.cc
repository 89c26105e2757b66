// UD_OP_PROCESS_LOGITS: the allowed-token mask, additive biases / bans and the repetition, frequency
// and presence penalties applied to rows of f32 logits in place, in vLLM's order (kernels/ops.h).
//
// Rows are independent, so the pool splits them; within a row the four steps run in order. A row
// with flags 0 is not read at all, so a step with a few processed rows costs only those rows.
#include <cmath>
#include <limits>

#include "operand_checks.h"

namespace updraft::cpu {
namespace {

constexpr int32_t kFlagPenalties = 1;
constexpr int32_t kFlagBias = 2;
constexpr int32_t kFlagMask = 4;

inline float repetition(float logit, float r) { return logit > 0.0f ? logit / r : logit * r; }

inline float frequency_presence(float logit, int32_t count, float frequency, float presence) {
  const float scaled = frequency * static_cast<float>(count);
  return (logit - scaled) - presence;
}

}  // namespace

ud_status launch_process_logits(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &flags = op.src[0];        // [R] i32
  const ud_tensor &penalties = op.src[1];    // [R, 3] f32
  const ud_tensor &token_ids = op.src[2];    // [R, P] i32
  const ud_tensor &token_counts = op.src[3]; // [R, P] i32
  const ud_tensor &extra_ids = op.src[4];    // [R] i32, optional
  const ud_tensor &bias_ids = op.src[5];     // [R, B] i32
  const ud_tensor &bias_values = op.src[6];  // [R, B] f32
  const ud_tensor &allowed = op.src[7];      // [R, W] u32, optional
  const ud_tensor &logits = op.dst[0];       // [S, V] f32, in place

  OperandChecker check(ctx, "process_logits");
  check.required(flags, "src0 (flags)").required(penalties, "src1 (penalties)")
      .required(token_ids, "src2 (token_ids)").required(token_counts, "src3 (token_counts)")
      .shape_valid(extra_ids, "src4 (extra_ids)").required(bias_ids, "src5 (bias_ids)")
      .required(bias_values, "src6 (bias_values)").shape_valid(allowed, "src7 (allowed)")
      .required(logits, "dst0 (logits)")
      .dtype(flags, UD_I32, "src0 (flags)").dtype(penalties, UD_F32, "src1 (penalties)")
      .dtype(token_ids, UD_I32, "src2 (token_ids)").dtype(token_counts, UD_I32, "src3 (token_counts)")
      .dtype(extra_ids, UD_I32, "src4 (extra_ids)").dtype(bias_ids, UD_I32, "src5 (bias_ids)")
      .dtype(bias_values, UD_F32, "src6 (bias_values)").dtype(allowed, UD_U32, "src7 (allowed)")
      .dtype(logits, UD_F32, "dst0 (logits)");
  if (!check.ok()) return check.status();
  const int64_t num_rows = numel(flags);
  const int64_t vocab = row_size(logits);
  const int64_t num_tokens = row_size(token_ids);
  const int64_t num_bias = row_size(bias_ids);
  const int64_t num_words = present(allowed) ? row_size(allowed) : 0;
  check.that(num_rows <= rows(logits), "src0 (flags) has " + std::to_string(num_rows) + " rows, more than dst0 (logits) " +
                                           shape_string(logits))
      .numel_is(penalties, num_rows * 3, "src1 (penalties)")
      .rows_are(token_ids, num_rows, "src2 (token_ids)").rows_are(token_counts, num_rows, "src3 (token_counts)")
      .row_size_is(token_counts, num_tokens, "src3 (token_counts)")
      .numel_is(extra_ids, num_rows, "src4 (extra_ids)")
      .rows_are(bias_ids, num_rows, "src5 (bias_ids)").rows_are(bias_values, num_rows, "src6 (bias_values)")
      .row_size_is(bias_values, num_bias, "src6 (bias_values)")
      .rows_are(allowed, num_rows, "src7 (allowed)");
  if (!check.ok()) return check.status();
  if (num_rows == 0) return UD_OK;

  const int32_t *flag_of = static_cast<const int32_t *>(flags.data);
  const int64_t mask_words = (vocab + 31) / 32;
  if (num_words != 0 && num_words != mask_words)
    return ctx.fail(UD_ERR_INVALID_ARGUMENT, "process_logits: src7 (allowed) " + shape_string(allowed) + " should have rows of 0 or " +
                                                 std::to_string(mask_words) + " words for a vocabulary of " + std::to_string(vocab));
  for (int64_t s = 0; s < num_rows; s++) {
    // The same words as the CUDA backend's device-side report (it cannot read flags on the host).
    if ((flag_of[s] & kFlagMask) && num_words != mask_words)
      return ctx.fail(UD_ERR_INVALID_ARGUMENT, "process_logits: row " + std::to_string(s) + " asks for the mask, but src7 (allowed) has " +
                                                   std::to_string(num_words) + " words per row (a vocabulary of " +
                                                   std::to_string(vocab) + " needs " + std::to_string(mask_words) + ")");
  }

  const float *pen = static_cast<const float *>(penalties.data);
  const int32_t *ids = static_cast<const int32_t *>(token_ids.data);
  const int32_t *counts = static_cast<const int32_t *>(token_counts.data);
  const int32_t *extra = present(extra_ids) ? static_cast<const int32_t *>(extra_ids.data) : nullptr;
  const int32_t *b_ids = static_cast<const int32_t *>(bias_ids.data);
  const float *b_values = static_cast<const float *>(bias_values.data);
  const uint32_t *mask = present(allowed) ? static_cast<const uint32_t *>(allowed.data) : nullptr;
  float *all_logits = static_cast<float *>(logits.data);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const auto in_vocab = [vocab](int32_t id) { return id >= 0 && id < vocab; };

  ctx.pool.parallel_for(num_rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; s++) {
      const int32_t f = flag_of[s];
      if (f == 0) continue;
      float *row = all_logits + s * vocab;
      if (f & kFlagMask) {
        const uint32_t *words = mask + s * num_words;
        for (int64_t w = 0; w < num_words; w++) {
          const uint32_t word = words[w];
          if (word == 0xffffffffu) continue;
          const int64_t base = w * 32;
          for (int b = 0; b < 32 && base + b < vocab; b++)
            if (!((word >> b) & 1u)) row[base + b] = neg_inf;
        }
      }
      if (f & kFlagBias) {
        for (int64_t j = 0; j < num_bias; j++) {
          const int32_t id = b_ids[s * num_bias + j];
          if (in_vocab(id)) row[id] += b_values[s * num_bias + j];
        }
      }
      if (f & kFlagPenalties) {
        const float presence = pen[s * 3 + 0], frequency = pen[s * 3 + 1], r = pen[s * 3 + 2];
        const int32_t extra_id = extra && in_vocab(extra[s]) ? extra[s] : -1;
        bool extra_listed = false;
        for (int64_t j = 0; j < num_tokens; j++) {
          const int32_t id = ids[s * num_tokens + j];
          if (!in_vocab(id)) continue;
          int32_t count = counts[s * num_tokens + j];
          if (id == extra_id) {
            count += 1;
            extra_listed = true;
          }
          float x = repetition(row[id], r);
          if (count > 0) x = frequency_presence(x, count, frequency, presence);
          row[id] = x;
        }
        if (extra_id >= 0 && !extra_listed) row[extra_id] = frequency_presence(repetition(row[extra_id], r), 1, frequency, presence);
      }
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
