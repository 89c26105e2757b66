// attention_decode_f16.cu — variants 2 and 4: the f16 instantiations (see attention_decode.cu).
#include "attention_decode_host.cuh"

namespace updraft::cuda::attn {

template ud_status launch_decode_t<__half>(const Args &, KernelContext &, bool);
template int decode_num_splits_t<__half>(const Args &, KernelContext &, bool);

}  // namespace updraft::cuda::attn
