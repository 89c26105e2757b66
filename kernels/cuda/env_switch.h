// env_switch.h — kernel choices that an environment variable can turn off, for A/B runs on the GPU
// (UPDRAFT_PDL, UPDRAFT_GEMM_WGMMA, UPDRAFT_GEMM_PERSISTENT, UPDRAFT_GEMM_CUBLAS,
// UPDRAFT_ATTN_SPLIT_MIXED, UPDRAFT_ATTN_FP8_WIDE_STAGES): on unless the variable is "0". Callers keep
// the answer in a function-local static, so the environment is read once per switch.
#ifndef UPDRAFT_CUDA_ENV_SWITCH_H
#define UPDRAFT_CUDA_ENV_SWITCH_H

#include <cstdlib>
#include <cstring>

namespace updraft::cuda {

inline bool env_switch_on(const char *name) {
  const char *v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}

}  // namespace updraft::cuda

#endif
