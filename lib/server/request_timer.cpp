#include "server/request_timer.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "server/thread_load.h"

namespace cardinal::server {
namespace {

int64_t involuntarySwitches() {
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  return ru.ru_nivcsw;
}

// The time this thread has waited on a run queue, in ns (the second field of
// /proc/thread-self/schedstat), or -1. The file is opened once per thread
// and read again with pread (a proc file is regenerated at offset 0).
int64_t runqueueWaitNs() {
  struct File {
    int fd = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    ~File() {
      if (fd >= 0) ::close(fd);
    }
  };
  thread_local File f;
  if (f.fd < 0) return -1;
  char buf[96];
  const ssize_t n = ::pread(f.fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return -1;
  buf[n] = 0;
  unsigned long long on_cpu = 0, waited = 0;
  if (std::sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2) return -1;
  return static_cast<int64_t>(waited);
}

std::string ms(double millis) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", millis);
  return buf;
}
std::string ms(RequestTimer::Clock::duration d) { return ms(std::chrono::duration<double, std::milli>(d).count()); }

// The log's field per step: its histogram label and "_ms" (built once; log keys are views).
const std::array<std::string, static_cast<size_t>(RequestTimer::Step::kCount)>& stepFields() {
  static const auto fields = [] {
    std::array<std::string, static_cast<size_t>(RequestTimer::Step::kCount)> f;
    for (size_t i = 0; i < f.size(); ++i) f[i] = std::string(ProxyMetrics::kWriteStepNames[i]) + "_ms";
    return f;
  }();
  return fields;
}

}  // namespace

RequestTimer::RequestTimer(ProxyMetrics* metrics, std::chrono::milliseconds slow, Clock::time_point start)
    : metrics_(metrics), slow_(slow), start_(start), last_(start) {
  if (logging()) {
    cpu_start_ns_ = threadCpuNs();
    switches_start_ = involuntarySwitches();
    runqueue_start_ns_ = runqueueWaitNs();
    thread_ = std::this_thread::get_id();
  }
}

void RequestTimer::lap(Step step, Clock::time_point now) {
  const auto d = now - last_;
  steps_[static_cast<size_t>(step)] += d;
  if (metrics_) metrics_->observeStep(step, std::chrono::duration<double>(d).count());
  last_ = now;
}

void RequestTimer::endOfWork() {
  if (!logging()) return;
  cpu_ns_ = threadCpuNs() - cpu_start_ns_;
  switches_ = involuntarySwitches() - switches_start_;
  runqueue_ns_ = runqueueSince();
}

int64_t RequestTimer::runqueueSince() const {
  if (runqueue_start_ns_ < 0 || std::this_thread::get_id() != thread_) return -1;
  const int64_t now = runqueueWaitNs();
  return now < runqueue_start_ns_ ? -1 : now - runqueue_start_ns_;
}

std::vector<core::LogField> RequestTimer::fields(const Outcome& o, Clock::duration total) const {
  std::vector<core::LogField> f;
  f.reserve(16);
  f.emplace_back("total_ms", ms(total));
  for (size_t i = 0; i < steps_.size(); ++i) f.emplace_back(stepFields()[i], ms(steps_[i]));
  using ns = std::chrono::nanoseconds;
  if (cpu_ns_ >= 0) {
    f.emplace_back("thread_cpu_ms", ms(ns(cpu_ns_)));
    f.emplace_back("involuntary_switches", std::to_string(switches_));
  }
  if (runqueue_ns_ >= 0) f.emplace_back("runqueue_wait_ms", ms(ns(runqueue_ns_)));
  if (upstream_cpu_ns_ >= 0) f.emplace_back("upstream_thread_cpu_ms", ms(ns(upstream_cpu_ns_)));
  if (runqueue_total_ns_ >= 0) f.emplace_back("runqueue_wait_total_ms", ms(ns(runqueue_total_ns_)));
  if (o.answer_wait_ns >= 0) f.emplace_back("answer_wait_ms", ms(ns(o.answer_wait_ns)));
  if (o.request_wait_ns >= 0) f.emplace_back("request_wait_ms", ms(ns(o.request_wait_ns)));
  f.emplace_back("status", std::to_string(o.status));
  f.emplace_back("series_in", std::to_string(o.series_in));
  f.emplace_back("series_out", std::to_string(o.series_out));
  f.emplace_back("bytes_in", std::to_string(o.bytes_in));
  f.emplace_back("split", std::string(o.split));
  f.emplace_back("thread", std::to_string(o.thread));
  if (o.processing_others >= 0) f.emplace_back("processing_others", std::to_string(o.processing_others));
  if (o.helper_busy_permille >= 0) f.emplace_back("helper_busy_permille", std::to_string(o.helper_busy_permille));
  return f;
}

bool RequestTimer::finish(const Outcome& outcome, Clock::time_point now) {
  if (!logging()) return false;
  const auto total = now - start_;
  if (total < slow_) return false;
  // Read where the start was read (the answer of a pool thread's request comes on that thread).
  if (std::this_thread::get_id() == thread_) {
    runqueue_total_ns_ = runqueueSince();
    if (cpu_ns_ >= 0) upstream_cpu_ns_ = std::max<int64_t>(0, threadCpuNs() - cpu_start_ns_ - cpu_ns_);
  }
  const auto f = fields(outcome, total);
  core::logFields(core::LogLevel::kWarn, "slow write request", f);
  return true;
}

}  // namespace cardinal::server
