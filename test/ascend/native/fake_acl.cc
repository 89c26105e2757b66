// fake_acl.cc — a stand-in libascendcl.so for testing the `ascend` backend's host code where there is
// no NPU and no CANN: the ACL entry points the backend loads, over host memory. Written from the public
// ACL reference; nothing of CANN is used. FAKE_ACL_DEVICES=<n> sets the device count (default 1; 0 = "no
// NPU"). FAKE_ACL_REPORT=<file> writes what the streams did (tasks run eagerly, captured, replayed) as JSON
// at exit, so a test can tell a replayed graph from eager launches. FAKE_ACL_CAPTURE_FAILS=1 makes every
// capture come out invalidated, to test the fallback to eager steps.
//
// Streams are in-order queues that run each task when it is queued (device memory is malloc'd, so a copy
// is a memcpy). Kernels arrive as tasks from the shim-built kernel library (kernels/ascendc/sim_stream_task.h).
// Graph capture follows the documented ACL Graph semantics: between aclmdlRICaptureBegin and
// aclmdlRICaptureEnd the tasks queued on the stream are recorded, not run; aclmdlRIExecuteAsync runs them
// again in order, with the same pointers and arguments. Calls the documentation calls unsafe during a
// capture (synchronous copies and memsets, async copies from host memory that is not pinned) invalidate
// it, and so do aclrtMalloc / aclrtFree (stricter than documented, as CUDA is: a backend that passes here
// does not depend on it). Built a second time with FAKE_ACL_WITHOUT_GRAPHS, without the aclmdlRI* entries,
// as an older runtime is: the backend must then report no graph support.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../../kernels/ascendc/sim_stream_task.h"

namespace {

using aclError = int;
constexpr aclError kOk = 0;
constexpr aclError kInvalidParam = 100000;        // ACL_ERROR_INVALID_PARAM
constexpr aclError kNoDevice = 107002;            // the fake's "no device set on this thread"
constexpr aclError kBadAllocation = 207001;       // out of memory
constexpr aclError kStreamCapturing = 107040;     // the fake's "not allowed while the stream is captured"
constexpr aclError kCaptureInvalidated = 107041;  // the fake's "an unsafe call invalidated the capture"
constexpr aclError kKernelFailed = 507015;        // an AI Core exception, as the runtime reports a failed kernel
constexpr int kCaptureModeGlobal = 0;             // aclmdlRICaptureMode: GLOBAL 0, THREAD_LOCAL 1, RELAXED 2
constexpr int kCaptureModeRelaxed = 2;
constexpr int kMemcpyHostToDevice = 1;            // aclrtMemcpyKind
constexpr int kMemcpyDeviceToHost = 2;

thread_local std::string recent_error;
aclError failure(aclError code, std::string message) {
  recent_error = std::move(message);
  return code;
}

// One stream task: a copy, a memset or a kernel (owned; released when the stream or model drops it).
struct Task {
  enum Kind { kCopy, kSet, kKernel } kind;
  void *dst = nullptr;
  const void *src = nullptr;
  size_t count = 0;
  int32_t value = 0;
  UpdraftSimStreamTask *kernel = nullptr;
};

struct Stream {
  bool capturing = false;
  int mode = kCaptureModeGlobal;
  std::thread::id capture_thread;
  std::vector<Task> captured;
  std::string invalidated;  // why the capture cannot be used, "" while it can
};

struct Model {
  std::vector<Task> tasks;
};

struct Stats {
  long eager_tasks = 0;
  long eager_kernels = 0;
  long captured_tasks = 0;
  long captured_kernels = 0;
  long replays = 0;
  long replayed_kernels = 0;
  long invalidated_captures = 0;
};

struct State {
  std::mutex mutex;
  std::map<const void *, size_t> pinned;  // aclrtMallocHost blocks: base -> size
  std::vector<Stream *> streams;
  Stats stats;
  ~State() {
    const char *path = std::getenv("FAKE_ACL_REPORT");
    if (!path || !*path) return;
    if (FILE *f = std::fopen(path, "w")) {
      std::fprintf(f,
                   "{\"eagerTasks\":%ld,\"eagerKernels\":%ld,\"capturedTasks\":%ld,\"capturedKernels\":%ld,\"replays\":%ld,"
                   "\"replayedKernels\":%ld,\"invalidatedCaptures\":%ld}\n",
                   stats.eager_tasks, stats.eager_kernels, stats.captured_tasks, stats.captured_kernels, stats.replays,
                   stats.replayed_kernels, stats.invalidated_captures);
      std::fclose(f);
    }
  }
};
State &state() {
  static State s;
  return s;
}

void release(Task &task) {
  if (task.kind == Task::kKernel && task.kernel) task.kernel->release(task.kernel);
  task.kernel = nullptr;
}

aclError run(Task &task) {
  switch (task.kind) {
    case Task::kCopy: std::memcpy(task.dst, task.src, task.count); return kOk;
    case Task::kSet: std::memset(task.dst, task.value, task.count); return kOk;
    case Task::kKernel: {
      char error[512] = {0};
      if (task.kernel->run(task.kernel, error, sizeof error) != 0) return failure(kKernelFailed, error);
      return kOk;
    }
  }
  return kInvalidParam;
}

// An unsafe call made while streams are captured invalidates the captures it reaches: every capture in
// GLOBAL mode, the calling thread's in THREAD_LOCAL mode, none in RELAXED mode.
void note_unsafe_call(const char *what) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (Stream *stream : s.streams) {
    if (!stream->capturing || !stream->invalidated.empty() || stream->mode == kCaptureModeRelaxed) continue;
    if (stream->mode != kCaptureModeGlobal && stream->capture_thread != std::this_thread::get_id()) continue;
    stream->invalidated = std::string(what) + " during a capture";
  }
}

bool is_pinned(const void *ptr, size_t count) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.pinned.upper_bound(ptr);
  if (it == s.pinned.begin()) return false;
  --it;
  const auto *base = static_cast<const uint8_t *>(it->first);
  const auto *p = static_cast<const uint8_t *>(ptr);
  return p >= base && p + count <= base + it->second;
}

// Queues a task: recorded while the stream is captured, else run now. Takes ownership of the task.
aclError enqueue(void *stream_handle, Task task) {
  auto *stream = static_cast<Stream *>(stream_handle);
  if (!stream) {
    release(task);
    return failure(kInvalidParam, "fake ACL: no stream");
  }
  State &s = state();
  if (stream->capturing) {
    stream->captured.push_back(task);
    s.stats.captured_tasks++;
    if (task.kind == Task::kKernel) s.stats.captured_kernels++;
    return kOk;
  }
  s.stats.eager_tasks++;
  if (task.kind == Task::kKernel) s.stats.eager_kernels++;
  const aclError err = run(task);
  release(task);
  return err;
}

void release_all(std::vector<Task> &tasks) {
  for (Task &task : tasks) release(task);
  tasks.clear();
}

}  // namespace

extern "C" {

aclError aclInit(const char *) { return kOk; }
aclError aclFinalize() { return kOk; }
const char *aclGetRecentErrMsg() { return recent_error.empty() ? "fake ACL runtime" : recent_error.c_str(); }
const char *aclrtGetSocName() { return "Ascend910B3 (fake runtime)"; }

static thread_local int32_t current_device = -1;

aclError aclrtGetDeviceCount(uint32_t *count) {
  const char *env = std::getenv("FAKE_ACL_DEVICES");
  *count = env ? static_cast<uint32_t>(std::atoi(env)) : 1u;
  return kOk;
}
aclError aclrtSetDevice(int32_t device) {
  current_device = device;
  return kOk;
}
aclError aclrtGetDevice(int32_t *device) {
  *device = current_device;
  return current_device >= 0 ? kOk : kNoDevice;
}
aclError aclrtCreateStream(void **stream) {
  auto *created = new Stream();
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.streams.push_back(created);
  *stream = created;
  return kOk;
}
aclError aclrtDestroyStream(void *stream_handle) {
  auto *stream = static_cast<Stream *>(stream_handle);
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (auto it = s.streams.begin(); it != s.streams.end(); ++it)
      if (*it == stream) {
        s.streams.erase(it);
        break;
      }
  }
  if (stream) release_all(stream->captured);
  delete stream;
  return kOk;
}
aclError aclrtSynchronizeStream(void *stream_handle) {
  auto *stream = static_cast<Stream *>(stream_handle);
  if (stream && stream->capturing) {
    if (stream->invalidated.empty()) stream->invalidated = "aclrtSynchronizeStream during a capture";
    return failure(kStreamCapturing, "fake ACL: aclrtSynchronizeStream on a stream being captured");
  }
  return kOk;  // every task ran when it was queued
}
aclError aclrtMalloc(void **ptr, size_t size, int) {
  note_unsafe_call("aclrtMalloc");
  *ptr = std::aligned_alloc(512, (size + 511) / 512 * 512);
  return *ptr ? kOk : failure(kBadAllocation, "fake ACL: out of memory");
}
aclError aclrtFree(void *ptr) {
  note_unsafe_call("aclrtFree");
  std::free(ptr);
  return kOk;
}
aclError aclrtMallocHost(void **ptr, size_t size) {
  *ptr = std::malloc(size);
  if (!*ptr) return failure(kBadAllocation, "fake ACL: out of host memory");
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.pinned[*ptr] = size;
  return kOk;
}
aclError aclrtFreeHost(void *ptr) {
  {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.pinned.erase(ptr);
  }
  std::free(ptr);
  return kOk;
}
aclError aclrtMemcpyAsync(void *dst, size_t dst_max, const void *src, size_t count, int kind, void *stream) {
  if (count > dst_max) return failure(kInvalidParam, "fake ACL: aclrtMemcpyAsync count exceeds the destination");
  // An async copy from or to pageable host memory is synchronous, so unsafe in a capture.
  if ((kind == kMemcpyHostToDevice && !is_pinned(src, count)) || (kind == kMemcpyDeviceToHost && !is_pinned(dst, count)))
    note_unsafe_call("aclrtMemcpyAsync with pageable host memory");
  Task task{Task::kCopy};
  task.dst = dst;
  task.src = src;
  task.count = count;
  return enqueue(stream, task);
}
aclError aclrtMemsetAsync(void *dst, size_t dst_max, int32_t value, size_t count, void *stream) {
  if (count > dst_max) return failure(kInvalidParam, "fake ACL: aclrtMemsetAsync count exceeds the destination");
  Task task{Task::kSet};
  task.dst = dst;
  task.value = value;
  task.count = count;
  return enqueue(stream, task);
}
aclError aclrtGetMemInfo(int, size_t *free_bytes, size_t *total_bytes) {
  *free_bytes = size_t(8) << 30;
  *total_bytes = size_t(64) << 30;
  return kOk;
}

// Not ACL: the shim-built kernel library queues its kernels here (kernels/ascendc/sim_stream_task.h).
__attribute__((visibility("default"))) int updraftFakeAclLaunchTask(void *stream, UpdraftSimStreamTask *kernel, char *error, size_t error_len) {
  Task task{Task::kKernel};
  task.kernel = kernel;
  const aclError err = enqueue(stream, task);
  if (err != kOk && error && error_len) std::snprintf(error, error_len, "%s", recent_error.c_str());
  return err;
}

#ifndef FAKE_ACL_WITHOUT_GRAPHS
aclError aclmdlRICaptureBegin(void *stream_handle, int mode) {
  auto *stream = static_cast<Stream *>(stream_handle);
  if (!stream) return failure(kInvalidParam, "fake ACL: aclmdlRICaptureBegin without a stream");
  if (stream->capturing) return failure(kStreamCapturing, "fake ACL: aclmdlRICaptureBegin on a stream already captured");
  stream->capturing = true;
  stream->mode = mode;
  stream->capture_thread = std::this_thread::get_id();
  stream->invalidated.clear();
  return kOk;
}
// Always ends the capture; a model only when nothing invalidated it.
aclError aclmdlRICaptureEnd(void *stream_handle, void **model_out) {
  auto *stream = static_cast<Stream *>(stream_handle);
  *model_out = nullptr;
  if (!stream || !stream->capturing) return failure(kInvalidParam, "fake ACL: aclmdlRICaptureEnd on a stream not being captured");
  stream->capturing = false;
  if (stream->invalidated.empty() && std::getenv("FAKE_ACL_CAPTURE_FAILS")) stream->invalidated = "FAKE_ACL_CAPTURE_FAILS";
  if (!stream->invalidated.empty()) {
    state().stats.invalidated_captures++;
    release_all(stream->captured);
    return failure(kCaptureInvalidated, "fake ACL: capture invalidated by " + stream->invalidated);
  }
  auto *model = new Model();
  model->tasks.swap(stream->captured);
  *model_out = model;
  return kOk;
}
aclError aclmdlRIExecuteAsync(void *model_handle, void *stream_handle) {
  auto *model = static_cast<Model *>(model_handle);
  auto *stream = static_cast<Stream *>(stream_handle);
  if (!model || !stream) return failure(kInvalidParam, "fake ACL: aclmdlRIExecuteAsync without a model or stream");
  if (stream->capturing) return failure(kStreamCapturing, "fake ACL: aclmdlRIExecuteAsync on a stream being captured");
  State &s = state();
  s.stats.replays++;
  for (Task &task : model->tasks) {
    if (task.kind == Task::kKernel) s.stats.replayed_kernels++;
    const aclError err = run(task);
    if (err != kOk) return err;
  }
  return kOk;
}
aclError aclmdlRIDestroy(void *model_handle) {
  auto *model = static_cast<Model *>(model_handle);
  if (model) release_all(model->tasks);
  delete model;
  return kOk;
}
#endif

}  // extern "C"
