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
#include <functional>

#include "kernel_operator.h"

namespace {
// A sim build of this library (the `ascend` backend tested over a stand-in ACL runtime) runs kernels
// through its own shim device; the stand-in runtime's memory is not registered with it, so global-memory
// views are checked against their own extents only.
updraft::ascendc::LaunchContext::SimRun standalone_runner() {
  return [](updraft::ascendc::LaunchContext &ctx, const char *kernel, uint32_t blocks, const std::function<void()> &body) {
    static AscendC::shim::Device device([] {
      AscendC::shim::Device::Options o;
      o.check_gm_allocations = false;
      return o;
    }());
    std::string error;
    if (!device.launch(kernel, blocks, body, error)) return ctx.fail(UD_ERR_DEVICE, "ascend (sim kernels): " + error);
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

UD_ASCENDC_EXPORT void updraft_ascendc_device_error(const int32_t *slots, char *out, size_t out_len) {
  const std::string message = updraft::ascendc::first_device_error(slots);
  if (out && out_len) std::snprintf(out, out_len, "%s", message.c_str());
}
