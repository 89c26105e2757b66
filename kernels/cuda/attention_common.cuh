// attention_common.cuh — what the paged-attention variants share: the argument block, the row →
// sequence lookup (done on the device, since query_start_loc and seq_lens live there), cp.async,
// ldmatrix / mma.sync wrappers and 16-byte element conversions.
//
// Bad index data is reported, not trusted: the host cannot look at device data in a graph-capturable
// launch, so CTA (0, 0) of every variant checks query_start_loc and seq_lens of the whole batch, and a
// block id outside [-1, numBlocks) is reported where it is met (report_device_error, with the CPU
// kernel's error codes; the backend fails the step at its next synchronise). Meanwhile every kernel
// follows these rules, so that it never reads or writes out of bounds:
// - a row belongs to sequence s only if qsl[s] <= t < qsl[s+1] (with 0 <= t < numTokens);
// - a row of a sequence with seq_len <= 0 is left untouched (ops.h: seq_len 0);
// - a row sees ctx = seq_len - queryLen + j + 1 positions, clamped to [0, maxBlocksPerSeq * blockSize];
//   a row that sees nothing (ctx 0, or only masked positions) is written as zeros, as the CPU does;
// - a block id outside [0, numBlocks) (the -1 padding, or garbage) masks its positions, exactly like
//   -1 in the CPU reference; such a block is never dereferenced.
#ifndef UPDRAFT_CUDA_ATTENTION_COMMON_CUH
#define UPDRAFT_CUDA_ATTENTION_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace updraft::cuda::attn {

// Everything a kernel needs, by value (kernel parameter).
struct Args {
  const void *q;      // [numTokens, numHeads, headDim]
  const void *k;      // [numBlocks, blockSize, numKvHeads, headDim]
  const void *v;      // same
  void *out;          // [numTokens, numHeads * headDim]
  const int32_t *block_tables;  // [numSeqs, maxBlocks]
  const int32_t *seq_lens;      // [numSeqs]
  const int32_t *qsl;           // [numSeqs + 1]
  float *ws;                    // split-KV partials (variant 2), or null
  int32_t num_tokens, num_seqs, num_heads, num_kv_heads, head_dim, block_size, max_blocks;
  int32_t ctx_cap;              // min(maxBlocks * blockSize, INT32_MAX): no row sees more
  int32_t num_blocks;           // blocks in the cache (ids >= this are treated as padding)
  int32_t block_shift;          // log2(block_size) when it is a power of 2, else -1
  int32_t group;                // numHeads / numKvHeads
  int32_t out_dtype;            // ud_dtype of out (variant 1 converts at the store)
  float scale;
  DeviceErrorRecord *errors;    // ctx.device_errors (may be null)
  int32_t launch_index;         // ctx.launch_index
  int32_t rows;                 // which rows this launch computes: kAllRows, kSingleRowSeqs or kMultiRowSeqs
  int32_t kv_fp8;               // 1: k / v are FP8 E4M3 (variants 1, 3, 4, 5), else q's dtype (1: any float)
};

// Args::rows. Variant 5 splits a mixed step between two kernels by sequence: the decode kernel takes
// the sequences with exactly one query row (its CTAs indexed by sequence, not by row), the prefill
// kernel the others; each leaves the other's rows untouched.
constexpr int32_t kAllRows = 0;
constexpr int32_t kSingleRowSeqs = 1;
constexpr int32_t kMultiRowSeqs = 2;

// Out of line: only bad input gets here, and inlined it costs the hot loops registers.
static __device__ __noinline__ void report(DeviceErrorRecord *errors, int32_t launch_index, int32_t code, int64_t v0,
                                    int64_t v1, int64_t v2) {
  report_device_error(errors, code, UD_OP_ATTENTION, launch_index, v0, v1, v2);
}
__device__ __forceinline__ void report(const Args &a, int32_t code, int64_t v0, int64_t v1, int64_t v2) {
  report(a.errors, a.launch_index, code, v0, v1, v2);
}

// The batch checks the CPU kernel makes before it computes anything (same order, same codes). Run by
// every thread of one CTA per launch; the kernels clamp what these checks flag, so they stay in bounds.
__device__ __forceinline__ void validate_batch(const Args &a) {
  const long long table_positions = (long long)a.max_blocks * a.block_size;
  for (int s = threadIdx.x; s < a.num_seqs; s += blockDim.x) {
    const int qb = __ldg(a.qsl + s), qe = __ldg(a.qsl + s + 1);
    if (qb < 0 || qe < qb || qe > a.num_tokens) {
      report(a, kQueryStartLocBad, s, qb, qe);
      continue;
    }
    const int len = __ldg(a.seq_lens + s);
    if (len == 0) continue;
    if (len < qe - qb) report(a, kSeqLenTooShort, s, len, qe - qb);
    else if (len > table_positions) report(a, kSeqLenBeyondTable, s, len, table_positions);
  }
}

constexpr float kLog2e = 1.4426950408889634f;
__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

// The sequence that owns query row t, or -1 (padding row / sequences whose ranges do not hold t).
// Largest s in [0, numSeqs) with qsl[s] <= t, then check t < qsl[s+1]. Sequences with no rows share
// their start with the next one; "largest" picks the one that actually has rows. A first guess s = t
// answers pure decode batches (qsl[s] = s) with two loads.
__device__ __forceinline__ int find_row_seq(const int32_t *__restrict__ qsl, int num_seqs, int t) {
  if (num_seqs <= 0) return -1;
  if (t < num_seqs) {
    const int a = __ldg(qsl + t), b = __ldg(qsl + t + 1);
    if (a <= t && t < b) return t;
  }
  if (__ldg(qsl) > t) return -1;
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (__ldg(qsl + mid) <= t) lo = mid; else hi = mid - 1;
  }
  return t < __ldg(qsl + lo + 1) ? lo : -1;
}

// For query row t: false when the row is untouched; else its sequence and the number of cache
// positions it sees (clamped as described at the top of this file).
__device__ __forceinline__ bool row_context(const Args &a, int t, int &seq, int &ctx) {
  const int s = find_row_seq(a.qsl, a.num_seqs, t);
  if (s < 0) return false;
  const int len = __ldg(a.seq_lens + s);
  if (len <= 0) return false;
  const int qb = __ldg(a.qsl + s), qe = __ldg(a.qsl + s + 1);
  long long c = (long long)len - (long long)(qe - qb) + (long long)(t - qb) + 1;
  if (c < 0) c = 0;
  if (c > a.ctx_cap) c = a.ctx_cap;
  seq = s;
  ctx = (int)c;
  return true;
}

// For sequence s (kSingleRowSeqs): false unless it has exactly one query row and seq_len > 0; else
// that row t and the positions it sees — what row_context gives for t (the row sees seq_len
// positions, clamped to the table).
__device__ __forceinline__ bool single_row_context(const Args &a, int s, int &t, int &ctx) {
  if (s >= a.num_seqs) return false;
  const int qb = __ldg(a.qsl + s), qe = __ldg(a.qsl + s + 1);
  if (qe - qb != 1 || qb < 0 || qe > a.num_tokens) return false;
  const int len = __ldg(a.seq_lens + s);
  if (len <= 0) return false;
  t = qb;
  ctx = len < a.ctx_cap ? len : a.ctx_cap;
  return true;
}

// The row a decode-kernel CTA (or split-reduce CTA) works on, from its row-or-sequence index i.
__device__ __forceinline__ bool decode_row_context(const Args &a, int i, int &t, int &seq, int &ctx) {
  if (a.rows == kSingleRowSeqs) {
    seq = i;
    return single_row_context(a, i, t, ctx);
  }
  t = i;
  return row_context(a, i, seq, ctx);
}

// Cache row (block * blockSize + offset) holding position pos of sequence s, or -1 when its block
// id is padding (-1: masked, as on the CPU) or outside the cache (masked, and kept in `bad` for
// report_bad_block after the kernel's loop, so the hot loop holds no call). pos must be < ctx_cap
// (so pos / blockSize < maxBlocks).
__device__ __forceinline__ int cache_row(const Args &a, int s, int pos, int &bad) {
  const int bi = a.block_shift >= 0 ? pos >> a.block_shift : pos / a.block_size;
  const int b = __ldg(a.block_tables + (long long)s * a.max_blocks + bi);
  if (b < 0 || b >= a.num_blocks) {
    if (b != -1) bad = b;
    return -1;
  }
  return b * a.block_size + (pos - bi * a.block_size);
}
__device__ __forceinline__ void report_bad_block(const Args &a, int s, int bad) {
  if (bad != -1) report(a, kBlockOutOfRange, s, bad, a.num_blocks);
}

// 2^x on the special-function unit (ex2.approx.ftz: ~2 ulp, denormal results flush to 0, -inf → 0).
// The accurate exp2f adds a range fix-up around the same instruction; softmax weights do not need it.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// --- cp.async ---------------------------------------------------------------------------------
// 16-byte async copy; src_bytes 0 zero-fills the destination without reading the source.
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}
// Same, with the destination as a shared-space address (lets the caller keep addresses in registers).
__device__ __forceinline__ void cp_async16_s(unsigned smem, const void *gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// --- 16-bit element types ---------------------------------------------------------------------
template <typename T> struct Half16;
template <> struct Half16<__nv_bfloat16> {
  // 8 packed bf16 → 8 floats (exact: a bf16 is the top half of an f32).
  __device__ __forceinline__ static void to_f32x8(const uint4 &r, float f[8]) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
  __device__ __forceinline__ static uint32_t pack2(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
  }
};
template <> struct Half16<__half> {
  __device__ __forceinline__ static void to_f32x8(const uint4 &r, float f[8]) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float2 x = __half22float2(*reinterpret_cast<const __half2 *>(&w[i]));
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    }
  }
  __device__ __forceinline__ static uint32_t pack2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
  }
};

// --- tensor cores (variants 3, 4) ---
// Element offset of (row, col) in a [rows][HD] tile whose 16-byte chunks are swizzled by row & 7.
template <int HD> __device__ __forceinline__ int swz(int row, int col) {
  return row * HD + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_s(uint32_t r[4], unsigned smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans_s(uint32_t r[4], unsigned smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem)
               : "memory");
}

// D = A·B + D, m16n8k16, f32 accumulators.
template <typename T> __device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void mma_16816<__nv_bfloat16>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma_16816<__half>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace updraft::cuda::attn

#endif
