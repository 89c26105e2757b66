// attention_prefill.cu — host side of variant 3 (kernels in attention_prefill.cuh): instantiation
// dispatch and the launch. Called by launch_attention (attention.cu).
#include <climits>

#include "attention_host.cuh"
#include "attention_prefill.cuh"

namespace updraft::cuda::attn {
namespace {

template <typename T, typename KV, int HD, int GP> ud_status launch_prefill_typed(const Args &a, KernelContext &ctx) {
  static std::atomic<int> cache[kMaxDevices];
  constexpr size_t smem = prefill_smem_bytes<HD>();
  prepare_kernel(attention_prefill_kernel<T, KV, HD, GP>, smem, kPfThreads, cache);
  constexpr int bq = kPfBM / GP;
  const int hsub = a.group / GP;
  // Slots: an upper bound of the q tiles, numTokens / BQ + numSeqs (attention_prefill.cuh).
  const long long slots = (long long)a.num_tokens / bq + a.num_seqs;
  const long long ys = (long long)a.num_kv_heads * hsub;
  if (slots > INT_MAX || ys > 65535) return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 3): grid too large");
  attention_prefill_kernel<T, KV, HD, GP><<<dim3(static_cast<unsigned>(slots), static_cast<unsigned>(ys)), kPfThreads, smem, ctx.stream>>>(a, hsub);
  return check_launch(ctx, "attention (variant 3)");
}

template <typename T, typename KV, int HD> ud_status launch_prefill_hd(const Args &a, KernelContext &ctx) {
  switch (gqa_chunk(a.group)) {
    case 8: return launch_prefill_typed<T, KV, HD, 8>(a, ctx);
    case 4: return launch_prefill_typed<T, KV, HD, 4>(a, ctx);
    case 2: return launch_prefill_typed<T, KV, HD, 2>(a, ctx);
    default: return launch_prefill_typed<T, KV, HD, 1>(a, ctx);
  }
}

template <typename T, typename KV> ud_status launch_prefill_kv(const Args &a, KernelContext &ctx) {
  if (a.head_dim == 64) return launch_prefill_hd<T, KV, 64>(a, ctx);
  if (a.head_dim == 128) return launch_prefill_hd<T, KV, 128>(a, ctx);
  return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 3): head_dim " + std::to_string(a.head_dim));
}

// The cache is q's dtype, or FP8 E4M3 (Args::kv_fp8).
template <typename T> ud_status launch_prefill_t(const Args &a, KernelContext &ctx) {
  return a.kv_fp8 ? launch_prefill_kv<T, __nv_fp8_e4m3>(a, ctx) : launch_prefill_kv<T, T>(a, ctx);
}

}  // namespace

ud_status launch_prefill(int32_t dtype, const Args &a, KernelContext &ctx) {
  if (dtype == UD_BF16) return launch_prefill_t<__nv_bfloat16>(a, ctx);
  if (dtype == UD_F16) return launch_prefill_t<__half>(a, ctx);
  return ctx.fail(UD_ERR_UNSUPPORTED, "attention (variant 3): needs bf16 or f16");
}

}  // namespace updraft::cuda::attn
