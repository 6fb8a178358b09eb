#pragma once
// Where one remote-write request's time went: each step (decompress, decode,
// process, encode, upstream) goes into cardinal_write_step_duration_seconds,
// and with a threshold (--log.slow-requests) a request slower than it, from
// the start of its handling to its answer, is logged with its steps and with
// what its I/O thread did meanwhile:
//   thread_cpu_ms         CPU time of the request's thread from the start to
//                         the end of its own work (before the upstream exchange);
//                         well above the steps' sum, the thread was slowed
//                         (by the kernel's work in its name, or by a CPU the
//                         hypervisor took away, which the guest still counts)
//   involuntary_switches  times that thread was put aside while it could run
//                         (another task took its CPU)
//   runqueue_wait_ms      time that thread spent ready to run but waiting for
//                         a CPU (the kernel ran something else on both), to
//                         the end of its own work, from /proc/thread-self/schedstat
//   runqueue_wait_total_ms  the same to the answer: while the request waited
//                         for the upstream, the thread ran other requests' work
//                         and its answer's callback, so any of its waits for a
//                         CPU meanwhile could hold the answer back (an upper
//                         bound of what they cost this request)
//   upstream_thread_cpu_ms  CPU time of that thread from the end of its work on
//                         the request to the answer: what it ran meanwhile
//                         (other requests' work, a split request's parts it
//                         helped with, this answer's callback); near the
//                         upstream step, the answer waited for the thread;
//                         near 0, for the upstream or for a CPU
//   request_wait_ms       how long the request's first bytes had lain in its
//                         socket when its I/O thread came to read them (kernel
//                         receive timestamp): time before the start counted in
//                         total_ms, spent waiting for the thread (another
//                         connection's request on it) or for a CPU; plain HTTP
//   processing_others, helper_busy_permille
//                         what the decision to split the request or not saw
//                         (request_split.h): other requests being processed at
//                         the time, and how busy the helper's thread was over
//                         its last window (thread_load.h), in permille
//   answer_wait_ms        how long the upstream's answer had been in the
//                         socket (kernel receive timestamp) when the thread
//                         read it: the part of the upstream step spent
//                         waiting for this thread; plain-TCP upstreams only
// A split request's helper thread (request_split.h) is not in these.
// They are read only when the log is on (a clock_gettime, a getrusage and a
// pread at the start and at the end of the work; at the answer of a request
// slower than the threshold, a pread and a clock_gettime); off,
// a timer costs the steps' clock reads it always had. The run-queue fields are
// left out where the kernel keeps no schedstat; those read at the answer,
// when it came on another thread (outside the I/O pool).

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/log.h"
#include "server/metrics.h"

namespace cardinal::server {

class RequestTimer {
 public:
  using Step = ProxyMetrics::WriteStep;
  using Clock = std::chrono::steady_clock;

  // slow: log requests that took at least this long; 0: never.
  RequestTimer(ProxyMetrics* metrics, std::chrono::milliseconds slow, Clock::time_point start = Clock::now());

  // Ends `step` now (it began where the previous step ended, or at the start).
  void lap(Step step, Clock::time_point now = Clock::now());
  // The end of this thread's work on the request (call on that thread).
  void endOfWork();

  // What a slow-request log line says about a request, beside the timings.
  struct Outcome {
    int status = 0;
    size_t series_in = 0;
    size_t series_out = 0;
    size_t bytes_in = 0;  // compressed body
    std::string_view split = "no";  // no, shared, alone or in_order
    size_t thread = 0;
    int64_t answer_wait_ns = -1;  // upstream::DeliveryResult::answer_wait; -1: not measured
    // What the split decision saw (request_split.h, helperFree): other requests
    // being processed when this one was decompressed, and the busy share of the
    // thread that would help (thread_load.h); -1: not looked at (no pool, a 2.0
    // request or upstream, or a request under --web.split-request-bytes).
    int processing_others = -1;
    int helper_busy_permille = -1;
    int64_t request_wait_ns = -1;  // requestWaitNs() (http_server.h); -1: not measured
  };
  // Logs the request (warn) if it took at least the threshold, counted to
  // `now`; true if it did. Call it where the answer is given.
  bool finish(const Outcome& outcome, Clock::time_point now = Clock::now());
  // The log line's fields for a request that took `total`.
  std::vector<core::LogField> fields(const Outcome& outcome, Clock::duration total) const;

  bool logging() const { return slow_.count() > 0; }
  Clock::duration stepTime(Step step) const { return steps_[static_cast<size_t>(step)]; }

 private:
  // This thread's run-queue wait since the start, in ns; -1 when unknown or on another thread.
  int64_t runqueueSince() const;

  ProxyMetrics* metrics_;
  std::chrono::milliseconds slow_;
  Clock::time_point start_;
  Clock::time_point last_;
  std::array<Clock::duration, static_cast<size_t>(Step::kCount)> steps_{};
  // Thread CPU time (ns) and involuntary switches at the start and at endOfWork().
  int64_t cpu_start_ns_ = 0, cpu_ns_ = -1;
  int64_t switches_start_ = 0, switches_ = -1;
  // Run-queue wait (ns) of the request's thread: at the start, to endOfWork(),
  // to finish(); -1 unknown. `thread_`: where the start was read.
  int64_t runqueue_start_ns_ = -1, runqueue_ns_ = -1, runqueue_total_ns_ = -1;
  // Thread CPU time (ns) from endOfWork() to finish(); -1 unknown.
  int64_t upstream_cpu_ns_ = -1;
  std::thread::id thread_;
};

}  // namespace cardinal::server
