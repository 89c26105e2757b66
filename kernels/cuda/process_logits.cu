// UD_OP_PROCESS_LOGITS: the allowed-token mask, additive biases / bans and the repetition, frequency
// and presence penalties applied to rows of f32 logits in place, in vLLM's order (kernels/ops.h).
//
// One CTA per processed row; a row with flags 0 returns at once, and R == 0 launches nothing, so
// steps without any processing cost nothing and captured graphs for those dims hold no node. The
// four steps are separated by __syncthreads: within a step every thread touches different logits
// (the mask walks the row; bias ids and seen ids are distinct per row), so no atomics are needed.
// The mask pass reads one u32 per 32 logits (a warp shares it) and writes only masked logits.
// Graph-capturable: no allocation, no host reads of device memory. A row that asks for the mask
// without one (a value only the device sees) is reported through ctx.device_errors and that row's
// mask step is skipped, as the contract of cuda_kernels.h asks.
#include "common.cuh"

namespace updraft::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int32_t kFlagPenalties = 1;
constexpr int32_t kFlagBias = 2;
constexpr int32_t kFlagMask = 4;

// Explicit roundings (no FMA contraction), so the results equal the CPU reference bit for bit.
__device__ __forceinline__ float repetition(float logit, float r) {
  return logit > 0.0f ? __fdiv_rn(logit, r) : __fmul_rn(logit, r);
}
__device__ __forceinline__ float frequency_presence(float logit, int32_t count, float frequency, float presence) {
  return __fsub_rn(__fsub_rn(logit, __fmul_rn(frequency, static_cast<float>(count))), presence);
}

__global__ void __launch_bounds__(kThreads) process_logits_kernel(
    const int32_t *__restrict__ flags, const float *__restrict__ penalties, const int32_t *__restrict__ token_ids,
    const int32_t *__restrict__ token_counts, int64_t num_tokens, const int32_t *__restrict__ extra_ids,
    const int32_t *__restrict__ bias_ids, const float *__restrict__ bias_values, int64_t num_bias,
    const uint32_t *__restrict__ allowed, int64_t num_words, float *__restrict__ logits, int64_t vocab,
    DeviceErrorRecord *errors, int32_t launch_index) {
  const int64_t s = blockIdx.x;
  const int32_t f = flags[s];
  if (f == 0) return;
  float *row = logits + s * vocab;
  const int tid = threadIdx.x;

  if (f & kFlagMask) {
    if (num_words * 32 < vocab) {
      if (tid == 0) report_device_error(errors, kDeviceErrorOther, UD_OP_PROCESS_LOGITS, launch_index, s, num_words, vocab);
    } else {
      const uint32_t *words = allowed + s * num_words;
      const float neg_inf = __int_as_float(0xff800000);
      for (int64_t i = tid; i < vocab; i += kThreads)
        if (!((words[i >> 5] >> (i & 31)) & 1u)) row[i] = neg_inf;
    }
  }
  __syncthreads();
  if (f & kFlagBias) {
    for (int64_t j = tid; j < num_bias; j += kThreads) {
      const int32_t id = bias_ids[s * num_bias + j];
      if (id >= 0 && id < vocab) row[id] = __fadd_rn(row[id], bias_values[s * num_bias + j]);
    }
  }
  __syncthreads();
  if (!(f & kFlagPenalties)) return;
  __shared__ int extra_listed;
  if (tid == 0) extra_listed = 0;
  __syncthreads();
  const float presence = penalties[s * 3 + 0], frequency = penalties[s * 3 + 1], r = penalties[s * 3 + 2];
  const int32_t extra_raw = extra_ids ? extra_ids[s] : -1;
  const int32_t extra_id = extra_raw >= 0 && extra_raw < vocab ? extra_raw : -1;
  for (int64_t j = tid; j < num_tokens; j += kThreads) {
    const int32_t id = token_ids[s * num_tokens + j];
    if (id < 0 || id >= vocab) continue;
    int32_t count = token_counts[s * num_tokens + j];
    if (id == extra_id) {
      count += 1;
      extra_listed = 1;  // ids are distinct: at most one thread writes it
    }
    float x = repetition(row[id], r);
    if (count > 0) x = frequency_presence(x, count, frequency, presence);
    row[id] = x;
  }
  __syncthreads();
  if (tid == 0 && extra_id >= 0 && !extra_listed)
    row[extra_id] = frequency_presence(repetition(row[extra_id], r), 1, frequency, presence);
}

}  // namespace

ud_status launch_process_logits(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &flags = op.src[0];         // [R] i32
  const ud_tensor &penalties = op.src[1];     // [R, 3] f32
  const ud_tensor &token_ids = op.src[2];     // [R, P] i32
  const ud_tensor &token_counts = op.src[3];  // [R, P] i32
  const ud_tensor &extra_ids = op.src[4];     // [R] i32, optional
  const ud_tensor &bias_ids = op.src[5];      // [R, B] i32
  const ud_tensor &bias_values = op.src[6];   // [R, B] f32
  const ud_tensor &allowed = op.src[7];       // [R, W] u32, optional
  const ud_tensor &logits = op.dst[0];        // [S, V] f32, in place
  const auto fail = [&](ud_status status, const std::string &message) { return ctx.fail(status, "process_logits: " + message); };
  for (const ud_tensor *t : {&flags, &penalties, &token_ids, &token_counts, &bias_ids, &bias_values, &logits})
    if (!present(*t)) return fail(UD_ERR_INVALID_ARGUMENT, "src0-src3, src5, src6 and dst0 are required");
  if (flags.dtype != UD_I32 || token_ids.dtype != UD_I32 || token_counts.dtype != UD_I32 || bias_ids.dtype != UD_I32 ||
      (present(extra_ids) && extra_ids.dtype != UD_I32) || penalties.dtype != UD_F32 || bias_values.dtype != UD_F32 ||
      logits.dtype != UD_F32 || (present(allowed) && allowed.dtype != UD_U32))
    return fail(UD_ERR_UNSUPPORTED, "operand dtypes must be i32 (flags, ids, counts), f32 (penalties, bias values, logits), u32 (allowed)");
  const int64_t num_rows = numel(flags), vocab = row_size(logits);
  const int64_t num_tokens = row_size(token_ids), num_bias = row_size(bias_ids);
  const int64_t num_words = present(allowed) ? row_size(allowed) : 0;
  const int64_t mask_words = (vocab + 31) / 32;
  if (num_rows > rows(logits)) return fail(UD_ERR_INVALID_ARGUMENT, "src0 (flags) has more rows than dst0 (logits)");
  if (numel(penalties) != num_rows * 3 || rows(token_ids) != num_rows || rows(token_counts) != num_rows ||
      row_size(token_counts) != num_tokens || (present(extra_ids) && numel(extra_ids) != num_rows) ||
      rows(bias_ids) != num_rows || rows(bias_values) != num_rows || row_size(bias_values) != num_bias ||
      (present(allowed) && rows(allowed) != num_rows))
    return fail(UD_ERR_INVALID_ARGUMENT, "operand shapes do not match [R], [R, 3], [R, P] x2, [R], [R, B] x2, [R, W]");
  if (num_words != 0 && num_words != mask_words)
    return fail(UD_ERR_INVALID_ARGUMENT, "src7 (allowed) should have rows of 0 or " + std::to_string(mask_words) +
                                             " words for a vocabulary of " + std::to_string(vocab));
  if (num_rows == 0) return UD_OK;
  if (num_rows > 0x7fffffff) return fail(UD_ERR_INVALID_ARGUMENT, "too many rows");
  process_logits_kernel<<<static_cast<unsigned>(num_rows), kThreads, 0, ctx.stream>>>(
      static_cast<const int32_t *>(flags.data), static_cast<const float *>(penalties.data),
      static_cast<const int32_t *>(token_ids.data), static_cast<const int32_t *>(token_counts.data), num_tokens,
      present(extra_ids) ? static_cast<const int32_t *>(extra_ids.data) : nullptr,
      static_cast<const int32_t *>(bias_ids.data), static_cast<const float *>(bias_values.data), num_bias,
      present(allowed) ? static_cast<const uint32_t *>(allowed.data) : nullptr, num_words,
      static_cast<float *>(logits.data), vocab, ctx.device_errors, ctx.launch_index);
  return check_launch(ctx, "process_logits");
}

}  // namespace updraft::cuda
