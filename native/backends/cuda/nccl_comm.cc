// nccl_comm.cc — the CUDA backend's communicator (device_abi.h ud_comm_iface) over NCCL, loaded with
// dlopen when a group is opened (UPDRAFT_NCCL_LIBRARY, a path, first; then libnccl.so.2 on the loader's
// path), so the addon builds without NCCL's headers and loads on machines without NCCL; opening a group
// there fails with UD_ERR_UNAVAILABLE and the reason. (pip's nvidia-nccl wheels, as PyTorch installs them,
// put the library in site-packages, off the loader's path: point UPDRAFT_NCCL_LIBRARY at it.)
//
// One process drives every GPU of the group, one thread per rank: the group's communicators are made
// together by ncclCommInitAll, and rank r's all-reduce is enqueued on rank r's backend stream (so it
// is ordered with the kernels around it and can be recorded in a CUDA graph).
//
// NVLink multicast (NVLS) is switched off before NCCL reads its environment: on the shared machines
// this project runs on, a program that uses it can put the host's GPUs out of service.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_backend.h"

namespace updraft::cuda {
namespace {

// The few declarations needed, from NCCL's public API documentation (nccl.h, NCCL >= 2.10 for bf16).
typedef struct ncclComm *ncclComm_t;
typedef enum { ncclSuccess = 0 } ncclResult_t;
typedef enum { ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9 } ncclDataType_t;
typedef enum { ncclSum = 0 } ncclRedOp_t;

struct NcclApi {
  void *library = nullptr;
  std::string path;  // the file that was opened (each rank takes its own reference to it)
  ncclResult_t (*comm_init_all)(ncclComm_t *comms, int ndev, const int *devlist) = nullptr;
  ncclResult_t (*all_reduce)(const void *send, void *recv, size_t count, ncclDataType_t dtype, ncclRedOp_t op,
                             ncclComm_t comm, cudaStream_t stream) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t comm) = nullptr;
  ncclResult_t (*comm_abort)(ncclComm_t comm) = nullptr;
  const char *(*error_string)(ncclResult_t result) = nullptr;
};

// Loads libnccl.so.2 and its entry points; an empty string on success, else the reason.
std::string load_nccl(NcclApi &api) {
  const char *configured = std::getenv("UPDRAFT_NCCL_LIBRARY");
  api.path = configured && *configured ? configured : "libnccl.so.2";
  api.library = dlopen(api.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!api.library) {
    const char *why = dlerror();
    return "NCCL is not installed (dlopen " + api.path + ": " + (why ? why : "not found") +
           "; UPDRAFT_NCCL_LIBRARY may name the file)";
  }
  const auto bind = [&](auto &fn, const char *symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(api.library, symbol));
    return fn != nullptr;
  };
  if (!bind(api.comm_init_all, "ncclCommInitAll") || !bind(api.all_reduce, "ncclAllReduce") ||
      !bind(api.comm_destroy, "ncclCommDestroy") || !bind(api.comm_abort, "ncclCommAbort") ||
      !bind(api.error_string, "ncclGetErrorString")) {
    dlclose(api.library);
    api.library = nullptr;
    return api.path + " lacks an entry point Updraft needs (NCCL 2.10 or later is required)";
  }
  return "";
}

struct NcclComm {
  NcclApi api;  // a copy per rank; the library handle is closed only by the last (dlopen counts)
  ncclComm_t comm = nullptr;
  int rank = 0;
  int device = 0;
  cudaStream_t stream = nullptr;
  std::string error;
};

NcclComm *self(ud_comm *c) { return reinterpret_cast<NcclComm *>(c); }

ud_status all_reduce_sum(ud_comm *c, void *data, int64_t count, int32_t dtype) {
  NcclComm *comm = self(c);
  ncclDataType_t type;
  switch (dtype) {
    case UD_F32: type = ncclFloat32; break;
    case UD_BF16: type = ncclBfloat16; break;
    case UD_F16: type = ncclFloat16; break;
    default:
      comm->error = "nccl all_reduce: dtype " + std::to_string(dtype) + " is not f32, bf16 or f16";
      return UD_ERR_UNSUPPORTED;
  }
  if (count < 0) {
    comm->error = "nccl all_reduce: negative count";
    return UD_ERR_INVALID_ARGUMENT;
  }
  const cudaError_t cuda = cudaSetDevice(comm->device);  // NCCL launches on the current device
  if (cuda != cudaSuccess) {
    (void)cudaGetLastError();
    comm->error = std::string("nccl all_reduce: cudaSetDevice: ") + cudaGetErrorString(cuda);
    return UD_ERR_DEVICE;
  }
  const ncclResult_t result =
      comm->api.all_reduce(data, data, static_cast<size_t>(count), type, ncclSum, comm->comm, comm->stream);
  if (result != ncclSuccess) {
    comm->error = "nccl all_reduce (rank " + std::to_string(comm->rank) + "): " + comm->api.error_string(result);
    return UD_ERR_DEVICE;
  }
  return UD_OK;
}

void abort_group(ud_comm *c) {
  NcclComm *comm = self(c);
  if (comm->comm) comm->api.comm_abort(comm->comm);  // the other ranks' pending collectives fail too
  comm->comm = nullptr;
}

const char *last_error(ud_comm *c) { return self(c)->error.c_str(); }

void destroy(ud_comm *c) {
  NcclComm *comm = self(c);
  if (comm->comm) comm->api.comm_destroy(comm->comm);
  if (comm->api.library) dlclose(comm->api.library);
  delete comm;
}

const ud_comm_iface kNcclIface = {
    "nccl",
    1,  // enqueued on the stream: CUDA graphs may record it
    all_reduce_sum,
    abort_group,
    last_error,
    destroy,
};

}  // namespace
}  // namespace updraft::cuda

extern "C" ud_status ud_nccl_comms_open(const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out, char *error,
                                        size_t error_len) {
  using namespace updraft::cuda;
  if (world < 1 || !ranks || !out) {
    set_error(error, error_len, "nccl: a group needs at least one rank");
    return UD_ERR_INVALID_ARGUMENT;
  }
  std::vector<int> devices(static_cast<size_t>(world));
  std::vector<cudaStream_t> streams(static_cast<size_t>(world));
  for (int32_t r = 0; r < world; r++) {
    void *stream = nullptr;
    if (ud_cuda_backend_stream(ranks[r].ctx, &devices[r], &stream) != UD_OK) {
      set_error(error, error_len, "nccl: rank " + std::to_string(r) + " is not a cuda backend instance");
      return UD_ERR_INVALID_ARGUMENT;
    }
    streams[r] = static_cast<cudaStream_t>(stream);
    for (int32_t q = 0; q < r; q++) {
      if (devices[q] == devices[r]) {
        set_error(error, error_len, "nccl: ranks " + std::to_string(q) + " and " + std::to_string(r) + " are both on GPU " +
                                        std::to_string(devices[r]) + "; NCCL needs one GPU per rank");
        return UD_ERR_INVALID_ARGUMENT;
      }
    }
  }
  // Before NCCL reads its environment (it does so once, at the first init). Always 0, whatever the caller set.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  NcclApi api;
  const std::string load_error = load_nccl(api);
  if (!load_error.empty()) {
    set_error(error, error_len, "nccl: " + load_error);
    return UD_ERR_UNAVAILABLE;
  }
  std::vector<ncclComm_t> comms(static_cast<size_t>(world), nullptr);
  const ncclResult_t result = api.comm_init_all(comms.data(), world, devices.data());
  if (result != ncclSuccess) {
    set_error(error, error_len, std::string("nccl: ncclCommInitAll: ") + api.error_string(result));
    dlclose(api.library);
    return UD_ERR_DEVICE;
  }
  for (int32_t r = 0; r < world; r++) {
    auto *comm = new NcclComm();
    comm->api = api;
    if (r > 0) comm->api.library = dlopen(api.path.c_str(), RTLD_NOW | RTLD_LOCAL);  // one reference per rank
    comm->comm = comms[r];
    comm->rank = r;
    comm->device = devices[r];
    comm->stream = streams[r];
    out[r].iface = &kNcclIface;
    out[r].ctx = reinterpret_cast<ud_comm *>(comm);
  }
  return UD_OK;
}
