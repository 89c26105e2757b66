/*
 * ops.h — the op set every backend implements, with one parameter struct per op.
 *
 * This header is shared by the CPU reference kernels (kernels/cpu), the CUDA kernels (kernels/cuda),
 * the AscendC kernels (kernels/ascendc) and the executor (native/src). It is plain C so that every
 * toolchain (g++, nvcc, bisheng) can include it.
 *
 * Conventions
 * - Tensors are dense and row-major; `ne[0]` is the OUTERMOST dimension (shape order as in PyTorch).
 * - Activations may be f32, bf16 or f16; weights may be f32, bf16 or f16; index tensors are i32.
 *   Every kernel accumulates in f32.
 * - An op reads `src[i]` and writes `dst[i]`. Optional operands have `data == NULL`.
 *   A dst may alias a src only where the op says so.
 * - Slot / block ids of -1 mean "padding: skip".
 */
#ifndef UPDRAFT_OPS_H
#define UPDRAFT_OPS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ud_dtype {
  UD_F32 = 0,
  UD_F16 = 1,
  UD_BF16 = 2,
  UD_I32 = 3,
  UD_U32 = 4,
  UD_U64 = 5,
  /* FP8 E4M3 (OCP "e4m3fn": bias 7, no infinities, 0x7f/0xff NaN, max finite 448). Storage only:
   * the KV cache (rope_kv_write's k/v destinations, attention's k/v sources) on backends that
   * report it; values are stored unscaled (scale 1.0), saturated to +-448, rounded to nearest even. */
  UD_F8E4M3 = 6,
  UD_DTYPE_COUNT
} ud_dtype;

static inline size_t ud_dtype_size(ud_dtype t) {
  switch (t) {
    case UD_F32: case UD_I32: case UD_U32: return 4;
    case UD_F16: case UD_BF16: return 2;
    case UD_U64: return 8;
    case UD_F8E4M3: return 1;
    default: return 0;
  }
}

#define UD_MAX_DIMS 4
#define UD_MAX_SRC 8
#define UD_MAX_DST 4

/* A view of device memory. `ne` holds `ndim` sizes, outermost first; the rest are 1. */
typedef struct ud_tensor {
  void *data;
  int32_t dtype; /* ud_dtype */
  int32_t ndim;
  int64_t ne[UD_MAX_DIMS];
} ud_tensor;

typedef enum ud_op_kind {
  /* src0 table [vocab, hidden] (weight dtype), src1 ids [numTokens] i32
   * dst0 out [numTokens, hidden] (activation dtype). Ids outside [0, vocab) produce zero rows. */
  UD_OP_EMBEDDING = 0,

  /* y = x · Wᵀ (+ bias).  src0 x [M, K], src1 W [N, K], src2 bias [N] (optional)
   * dst0 y [M, N] (any float dtype; f32 for logits). */
  UD_OP_MATMUL = 1,

  /* RMSNorm, optionally fused with the residual add (vLLM's fused_add_rms_norm).
   * add_residual == 0:  dst0 = rmsnorm(src0) * weight;             dst1 (optional) = src0
   * add_residual == 1:  dst1 = src0 + src1;  dst0 = rmsnorm(dst1) * weight   (dst1 may alias src1)
   * src0 x [M, H], src1 residual [M, H], src2 weight [H]; dst0 out [M, H], dst1 residual out [M, H].
   * The sum is rounded to the residual dtype before it is normalised (as HF does). */
  UD_OP_RMSNORM = 2,

  /* Rotary embedding fused with the write of K and V into the paged cache.
   * src0 qkv [numTokens, numHeads + 2*numKvHeads, headDim] (q heads, then k heads, then v heads)
   * src1 positions [numTokens] i32, src2 inv_freq [rotaryDim/2] f32, src3 slot_mapping [numTokens] i32
   * dst0 q_out [numTokens, numHeads, headDim] (rotated q)
   * dst1 k_cache [numBlocks, blockSize, numKvHeads, headDim], dst2 v_cache (same shape)
   * Token t's rotated k and its v go to cache row slot_mapping[t] = block * blockSize + offset
   * (skipped when -1). Rotation is the rotate-half (GPT-NeoX / HF Llama) layout on the first
   * rotaryDim features: angle = position * inv_freq[i] computed in f32. */
  UD_OP_ROPE_KV_WRITE = 3,

  /* Paged causal attention with GQA for a batch of sequences, prompt and decode tokens alike.
   * src0 q [numTokens, numHeads, headDim], src1 k_cache, src2 v_cache [numBlocks, blockSize, numKvHeads, headDim]
   * src3 block_tables [numSeqs, maxBlocksPerSeq] i32, src4 seq_lens [numSeqs] i32,
   * src5 query_start_loc [numSeqs + 1] i32
   * dst0 out [numTokens, numHeads * headDim]
   * Sequence s owns query rows [query_start_loc[s], query_start_loc[s+1]); with queryLen = that count,
   * its query row j sits at position seq_lens[s] - queryLen + j and attends to cache positions
   * [0, that position]. Rows of a sequence with seq_lens[s] == 0 are left untouched. */
  UD_OP_ATTENTION = 4,

  /* src0 gate_up [M, 2*I] (gate in the first half of each row, up in the second)
   * dst0 out [M, I] = silu(gate) * up. */
  UD_OP_SILU_MUL = 5,

  /* dst0[i, :] = src0[src1[i], :].  src0 x [T, H], src1 indices [S] i32; dst0 [S, H].
   * Indices outside [0, T) (e.g. -1 padding) produce zero rows. */
  UD_OP_GATHER_ROWS = 6,

  /* Token sampling, one row of logits per sequence.
   * src0 logits [S, V] f32; src1 temperature [S] f32; src2 top_k [S] i32; src3 top_p [S] f32;
   * src4 min_p [S] f32; src5 seeds [S] u64; src6 sample_counters [S] i32
   * dst0 token_ids [S] i32; dst1 token_logprobs [S] f32;
   * dst2 top_ids [S, K] i32 (optional); dst3 top_logprobs [S, K] f32 (optional). K is the column count
   * of the dst2/dst3 views (a per-step dim in a program); num_top_logprobs, when > 0, is its upper bound.
   * NaN logits count as -inf. temperature == 0 (or negative / NaN) → greedy: argmax of the raw
   * logits, lowest id on ties. Otherwise s = logits / temperature (an f32 division), p = softmax(s),
   * and the kept set is {i : p_i >= threshold}, threshold the largest of
   *   top-k: the top_k-th largest p (off when top_k <= 0 or top_k >= V);
   *   top-p: the p of the last token of the smallest non-empty prefix of the top-k set sorted by
   *          descending p whose mass reaches top_p of the top-k set's mass, i.e. the largest
   *          t <= p_max with sum(p_i >= t) p_i >= top_p * sum(top-k set) p_i (off when top_p >= 1
   *          or NaN);
   *   min-p: min_p * p_max (off when min_p <= 0 or NaN),
   * capped at p_max, so the most likely token is always kept. Ties: every token whose p equals the
   * threshold is kept, so the set can hold more than top_k tokens or more than the top-p prefix
   * (ties are equal scaled logits s; p is a monotone function of s). The token is drawn by inverse CDF
   * over the kept set in ASCENDING ID order (the same distribution as any other order, and no sort):
   * u = ud_uniform(seeds[s], sample_counters[s]), target = u * sum(kept) p_i, token = the first kept
   * id whose running sum of p exceeds target (the last kept id if rounding leaves none). When s has
   * no finite maximum (all -inf, or a tiny temperature overflowed to +inf): the lowest id holding it.
   * Backends may compute p and its sums in their own precision (the CPU reference uses f64), so a
   * token whose membership or draw lies within rounding of a boundary may differ between backends.
   * Logprobs are log-softmax of the raw (unscaled) logits, as vLLM returns by default; the top-K are
   * the K largest raw logprobs, descending, ties by lower id. */
  UD_OP_SAMPLE = 7,

  /* Fill dst0 with deterministic pseudo-random values, N(0, std²)-like, never all zero.
   * Used by `--load-format dummy`. */
  UD_OP_FILL_RANDOM = 8,

  /* Token ids of a step whose last sampled tokens are still on the device (async scheduling: the host
   * schedules step N+1 before step N's samples come back).
   * src0 ids [T] i32; src1 sources [T] i32 (optional); src2 table [R] i32 (optional)
   * dst0 out [D] i32 with D >= T: out[i] = sources[i] >= 0 ? table[sources[i]] : ids[i] for i < T;
   * out[T..D) untouched. Without sources it is a copy (how a step saves its samples for the next).
   * A source outside [0, R) is an error reported by the backend, and that row keeps ids[i]. */
  UD_OP_SELECT_TOKENS = 9,

  /* Logits processing before UD_OP_SAMPLE, in place: token bans and the allowed-token mask of
   * structured output, OpenAI logit_bias, and the repetition / presence / frequency penalties.
   * dst0 logits [S, V] f32, read and written (no src holds it). R = rows(src0) <= S: rows [0, R) are
   *   processed, rows [R, S) are untouched; R == 0 is a no-op (no launch: a step where no request
   *   uses any of this passes R = 0).
   * src0 flags [R] i32: bit 0 (1) penalties, bit 1 (2) bias, bit 2 (4) mask. A row with flags 0 is
   *   untouched, and the row's data in every other operand is not read (it may hold anything).
   * src1 penalties [R, 3] f32: presence, frequency, repetition (neutral: 0, 0, 1).
   * src2 token_ids [R, P] i32 and src3 token_counts [R, P] i32: the row's "seen" tokens, each id
   *   once: count = its occurrences in the output so far (>= 0); an entry with count 0 is a token
   *   that occurs only in the prompt. Entries with an id outside [0, V) are padding (skipped,
   *   wherever they are). Ids must be distinct within a row (duplicates: unspecified result).
   * src4 extra_ids [R] i32 (optional): one more output occurrence per row, not in the lists above
   *   (async scheduling: the previous step's sample, still on the device); outside [0, V): none.
   *   If the id is in the row's list its count is taken as count + 1, else it is a seen token with
   *   count 1.
   * src5 bias_ids [R, B] i32 and src6 bias_values [R, B] f32: additive biases (logit_bias; -inf
   *   bans, e.g. EOS and stop ids before min_tokens). Ids outside [0, V) are padding; ids must be
   *   distinct within a row.
   * src7 allowed [R, W] u32 (optional), W = ceil(V / 32): token i is allowed when bit (i & 31) of
   *   word (i >> 5) is set. Needed (W == ceil(V/32)) when a row has flag 4.
   * For each row with flags != 0, in this order (vLLM's), all arithmetic in f32:
   *   1. mask (flag 4): logit[i] = -inf for every token i whose bit is 0;
   *   2. bias (flag 2): logit[id] += value for each bias entry;
   *   3. repetition (flag 1, r = penalties[2]): for each seen token (list entries and the extra id),
   *      logit = logit > 0 ? logit / r : logit * r  (HF / vLLM; r = 1 leaves it exactly as it was);
   *   4. frequency, then presence (flag 1): for each seen token with c = its output count > 0,
   *      logit = (logit - frequency * c) - presence   (OpenAI's formula in vLLM's order; a backend
   *      may fuse the multiply-subtract, so results agree to f32 rounding, not bit for bit).
   * -inf stays -inf through every step (r > 0 and the penalties are finite: the host validates), so
   * a masked or banned token cannot come back. NaN logits stay NaN (the sample op reads them as
   * -inf). A row whose every token ends up -inf is left that way; UD_OP_SAMPLE then returns its
   * lowest id (the host avoids such rows: structured output always allows EOS at a dead end). */
  UD_OP_PROCESS_LOGITS = 10,

  /* Tensor parallelism: the sum over the ranks of a group, in place, after a row-parallel matmul
   * (o_proj, down_proj: each rank holds a partial sum of the full product).
   * dst0 data [any shape] f32, bf16 or f16, read and written; no src.
   * Not a kernel: the executor runs it through the program's communicator (device_abi.h,
   * ud_comm_iface); backends report it unsupported and never see it launched. A program of one rank
   * (no communicator) treats it as a no-op: the sum over one rank is its own value. */
  UD_OP_ALL_REDUCE = 11,

  UD_OP_COUNT
} ud_op_kind;

/* `variant` (matmul, attention): 0 = the backend picks its best kernel for the shape; k > 0 = the
 * k-th kernel of the backend's ladder, so tests check every variant and benchmarks time each.
 * A backend without that variant returns UD_ERR_UNSUPPORTED. */
typedef struct ud_matmul_params { int32_t variant; } ud_matmul_params;
typedef struct ud_rmsnorm_params { float eps; int32_t add_residual; } ud_rmsnorm_params;
typedef struct ud_rope_kv_write_params {
  int32_t num_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t rotary_dim; /* <= head_dim, even */
} ud_rope_kv_write_params;
typedef struct ud_attention_params {
  float scale;         /* usually 1/sqrt(headDim) */
  int32_t num_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t block_size;
  int32_t variant;
} ud_attention_params;
typedef struct ud_sample_params { int32_t num_top_logprobs; } ud_sample_params;
typedef struct ud_fill_random_params { uint64_t seed; float std; } ud_fill_random_params;

typedef union ud_op_params {
  ud_matmul_params matmul;
  ud_rmsnorm_params rmsnorm;
  ud_rope_kv_write_params rope_kv_write;
  ud_attention_params attention;
  ud_sample_params sample;
  ud_fill_random_params fill_random;
} ud_op_params;

/* One op ready to launch: kind, params and tensor views. Plain data, so it can be stored and replayed. */
typedef struct ud_op {
  int32_t kind; /* ud_op_kind */
  int32_t n_src;
  int32_t n_dst;
  ud_op_params params;
  ud_tensor src[UD_MAX_SRC];
  ud_tensor dst[UD_MAX_DST];
} ud_op;

const char *ud_op_name(ud_op_kind kind);

/* Counter-based random numbers shared by every backend, so a seeded request samples the same
 * token whatever its batch, its backend or a preemption in between (splitmix64 finalizer). */
static inline uint64_t ud_mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* Uniform in [0, 1) with 24 random bits, computed the same way on every backend. */
static inline float ud_uniform(uint64_t seed, uint32_t counter) {
  uint64_t r = ud_mix64(seed ^ ud_mix64((uint64_t)counter));
  return (float)(r >> 40) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif
#endif /* UPDRAFT_OPS_H */
