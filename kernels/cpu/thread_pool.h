// thread_pool.h — a small persistent pool of worker threads for the CPU kernels' parallel loops.
//
// Owned by one CPU backend instance (no process-wide pool), so two devices opened with different
// thread counts do not share or fight over workers. The calling thread takes part in every loop,
// so a pool of N threads starts N-1 workers.
//
// A model step is hundreds of short loops, so hand-offs must be cheap: workers spin for a few tens
// of microseconds after each loop before sleeping on a condition variable, and the caller spins
// likewise while waiting for the last chunk.
#ifndef UPDRAFT_CPU_THREAD_POOL_H
#define UPDRAFT_CPU_THREAD_POOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace updraft::cpu {

class ThreadPool {
 public:
  // num_threads <= 0: one per hardware thread.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n), each at most `grain` long, spread
  // over every thread; returns when all chunks are done. Not reentrant: fn must not call back in.
  // An exception thrown by fn (e.g. std::bad_alloc) stops the remaining chunks and is rethrown here,
  // on the calling thread, instead of terminating a worker.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> &fn);

 private:
  void worker_loop();
  void run_chunks();

  int num_threads_;
  std::vector<std::thread> workers_;

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::atomic<uint64_t> generation_{0};  // bumped (release) once a loop is published
  bool stopping_ = false;                 // guarded by mutex_
  std::atomic<int> busy_workers_{0};      // workers still inside the current loop

  // The current loop, written before generation_ is bumped.
  const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_chunk_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // first exception thrown by fn in the current loop
};

}  // namespace updraft::cpu

#endif
