// program.h — the executor: a ProgramSpec made real on one backend.
//
// Building allocates every tensor once (activation/input/output buffers sized for the maximum
// dims), loads the weights and zeroes the state. A step uploads the inputs, launches every op with
// views whose shapes are resolved for that step's dims, downloads the outputs and synchronises.
// Nothing here knows which backend it drives: capability questions go through supports_op.
//
// Thread safety: build, step and destruction each hold the backend's mutex, so steps on one
// program (and on every program of one device) run one at a time, on whatever thread calls them.
#ifndef UPDRAFT_NATIVE_PROGRAM_H
#define UPDRAFT_NATIVE_PROGRAM_H

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "program_spec.h"

namespace updraft {

struct MemoryUsage {
  uint64_t weight = 0, state = 0, activation = 0, input = 0, output = 0;
  uint64_t total() const { return weight + state + activation + input + output; }
};

// Device allocations freed together, under the backend's mutex, when the owner goes away (also
// when a build fails half-way).
class DeviceMemory {
 public:
  explicit DeviceMemory(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {}
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory &) = delete;
  DeviceMemory &operator=(const DeviceMemory &) = delete;
  // Call with the backend's mutex held.
  void *alloc(size_t bytes);

 private:
  std::shared_ptr<Backend> backend_;
  std::vector<void *> blocks_;
};

class Program {
 public:
  // Validates, allocates and loads. Throws Error with a message naming the tensor/op at fault.
  Program(std::shared_ptr<Backend> backend, ProgramSpec spec);

  // Runs one step. Throws Error (bad dims, missing/extra/mis-sized inputs, a failed op) and leaves
  // the program usable.
  StepOutputs step(const StepRequest &request);

  MemoryUsage memory_usage() const { return usage_; }

 private:
  // A dim with its symbol resolved to an index into dim_max_ / a step's dim values.
  struct BoundDim {
    int symbol = -1;  // -1: constant
    int64_t offset = 0;
  };
  struct Tensor {
    TensorDecl decl;
    std::vector<BoundDim> shape;
    void *data = nullptr;
    size_t bytes = 0;  // allocated for the maximum dims
  };
  struct PlannedOp {
    ud_op op;                                // data pointers, dtypes and ndim fixed; ne set per step
    std::array<int, UD_MAX_SRC> src_tensor;  // index into tensors_, -1 when absent
    std::array<int, UD_MAX_DST> dst_tensor;
    std::string label;                       // "op 3 (matmul)" for messages
  };

  void bind_dims(const ProgramSpec &spec);
  void declare_tensors(ProgramSpec &spec);
  void plan_ops(const ProgramSpec &spec);
  void allocate_and_initialise();
  void initialise_weight(Tensor &tensor);

  // Shape of a tensor for the given dim values (weights and state always use the maxima).
  void resolve_shape(const Tensor &tensor, const std::vector<int64_t> &dims, int64_t *ne) const;
  int64_t resolved_numel(const Tensor &tensor, const std::vector<int64_t> &dims) const;
  std::vector<int64_t> step_dims(const StepRequest &request) const;
  void set_views(PlannedOp &planned, const std::vector<int64_t> &dims) const;
  void launch_ops(const std::vector<int64_t> &dims);

  std::shared_ptr<Backend> backend_;
  std::vector<std::string> dim_names_;
  std::vector<int64_t> dim_max_;
  std::vector<Tensor> tensors_;
  std::vector<PlannedOp> ops_;
  std::vector<int> input_tensors_, output_tensors_;
  MemoryUsage usage_;
  DeviceMemory memory_;  // last member: freed first, while backend_ is still held
};

}  // namespace updraft

#endif
