// emu_cuda.h — just enough of CUDA to run kernels/cuda/sample.cu's device code on the host.
//
// Each thread of a block is a fiber (ucontext) and one block runs at a time. __syncthreads is a block
// barrier and every warp intrinsic (shuffles, ballot) a 32-lane barrier with data exchange, so the
// kernel runs with the real collective semantics; the emulator aborts with a message when threads of
// a block meet different __syncthreads (or lanes of a warp different collectives, or a partial mask),
// which on a GPU is undefined behaviour or a hang. Shared-memory atomics need no atomicity here (the
// fibers switch only at barriers). Arithmetic is the host's IEEE f32 (build with -ffp-contract=off);
// expf / logf are the host's, so results may differ from a GPU's in the last ulp, never in logic.
#ifndef UPDRAFT_DEV_SAMPLE_EMU_CUDA_H
#define UPDRAFT_DEV_SAMPLE_EMU_CUDA_H

#include <setjmp.h>
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

using std::isnan;

namespace emu {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

enum WaitKind { kNone, kBlockBarrier, kWarpBarrier };

struct Fiber {
  ucontext_t context;  // the first entry only; later switches use _setjmp / _longjmp (no syscalls)
  jmp_buf resume;
  bool started = false;
  void *stack = nullptr;
  Dim3 thread_idx;
  bool done = false;
  WaitKind waiting = kNone;
  uint64_t wait_generation = 0;
};

struct Warp {
  int arrived = 0;
  uint64_t generation = 0;
  int site = 0;
  uint64_t slots[2][32];
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  ucontext_t scheduler;
  jmp_buf scheduler_resume;
  int barrier_arrived = 0;
  uint64_t barrier_generation = 0;
  int barrier_site = 0;
  uint64_t switches = 0;
};

inline Block *g_block = nullptr;
inline Fiber *g_current = nullptr;
inline Dim3 g_block_idx;
inline const std::function<void()> *g_body = nullptr;
inline uint64_t g_shuffle_seed = std::getenv("EMU_SHUFFLE") ? std::strtoull(std::getenv("EMU_SHUFFLE"), nullptr, 10) : 0;

[[noreturn]] inline void fail(const char *what, int a, int b) {
  std::fprintf(stderr, "emulator: %s (%d vs %d), thread %u of block %u\n", what, a, b, g_current->thread_idx.x,
               g_block_idx.x);
  std::abort();
}

inline void wait(WaitKind kind, uint64_t generation) {
  g_current->waiting = kind;
  g_current->wait_generation = generation;
  g_block->switches++;
  if (_setjmp(g_current->resume) == 0) _longjmp(g_block->scheduler_resume, 1);
}

inline void syncthreads(int site) {
  Block &b = *g_block;
  if (b.barrier_arrived == 0) b.barrier_site = site;
  else if (b.barrier_site != site) fail("threads of a block meet different __syncthreads (source lines)", b.barrier_site, site);
  if (++b.barrier_arrived == static_cast<int>(b.fibers.size())) {
    b.barrier_arrived = 0;
    b.barrier_generation++;
    return;
  }
  wait(kBlockBarrier, b.barrier_generation);
}

// Every lane of the warp contributes `mine`; returns the 32 contributions once all have arrived.
inline const uint64_t *warp_exchange(uint32_t mask, uint64_t mine, int site) {
  if (mask != 0xffffffffu) fail("partial warp mask", static_cast<int>(mask), -1);
  const unsigned tid = g_current->thread_idx.x;
  Warp &w = g_block->warps[tid / 32];
  const int buffer = static_cast<int>(w.generation & 1);
  if (w.arrived == 0) w.site = site;
  else if (w.site != site) fail("lanes of a warp meet different collectives (source lines)", w.site, site);
  w.slots[buffer][tid % 32] = mine;
  if (++w.arrived == 32) {
    w.arrived = 0;
    w.generation++;
  } else {
    wait(kWarpBarrier, w.generation);
  }
  return w.slots[buffer];
}

template <typename T> uint64_t bits_of(T v) {
  static_assert(sizeof(T) <= 8, "at most 64 bits");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T> T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

inline unsigned lane() { return g_current->thread_idx.x % 32; }

template <typename T> T shfl(uint32_t mask, T v, int src, int site) {
  const uint64_t *all = warp_exchange(mask, bits_of(v), site);
  return from_bits<T>(all[src]);
}
template <typename T> T shfl_xor(uint32_t mask, T v, int lane_mask, int site) {
  return shfl(mask, v, static_cast<int>(lane() ^ static_cast<unsigned>(lane_mask)) & 31, site);
}
template <typename T> T shfl_down(uint32_t mask, T v, unsigned delta, int site) {
  const unsigned src = lane() + delta;
  const uint64_t *all = warp_exchange(mask, bits_of(v), site);
  return src < 32 ? from_bits<T>(all[src]) : v;
}
template <typename T> T shfl_up(uint32_t mask, T v, unsigned delta, int site) {
  const int src = static_cast<int>(lane()) - static_cast<int>(delta);
  const uint64_t *all = warp_exchange(mask, bits_of(v), site);
  return src >= 0 ? from_bits<T>(all[src]) : v;
}
inline unsigned ballot(uint32_t mask, bool predicate, int site) {
  const uint64_t *all = warp_exchange(mask, predicate ? 1 : 0, site);
  unsigned result = 0;
  for (int i = 0; i < 32; i++) result |= static_cast<unsigned>(all[i] & 1) << i;
  return result;
}

inline void trampoline() {
  (*g_body)();
  g_current->done = true;
  _longjmp(g_block->scheduler_resume, 1);
}

// getcontext returns twice in principle; kept in its own function so nothing else is affected.
__attribute__((noinline)) inline void make_fiber(Fiber *f, void *stack, size_t stack_bytes) {
  f->stack = stack;
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = f->stack;
  f->context.uc_stack.ss_size = stack_bytes;
  f->context.uc_link = nullptr;
  makecontext(&f->context, trampoline, 0);
}

// Runs fiber f until it waits or finishes. The _setjmp sits alone in this function, so no local of
// the caller lives across the jump back.
__attribute__((noinline)) inline void run_fiber(Block *block, Fiber *f) {
  g_current = f;
  if (_setjmp(block->scheduler_resume) != 0) return;
  if (!f->started) {
    f->started = true;
    swapcontext(&block->scheduler, &f->context);
  } else {
    _longjmp(f->resume, 1);
  }
}

// Runs body once per thread of each block, block by block. Returns the number of fiber switches.
inline uint64_t launch(unsigned grid, unsigned threads, const std::function<void()> &body) {
  constexpr size_t kStack = 256 * 1024;
  static std::vector<void *> stacks;  // reused by every launch; untouched pages stay uncommitted
  while (stacks.size() < threads) stacks.push_back(std::malloc(kStack));
  uint64_t switches = 0;
  for (unsigned b = 0; b < grid; b++) {
    Block block;
    block.fibers.resize(threads);
    block.warps.resize((threads + 31) / 32);
    g_block = &block;
    g_block_idx.x = b;
    g_body = &body;
    for (unsigned t = 0; t < threads; t++) {
      block.fibers[t].thread_idx.x = t;
      make_fiber(&block.fibers[t], stacks[t], kStack);
    }
    size_t remaining = threads;
    std::vector<unsigned> order(threads);
    for (unsigned t = 0; t < threads; t++) order[t] = t;
    while (remaining > 0) {
      bool progress = false;
      // EMU_SHUFFLE=<seed>: resume the waiting threads in a new random order every sweep, so a missing
      // barrier between a write and another thread's read shows up.
      if (g_shuffle_seed != 0) {
        for (unsigned t = threads - 1; t > 0; t--) {
          g_shuffle_seed = g_shuffle_seed * 6364136223846793005ull + 1442695040888963407ull;
          std::swap(order[t], order[(g_shuffle_seed >> 33) % (t + 1)]);
        }
      }
      for (unsigned t : order) {
        Fiber &f = block.fibers[t];
        if (f.done) continue;
        if (f.waiting == kBlockBarrier && f.wait_generation == block.barrier_generation) continue;
        if (f.waiting == kWarpBarrier && f.wait_generation == block.warps[f.thread_idx.x / 32].generation) continue;
        f.waiting = kNone;
        progress = true;
        run_fiber(&block, &f);
        if (f.done) remaining--;
      }
      if (!progress) {
        std::fprintf(stderr, "emulator: deadlock in block %u (a barrier some threads never reach)\n", b);
        std::abort();
      }
    }
    switches += block.switches;
    g_block = nullptr;
  }
  return switches;
}

}  // namespace emu

#define threadIdx (emu::g_current->thread_idx)
#define blockIdx (emu::g_block_idx)
#define __syncthreads() emu::syncthreads(__LINE__)
#define __shfl_sync(mask, v, src) emu::shfl(mask, v, src, __LINE__)
#define __shfl_xor_sync(mask, v, m) emu::shfl_xor(mask, v, m, __LINE__)
#define __shfl_down_sync(mask, v, d) emu::shfl_down(mask, v, d, __LINE__)
#define __shfl_up_sync(mask, v, d) emu::shfl_up(mask, v, d, __LINE__)
#define __ballot_sync(mask, p) emu::ballot(mask, p, __LINE__)

struct float4 {
  float x, y, z, w;
};

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline unsigned long long __float2ull_rn(float x) { return static_cast<unsigned long long>(std::nearbyint(x)); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline unsigned __float_as_uint(float v) { return emu::from_bits<unsigned>(emu::bits_of(v)); }
inline float __uint_as_float(unsigned v) { return emu::from_bits<float>(v); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(unsigned v) { return __builtin_ffs(static_cast<int>(v)); }
template <typename T> T __ldg(const T *p) { return *p; }
// A GPU faults on a misaligned vector load; so does the emulator.
inline float4 __ldg(const float4 *p) {
  if (reinterpret_cast<uintptr_t>(p) & 15) emu::fail("misaligned 16-byte load", static_cast<int>(reinterpret_cast<uintptr_t>(p) & 15), 0);
  return *p;
}
template <typename T> T atomicAdd(T *p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}

#endif
