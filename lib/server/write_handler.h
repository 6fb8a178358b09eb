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
// 429, and every sender retries 503); 502 when the upstream does not take the
// protocol Cardinal speaks to it (its 415, or a 2xx to a 2.0 request without
// Written headers): a Cardinal misconfiguration the sender should retry
// through rather than drop data over.
//
// Protocols: remote-write 1.0 and 2.0 in (content negotiation as the 2.0
// spec says), --upstream.protocol out. A request no stage changed that
// arrived in the upstream's protocol is forwarded with its original body; any
// other is re-encoded (translated when the protocols differ). Every answer to
// a 2.0 request carries X-Prometheus-Remote-Write-{Samples,Histograms,
// Exemplars}-Written: what Cardinal accepted, i.e. everything it merged or
// dropped by policy plus what the upstream took of the forwarded part (all of
// it on 2xx from a 1.0 upstream; the upstream's own counts from a 2.0 one).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "codec/limits.h"
#include "codec/protocol.h"
#include "core/clock.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/pipeline.h"
#include "pipeline/tenants.h"
#include "rules/rules_manager.h"
#include "server/http_types.h"
#include "server/io_pool.h"
#include "server/metrics.h"
#include "upstream/client.h"

namespace cardinal::server {

struct WriteConfig {
  codec::Limits limits;
  size_t max_in_flight = 64;                  // write requests being processed at once
  std::chrono::seconds retry_after_hint{1};   // Retry-After on 503 when the upstream gave none
  bool dry_run = false;
  // Benchmark baseline: decode + validate, then re-encode and compress every
  // request with no pipeline stage (the practical limit of the codec).
  bool codec_only = false;
  codec::WireProtocol upstream_protocol = codec::WireProtocol::kV1;  // --upstream.protocol
  // --upstream.forward-headers (lower-case, checked by parseForwardHeaders):
  // copied from the sender's request onto the upstream request carrying its
  // series; a value with a control character or over the length bound is 400.
  std::vector<std::string> forward_headers;
  // --tenant.header (lower-case; empty: one tenant). Selects the tenant whose
  // state the request runs on (setTenants()) and is always forwarded, with
  // the default tenant's name when the sender sent none.
  std::string tenant_header;
  // --web.split-request-bytes: a 1.0 request to a 1.0 upstream at least this
  // large once decompressed is decoded, processed and encoded in parts by
  // this I/O thread and another one when one is free (request_split.h):
  // when no other request is being processed at the time, or one is and the
  // other thread was busy less than 80% of its last window (helperFree()).
  // 0: never. Needs setIoPool() with two threads or more.
  size_t split_min_bytes = 0;
  // --log.slow-requests: a request answered after at least this long (from
  // the start of its handling) is logged with its steps (request_timer.h). 0: never.
  std::chrono::milliseconds slow_request_log{0};
};

class WriteHandler {
 public:
  WriteHandler(WriteConfig config, const pipeline::Pipeline& pipeline, rules::RulesManager& rules,
               pipeline::TypeTable& types, pipeline::DecisionCache& cache, upstream::Client& client,
               ProxyMetrics& metrics, const core::Clock& clock);
  void setMergeState(pipeline::merge::MergeState* merge) { merge_ = merge; }
  void setCardinalityState(pipeline::cardinality::CardinalityState* state) { cardinality_ = state; }
  // With config.tenant_header set: required; the request's tenant replaces the
  // merge, cardinality, cache and type objects given above. Over
  // --tenant.max-tenants a new tenant gets 503 with a message.
  void setTenants(pipeline::Tenants* tenants) { tenants_ = tenants; }
  // The I/O threads (io_pool.h) and one upstream client per thread, made on
  // that thread's context (`clients[i]` for `pool->context(i)`): a request is
  // forwarded by the client of the thread it arrived on, and a split request's
  // helper task goes to the next thread (with two threads or more). Without
  // it, every request uses the client given to the constructor.
  void setIoPool(IoPool* pool, std::vector<upstream::Client*> clients);

  void handle(Request&& req, Responder respond);

  // After this, new write requests get 503 and Connection: close.
  void startDraining() { draining_ = true; }
  int inFlight() const { return in_flight_.load(); }

 private:
  Response overloaded(std::string_view why) const;

  WriteConfig config_;
  const pipeline::Pipeline& pipeline_;
  rules::RulesManager& rules_;
  pipeline::TypeTable& types_;
  pipeline::merge::MergeState* merge_ = nullptr;
  pipeline::cardinality::CardinalityState* cardinality_ = nullptr;
  pipeline::Tenants* tenants_ = nullptr;
  // The upstream client of a pool thread (setIoPool()); the constructor's for
  // IoPool::kNotInPool (no pool, or a caller off it).
  upstream::Client& client(size_t thread);

  IoPool* pool_ = nullptr;
  std::vector<upstream::Client*> clients_;  // [0]: the constructor's; or one per pool thread
  pipeline::DecisionCache& cache_;
  ProxyMetrics& metrics_;
  const core::Clock& clock_;
  std::atomic<int> in_flight_{0};
  // Requests between decompression and the end of their processing: a request
  // is split when it is the only one, or when one other is and the helper's
  // thread has time to spare (request_split.h, helperFree()), so that under
  // full load, where every I/O thread has a request of its own, no thread
  // waits for another's part.
  std::atomic<int> processing_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace cardinal::server
