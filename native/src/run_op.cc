#include "run_op.h"

#include <cstring>
#include <mutex>

#include "errors.h"

namespace updraft {
namespace {

int64_t numel_of(const OpOperand &operand) {
  int64_t n = 1;
  for (int64_t d : operand.shape) n *= d;
  return n;
}

// The op with views of `pointers` (null for absent operands); checks the call's structure.
ud_op describe(const OpCall &call, const std::vector<void *> &src_ptrs, const std::vector<void *> &dst_ptrs) {
  const std::string label = std::string("runOp(") + ud_op_name(call.kind) + ")";
  if (call.src.size() > UD_MAX_SRC || call.dst.size() > UD_MAX_DST) throw Error(label + ": too many operands");
  ud_op op;
  std::memset(&op, 0, sizeof op);
  op.kind = call.kind;
  op.n_src = static_cast<int32_t>(call.src.size());
  op.n_dst = static_cast<int32_t>(call.dst.size());
  op.params = parse_op_params(call.kind, call.params, label);
  const auto view = [&](const std::optional<OpOperand> &operand, void *ptr, ud_tensor &out, const std::string &what) {
    if (!operand) return;
    if (operand->shape.empty() || operand->shape.size() > UD_MAX_DIMS)
      throw Error(label + ": " + what + " must have 1 to " + std::to_string(UD_MAX_DIMS) + " dims");
    out.data = ptr;
    out.dtype = operand->dtype;
    out.ndim = static_cast<int32_t>(operand->shape.size());
    for (int i = 0; i < UD_MAX_DIMS; i++) out.ne[i] = i < out.ndim ? operand->shape[i] : 1;
    for (int i = 0; i < out.ndim; i++)
      if (out.ne[i] < 0) throw Error(label + ": " + what + " has a negative dim");
  };
  for (size_t s = 0; s < call.src.size(); s++) view(call.src[s], src_ptrs[s], op.src[s], "src" + std::to_string(s));
  for (size_t d = 0; d < call.dst.size(); d++) view(call.dst[d], dst_ptrs[d], op.dst[d], "dst" + std::to_string(d));
  return op;
}

// Non-null stand-ins (never dereferenced) so validation and supports_op see which operands exist.
std::vector<void *> placeholders(const std::vector<std::optional<OpOperand>> &operands, void *stand_in) {
  std::vector<void *> ptrs;
  for (const auto &operand : operands) ptrs.push_back(operand ? stand_in : nullptr);
  return ptrs;
}

void check_data(const OpOperand &operand, const HostArray &data, const std::string &what) {
  if (data.kind != host_kind_for(operand.dtype))
    throw Error(what + " (" + dtype_name(operand.dtype) + ") data must be a " + host_kind_name(host_kind_for(operand.dtype)) +
                ", got a " + host_kind_name(data.kind));
  if (data.length != numel_of(operand))
    throw Error(what + " data has " + std::to_string(data.length) + " elements, its shape has " +
                std::to_string(numel_of(operand)));
}

}  // namespace

bool op_supported(Backend &backend, const OpCall &call) {
  char stand_in;
  const ud_op op = describe(call, placeholders(call.src, &stand_in), placeholders(call.dst, &stand_in));
  std::lock_guard<std::mutex> lock(backend.mutex());
  return backend.supports(op);
}

std::vector<std::optional<HostArray>> run_op(Backend &backend, const OpCall &call) {
  const std::string label = std::string("runOp(") + ud_op_name(call.kind) + ")";
  // Validate everything on the host first.
  char stand_in;
  describe(call, placeholders(call.src, &stand_in), placeholders(call.dst, &stand_in));
  for (size_t s = 0; s < call.src.size(); s++) {
    if (!call.src[s]) continue;
    if (!call.src[s]->data) throw Error(label + ": src" + std::to_string(s) + " needs data");
    check_data(*call.src[s], *call.src[s]->data, label + ": src" + std::to_string(s));
  }
  for (size_t d = 0; d < call.dst.size(); d++) {
    if (!call.dst[d]) continue;
    const OpOperand &dst = *call.dst[d];
    const std::string what = label + ": dst" + std::to_string(d);
    if (dst.alias_of_src >= 0) {
      if (static_cast<size_t>(dst.alias_of_src) >= call.src.size() || !call.src[dst.alias_of_src])
        throw Error(what + " aliases a src that is absent");
      const OpOperand &src = *call.src[dst.alias_of_src];
      if (src.dtype != dst.dtype || numel_of(src) != numel_of(dst))
        throw Error(what + " aliases src" + std::to_string(dst.alias_of_src) + " but differs in dtype or size");
      if (dst.data) throw Error(what + " aliases a src, so it cannot have data of its own");
    }
    if (dst.data) check_data(dst, *dst.data, what);
  }

  std::lock_guard<std::mutex> lock(backend.mutex());
  std::vector<void *> allocated;
  struct FreeAll {  // frees on every path, still under the lock
    Backend &backend;
    std::vector<void *> &blocks;
    ~FreeAll() {
      for (void *p : blocks) backend.free(p);
    }
  } free_all{backend, allocated};
  const auto alloc = [&](const OpOperand &operand) {
    allocated.reserve(allocated.size() + 1);
    void *p = backend.alloc(static_cast<size_t>(numel_of(operand)) * ud_dtype_size(operand.dtype));
    allocated.push_back(p);
    return p;
  };

  std::vector<void *> src_ptrs(call.src.size(), nullptr), dst_ptrs(call.dst.size(), nullptr);
  for (size_t s = 0; s < call.src.size(); s++) {
    if (!call.src[s]) continue;
    src_ptrs[s] = alloc(*call.src[s]);
    backend.upload(src_ptrs[s], call.src[s]->data->bytes.data(), call.src[s]->data->bytes.size());
  }
  for (size_t d = 0; d < call.dst.size(); d++) {
    if (!call.dst[d]) continue;
    const OpOperand &dst = *call.dst[d];
    if (dst.alias_of_src >= 0) {
      dst_ptrs[d] = src_ptrs[dst.alias_of_src];
      continue;
    }
    dst_ptrs[d] = alloc(dst);
    if (dst.data) backend.upload(dst_ptrs[d], dst.data->bytes.data(), dst.data->bytes.size());
  }
  const ud_op op = describe(call, src_ptrs, dst_ptrs);
  if (!backend.supports(op)) throw Error(label + ": not supported by backend " + backend.name() + " for these dtypes",
                                         UD_ERR_UNSUPPORTED);
  backend.launch(op, label);

  std::vector<std::optional<HostArray>> results(call.dst.size());
  for (size_t d = 0; d < call.dst.size(); d++) {
    if (!call.dst[d]) continue;
    HostArray out;
    out.kind = host_kind_for(call.dst[d]->dtype);
    out.length = numel_of(*call.dst[d]);
    out.bytes.resize(static_cast<size_t>(out.length) * ud_dtype_size(call.dst[d]->dtype));
    backend.download(out.bytes.data(), dst_ptrs[d], out.bytes.size());
    results[d] = std::move(out);
  }
  backend.synchronize();
  return results;
}

}  // namespace updraft
