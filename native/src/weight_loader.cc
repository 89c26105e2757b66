#include "weight_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../kernels/cpu/dtype_convert.h"
#include "errors.h"

namespace updraft {
namespace {

constexpr int64_t kChunkElements = int64_t{1} << 22;  // 16 MiB of f32 per chunk

class File {
 public:
  File(const std::string &path, const std::string &what) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(what + ": cannot open " + path + ": " + std::strerror(errno), UD_ERR_IO);
  }
  ~File() { ::close(fd_); }
  File(const File &) = delete;
  File &operator=(const File &) = delete;

  uint64_t size(const std::string &what) const {
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw Error(what + ": cannot stat " + path_ + ": " + std::strerror(errno), UD_ERR_IO);
    return static_cast<uint64_t>(st.st_size);
  }

  // Reads exactly `bytes` at `offset`, retrying short reads and EINTR.
  void read_at(void *dst, size_t bytes, uint64_t offset, const std::string &what) const {
    char *out = static_cast<char *>(dst);
    while (bytes > 0) {
      const ssize_t n = ::pread(fd_, out, bytes, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        throw Error(what + ": reading " + path_ + " at byte " + std::to_string(offset) + ": " +
                        (n == 0 ? "unexpected end of file" : std::strerror(errno)),
                    UD_ERR_IO);
      }
      out += n;
      offset += static_cast<uint64_t>(n);
      bytes -= static_cast<size_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

bool host_convertible(ud_dtype from, ud_dtype to) { return from == to || (is_float(from) && is_float(to)); }

void convert_on_host(const void *src, ud_dtype src_dtype, void *dst, ud_dtype dst_dtype, int64_t n) {
  if (src_dtype == dst_dtype) {
    std::memcpy(dst, src, static_cast<size_t>(n) * ud_dtype_size(src_dtype));
    return;
  }
  // Through f32 in blocks, so large tensors need no full-size f32 copy.
  float block[1024];
  for (int64_t start = 0; start < n; start += 1024) {
    const int64_t count = std::min<int64_t>(1024, n - start);
    cpu::load_row_f32(src, src_dtype, start, count, block);
    cpu::store_row_f32(dst, dst_dtype, start, count, block);
  }
}

void upload_converted(Backend &backend, void *device_dst, ud_dtype dst_dtype, const void *src, ud_dtype src_dtype,
                      int64_t n) {
  const size_t dst_size = ud_dtype_size(dst_dtype);
  if (src_dtype == dst_dtype) {
    backend.upload(device_dst, src, static_cast<size_t>(n) * dst_size);
    backend.synchronize();
    return;
  }
  HostStaging staging(backend, static_cast<size_t>(std::min(n, kChunkElements)) * dst_size);
  for (int64_t start = 0; start < n; start += kChunkElements) {
    const int64_t count = std::min(kChunkElements, n - start);
    convert_on_host(static_cast<const char *>(src) + start * ud_dtype_size(src_dtype), src_dtype, staging.data(),
                    dst_dtype, count);
    backend.upload(static_cast<char *>(device_dst) + start * dst_size, staging.data(), static_cast<size_t>(count) * dst_size);
    backend.synchronize();  // the staging buffer is reused by the next chunk
  }
}

void load_file_segments(Backend &backend, void *device_dst, ud_dtype dst_dtype, int64_t numel, int64_t row_elems,
                        const std::vector<FileSegment> &segments, const std::string &what) {
  // Check every segment before reading any, so a bad spec fails fast.
  int64_t total = 0;
  for (size_t i = 0; i < segments.size(); i++) {
    const FileSegment &seg = segments[i];
    const std::string where = what + " segment " + std::to_string(i) + " (" + seg.path + ")";
    if (!host_convertible(seg.dtype, dst_dtype))
      throw Error(where + ": cannot convert " + dtype_name(seg.dtype) + " to " + dtype_name(dst_dtype));
    const uint64_t elem_size = ud_dtype_size(seg.dtype);
    if (seg.byte_length % elem_size != 0)
      throw Error(where + ": byteLength " + std::to_string(seg.byte_length) + " is not a multiple of the " +
                  dtype_name(seg.dtype) + " size");
    const int64_t count = static_cast<int64_t>(seg.byte_length / elem_size);
    if (row_elems > 0 && count % row_elems != 0)
      throw Error(where + ": " + std::to_string(count) + " elements are not whole rows of " + std::to_string(row_elems));
    if (seg.rows == 0 || seg.byte_length % (seg.rows * elem_size) != 0)
      throw Error(where + ": byteLength " + std::to_string(seg.byte_length) + " is not " + std::to_string(seg.rows) +
                  " runs of whole " + dtype_name(seg.dtype) + " elements");
    const uint64_t run_bytes = seg.byte_length / seg.rows;
    if (seg.rows > 1 && seg.row_stride < run_bytes)
      throw Error(where + ": rowStride " + std::to_string(seg.row_stride) + " is shorter than a run (" +
                  std::to_string(run_bytes) + " bytes)");
    // The last byte read: the end of the last run.
    const uint64_t span = seg.rows > 1 ? (seg.rows - 1) * seg.row_stride + run_bytes : seg.byte_length;
    File file(seg.path, where);
    const uint64_t file_size = file.size(where);
    if (seg.offset > file_size || span > file_size - seg.offset)
      throw Error(where + ": bytes [" + std::to_string(seg.offset) + ", " + std::to_string(seg.offset + span) +
                      ") lie beyond the file's " + std::to_string(file_size) + " bytes",
                  UD_ERR_IO);
    total += count;
  }
  if (total != numel)
    throw Error(what + ": segments hold " + std::to_string(total) + " elements, the tensor has " + std::to_string(numel));

  // Runs of elements (a contiguous segment is one run; a strided one, one per row) are read into the
  // staging buffer back to back and uploaded whenever it is full, so many short runs cost few copies.
  const size_t dst_size = ud_dtype_size(dst_dtype);
  const int64_t staging_elements = std::min(numel, kChunkElements);
  HostStaging staging(backend, static_cast<size_t>(staging_elements) * dst_size);
  char *const staged = static_cast<char *>(staging.data());
  std::vector<char> raw;  // file bytes before conversion, when the dtypes differ
  int64_t uploaded = 0, filled = 0;
  const auto flush = [&]() {
    if (filled == 0) return;
    backend.upload(static_cast<char *>(device_dst) + uploaded * dst_size, staged, static_cast<size_t>(filled) * dst_size);
    backend.synchronize();  // the staging buffer is refilled next
    uploaded += filled;
    filled = 0;
  };
  for (size_t i = 0; i < segments.size(); i++) {
    const FileSegment &seg = segments[i];
    const std::string where = what + " segment " + std::to_string(i) + " (" + seg.path + ")";
    File file(seg.path, where);
    const size_t src_size = ud_dtype_size(seg.dtype);
    const int64_t run_elements = static_cast<int64_t>(seg.byte_length / seg.rows / src_size);
    for (uint64_t row = 0; row < seg.rows; row++) {
      const uint64_t run_offset = seg.offset + row * seg.row_stride;
      for (int64_t start = 0; start < run_elements;) {
        if (filled == staging_elements) flush();
        const int64_t n = std::min(staging_elements - filled, run_elements - start);
        const uint64_t offset = run_offset + static_cast<uint64_t>(start) * src_size;
        char *dst = staged + filled * dst_size;
        if (seg.dtype == dst_dtype) {
          file.read_at(dst, static_cast<size_t>(n) * src_size, offset, where);
        } else {
          raw.resize(static_cast<size_t>(n) * src_size);
          file.read_at(raw.data(), raw.size(), offset, where);
          convert_on_host(raw.data(), seg.dtype, dst, dst_dtype, n);
        }
        filled += n;
        start += n;
      }
    }
  }
  flush();
}

}  // namespace updraft
