// sharded_program.h — a tensor-parallel model step: one Program per rank, each on its own backend
// instance (its own GPU), joined by a communicator group that runs their all_reduce ops.
//
// A step is still one call: it checks the request once, then runs every rank's Program::step on its
// own thread (rank 0 on the calling one) with the same request, and returns when all are done.
// Every rank computes the whole step, including the replicated LM head and the sampling, on
// identical hidden states (an all-reduce leaves the same values on every rank), so every rank keeps
// the same sampled tokens on its device for the next step's async-scheduled inputs; only rank 0's
// outputs are returned, the others' are dropped.
//
// A rank that fails mid-step aborts the group (so no rank waits forever in a collective) and the
// program stays broken: later steps fail at once, as with NCCL, whose communicators cannot be reused
// after an abort. A request that fails the checks fails before any rank starts, and breaks nothing.
#ifndef UPDRAFT_NATIVE_SHARDED_PROGRAM_H
#define UPDRAFT_NATIVE_SHARDED_PROGRAM_H

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "communicator.h"
#include "program.h"

namespace updraft {

class ShardedProgram : public Executable {
 public:
  // Builds rank r's program from specs[r] on ranks[r] with comms[r], the ranks in parallel (each
  // loads its own shard of the weights). Throws the first rank's Error.
  ShardedProgram(const std::vector<std::shared_ptr<Backend>> &ranks, std::vector<ProgramSpec> specs,
                 std::vector<std::shared_ptr<Communicator>> comms);

  StepOutputs step(const StepRequest &request) override;
  // Summed over the ranks: the device bytes the whole group holds.
  MemoryUsage memory_usage() const override;
  // Rank 0's (every rank makes the same choices).
  GraphStats graph_stats() override;

 private:
  std::vector<std::shared_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<Program>> programs_;
  std::mutex mutex_;    // steps run one at a time
  std::string broken_;  // why the group was aborted; empty while it works
};

}  // namespace updraft

#endif
