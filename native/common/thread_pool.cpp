#include "thread_pool.h"

#include <algorithm>

namespace nemotron {

ThreadPool::ThreadPool(int threads) {
  int helpers = std::max(1, threads) - 1;
  workers_.reserve(helpers);
  for (int i = 0; i < helpers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int, int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    std::exception_ptr err;
    try {
      (*job)(index, size());
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (busy_ || workers_.empty()) {
      // Nested use (or a single-thread pool): run serially on this thread.
      lock.unlock();
      fn(0, 1);
      return;
    }
    busy_ = true;
    job_ = &fn;
    pending_ = static_cast<int>(workers_.size());
    error_ = nullptr;
    ++generation_;
  }
  start_cv_.notify_all();
  std::exception_ptr err;
  try {
    fn(0, size());
  } catch (...) {
    err = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  busy_ = false;
  if (!err) err = error_;
  error_ = nullptr;
  lock.unlock();
  if (err) std::rethrow_exception(err);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_parts = (n + grain - 1) / grain;
  if (max_parts <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  run_on_all([&](int t, int count) {
    int64_t parts = std::min<int64_t>(count, max_parts);
    if (t >= parts) return;
    int64_t begin = n * t / parts, end = n * (t + 1) / parts;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace nemotron
