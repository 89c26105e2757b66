// The one-shot peer all-reduce (all_reduce_p2p.h says why and how it synchronises).
//
// Block b of rank r, call e: (1) copies chunk b of data into staging[r][e % 2]; (2) after the block's
// barrier, thread q (q != r) fences and writes e into flags[q][b][r] (peer q's memory); (3) thread q
// waits until flags[r][b][q] >= e; (4) after a barrier, every thread sums chunk b of staging[0..world)
// [e % 2] in rank order in f32, rounds once, and writes data; (5) thread 0 stores epoch[b] = e.
// Staging loads bypass L1 (ld.global.cv): the same addresses held another call's values two calls ago.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "all_reduce_p2p.h"
#include "common.cuh"

namespace updraft::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kVecBytes = 16;

__device__ __forceinline__ void store_release_sys(uint32_t *p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ uint32_t load_acquire_sys(const uint32_t *p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// 16 bytes of T as floats: 8 bf16/f16 or 4 f32.
template <typename T> struct Vec {
  static constexpr int kN = kVecBytes / sizeof(T);
  __device__ static void unpack(const uint4 &raw, float *out) {
    const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
    for (int i = 0; i < kN; i++) out[i] = to_float(e[i]);
  }
  __device__ static uint4 pack(const float *in) {
    uint4 raw;
    T *e = reinterpret_cast<T *>(&raw);
#pragma unroll
    for (int i = 0; i < kN; i++) e[i] = from_float<T>(in[i]);
    return raw;
  }
};

template <typename T>
__global__ void __launch_bounds__(kThreads) all_reduce_p2p_kernel(P2pAllReduceView view, uint4 *data,  // [vectors]
                                                                  int64_t vectors) {
  const int b = blockIdx.x;
  __shared__ uint32_t call;
  __shared__ int give_up;
  if (threadIdx.x == 0) {
    call = view.epoch[b] + 1;
    give_up = 0;
  }
  __syncthreads();
  const uint32_t e = call;
  const int64_t half = (e & 1) * (kP2pMaxBytes / kVecBytes);
  const int64_t per_block = (vectors + kP2pBlocks - 1) / kP2pBlocks;
  const int64_t begin = b * per_block, end = min(vectors, begin + per_block);

  uint4 *mine = static_cast<uint4 *>(view.staging[view.rank]) + half;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) mine[i] = data[i];
  __syncthreads();

  const int q = threadIdx.x;
  if (q < view.world && q != view.rank) {
    __threadfence_system();  // the block's staging writes, before the flag that publishes them
    store_release_sys(view.flags[q] + b * kP2pMaxRanks + view.rank, e);
    const uint32_t *flag = view.flags[view.rank] + b * kP2pMaxRanks + q;
    const uint64_t start = global_ns();
    for (uint32_t spins = 1; load_acquire_sys(flag) < e; spins++) {
      if (spins % 64 != 0) continue;  // the abort word is host memory: a PCIe read, so not every spin
      if (*view.abort != 0) {
        give_up = 1;
        break;
      }
      if (global_ns() - start > kP2pTimeoutNs) {
        give_up = 2;
        break;
      }
    }
  }
  __syncthreads();
  if (give_up != 0) {
    if (threadIdx.x == 0) *view.failed = give_up;  // the data is left as it was; the call reports failure
    return;                                        // epoch not advanced: the group is broken anyway
  }

  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    float sum[Vec<T>::kN], part[Vec<T>::kN];
    Vec<T>::unpack(__ldcv(static_cast<const uint4 *>(view.staging[0]) + half + i), sum);
    for (int r = 1; r < view.world; r++) {
      Vec<T>::unpack(__ldcv(static_cast<const uint4 *>(view.staging[r]) + half + i), part);
#pragma unroll
      for (int k = 0; k < Vec<T>::kN; k++) sum[k] = __fadd_rn(sum[k], part[k]);
    }
    data[i] = Vec<T>::pack(sum);
  }
  if (threadIdx.x == 0) view.epoch[b] = e;
}

int dtype_bytes(int32_t dtype) { return dtype == UD_F32 ? 4 : (dtype == UD_BF16 || dtype == UD_F16) ? 2 : 0; }

}  // namespace

bool p2p_all_reduce_takes(const void *data, int64_t count, int32_t dtype) {
  const int size = dtype_bytes(dtype);
  if (size == 0 || count <= 0) return false;
  const int64_t bytes = count * size;
  return bytes <= kP2pMaxBytes && bytes % kVecBytes == 0 && reinterpret_cast<uintptr_t>(data) % kVecBytes == 0;
}

ud_status launch_all_reduce_p2p(const P2pAllReduceView &view, void *data, int64_t count, int32_t dtype,
                                cudaStream_t stream, std::string *error) {
  const int64_t vectors = count * dtype_bytes(dtype) / kVecBytes;
  uint4 *vec = static_cast<uint4 *>(data);
  switch (dtype) {
    case UD_BF16: all_reduce_p2p_kernel<__nv_bfloat16><<<kP2pBlocks, kThreads, 0, stream>>>(view, vec, vectors); break;
    case UD_F16: all_reduce_p2p_kernel<__half><<<kP2pBlocks, kThreads, 0, stream>>>(view, vec, vectors); break;
    case UD_F32: all_reduce_p2p_kernel<float><<<kP2pBlocks, kThreads, 0, stream>>>(view, vec, vectors); break;
    default:
      if (error) *error = "all_reduce_p2p: dtype " + std::to_string(dtype) + " is not f32, bf16 or f16";
      return UD_ERR_UNSUPPORTED;
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    if (error) *error = std::string("all_reduce_p2p: ") + cudaGetErrorString(err);
    return UD_ERR_DEVICE;
  }
  return UD_OK;
}

}  // namespace updraft::cuda
