// weight_loader.h — fills a weight tensor from safetensors byte ranges or from host data.
//
// Files are read with pread in bounded chunks (never a whole file in memory, never through JS),
// converted on the host to the tensor's dtype (f32/f16/bf16 in any direction, round to nearest
// even), and uploaded through a staging buffer from the backend's host_alloc.
#ifndef UPDRAFT_NATIVE_WEIGHT_LOADER_H
#define UPDRAFT_NATIVE_WEIGHT_LOADER_H

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "program_spec.h"

namespace updraft {

// True when host conversion from `from` to `to` is defined (same dtype, or both float dtypes).
bool host_convertible(ud_dtype from, ud_dtype to);

// Converts n elements; the dtypes must be host_convertible.
void convert_on_host(const void *src, ud_dtype src_dtype, void *dst, ud_dtype dst_dtype, int64_t n);

// Reads `segments` in order (a strided one run by run) into device_dst ([numel] of dst_dtype). Each segment must hold whole
// rows of `row_elems` elements and together exactly `numel` elements. `what` prefixes errors.
void load_file_segments(Backend &backend, void *device_dst, ud_dtype dst_dtype, int64_t numel, int64_t row_elems,
                        const std::vector<FileSegment> &segments, const std::string &what);

// Converts and uploads n host elements.
void upload_converted(Backend &backend, void *device_dst, ud_dtype dst_dtype, const void *src, ud_dtype src_dtype,
                      int64_t n);

}  // namespace updraft

#endif
