// attention_decode.cu — the entry points of variants 2 and 4 (declared in attention_host.cuh) and their
// bf16 instantiations; the f16 ones are in attention_decode_f16.cu. Kernels: attention_decode.cuh
// (CUDA cores), attention_decode_tc.cuh (tensor cores); host side: attention_decode_host.cuh.
#include "attention_decode_host.cuh"

namespace updraft::cuda::attn {

template ud_status launch_decode_t<__nv_bfloat16>(const Args &, KernelContext &, bool);
template int decode_num_splits_t<__nv_bfloat16>(const Args &, KernelContext &, bool);

ud_status launch_decode(int32_t dtype, const Args &a, KernelContext &ctx, bool tensor_cores) {
  if (dtype == UD_BF16) return launch_decode_t<__nv_bfloat16>(a, ctx, tensor_cores);
  if (dtype == UD_F16) return launch_decode_t<__half>(a, ctx, tensor_cores);
  return ctx.fail(UD_ERR_UNSUPPORTED, "attention (decode): needs bf16 or f16");
}

int decode_num_splits(int32_t dtype, const Args &a, KernelContext &ctx, bool tensor_cores) {
  if (dtype == UD_BF16) return decode_num_splits_t<__nv_bfloat16>(a, ctx, tensor_cores);
  if (dtype == UD_F16) return decode_num_splits_t<__half>(a, ctx, tensor_cores);
  return 0;
}

}  // namespace updraft::cuda::attn
