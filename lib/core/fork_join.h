#pragma once
// Two pieces of work at once: run(a, b) runs a on the calling thread and b on
// a helper thread when one is free, and returns when both are done. When no
// helper has picked b up by the time a is done, the caller runs b itself, so
// a caller never waits for a busy pool (and callers that are themselves pool
// threads of another kind, like the I/O threads, cannot deadlock on it).
// Both pieces always run; an exception from either is rethrown in the caller
// once both are done (a's, when both threw).
// Waking a sleeping thread costs tens of microseconds, as much as the work
// saved on a small request: the caller spins briefly for b's end, and a
// helper that finished a task spins briefly for the next one (a request forks
// twice) before they sleep.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cardinal::core {

class ForkJoin {
 public:
  // `helpers` threads (0: run() runs both pieces on the caller).
  explicit ForkJoin(size_t helpers);
  ~ForkJoin();
  ForkJoin(const ForkJoin&) = delete;
  ForkJoin& operator=(const ForkJoin&) = delete;

  void run(const std::function<void()>& a, const std::function<void()>& b);

  size_t helpers() const { return threads_.size(); }
  // b run by a helper / by the caller (since start).
  uint64_t ranOnHelper() const { return on_helper_.load(std::memory_order_relaxed); }
  uint64_t ranOnCaller() const { return on_caller_.load(std::memory_order_relaxed); }

 private:
  struct Task {
    const std::function<void()>* fn = nullptr;
    std::atomic<bool> done{false};  // a helper touches no task after setting it
    std::exception_ptr error;
  };
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;       // a task was queued, or stop
  std::condition_variable done_cv_;  // a helper finished a task
  std::deque<Task*> queue_;  // tasks no helper has taken yet (under mu_)
  std::atomic<size_t> queued_{0};  // queue_.size(), read without the lock by spinning helpers
  bool stop_ = false;
  std::atomic<uint64_t> on_helper_{0}, on_caller_{0};
  std::vector<std::thread> threads_;
};

}  // namespace cardinal::core
