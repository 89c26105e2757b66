// fake_acl.cc — a stand-in libascendcl.so for testing the `ascend` backend's host code where there is
// no NPU and no CANN: the ACL entry points the backend loads, over host memory (device memory is
// malloc'd, copies are synchronous memcpy, streams are tokens). Written from the public ACL reference;
// nothing of CANN is used. FAKE_ACL_DEVICES=<n> sets the device count (default 1; 0 = "no NPU").
// Graph capture (aclmdlRI*) is deliberately absent: the backend must then report no graph support.
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" {

using aclError = int;

aclError aclInit(const char *) { return 0; }
aclError aclFinalize() { return 0; }
const char *aclGetRecentErrMsg() { return "fake ACL runtime"; }
const char *aclrtGetSocName() { return "Ascend910B3 (fake runtime)"; }

static int32_t current_device = -1;

aclError aclrtGetDeviceCount(uint32_t *count) {
  const char *env = std::getenv("FAKE_ACL_DEVICES");
  *count = env ? static_cast<uint32_t>(std::atoi(env)) : 1u;
  return 0;
}
aclError aclrtSetDevice(int32_t device) {
  current_device = device;
  return 0;
}
aclError aclrtGetDevice(int32_t *device) {
  *device = current_device;
  return current_device >= 0 ? 0 : 107002;
}
aclError aclrtCreateStream(void **stream) {
  static int token;
  *stream = &token;
  return 0;
}
aclError aclrtDestroyStream(void *) { return 0; }
aclError aclrtSynchronizeStream(void *) { return 0; }
aclError aclrtMalloc(void **ptr, size_t size, int) {
  *ptr = std::aligned_alloc(512, (size + 511) / 512 * 512);
  return *ptr ? 0 : 207001;
}
aclError aclrtFree(void *ptr) {
  std::free(ptr);
  return 0;
}
aclError aclrtMallocHost(void **ptr, size_t size) {
  *ptr = std::malloc(size);
  return *ptr ? 0 : 207001;
}
aclError aclrtFreeHost(void *ptr) {
  std::free(ptr);
  return 0;
}
aclError aclrtMemcpyAsync(void *dst, size_t dst_max, const void *src, size_t count, int, void *) {
  if (count > dst_max) return 107000;
  std::memcpy(dst, src, count);
  return 0;
}
aclError aclrtMemsetAsync(void *dst, size_t dst_max, int32_t value, size_t count, void *) {
  if (count > dst_max) return 107000;
  std::memset(dst, value, count);
  return 0;
}
aclError aclrtGetMemInfo(int, size_t *free_bytes, size_t *total_bytes) {
  *free_bytes = size_t(8) << 30;
  *total_bytes = size_t(64) << 30;
  return 0;
}

}  // extern "C"
