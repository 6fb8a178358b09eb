#include "server/thread_load.h"

#include <time.h>

#include <algorithm>

namespace cardinal::server {

namespace {
int64_t clockNs(clockid_t id) {
  timespec ts{};
  if (clock_gettime(id, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

int64_t threadCpuNs() { return clockNs(CLOCK_THREAD_CPUTIME_ID); }

ThreadLoad::Clocks ThreadLoad::systemClocks() {
  return {[] { return clockNs(CLOCK_MONOTONIC); }, threadCpuNs};
}

ThreadLoad::ThreadLoad(size_t threads, std::chrono::nanoseconds window, Clocks clocks)
    : size_(threads),
      window_ns_(std::max<int64_t>(1, window.count())),
      clocks_(std::move(clocks)),
      slots_(std::make_unique<Slot[]>(threads)) {}

void ThreadLoad::start(size_t i) {
  Slot& s = slots_[i];
  s.wall_start = clocks_.wall();
  s.cpu_start = clocks_.cpu();
  s.started = true;
}

bool ThreadLoad::tick(size_t i) {
  Slot& s = slots_[i];
  if (!s.started) {
    start(i);
    return false;
  }
  const int64_t wall = clocks_.wall();
  const int64_t elapsed = wall - s.wall_start;
  if (elapsed < window_ns_) return false;
  const int64_t cpu = clocks_.cpu();
  const int64_t busy = std::clamp<int64_t>(cpu - s.cpu_start, 0, elapsed);
  s.permille.store(static_cast<int>(busy * 1000 / elapsed), std::memory_order_relaxed);
  s.wall_start = wall;
  s.cpu_start = cpu;
  return true;
}

}  // namespace cardinal::server
