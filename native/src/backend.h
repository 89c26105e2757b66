// backend.h — an owning C++ handle on one backend instance (the C vtable + context).
//
// Turns failed ud_status returns into updraft::Error with the backend's last_error, fills in the
// ABI's stated defaults for OPTIONAL entries, and owns the mutex that serialises every use of the
// instance (device_abi.h: "a backend instance is used by one thread at a time"). Callers lock
// `mutex()` around a sequence of calls; the methods themselves do not lock.
#ifndef UPDRAFT_NATIVE_BACKEND_H
#define UPDRAFT_NATIVE_BACKEND_H

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "updraft/device_abi.h"

namespace updraft {

class Backend {
 public:
  // Opens a compiled-in backend by name; throws Error (UD_ERR_UNAVAILABLE, ...) with the reason.
  static std::shared_ptr<Backend> open(const std::string &name, const ud_backend_options &options);
  ~Backend();
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;

  const char *name() const { return handle_.iface->name; }
  std::mutex &mutex() { return mutex_; }
  // The C handle, for the communicator bound to this instance (communicator.h), which calls it from
  // the thread that holds mutex() for the step.
  const ud_backend_handle &handle() const { return handle_; }

  ud_device_info info();
  void *alloc(size_t bytes);  // never null, even for 0 bytes (a null data pointer means "absent")
  void free(void *ptr);
  void upload(void *device_dst, const void *host_src, size_t bytes);
  void download(void *host_dst, const void *device_src, size_t bytes);
  void memset_zero(void *device_dst, size_t bytes);
  void *host_alloc(size_t bytes);
  void host_free(void *ptr);
  bool supports(const ud_op &op);
  // `what` prefixes the error message, e.g. "op 3 (matmul)".
  void launch(const ud_op &op, const std::string &what);
  // Waits for every enqueued copy and op. A backend that finds an operand error only on the device
  // (CUDA: a slot or block id read from device memory) reports it here as "launch #N: <message>",
  // N counting the launches since the last synchronize or graph_begin; the error then names that
  // launch's `what` instead of the bare backend, e.g. "op 1 (attention): attention: ...".
  void synchronize();

  // The OPTIONAL graph entries (device_abi.h): has_graphs() when all four exist and get_info says
  // supports_graphs. `labels` of graph_launch are the `what`s of the launches the graph replays, in
  // order, for errors that synchronize reports.
  bool has_graphs();
  void graph_begin();
  ud_graph *graph_end();
  void graph_launch(ud_graph *graph, const std::vector<std::string> &labels);
  void graph_destroy(ud_graph *graph);

 private:
  explicit Backend(ud_backend_handle handle) : handle_(handle) {}
  [[noreturn]] void fail(ud_status status, const std::string &what);

  ud_backend_handle handle_;
  std::mutex mutex_;
  std::vector<std::string> launch_labels_;  // `what` of each launch since the last synchronize
};

// Host memory from the backend's host_alloc (pinned on GPUs), freed on destruction. Call only while
// holding the backend's mutex, like every other backend call.
class HostStaging {
 public:
  HostStaging(Backend &backend, size_t bytes) : backend_(backend), ptr_(backend.host_alloc(bytes)), bytes_(bytes) {}
  ~HostStaging() { backend_.host_free(ptr_); }
  HostStaging(const HostStaging &) = delete;
  HostStaging &operator=(const HostStaging &) = delete;
  void *data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  Backend &backend_;
  void *ptr_;
  size_t bytes_;
};

}  // namespace updraft

#endif
