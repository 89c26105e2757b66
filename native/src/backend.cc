#include "backend.h"

#include <cstdlib>

#include "errors.h"

namespace updraft {

std::shared_ptr<Backend> Backend::open(const std::string &name, const ud_backend_options &options) {
  ud_backend_handle handle{};
  char error[512] = {0};
  const ud_status status = ud_backend_open(name.c_str(), &options, &handle, error, sizeof error);
  if (status != UD_OK) {
    throw Error("cannot open backend '" + name + "': " + (error[0] ? error : status_name(status)), status);
  }
  return std::shared_ptr<Backend>(new Backend(handle));
}

Backend::~Backend() { handle_.iface->destroy(handle_.ctx); }

void Backend::fail(ud_status status, const std::string &what) {
  const char *detail = handle_.iface->last_error ? handle_.iface->last_error(handle_.ctx) : nullptr;
  std::string message = what + ": ";
  message += detail && detail[0] ? detail : status_name(status);
  throw Error(message, status);
}

ud_device_info Backend::info() {
  ud_device_info info{};
  const ud_status status = handle_.iface->get_info(handle_.ctx, &info);
  if (status != UD_OK) fail(status, std::string(name()) + " get_info");
  return info;
}

void *Backend::alloc(size_t bytes) {
  void *ptr = nullptr;
  const ud_status status = handle_.iface->alloc(handle_.ctx, bytes > 0 ? bytes : 1, &ptr);
  if (status != UD_OK || ptr == nullptr) {
    fail(status != UD_OK ? status : UD_ERR_OUT_OF_MEMORY,
         std::string(name()) + ": allocating " + std::to_string(bytes) + " bytes");
  }
  return ptr;
}

void Backend::free(void *ptr) {
  if (ptr) handle_.iface->free(handle_.ctx, ptr);
}

void Backend::upload(void *device_dst, const void *host_src, size_t bytes) {
  if (bytes == 0) return;
  const ud_status status = handle_.iface->upload(handle_.ctx, device_dst, host_src, bytes);
  if (status != UD_OK) fail(status, std::string(name()) + " upload");
}

void Backend::download(void *host_dst, const void *device_src, size_t bytes) {
  if (bytes == 0) return;
  const ud_status status = handle_.iface->download(handle_.ctx, host_dst, device_src, bytes);
  if (status != UD_OK) fail(status, std::string(name()) + " download");
}

void Backend::memset_zero(void *device_dst, size_t bytes) {
  if (bytes == 0) return;
  const ud_status status = handle_.iface->memset_zero(handle_.ctx, device_dst, bytes);
  if (status != UD_OK) fail(status, std::string(name()) + " memset_zero");
}

void *Backend::host_alloc(size_t bytes) {
  if (!handle_.iface->host_alloc) {  // ABI default: malloc
    void *ptr = std::malloc(bytes > 0 ? bytes : 1);
    if (!ptr) throw Error("host allocation of " + std::to_string(bytes) + " bytes failed", UD_ERR_OUT_OF_MEMORY);
    return ptr;
  }
  void *ptr = nullptr;
  const ud_status status = handle_.iface->host_alloc(handle_.ctx, bytes > 0 ? bytes : 1, &ptr);
  if (status != UD_OK || !ptr) fail(status != UD_OK ? status : UD_ERR_OUT_OF_MEMORY, std::string(name()) + " host_alloc");
  return ptr;
}

void Backend::host_free(void *ptr) {
  if (!ptr) return;
  if (!handle_.iface->host_free) {
    std::free(ptr);
    return;
  }
  handle_.iface->host_free(handle_.ctx, ptr);
}

bool Backend::supports(const ud_op &op) { return handle_.iface->supports_op(handle_.ctx, &op) != 0; }

void Backend::launch(const ud_op &op, const std::string &what) {
  launch_labels_.push_back(what);
  const ud_status status = handle_.iface->launch(handle_.ctx, &op);
  if (status != UD_OK) fail(status, what);
}

namespace {

// "launch #N: rest" → N and rest; false for any other text.
bool parse_launch_prefix(const std::string &text, size_t *index, std::string *rest) {
  static const std::string kPrefix = "launch #";
  if (text.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  size_t i = kPrefix.size(), n = 0;
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && n < (size_t{1} << 40)) n = n * 10 + (text[i++] - '0');
  if (text.compare(i, 2, ": ") != 0) return false;
  *index = n;
  *rest = text.substr(i + 2);
  return true;
}

}  // namespace

void Backend::synchronize() {
  const ud_status status = handle_.iface->synchronize(handle_.ctx);
  if (status == UD_OK) {
    launch_labels_.clear();
    return;
  }
  const char *detail = handle_.iface->last_error ? handle_.iface->last_error(handle_.ctx) : nullptr;
  const std::string text = detail && detail[0] ? detail : status_name(status);
  std::vector<std::string> labels;
  labels.swap(launch_labels_);
  size_t index = 0;
  std::string rest;
  if (parse_launch_prefix(text, &index, &rest) && index < labels.size()) throw Error(labels[index] + ": " + rest, status);
  throw Error(std::string(name()) + " synchronize: " + text, status);
}

bool Backend::has_graphs() {
  const ud_backend_iface &f = *handle_.iface;
  if (!f.graph_begin || !f.graph_end || !f.graph_launch || !f.graph_destroy) return false;
  return info().supports_graphs != 0;
}

void Backend::graph_begin() {
  launch_labels_.clear();  // captured launches are numbered from 0
  const ud_status status = handle_.iface->graph_begin(handle_.ctx);
  if (status != UD_OK) fail(status, std::string(name()) + " graph_begin");
}

ud_graph *Backend::graph_end() {
  ud_graph *graph = nullptr;
  const ud_status status = handle_.iface->graph_end(handle_.ctx, &graph);
  if (status != UD_OK || !graph) {
    if (graph) handle_.iface->graph_destroy(handle_.ctx, graph);
    fail(status != UD_OK ? status : UD_ERR_DEVICE, std::string(name()) + " graph_end");
  }
  return graph;
}

void Backend::graph_launch(ud_graph *graph, const std::vector<std::string> &labels) {
  launch_labels_.insert(launch_labels_.end(), labels.begin(), labels.end());
  const ud_status status = handle_.iface->graph_launch(handle_.ctx, graph);
  if (status != UD_OK) fail(status, std::string(name()) + " graph_launch");
}

void Backend::graph_destroy(ud_graph *graph) {
  if (graph) handle_.iface->graph_destroy(handle_.ctx, graph);
}

}  // namespace updraft
