// pdl.cuh — programmatic dependent launch (PDL, sm_90+): how a decode step hides kernel boundaries.
//
// A kernel launched with the PDL attribute (launch_with_pdl below) may start while the kernel before
// it on the stream still runs: as soon as every block of that earlier kernel has executed
// pdl_launch_dependents() (or exited). It must then call pdl_wait() before it touches anything the
// earlier kernel writes, or writes anything the earlier kernel reads: pdl_wait returns once the earlier
// grid has completed and its memory is visible. Work that depends on neither — streaming a GEMV's
// weights into registers — goes before pdl_wait, so it overlaps the earlier kernel's tail and the
// launch gap. In a batch-1 decode step that earlier kernel is often one block on one SM (rmsnorm, the
// split-KV reduce), so the other multiprocessors start on the weights meanwhile.
//
// Safety: only kernels that call pdl_wait before their first dependent access are launched with the
// attribute; every other kernel is launched plainly and so starts after its predecessor completed
// (the trigger in its predecessor is then a no-op). Both instructions are no-ops in a kernel that was
// not launched with the attribute, and compile to nothing below sm_90. Graph capture keeps the
// attribute as a programmatic edge, so replayed decode graphs get the same overlap.
// UPDRAFT_PDL=0 launches everything plainly (read once), for A/B runs.
#ifndef UPDRAFT_CUDA_PDL_CUH
#define UPDRAFT_CUDA_PDL_CUH

#include <cuda_runtime.h>

#include "env_switch.h"

namespace updraft::cuda {

// Lets a PDL-launched successor start now (it still waits for this grid's completion in pdl_wait).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Blocks until the grid this kernel depends on has completed and its writes are visible.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

inline bool pdl_enabled_by_env() {
  static const bool enabled = env_switch_on("UPDRAFT_PDL");
  return enabled;
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute (unless UPDRAFT_PDL=0).
// The kernel must call pdl_wait() before its first access to data an earlier kernel writes.
template <typename... KernelArgs, typename... Args>
cudaError_t launch_with_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                            Args &&...args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = pdl_enabled_by_env() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, static_cast<KernelArgs>(args)...);
}

}  // namespace updraft::cuda

#endif
