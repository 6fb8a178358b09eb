#pragma once
// How busy each I/O thread was lately: the share of wall-clock time it spent
// on a CPU over its last window, measured by the thread itself.
//
// A request is split between its thread and a helper (request_split.h) when
// no other request is being processed, or when the helper thread has time to
// spare: at half load, where a second request is often being processed on the
// helper's thread, its part waits only for that request's end (a small gain
// in the tail: BENCHMARKS.md, sessions 17 and 18); at full load, where every
// thread is busy all the time, a split only adds work.
//
// Thread i calls tick(i) at the start of each request (and start(i) once,
// when it starts running). A tick closes the thread's window when it is at
// least `window` long: its busy share is the thread's CPU time over the
// window's wall time, published in permille for any thread to read. Reading
// the thread's CPU clock is a system call, made once per window; a tick that
// closes nothing reads the monotonic clock only. Only thread i writes its
// slot; busyPermille() may be called from any thread.
//
// Between ticks the share is that of the last closed window: a thread that
// is processing a request ticked when the request started, so its share is
// at most about one window old then.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace cardinal::server {

// The calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID; 0 if the
// kernel refused). A system call, not a vDSO read.
int64_t threadCpuNs();

class ThreadLoad {
 public:
  // Nanoseconds: the monotonic clock, and the calling thread's CPU time.
  struct Clocks {
    std::function<int64_t()> wall;
    std::function<int64_t()> cpu;
  };
  static Clocks systemClocks();  // CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID

  // What busyPermille() says of a thread before its first window closed: busy
  // (nothing is known about it yet).
  static constexpr int kUnknown = 1000;
  static constexpr std::chrono::milliseconds kDefaultWindow{50};

  explicit ThreadLoad(size_t threads, std::chrono::nanoseconds window = kDefaultWindow,
                      Clocks clocks = systemClocks());

  size_t size() const { return size_; }
  // Thread i, when it starts: opens its first window.
  void start(size_t i);
  // Thread i, at the start of a request: closes its window when it is at least
  // `window` long (and opens the next). True when it closed one.
  bool tick(size_t i);
  // Thread i's busy share over its last closed window, 0 to 1000 (a thread on
  // a CPU all the time is 1000; CPU time over wall time is capped there).
  int busyPermille(size_t i) const { return slots_[i].permille.load(std::memory_order_relaxed); }

 private:
  // One cache line per thread: a slot is written by its thread only.
  struct alignas(64) Slot {
    std::atomic<int> permille{kUnknown};
    bool started = false;
    int64_t wall_start = 0;
    int64_t cpu_start = 0;
  };
  size_t size_;
  int64_t window_ns_;
  Clocks clocks_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace cardinal::server
