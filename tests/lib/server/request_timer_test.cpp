#include "server/request_timer.h"

#include <doctest/doctest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>

using namespace cardinal;
using server::RequestTimer;
using Step = RequestTimer::Step;
using namespace std::chrono_literals;

namespace {

std::map<std::string, std::string> asMap(const std::vector<core::LogField>& fields) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : fields) m.emplace(std::string(k), v);
  return m;
}

// Burns this thread's CPU for about `d` of its CPU time.
void spin(std::chrono::nanoseconds d) {
  timespec a{}, b{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  volatile uint64_t x = 0;
  do {
    for (int i = 0; i < 10000; ++i) x = x + static_cast<uint64_t>(i);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  } while ((b.tv_sec - a.tv_sec) * 1'000'000'000LL + (b.tv_nsec - a.tv_nsec) < d.count());
}

}  // namespace

TEST_CASE("RequestTimer: each step is the time since the previous lap, a repeated step adds up") {
  const auto t0 = RequestTimer::Clock::now();
  RequestTimer timer(nullptr, 0ms, t0);
  timer.lap(Step::kDecompress, t0 + 2ms);
  timer.lap(Step::kDecode, t0 + 5ms);
  timer.lap(Step::kProcess, t0 + 12ms);
  timer.lap(Step::kProcess, t0 + 13ms);
  timer.lap(Step::kUpstream, t0 + 20ms);
  CHECK(timer.stepTime(Step::kDecompress) == 2ms);
  CHECK(timer.stepTime(Step::kDecode) == 3ms);
  CHECK(timer.stepTime(Step::kProcess) == 8ms);
  CHECK(timer.stepTime(Step::kEncode) == 0ms);
  CHECK(timer.stepTime(Step::kUpstream) == 7ms);

  RequestTimer::Outcome o;
  o.status = 503;
  o.series_in = 2000;
  o.series_out = 420;
  o.bytes_in = 86092;
  o.split = "shared";
  o.thread = 1;
  const auto f = asMap(timer.fields(o, 20ms));
  CHECK(f.at("total_ms") == "20.000");
  CHECK(f.at("decompress_ms") == "2.000");
  CHECK(f.at("decode_ms") == "3.000");
  CHECK(f.at("process_ms") == "8.000");
  CHECK(f.at("encode_ms") == "0.000");
  CHECK(f.at("upstream_ms") == "7.000");
  CHECK(f.at("status") == "503");
  CHECK(f.at("series_in") == "2000");
  CHECK(f.at("series_out") == "420");
  CHECK(f.at("bytes_in") == "86092");
  CHECK(f.at("split") == "shared");
  CHECK(f.at("thread") == "1");
  // Not logging: the thread's CPU time, switches and run-queue wait were never read.
  CHECK(f.count("thread_cpu_ms") == 0);
  CHECK(f.count("involuntary_switches") == 0);
  CHECK(f.count("runqueue_wait_ms") == 0);
  CHECK(f.count("runqueue_wait_total_ms") == 0);
  CHECK(f.count("upstream_thread_cpu_ms") == 0);
}

TEST_CASE("RequestTimer: logs only a request that took at least the threshold; 0 never") {
  const auto t0 = RequestTimer::Clock::now();
  RequestTimer off(nullptr, 0ms, t0);
  CHECK_FALSE(off.logging());
  CHECK_FALSE(off.finish({}, t0 + 1h));

  RequestTimer on(nullptr, 5ms, t0);
  CHECK(on.logging());
  on.endOfWork();
  CHECK_FALSE(on.finish({}, t0 + 4ms));
  CHECK(on.finish({}, t0 + 5ms));
  CHECK(on.finish({}, t0 + 30ms));
}

TEST_CASE("RequestTimer: with the log on, the thread's CPU time up to endOfWork is reported") {
  RequestTimer timer(nullptr, 1ms);
  spin(30ms);
  timer.endOfWork();
  spin(30ms);  // after the end of the work: not counted
  const auto f = asMap(timer.fields({}, 100ms));
  REQUIRE(f.count("thread_cpu_ms") == 1);
  REQUIRE(f.count("involuntary_switches") == 1);
  const double cpu = std::stod(f.at("thread_cpu_ms"));
  CHECK(cpu >= 30.0);
  CHECK(cpu < 55.0);
  CHECK(std::stol(f.at("involuntary_switches")) >= 0);
}

TEST_CASE("RequestTimer: the run-queue wait is the time the thread was ready but another task had its CPU") {
  if (!std::ifstream("/proc/thread-self/schedstat")) {
    MESSAGE("no /proc/thread-self/schedstat here: the run-queue fields are left out, nothing to check");
    return;
  }
  // This thread and a busy one on one CPU: the scheduler shares it, so while
  // this one burns 30 ms of CPU it also waits on the run queue for a while.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  cpu_set_t saved;
  REQUIRE(sched_getaffinity(0, sizeof(saved), &saved) == 0);
  REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
  std::atomic<bool> stop{false};
  std::thread rival([&] {
    sched_setaffinity(0, sizeof(one), &one);
    volatile uint64_t x = 0;
    while (!stop.load(std::memory_order_relaxed)) x = x + 1;
  });
  std::this_thread::sleep_for(5ms);  // the rival is running

  RequestTimer timer(nullptr, 1ms);
  spin(30ms);
  timer.endOfWork();
  stop = true;
  rival.join();
  sched_setaffinity(0, sizeof(saved), &saved);
  spin(5ms);
  REQUIRE(timer.finish({}));  // on this thread: the wait to the answer too
  const auto f = asMap(timer.fields({}, 100ms));
  REQUIRE(f.count("runqueue_wait_ms") == 1);
  REQUIRE(f.count("runqueue_wait_total_ms") == 1);
  const double work = std::stod(f.at("runqueue_wait_ms"));
  CHECK(work >= 5.0);  // a fair share gives it about as long as it ran: 30 ms
  CHECK(std::stod(f.at("runqueue_wait_total_ms")) >= work);

  // Alone on its CPUs, a thread hardly waits.
  RequestTimer alone(nullptr, 1ms);
  spin(20ms);
  alone.endOfWork();
  const auto g = asMap(alone.fields({}, 100ms));
  REQUIRE(g.count("runqueue_wait_ms") == 1);
  CHECK(std::stod(g.at("runqueue_wait_ms")) < work);
}

TEST_CASE("RequestTimer: an answer given on another thread leaves the wait to the answer out") {
  RequestTimer timer(nullptr, 1ms);
  timer.endOfWork();
  bool logged = false;
  std::thread([&] { logged = timer.finish({}, RequestTimer::Clock::now() + 10ms); }).join();
  CHECK(logged);
  const auto f = asMap(timer.fields({}, 100ms));
  CHECK(f.count("runqueue_wait_total_ms") == 0);
  CHECK(f.count("upstream_thread_cpu_ms") == 0);
}

TEST_CASE("RequestTimer: the thread's CPU time from the end of the work to the answer is what it ran meanwhile") {
  RequestTimer timer(nullptr, 1ms);
  spin(5ms);
  timer.endOfWork();
  spin(30ms);  // other requests' work while this one waits for its upstream
  REQUIRE(timer.finish({}));
  const auto f = asMap(timer.fields({}, 100ms));
  REQUIRE(f.count("upstream_thread_cpu_ms") == 1);
  const double meanwhile = std::stod(f.at("upstream_thread_cpu_ms"));
  CHECK(meanwhile >= 30.0);
  CHECK(meanwhile < 55.0);
  CHECK(std::stod(f.at("thread_cpu_ms")) < 30.0);  // the work before: about 5 ms

  // An answer that came while the thread had nothing else to do.
  RequestTimer idle(nullptr, 1ms);
  idle.endOfWork();
  std::this_thread::sleep_for(30ms);
  REQUIRE(idle.finish({}));
  CHECK(std::stod(asMap(idle.fields({}, 100ms)).at("upstream_thread_cpu_ms")) < 10.0);
}
