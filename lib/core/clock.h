#pragma once
// Injectable clock: production code asks a Clock, tests step a ManualClock.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace cardinal::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time in milliseconds since the epoch (remote-write timestamps).
  virtual int64_t nowMillis() const = 0;
  // Monotonic time for deadlines and latencies.
  virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point steadyNow() const override { return std::chrono::steady_clock::now(); }
  static const SystemClock& instance() {
    static const SystemClock c;
    return c;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  int64_t nowMillis() const override { return ms_.load(); }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }
  void set(int64_t ms) { ms_ = ms; }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace cardinal::core
