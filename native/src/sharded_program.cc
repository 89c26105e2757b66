#include "sharded_program.h"

#include <atomic>
#include <exception>
#include <functional>
#include <thread>

#include "errors.h"

namespace updraft {
namespace {

// Runs work(r) for every rank, rank 0 on this thread, and returns each rank's exception (or null).
std::vector<std::exception_ptr> on_every_rank(size_t world, const std::function<void(size_t)> &work) {
  std::vector<std::exception_ptr> errors(world);
  const auto guarded = [&](size_t rank) {
    try {
      work(rank);
    } catch (...) {
      errors[rank] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(world);
  for (size_t r = 1; r < world; r++) threads.emplace_back(guarded, r);
  guarded(0);
  for (std::thread &thread : threads) thread.join();
  return errors;
}

std::string message_of(const std::exception_ptr &error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception &e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

ShardedProgram::ShardedProgram(const std::vector<std::shared_ptr<Backend>> &ranks, std::vector<ProgramSpec> specs,
                               std::vector<std::shared_ptr<Communicator>> comms)
    : comms_(std::move(comms)) {
  const size_t world = ranks.size();
  if (world == 0 || specs.size() != world || comms_.size() != world)
    throw Error("a sharded program needs one spec and one communicator per rank (" + std::to_string(world) + " ranks, " +
                std::to_string(specs.size()) + " specs, " + std::to_string(comms_.size()) + " communicators)");
  programs_.resize(world);
  const std::vector<std::exception_ptr> errors = on_every_rank(world, [&](size_t r) {
    programs_[r] = std::make_unique<Program>(ranks[r], std::move(specs[r]), comms_[r]);
  });
  for (size_t r = 0; r < world; r++) {
    if (!errors[r]) continue;
    try {
      std::rethrow_exception(errors[r]);
    } catch (const Error &e) {
      throw Error("rank " + std::to_string(r) + ": " + e.what(), e.status());
    }
  }
}

StepOutputs ShardedProgram::step(const StepRequest &request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!broken_.empty()) throw Error("the tensor-parallel group is broken since an earlier step failed (" + broken_ + ")", UD_ERR_DEVICE);
  // Every rank declares the same dims and inputs, so one check covers all, before any rank starts.
  programs_[0]->check_step(request);

  StepOutputs outputs;
  std::atomic<int> first_failed{-1};  // the rank that failed on its own; the others fail after its abort
  const std::vector<std::exception_ptr> errors = on_every_rank(programs_.size(), [&](size_t r) {
    try {
      StepOutputs mine = programs_[r]->step(request);
      if (r == 0) outputs = std::move(mine);
    } catch (...) {
      int none = -1;
      first_failed.compare_exchange_strong(none, static_cast<int>(r));
      comms_[r]->abort();  // release the ranks waiting for this one in a collective
      throw;
    }
  });
  const int first = first_failed.load();
  if (first < 0) return outputs;
  broken_ = "rank " + std::to_string(first) + ": " + message_of(errors[first]);
  try {
    std::rethrow_exception(errors[first]);
  } catch (const Error &e) {
    throw Error("rank " + std::to_string(first) + ": " + e.what(), e.status());
  }
}

MemoryUsage ShardedProgram::memory_usage() const {
  MemoryUsage total;
  for (const auto &program : programs_) {
    const MemoryUsage usage = program->memory_usage();
    total.weight += usage.weight;
    total.state += usage.state;
    total.activation += usage.activation;
    total.input += usage.input;
    total.output += usage.output;
  }
  return total;
}

GraphStats ShardedProgram::graph_stats() { return programs_[0]->graph_stats(); }

}  // namespace updraft
