// attention.cu — UD_OP_ATTENTION on CUDA: operand checks, the variant ladder, launches.
//
// Semantics: kernels/ops.h and the CPU reference (kernels/cpu/attention.cc). Launches only enqueue
// work on ctx.stream: no allocation, no synchronisation, no host reads of device memory, so they can
// be captured into a CUDA graph and replayed with new seq_lens / block tables / query_start_loc.
// Because the host cannot look at those index tensors, the kernels check them on the device and
// report what the CPU backend would reject (block id outside the cache, seq_len < query rows, seq_len
// beyond the block table, bad query_start_loc) through ctx.device_errors, which the backend turns
// into the CPU kernel's message at its next synchronise; meanwhile they clamp / mask, so they never
// read or write out of bounds (attention_common.cuh).
//
// Variant ladder (op.params.attention.variant; the numbers are stable):
//   0  auto. numTokens == numSeqs (the only host-side sign that every sequence has one query row)
//      → 4 when it fits, else 2; otherwise (a prompt / mixed step) 5 when it fits (UPDRAFT_ATTN_SPLIT_MIXED=0:
//      3), else 2 when it fits, else 1. Variants 2-4 also need 16-byte aligned q / k_cache / v_cache / out addresses;
//      auto falls back to 1 when they are not.
//   1  simple (attention_simple.cuh, launched here): one CTA per (query row, q head), online softmax in f32 over
//      the row's positions through the block table. Any float dtypes, k and v alike also FP8 E4M3, any
//      head dim 1..1024, any block size. The fallback and the reference the others are checked against.
//   2  decode / flash-decoding (attention_decode.cuh, host side in attention_decode.cu): one CTA per (query row, kv head [, head
//      subgroup], split), all q heads of a GQA group at once, 16-byte cp.async loads in a 4-stage
//      per-warp pipeline, CUDA-core f32 math, split-KV with a deterministic reduce. Right for any
//      batch layout (rows are mapped on the device), built for one query row per sequence.
//      q / cache / out all bf16 or all f16; head dim 8, 16, 32, 64, 128 or 256; any block size.
//   3  prefill (attention_prefill.cuh, host side in attention_prefill.cu): FlashAttention-2-style 64-row (query rows × GQA heads) tiles
//      on mma.sync.m16n8k16 tensor cores, ldmatrix, cp.async double-buffered paged k/v tiles, causal
//      mask only on diagonal tiles; right for mixed steps (prompt, chunked prefill and decode rows).
//      q / cache / out all bf16 or all f16; head dim 64 or 128; any block size.
//   4  decode on tensor cores (attention_decode_tc.cuh, host side in attention_decode.cu): variant 2's
//      work split, pipelines and split-KV, with the GQA group's heads as the M rows of
//      mma.sync.m16n8k16 (Q·Kᵀ and P·V), ~10x fewer instructions per k/v byte than variant 2.
//      q / cache / out all bf16 or all f16; head dim 64 or 128; any block size.
//   5  mixed steps: variant 4 for the sequences with one query row (decode rows: a CTA per sequence,
//      split-KV), then variant 3 for the others (prompts, chunks), each skipping the other's rows.
//      Variant 3 on a decode row fills 4 of its 64 M rows and streams the row's k/v with 2 CTAs per
//      SM and no split; on the H200 a continuous-batching step is mostly decode rows (throughput
//      runs: ~500 of them next to one prompt chunk), so they go to the kernel built for them.
//      Same dtypes and head dims as 3 and 4.
//   FP8 E4M3 cache (--kv-cache-dtype fp8; q and out bf16 or f16): variants 1, 3, 4 and 5. Variant 4 runs
//   attention_decode_tc_fp8.cuh (fragments widened in registers, f16 mma); variant 3 widens each
//   k/v tile into shared memory. Variant 2 refuses it, so auto never picks it for an FP8 cache.
//
// Resources (nvcc 13.0, -gencode arch=compute_90a,code=sm_90a, -Xptxas -v; no spills, no stack):
//   see kernels/dev/attention/PREDICTIONS.md ("Resources") for the per-instantiation table.
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "attention.cuh"
#include "attention_host.cuh"
#include "attention_simple.cuh"
#include "env_switch.h"

namespace updraft::cuda {
namespace {

using attn::Args;

constexpr int kNumVariants = 5;

// Auto sends mixed steps to variant 5; UPDRAFT_ATTN_SPLIT_MIXED=0 keeps them on variant 3 (read once).
bool split_mixed_by_env() {
  static const bool enabled = env_switch_on("UPDRAFT_ATTN_SPLIT_MIXED");
  return enabled;
}

bool is_16bit(int32_t d) { return d == UD_BF16 || d == UD_F16; }

bool params_valid(const ud_attention_params &p) {
  return p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0 && p.block_size > 0 &&
         p.num_heads % p.num_kv_heads == 0;
}

// Dtype / head-dim fit of each variant; nothing here looks at shapes or data.
bool fits_simple(const ud_op &op) {
  const ud_attention_params &p = op.params.attention;
  return is_float_dtype(op.src[0].dtype) && is_kv_dtype(op.src[1].dtype) && op.src[1].dtype == op.src[2].dtype &&
         is_float_dtype(op.dst[0].dtype) && p.head_dim <= attn::kSimpleMaxHeadDim;
}
bool same_16bit(const ud_op &op) {
  const int32_t d = op.src[0].dtype;
  return is_16bit(d) && op.src[1].dtype == d && op.src[2].dtype == d && op.dst[0].dtype == d;
}
// The tensor-core variants (3, 4, 5): q and out of one 16-bit dtype, the cache of that dtype or FP8.
bool tc_dtypes(const ud_op &op) {
  const int32_t d = op.src[0].dtype, kv = op.src[1].dtype;
  return is_16bit(d) && op.dst[0].dtype == d && op.src[2].dtype == kv && (kv == d || kv == UD_F8E4M3);
}
bool fits_decode(const ud_op &op) {
  const int hd = op.params.attention.head_dim;
  return same_16bit(op) && (hd == 8 || hd == 16 || hd == 32 || hd == 64 || hd == 128 || hd == 256);
}
bool fits_prefill(const ud_op &op) {
  const int hd = op.params.attention.head_dim;
  return tc_dtypes(op) && (hd == 64 || hd == 128);
}
bool fits_decode_tc(const ud_op &op) { return fits_prefill(op); }  // same dtypes and head dims
bool aligned16(const ud_op &op) {
  for (const ud_tensor *t : {&op.src[0], &op.src[1], &op.src[2], &op.dst[0]})
    if (reinterpret_cast<uintptr_t>(t->data) % 16 != 0) return false;
  return true;
}




// --- variant 1 ---------------------------------------------------------------------------------
ud_status run_simple(const ud_op &op, const Args &a, KernelContext &ctx) {
  cudaError_t err = cudaSuccess;
  const bool known = dispatch_float(op.src[0].dtype, [&](auto tq) {
    using TQ = decltype(tq);
    dispatch_kv(op.src[1].dtype, [&](auto tkv) {
      using TKV = decltype(tkv);
      err = attn::launch_simple_typed<TQ, TKV>(a, ctx.stream);
    });
  });
  if (!known) return ctx.fail(UD_ERR_UNSUPPORTED, "attention: variant 1 got an unknown dtype");
  if (err != cudaSuccess) return ctx.fail(UD_ERR_DEVICE, std::string("attention (variant 1): ") + cudaGetErrorString(err));
  return UD_OK;
}

}  // namespace

int attention_num_variants() { return kNumVariants; }

int32_t attention_supports(const ud_op &op) {
  if (op.kind != UD_OP_ATTENTION || op.n_src < 6 || op.n_dst < 1) return 0;
  for (int i = 0; i < 3; i++)
    if (present(op.src[i]) && !(i == 0 ? is_float_dtype(op.src[i].dtype) : is_kv_dtype(op.src[i].dtype))) return 0;
  for (int i = 3; i < 6; i++)
    if (present(op.src[i]) && op.src[i].dtype != UD_I32) return 0;
  if (present(op.dst[0]) && !is_float_dtype(op.dst[0].dtype)) return 0;
  // Missing operands and bad params are launch_attention's to report (UD_ERR_INVALID_ARGUMENT).
  if (!present(op.src[0]) || !present(op.src[1]) || !present(op.src[2]) || !present(op.dst[0])) return 1;
  if (!params_valid(op.params.attention)) return 1;
  switch (op.params.attention.variant) {
    case 0:
    case 1: return fits_simple(op) ? 1 : 0;
    case 2: return fits_decode(op) ? 1 : 0;
    case 3: return fits_prefill(op) ? 1 : 0;
    case 4: return fits_decode_tc(op) ? 1 : 0;
    case 5: return fits_decode_tc(op) && fits_prefill(op) ? 1 : 0;
    default: return 0;
  }
}

ud_status launch_attention(const ud_op &op, KernelContext &ctx) {
  const auto fail = [&](const std::string &message) { return ctx.fail(UD_ERR_INVALID_ARGUMENT, "attention: " + message); };
  if (op.n_src < 6 || op.n_dst < 1) return fail("needs 6 sources and 1 destination");
  const ud_tensor &q = op.src[0], &k_cache = op.src[1], &v_cache = op.src[2];
  const ud_tensor &block_tables = op.src[3], &seq_lens = op.src[4], &query_start_loc = op.src[5];
  const ud_tensor &out = op.dst[0];
  const ud_attention_params &p = op.params.attention;
  const char *names[6] = {"src0 (q)", "src1 (k_cache)", "src2 (v_cache)", "src3 (block_tables)", "src4 (seq_lens)",
                          "src5 (query_start_loc)"};
  for (int i = 0; i < 6; i++) {
    if (!present(op.src[i])) return fail(std::string(names[i]) + " is required");
    if (i == 0 ? !is_float_dtype(op.src[i].dtype) : i < 3 ? !is_kv_dtype(op.src[i].dtype) : op.src[i].dtype != UD_I32)
      return fail(std::string(names[i]) + " has dtype " + dtype_name(op.src[i].dtype));
  }
  if (!present(out)) return fail("dst0 (out) is required");
  if (!is_float_dtype(out.dtype)) return fail(std::string("dst0 (out) has dtype ") + dtype_name(out.dtype));
  if (!params_valid(p)) return fail("num_heads, num_kv_heads, head_dim and block_size must be > 0, num_heads a multiple of num_kv_heads");
  if (!std::isfinite(p.scale)) return fail("scale must be finite");

  const int64_t num_tokens = rows(q), num_seqs = numel(seq_lens), head_dim = p.head_dim;
  const int64_t kv_row = int64_t{p.num_kv_heads} * head_dim, block_elems = int64_t{p.block_size} * kv_row;
  const int64_t q_row = int64_t{p.num_heads} * head_dim;
  if (row_size(q) != q_row) return fail("src0 (q) rows must hold numHeads * headDim elements");
  if (numel(k_cache) % block_elems != 0) return fail("src1 (k_cache) is not a whole number of [blockSize, numKvHeads, headDim] blocks");
  if (k_cache.ndim == 4 && (k_cache.ne[1] != p.block_size || k_cache.ne[2] != p.num_kv_heads || k_cache.ne[3] != head_dim))
    return fail("src1 (k_cache) does not match block_size, num_kv_heads and head_dim");
  if (numel(v_cache) != numel(k_cache)) return fail("src2 (v_cache) must have as many elements as src1 (k_cache)");
  if (rows(block_tables) != num_seqs) return fail("src3 (block_tables) needs one row per sequence");
  if (numel(query_start_loc) != num_seqs + 1) return fail("src5 (query_start_loc) needs numSeqs + 1 entries");
  if (rows(out) != num_tokens || row_size(out) != q_row) return fail("dst0 (out) must be [numTokens, numHeads * headDim]");
  if (num_tokens == 0 || num_seqs == 0) return UD_OK;

  const int64_t num_blocks = numel(k_cache) / block_elems, max_blocks = row_size(block_tables);
  if (num_tokens > INT_MAX || num_seqs >= INT_MAX || num_blocks * p.block_size > INT_MAX || p.num_heads > 65535)
    return ctx.fail(UD_ERR_UNSUPPORTED, "attention: sizes beyond 32-bit row / block indexing");

  Args a{};
  a.q = q.data;
  a.k = k_cache.data;
  a.v = v_cache.data;
  a.out = out.data;
  a.block_tables = static_cast<const int32_t *>(block_tables.data);
  a.seq_lens = static_cast<const int32_t *>(seq_lens.data);
  a.qsl = static_cast<const int32_t *>(query_start_loc.data);
  a.ws = nullptr;
  a.num_tokens = static_cast<int32_t>(num_tokens);
  a.num_seqs = static_cast<int32_t>(num_seqs);
  a.num_heads = p.num_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.head_dim = p.head_dim;
  a.block_size = p.block_size;
  a.max_blocks = static_cast<int32_t>(std::min<int64_t>(max_blocks, INT_MAX));
  a.ctx_cap = static_cast<int32_t>(std::min<int64_t>(max_blocks * p.block_size, INT_MAX));
  a.num_blocks = static_cast<int32_t>(num_blocks);
  a.block_shift = -1;
  for (int sh = 0; sh < 31; sh++)
    if ((1 << sh) == p.block_size) a.block_shift = sh;
  a.group = p.num_heads / p.num_kv_heads;
  a.out_dtype = out.dtype;
  a.scale = p.scale;
  a.errors = ctx.device_errors;
  a.launch_index = ctx.launch_index;
  a.kv_fp8 = k_cache.dtype == UD_F8E4M3 ? 1 : 0;

  int variant = p.variant;
  if (variant == 0) {
    const bool fast_ok = aligned16(op);
    if (fast_ok && num_tokens == num_seqs && fits_decode_tc(op)) variant = 4;
    else if (fast_ok && num_tokens == num_seqs && fits_decode(op)) variant = 2;
    else if (fast_ok && fits_prefill(op) && fits_decode_tc(op) && split_mixed_by_env()) variant = 5;
    else if (fast_ok && fits_prefill(op)) variant = 3;
    else if (fast_ok && fits_decode(op)) variant = 2;
    else variant = 1;
  }
  switch (variant) {
    case 1:
      if (!fits_simple(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 1): needs k and v of one dtype (float or f8e4m3) and head_dim <= 1024");
      return run_simple(op, a, ctx);
    case 2:
      if (!fits_decode(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 2): needs q, cache and out all bf16 or all f16, head_dim 8/16/32/64/128/256");
      if (!aligned16(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 2): operands must be 16-byte aligned");
      return attn::launch_decode(op.src[0].dtype, a, ctx, false);
    case 3:
      if (!fits_prefill(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 3): needs q and out both bf16 or both f16, the cache of their dtype or f8e4m3, head_dim 64/128");
      if (!aligned16(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 3): operands must be 16-byte aligned");
      return attn::launch_prefill(op.src[0].dtype, a, ctx);
    case 4:
      if (!fits_decode_tc(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 4): needs q and out both bf16 or both f16, the cache of their dtype or f8e4m3, head_dim 64/128");
      if (!aligned16(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 4): operands must be 16-byte aligned");
      return attn::launch_decode(op.src[0].dtype, a, ctx, true);
    case 5: {
      if (!fits_decode_tc(op) || !fits_prefill(op))
        return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 5): needs q and out both bf16 or both f16, the cache of their dtype or f8e4m3, head_dim 64/128");
      if (!aligned16(op)) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 5): operands must be 16-byte aligned");
      Args decode_rows = a, prompt_rows = a;
      decode_rows.rows = attn::kSingleRowSeqs;
      prompt_rows.rows = attn::kMultiRowSeqs;
      if (ud_status st = attn::launch_decode(op.src[0].dtype, decode_rows, ctx, true); st != UD_OK) return st;
      return attn::launch_prefill(op.src[0].dtype, prompt_rows, ctx);
    }
    default:
      return ctx.fail(UD_ERR_UNSUPPORTED, "attention: no variant " + std::to_string(variant) + " (1.." + std::to_string(kNumVariants) + ")");
  }
}

}  // namespace updraft::cuda
