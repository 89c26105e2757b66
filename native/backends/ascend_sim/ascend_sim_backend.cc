// ascend_sim_backend.cc — the `ascend-sim` backend: the AscendC kernels of kernels/ascendc, compiled with
// g++ against the clean-room shim (kernels/ascendc/shim), run on the host. Host memory stands for the
// NPU's global memory; every launch runs each kernel's blocks through the shim, which enforces the chip's
// rules (UB/L1/L0 budgets, alignment, queue discipline, pipe synchronisation, uninitialised reads, GM
// bounds, cross-block write conflicts, block-order independence) and fails the op with the rule's message.
//
// It exists to check the Ascend kernels where no NPU is: speed means nothing here. Launches are
// synchronous; graph capture records the ops and replays them (standing in for ACL graphs, so the
// executor's graph path is exercised too).
//
// Environment (read at open): UPDRAFT_ASCEND_SIM_ORDERS=forward runs each launch once instead of in
// forward, reversed and shuffled block order (faster, fewer checks).
#include "ascend_sim_backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "../../../kernels/ascendc/ascendc_kernels.h"
#include "../../../kernels/ascendc/shim/kernel_operator.h"

namespace updraft::ascend_sim {
namespace {

constexpr size_t kAlignment = 512;
constexpr size_t kErrorAreaBytes = updraft_ascendc::kMaxBlocks * updraft_ascendc::kErrorSlotInts * sizeof(int32_t);

struct SimGraph {
  std::vector<ud_op> ops;
};

struct SimBackend {
  AscendC::shim::Device device;
  ascendc::LaunchContext kernels;  // holds the last error
  void *error_slots = nullptr;
  void *workspace = nullptr;
  size_t workspace_bytes = 0;
  bool capturing = false;
  SimGraph *graph = nullptr;
};

SimBackend *self(ud_backend *b) { return reinterpret_cast<SimBackend *>(b); }

ud_status fail(ud_backend *b, ud_status status, std::string message) { return self(b)->kernels.fail(status, std::move(message)); }

uint64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  uint64_t kib = 0;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  const long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
}

// Device memory: aligned host memory, registered with the shim so kernels' GM views can be checked
// against real allocations.
void *device_alloc(SimBackend &s, size_t bytes) {
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void *ptr = std::aligned_alloc(kAlignment, rounded > 0 ? rounded : kAlignment);
  if (ptr) s.device.add_allocation(ptr, bytes > 0 ? bytes : 1);
  return ptr;
}
void device_free(SimBackend &s, void *ptr) {
  if (!ptr) return;
  s.device.remove_allocation(ptr);
  std::free(ptr);
}

ud_status get_info(ud_backend *, ud_device_info *out) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->name, sizeof out->name, "Ascend 910B (ascend-sim: AscendC kernels on the host through the shim)");
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  out->total_memory = pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
  out->free_memory = available_memory();
  // bf16: the cube unit multiplies bf16 into f32 L0C at full rate, checkpoints ship in bf16, and unlike
  // f16 it cannot overflow on large activations; the vector kernels compute in f32 after a Cast anyway.
  out->preferred_dtype = UD_BF16;
  out->default_block_size = 128;  // vllm-ascend's KV block size; the attention tiling is sized for it
  out->supports_graphs = 1;
  return UD_OK;
}

ud_status alloc(ud_backend *b, size_t bytes, void **out) {
  void *ptr = device_alloc(*self(b), bytes);
  if (!ptr) return fail(b, UD_ERR_OUT_OF_MEMORY, "ascend-sim: cannot allocate " + std::to_string(bytes) + " bytes");
  *out = ptr;
  return UD_OK;
}

void free_memory(ud_backend *b, void *ptr) { device_free(*self(b), ptr); }

ud_status copy(ud_backend *, void *dst, const void *src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return UD_OK;
}

ud_status memset_zero(ud_backend *, void *dst, size_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
  return UD_OK;
}

int32_t supports(ud_backend *, const ud_op *op) { return ascendc::supports_op(*op); }

const char *op_name(int32_t kind) {
  static const char *names[] = {"embedding", "matmul", "rmsnorm", "rope_kv_write", "attention", "silu_mul", "gather_rows", "sample", "fill_random", "select_tokens", "process_logits"};
  return kind >= 0 && kind < static_cast<int32_t>(sizeof names / sizeof names[0]) ? names[kind] : "an op";
}

ud_status run_op(ud_backend *b, const ud_op &op) {
  try {
    return ascendc::launch_op(op, self(b)->kernels);
  } catch (const std::bad_alloc &) {
    return fail(b, UD_ERR_OUT_OF_MEMORY, std::string("ascend-sim: out of memory in ") + op_name(op.kind));
  } catch (const std::exception &e) {
    return fail(b, UD_ERR_DEVICE, std::string("ascend-sim: ") + e.what());
  }
}

ud_status launch(ud_backend *b, const ud_op *op) {
  SimBackend &s = *self(b);
  if (s.capturing) {
    if (!ascendc::supports_op(*op))
      return fail(b, UD_ERR_UNSUPPORTED, std::string("ascend-sim: ") + op_name(op->kind) + " is not supported with these operands");
    s.graph->ops.push_back(*op);
    return UD_OK;
  }
  return run_op(b, *op);
}

ud_status synchronize(ud_backend *b) {
  if (self(b)->capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend-sim: synchronize during graph capture");
  return UD_OK;
}

ud_status graph_begin(ud_backend *b) {
  SimBackend &s = *self(b);
  if (s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend-sim: graph_begin while already capturing");
  s.graph = new (std::nothrow) SimGraph();
  if (!s.graph) return fail(b, UD_ERR_OUT_OF_MEMORY, "ascend-sim: out of memory for a graph");
  s.capturing = true;
  return UD_OK;
}

ud_status graph_end(ud_backend *b, ud_graph **out) {
  SimBackend &s = *self(b);
  *out = nullptr;
  if (!s.capturing) return fail(b, UD_ERR_INVALID_ARGUMENT, "ascend-sim: graph_end without graph_begin");
  s.capturing = false;
  *out = reinterpret_cast<ud_graph *>(s.graph);
  s.graph = nullptr;
  return UD_OK;
}

ud_status graph_launch(ud_backend *b, ud_graph *g) {
  const auto *graph = reinterpret_cast<const SimGraph *>(g);
  for (size_t i = 0; i < graph->ops.size(); i++) {
    const ud_status status = run_op(b, graph->ops[i]);
    if (status != UD_OK) {
      // The executor names a failing replayed op by its launch index (backend.h).
      SimBackend &s = *self(b);
      return fail(b, status, "launch #" + std::to_string(i) + ": " + s.kernels.error);
    }
  }
  return UD_OK;
}

void graph_destroy(ud_backend *, ud_graph *g) { delete reinterpret_cast<SimGraph *>(g); }

const char *last_error(ud_backend *b) { return self(b)->kernels.error.c_str(); }

void destroy(ud_backend *b) {
  SimBackend *s = self(b);
  delete s->graph;
  device_free(*s, s->error_slots);
  device_free(*s, s->workspace);
  delete s;
}

const ud_backend_iface kSimIface = {
    "ascend-sim",
    get_info,
    alloc,
    free_memory,
    copy,  // upload
    copy,  // download
    memset_zero,
    nullptr,  // host_alloc: malloc
    nullptr,  // host_free
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

// Runs one kernel through the shim: clears the error slots, runs every block (in every order the
// device checks), turns a broken rule into UD_ERR_DEVICE and a recorded operand error into
// UD_ERR_INVALID_ARGUMENT.
ud_status sim_run(SimBackend &s, ascendc::LaunchContext &ctx, const char *kernel, uint32_t blocks, const std::function<void()> &body) {
  std::memset(s.error_slots, 0, kErrorAreaBytes);
  std::string error;
  if (!s.device.launch(kernel, blocks, body, error)) return ctx.fail(UD_ERR_DEVICE, "ascend-sim: " + error);
  const std::string device_error = ascendc::first_device_error(static_cast<const int32_t *>(s.error_slots));
  if (!device_error.empty()) return ctx.fail(UD_ERR_INVALID_ARGUMENT, device_error);
  return UD_OK;
}

ud_status reserve_workspace(SimBackend &s, ascendc::LaunchContext &ctx, size_t bytes) {
  if (bytes <= s.workspace_bytes) return UD_OK;
  const size_t grown = std::max(bytes, s.workspace_bytes * 2);
  void *ptr = device_alloc(s, grown);
  if (!ptr) return ctx.fail(UD_ERR_OUT_OF_MEMORY, "ascend-sim: cannot allocate " + std::to_string(grown) + " bytes of workspace");
  device_free(s, s.workspace);
  s.workspace = ptr;
  s.workspace_bytes = grown;
  ctx.workspace = ptr;
  ctx.workspace_bytes = grown;
  return UD_OK;
}

}  // namespace

AscendC::shim::Device *sim_device(ud_backend *b) { return &self(b)->device; }

}  // namespace updraft::ascend_sim

extern "C" ud_status ud_ascend_sim_backend_open(const ud_backend_options *, ud_backend_handle *out, char *error, size_t error_len) {
  using namespace updraft::ascend_sim;
  auto *s = new (std::nothrow) SimBackend();
  if (!s) {
    if (error && error_len) std::snprintf(error, error_len, "ascend-sim: out of memory");
    return UD_ERR_OUT_OF_MEMORY;
  }
  const char *orders = std::getenv("UPDRAFT_ASCEND_SIM_ORDERS");
  if (orders && std::strcmp(orders, "forward") == 0) s->device.set_check_block_orders(false);
  s->error_slots = device_alloc(*s, kErrorAreaBytes);
  if (!s->error_slots) {
    delete s;
    if (error && error_len) std::snprintf(error, error_len, "ascend-sim: out of memory");
    return UD_ERR_OUT_OF_MEMORY;
  }
  std::memset(s->error_slots, 0, kErrorAreaBytes);
  updraft::ascendc::LaunchContext &ctx = s->kernels;
  ctx.aiv_cores = s->device.options().aiv_cores;
  ctx.aic_cores = s->device.options().aic_cores;
  ctx.error_slots = s->error_slots;
  ctx.reserve_workspace = [s](updraft::ascendc::LaunchContext &c, size_t bytes) { return reserve_workspace(*s, c, bytes); };
  ctx.sim_run = [s](updraft::ascendc::LaunchContext &c, const char *kernel, uint32_t blocks, const std::function<void()> &body) {
    return sim_run(*s, c, kernel, blocks, body);
  };
  out->iface = &kSimIface;
  out->ctx = reinterpret_cast<ud_backend *>(s);
  return UD_OK;
}
