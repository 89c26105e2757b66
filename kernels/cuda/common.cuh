// common.cuh — small device helpers shared by the CUDA kernels: dtype conversion, operand
// inspection, launch checks. Kernels are templated on element types; `dispatch_float` turns a
// runtime ud_dtype into a template instantiation.
#ifndef UPDRAFT_CUDA_COMMON_CUH
#define UPDRAFT_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda_kernels.h"
#include "pdl.cuh"

namespace updraft::cuda {

// --- element conversion -----------------------------------------------------------------------
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_fp8_e4m3 x) { return static_cast<float>(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
// FP8 E4M3 (the KV cache only): round to nearest even, finite values beyond +-448 and +-inf saturate
// to +-448 (__NV_SATFINITE), NaN stays NaN (0x7f) — what the CPU reference (dtype_convert.h) does.
template <> __device__ __forceinline__ __nv_fp8_e4m3 from_float<__nv_fp8_e4m3>(float x) {
  __nv_fp8_e4m3 r;
  r.__x = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
  return r;
}

// --- operands -----------------------------------------------------------------------------------
inline bool present(const ud_tensor &t) { return t.data != nullptr; }
inline bool is_float_dtype(int32_t d) { return d == UD_F32 || d == UD_F16 || d == UD_BF16; }
// What a KV cache may be stored as: a float dtype, or FP8 E4M3 (ops.h UD_F8E4M3).
inline bool is_kv_dtype(int32_t d) { return is_float_dtype(d) || d == UD_F8E4M3; }
inline int64_t numel(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; i++) n *= t.ne[i];
  return n;
}
inline int64_t rows(const ud_tensor &t) { return t.ndim >= 1 ? t.ne[0] : 1; }
inline int64_t row_size(const ud_tensor &t) {
  int64_t n = 1;
  for (int i = 1; i < t.ndim; i++) n *= t.ne[i];
  return n;
}
inline const char *dtype_name(int32_t d) {
  switch (d) {
    case UD_F32: return "f32";
    case UD_F16: return "f16";
    case UD_BF16: return "bf16";
    case UD_I32: return "i32";
    case UD_U32: return "u32";
    case UD_U64: return "u64";
    case UD_F8E4M3: return "f8e4m3";
    default: return "unknown";
  }
}

// Calls f(T{}) with T the C++ type of a float dtype; returns false for other dtypes.
template <typename F> bool dispatch_float(int32_t dtype, F &&f) {
  switch (dtype) {
    case UD_F32: f(float{}); return true;
    case UD_BF16: f(__nv_bfloat16{}); return true;
    case UD_F16: f(__half{}); return true;
    default: return false;
  }
}

// dispatch_float, plus FP8 E4M3: for the KV cache operands of rope_kv_write and attention.
template <typename F> bool dispatch_kv(int32_t dtype, F &&f) {
  if (dtype == UD_F8E4M3) {
    f(__nv_fp8_e4m3{});
    return true;
  }
  return dispatch_float(dtype, f);
}

// After a <<<>>> launch: turns a launch error into a status with the kernel's name.
inline ud_status check_launch(KernelContext &ctx, const char *what) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return ctx.fail(UD_ERR_DEVICE, std::string(what) + ": " + cudaGetErrorString(err));
  return UD_OK;
}

inline int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// Records a device-side operand error (see DeviceErrorRecord in cuda_kernels.h). The first report
// since the backend last synchronised wins: it claims the record with a CAS, so two failing threads
// never mix their fields. The caller then skips the bad access. `record` may be null (no reporting).
__device__ __forceinline__ void report_device_error(DeviceErrorRecord *record, int32_t code, int32_t op,
                                                    int32_t launch, int64_t v0, int64_t v1, int64_t v2) {
  if (record == nullptr) return;
  if (atomicCAS(&record->code, static_cast<int32_t>(kDeviceErrorNone), -1) != kDeviceErrorNone) return;
  record->op = op;
  record->launch = launch;
  record->v[0] = v0;
  record->v[1] = v1;
  record->v[2] = v2;
  __threadfence();
  atomicExch(&record->code, code);
}

}  // namespace updraft::cuda

#endif
