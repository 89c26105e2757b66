// program.h — the executor: a ProgramSpec made real on one backend.
//
// Building checks that the program fits in the device's free memory, allocates every tensor once
// (activation/input/output buffers sized for the maximum dims), loads the weights and zeroes the
// state. A step copies the inputs into staging host memory (the backend's host_alloc: pinned on GPUs,
// so the copies are asynchronous), uploads them, launches every op with views whose shapes are
// resolved for that step's dims (or replays a captured graph, see GraphCache), downloads the outputs
// into staging memory, synchronises, and copies them out.
// Nothing here knows which backend it drives: capability questions go through supports_op and
// get_info.
//
// Thread safety: build, step and destruction each hold the backend's mutex, so steps on one
// program (and on every program of one device) run one at a time, on whatever thread calls them.
#ifndef UPDRAFT_NATIVE_PROGRAM_H
#define UPDRAFT_NATIVE_PROGRAM_H

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "communicator.h"
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

// Host memory from the backend's host_alloc, freed under the backend's mutex when the owner goes away.
class HostMemory {
 public:
  explicit HostMemory(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {}
  ~HostMemory();
  HostMemory(const HostMemory &) = delete;
  HostMemory &operator=(const HostMemory &) = delete;
  // Call with the backend's mutex held; replaces (frees) any earlier block.
  void *alloc(size_t bytes);
  char *data() const { return static_cast<char *>(ptr_); }

 private:
  std::shared_ptr<Backend> backend_;
  void *ptr_ = nullptr;
};

// What the executor did with steps that asked for graphs (StepRequest.graph).
struct GraphStats {
  bool enabled = false;   // the backend offers graphs and no capture has failed
  uint64_t captured = 0;  // graphs recorded (one per distinct dims tuple, at most kMaxGraphs)
  uint64_t replayed = 0;  // steps run by launching a captured graph
  uint64_t eager = 0;     // graph steps run op by op (first sight of their dims, over the cap, disabled)
  std::string error;      // why graphs were disabled, when a capture failed
};

// CUDA-graph style capture, keyed by a step's dim values. The first step with a key runs eagerly (a
// warm-up: kernels initialise lazily, e.g. their shared-memory attributes, which must not happen
// during a capture), the second records the op sequence between graph_begin and graph_end and
// launches it, later ones only launch it. Buffers never move, so a recorded graph stays valid; inputs
// are uploaded before the launch and outputs downloaded after it. A failed capture disables graphs for
// the program (the step itself then runs eagerly). Graphs are destroyed under the backend's mutex.
struct GraphCache {
  static constexpr size_t kMaxGraphs = 64;  // distinct keys tracked; beyond them steps run eagerly
  explicit GraphCache(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {}
  ~GraphCache();
  GraphCache(const GraphCache &) = delete;
  GraphCache &operator=(const GraphCache &) = delete;

  struct Entry {
    ud_graph *graph = nullptr;  // null until captured (seen once: warmed up)
  };
  // Destroys every graph and stops capturing, keeping `reason`. Call with the mutex held.
  void disable(const std::string &reason);

  std::shared_ptr<Backend> backend_;
  std::map<std::vector<int64_t>, Entry> entries;
  GraphStats stats;
};

// What the JS Program object drives: a Program on one device, or one Program per rank of a
// tensor-parallel group (ShardedProgram, sharded_program.h).
class Executable {
 public:
  virtual ~Executable() = default;
  virtual StepOutputs step(const StepRequest &request) = 0;
  virtual MemoryUsage memory_usage() const = 0;
  virtual GraphStats graph_stats() = 0;
};

class Program : public Executable {
 public:
  // Validates, allocates and loads. Throws Error with a message naming the tensor/op at fault.
  // `comm` (one rank of a tensor-parallel group) runs the program's all_reduce ops; without it they
  // are no-ops (kernels/ops.h UD_OP_ALL_REDUCE).
  Program(std::shared_ptr<Backend> backend, ProgramSpec spec, std::shared_ptr<Communicator> comm = nullptr);

  // Runs one step. Throws Error (bad dims, missing/extra/mis-sized inputs, a failed op) and leaves
  // the program usable (a failed collective leaves its group aborted: communicator.h).
  StepOutputs step(const StepRequest &request) override;

  // The checks step() makes before touching the device: the dims' values, and one input of the right
  // kind and size per input tensor (input_data, when given: per tensor, its array or null). Throws Error.
  std::vector<int64_t> check_step(const StepRequest &request, std::vector<const HostArray *> *input_data = nullptr) const;

  MemoryUsage memory_usage() const override { return usage_; }
  GraphStats graph_stats() override;

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
  void check_fits_in_device_memory();
  void allocate_staging();
  // Enqueues the step's ops: eagerly, or through the graph cache when `graph` is asked for.
  void run_ops(const std::vector<int64_t> &dims, bool graph);
  void launch_ops(const std::vector<int64_t> &dims);
  // Records the step's ops as a graph; ends the capture and throws if anything fails.
  ud_graph *capture_ops(const std::vector<int64_t> &dims);

  // all_reduce through comm_ (a no-op without one).
  void run_all_reduce(const PlannedOp &planned);

  std::shared_ptr<Backend> backend_;
  std::shared_ptr<Communicator> comm_;  // null: a program of one rank
  std::vector<std::string> dim_names_;
  std::vector<int64_t> dim_max_;
  std::vector<Tensor> tensors_;
  std::vector<PlannedOp> ops_;
  std::vector<int> input_tensors_, output_tensors_;
  std::vector<std::string> op_labels_;   // ops_[i].label, for graph replays' error messages
  std::vector<size_t> staging_offset_;   // per tensor: its place in staging_ (inputs and outputs only)
  MemoryUsage usage_;
  HostMemory staging_;
  DeviceMemory memory_;
  GraphCache graphs_;  // last member: destroyed first, while backend_ and the buffers are still held
};

}  // namespace updraft

#endif
