// UD_OP_ATTENTION: paged causal attention with GQA over a batch of prompt and decode rows.
//
// One work item is (query row, kv head): the group of q heads sharing that kv head is computed
// together so each cached k/v row is converted and read once per group. Two-pass softmax in f32:
// scores for every visible position, then max, exp, sum and the weighted sum of v. Positions whose
// block id is -1 are masked out; a row that sees no position at all is written as zeros. The cache
// may be f8e4m3 (storage only): its rows are widened to f32 exactly, like any other cache dtype.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {
namespace {

float dot(const float *a, const float *b, int64_t n) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) partial[l] += a[i + l] * b[i + l];
  for (; i < n; i++) partial[0] += a[i] * b[i];
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

// A cache row as f32: a pointer into the cache when it is f32, else converted into `scratch`.
const float *cache_row_f32(const ud_tensor &cache, int64_t offset, int64_t n, float *scratch) {
  if (cache.dtype == UD_F32) return static_cast<const float *>(cache.data) + offset;
  load_row_f32(cache.data, cache.dtype, offset, n, scratch);
  return scratch;
}

}  // namespace

ud_status launch_attention(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &q = op.src[0];                // [numTokens, numHeads, headDim]
  const ud_tensor &k_cache = op.src[1];          // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &v_cache = op.src[2];          // [numBlocks, blockSize, numKvHeads, headDim]
  const ud_tensor &block_tables = op.src[3];     // [numSeqs, maxBlocksPerSeq] i32
  const ud_tensor &seq_lens = op.src[4];         // [numSeqs] i32
  const ud_tensor &query_start_loc = op.src[5];  // [numSeqs + 1] i32
  const ud_tensor &out = op.dst[0];              // [numTokens, numHeads * headDim]
  const ud_attention_params &p = op.params.attention;

  OperandChecker check(ctx, "attention");
  check.required(q, "src0 (q)").required(k_cache, "src1 (k_cache)").required(v_cache, "src2 (v_cache)")
      .required(block_tables, "src3 (block_tables)").required(seq_lens, "src4 (seq_lens)")
      .required(query_start_loc, "src5 (query_start_loc)").required(out, "dst0 (out)")
      .float_dtype(q, "src0 (q)").kv_cache_dtype(k_cache, "src1 (k_cache)").kv_cache_dtype(v_cache, "src2 (v_cache)")
      .same_dtype(k_cache, "src1 (k_cache)", v_cache, "src2 (v_cache)")
      .dtype(block_tables, UD_I32, "src3 (block_tables)").dtype(seq_lens, UD_I32, "src4 (seq_lens)")
      .dtype(query_start_loc, UD_I32, "src5 (query_start_loc)").float_dtype(out, "dst0 (out)")
      .that(p.num_heads > 0 && p.num_kv_heads > 0 && p.head_dim > 0 && p.block_size > 0,
            "num_heads, num_kv_heads, head_dim and block_size must be > 0")
      .that(p.num_heads % std::max(1, p.num_kv_heads) == 0, "num_heads must be a multiple of num_kv_heads")
      .that(std::isfinite(p.scale), "scale must be finite");
  if (!check.ok()) return check.status();
  const int64_t num_tokens = rows(q), head_dim = p.head_dim, num_seqs = numel(seq_lens);
  const int64_t kv_row = int64_t{p.num_kv_heads} * head_dim, block_elems = p.block_size * kv_row;
  const int64_t q_row = int64_t{p.num_heads} * head_dim;
  check.row_size_is(q, q_row, "src0 (q)")
      .that(numel(k_cache) % block_elems == 0, "src1 (k_cache) " + shape_string(k_cache) +
                                                  " is not a whole number of [blockSize, numKvHeads, headDim] blocks")
      .that(k_cache.ndim != 4 || (k_cache.ne[1] == p.block_size && k_cache.ne[2] == p.num_kv_heads &&
                                  k_cache.ne[3] == head_dim),
            "src1 (k_cache) " + shape_string(k_cache) + " does not match block_size, num_kv_heads and head_dim")
      .numel_is(v_cache, numel(k_cache), "src2 (v_cache)").rows_are(block_tables, num_seqs, "src3 (block_tables)")
      .numel_is(query_start_loc, num_seqs + 1, "src5 (query_start_loc)").rows_are(out, num_tokens, "dst0 (out)")
      .row_size_is(out, q_row, "dst0 (out)");
  if (!check.ok()) return check.status();

  // Validate the batch layout before touching memory, and map each query row to its sequence.
  const int64_t num_blocks = numel(k_cache) / block_elems, max_blocks = row_size(block_tables);
  const int32_t *table = static_cast<const int32_t *>(block_tables.data);
  const int32_t *lens = static_cast<const int32_t *>(seq_lens.data);
  const int32_t *starts = static_cast<const int32_t *>(query_start_loc.data);
  std::vector<int32_t> seq_of_row(static_cast<size_t>(num_tokens), -1);
  const auto fail = [&](const std::string &message) { return ctx.fail(UD_ERR_INVALID_ARGUMENT, "attention: " + message); };
  if (num_seqs > 0 && (starts[0] < 0 || starts[num_seqs] > num_tokens))
    return fail("query_start_loc must lie within [0, numTokens=" + std::to_string(num_tokens) + "]");
  for (int64_t s = 0; s < num_seqs; s++) {
    const int64_t query_len = int64_t{starts[s + 1]} - starts[s];
    const std::string seq = "sequence " + std::to_string(s);
    if (query_len < 0) return fail("query_start_loc must be non-decreasing (" + seq + ")");
    if (lens[s] == 0) continue;
    if (lens[s] < query_len) return fail(seq + " has seq_len " + std::to_string(lens[s]) + " < its " +
                                         std::to_string(query_len) + " query rows");
    if (lens[s] > max_blocks * p.block_size)
      return fail(seq + " has seq_len " + std::to_string(lens[s]) + " beyond its block table");
    for (int64_t b = 0; b < (lens[s] + p.block_size - 1) / p.block_size; b++) {
      const int32_t block = table[s * max_blocks + b];
      if (block < -1 || block >= num_blocks)
        return fail(seq + " uses block " + std::to_string(block) + " outside the cache's " +
                    std::to_string(num_blocks) + " blocks");
    }
    for (int64_t r = starts[s]; r < starts[s + 1]; r++) {
      if (seq_of_row[r] >= 0) return fail("query rows of two sequences overlap at row " + std::to_string(r));
      seq_of_row[r] = static_cast<int32_t>(s);
    }
  }

  const int64_t group = p.num_heads / p.num_kv_heads;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  ctx.pool.parallel_for(num_tokens * p.num_kv_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> q_group(static_cast<size_t>(group * head_dim)), acc(static_cast<size_t>(group * head_dim));
    std::vector<float> k_row(static_cast<size_t>(head_dim)), v_row(static_cast<size_t>(head_dim)), scores;
    std::vector<float> sums(static_cast<size_t>(group));
    for (int64_t item = begin; item < end; item++) {
      const int64_t t = item / p.num_kv_heads, kv_head = item % p.num_kv_heads;
      const int32_t s = seq_of_row[t];
      if (s < 0) continue;  // padding row, or a sequence with seq_len 0: left untouched
      const int64_t query_len = starts[s + 1] - starts[s];
      const int64_t position = lens[s] - query_len + (t - starts[s]);
      const int64_t num_ctx = position + 1;
      load_row_f32(q.data, q.dtype, t * q_row + kv_head * group * head_dim, group * head_dim, q_group.data());
      scores.resize(static_cast<size_t>(group * num_ctx));

      // Pass 1: scaled scores of every visible position, for each head of the group.
      for (int64_t c = 0; c < num_ctx; c++) {
        const int32_t block = table[s * max_blocks + c / p.block_size];
        if (block < 0) {
          for (int64_t g = 0; g < group; g++) scores[g * num_ctx + c] = neg_inf;
          continue;
        }
        const int64_t offset = (block * p.block_size + c % p.block_size) * kv_row + kv_head * head_dim;
        const float *k = cache_row_f32(k_cache, offset, head_dim, k_row.data());
        for (int64_t g = 0; g < group; g++) scores[g * num_ctx + c] = dot(q_group.data() + g * head_dim, k, head_dim) * p.scale;
      }
      // Pass 2: softmax weights, and the weighted sum of v.
      std::fill(sums.begin(), sums.end(), 0.0f);
      for (int64_t g = 0; g < group; g++) {
        float *sc = scores.data() + g * num_ctx;
        const float max_score = *std::max_element(sc, sc + num_ctx);
        for (int64_t c = 0; c < num_ctx; c++) {
          sc[c] = max_score == neg_inf ? 0.0f : std::exp(sc[c] - max_score);
          sums[g] += sc[c];
        }
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t c = 0; c < num_ctx; c++) {
        const int32_t block = table[s * max_blocks + c / p.block_size];
        if (block < 0) continue;
        const int64_t offset = (block * p.block_size + c % p.block_size) * kv_row + kv_head * head_dim;
        const float *v = cache_row_f32(v_cache, offset, head_dim, v_row.data());
        for (int64_t g = 0; g < group; g++) {
          const float weight = scores[g * num_ctx + c];
          float *a = acc.data() + g * head_dim;
          for (int64_t d = 0; d < head_dim; d++) a[d] += weight * v[d];
        }
      }
      for (int64_t g = 0; g < group; g++) {
        const float inv_sum = sums[g] > 0.0f ? 1.0f / sums[g] : 0.0f;
        for (int64_t d = 0; d < head_dim; d++) acc[g * head_dim + d] *= inv_sum;
      }
      store_row_f32(out.data, out.dtype, t * q_row + kv_head * group * head_dim, group * head_dim, acc.data());
    }
  });
  return UD_OK;
}

}  // namespace updraft::cpu
