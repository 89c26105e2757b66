#include "program.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "errors.h"
#include "weight_loader.h"

namespace updraft {
namespace {

std::string quoted(const std::string &name) { return "'" + name + "'"; }

bool is_per_step(TensorRole role) {
  return role == TensorRole::Activation || role == TensorRole::Input || role == TensorRole::Output;
}

constexpr size_t kDeviceAlignment = 256;  // device_abi.h: alloc is aligned to at least this
constexpr size_t kStagingAlignment = 64;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string gib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << 30));
  return text;
}

}  // namespace

HostMemory::~HostMemory() {
  if (!ptr_) return;
  std::lock_guard<std::mutex> lock(backend_->mutex());
  backend_->host_free(ptr_);
}

void *HostMemory::alloc(size_t bytes) {
  if (ptr_) backend_->host_free(ptr_);
  ptr_ = nullptr;
  ptr_ = backend_->host_alloc(bytes);
  return ptr_;
}

GraphCache::~GraphCache() {
  if (entries.empty()) return;
  std::lock_guard<std::mutex> lock(backend_->mutex());
  for (auto &[key, entry] : entries) backend_->graph_destroy(entry.graph);
}

void GraphCache::disable(const std::string &reason) {
  for (auto &[key, entry] : entries) backend_->graph_destroy(entry.graph);
  entries.clear();
  stats.enabled = false;
  stats.error = reason;
}

DeviceMemory::~DeviceMemory() {
  std::lock_guard<std::mutex> lock(backend_->mutex());
  for (void *block : blocks_) backend_->free(block);
}

void *DeviceMemory::alloc(size_t bytes) {
  blocks_.reserve(blocks_.size() + 1);  // so push_back below cannot throw and leak the block
  void *block = backend_->alloc(bytes);
  blocks_.push_back(block);
  return block;
}

Program::Program(std::shared_ptr<Backend> backend, ProgramSpec spec, std::shared_ptr<Communicator> comm)
    : backend_(backend), comm_(std::move(comm)), staging_(backend), memory_(backend), graphs_(backend) {
  bind_dims(spec);
  declare_tensors(spec);
  plan_ops(spec);
  std::lock_guard<std::mutex> lock(backend_->mutex());
  check_fits_in_device_memory();
  allocate_and_initialise();
  allocate_staging();
  graphs_.stats.enabled = backend_->has_graphs();
  bool has_all_reduce = false;
  for (const PlannedOp &planned : ops_) has_all_reduce = has_all_reduce || planned.op.kind == UD_OP_ALL_REDUCE;
  if (graphs_.stats.enabled && has_all_reduce && comm_ && !comm_->capturable()) {
    graphs_.stats.enabled = false;
    graphs_.stats.error = std::string("the ") + comm_->name() + " communicator cannot be recorded in a graph";
  }
}

GraphStats Program::graph_stats() {
  std::lock_guard<std::mutex> lock(backend_->mutex());
  return graphs_.stats;
}

void Program::bind_dims(const ProgramSpec &spec) {
  for (const auto &[name, max] : spec.dims) {
    parse_dim_string(name, "dims");  // same naming rule as in shapes
    if (name.find('+') != std::string::npos) throw Error("dims: " + quoted(name) + " is not a plain name");
    for (const std::string &seen : dim_names_)
      if (seen == name) throw Error("dims: " + quoted(name) + " is declared twice");
    if (max < 0) throw Error("dims: " + quoted(name) + " has a negative maximum");
    dim_names_.push_back(name);
    dim_max_.push_back(max);
  }
}

void Program::declare_tensors(ProgramSpec &spec) {
  std::unordered_map<std::string, int> seen;
  for (TensorDecl &decl : spec.tensors) {
    const std::string what = "tensor " + quoted(decl.name);
    if (decl.name.empty()) throw Error("a tensor has an empty name");
    if (!seen.emplace(decl.name, static_cast<int>(tensors_.size())).second) throw Error(what + " is declared twice");
    if (decl.shape.empty() || decl.shape.size() > UD_MAX_DIMS)
      throw Error(what + " has " + std::to_string(decl.shape.size()) + " dims; 1 to " + std::to_string(UD_MAX_DIMS) +
                  " are supported");
    const bool is_weight = decl.role == TensorRole::Weight;
    if (is_weight && decl.init.kind == WeightInit::Kind::None) throw Error(what + " is a weight without init");
    if (!is_weight && decl.init.kind != WeightInit::Kind::None)
      throw Error(what + " has init but is a " + role_name(decl.role) + " tensor (only weights are initialised)");

    Tensor tensor;
    for (const DimExpr &dim : decl.shape) {
      BoundDim bound;
      bound.offset = dim.offset;
      if (!dim.symbol.empty()) {
        for (size_t i = 0; i < dim_names_.size(); i++)
          if (dim_names_[i] == dim.symbol) bound.symbol = static_cast<int>(i);
        if (bound.symbol < 0) throw Error(what + " uses dim " + quoted(dim.symbol) + ", which is not in spec.dims");
      } else if (dim.offset < 0) {
        throw Error(what + " has a negative dim");
      }
      tensor.shape.push_back(bound);
    }
    // Size for the maximum dims, guarding against overflow.
    int64_t ne[UD_MAX_DIMS];
    tensor.decl = std::move(decl);
    resolve_shape(tensor, dim_max_, ne);
    uint64_t elements = 1;
    for (size_t i = 0; i < tensor.shape.size(); i++) {
      if (ne[i] != 0 && elements > (uint64_t{1} << 48) / static_cast<uint64_t>(ne[i]))
        throw Error(what + " is too large");
      elements *= static_cast<uint64_t>(ne[i]);
    }
    tensor.bytes = static_cast<size_t>(elements) * ud_dtype_size(tensor.decl.dtype);
    if (tensor.decl.role == TensorRole::Input) input_tensors_.push_back(static_cast<int>(tensors_.size()));
    if (tensor.decl.role == TensorRole::Output) output_tensors_.push_back(static_cast<int>(tensors_.size()));
    tensors_.push_back(std::move(tensor));
  }
}

void Program::plan_ops(const ProgramSpec &spec) {
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < tensors_.size(); i++) index.emplace(tensors_[i].decl.name, static_cast<int>(i));
  for (size_t i = 0; i < spec.ops.size(); i++) {
    const OpDecl &decl = spec.ops[i];
    PlannedOp planned;
    planned.label = "op " + std::to_string(i) + " (" + ud_op_name(decl.kind) + ")";
    if (decl.src.size() > UD_MAX_SRC || decl.dst.size() > UD_MAX_DST)
      throw Error(planned.label + " has too many operands");
    std::memset(&planned.op, 0, sizeof planned.op);
    planned.op.kind = decl.kind;
    planned.op.n_src = static_cast<int32_t>(decl.src.size());
    planned.op.n_dst = static_cast<int32_t>(decl.dst.size());
    planned.op.params = parse_op_params(decl.kind, decl.params, planned.label);
    planned.src_tensor.fill(-1);
    planned.dst_tensor.fill(-1);
    const auto bind = [&](const std::string &name, const std::string &slot) -> int {
      if (name.empty()) return -1;
      const auto found = index.find(name);
      if (found == index.end()) throw Error(planned.label + ": " + slot + " " + quoted(name) + " is not a declared tensor");
      return found->second;
    };
    for (size_t s = 0; s < decl.src.size(); s++) planned.src_tensor[s] = bind(decl.src[s], "src" + std::to_string(s));
    for (size_t d = 0; d < decl.dst.size(); d++) {
      const int t = bind(decl.dst[d], "dst" + std::to_string(d));
      if (t >= 0 && (tensors_[t].decl.role == TensorRole::Weight || tensors_[t].decl.role == TensorRole::Input))
        throw Error(planned.label + ": dst" + std::to_string(d) + " " + quoted(tensors_[t].decl.name) + " is a " +
                    role_name(tensors_[t].decl.role) + ", which ops may not write");
      planned.dst_tensor[d] = t;
    }
    op_labels_.push_back(planned.label);
    ops_.push_back(std::move(planned));
  }
}

// Fails before allocating anything when the program cannot fit, rather than half-way through the
// allocations (or, on a GPU, at the first kernel that touches memory the driver could not back).
void Program::check_fits_in_device_memory() {
  uint64_t needed = 0;
  for (const Tensor &tensor : tensors_) needed += round_up(tensor.bytes > 0 ? tensor.bytes : 1, kDeviceAlignment);
  const ud_device_info info = backend_->info();
  if (info.free_memory == 0 || needed <= info.free_memory) return;  // 0: the backend cannot tell
  uint64_t by_role[5] = {0, 0, 0, 0, 0};  // weight, state, activation, input + output
  for (const Tensor &tensor : tensors_) {
    const int role = tensor.decl.role == TensorRole::Weight ? 0 : tensor.decl.role == TensorRole::State ? 1
                     : tensor.decl.role == TensorRole::Activation ? 2 : 3;
    by_role[role] += tensor.bytes;
  }
  throw Error("program needs " + gib(needed) + " GiB of device memory (weights " + gib(by_role[0]) + ", state " +
                  gib(by_role[1]) + ", activations " + gib(by_role[2]) + ", inputs and outputs " + gib(by_role[3]) +
                  " GiB), device '" + info.name + "' has " + gib(info.free_memory) + " GiB free of " +
                  gib(info.total_memory) + " GiB",
              UD_ERR_OUT_OF_MEMORY);
}

// One host block for every input and output at its maximum size, so a step's copies never allocate.
void Program::allocate_staging() {
  staging_offset_.assign(tensors_.size(), 0);
  size_t total = 0;
  for (const std::vector<int> *list : {&input_tensors_, &output_tensors_}) {
    for (int t : *list) {
      staging_offset_[t] = total;
      total += round_up(tensors_[t].bytes, kStagingAlignment);
    }
  }
  staging_.alloc(total);
}

void Program::allocate_and_initialise() {
  for (Tensor &tensor : tensors_) {
    tensor.data = memory_.alloc(tensor.bytes);
    switch (tensor.decl.role) {
      case TensorRole::Weight: usage_.weight += tensor.bytes; break;
      case TensorRole::State: usage_.state += tensor.bytes; break;
      case TensorRole::Activation: usage_.activation += tensor.bytes; break;
      case TensorRole::Input: usage_.input += tensor.bytes; break;
      case TensorRole::Output: usage_.output += tensor.bytes; break;
    }
  }
  // Data pointers are fixed from here on; check every op against the backend once, at full size.
  for (PlannedOp &planned : ops_) {
    set_views(planned, dim_max_);
    if (planned.op.kind == UD_OP_ALL_REDUCE) {
      // Run by the communicator, not launched on the backend (kernels/ops.h).
      const ud_op &op = planned.op;
      if (op.n_src != 0 || op.n_dst != 1 || planned.dst_tensor[0] < 0 ||
          (op.dst[0].dtype != UD_F32 && op.dst[0].dtype != UD_BF16 && op.dst[0].dtype != UD_F16))
        throw Error(planned.label + ": takes no src and one f32, bf16 or f16 dst", UD_ERR_UNSUPPORTED);
      continue;
    }
    if (!backend_->supports(planned.op)) {
      std::string operands;
      for (int s = 0; s < planned.op.n_src; s++)
        operands += std::string(s ? ", " : "src: ") + (planned.src_tensor[s] < 0 ? "-" : dtype_name(static_cast<ud_dtype>(planned.op.src[s].dtype)));
      for (int d = 0; d < planned.op.n_dst; d++)
        operands += std::string(d ? ", " : "; dst: ") + (planned.dst_tensor[d] < 0 ? "-" : dtype_name(static_cast<ud_dtype>(planned.op.dst[d].dtype)));
      throw Error(planned.label + ": backend " + backend_->name() + " does not support it with dtypes (" + operands + ")",
                  UD_ERR_UNSUPPORTED);
    }
  }
  for (Tensor &tensor : tensors_) {
    if (tensor.decl.role == TensorRole::Weight) initialise_weight(tensor);
    if (tensor.decl.role == TensorRole::State) backend_->memset_zero(tensor.data, tensor.bytes);
  }
  backend_->synchronize();
}

void Program::initialise_weight(Tensor &tensor) {
  const std::string what = "weight " + quoted(tensor.decl.name);
  const int64_t numel = resolved_numel(tensor, dim_max_);
  const ud_dtype dtype = tensor.decl.dtype;
  WeightInit &init = tensor.decl.init;
  switch (init.kind) {
    case WeightInit::Kind::File: {
      int64_t ne[UD_MAX_DIMS];
      resolve_shape(tensor, dim_max_, ne);
      const int64_t row_elems = ne[0] > 0 ? numel / ne[0] : 0;
      load_file_segments(*backend_, tensor.data, dtype, numel, row_elems, init.segments, what);
      break;
    }
    case WeightInit::Kind::Random: {
      if (!is_float(dtype)) throw Error(what + ": random init needs a float dtype, not " + dtype_name(dtype));
      ud_op op;
      std::memset(&op, 0, sizeof op);
      op.kind = UD_OP_FILL_RANDOM;
      op.n_dst = 1;
      op.params.fill_random.seed = init.seed;
      op.params.fill_random.std = init.std;
      op.dst[0] = ud_tensor{tensor.data, dtype, 1, {numel, 1, 1, 1}};
      backend_->launch(op, what + " (fill_random)");
      break;
    }
    case WeightInit::Kind::Data: {
      const ud_dtype src_dtype = init.data.kind == HostKind::F32 ? UD_F32 : UD_I32;
      if (init.data.length != numel)
        throw Error(what + ": init data has " + std::to_string(init.data.length) + " elements, the tensor has " +
                    std::to_string(numel));
      if (!host_convertible(src_dtype, dtype))
        throw Error(what + ": cannot store " + host_kind_name(init.data.kind) + " data in a " + dtype_name(dtype) + " tensor");
      upload_converted(*backend_, tensor.data, dtype, init.data.bytes.data(), src_dtype, numel);
      init.data.bytes = std::vector<uint8_t>();  // uploaded: release the host copy
      break;
    }
    case WeightInit::Kind::None: break;
  }
}

void Program::resolve_shape(const Tensor &tensor, const std::vector<int64_t> &dims, int64_t *ne) const {
  const std::vector<int64_t> &values = is_per_step(tensor.decl.role) ? dims : dim_max_;
  for (int i = 0; i < UD_MAX_DIMS; i++) ne[i] = 1;
  for (size_t i = 0; i < tensor.shape.size(); i++) {
    const BoundDim &dim = tensor.shape[i];
    ne[i] = (dim.symbol >= 0 ? values[dim.symbol] : 0) + dim.offset;
  }
}

int64_t Program::resolved_numel(const Tensor &tensor, const std::vector<int64_t> &dims) const {
  int64_t ne[UD_MAX_DIMS];
  resolve_shape(tensor, dims, ne);
  int64_t n = 1;
  for (size_t i = 0; i < tensor.shape.size(); i++) n *= ne[i];
  return n;
}

void Program::set_views(PlannedOp &planned, const std::vector<int64_t> &dims) const {
  const auto view = [&](int t, ud_tensor &out) {
    if (t < 0) {
      std::memset(&out, 0, sizeof out);
      return;
    }
    const Tensor &tensor = tensors_[t];
    out.data = tensor.data;
    out.dtype = tensor.decl.dtype;
    out.ndim = static_cast<int32_t>(tensor.shape.size());
    resolve_shape(tensor, dims, out.ne);
  };
  for (int s = 0; s < planned.op.n_src; s++) view(planned.src_tensor[s], planned.op.src[s]);
  for (int d = 0; d < planned.op.n_dst; d++) view(planned.dst_tensor[d], planned.op.dst[d]);
}

std::vector<int64_t> Program::step_dims(const StepRequest &request) const {
  std::vector<int64_t> values(dim_names_.size(), -1);
  for (const auto &[name, value] : request.dims) {
    size_t i = 0;
    while (i < dim_names_.size() && dim_names_[i] != name) i++;
    if (i == dim_names_.size()) throw Error("step: unknown dim " + quoted(name));
    if (value < 0 || value > dim_max_[i])
      throw Error("step: dim " + quoted(name) + " = " + std::to_string(value) + " is outside [0, " +
                  std::to_string(dim_max_[i]) + "]");
    values[i] = value;
  }
  for (size_t i = 0; i < values.size(); i++)
    if (values[i] < 0) throw Error("step: dim " + quoted(dim_names_[i]) + " is missing");
  return values;
}

std::vector<int64_t> Program::check_step(const StepRequest &request, std::vector<const HostArray *> *found_inputs) const {
  const std::vector<int64_t> dims = step_dims(request);
  std::vector<const HostArray *> input_data(tensors_.size(), nullptr);
  for (const auto &[name, array] : request.inputs) {
    int found = -1;
    for (size_t t = 0; t < tensors_.size(); t++)
      if (tensors_[t].decl.name == name) found = static_cast<int>(t);
    if (found < 0) throw Error("step: unknown input tensor " + quoted(name));
    const Tensor &tensor = tensors_[found];
    if (tensor.decl.role != TensorRole::Input)
      throw Error("step: tensor " + quoted(name) + " is a " + role_name(tensor.decl.role) + ", not an input");
    if (array.kind != host_kind_for(tensor.decl.dtype))
      throw Error("step: input " + quoted(name) + " (" + dtype_name(tensor.decl.dtype) + ") must be a " +
                  host_kind_name(host_kind_for(tensor.decl.dtype)) + ", got a " + host_kind_name(array.kind));
    const int64_t expected = resolved_numel(tensor, dims);
    if (array.length != expected)
      throw Error("step: input " + quoted(name) + " has " + std::to_string(array.length) + " elements, expected " +
                  std::to_string(expected) + " for this step's dims");
    input_data[found] = &array;
  }
  for (int t : input_tensors_)
    if (!input_data[t]) throw Error("step: input " + quoted(tensors_[t].decl.name) + " is missing");
  if (found_inputs) *found_inputs = std::move(input_data);
  return dims;
}

StepOutputs Program::step(const StepRequest &request) {
  // Match the inputs to input tensors before touching the device.
  std::vector<const HostArray *> input_data;
  const std::vector<int64_t> dims = check_step(request, &input_data);

  StepOutputs outputs;
  outputs.reserve(output_tensors_.size());
  for (int t : output_tensors_) {
    const Tensor &tensor = tensors_[t];
    HostArray array;
    array.kind = host_kind_for(tensor.decl.dtype);
    array.length = resolved_numel(tensor, dims);
    array.bytes.resize(static_cast<size_t>(array.length) * ud_dtype_size(tensor.decl.dtype));
    outputs.emplace_back(tensor.decl.name, std::move(array));
  }

  std::lock_guard<std::mutex> lock(backend_->mutex());
  char *staging = staging_.data();
  try {
    // Staging memory is the backend's (pinned on GPUs): the copies run asynchronously, in stream order
    // with the ops, and the staging stays valid until the synchronize below.
    for (int t : input_tensors_) {
      const std::vector<uint8_t> &bytes = input_data[t]->bytes;
      if (bytes.empty()) continue;
      std::memcpy(staging + staging_offset_[t], bytes.data(), bytes.size());
      backend_->upload(tensors_[t].data, staging + staging_offset_[t], bytes.size());
    }
    run_ops(dims, request.graph);
    for (size_t i = 0; i < output_tensors_.size(); i++) {
      const int t = output_tensors_[i];
      backend_->download(staging + staging_offset_[t], tensors_[t].data, outputs[i].second.bytes.size());
    }
    backend_->synchronize();  // downloads are complete only now
  } catch (...) {
    // Leave nothing in flight that reads or writes the staging memory the next step reuses.
    try {
      backend_->synchronize();
    } catch (...) {
    }
    throw;
  }
  for (size_t i = 0; i < output_tensors_.size(); i++) {
    std::vector<uint8_t> &bytes = outputs[i].second.bytes;
    if (!bytes.empty()) std::memcpy(bytes.data(), staging + staging_offset_[output_tensors_[i]], bytes.size());
  }
  return outputs;
}

// Eagerly, or through the graph cache (see GraphCache in program.h) for steps that ask for it on a
// backend that offers graphs.
void Program::run_ops(const std::vector<int64_t> &dims, bool graph) {
  GraphStats &stats = graphs_.stats;
  if (!graph || !stats.enabled) {
    if (graph) stats.eager++;
    launch_ops(dims);
    return;
  }
  auto found = graphs_.entries.find(dims);
  if (found == graphs_.entries.end()) {
    // First sight of these dims (or too many distinct ones): run eagerly. A failing step is not
    // remembered, so its next occurrence is a warm-up again.
    stats.eager++;
    launch_ops(dims);
    if (graphs_.entries.size() < GraphCache::kMaxGraphs) graphs_.entries.emplace(dims, GraphCache::Entry{});
    return;
  }
  if (!found->second.graph) {
    ud_graph *captured = nullptr;
    try {
      captured = capture_ops(dims);
    } catch (const std::exception &capture_error) {
      // Run the step eagerly. If that fails too, the fault was the step's, not the capture's: report
      // it and keep graphs. Otherwise graphs do not work for this program: stop trying.
      launch_ops(dims);
      const std::string reason = std::string("graph capture failed: ") + capture_error.what();
      std::fprintf(stderr, "updraft: %s; this program's steps run op by op from now on\n", reason.c_str());
      graphs_.disable(reason);
      stats.eager++;
      return;
    }
    found->second.graph = captured;
    stats.captured++;
  }
  backend_->graph_launch(found->second.graph, op_labels_);
  stats.replayed++;
}

// The one place a step's ops are enqueued one by one.
void Program::launch_ops(const std::vector<int64_t> &dims) {
  for (PlannedOp &planned : ops_) {
    set_views(planned, dims);
    if (planned.op.kind == UD_OP_ALL_REDUCE) {
      run_all_reduce(planned);
      continue;
    }
    backend_->launch(planned.op, planned.label);
  }
}

void Program::run_all_reduce(const PlannedOp &planned) {
  if (!comm_) return;  // one rank: the sum is the value itself
  const ud_tensor &data = planned.op.dst[0];
  int64_t count = 1;
  for (int i = 0; i < data.ndim; i++) count *= data.ne[i];
  comm_->all_reduce_sum(data.data, count, static_cast<ud_dtype>(data.dtype), planned.label);
}

ud_graph *Program::capture_ops(const std::vector<int64_t> &dims) {
  backend_->graph_begin();
  try {
    launch_ops(dims);
  } catch (...) {
    // End the capture so that the stream works again; what was recorded is discarded.
    try {
      backend_->graph_destroy(backend_->graph_end());
    } catch (...) {
    }
    throw;
  }
  return backend_->graph_end();
}

}  // namespace updraft
