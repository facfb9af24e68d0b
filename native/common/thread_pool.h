// A fixed pool of worker threads for data-parallel loops. The calling thread
// takes part in the work, so a pool of N threads uses N-1 helpers. Loops are
// split into contiguous ranges (cache-friendly for row-major weights).
#pragma once
#include <condition_variable>
#include <exception>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nemotron {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint ranges covering [0, n). Ranges are at
  // least `grain` long. Blocks until all are done. Exceptions from workers are
  // rethrown on the caller. Not reentrant: nested calls run serially.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(thread_index, thread_count) once on every thread of the pool.
  void run_on_all(const std::function<void(int, int)>& fn);

  static int default_threads();

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  bool busy_ = false;
  std::exception_ptr error_;
};

}  // namespace nemotron
