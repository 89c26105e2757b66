// attention_decode_host.cuh — host side of variants 2 and 4 for one element type T (kernels in
// attention_decode.cuh, attention_decode_tc.cuh): the split-KV choice, instantiation dispatch on head
// dim / GQA chunk, the launches. Instantiated for bf16 in attention_decode.cu and for f16 in
// attention_decode_f16.cu (two translation units, so each type's kernels compile in parallel).
#ifndef UPDRAFT_CUDA_ATTENTION_DECODE_HOST_CUH
#define UPDRAFT_CUDA_ATTENTION_DECODE_HOST_CUH

#include <algorithm>
#include <climits>
#include <string>
#include <type_traits>

#include "attention_decode.cuh"
#include "attention_decode_tc.cuh"
#include "attention_decode_tc_fp8.cuh"
#include "attention_host.cuh"
#include "env_switch.h"

namespace updraft::cuda::attn {

// Splits per row: a pure function of shapes (numTokens, heads, maxBlocksPerSeq · blockSize, SM count,
// occupancy, workspace size), never of seq_lens, so a captured graph stays right when they change.
// Picks the fewest splits whose wave efficiency (CTAs / (waves · resident slots)) is within 85% of
// the best, capped so each split has at least kMinChunk positions of the longest possible context
// and the partials fit in the workspace. (On the device a row uses only as many splits as its real
// context fills with kMinChunk positions each: split_range.)
inline int choose_splits(long long base_ctas, int ctx_cap, long long slots, long long max_by_workspace) {
  long long max_ns = std::min<long long>(kMaxSplits, (ctx_cap + kMinChunk - 1) / kMinChunk);
  max_ns = std::min(max_ns, max_by_workspace);
  if (max_ns <= 1 || base_ctas <= 0 || slots <= 0) return 1;
  auto efficiency = [&](long long ns) {
    const long long ctas = base_ctas * ns;
    const long long waves = (ctas + slots - 1) / slots;
    return static_cast<double>(ctas) / static_cast<double>(waves * slots);
  };
  double best = 0.0;
  for (long long ns = 1; ns <= max_ns; ns++) best = std::max(best, efficiency(ns));
  for (long long ns = 1; ns <= max_ns; ns++)
    if (efficiency(ns) >= 0.85 * best) return static_cast<int>(ns);
  return 1;
}

// Positions per warp stage of the FP8 decode kernel (attention_decode_tc_fp8.cuh): 32 (8 KiB stages,
// 2 of them, 3 CTAs per SM at headDim 128), or 16 (4 KiB, 4 stages, 3 CTAs per SM) with
// UPDRAFT_ATTN_FP8_WIDE_STAGES=0, for A/B runs. Read once. (Six 4 KiB stages lost to four in GPU run
// 18: 411 against 383 µs at batch 512 × 1152; three 8 KiB stages at 2 CTAs per SM to the 16-position
// layout in run 24: 359 against 336 µs.)
constexpr int kFp8Positions = 32;
inline int fp8_positions() {
  static const int positions = env_switch_on("UPDRAFT_ATTN_FP8_WIDE_STAGES") ? kFp8Positions : 16;
  return positions;
}

// One decode instantiation: TC false = variant 2 (CUDA cores), true = variant 4 (tensor cores); KV is
// the cache's element type: T, or __nv_fp8_e4m3 (variant 4 only, with FP positions per warp stage).
template <typename T, typename KV, int HD, int GC, bool TC, int FP = kFp8Positions> struct Decode {
  static constexpr bool kFp8 = std::is_same_v<KV, __nv_fp8_e4m3>;
  static_assert(std::is_same_v<KV, T> || (kFp8 && TC), "decode: an FP8 cache only on the tensor-core kernel");
  static constexpr size_t smem() {
    if constexpr (kFp8) return decode_tc_fp8_smem_bytes<HD, FP>();
    else if constexpr (TC) return decode_tc_smem_bytes<HD>();
    else return decode_smem_bytes<HD>();
  }
  static constexpr size_t kSmem = smem();
  static constexpr int kThreads = TC ? kTcThreads : kDecThreads;
  static constexpr auto kernel() {
    if constexpr (kFp8) return attention_decode_tc_fp8_kernel<T, HD, GC, FP>;
    else if constexpr (TC) return attention_decode_tc_kernel<T, HD, GC>;
    else return attention_decode_kernel<T, HD, GC>;
  }
  static int occupancy() {
    static std::atomic<int> cache[kMaxDevices];
    return prepare_kernel(kernel(), kSmem, kThreads, cache);
  }
  // CTAs per split: one per (row, kv head, head subgroup) — per sequence for kSingleRowSeqs.
  static long long base_ctas(const Args &a) {
    const long long rows = a.rows == kSingleRowSeqs ? a.num_seqs : a.num_tokens;
    return rows * a.num_kv_heads * (a.group / GC);
  }
  static int splits(const Args &a, KernelContext &ctx) {
    const long long base = base_ctas(a);
    const long long per_split = (long long)a.num_tokens * a.num_heads * (HD + 2) * (long long)sizeof(float);
    const long long max_by_ws = ctx.workspace ? static_cast<long long>(ctx.workspace_bytes) / per_split : 1;
    return choose_splits(base, a.ctx_cap, (long long)sm_count(ctx) * occupancy(), max_by_ws);
  }
  static ud_status launch(Args a, KernelContext &ctx) {
    const char *name = TC ? "attention (variant 4)" : "attention (variant 2)";
    const int hsub = a.group / GC;
    const long long base = base_ctas(a);
    if (base > INT_MAX) return ctx.fail(UD_ERR_UNSUPPORTED, std::string(name) + ": too many rows × kv heads for one grid");
    const int ns = splits(a, ctx);
    a.ws = ns > 1 ? static_cast<float *>(ctx.workspace) : nullptr;
    kernel()<<<dim3(static_cast<unsigned>(base), static_cast<unsigned>(ns)), kThreads, kSmem, ctx.stream>>>(a, ns, hsub);
    if (ud_status st = check_launch(ctx, name); st != UD_OK) return st;
    if (ns > 1) {
      const int threads = std::max(32, std::min(128, HD));
      const int reduce_rows = a.rows == kSingleRowSeqs ? a.num_seqs : a.num_tokens;
      attention_split_reduce_kernel<T><<<dim3(static_cast<unsigned>(reduce_rows), static_cast<unsigned>(a.num_heads)), threads, 0, ctx.stream>>>(a, ns);
      if (ud_status st = check_launch(ctx, "attention (split-KV reduce)"); st != UD_OK) return st;
    }
    return UD_OK;
  }
};

// Calls f(Decode<T, KV, HD, GC, TC, FP>{}) for the instantiation that fits; false when none does.
template <typename T, typename KV, bool TC, int FP = kFp8Positions, typename F> bool with_decode_hd(const Args &a, F &&f) {
  auto by_gc = [&](auto hd_tag) {
    constexpr int HD = decltype(hd_tag)::value;
    switch (gqa_chunk(a.group)) {
      case 8: f(Decode<T, KV, HD, 8, TC, FP>{}); break;
      case 4: f(Decode<T, KV, HD, 4, TC, FP>{}); break;
      case 2: f(Decode<T, KV, HD, 2, TC, FP>{}); break;
      default: f(Decode<T, KV, HD, 1, TC, FP>{}); break;
    }
  };
  if constexpr (TC) {
    switch (a.head_dim) {
      case 64: by_gc(std::integral_constant<int, 64>{}); return true;
      case 128: by_gc(std::integral_constant<int, 128>{}); return true;
      default: return false;
    }
  } else {
    switch (a.head_dim) {
      case 8: by_gc(std::integral_constant<int, 8>{}); return true;
      case 16: by_gc(std::integral_constant<int, 16>{}); return true;
      case 32: by_gc(std::integral_constant<int, 32>{}); return true;
      case 64: by_gc(std::integral_constant<int, 64>{}); return true;
      case 128: by_gc(std::integral_constant<int, 128>{}); return true;
      case 256: by_gc(std::integral_constant<int, 256>{}); return true;
      default: return false;
    }
  }
}

// Calls f on the instantiation for a's head dim, GQA group and cache dtype; false when none fits.
template <typename T, typename F> bool with_decode(const Args &a, bool tc, F &&f) {
  if (a.kv_fp8) {
    if (!tc) return false;
    return fp8_positions() == 16 ? with_decode_hd<T, __nv_fp8_e4m3, true, 16>(a, f)
                                 : with_decode_hd<T, __nv_fp8_e4m3, true, kFp8Positions>(a, f);
  }
  return tc ? with_decode_hd<T, T, true>(a, f) : with_decode_hd<T, T, false>(a, f);
}

template <typename T> ud_status launch_decode_t(const Args &a, KernelContext &ctx, bool tc) {
  // Only the tensor-core kernel (and the shared split reduce) index their CTAs by sequence for
  // kSingleRowSeqs; variant 2's kernel always maps CTAs to rows.
  if (!tc && a.rows != kAllRows) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 2): takes every row of the batch");
  if (!tc && a.kv_fp8) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 2): no FP8 cache");
  ud_status status = UD_OK;
  auto run = [&](auto d) { status = decltype(d)::launch(a, ctx); };
  if (!with_decode<T>(a, tc, run))
    return ctx.fail(UD_ERR_UNSUPPORTED, std::string("attention (variant ") + (tc ? "4" : "2") + "): no kernel for head_dim " +
                                            std::to_string(a.head_dim));
  return status;
}

template <typename T> int decode_num_splits_t(const Args &a, KernelContext &ctx, bool tc) {
  int ns = 0;
  auto get = [&](auto d) { ns = decltype(d)::splits(a, ctx); };
  if (!with_decode<T>(a, tc, get)) return 0;
  return ns;
}

extern template ud_status launch_decode_t<__nv_bfloat16>(const Args &, KernelContext &, bool);
extern template ud_status launch_decode_t<__half>(const Args &, KernelContext &, bool);
extern template int decode_num_splits_t<__nv_bfloat16>(const Args &, KernelContext &, bool);
extern template int decode_num_splits_t<__half>(const Args &, KernelContext &, bool);

}  // namespace updraft::cuda::attn

#endif
