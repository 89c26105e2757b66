// shim_runtime.h — the emulated core: on-chip memories with poison and initialisation shadows, buffers
// and queues with their states, pipe hazards, global-memory bounds and write logs, and the launcher that
// runs a kernel's blocks in several orders and checks every rule of the chip it can.
//
// Blocks run one at a time on the calling thread. GetBlockIdx() takes no argument on the chip, so the
// launcher publishes the block being run through one thread-local pointer (the only global state of
// the shim); everything else hangs off the Device the backend owns.
#ifndef UPDRAFT_ASCENDC_SHIM_RUNTIME_H
#define UPDRAFT_ASCENDC_SHIM_RUNTIME_H

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "shim_types.h"

namespace AscendC {
namespace shim {

// On-chip memories of one core of an Atlas A2 (910B): a vector core has the Unified Buffer, a cube core
// L1, L0A, L0B and L0C.
enum class Mem : uint8_t { UB = 0, L1, L0A, L0B, L0C, COUNT };
constexpr int kMemCount = static_cast<int>(Mem::COUNT);
constexpr uint32_t kMemCapacity[kMemCount] = {192 * 1024, 512 * 1024, 64 * 1024, 64 * 1024, 128 * 1024};
inline const char *mem_name(Mem m) {
  static const char *names[] = {"UB", "L1", "L0A", "L0B", "L0C"};
  return names[static_cast<int>(m)];
}

inline Mem mem_of(TPosition pos) {
  switch (pos) {
    case TPosition::VECIN: case TPosition::VECOUT: case TPosition::VECCALC: return Mem::UB;
    case TPosition::A1: case TPosition::B1: case TPosition::C1: return Mem::L1;
    case TPosition::A2: return Mem::L0A;
    case TPosition::B2: return Mem::L0B;
    case TPosition::CO1: return Mem::L0C;
    default: violation("unsupported position", "this shim emulates VECIN/VECOUT/VECCALC/A1/B1/C1/A2/B2/CO1 only");
  }
}
inline const char *position_name(TPosition pos) {
  switch (pos) {
    case TPosition::VECIN: return "VECIN";
    case TPosition::VECOUT: return "VECOUT";
    case TPosition::VECCALC: return "VECCALC";
    case TPosition::A1: return "A1";
    case TPosition::B1: return "B1";
    case TPosition::C1: return "C1";
    case TPosition::A2: return "A2";
    case TPosition::B2: return "B2";
    case TPosition::CO1: return "CO1";
    default: return "?";
  }
}

inline const char *pipe_name(int p) {
  static const char *names[] = {"S (scalar)", "V (vector)", "M (cube)", "MTE1 (L1->L0)", "MTE2 (GM->local)", "MTE3 (UB->GM)", "FIX (L0C->GM)"};
  return p >= 0 && p < 7 ? names[p] : "?";
}

// Which pipes an event orders: SetFlag<E>/WaitFlag<E> makes `from`'s earlier work visible to `to`.
inline void event_pipes(HardEvent e, int &from, int &to) {
  switch (e) {
    case HardEvent::MTE2_MTE1: from = PIPE_MTE2; to = PIPE_MTE1; return;
    case HardEvent::MTE1_MTE2: from = PIPE_MTE1; to = PIPE_MTE2; return;
    case HardEvent::MTE1_M: from = PIPE_MTE1; to = PIPE_M; return;
    case HardEvent::M_MTE1: from = PIPE_M; to = PIPE_MTE1; return;
    case HardEvent::MTE2_V: from = PIPE_MTE2; to = PIPE_V; return;
    case HardEvent::V_MTE2: from = PIPE_V; to = PIPE_MTE2; return;
    case HardEvent::MTE3_V: from = PIPE_MTE3; to = PIPE_V; return;
    case HardEvent::V_MTE3: from = PIPE_V; to = PIPE_MTE3; return;
    case HardEvent::M_V: from = PIPE_M; to = PIPE_V; return;
    case HardEvent::V_M: from = PIPE_V; to = PIPE_M; return;
    case HardEvent::V_V: from = PIPE_V; to = PIPE_V; return;
    case HardEvent::MTE3_MTE1: from = PIPE_MTE3; to = PIPE_MTE1; return;
    case HardEvent::MTE1_MTE3: from = PIPE_MTE1; to = PIPE_MTE3; return;
    case HardEvent::MTE1_V: from = PIPE_MTE1; to = PIPE_V; return;
    case HardEvent::MTE2_M: from = PIPE_MTE2; to = PIPE_M; return;
    case HardEvent::M_MTE2: from = PIPE_M; to = PIPE_MTE2; return;
    case HardEvent::V_MTE1: from = PIPE_V; to = PIPE_MTE1; return;
    case HardEvent::M_FIX: from = PIPE_M; to = PIPE_FIX; return;
    case HardEvent::FIX_M: from = PIPE_FIX; to = PIPE_M; return;
    case HardEvent::MTE3_MTE2: from = PIPE_MTE3; to = PIPE_MTE2; return;
    case HardEvent::MTE2_MTE3: from = PIPE_MTE2; to = PIPE_MTE3; return;
    case HardEvent::S_V: from = PIPE_S; to = PIPE_V; return;
    case HardEvent::V_S: from = PIPE_V; to = PIPE_S; return;
    case HardEvent::S_MTE2: from = PIPE_S; to = PIPE_MTE2; return;
    case HardEvent::MTE2_S: from = PIPE_MTE2; to = PIPE_S; return;
    case HardEvent::S_MTE3: from = PIPE_S; to = PIPE_MTE3; return;
    case HardEvent::MTE3_S: from = PIPE_MTE3; to = PIPE_S; return;
    case HardEvent::MTE2_FIX: from = PIPE_MTE2; to = PIPE_FIX; return;
    case HardEvent::FIX_MTE2: from = PIPE_FIX; to = PIPE_MTE2; return;
    case HardEvent::FIX_S: from = PIPE_FIX; to = PIPE_S; return;
    case HardEvent::M_S: from = PIPE_M; to = PIPE_S; return;
    case HardEvent::FIX_MTE3: from = PIPE_FIX; to = PIPE_MTE3; return;
    case HardEvent::MTE1_FIX: from = PIPE_MTE1; to = PIPE_FIX; return;
    case HardEvent::FIX_MTE1: from = PIPE_FIX; to = PIPE_MTE1; return;
    case HardEvent::FIX_FIX: from = PIPE_FIX; to = PIPE_FIX; return;
    default: from = to = -1; return;
  }
}

// One buffer of a queue, or the whole of a TBuf: a range of one memory.
struct Region {
  enum class State : uint8_t { Free, Allocated, Queued };
  Mem mem = Mem::UB;
  TPosition pos = TPosition::VECCALC;
  uint32_t addr = 0;   // byte address in its memory
  uint32_t bytes = 0;
  int queue = -1;      // owning queue, or -1 for a TBuf
  State state = State::Free;
  uint32_t generation = 0;  // bumped at every AllocTensor, so stale tensors are recognised
  std::string name;
  // Pipe hazards: the last writer and whether a synchronisation has ordered it since; the pipes that
  // read since the last write and have not been ordered before a later writer.
  int writer = -1;
  bool writer_synced = true;
  uint8_t unsynced_readers = 0;
};

struct QueueState {
  TPosition pos = TPosition::VECIN;
  int depth = 1;
  std::vector<int> regions;
  std::deque<int> fifo;
  std::string name;
};

struct KernelStats {
  uint32_t peak[kMemCount] = {0, 0, 0, 0, 0};
  uint32_t max_blocks = 0;
  uint64_t launches = 0;
  int kernel_type = 0;
};

class Device;

// The state of the block being run. One instance per Device, reset between blocks; the memory arrays
// are reused and only the ranges a block claims are poisoned (cheap launches).
struct Block {
  Device *device = nullptr;
  std::string kernel;
  uint32_t idx = 0;
  uint32_t num = 0;
  int kernel_type = 0;
  std::vector<uint8_t> mem[kMemCount];
  std::vector<uint8_t> shadow[kMemCount];  // 1 = byte initialised
  uint32_t used[kMemCount] = {0, 0, 0, 0, 0};
  std::vector<Region> regions;
  std::vector<QueueState> queues;
  std::vector<std::pair<HardEvent, event_t>> flags;  // SetFlag without its WaitFlag yet
  void *pipe = nullptr;                              // the kernel's TPipe (GetTPipePtr)
  int next_event = 0;

  void reset(uint32_t block_idx, uint32_t block_num) {
    idx = block_idx;
    num = block_num;
    kernel_type = 0;
    for (auto &u : used) u = 0;
    regions.clear();
    queues.clear();
    flags.clear();
    pipe = nullptr;
    next_event = 0;
  }

  // Claims `bytes` (32-byte rounded) of the memory behind `pos`, poisoned and uninitialised.
  int claim(TPosition pos, uint32_t bytes, int queue, const std::string &name) {
    const Mem m = mem_of(pos);
    if (kernel_type == KERNEL_TYPE_AIV_ONLY && m != Mem::UB)
      violation("wrong core type", name + " is in " + mem_name(m) + ", which a vector (AIV) core does not have");
    if (kernel_type == KERNEL_TYPE_AIC_ONLY && m == Mem::UB)
      violation("wrong core type", name + " is in UB, which a cube (AIC) core does not have");
    if (bytes == 0) violation("empty buffer", name + " has 0 bytes");
    const uint32_t rounded = (bytes + 31u) / 32u * 32u;
    const int mi = static_cast<int>(m);
    if (uint64_t{used[mi]} + rounded > kMemCapacity[mi]) {
      violation(std::string(mem_name(m)) + " budget exceeded",
                name + " needs " + std::to_string(rounded) + " bytes but " + std::to_string(used[mi]) + " of the " +
                    std::to_string(kMemCapacity[mi]) + " bytes of " + mem_name(m) + " are already given out by InitBuffer");
    }
    Region r;
    r.mem = m;
    r.pos = pos;
    r.addr = used[mi];
    r.bytes = rounded;
    r.queue = queue;
    r.state = queue < 0 ? Region::State::Allocated : Region::State::Free;
    r.name = name;
    used[mi] += rounded;
    poison(r);
    regions.push_back(r);
    return static_cast<int>(regions.size()) - 1;
  }

  // NaN pattern (0xff bytes: NaN in every float width) and "never written".
  void poison(const Region &r) {
    const int mi = static_cast<int>(r.mem);
    std::memset(mem[mi].data() + r.addr, 0xff, r.bytes);
    std::memset(shadow[mi].data() + r.addr, 0, r.bytes);
  }

  uint8_t *bytes_of(const Region &r) { return mem[static_cast<int>(r.mem)].data() + r.addr; }
  uint8_t *shadow_of(const Region &r) { return shadow[static_cast<int>(r.mem)].data() + r.addr; }

  // Pipe hazard check of one access by pipe `p` to region `r`.
  void access(Region &r, int p, bool write, const char *op) {
    if (r.writer >= 0 && r.writer != p && !r.writer_synced) {
      violation("missing synchronisation",
                std::string(op) + " on pipe " + pipe_name(p) + (write ? " writes " : " reads ") + r.name +
                    ", last written by pipe " + pipe_name(r.writer) +
                    " with nothing ordering the two (EnQue/DeQue the tensor, or SetFlag/WaitFlag the pipes)");
    }
    if (write) {
      for (int q = 0; q < 7; q++) {
        if (q != p && (r.unsynced_readers & (1u << q))) {
          violation("missing synchronisation",
                    std::string(op) + " on pipe " + pipe_name(p) + " overwrites " + r.name + " while pipe " + pipe_name(q) +
                        " may still be reading it (write-after-read with nothing ordering the two)");
        }
      }
      r.writer = p;
      r.writer_synced = false;
      r.unsynced_readers = 0;
    } else if (p != PIPE_S && (p != r.writer || !r.writer_synced)) {
      // (A scalar read has completed by the time the scalar unit issues its next instruction, so it
      // leaves no read in flight for a later writer to race with.)
      r.unsynced_readers |= static_cast<uint8_t>(1u << p);
    }
  }

  // Everything `from` did so far is visible to every other pipe (conservative reading of an event).
  void sync_pipe(int from) {
    for (auto &r : regions) {
      if (from < 0 || r.writer == from) r.writer_synced = true;
      if (from < 0) r.unsynced_readers = 0;
      else r.unsynced_readers &= static_cast<uint8_t>(~(1u << from));
    }
  }
  void sync_region(Region &r) {
    r.writer_synced = true;
    r.unsynced_readers = 0;
  }
};

// The block being run on this thread (set by Device::launch). Throws outside a kernel.
inline thread_local Block *tls_block = nullptr;
inline Block &cur() {
  if (!tls_block) throw Violation("AscendC shim: a kernel API was called outside a kernel launch");
  return *tls_block;
}

[[noreturn]] inline void violation(const std::string &rule, const std::string &detail) {
  std::string where;
  if (tls_block) where = "kernel " + tls_block->kernel + " block " + std::to_string(tls_block->idx) + ": ";
  throw Violation(where + rule + ": " + detail);
}

// ------------------------------------------------------------------------------------------------
// The emulated device: global memory (registered host allocations), the launcher and statistics.
class Device {
 public:
  struct Options {
    bool check_block_orders = true;  // run forward, reversed and shuffled and compare
    uint32_t aiv_cores = 48;         // Atlas A2 (910B): 24 cube + 48 vector cores
    uint32_t aic_cores = 24;
    bool check_gm_allocations = true;  // SetGlobalBuffer must lie inside a registered allocation
  };

  Device() : Device(Options{}) {}
  explicit Device(Options options) : options_(options) {
    for (int m = 0; m < kMemCount; m++) {
      block_.mem[m].assign(kMemCapacity[m], 0xff);
      block_.shadow[m].assign(kMemCapacity[m], 0);
    }
    block_.device = this;
  }

  const Options &options() const { return options_; }
  void set_check_block_orders(bool on) { options_.check_block_orders = on; }

  // Global memory the kernels may touch: what the backend allocated.
  void add_allocation(const void *ptr, size_t bytes) { allocations_[reinterpret_cast<uintptr_t>(ptr)] = bytes; }
  void remove_allocation(const void *ptr) { allocations_.erase(reinterpret_cast<uintptr_t>(ptr)); }

  // The allocation holding [p, p + n), as (start, size); size 0 when there is none.
  std::pair<uintptr_t, size_t> allocation_of(const void *p, size_t n) const {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (!options_.check_gm_allocations) return {a, n > 0 ? n : 1};
    auto it = allocations_.upper_bound(a);
    if (it == allocations_.begin()) return {0, 0};
    --it;
    if (a + n > it->first + it->second) return {it->first, 0};
    return *it;
  }
  std::string describe(uintptr_t a) const {
    auto it = allocations_.upper_bound(a);
    if (it == allocations_.begin()) return "an address outside device memory";
    --it;
    char buf[96];
    std::snprintf(buf, sizeof buf, "byte %zu of a %zu-byte allocation", static_cast<size_t>(a - it->first), it->second);
    return buf;
  }

  // Every GM write of a kernel goes through here: logged (for conflicts and block-order comparison)
  // with the old contents kept so the launch can be undone.
  void gm_write(void *dst, const void *src, size_t n, bool atomic_add_f32 = false) {
    if (n == 0) return;
    const uintptr_t a = reinterpret_cast<uintptr_t>(dst);
    undo_.push_back({a, std::vector<uint8_t>(static_cast<uint8_t *>(dst), static_cast<uint8_t *>(dst) + n)});
    writes_.push_back({a, a + n, block_.idx, atomic_add_f32});
    if (atomic_add_f32) {
      float *d = static_cast<float *>(dst);
      const float *s = static_cast<const float *>(src);
      for (size_t i = 0; i < n / 4; i++) d[i] += s[i];
    } else {
      std::memmove(dst, src, n);
    }
  }

  // Runs `body` (one kernel invocation) for every block. Returns false with the message when a rule of
  // the chip is broken; global memory is then as before the launch.
  bool launch(const std::string &kernel, uint32_t num_blocks, const std::function<void()> &body, std::string &error) {
    KernelStats &stats = stats_[kernel];
    stats.launches++;
    launches_++;
    try {
      if (num_blocks == 0 || num_blocks > 65535)
        throw Violation("kernel " + kernel + ": blockDim " + std::to_string(num_blocks) + " is outside [1, 65535]");
      std::vector<uint32_t> order(num_blocks);
      for (uint32_t i = 0; i < num_blocks; i++) order[i] = i;
      run(kernel, order, body, stats);
      if (!options_.check_block_orders || num_blocks == 1) {
        commit();
        return true;
      }
      const Snapshot forward = snapshot();
      rollback();
      std::reverse(order.begin(), order.end());
      run(kernel, order, body, stats);
      compare(kernel, forward, "reversed");
      rollback();
      std::mt19937 rng(static_cast<uint32_t>(launches_ * 2654435761u));
      std::shuffle(order.begin(), order.end(), rng);
      run(kernel, order, body, stats);
      compare(kernel, forward, "shuffled");
      commit();
      return true;
    } catch (const Violation &v) {
      tls_block = nullptr;
      rollback();
      error = v.what();
      return false;
    }
  }

  const std::map<std::string, KernelStats> &stats() const { return stats_; }
  Block &block() { return block_; }

 private:
  struct Write {
    uintptr_t start, end;
    uint32_t block;
    bool atomic;
  };
  struct Undo {
    uintptr_t addr;
    std::vector<uint8_t> old;
  };
  struct Snapshot {
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;  // merged written ranges
    std::vector<uint8_t> bytes;
  };

  void run(const std::string &kernel, const std::vector<uint32_t> &order, const std::function<void()> &body, KernelStats &stats) {
    writes_.clear();
    const uint32_t n = static_cast<uint32_t>(order.size());
    for (uint32_t b : order) {
      block_.kernel = kernel;
      block_.reset(b, n);
      tls_block = &block_;
      body();
      end_of_block(stats);
      tls_block = nullptr;
    }
    check_conflicts(kernel);
  }

  void end_of_block(KernelStats &stats) {
    Block &b = block_;
    if (b.kernel_type == 0)
      violation("undeclared core type", "the kernel must say where it runs: KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY or KERNEL_TYPE_AIC_ONLY)");
    const uint32_t cores = b.kernel_type == KERNEL_TYPE_AIC_ONLY ? options_.aic_cores : options_.aiv_cores;
    if (b.num > cores)
      violation("too many blocks", "blockDim " + std::to_string(b.num) + " exceeds the " + std::to_string(cores) +
                                       (b.kernel_type == KERNEL_TYPE_AIC_ONLY ? " cube" : " vector") + " cores of the chip");
    for (const QueueState &q : b.queues) {
      int held = 0;
      for (int r : q.regions) held += b.regions[r].state != Region::State::Free;
      if (held || !q.fifo.empty()) {
        violation("buffer leaked", q.name + ": " + std::to_string(held) + " of its " + std::to_string(q.regions.size()) +
                                       " buffers are still allocated or queued at kernel end (every AllocTensor needs its FreeTensor)");
      }
    }
    if (!b.flags.empty()) violation("unmatched SetFlag", "a SetFlag has no WaitFlag by kernel end");
    for (int m = 0; m < kMemCount; m++) stats.peak[m] = std::max(stats.peak[m], b.used[m]);
    stats.max_blocks = std::max(stats.max_blocks, b.num);
    stats.kernel_type = b.kernel_type;
  }

  // Two blocks writing the same bytes without atomics race on the chip.
  void check_conflicts(const std::string &kernel) {
    std::vector<Write> w = writes_;
    std::sort(w.begin(), w.end(), [](const Write &a, const Write &b) { return a.start < b.start; });
    uintptr_t max_end = 0;
    uint32_t max_block = 0;
    bool max_atomic = false;
    for (const Write &x : w) {
      if (x.start < max_end && x.block != max_block && !(x.atomic && max_atomic)) {
        throw Violation("kernel " + kernel + ": cross-block write conflict: blocks " + std::to_string(max_block) + " and " +
                        std::to_string(x.block) + " both write " + describe(x.start) + " without atomics");
      }
      if (x.end > max_end) {
        max_end = x.end;
        max_block = x.block;
        max_atomic = x.atomic;
      }
    }
  }

  Snapshot snapshot() const {
    std::vector<std::pair<uintptr_t, uintptr_t>> r;
    for (const Write &x : writes_) r.push_back({x.start, x.end});
    std::sort(r.begin(), r.end());
    Snapshot s;
    for (const auto &x : r) {
      if (!s.ranges.empty() && x.first <= s.ranges.back().second) s.ranges.back().second = std::max(s.ranges.back().second, x.second);
      else s.ranges.push_back(x);
    }
    for (const auto &x : s.ranges)
      s.bytes.insert(s.bytes.end(), reinterpret_cast<const uint8_t *>(x.first), reinterpret_cast<const uint8_t *>(x.second));
    return s;
  }

  void compare(const std::string &kernel, const Snapshot &forward, const char *order_name) const {
    const Snapshot other = snapshot();
    const std::string rule = "kernel " + kernel + ": block-order dependence: ";
    if (other.ranges != forward.ranges)
      throw Violation(rule + "the bytes written in " + order_name + " block order differ from those written in forward order");
    for (size_t i = 0; i < forward.bytes.size(); i++) {
      if (forward.bytes[i] != other.bytes[i]) {
        size_t off = i;
        uintptr_t at = 0;
        for (const auto &r : forward.ranges) {
          if (off < r.second - r.first) {
            at = r.first + off;
            break;
          }
          off -= r.second - r.first;
        }
        throw Violation(rule + "the output at " + describe(at) + " differs between forward and " + order_name +
                        " block order (a block depends on another block's writes, or two blocks race)");
      }
    }
  }

  void rollback() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) std::memcpy(reinterpret_cast<void *>(it->addr), it->old.data(), it->old.size());
    undo_.clear();
    writes_.clear();
  }
  void commit() {
    undo_.clear();
    writes_.clear();
  }

  Options options_;
  Block block_;
  std::map<uintptr_t, size_t> allocations_;
  std::vector<Write> writes_;
  std::vector<Undo> undo_;
  std::map<std::string, KernelStats> stats_;
  uint64_t launches_ = 0;
};

}  // namespace shim

// --------------------------------------------------------------------------------------------------
// Core identity and kernel type.
inline int64_t GetBlockIdx() { return shim::cur().idx; }
inline int64_t GetBlockNum() { return shim::cur().num; }

}  // namespace AscendC

// Declares which cores a kernel runs on; the shim then forbids the memories the other kind has.
#define KERNEL_TASK_TYPE_DEFAULT(type) (::AscendC::shim::cur().kernel_type = (type))

#endif
