// cuda_kernels.h — the CUDA kernels, one launch function per op (one op per file, kernels/cuda/<op>.cu).
//
// Same contract as kernels/cpu/cpu_kernels.h: every launch function validates its operands and
// returns a ud_status, leaving a message in ctx.error on failure; it never exits or throws.
// Shapes: ne[0] is the row count; later dims flatten into the row.
//
// Launch functions only enqueue work on ctx.stream. They must stay capturable into a CUDA graph:
// no allocation, no synchronisation, no reading device memory on the host, and no state that
// changes between calls other than the tensors themselves. Scratch memory comes from
// ctx.workspace (owned by the backend, stable across calls, so a captured graph keeps using it).
#ifndef UPDRAFT_CUDA_KERNELS_H
#define UPDRAFT_CUDA_KERNELS_H

#include <cuda_runtime.h>

#include <string>

#include "../../native/include/updraft/device_abi.h"

namespace updraft::cuda {

// Errors only the device can see: operand values that live in device memory (a slot or block id
// outside the cache, a seq_len shorter than its query rows). Launch functions may not read device
// memory on the host, so a kernel records the first such error in ctx.device_errors
// (report_device_error in common.cuh), skips the bad access and carries on. The backend reads the
// record when it next synchronises and fails with format_device_error's message, naming the launch
// (ctx.launch_index) so the executor can name the op. The record has a fixed address, so kernels
// captured into a CUDA graph report through it too.
enum DeviceErrorCode : int32_t {
  kDeviceErrorNone = 0,
  kSlotOutOfRange = 1,      // v = {token, slot, number of cache slots}                 (rope_kv_write)
  kBlockOutOfRange = 2,     // v = {sequence, block id, number of cache blocks}         (attention)
  kSeqLenTooShort = 3,      // v = {sequence, seq_len, query rows}                      (attention)
  kSeqLenBeyondTable = 4,   // v = {sequence, seq_len, positions its block table holds} (attention)
  kQueryStartLocBad = 5,    // v = {sequence, start, end}: outside [0, numTokens] or decreasing (attention)
  kDeviceErrorOther = 6,    // v = {op-defined}; the message says only which op failed
};

struct DeviceErrorRecord {
  int32_t code;    // DeviceErrorCode; kDeviceErrorNone until a kernel records one
  int32_t op;      // ud_op_kind of the kernel that recorded it
  int32_t launch;  // that launch's KernelContext::launch_index
  int32_t reserved;
  int64_t v[3];
};

// "rope_kv_write: slot_mapping[1] = 8 is outside the cache's 8 slots" (the CPU kernels' wording).
std::string format_device_error(const DeviceErrorRecord &record);

struct KernelContext {
  cudaStream_t stream = nullptr;
  int device = 0;
  int sm_count = 0;
  // cudaDevAttrMaxSharedMemoryPerBlockOptin: kernels needing > 48 KiB must cudaFuncSetAttribute first.
  int max_smem_per_block = 0;
  // Device scratch for split-KV partials, sampling, etc. Ops run in stream order, so each op may use
  // all of it. kWorkspaceBytes is what the backend allocates.
  void *workspace = nullptr;
  size_t workspace_bytes = 0;
  std::string error;
  // Device-side error record (see DeviceErrorRecord) and this launch's index among the launches since
  // the backend's last synchronize (or graph_begin); both set by the backend before every launch.
  DeviceErrorRecord *device_errors = nullptr;
  int32_t launch_index = 0;
  // A cuBLAS handle on `stream` with a workspace of its own and f32 split-K reductions
  // (cublas_api.h), owned by the backend; null when cuBLAS is absent or switched off. Matmul
  // variant 9 runs on it.
  void *cublas = nullptr;

  ud_status fail(ud_status status, std::string message) {
    error = std::move(message);
    return status;
  }
};

constexpr size_t kWorkspaceBytes = size_t(256) << 20;

ud_status launch_embedding(const ud_op &op, KernelContext &ctx);
ud_status launch_matmul(const ud_op &op, KernelContext &ctx);
ud_status launch_rmsnorm(const ud_op &op, KernelContext &ctx);
ud_status launch_rope_kv_write(const ud_op &op, KernelContext &ctx);
ud_status launch_attention(const ud_op &op, KernelContext &ctx);
ud_status launch_silu_mul(const ud_op &op, KernelContext &ctx);
ud_status launch_gather_rows(const ud_op &op, KernelContext &ctx);
ud_status launch_sample(const ud_op &op, KernelContext &ctx);
ud_status launch_fill_random(const ud_op &op, KernelContext &ctx);
ud_status launch_select_tokens(const ud_op &op, KernelContext &ctx);
ud_status launch_process_logits(const ud_op &op, KernelContext &ctx);

// Dispatches on op.kind.
ud_status launch_op(const ud_op &op, KernelContext &ctx);
// 1 when the CUDA kernels implement this op with these operand dtypes (and shapes / variant, where
// the op's file says). An op file may define `int32_t <op>_supports(const ud_op &)` in this namespace
// (matmul_supports, attention_supports, sample_supports): dispatch.cu then asks it; without one it
// applies the CPU backend's dtype rule and accepts only variant 0.
int32_t supports_op(const ud_op &op);

// UD_OK when this build's kernels can run on the current device (an image for its architecture is
// embedded); otherwise UD_ERR_UNAVAILABLE with the reason in ctx.error. Called once by the backend.
ud_status check_kernel_image(KernelContext &ctx);

}  // namespace updraft::cuda

#endif
