#pragma once
// The proxy's own metrics, declared together. Label sets are bounded: handler
// is one of the fixed routes, code one of the HTTP statuses we answer with,
// reason one of the fixed rejection reasons.

#include <iterator>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace cardinal::server {

struct ProxyMetrics {
  explicit ProxyMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Counter>& http_requests;     // {handler, code}
  prometheus::Family<prometheus::Histogram>& http_duration;   // {handler}
  prometheus::Gauge& in_flight;                               // write requests being processed
  prometheus::Gauge& connections;                             // open client connections
  prometheus::Counter& connections_refused;                   // over --web.max-connections
  prometheus::Family<prometheus::Counter>& rejected;          // {reason}

  prometheus::Counter& received_requests;
  prometheus::Counter& received_series;
  prometheus::Counter& received_samples;
  prometheus::Counter& received_histograms;
  prometheus::Counter& received_exemplars;
  prometheus::Counter& received_metadata;
  prometheus::Counter& received_compressed_bytes;
  prometheus::Counter& received_decompressed_bytes;

  prometheus::Counter& forwarded_series;
  prometheus::Counter& forwarded_samples;
  prometheus::Counter& forwarded_histograms;
  prometheus::Counter& forwarded_exemplars;
  prometheus::Counter& forwarded_metadata;
  prometheus::Counter& forwarded_compressed_bytes;
  prometheus::Counter& forwarded_unchanged_requests;  // original body forwarded as is
  // Remote-write 2.0 (issue 9): requests decoded from 2.0, and requests
  // forwarded in the other protocol than they arrived in.
  prometheus::Counter& received_v2_requests;
  prometheus::Counter& forwarded_translated_requests;
  // Label-set plans held (pipeline/plan_cache.h), every tenant's, as of the last emit.
  prometheus::Gauge& plan_cache_plans;
  prometheus::Gauge& plan_cache_bytes;
  // Series whose labels were replayed from a plan, or looked up without one
  // (brought up to date each aggregation interval).
  prometheus::Counter& plan_cache_replayed;
  prometheus::Counter& plan_cache_missed;
  // I/O threads moved off a CPU where another processing I/O thread waited
  // (server/thread_spread.h), brought up to date each aggregation interval.
  prometheus::Counter& io_thread_moves;
  // Requests cut into parts for two threads (--web.split-request-bytes), by
  // how the parts went through the stages: some on another I/O thread
  // (shared), all on the request's own thread because no other was free in
  // time (alone), or all on the request's thread one after the other because
  // a series is in two parts (in_order).
  prometheus::Counter& split_shared;
  prometheus::Counter& split_alone;
  prometheus::Counter& split_in_order;

  // Wall time of each step of a remote-write request (cardinal_write_step_duration_seconds{step}):
  // where a request's latency goes.
  enum class WriteStep { kDecompress, kDecode, kProcess, kEncode, kUpstream, kCount };
  // Each step's name: the histogram's `step` label (and, with "_ms", the slow-request log's field).
  static constexpr const char* kWriteStepNames[] = {"decompress", "decode", "process", "encode", "upstream"};
  static_assert(std::size(kWriteStepNames) == static_cast<size_t>(WriteStep::kCount));
  prometheus::Histogram* write_step[static_cast<size_t>(WriteStep::kCount)];
  void observeStep(WriteStep step, double seconds) { write_step[static_cast<size_t>(step)]->Observe(seconds); }

  void countRequest(const std::string& handler, int code, double seconds);
  void countRejected(const char* reason) { rejected.Add({{"reason", reason}}).Increment(); }
};

}  // namespace cardinal::server
