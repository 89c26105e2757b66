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
  const ud_status status = handle_.iface->launch(handle_.ctx, &op);
  if (status != UD_OK) fail(status, what);
}

void Backend::synchronize() {
  const ud_status status = handle_.iface->synchronize(handle_.ctx);
  if (status != UD_OK) fail(status, std::string(name()) + " synchronize");
}

}  // namespace updraft
