// UD_OP_ROPE_KV_WRITE: rotate q and k (rotate-half layout on the first rotary_dim features of each
// head), write q to q_out and k, v into the paged cache row slot_mapping[t] (skipped when -1).
//
// As on the CPU (kernels/cpu/rope_kv_write.cc): angle = float(position) * inv_freq[i] in f32, then the
// accurate sincosf of that f32 (not __sinf: large positions need the full range reduction); each
// rotated value is a*cos - b*sin (or b*cos + a*sin) with every product and sum rounded separately
// (_rn intrinsics: no FMA contraction), rounded once to the destination dtype.
//
// One block per token: its threads first fill a cos/sin table for the token's position in shared
// memory, then walk the token's (numHeads + 2 numKvHeads) * headDim features; consecutive threads take
// consecutive features, so reads of qkv and writes of q / the cache row are coalesced.
//
// A slot outside [-1, numSlots) is an error only the device can see: it is recorded in
// ctx.device_errors (reported at the next synchronize, as the CPU kernel's message) and the token's
// k and v are not written.
//
// CUDA restriction: q_out has qkv's dtype and v_cache has k_cache's (the cache dtype may differ, and
// may be FP8 E4M3: from_float<__nv_fp8_e4m3> rounds to nearest even and saturates at +-448).
#include "rowwise.cuh"

namespace updraft::cuda {
namespace {

template <typename T, typename C>
__global__ void rope_kv_write_kernel(const T *__restrict__ qkv,                // [numTokens, nH + 2 nKV, D]
                                     const int32_t *__restrict__ positions,    // [numTokens]
                                     const float *__restrict__ inv_freq,       // [rotary_dim / 2]
                                     const int32_t *__restrict__ slot_mapping, // [numTokens]
                                     T *__restrict__ q_out,                    // [numTokens, nH, D]
                                     C *__restrict__ k_cache,                  // [numSlots, nKV, D]
                                     C *__restrict__ v_cache,                  // [numSlots, nKV, D]
                                     int num_heads, int num_kv_heads, int head_dim, int rotary_dim,
                                     int64_t num_slots, DeviceErrorRecord *errors, int32_t launch_index) {
  extern __shared__ float trig[];  // cos in [0, half), sin in [half, 2 half)
  const int64_t t = blockIdx.x;
  const int half = rotary_dim / 2;
  const float position = static_cast<float>(positions[t]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(__fmul_rn(position, inv_freq[i]), &s, &c);
    trig[i] = c;
    trig[half + i] = s;
  }
  const int32_t slot = slot_mapping[t];
  const bool slot_ok = slot >= -1 && slot < num_slots;
  if (!slot_ok && threadIdx.x == 0)
    report_device_error(errors, kSlotOutOfRange, UD_OP_ROPE_KV_WRITE, launch_index, t, slot, num_slots);
  __syncthreads();

  const int rotated_heads = num_heads + num_kv_heads;  // q heads, then k heads; v heads are copied
  const int row_len = (num_heads + 2 * num_kv_heads) * head_dim;
  const int q_len = num_heads * head_dim, kv_len = num_kv_heads * head_dim;
  const T *row = qkv + t * row_len;
  const bool write_kv = slot_ok && slot >= 0;
  for (int e = threadIdx.x; e < row_len; e += blockDim.x) {
    const int h = e / head_dim, j = e - h * head_dim;
    float value = to_float(row[e]);
    if (h < rotated_heads && j < rotary_dim) {
      if (j < half) {
        const float other = to_float(row[e + half]);
        value = __fsub_rn(__fmul_rn(value, trig[j]), __fmul_rn(other, trig[half + j]));
      } else {
        const int i = j - half;
        const float other = to_float(row[e - half]);
        value = __fadd_rn(__fmul_rn(value, trig[i]), __fmul_rn(other, trig[half + i]));
      }
    }
    if (e < q_len) {
      q_out[t * q_len + e] = from_float<T>(value);
    } else if (write_kv) {
      const int64_t cache_row = static_cast<int64_t>(slot) * kv_len;
      if (e < q_len + kv_len) k_cache[cache_row + (e - q_len)] = from_float<C>(value);
      else v_cache[cache_row + (e - q_len - kv_len)] = from_float<C>(value);
    }
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

  rowwise::Checker check(ctx, "rope_kv_write");
  check.required(qkv, "src0 (qkv)").required(positions, "src1 (positions)").required(inv_freq, "src2 (inv_freq)")
      .required(slot_mapping, "src3 (slot_mapping)").required(q_out, "dst0 (q_out)")
      .required(k_cache, "dst1 (k_cache)").required(v_cache, "dst2 (v_cache)")
      .float_dtype(qkv, "src0 (qkv)").dtype(positions, UD_I32, "src1 (positions)")
      .dtype(inv_freq, UD_F32, "src2 (inv_freq)").dtype(slot_mapping, UD_I32, "src3 (slot_mapping)")
      .float_dtype(q_out, "dst0 (q_out)").kv_dtype(k_cache, "dst1 (k_cache)")
      .kv_dtype(v_cache, "dst2 (v_cache)")
      .same_dtype(q_out, qkv, "dst0 (q_out)", "src0 (qkv)").same_dtype(v_cache, k_cache, "dst2 (v_cache)", "dst1 (k_cache)")
      .that(p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0, "num_heads, num_kv_heads and head_dim must be > 0")
      .that(p.rotary_dim >= 0 && p.rotary_dim <= p.head_dim && p.rotary_dim % 2 == 0,
            "rotary_dim must be even and in [0, head_dim], got " + std::to_string(p.rotary_dim));
  if (!check.ok()) return check.status();
  const int64_t num_tokens = rows(qkv), head_dim = p.head_dim, kv_row = int64_t{p.num_kv_heads} * head_dim;
  const int64_t qkv_row = (int64_t{p.num_heads} + 2 * int64_t{p.num_kv_heads}) * head_dim;
  check.row_size_is(qkv, qkv_row, "src0 (qkv)").numel_is(positions, num_tokens, "src1 (positions)")
      .numel_is(inv_freq, p.rotary_dim / 2, "src2 (inv_freq)").numel_is(slot_mapping, num_tokens, "src3 (slot_mapping)")
      .rows_are(q_out, num_tokens, "dst0 (q_out)").numel_is(q_out, num_tokens * p.num_heads * head_dim, "dst0 (q_out)")
      .that(numel(k_cache) % kv_row == 0, "dst1 (k_cache) " + rowwise::shape_string(k_cache) +
                                             " is not a whole number of [numKvHeads, headDim] rows")
      .numel_is(v_cache, numel(k_cache), "dst2 (v_cache)")
      .that(qkv_row <= 0x7fffffff, "qkv rows are too long");
  if (!check.ok()) return check.status();
  if (num_tokens == 0) return UD_OK;
  if (num_tokens > 0x7fffffff) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "rope_kv_write: too many tokens");
  const int64_t num_slots = numel(k_cache) / kv_row;

  const int threads = rowwise::threads_for(qkv_row, 256);
  const size_t smem = static_cast<size_t>(p.rotary_dim) * sizeof(float);
  bool dispatched = false;
  dispatch_float(qkv.dtype, [&](auto t_tag) { dispatched = dispatch_kv(k_cache.dtype, [&](auto c_tag) {
    using T = decltype(t_tag);
    using C = decltype(c_tag);
    rope_kv_write_kernel<T, C><<<static_cast<unsigned>(num_tokens), threads, smem, ctx.stream>>>(
        static_cast<const T *>(qkv.data), static_cast<const int32_t *>(positions.data),
        static_cast<const float *>(inv_freq.data), static_cast<const int32_t *>(slot_mapping.data),
        static_cast<T *>(q_out.data), static_cast<C *>(k_cache.data), static_cast<C *>(v_cache.data), p.num_heads,
        p.num_kv_heads, p.head_dim, p.rotary_dim, num_slots, ctx.device_errors, ctx.launch_index);
  }); });
  if (!dispatched) return ctx.fail(UD_ERR_UNSUPPORTED, "rope_kv_write: unsupported dtypes");
  return check_launch(ctx, "rope_kv_write");
}

}  // namespace updraft::cuda
