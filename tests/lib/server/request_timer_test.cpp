#include "server/request_timer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>

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
  // Not logging: the thread's CPU time and switches were never read.
  CHECK(f.count("thread_cpu_ms") == 0);
  CHECK(f.count("involuntary_switches") == 0);
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
