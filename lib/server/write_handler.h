#pragma once
// POST /api/v1/write: check headers, decompress, decode and validate into a
// SeriesBatch, run the pipeline, encode and forward, and answer the sender
// only after the upstream accepted (or finally refused) the forwarded part.
//
// Status codes (see README "Status codes"): 204 delivered; 400 malformed or
// over a limit; 413 body too large; 415 unsupported content type or
// encoding; upstream 4xx passed back; 503 with Retry-After when overloaded,
// shutting down, or the upstream could not take the request within the retry
// budget (never 429: default Prometheus and Collector settings drop data on
// 429, and every sender retries 503).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "codec/limits.h"
#include "core/clock.h"
#include "pipeline/decision_cache.h"
#include "pipeline/pipeline.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "upstream/client.h"

namespace cardinal::server {

struct WriteConfig {
  codec::Limits limits;
  size_t max_in_flight = 64;                  // write requests being processed at once
  std::chrono::seconds retry_after_hint{1};   // Retry-After on 503 when the upstream gave none
  bool dry_run = false;
};

// The current pipeline and its rule-set generation; swapped atomically on
// reload, while requests in flight keep the one they started with.
class PipelineHolder {
 public:
  struct Snapshot {
    std::shared_ptr<const pipeline::Pipeline> pipeline;
    uint64_t generation = 0;
  };
  explicit PipelineHolder(std::shared_ptr<const pipeline::Pipeline> p) : current_{std::move(p), 1} {}
  Snapshot current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void swap(std::shared_ptr<const pipeline::Pipeline> p) {
    std::lock_guard lock(mu_);
    current_ = {std::move(p), current_.generation + 1};
  }

 private:
  mutable std::mutex mu_;
  Snapshot current_;
};

class WriteHandler {
 public:
  WriteHandler(WriteConfig config, PipelineHolder& pipelines, pipeline::DecisionCache& cache,
               upstream::Client& client, ProxyMetrics& metrics, const core::Clock& clock);

  void handle(Request&& req, Responder respond);

  // After this, new write requests get 503 and Connection: close.
  void startDraining() { draining_ = true; }
  int inFlight() const { return in_flight_.load(); }

 private:
  Response overloaded(std::string_view why) const;

  WriteConfig config_;
  PipelineHolder& pipelines_;
  pipeline::DecisionCache& cache_;
  upstream::Client& client_;
  ProxyMetrics& metrics_;
  const core::Clock& clock_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace cardinal::server
