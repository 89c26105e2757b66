// library.cpp — the C interface of the AscendC kernel library (library.h), over launch_op / supports_op.
// Built into libupdraft_ascendc_kernels.so with bisheng on a CANN machine. The ascend-sim build compiles it
// too, into a shim-backed libupdraft_ascendc_kernels.so that test/ascend loads through the `ascend` backend
// over a stand-in ACL runtime, so the backend's host code is exercised where there is no NPU.
#include "library.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "host_common.h"

#if defined(UPDRAFT_ASCEND_SIM)
#include <dlfcn.h>

#include <functional>
#include <mutex>

#include "kernel_operator.h"
#include "sim_stream_task.h"

namespace {
// A sim build of this library (the `ascend` backend tested over a stand-in ACL runtime) runs kernels
// through its own shim device; the stand-in runtime's memory is not registered with it, so global-memory
// views are checked against their own extents only.
AscendC::shim::Device &standalone_device() {
  static AscendC::shim::Device device([] {
    AscendC::shim::Device::Options o;
    o.check_gm_allocations = false;
    return o;
  }());
  return device;
}

// One shim device for every backend instance of the process, and a launch's state lives in it: launches
// from several threads (the ranks of a device group run their steps concurrently) take turns.
bool run_on_shim(const char *kernel, uint32_t blocks, const std::function<void()> &body, std::string &error) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  try {
    return standalone_device().launch(kernel, blocks, body, error);
  } catch (const std::exception &e) {
    error = e.what();
    return false;
  }
}

// One kernel launch as a task of the stand-in runtime's stream (sim_stream_task.h): the body holds the
// kernel's arguments by value (UD_ASCENDC_LAUNCH), so it can run again when a captured graph replays.
struct KernelTask : UpdraftSimStreamTask {
  const char *kernel = nullptr;
  uint32_t blocks = 0;
  std::function<void()> body;
};
int run_kernel_task(UpdraftSimStreamTask *base, char *error, size_t error_len) {
  auto *task = static_cast<KernelTask *>(base);
  std::string why;
  if (run_on_shim(task->kernel, task->blocks, task->body, why)) return 0;
  if (error && error_len) std::snprintf(error, error_len, "%s", why.c_str());
  return 1;
}
void release_kernel_task(UpdraftSimStreamTask *base) { delete static_cast<KernelTask *>(base); }

// The stand-in runtime's task entry, when the loaded libascendcl.so is one (a real runtime has none).
UpdraftSimStreamLaunchFn stream_launcher() {
  static const UpdraftSimStreamLaunchFn launcher = [] {
    void *acl = dlopen("libascendcl.so", RTLD_NOW | RTLD_NOLOAD);
    return acl ? reinterpret_cast<UpdraftSimStreamLaunchFn>(dlsym(acl, UPDRAFT_SIM_STREAM_LAUNCH_SYMBOL)) : nullptr;
  }();
  return launcher;
}

updraft::ascendc::LaunchContext::SimRun standalone_runner() {
  return [](updraft::ascendc::LaunchContext &ctx, const char *kernel, uint32_t blocks, const std::function<void()> &body) {
    const UpdraftSimStreamLaunchFn launch = stream_launcher();
    if (!launch) {
      std::string error;
      if (!run_on_shim(kernel, blocks, body, error)) return ctx.fail(UD_ERR_DEVICE, "ascend (sim kernels): " + error);
      return UD_OK;
    }
    auto *task = new KernelTask();
    task->run = run_kernel_task;
    task->release = release_kernel_task;
    task->kernel = kernel;
    task->blocks = blocks;
    task->body = body;
    char error[512] = {0};
    if (launch(ctx.stream, task, error, sizeof error) != 0) return ctx.fail(UD_ERR_DEVICE, std::string("ascend (sim kernels): ") + error);
    return UD_OK;
  };
}
}  // namespace
#endif

// Exported from the shared library even where the build hides symbols by default.
#define UD_ASCENDC_EXPORT extern "C" __attribute__((visibility("default")))

UD_ASCENDC_EXPORT int32_t updraft_ascendc_abi_version(void) { return UPDRAFT_ASCENDC_ABI_VERSION; }

UD_ASCENDC_EXPORT int32_t updraft_ascendc_launch(const ud_op *op, updraft_ascendc_context *c) {
  using updraft::ascendc::LaunchContext;
  try {
    LaunchContext ctx;
    ctx.stream = c->stream;
    ctx.aiv_cores = c->aiv_cores;
    ctx.aic_cores = c->aic_cores;
    ctx.error_slots = c->error_slots;
    ctx.launch_index = c->launch_index;
    ctx.workspace = c->workspace;
    ctx.workspace_bytes = c->workspace_bytes;
    if (c->reserve_workspace) {
      ctx.reserve_workspace = [c](LaunchContext &l, size_t bytes) {
        const int32_t status = c->reserve_workspace(c->owner, bytes, &c->workspace, &c->workspace_bytes);
        if (status != UD_OK) return l.fail(static_cast<ud_status>(status), "ascend: cannot grow the kernel workspace to " + std::to_string(bytes) + " bytes");
        l.workspace = c->workspace;
        l.workspace_bytes = c->workspace_bytes;
        return UD_OK;
      };
    }
#if defined(UPDRAFT_ASCEND_SIM)
    ctx.sim_run = standalone_runner();
#endif
    const ud_status status = updraft::ascendc::launch_op(*op, ctx);
    if (status != UD_OK) std::snprintf(c->error, sizeof c->error, "%s", ctx.error.c_str());
    return status;
  } catch (const std::bad_alloc &) {
    std::snprintf(c->error, sizeof c->error, "ascend: out of host memory launching an op");
    return UD_ERR_OUT_OF_MEMORY;
  } catch (const std::exception &e) {
    std::snprintf(c->error, sizeof c->error, "ascend: %s", e.what());
    return UD_ERR_DEVICE;
  }
}

UD_ASCENDC_EXPORT int32_t updraft_ascendc_supports(const ud_op *op) { return updraft::ascendc::supports_op(*op); }

UD_ASCENDC_EXPORT int32_t updraft_ascendc_device_error(const int32_t *slots, char *out, size_t out_len) {
  int32_t launch = -1;
  const std::string message = updraft::ascendc::first_device_error(slots, &launch);
  if (out && out_len) std::snprintf(out, out_len, "%s", message.c_str());
  return launch;
}
