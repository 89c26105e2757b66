// cuda_backend.cc — the CUDA backend: device memory from cudaMalloc, copies and kernels in order on one
// non-blocking stream, pinned host memory for staging, the kernels of kernels/cuda, and CUDA graphs.
//
// Threads: the executor serialises calls, but they arrive on whatever libuv worker (or the JS thread)
// runs the step, so every entry makes this instance's device current for the calling thread first.
// Errors: every CUDA error becomes a ud_status with a message in last_error; nothing aborts. A failed
// runtime call also sets CUDA's per-thread "last error", which is cleared at once so that the next
// kernel's launch check does not report it as its own.
//
// Device-side operand errors (kernels/cuda/cuda_kernels.h, DeviceErrorRecord): kernels record them in
// a small device buffer; synchronize copies it back with the stream's last work and, when set, fails
// with "launch #N: <message>", N the failing launch's index among those since the last synchronize
// or graph_begin, so that the executor (native/src/backend.cc) can name the op.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <unordered_set>

#include "../../../kernels/cuda/cublas_api.h"
#include "../../../kernels/cuda/cuda_kernels.h"

namespace updraft::cuda {
namespace {

struct CudaGraph {
  cudaGraphExec_t exec = nullptr;
  int32_t launches = 0;  // ops recorded, so replays keep the launch count in step
};

struct CudaBackend {
  int device = 0;
  std::string name;
  cudaStream_t stream = nullptr;
  KernelContext kernels;                      // stream, device facts, workspace; holds the last error
  DeviceErrorRecord *device_errors = nullptr;  // device memory, zeroed; kernels report into it
  DeviceErrorRecord *host_errors = nullptr;    // pinned copy read at synchronize
  void *cublas_workspace = nullptr;            // cuBLAS's own (CublasApi::kWorkspaceBytes); never shared
  int32_t launches_since_sync = 0;
  bool capturing = false;
  // host_alloc blocks that are plain malloc because pinning failed (copies from them are still
  // correct, only synchronous), so host_free knows how to release them.
  std::unordered_set<void *> unpinned;
};

CudaBackend *self(ud_backend *b) { return reinterpret_cast<CudaBackend *>(b); }

ud_status fail(ud_backend *b, ud_status status, std::string message) {
  return self(b)->kernels.fail(status, std::move(message));
}

// A failed runtime call: clears CUDA's last error and reports "cuda: <what>: <CUDA's message>".
ud_status fail_cuda(ud_backend *b, cudaError_t err, const std::string &what) {
  (void)cudaGetLastError();
  const ud_status status = err == cudaErrorMemoryAllocation ? UD_ERR_OUT_OF_MEMORY : UD_ERR_DEVICE;
  return fail(b, status, "cuda: " + what + ": " + cudaGetErrorString(err));
}

// Makes this backend's device current on the calling thread (calls arrive from worker threads).
// cudaGetDevice first: cheap, and nothing is changed while a capture is in progress on this thread.
ud_status activate(ud_backend *b) {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current == self(b)->device) return UD_OK;
  const cudaError_t err = cudaSetDevice(self(b)->device);
  if (err != cudaSuccess) return fail_cuda(b, err, "cudaSetDevice(" + std::to_string(self(b)->device) + ")");
  return UD_OK;
}

#define UD_CUDA_ACTIVATE(b)                   \
  do {                                        \
    const ud_status _s = activate(b);         \
    if (_s != UD_OK) return _s;               \
  } while (0)

ud_status get_info(ud_backend *b, ud_device_info *out) {
  UD_CUDA_ACTIVATE(b);
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->name, sizeof out->name, "%s", self(b)->name.c_str());
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (err != cudaSuccess) return fail_cuda(b, err, "cudaMemGetInfo");
  out->total_memory = total_bytes;
  out->free_memory = free_bytes;
  out->preferred_dtype = UD_BF16;
  out->default_block_size = 16;
  out->supports_graphs = 1;
  return UD_OK;
}

ud_status alloc(ud_backend *b, size_t bytes, void **out) {
  UD_CUDA_ACTIVATE(b);
  void *ptr = nullptr;
  const cudaError_t err = cudaMalloc(&ptr, bytes > 0 ? bytes : 1);  // 256-byte aligned
  if (err != cudaSuccess) {
    size_t free_bytes = 0, total_bytes = 0;
    std::string detail;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      detail = " (" + std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total_bytes >> 20) + " MiB)";
    return fail_cuda(b, err, "cudaMalloc of " + std::to_string(bytes) + " bytes" + detail);
  }
  *out = ptr;
  return UD_OK;
}

void free_memory(ud_backend *b, void *ptr) {
  if (activate(b) != UD_OK) return;
  if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
}

ud_status upload(ud_backend *b, void *device_dst, const void *host_src, size_t bytes) {
  UD_CUDA_ACTIVATE(b);
  const cudaError_t err = cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, self(b)->stream);
  if (err != cudaSuccess) return fail_cuda(b, err, "upload of " + std::to_string(bytes) + " bytes");
  return UD_OK;
}

ud_status download(ud_backend *b, void *host_dst, const void *device_src, size_t bytes) {
  UD_CUDA_ACTIVATE(b);
  const cudaError_t err = cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, self(b)->stream);
  if (err != cudaSuccess) return fail_cuda(b, err, "download of " + std::to_string(bytes) + " bytes");
  return UD_OK;
}

ud_status memset_zero(ud_backend *b, void *device_dst, size_t bytes) {
  UD_CUDA_ACTIVATE(b);
  const cudaError_t err = cudaMemsetAsync(device_dst, 0, bytes, self(b)->stream);
  if (err != cudaSuccess) return fail_cuda(b, err, "memset of " + std::to_string(bytes) + " bytes");
  return UD_OK;
}

// Pinned memory, so that copies from and to it are asynchronous; plain memory when the driver cannot
// pin any more (copies stay correct, they only stop overlapping).
ud_status host_alloc(ud_backend *b, size_t bytes, void **out) {
  UD_CUDA_ACTIVATE(b);
  void *ptr = nullptr;
  if (cudaHostAlloc(&ptr, bytes > 0 ? bytes : 1, cudaHostAllocDefault) == cudaSuccess) {
    *out = ptr;
    return UD_OK;
  }
  (void)cudaGetLastError();
  try {
    self(b)->unpinned.reserve(self(b)->unpinned.size() + 1);
  } catch (const std::bad_alloc &) {
    return fail(b, UD_ERR_OUT_OF_MEMORY, "cuda: out of host memory");
  }
  ptr = std::malloc(bytes > 0 ? bytes : 1);
  if (!ptr) return fail(b, UD_ERR_OUT_OF_MEMORY, "cuda: cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  self(b)->unpinned.insert(ptr);
  *out = ptr;
  return UD_OK;
}

void host_free(ud_backend *b, void *ptr) {
  if (!ptr) return;
  if (self(b)->unpinned.erase(ptr)) {
    std::free(ptr);
    return;
  }
  if (activate(b) != UD_OK) return;
  if (cudaFreeHost(ptr) != cudaSuccess) (void)cudaGetLastError();
}

int32_t supports(ud_backend *, const ud_op *op) { return supports_op(*op); }

ud_status launch(ud_backend *b, const ud_op *op) {
  UD_CUDA_ACTIVATE(b);
  CudaBackend &s = *self(b);
  (void)cudaGetLastError();  // a stale, non-sticky error must not be blamed on this kernel
  s.kernels.launch_index = s.launches_since_sync++;
  try {
    return launch_op(*op, s.kernels);
  } catch (const std::bad_alloc &) {
    return fail(b, UD_ERR_OUT_OF_MEMORY, "cuda: out of host memory launching an op");
  } catch (const std::exception &e) {
    return fail(b, UD_ERR_DEVICE, std::string("cuda: ") + e.what());
  }
}

ud_status synchronize(ud_backend *b) {
  UD_CUDA_ACTIVATE(b);
  CudaBackend &s = *self(b);
  s.launches_since_sync = 0;
  if (s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "cuda: synchronize during graph capture");
  // The error record travels with the stream's last work, so one wait covers both.
  cudaError_t err = cudaMemcpyAsync(s.host_errors, s.device_errors, sizeof(DeviceErrorRecord), cudaMemcpyDeviceToHost,
                                    s.stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(s.stream);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(b, UD_ERR_DEVICE,
                std::string("cuda: a kernel or copy failed: ") + cudaGetErrorString(err) +
                    " (errors such as an illegal address leave the CUDA context unusable: restart the process)");
  }
  const DeviceErrorRecord record = *s.host_errors;
  if (record.code == kDeviceErrorNone) return UD_OK;
  // Reset for the next steps before reporting.
  std::memset(s.host_errors, 0, sizeof(DeviceErrorRecord));
  err = cudaMemsetAsync(s.device_errors, 0, sizeof(DeviceErrorRecord), s.stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(s.stream);
  if (err != cudaSuccess) return fail_cuda(b, err, "clearing the device error record");
  return fail(b, UD_ERR_INVALID_ARGUMENT, "launch #" + std::to_string(record.launch) + ": " + format_device_error(record));
}

ud_status graph_begin(ud_backend *b) {
  UD_CUDA_ACTIVATE(b);
  CudaBackend &s = *self(b);
  if (s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "cuda: graph_begin while already capturing");
  (void)cudaGetLastError();
  // Thread-local mode: only this thread's unsafe calls (cudaMalloc, synchronous copies) invalidate the
  // capture; other threads using other devices or programs are unaffected.
  const cudaError_t err = cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) return fail_cuda(b, err, "cudaStreamBeginCapture");
  s.capturing = true;
  s.launches_since_sync = 0;  // captured launches are numbered from 0, as in every replay
  return UD_OK;
}

ud_status graph_end(ud_backend *b, ud_graph **out) {
  UD_CUDA_ACTIVATE(b);
  CudaBackend &s = *self(b);
  *out = nullptr;
  if (!s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "cuda: graph_end without graph_begin");
  s.capturing = false;
  const int32_t launches = s.launches_since_sync;
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamEndCapture(s.stream, &graph);  // always leaves capture mode
  if (err != cudaSuccess || graph == nullptr) {
    if (graph) cudaGraphDestroy(graph);
    return fail_cuda(b, err != cudaSuccess ? err : cudaErrorStreamCaptureInvalidated, "stream capture");
  }
  cudaGraphExec_t exec = nullptr;
  err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is independent of it
  if (err != cudaSuccess) return fail_cuda(b, err, "cudaGraphInstantiate");
  auto *result = new (std::nothrow) CudaGraph{exec, launches};
  if (!result) {
    cudaGraphExecDestroy(exec);
    return fail(b, UD_ERR_OUT_OF_MEMORY, "cuda: out of host memory for a graph");
  }
  *out = reinterpret_cast<ud_graph *>(result);
  return UD_OK;
}

ud_status graph_launch(ud_backend *b, ud_graph *g) {
  UD_CUDA_ACTIVATE(b);
  CudaBackend &s = *self(b);
  const auto *graph = reinterpret_cast<const CudaGraph *>(g);
  const cudaError_t err = cudaGraphLaunch(graph->exec, s.stream);
  if (err != cudaSuccess) return fail_cuda(b, err, "cudaGraphLaunch");
  s.launches_since_sync += graph->launches;
  return UD_OK;
}

void graph_destroy(ud_backend *b, ud_graph *g) {
  if (!g) return;
  auto *graph = reinterpret_cast<CudaGraph *>(g);
  if (activate(b) == UD_OK && cudaGraphExecDestroy(graph->exec) != cudaSuccess) (void)cudaGetLastError();
  delete graph;
}

const char *last_error(ud_backend *b) { return self(b)->kernels.error.c_str(); }

// Frees what open created; safe on a half-built instance. Errors are ignored: at process exit the
// runtime may already be unloading.
void release(CudaBackend *s) {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess || current != s->device) (void)cudaSetDevice(s->device);
  if (s->stream) (void)cudaStreamSynchronize(s->stream);
  if (s->kernels.cublas) (void)cublas_api().destroy(s->kernels.cublas);
  if (s->cublas_workspace) (void)cudaFree(s->cublas_workspace);
  if (s->kernels.workspace) (void)cudaFree(s->kernels.workspace);
  if (s->device_errors) (void)cudaFree(s->device_errors);
  if (s->host_errors) host_free(reinterpret_cast<ud_backend *>(s), s->host_errors);
  if (s->stream) (void)cudaStreamDestroy(s->stream);
  (void)cudaGetLastError();
  delete s;
}

void destroy(ud_backend *b) { release(self(b)); }

const ud_backend_iface kCudaIface = {
    "cuda",
    get_info,
    alloc,
    free_memory,
    upload,
    download,
    memset_zero,
    host_alloc,
    host_free,
    supports,
    launch,
    synchronize,
    graph_begin,
    graph_end,
    graph_launch,
    graph_destroy,
    last_error,
    destroy,
};

}  // namespace
}  // namespace updraft::cuda

extern "C" ud_status ud_cuda_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error,
                                          size_t error_len) {
  using namespace updraft::cuda;
  const int index = opts ? opts->device_index : 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    set_error(error, error_len,
              std::string("no CUDA device: ") + (err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports none"));
    return UD_ERR_UNAVAILABLE;
  }
  if (index < 0 || index >= count) {
    set_error(error, error_len, "cuda: device_index " + std::to_string(index) + " is outside the " +
                                    std::to_string(count) + " CUDA device(s) present");
    return UD_ERR_INVALID_ARGUMENT;
  }

  auto *s = new (std::nothrow) CudaBackend();
  if (!s) {
    set_error(error, error_len, "cuda: out of host memory");
    return UD_ERR_OUT_OF_MEMORY;
  }
  s->device = index;
  s->kernels.device = index;
  const auto give_up = [&](ud_status status, const std::string &message) {
    (void)cudaGetLastError();
    set_error(error, error_len, message);
    release(s);
    return status;
  };
  const auto cuda_failed = [&](cudaError_t e, const char *what) {
    return give_up(e == cudaErrorMemoryAllocation ? UD_ERR_OUT_OF_MEMORY : UD_ERR_DEVICE,
                   std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
  };

  if ((err = cudaSetDevice(index)) != cudaSuccess) {
    // No usable device after all (e.g. it is in exclusive use, or the driver failed to initialise it).
    return give_up(UD_ERR_UNAVAILABLE, std::string("no CUDA device: cudaSetDevice(") + std::to_string(index) +
                                           "): " + cudaGetErrorString(err));
  }
  cudaDeviceProp prop;
  if ((err = cudaGetDeviceProperties(&prop, index)) != cudaSuccess) return cuda_failed(err, "cudaGetDeviceProperties");
  s->name.assign(prop.name, strnlen(prop.name, sizeof prop.name));
  s->kernels.sm_count = prop.multiProcessorCount;
  if ((err = cudaDeviceGetAttribute(&s->kernels.max_smem_per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, index)) !=
      cudaSuccess)
    return cuda_failed(err, "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  if (check_kernel_image(s->kernels) != UD_OK) return give_up(UD_ERR_UNAVAILABLE, s->kernels.error);

  if ((err = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess)
    return cuda_failed(err, "cudaStreamCreateWithFlags");
  s->kernels.stream = s->stream;
  if ((err = cudaMalloc(&s->kernels.workspace, kWorkspaceBytes)) != cudaSuccess)
    return cuda_failed(err, "allocating the kernels' workspace");
  s->kernels.workspace_bytes = kWorkspaceBytes;
  // cuBLAS for matmul variant 9, when installed; without it the backend runs its own GEMMs only. Its
  // workspace is its own, so that no assumption cuBLAS makes about what it left there can meet our
  // kernels' scratch (NOTES runs 29–31: suspected for wrong sums that turned out to be its 16-bit
  // split-K reductions, now switched off in cublas_api.h).
  if (cublas_api().loaded()) {
    if ((err = cudaMalloc(&s->cublas_workspace, CublasApi::kWorkspaceBytes)) != cudaSuccess)
      return cuda_failed(err, "allocating cuBLAS's workspace");
    s->kernels.cublas = cublas_open_handle(s->stream, s->cublas_workspace, CublasApi::kWorkspaceBytes, nullptr);
  }
  if ((err = cudaMalloc(&s->device_errors, sizeof(DeviceErrorRecord))) != cudaSuccess)
    return cuda_failed(err, "allocating the device error record");
  s->kernels.device_errors = s->device_errors;
  void *host_record = nullptr;
  if (host_alloc(reinterpret_cast<ud_backend *>(s), sizeof(DeviceErrorRecord), &host_record) != UD_OK)
    return give_up(UD_ERR_OUT_OF_MEMORY, s->kernels.error);
  s->host_errors = static_cast<DeviceErrorRecord *>(host_record);
  std::memset(s->host_errors, 0, sizeof(DeviceErrorRecord));
  if ((err = cudaMemsetAsync(s->device_errors, 0, sizeof(DeviceErrorRecord), s->stream)) != cudaSuccess ||
      (err = cudaStreamSynchronize(s->stream)) != cudaSuccess)
    return cuda_failed(err, "clearing the device error record");

  out->iface = &kCudaIface;
  out->ctx = reinterpret_cast<ud_backend *>(s);
  return UD_OK;
}

extern "C" ud_status ud_cuda_backend_stream(ud_backend *b, int *device, void **stream) {
  if (!b) return UD_ERR_INVALID_ARGUMENT;
  *device = updraft::cuda::self(b)->device;
  *stream = updraft::cuda::self(b)->stream;
  return UD_OK;
}
