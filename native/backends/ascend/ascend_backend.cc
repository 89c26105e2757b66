// ascend_backend.cc — the `ascend` backend: Huawei Ascend NPUs (Atlas A2 / 910B) through the ACL runtime,
// with the AscendC kernels of kernels/ascendc built by bisheng into libupdraft_ascendc_kernels.so.
//
// Nothing of CANN is linked: libascendcl.so and the kernel library are loaded with dlopen when the
// backend is opened, so the addon builds and loads on every machine and `--device ascend` without an NPU
// (or without CANN, or without the kernel library) fails at open with UD_ERR_UNAVAILABLE and the reason.
// The ACL declarations below are written from the public ACL reference (function names, argument order,
// enum values) because no CANN header may be used here; they are the first thing to check against
// acl/acl.h on a CANN machine.
//
// NOT YET RUN ON AN NPU. Mirrors the CUDA backend: one stream per instance, device memory from
// aclrtMalloc, pinned host staging from aclrtMallocHost, copies and kernels in stream order, operand
// errors the kernels record (kernels/ascendc/tiling.h error slots) checked at synchronize, and graph capture
// of a decode step with aclmdlRICaptureBegin/End + aclmdlRIExecuteAsync where the runtime has them.
//
// Device-side operand errors name their launch, as the CUDA backend's do: every launch is numbered among
// those since the last synchronize or graph_begin (a captured graph's launches from 0, as in every
// replay), the kernels record that number with the error in their block's slot and keep a slot's first
// error, and synchronize fails with "launch #N: <message>" for the lowest N, so that the executor
// (native/src/backend.cc) names the op: "op 1 (attention): attention: ...".
#include "ascend_backend.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "../../../kernels/ascendc/library.h"

namespace updraft::ascend {
namespace {

// --- ACL, declared from its public reference ----------------------------------------------------------
using aclError = int;
using aclrtStream = void *;
using aclmdlRI = void *;
constexpr aclError ACL_SUCCESS = 0;
constexpr aclError ACL_ERROR_REPEAT_INITIALIZE = 100002;
constexpr int ACL_MEM_MALLOC_HUGE_FIRST = 0;  // aclrtMemMallocPolicy
constexpr int ACL_MEMCPY_HOST_TO_DEVICE = 1;  // aclrtMemcpyKind
constexpr int ACL_MEMCPY_DEVICE_TO_HOST = 2;
constexpr int ACL_HBM_MEM = 1;                      // aclrtMemAttr
constexpr int ACL_MODEL_RI_CAPTURE_MODE_THREAD_LOCAL = 1;  // aclmdlRICaptureMode (GLOBAL 0, THREAD_LOCAL 1, RELAXED 2)

struct Acl {
  void *handle = nullptr;
  aclError (*aclInit)(const char *) = nullptr;
  aclError (*aclrtSetDevice)(int32_t) = nullptr;
  aclError (*aclrtGetDevice)(int32_t *) = nullptr;
  aclError (*aclrtGetDeviceCount)(uint32_t *) = nullptr;
  aclError (*aclrtCreateStream)(aclrtStream *) = nullptr;
  aclError (*aclrtDestroyStream)(aclrtStream) = nullptr;
  aclError (*aclrtSynchronizeStream)(aclrtStream) = nullptr;
  aclError (*aclrtMalloc)(void **, size_t, int) = nullptr;
  aclError (*aclrtFree)(void *) = nullptr;
  aclError (*aclrtMallocHost)(void **, size_t) = nullptr;
  aclError (*aclrtFreeHost)(void *) = nullptr;
  aclError (*aclrtMemcpyAsync)(void *, size_t, const void *, size_t, int, aclrtStream) = nullptr;
  aclError (*aclrtMemsetAsync)(void *, size_t, int32_t, size_t, aclrtStream) = nullptr;
  aclError (*aclrtGetMemInfo)(int, size_t *, size_t *) = nullptr;
  // Optional.
  const char *(*aclGetRecentErrMsg)() = nullptr;
  const char *(*aclrtGetSocName)() = nullptr;
  aclError (*aclmdlRICaptureBegin)(aclrtStream, int) = nullptr;
  aclError (*aclmdlRICaptureEnd)(aclrtStream, aclmdlRI *) = nullptr;
  aclError (*aclmdlRIExecuteAsync)(aclmdlRI, aclrtStream) = nullptr;
  aclError (*aclmdlRIDestroy)(aclmdlRI) = nullptr;
  bool graphs() const { return aclmdlRICaptureBegin && aclmdlRICaptureEnd && aclmdlRIExecuteAsync && aclmdlRIDestroy; }
};

struct Kernels {
  void *handle = nullptr;
  int32_t (*abi_version)() = nullptr;
  int32_t (*launch)(const ud_op *, updraft_ascendc_context *) = nullptr;
  int32_t (*supports)(const ud_op *) = nullptr;
  int32_t (*device_error)(const int32_t *, char *, size_t) = nullptr;
};

// ACL is process-wide (aclInit once per process, never finalised while anything may use it), so the
// loaded runtime and kernel library are too; each backend instance has its own device, stream and memory.
struct Runtime {
  std::mutex mutex;
  bool tried = false;
  std::string error;  // why loading failed
  Acl acl;
  Kernels kernels;
};
Runtime &runtime() {
  static Runtime r;
  return r;
}

template <typename F> bool load(void *handle, const char *name, F &fn, bool required, std::string &error) {
  fn = reinterpret_cast<F>(dlsym(handle, name));
  if (!fn && required) error = std::string("missing symbol ") + name;
  return fn || !required;
}

// The directory of the shared object holding this code (the addon), where the kernel library sits.
std::string own_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&own_directory), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool load_runtime(std::string &error) {
  Runtime &r = runtime();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.tried) {
    error = r.error;
    return r.error.empty();
  }
  r.tried = true;
  Acl &a = r.acl;
  a.handle = dlopen("libascendcl.so", RTLD_NOW | RTLD_LOCAL);
  if (!a.handle) {
    const char *why = dlerror();
    r.error = std::string("no Ascend runtime: cannot load libascendcl.so (") + (why ? why : "not found") +
              "); install the CANN toolkit and source its set_env.sh, or use --device ascend-sim to run the AscendC kernels on the host";
    error = r.error;
    return false;
  }
  std::string missing;
  const bool ok = load(a.handle, "aclInit", a.aclInit, true, missing) && load(a.handle, "aclrtSetDevice", a.aclrtSetDevice, true, missing) &&
                  load(a.handle, "aclrtGetDeviceCount", a.aclrtGetDeviceCount, true, missing) &&
                  load(a.handle, "aclrtCreateStream", a.aclrtCreateStream, true, missing) &&
                  load(a.handle, "aclrtDestroyStream", a.aclrtDestroyStream, true, missing) &&
                  load(a.handle, "aclrtSynchronizeStream", a.aclrtSynchronizeStream, true, missing) &&
                  load(a.handle, "aclrtMalloc", a.aclrtMalloc, true, missing) && load(a.handle, "aclrtFree", a.aclrtFree, true, missing) &&
                  load(a.handle, "aclrtMallocHost", a.aclrtMallocHost, true, missing) &&
                  load(a.handle, "aclrtFreeHost", a.aclrtFreeHost, true, missing) &&
                  load(a.handle, "aclrtMemcpyAsync", a.aclrtMemcpyAsync, true, missing) &&
                  load(a.handle, "aclrtMemsetAsync", a.aclrtMemsetAsync, true, missing) &&
                  load(a.handle, "aclrtGetMemInfo", a.aclrtGetMemInfo, true, missing);
  if (!ok) {
    r.error = "the Ascend runtime in libascendcl.so is too old for Updraft: " + missing;
    error = r.error;
    return false;
  }
  std::string ignored;
  load(a.handle, "aclrtGetDevice", a.aclrtGetDevice, false, ignored);
  load(a.handle, "aclGetRecentErrMsg", a.aclGetRecentErrMsg, false, ignored);
  load(a.handle, "aclrtGetSocName", a.aclrtGetSocName, false, ignored);
  load(a.handle, "aclmdlRICaptureBegin", a.aclmdlRICaptureBegin, false, ignored);
  load(a.handle, "aclmdlRICaptureEnd", a.aclmdlRICaptureEnd, false, ignored);
  load(a.handle, "aclmdlRIExecuteAsync", a.aclmdlRIExecuteAsync, false, ignored);
  load(a.handle, "aclmdlRIDestroy", a.aclmdlRIDestroy, false, ignored);
  const aclError init = a.aclInit(nullptr);
  if (init != ACL_SUCCESS && init != ACL_ERROR_REPEAT_INITIALIZE) {
    r.error = "aclInit failed with error " + std::to_string(init) + (a.aclGetRecentErrMsg ? std::string(": ") + a.aclGetRecentErrMsg() : "");
    error = r.error;
    return false;
  }
  // The kernels: UPDRAFT_ASCEND_KERNELS, else beside the addon.
  const char *override_path = std::getenv("UPDRAFT_ASCEND_KERNELS");
  const std::string path = override_path && *override_path ? override_path : own_directory() + "/libupdraft_ascendc_kernels.so";
  Kernels &k = r.kernels;
  k.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!k.handle) {
    const char *why = dlerror();
    r.error = "the AscendC kernel library is not built (" + path + ": " + (why ? why : "not found") +
              "); build it on a CANN machine with UPDRAFT_ASCEND=ON (native/backends/ascend/README.md)";
    error = r.error;
    return false;
  }
  missing.clear();
  if (!load(k.handle, "updraft_ascendc_abi_version", k.abi_version, true, missing) || !load(k.handle, "updraft_ascendc_launch", k.launch, true, missing) ||
      !load(k.handle, "updraft_ascendc_supports", k.supports, true, missing) ||
      !load(k.handle, "updraft_ascendc_device_error", k.device_error, true, missing)) {
    r.error = "the AscendC kernel library " + path + " is incomplete: " + missing;
    error = r.error;
    return false;
  }
  if (k.abi_version() != UPDRAFT_ASCENDC_ABI_VERSION) {
    r.error = "the AscendC kernel library " + path + " was built for another version of the addon (ABI " + std::to_string(k.abi_version()) + ", expected " +
              std::to_string(UPDRAFT_ASCENDC_ABI_VERSION) + "): rebuild it";
    error = r.error;
    return false;
  }
  return true;
}

constexpr size_t kErrorAreaBytes = 48 * 8 * sizeof(int32_t);  // kMaxBlocks slots of kErrorSlotInts
constexpr size_t kInitialWorkspace = size_t(64) << 20;

struct AscendBackend {
  int32_t device = 0;
  std::string name;
  aclrtStream stream = nullptr;
  void *error_slots = nullptr;       // device
  int32_t *host_errors = nullptr;    // pinned
  updraft_ascendc_context kernels{};
  int32_t launches_since_sync = 0;  // numbers the launches for device-side errors ("launch #N")
  bool capturing = false;
  std::string error;
};

// A captured step: the ACL model and how many launches it replays, so that the launch count stays in
// step across replays (the captured kernels carry the indices they were captured with, from 0).
struct AscendGraph {
  aclmdlRI model = nullptr;
  int32_t launches = 0;
};

AscendBackend *self(ud_backend *b) { return reinterpret_cast<AscendBackend *>(b); }
int32_t reserve_workspace(void *owner, size_t bytes, void **workspace, size_t *workspace_bytes);
Acl &acl() { return runtime().acl; }

ud_status fail(ud_backend *b, ud_status status, std::string message) {
  self(b)->error = std::move(message);
  return status;
}
ud_status fail_acl(ud_backend *b, aclError err, const std::string &what) {
  std::string message = "ascend: " + what + " failed with ACL error " + std::to_string(err);
  if (acl().aclGetRecentErrMsg) {
    const char *detail = acl().aclGetRecentErrMsg();
    if (detail && *detail) message += std::string(": ") + detail;
  }
  return fail(b, UD_ERR_DEVICE, message);
}

// ACL binds a device to the calling thread; calls arrive on libuv workers, so make ours current first.
ud_status activate(ud_backend *b) {
  int32_t current = -1;
  if (acl().aclrtGetDevice && acl().aclrtGetDevice(&current) == ACL_SUCCESS && current == self(b)->device) return UD_OK;
  const aclError err = acl().aclrtSetDevice(self(b)->device);
  return err == ACL_SUCCESS ? UD_OK : fail_acl(b, err, "aclrtSetDevice(" + std::to_string(self(b)->device) + ")");
}
#define UD_ACL_ACTIVATE(b)            \
  do {                                \
    const ud_status _s = activate(b); \
    if (_s != UD_OK) return _s;       \
  } while (0)

ud_status get_info(ud_backend *b, ud_device_info *out) {
  UD_ACL_ACTIVATE(b);
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->name, sizeof out->name, "%s", self(b)->name.c_str());
  size_t free_bytes = 0, total_bytes = 0;
  const aclError err = acl().aclrtGetMemInfo(ACL_HBM_MEM, &free_bytes, &total_bytes);
  if (err != ACL_SUCCESS) return fail_acl(b, err, "aclrtGetMemInfo");
  out->total_memory = total_bytes;
  out->free_memory = free_bytes;
  out->preferred_dtype = UD_BF16;
  out->default_block_size = 128;
  out->supports_graphs = acl().graphs() ? 1 : 0;
  return UD_OK;
}

ud_status alloc(ud_backend *b, size_t bytes, void **out) {
  UD_ACL_ACTIVATE(b);
  const aclError err = acl().aclrtMalloc(out, bytes > 0 ? bytes : 1, ACL_MEM_MALLOC_HUGE_FIRST);
  if (err != ACL_SUCCESS) {
    fail_acl(b, err, "aclrtMalloc of " + std::to_string(bytes) + " bytes");
    return UD_ERR_OUT_OF_MEMORY;
  }
  return UD_OK;
}

void free_memory(ud_backend *b, void *ptr) {
  if (ptr && activate(b) == UD_OK) (void)acl().aclrtFree(ptr);
}

ud_status upload(ud_backend *b, void *dst, const void *src, size_t bytes) {
  UD_ACL_ACTIVATE(b);
  if (!bytes) return UD_OK;
  const aclError err = acl().aclrtMemcpyAsync(dst, bytes, src, bytes, ACL_MEMCPY_HOST_TO_DEVICE, self(b)->stream);
  return err == ACL_SUCCESS ? UD_OK : fail_acl(b, err, "upload of " + std::to_string(bytes) + " bytes");
}

ud_status download(ud_backend *b, void *dst, const void *src, size_t bytes) {
  UD_ACL_ACTIVATE(b);
  if (!bytes) return UD_OK;
  const aclError err = acl().aclrtMemcpyAsync(dst, bytes, src, bytes, ACL_MEMCPY_DEVICE_TO_HOST, self(b)->stream);
  return err == ACL_SUCCESS ? UD_OK : fail_acl(b, err, "download of " + std::to_string(bytes) + " bytes");
}

ud_status memset_zero(ud_backend *b, void *dst, size_t bytes) {
  UD_ACL_ACTIVATE(b);
  if (!bytes) return UD_OK;
  const aclError err = acl().aclrtMemsetAsync(dst, bytes, 0, bytes, self(b)->stream);
  return err == ACL_SUCCESS ? UD_OK : fail_acl(b, err, "memset of " + std::to_string(bytes) + " bytes");
}

ud_status host_alloc(ud_backend *b, size_t bytes, void **out) {
  UD_ACL_ACTIVATE(b);
  const aclError err = acl().aclrtMallocHost(out, bytes > 0 ? bytes : 1);
  if (err != ACL_SUCCESS) {
    fail_acl(b, err, "aclrtMallocHost of " + std::to_string(bytes) + " bytes");
    return UD_ERR_OUT_OF_MEMORY;
  }
  return UD_OK;
}

void host_free(ud_backend *b, void *ptr) {
  if (ptr && activate(b) == UD_OK) (void)acl().aclrtFreeHost(ptr);
}

int32_t supports(ud_backend *, const ud_op *op) { return runtime().kernels.supports(op); }

ud_status launch(ud_backend *b, const ud_op *op) {
  UD_ACL_ACTIVATE(b);
  AscendBackend &s = *self(b);
  // Workspace growth allocates, which a capture must not do: only grow outside captures.
  s.kernels.reserve_workspace = s.capturing ? nullptr : reserve_workspace;
  s.kernels.launch_index = s.launches_since_sync++;  // counted even if the launch fails, as the executor's labels are
  const int32_t status = runtime().kernels.launch(op, &s.kernels);
  if (status != UD_OK) return fail(b, static_cast<ud_status>(status), s.kernels.error);
  return UD_OK;
}

ud_status synchronize(ud_backend *b) {
  UD_ACL_ACTIVATE(b);
  AscendBackend &s = *self(b);
  s.launches_since_sync = 0;
  if (s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend: synchronize during graph capture");
  // What naming the failing launch costs: no more copying than finding an error at all. The error area
  // stays one area of kMaxBlocks 32-byte slots (1.5 KiB) whatever the number of launches since the last
  // synchronize, copied down with the stream's last work (one wait covers both) and scanned on the host
  // (48 slots, the lowest launch number wins); each launch passes its number as one more scalar kernel
  // argument, and only a block that reports an error reads its slot back first (32 bytes).
  aclError err = acl().aclrtMemcpyAsync(s.host_errors, kErrorAreaBytes, s.error_slots, kErrorAreaBytes, ACL_MEMCPY_DEVICE_TO_HOST, s.stream);
  if (err == ACL_SUCCESS) err = acl().aclrtSynchronizeStream(s.stream);
  if (err != ACL_SUCCESS) return fail_acl(b, err, "a kernel or copy (aclrtSynchronizeStream)");
  char message[512] = {0};
  const int32_t launch = runtime().kernels.device_error(s.host_errors, message, sizeof message);
  if (!message[0]) return UD_OK;
  std::memset(s.host_errors, 0, kErrorAreaBytes);
  err = acl().aclrtMemsetAsync(s.error_slots, kErrorAreaBytes, 0, kErrorAreaBytes, s.stream);
  if (err == ACL_SUCCESS) err = acl().aclrtSynchronizeStream(s.stream);
  if (err != ACL_SUCCESS) return fail_acl(b, err, "clearing the device error slots");
  if (launch < 0) return fail(b, UD_ERR_INVALID_ARGUMENT, message);
  return fail(b, UD_ERR_INVALID_ARGUMENT, "launch #" + std::to_string(launch) + ": " + message);
}

ud_status graph_begin(ud_backend *b) {
  UD_ACL_ACTIVATE(b);
  AscendBackend &s = *self(b);
  if (!acl().graphs()) return fail(b, UD_ERR_UNSUPPORTED, "ascend: this runtime has no aclmdlRICapture");
  if (s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend: graph_begin while already capturing");
  const aclError err = acl().aclmdlRICaptureBegin(s.stream, ACL_MODEL_RI_CAPTURE_MODE_THREAD_LOCAL);
  if (err != ACL_SUCCESS) return fail_acl(b, err, "aclmdlRICaptureBegin");
  s.capturing = true;
  s.launches_since_sync = 0;  // captured launches are numbered from 0, as in every replay
  return UD_OK;
}

ud_status graph_end(ud_backend *b, ud_graph **out) {
  UD_ACL_ACTIVATE(b);
  AscendBackend &s = *self(b);
  *out = nullptr;
  if (!s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend: graph_end without graph_begin");
  s.capturing = false;
  const int32_t launches = s.launches_since_sync;
  aclmdlRI model = nullptr;
  const aclError err = acl().aclmdlRICaptureEnd(s.stream, &model);  // always leaves capture mode
  if (err != ACL_SUCCESS || !model) {
    if (model) (void)acl().aclmdlRIDestroy(model);
    return fail_acl(b, err, "aclmdlRICaptureEnd");
  }
  auto *graph = new (std::nothrow) AscendGraph{model, launches};
  if (!graph) {
    (void)acl().aclmdlRIDestroy(model);
    return fail(b, UD_ERR_OUT_OF_MEMORY, "ascend: out of host memory for a graph");
  }
  *out = reinterpret_cast<ud_graph *>(graph);
  return UD_OK;
}

ud_status graph_launch(ud_backend *b, ud_graph *g) {
  UD_ACL_ACTIVATE(b);
  AscendBackend &s = *self(b);
  const auto *graph = reinterpret_cast<const AscendGraph *>(g);
  const aclError err = acl().aclmdlRIExecuteAsync(graph->model, s.stream);
  if (err != ACL_SUCCESS) return fail_acl(b, err, "aclmdlRIExecuteAsync");
  s.launches_since_sync += graph->launches;
  return UD_OK;
}

void graph_destroy(ud_backend *b, ud_graph *g) {
  if (!g) return;
  auto *graph = reinterpret_cast<AscendGraph *>(g);
  if (activate(b) == UD_OK) (void)acl().aclmdlRIDestroy(graph->model);
  delete graph;
}

const char *last_error(ud_backend *b) { return self(b)->error.c_str(); }

void release(AscendBackend *s) {
  if (s->stream) (void)acl().aclrtSynchronizeStream(s->stream);
  if (s->kernels.workspace) (void)acl().aclrtFree(s->kernels.workspace);
  if (s->error_slots) (void)acl().aclrtFree(s->error_slots);
  if (s->host_errors) (void)acl().aclrtFreeHost(s->host_errors);
  if (s->stream) (void)acl().aclrtDestroyStream(s->stream);
  delete s;
}

void destroy(ud_backend *b) {
  (void)activate(b);
  release(self(b));
}

// Workspace growth (outside captures): a new, larger block; the old one is freed after the stream drains.
int32_t reserve_workspace(void *owner, size_t bytes, void **workspace, size_t *workspace_bytes) {
  auto *s = static_cast<AscendBackend *>(owner);
  if (bytes <= *workspace_bytes) return UD_OK;
  const size_t grown = bytes > 2 * *workspace_bytes ? bytes : 2 * *workspace_bytes;
  void *ptr = nullptr;
  if (acl().aclrtMalloc(&ptr, grown, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) return UD_ERR_OUT_OF_MEMORY;
  if (*workspace) {
    (void)acl().aclrtSynchronizeStream(s->stream);
    (void)acl().aclrtFree(*workspace);
  }
  *workspace = ptr;
  *workspace_bytes = grown;
  return UD_OK;
}

// Vector / cube core counts by SoC (blockDim limits; 910B3/B4 have fewer cores than B1/B2).
void core_counts(const std::string &soc, uint32_t &aiv, uint32_t &aic) {
  aiv = 40;
  aic = 20;
  if (soc.find("910B1") != std::string::npos || soc.find("910B2") != std::string::npos) {
    aiv = 48;
    aic = 24;
  }
}

const ud_backend_iface kAscendIface = {
    "ascend", get_info, alloc, free_memory, upload, download, memset_zero, host_alloc, host_free, supports, launch, synchronize,
    graph_begin, graph_end, graph_launch, graph_destroy, last_error, destroy,
};

void set_error(char *error, size_t error_len, const std::string &message) {
  if (error && error_len) std::snprintf(error, error_len, "%s", message.c_str());
}

}  // namespace
}  // namespace updraft::ascend

extern "C" ud_status ud_ascend_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error, size_t error_len) {
  using namespace updraft::ascend;
  std::string why;
  if (!load_runtime(why)) {
    set_error(error, error_len, why);
    return UD_ERR_UNAVAILABLE;
  }
  Acl &a = acl();
  uint32_t count = 0;
  aclError err = a.aclrtGetDeviceCount(&count);
  if (err != ACL_SUCCESS || count == 0) {
    set_error(error, error_len, err != ACL_SUCCESS ? "no Ascend NPU: aclrtGetDeviceCount failed with error " + std::to_string(err)
                                                   : std::string("no Ascend NPU: the runtime reports none"));
    return UD_ERR_UNAVAILABLE;
  }
  const int32_t index = opts ? opts->device_index : 0;
  if (index < 0 || static_cast<uint32_t>(index) >= count) {
    set_error(error, error_len, "ascend: device_index " + std::to_string(index) + " is outside the " + std::to_string(count) + " NPU(s) present");
    return UD_ERR_INVALID_ARGUMENT;
  }
  auto *s = new (std::nothrow) AscendBackend();
  if (!s) {
    set_error(error, error_len, "ascend: out of host memory");
    return UD_ERR_OUT_OF_MEMORY;
  }
  s->device = index;
  const auto give_up = [&](ud_status status, const std::string &what, aclError e) {
    set_error(error, error_len, "ascend: " + what + " failed with ACL error " + std::to_string(e));
    release(s);
    return status;
  };
  if ((err = a.aclrtSetDevice(index)) != ACL_SUCCESS) return give_up(UD_ERR_UNAVAILABLE, "aclrtSetDevice(" + std::to_string(index) + ")", err);
  const std::string soc = a.aclrtGetSocName ? (a.aclrtGetSocName() ? a.aclrtGetSocName() : "") : "";
  s->name = "Huawei " + (soc.empty() ? std::string("Ascend NPU") : soc) + " #" + std::to_string(index);
  if ((err = a.aclrtCreateStream(&s->stream)) != ACL_SUCCESS) return give_up(UD_ERR_DEVICE, "aclrtCreateStream", err);
  if ((err = a.aclrtMalloc(&s->error_slots, kErrorAreaBytes, ACL_MEM_MALLOC_HUGE_FIRST)) != ACL_SUCCESS)
    return give_up(UD_ERR_OUT_OF_MEMORY, "allocating the device error slots", err);
  void *host = nullptr;
  if ((err = a.aclrtMallocHost(&host, kErrorAreaBytes)) != ACL_SUCCESS) return give_up(UD_ERR_OUT_OF_MEMORY, "aclrtMallocHost", err);
  s->host_errors = static_cast<int32_t *>(host);
  std::memset(s->host_errors, 0, kErrorAreaBytes);
  if ((err = a.aclrtMemsetAsync(s->error_slots, kErrorAreaBytes, 0, kErrorAreaBytes, s->stream)) != ACL_SUCCESS ||
      (err = a.aclrtSynchronizeStream(s->stream)) != ACL_SUCCESS)
    return give_up(UD_ERR_DEVICE, "clearing the device error slots", err);
  updraft_ascendc_context &k = s->kernels;
  k.stream = s->stream;
  core_counts(soc, k.aiv_cores, k.aic_cores);
  k.error_slots = s->error_slots;
  if ((err = a.aclrtMalloc(&k.workspace, kInitialWorkspace, ACL_MEM_MALLOC_HUGE_FIRST)) != ACL_SUCCESS)
    return give_up(UD_ERR_OUT_OF_MEMORY, "allocating the kernel workspace", err);
  k.workspace_bytes = kInitialWorkspace;
  k.reserve_workspace = reserve_workspace;
  k.owner = s;
  out->iface = &kAscendIface;
  out->ctx = reinterpret_cast<ud_backend *>(s);
  return UD_OK;
}
