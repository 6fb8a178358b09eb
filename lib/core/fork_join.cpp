#include "core/fork_join.h"

#include <algorithm>
#include <chrono>

namespace cardinal::core {
namespace {

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or for `budget`; returns pred().
template <class Pred>
bool spinFor(std::chrono::microseconds budget, Pred&& pred) {
  const auto until = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpuRelax();
    }
    if (std::chrono::steady_clock::now() >= until) return pred();
  }
}

constexpr std::chrono::microseconds kCallerSpin{100};
constexpr std::chrono::microseconds kHelperSpin{30};

}  // namespace

ForkJoin::ForkJoin(size_t helpers) {
  threads_.reserve(helpers);
  for (size_t i = 0; i < helpers; ++i) threads_.emplace_back([this] { loop(); });
}

ForkJoin::~ForkJoin() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ForkJoin::run(const std::function<void()>& a, const std::function<void()>& b) {
  if (threads_.empty()) {
    a();
    b();
    return;
  }
  Task task;
  task.fn = &b;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(&task);
    queued_.store(queue_.size(), std::memory_order_release);
  }
  cv_.notify_one();
  std::exception_ptr a_error;
  try {
    a();
  } catch (...) {
    a_error = std::current_exception();
  }
  // Take b back if no helper has: then nothing else points at the task.
  bool mine = false;
  {
    std::lock_guard lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), &task);
    if (it != queue_.end()) {
      queue_.erase(it);
      queued_.store(queue_.size(), std::memory_order_release);
      mine = true;
    }
  }
  if (mine) {
    on_caller_.fetch_add(1, std::memory_order_relaxed);
    if (!a_error) return b();
    try {
      b();
    } catch (...) {
    }
    std::rethrow_exception(a_error);
  }
  auto done = [&] { return task.done.load(std::memory_order_acquire); };
  if (!spinFor(kCallerSpin, done)) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, done);
  }
  if (a_error) std::rethrow_exception(a_error);
  if (task.error) std::rethrow_exception(task.error);
}

void ForkJoin::loop() {
  for (;;) {
    Task* task;
    spinFor(kHelperSpin, [this] { return queued_.load(std::memory_order_acquire) > 0; });
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      task = queue_.front();
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
    }
    on_helper_.fetch_add(1, std::memory_order_relaxed);
    try {
      (*task->fn)();
    } catch (...) {
      task->error = std::current_exception();
    }
    task->done.store(true, std::memory_order_release);
    // Through the lock: a caller that found done unset under it is waiting
    // by the time the notification comes.
    { std::lock_guard lock(mu_); }
    done_cv_.notify_all();
  }
}

}  // namespace cardinal::core
