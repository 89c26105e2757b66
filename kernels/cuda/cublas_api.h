// cublas_api.h — cuBLAS, loaded at run time (dlopen), for matmul variant 9 (matmul.cu).
//
// Why a vendor GEMM at all: on the H200 cuBLAS's bf16 GEMMs run 5–25% faster than our best wgmma
// kernel (variants 4/6-8) at the prompt and large-batch shapes (bench/NOTES.md runs 24–26), and a
// throughput run is two-thirds GEMM time. vLLM and SGLang use it (through PyTorch) for the same GEMMs.
// Our kernels stay the reference ladder, the decode path (variant 5 beats cuBLAS at M <= 16) and the
// fallback wherever cuBLAS is absent, refuses a case (a bias), or is switched off (UPDRAFT_GEMM_CUBLAS=0).
//
// Loaded with dlopen so that the addon builds without cuBLAS's headers or libraries (CI has none) and
// loads on machines without it. The declarations below are the few this file needs, from cuBLAS's
// public API documentation (cublas_api.h, CUDA >= 11.4 for cublasSetWorkspace); enums are passed as int.
// The library stays loaded for the life of the process (as the driver's tensor-map encoder in
// matmul_v4_wgmma.cuh); each backend instance owns its handle (KernelContext::cublas) and a workspace
// for it alone (never our kernels' scratch: cuBLAS's internals are not ours to reason about).
#ifndef UPDRAFT_CUDA_CUBLAS_API_H
#define UPDRAFT_CUDA_CUBLAS_API_H

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "env_switch.h"

namespace updraft::cuda {

struct CublasApi {
  // The enum values used (cublas_api.h).
  static constexpr int kStatusSuccess = 0;        // CUBLAS_STATUS_SUCCESS
  static constexpr int kStatusNotSupported = 15;  // CUBLAS_STATUS_NOT_SUPPORTED
  static constexpr int kOpN = 0, kOpT = 1;  // CUBLAS_OP_N, CUBLAS_OP_T
  static constexpr int kCompute32F = 68;    // CUBLAS_COMPUTE_32F
  static constexpr int kGemmDefault = -1;   // CUBLAS_GEMM_DEFAULT
  // CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION: split-K reductions in the
  // compute type (f32), not in a 16-bit output type. Without it cuBLAS 13.1 summed split-K partials in
  // bf16/f16 on small-M·N, long-K shapes (M=40 K=1032 N=300, M=129 K=4104 N=260): errors of about one
  // 16-bit ulp of the partial sums, past the conformance tolerance where the result is a cancellation
  // (bench_matmul, NOTES runs 29–31). Our kernels round once, from f32; so does variant 9 with this.
  static constexpr int kMathNoReducedPrecisionReduction = 16;
  // Bytes of cuBLAS's own workspace (its documentation suggests 32 MiB on Hopper).
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

  void *library = nullptr;
  std::string unavailable;  // why not loaded ("" when loaded)
  int (*create)(void **handle) = nullptr;
  int (*destroy)(void *handle) = nullptr;
  int (*set_stream)(void *handle, cudaStream_t stream) = nullptr;
  int (*set_workspace)(void *handle, void *workspace, size_t bytes) = nullptr;
  int (*set_math_mode)(void *handle, int mode) = nullptr;
  int (*gemm_ex)(void *handle, int trans_a, int trans_b, int m, int n, int k, const void *alpha, const void *a,
                 cudaDataType a_type, int lda, const void *b, cudaDataType b_type, int ldb, const void *beta, void *c,
                 cudaDataType c_type, int ldc, int compute_type, int algo) = nullptr;

  bool loaded() const { return library != nullptr; }
};

// cuBLAS, loaded on first use (UPDRAFT_GEMM_CUBLAS=0: never; UPDRAFT_CUBLAS_LIBRARY: a path to try first).
inline const CublasApi &cublas_api() {
  static const CublasApi api = [] {
    CublasApi a;
    if (!env_switch_on("UPDRAFT_GEMM_CUBLAS")) {
      a.unavailable = "switched off (UPDRAFT_GEMM_CUBLAS=0)";
      return a;
    }
    const char *names[] = {std::getenv("UPDRAFT_CUBLAS_LIBRARY"), "libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    std::string tried;
    for (const char *name : names) {
      if (!name || !*name) continue;
      a.library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (a.library) break;
      const char *why = dlerror();
      tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
    }
    if (!a.library) {
      a.unavailable = "cuBLAS is not installed (" + tried + ")";
      return a;
    }
    const auto bind = [&](auto &fn, const char *symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(a.library, symbol));
      return fn != nullptr;
    };
    if (!bind(a.create, "cublasCreate_v2") || !bind(a.destroy, "cublasDestroy_v2") ||
        !bind(a.set_stream, "cublasSetStream_v2") || !bind(a.set_workspace, "cublasSetWorkspace_v2") ||
        !bind(a.set_math_mode, "cublasSetMathMode") ||
        !bind(a.gemm_ex, "cublasGemmEx")) {
      dlclose(a.library);
      a.library = nullptr;
      a.unavailable = "the cuBLAS found lacks an entry point Updraft needs (CUDA 11.4 or later is required)";
    }
    return a;
  }();
  return api;
}

// A cuBLAS handle on `stream` with `workspace` (CublasApi::kWorkspaceBytes of it, used by nothing
// else), or null with the reason in *why. The caller destroys it with cublas_api().destroy.
inline void *cublas_open_handle(cudaStream_t stream, void *workspace, size_t workspace_bytes, std::string *why) {
  const CublasApi &api = cublas_api();
  if (!api.loaded()) {
    if (why) *why = api.unavailable;
    return nullptr;
  }
  void *handle = nullptr;
  int status = api.create(&handle);
  if (status == CublasApi::kStatusSuccess) status = api.set_math_mode(handle, CublasApi::kMathNoReducedPrecisionReduction);
  if (status == CublasApi::kStatusSuccess) status = api.set_stream(handle, stream);
  if (status == CublasApi::kStatusSuccess && workspace)
    status = api.set_workspace(handle, workspace, std::min(workspace_bytes, CublasApi::kWorkspaceBytes));
  if (status != CublasApi::kStatusSuccess) {
    if (handle) api.destroy(handle);
    (void)cudaGetLastError();
    if (why) *why = "cuBLAS could not be set up (status " + std::to_string(status) + ")";
    return nullptr;
  }
  return handle;
}

}  // namespace updraft::cuda

#endif
