#include "server/thread_load.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using namespace cardinal;
using server::ThreadLoad;
using namespace std::chrono_literals;

namespace {
// Hand-stepped clocks, one CPU clock per thread index (the test plays every thread itself).
struct FakeClocks {
  int64_t wall = 0;
  int64_t cpu[2] = {0, 0};
  size_t current = 0;  // whose CPU clock cpu() reads
  int cpu_reads = 0;
  ThreadLoad::Clocks clocks() {
    return {[this] { return wall; },
            [this] {
              ++cpu_reads;
              return cpu[current];
            }};
  }
  // Thread `t` runs for `busy_ms` of the next `wall_ms` milliseconds.
  void advance(size_t t, int64_t wall_ms, int64_t busy_ms) {
    wall += wall_ms * 1'000'000;
    cpu[t] += busy_ms * 1'000'000;
  }
};
}  // namespace

TEST_CASE("ThreadLoad: a thread's busy share over its last closed window, in permille") {
  FakeClocks c;
  ThreadLoad load(2, 50ms, c.clocks());
  REQUIRE(load.size() == 2);
  CHECK(load.busyPermille(0) == ThreadLoad::kUnknown);
  CHECK(load.busyPermille(1) == ThreadLoad::kUnknown);
  c.current = 0;
  load.start(0);
  c.current = 1;
  load.start(1);

  SUBCASE("a window closes at the first tick at least `window` after it opened") {
    c.current = 0;
    c.advance(0, 30, 30);
    CHECK_FALSE(load.tick(0));  // 30 ms: still open
    CHECK(load.busyPermille(0) == ThreadLoad::kUnknown);
    c.advance(0, 30, 6);
    CHECK(load.tick(0));  // 60 ms, 36 of them busy
    CHECK(load.busyPermille(0) == 600);
    CHECK(load.busyPermille(1) == ThreadLoad::kUnknown);  // each thread its own
    // The next window starts where that one closed.
    c.advance(0, 100, 10);
    CHECK(load.tick(0));
    CHECK(load.busyPermille(0) == 100);
  }

  SUBCASE("the CPU clock is read once per window, not at every tick") {
    c.current = 1;
    const int reads = c.cpu_reads;
    for (int i = 0; i < 9; ++i) {
      c.advance(1, 5, 4);
      CHECK_FALSE(load.tick(1));
    }
    CHECK(c.cpu_reads == reads);
    c.advance(1, 5, 4);
    CHECK(load.tick(1));
    CHECK(c.cpu_reads == reads + 1);
    CHECK(load.busyPermille(1) == 800);
  }

  SUBCASE("an idle stretch is one long, idle window; the share is capped at 1000") {
    c.current = 0;
    c.advance(0, 2000, 20);
    CHECK(load.tick(0));
    CHECK(load.busyPermille(0) == 10);
    // A CPU clock ahead of the wall clock (granularity): busy all the time, not more.
    c.advance(0, 50, 55);
    CHECK(load.tick(0));
    CHECK(load.busyPermille(0) == 1000);
  }

  SUBCASE("a thread that never called start() opens its window at its first tick") {
    FakeClocks d;
    ThreadLoad late(1, 50ms, d.clocks());
    CHECK_FALSE(late.tick(0));
    d.advance(0, 50, 25);
    CHECK(late.tick(0));
    CHECK(late.busyPermille(0) == 500);
  }
}

TEST_CASE("ThreadLoad: the system clocks measure the calling thread's own CPU time") {
  ThreadLoad::Clocks clocks = ThreadLoad::systemClocks();
  // Another thread spinning for 10 ms of its CPU time does not count for this one.
  const int64_t cpu0 = clocks.cpu();
  const int64_t wall0 = clocks.wall();
  int64_t other_cpu = 0;
  std::thread spinner([&] {
    const int64_t start = clocks.cpu();
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (clocks.cpu() - start < 10'000'000 && std::chrono::steady_clock::now() < give_up) {
    }
    other_cpu = clocks.cpu() - start;
  });
  spinner.join();
  const int64_t cpu1 = clocks.cpu();
  const int64_t wall1 = clocks.wall();
  CHECK(other_cpu >= 10'000'000);
  CHECK(cpu1 - cpu0 < 5'000'000);  // this thread waited in join()
  CHECK(wall1 - wall0 >= 10'000'000);
}
