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
// Small messages (≤ 512 KB: the decode steps' all-reduces) take a one-shot all-reduce over peer memory
// instead (kernels/cuda/all_reduce_p2p.h), where every pair of the group's GPUs has peer access:
// NCCL's small-message latency is most of what tensor parallelism adds to a decode step.
// UPDRAFT_P2P_ALLREDUCE=0 sends everything through NCCL.
//
// NVLink multicast (NVLS) is switched off before NCCL reads its environment: on the shared machines
// this project runs on, a program that uses it can put the host's GPUs out of service.
//
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../../../kernels/cuda/all_reduce_p2p.h"
#include "../../../kernels/cuda/env_switch.h"
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

// Host-mapped words the peer all-reduce kernels read (abort) or write (failed); freed by the last owner.
struct MappedWords {
  int32_t *host = nullptr;  // [0]: abort (the group's), [1 + r]: rank r's failure
  ~MappedWords() {
    if (host) (void)cudaFreeHost(host);
  }
};

// One rank's buffers of the peer all-reduce (its own device's memory).
struct P2pBuffers {
  void *staging = nullptr;    // [2][kP2pMaxBytes]
  uint32_t *flags = nullptr;  // [kP2pBlocks][kP2pMaxRanks]
  uint32_t *epoch = nullptr;  // [kP2pBlocks]
};

struct NcclComm {
  NcclApi api;  // a copy per rank; the library handle is closed only by the last (dlopen counts)
  ncclComm_t comm = nullptr;
  int rank = 0;
  int device = 0;
  cudaStream_t stream = nullptr;
  std::string error;
  bool p2p = false;              // small messages take the peer all-reduce
  P2pAllReduceView view;         // this rank's view of every rank's buffers
  P2pBuffers own;                // what this rank allocated (freed on destroy)
  std::shared_ptr<MappedWords> words;
  const volatile int32_t *failed_host = nullptr;  // view.failed, as the host reads it
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
  if (comm->p2p && p2p_all_reduce_takes(data, count, dtype)) {
    if (*comm->failed_host != 0) {
      comm->error = std::string("peer all_reduce (rank ") + std::to_string(comm->rank) + "): an earlier call " +
                    (*comm->failed_host == 1 ? "was aborted (another rank failed)" : "timed out waiting for a peer");
      return UD_ERR_DEVICE;
    }
    std::string why;
    const ud_status status = launch_all_reduce_p2p(comm->view, data, count, dtype, comm->stream, &why);
    if (status != UD_OK) comm->error = why;
    return status;
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
  if (comm->words) comm->words->host[0] = 1;  // peer all-reduce kernels waiting anywhere in the group give up
  if (comm->comm) comm->api.comm_abort(comm->comm);  // the other ranks' pending collectives fail too
  comm->comm = nullptr;
}

const char *last_error(ud_comm *c) { return self(c)->error.c_str(); }

void free_p2p(int device, P2pBuffers &own) {
  if (!own.staging && !own.flags && !own.epoch) return;
  int previous = 0;
  (void)cudaGetDevice(&previous);
  (void)cudaSetDevice(device);
  (void)cudaDeviceSynchronize();  // no kernel of ours may still be reading these
  (void)cudaFree(own.staging);
  (void)cudaFree(own.flags);
  (void)cudaFree(own.epoch);
  own = P2pBuffers{};
  (void)cudaSetDevice(previous);
}

void destroy(ud_comm *c) {
  NcclComm *comm = self(c);
  free_p2p(comm->device, comm->own);
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

// Sets up the peer all-reduce for the group when every pair of its GPUs has peer access: enables it,
// allocates each rank's staging, flags and counters (zeroed) and the host-mapped words. false (and
// nothing left allocated) where it cannot; the group then uses NCCL for every size.
bool open_p2p(const std::vector<int> &devices, std::vector<P2pBuffers> &buffers, std::shared_ptr<MappedWords> &words,
              std::string &why) {
  const int world = static_cast<int>(devices.size());
  if (world < 2 || world > kP2pMaxRanks) return why = "group size " + std::to_string(world), false;
  if (!env_switch_on("UPDRAFT_P2P_ALLREDUCE")) return why = "UPDRAFT_P2P_ALLREDUCE=0", false;
  int previous = 0;
  (void)cudaGetDevice(&previous);
  buffers.assign(static_cast<size_t>(world), P2pBuffers{});
  bool ok = true;
  for (int r = 0; r < world && ok; r++) {
    for (int q = 0; q < world && ok; q++) {
      if (q == r) continue;
      int can = 0;
      if (cudaDeviceCanAccessPeer(&can, devices[r], devices[q]) != cudaSuccess || !can) {
        why = "GPU " + std::to_string(devices[r]) + " cannot access GPU " + std::to_string(devices[q]);
        ok = false;
      }
    }
  }
  for (int r = 0; r < world && ok; r++) {
    ok = cudaSetDevice(devices[r]) == cudaSuccess;
    for (int q = 0; q < world && ok; q++) {
      if (q == r) continue;
      const cudaError_t err = cudaDeviceEnablePeerAccess(devices[q], 0);
      if (err == cudaErrorPeerAccessAlreadyEnabled) (void)cudaGetLastError();
      else if (err != cudaSuccess) ok = false, why = std::string("cudaDeviceEnablePeerAccess: ") + cudaGetErrorString(err);
    }
    P2pBuffers &b = buffers[r];
    ok = ok && cudaMalloc(&b.staging, 2 * kP2pMaxBytes) == cudaSuccess &&
         cudaMalloc(reinterpret_cast<void **>(&b.flags), sizeof(uint32_t) * kP2pBlocks * kP2pMaxRanks) == cudaSuccess &&
         cudaMalloc(reinterpret_cast<void **>(&b.epoch), sizeof(uint32_t) * kP2pBlocks) == cudaSuccess &&
         cudaMemset(b.flags, 0, sizeof(uint32_t) * kP2pBlocks * kP2pMaxRanks) == cudaSuccess &&
         cudaMemset(b.epoch, 0, sizeof(uint32_t) * kP2pBlocks) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess;
    if (!ok && why.empty()) why = "allocating its buffers failed";
  }
  if (ok) {
    words = std::make_shared<MappedWords>();
    void *host = nullptr;
    ok = cudaHostAlloc(&host, sizeof(int32_t) * (1 + world), cudaHostAllocMapped | cudaHostAllocPortable) == cudaSuccess;
    if (ok) {
      words->host = static_cast<int32_t *>(host);
      for (int i = 0; i <= world; i++) words->host[i] = 0;
    } else {
      why = "cudaHostAlloc of its mapped words failed";
    }
  }
  if (!ok) {
    (void)cudaGetLastError();
    for (int r = 0; r < world; r++) free_p2p(devices[r], buffers[r]);
    words.reset();
  }
  (void)cudaSetDevice(previous);
  return ok;
}

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
  std::vector<P2pBuffers> p2p_buffers;
  std::shared_ptr<MappedWords> words;
  std::string p2p_why;
  const bool p2p = open_p2p(devices, p2p_buffers, words, p2p_why);
  if (!p2p && std::getenv("UPDRAFT_P2P_ALLREDUCE_VERBOSE")) std::fprintf(stderr, "updraft: peer all-reduce off: %s\n", p2p_why.c_str());
  for (int32_t r = 0; r < world; r++) {
    auto *comm = new NcclComm();
    if (p2p) {
      comm->p2p = true;
      comm->own = p2p_buffers[r];
      comm->words = words;
      comm->view.world = world;
      comm->view.rank = r;
      for (int32_t q = 0; q < world; q++) {
        comm->view.staging[q] = p2p_buffers[q].staging;
        comm->view.flags[q] = p2p_buffers[q].flags;
      }
      comm->view.epoch = p2p_buffers[r].epoch;
      int32_t *abort_word = nullptr, *failed_word = nullptr;
      (void)cudaHostGetDevicePointer(reinterpret_cast<void **>(&abort_word), words->host, 0);
      (void)cudaHostGetDevicePointer(reinterpret_cast<void **>(&failed_word), words->host + 1 + r, 0);
      comm->view.abort = abort_word;
      comm->view.failed = failed_word;
      comm->failed_host = words->host + 1 + r;
    }
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
