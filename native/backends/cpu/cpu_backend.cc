// cpu_backend.cc — the CPU backend: host memory as "device" memory, memcpy copies, the reference
// kernels in kernels/cpu run synchronously on a thread pool owned by this instance.
//
// Every entry is synchronous, so synchronize has nothing to wait for and graph capture is not
// offered (the OPTIONAL graph entries are NULL).
#include "cpu_backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <unistd.h>

#include "../../../kernels/cpu/cpu_kernels.h"

namespace updraft::cpu {
namespace {

constexpr size_t kAlignment = 256;

struct CpuBackend {
  explicit CpuBackend(int num_threads) : pool(num_threads), kernels{pool, {}} {}
  ThreadPool pool;
  KernelContext kernels;  // holds the last error message
  uint64_t allocated_bytes = 0;
};

CpuBackend *self(ud_backend *b) { return reinterpret_cast<CpuBackend *>(b); }

ud_status fail(ud_backend *b, ud_status status, std::string message) {
  return self(b)->kernels.fail(status, std::move(message));
}

// MemAvailable from /proc/meminfo (what the kernel could hand out now), else free physical pages.
uint64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
}

ud_status get_info(ud_backend *b, ud_device_info *out) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->name, sizeof out->name, "CPU (%d threads)", self(b)->pool.num_threads());
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  out->total_memory = pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
  out->free_memory = available_memory();
  out->preferred_dtype = UD_F32;
  out->default_block_size = 16;
  out->supports_graphs = 0;
  return UD_OK;
}

ud_status alloc(ud_backend *b, size_t bytes, void **out) {
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void *ptr = std::aligned_alloc(kAlignment, rounded > 0 ? rounded : kAlignment);
  if (!ptr) return fail(b, UD_ERR_OUT_OF_MEMORY, "cpu: cannot allocate " + std::to_string(bytes) + " bytes");
  *out = ptr;
  return UD_OK;
}

void free_memory(ud_backend *, void *ptr) { std::free(ptr); }

ud_status copy(ud_backend *, void *dst, const void *src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return UD_OK;
}

ud_status memset_zero(ud_backend *, void *dst, size_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
  return UD_OK;
}

int32_t supports(ud_backend *, const ud_op *op) { return supports_op(*op); }

ud_status launch(ud_backend *b, const ud_op *op) {
  try {
    return launch_op(*op, self(b)->kernels);
  } catch (const std::bad_alloc &) {
    return fail(b, UD_ERR_OUT_OF_MEMORY, std::string("cpu: out of memory in ") + ud_op_name(static_cast<ud_op_kind>(op->kind)));
  } catch (const std::exception &e) {
    return fail(b, UD_ERR_DEVICE, std::string("cpu: ") + e.what());
  }
}

ud_status synchronize(ud_backend *) { return UD_OK; }

const char *last_error(ud_backend *b) { return self(b)->kernels.error.c_str(); }

void destroy(ud_backend *b) { delete self(b); }

const ud_backend_iface kCpuIface = {
    "cpu",
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
    nullptr,  // graph_begin
    nullptr,  // graph_end
    nullptr,  // graph_launch
    nullptr,  // graph_destroy
    last_error,
    destroy,
};

}  // namespace
}  // namespace updraft::cpu

extern "C" ud_status ud_cpu_backend_open(const ud_backend_options *opts, ud_backend_handle *out, char *error,
                                         size_t error_len) {
  const int num_threads = opts ? opts->num_threads : 0;
  if (num_threads < 0 || num_threads > 1024) {
    if (error && error_len) std::snprintf(error, error_len, "cpu: num_threads must be in [0, 1024], got %d", num_threads);
    return UD_ERR_INVALID_ARGUMENT;
  }
  try {
    auto *backend = new updraft::cpu::CpuBackend(num_threads);
    out->iface = &updraft::cpu::kCpuIface;
    out->ctx = reinterpret_cast<ud_backend *>(backend);
    return UD_OK;
  } catch (const std::exception &e) {  // thread creation failure, bad_alloc
    if (error && error_len) std::snprintf(error, error_len, "cpu: %s", e.what());
    return UD_ERR_DEVICE;
  }
}
