// matmul variant 9 — cuBLAS's GEMM (cublasGemmEx: bf16 or f16 in, f32 accumulate), on the backend's
// handle (KernelContext::cublas, bound to ctx.stream and a workspace of its own; cublas_api.h says why
// and how it is loaded). Deterministic: cuBLAS's GEMMs give the same bits run to run on one GPU
// model (its documentation's reproducibility rule; no atomics-based split-K is asked for). Split-K
// partials are reduced in f32 (the handle's math mode, cublas_api.h), so y is rounded once, as in our
// kernels.
//
// y[M, N] row-major is yᵀ[N, M] column-major, so: yᵀ = op_T(W as a K×N column-major matrix) · (x as
// K×M column-major), lda = ldb = K, ldc = N.
//
// Takes: x and W both bf16 or both f16, y f32 or x's dtype, no bias (cublasGemmEx has no bias
// epilogue: the model's biased projections run on variant 6), M, N, K in [1, 2^31).
#ifndef UPDRAFT_CUDA_MATMUL_CUBLAS_CUH
#define UPDRAFT_CUDA_MATMUL_CUBLAS_CUH

#include "cublas_api.h"
#include "matmul_common.cuh"

namespace updraft::cuda::matmul_detail {

inline bool cublas_accepts(const Problem &p, std::string *why) {
  auto no = [&](const std::string &reason) {
    if (why) *why = "variant 9 (cuBLAS) " + reason;
    return false;
  };
  if (!tensor_core_dtypes(p)) return no("needs x and W both bf16 or both f16");
  if (p.y_dtype != UD_F32 && p.y_dtype != p.w_dtype) return no("writes y as f32 or as x's dtype");
  if (p.bias_dtype >= 0) return no("takes no bias");
  if (p.m >= (int64_t(1) << 31) || p.n >= (int64_t(1) << 31) || p.k >= (int64_t(1) << 31) || p.k <= 0)
    return no("takes M, N, K in [1, 2^31)");
  if (!cublas_api().loaded()) return no("is unavailable: " + cublas_api().unavailable);
  return true;
}

inline ud_status run_cublas(const Problem &p, KernelContext &ctx) {
  if (!ctx.cublas) return ctx.fail(UD_ERR_UNSUPPORTED, "matmul variant 9: this backend has no cuBLAS handle");
  const cudaDataType in_type = p.w_dtype == UD_BF16 ? CUDA_R_16BF : CUDA_R_16F;
  const cudaDataType out_type = p.y_dtype == UD_F32 ? CUDA_R_32F : in_type;
  const float alpha = 1.0f, beta = 0.0f;
  const int n = static_cast<int>(p.n), m = static_cast<int>(p.m), k = static_cast<int>(p.k);
  const int status = cublas_api().gemm_ex(ctx.cublas, CublasApi::kOpT, CublasApi::kOpN, n, m, k, &alpha, p.w, in_type, k,
                                          p.x, in_type, k, &beta, p.y, out_type, n, CublasApi::kCompute32F,
                                          CublasApi::kGemmDefault);
  if (status != CublasApi::kStatusSuccess) {
    (void)cudaGetLastError();
    // NOT_SUPPORTED: cuBLAS has no kernel for the case; auto then falls back to our own (matmul.cu).
    return ctx.fail(status == CublasApi::kStatusNotSupported ? UD_ERR_UNSUPPORTED : UD_ERR_DEVICE,
                    "matmul variant 9: cublasGemmEx failed with status " + std::to_string(status) + " (" +
                        dims_string(p) + ")");
  }
  return check_launch(ctx, "matmul variant 9 (cuBLAS)");
}

}  // namespace updraft::cuda::matmul_detail

#endif
