// UPDRAFT-PLACEHOLDER: stands in for the real sample kernels (kernels/cuda/sample.cu), which replace this
// file, so that the CUDA backend links before they land. Reports the op as unsupported, and
// sample_supports (see supports_op in cuda_kernels.h) says so, so the conformance suite skips it.
#include "cuda_kernels.h"

namespace updraft::cuda {

ud_status launch_sample(const ud_op &, KernelContext &ctx) {
  return ctx.fail(UD_ERR_UNSUPPORTED, "cuda: the sample kernels are not in this build yet");
}

int32_t sample_supports(const ud_op &) { return 0; }

}  // namespace updraft::cuda
