#include "server/write_handler.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <string>

#include <boost/asio/post.hpp>

#include "codec/batch.h"
#include "codec/decode.h"
#include "codec/decode_v2.h"
#include "codec/encode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "core/log.h"
#include "pipeline/assembly.h"
#include "server/forward_headers.h"
#include "server/http_server.h"
#include "server/request_split.h"
#include "server/request_timer.h"

namespace cardinal::server {
namespace {

// Per-thread buffers reused across requests: steady state allocates no
// decompression buffer, batch vectors or encode buffer per request.
struct Scratch {
  std::string decompressed;
  codec::SeriesBatch batch;
  std::string encoded;
  std::vector<std::string_view> parts;  // a split request's compressed parts
};
thread_local Scratch t_scratch;

// An occasional huge request must not pin its buffers to this thread; runs
// when handle() returns, once nothing points into the buffers any more.
struct ReleaseLarge {
  Scratch& s;
  ~ReleaseLarge() {
    constexpr size_t kKeep = 16u << 20;
    if (s.decompressed.capacity() > kKeep) std::string().swap(s.decompressed);
    if (s.encoded.capacity() > kKeep) std::string().swap(s.encoded);
  }
};

std::string_view headerValue(const Request& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string_view() : std::string_view(it->value().data(), it->value().size());
}

// a - b per category, never below zero.
codec::WrittenCounts minus(const codec::WrittenCounts& a, const codec::WrittenCounts& b) {
  auto sub = [](uint64_t x, uint64_t y) { return x > y ? x - y : 0; };
  return {sub(a.samples, b.samples), sub(a.histograms, b.histograms), sub(a.exemplars, b.exemplars)};
}
codec::WrittenCounts plus(const codec::WrittenCounts& a, const codec::WrittenCounts& b) {
  return {a.samples + b.samples, a.histograms + b.histograms, a.exemplars + b.exemplars};
}
codec::WrittenCounts atMost(const codec::WrittenCounts& a, const codec::WrittenCounts& cap) {
  return {std::min(a.samples, cap.samples), std::min(a.histograms, cap.histograms),
          std::min(a.exemplars, cap.exemplars)};
}

}  // namespace

WriteHandler::WriteHandler(WriteConfig config, const pipeline::Pipeline& pipeline, rules::RulesManager& rules,
                           pipeline::TypeTable& types, pipeline::DecisionCache& cache, upstream::Client& client,
                           ProxyMetrics& metrics, const core::Clock& clock)
    : config_(std::move(config)),
      pipeline_(pipeline),
      rules_(rules),
      types_(types),
      clients_{&client},
      cache_(cache),
      metrics_(metrics),
      clock_(clock) {}

void WriteHandler::setIoPool(IoPool* pool, std::vector<upstream::Client*> clients) {
  pool_ = pool;
  clients_ = std::move(clients);
}

upstream::Client& WriteHandler::client(size_t thread) { return *clients_[thread < clients_.size() ? thread : 0]; }

Response WriteHandler::overloaded(std::string_view why) const {
  Response res = textResponse(http::status::service_unavailable, why);
  res.set(http::field::retry_after, std::to_string(config_.retry_after_hint.count()));
  return res;
}

void WriteHandler::handle(Request&& req, Responder respond) {
  // Content negotiation first: every answer to a 2.0 request carries the
  // Written headers, refusals included (with what was written: nothing).
  const codec::ContentTypeCheck content = codec::checkContentType(headerValue(req, http::field::content_type));
  const bool v2_in = content.error.empty() && content.protocol == codec::WireProtocol::kV2;
  auto withWritten = [v2_in](Response res, const codec::WrittenCounts& written = {}) {
    if (v2_in) setWrittenHeaders(res, written);
    return res;
  };
  if (draining_) {
    metrics_.countRejected("shutting_down");
    Response res = withWritten(overloaded("shutting down"));
    res.keep_alive(false);
    return respond(std::move(res));
  }
  std::string unsupported = content.error;
  if (unsupported.empty()) unsupported = codec::checkContentEncoding(headerValue(req, http::field::content_encoding));
  if (!unsupported.empty()) {
    metrics_.countRejected("content_type");
    return respond(withWritten(textResponse(http::status::unsupported_media_type, unsupported)));
  }
  // Pass-through headers and the tenant; nothing of this runs unless configured.
  upstream::Headers passed;
  pipeline::TypeTable* types = &types_;
  pipeline::DecisionCache* cache = &cache_;
  pipeline::merge::MergeState* merge = merge_;
  pipeline::cardinality::CardinalityState* cardinality = cardinality_;
  if (!config_.forward_headers.empty() || !config_.tenant_header.empty()) {
    for (const auto& name : config_.forward_headers) {
      auto it = req.find(name);
      if (it == req.end()) continue;
      std::string_view value(it->value().data(), it->value().size());
      if (auto why = checkForwardedValue(name, value); !why.empty()) {
        metrics_.countRejected("header");
        return respond(withWritten(textResponse(http::status::bad_request, why)));
      }
      passed.emplace_back(name, std::string(value));
    }
    if (!config_.tenant_header.empty() && tenants_) {
      auto it = req.find(config_.tenant_header);
      std::string_view id = it == req.end() ? std::string_view(tenants_->config().default_name)
                                            : std::string_view(it->value().data(), it->value().size());
      if (auto why = pipeline::checkTenantId(id); !why.empty()) {
        metrics_.countRejected("header");
        return respond(withWritten(textResponse(http::status::bad_request, "header " + config_.tenant_header + ": " + why)));
      }
      pipeline::Tenant* tenant = tenants_->getOrCreate(id);
      if (!tenant) {
        metrics_.countRejected("tenants");
        return respond(withWritten(overloaded("too many tenants (--tenant.max-tenants); this tenant is not accepted "
                                              "until the limit is raised")));
      }
      passed.emplace_back(config_.tenant_header, tenant->name);
      types = tenant->types;
      cache = tenant->cache;
      merge = tenant->merge;
      cardinality = tenant->cardinality;
    }
  }
  if (in_flight_.fetch_add(1) >= static_cast<int>(config_.max_in_flight)) {
    in_flight_.fetch_sub(1);
    metrics_.countRejected("overload");
    return respond(withWritten(overloaded("too many requests in flight (--upstream.max-in-flight); retry later")));
  }
  metrics_.in_flight.Increment();
  // Runs once when this request is answered, whichever path answers it.
  auto finish = [this, respond = std::move(respond)](Response res) {
    in_flight_.fetch_sub(1);
    metrics_.in_flight.Decrement();
    respond(std::move(res));
  };

  using Step = ProxyMetrics::WriteStep;
  const int64_t request_wait_ns = requestWaitNs();  // set by the connection for this call
  RequestTimer timer(&metrics_, config_.slow_request_log);
  // The pool thread running this request: its upstream client forwards it, the next one helps.
  const size_t thread = pool_ ? pool_->currentIndex() : IoPool::kNotInPool;
  // Whether this server splits requests at all: then each request ticks its
  // thread's load meter, which the split decision reads (thread_load.h).
  const bool splits = thread != IoPool::kNotInPool && pool_->size() >= 2 && config_.split_min_bytes > 0;
  if (splits) pool_->load().tick(thread);
  Scratch& s = t_scratch;
  ReleaseLarge release_large{s};
  // Counted from here to the end of handle() (the upstream exchange is not
  // processing: another request may be split meanwhile).
  struct Processing {
    std::atomic<int>& n;
    const int others = n.fetch_add(1, std::memory_order_relaxed);
    ~Processing() { n.fetch_sub(1, std::memory_order_relaxed); }
  } processing{processing_};
  // Keeps this thread off a CPU where another processing I/O thread waits
  // (thread_spread.h): checked now and once the request is decoded.
  ThreadSpread::Scope spread(thread != IoPool::kNotInPool ? &pool_->spread() : nullptr, thread);
  metrics_.received_compressed_bytes.Increment(static_cast<double>(req.body().size()));
  if (auto st = codec::decompress(req.body(), config_.limits, s.decompressed); !st) {
    metrics_.countRejected("decompress");
    return finish(withWritten(textResponse(http::status::bad_request, st.error())));
  }
  metrics_.received_decompressed_bytes.Increment(static_cast<double>(s.decompressed.size()));
  timer.lap(Step::kDecompress);
  const codec::WireProtocol out_protocol = config_.upstream_protocol;
  const bool v2_out = out_protocol == codec::WireProtocol::kV2;
  const bool run_stages = !config_.codec_only;
  // In-flight requests keep the rules they started with (the snapshot).
  const auto rules = rules_.current();
  pipeline::WriteState state{*types, *cache, merge, cardinality};
  // A large 1.0 request for a 1.0 upstream is shared with another I/O thread
  // (request_split.h). Declared after what it points to, so that on every way
  // out the helper is done with it first.
  std::shared_ptr<SplitRequest> split;
  struct Abandon {
    std::shared_ptr<SplitRequest>& split;
    bool processed = false;
    ~Abandon() {
      if (split && !processed) split->abandon();
    }
  } abandon{split};
  const std::string_view whole(s.decompressed);
  core::Status decoded;
  const bool may_split = splits && !v2_in && !v2_out && whole.size() >= config_.split_min_bytes;
  const size_t helper = may_split ? (thread + 1) % pool_->size() : 0;
  const int helper_busy = may_split ? pool_->load().busyPermille(helper) : -1;
  if (may_split && helperFree(processing.others, helper_busy)) {
    split = SplitRequest::acquire();
    if (split->start({whole, &config_.limits, &pipeline_, &rules, &state, &clock_, config_.dry_run, run_stages})) {
      boost::asio::post(pool_->context(helper), [split, pool = pool_, helper] {
        ThreadSpread::Scope busy(&pool->spread(), helper);
        split->runAsHelper();
      });
      if (!split->decode()) {
        // Decoded whole, the error names the series and byte of the request.
        split->abandon();
        split.reset();
      }
    } else {
      split.reset();
    }
  }
  if (!split) {
    decoded = v2_in ? codec::decodeRequestV2(whole, config_.limits, s.batch)
                    : codec::decodeWriteRequest(whole, config_.limits, s.batch);
  }
  if (!decoded) {
    metrics_.countRejected("decode");
    core::logDebug("rejected write request", {{"reason", decoded.error()}, {"protocol", v2_in ? "v2" : "v1"}});
    return finish(withWritten(textResponse(http::status::bad_request, decoded.error())));
  }
  timer.lap(Step::kDecode);
  spread.check();
  // The request's series: one batch, or the parts of a split request.
  std::array<codec::SeriesBatch*, SplitRequest::kMaxParts> batches{&s.batch};
  size_t nbatches = 1;
  if (split) {
    nbatches = split->parts();
    for (size_t i = 0; i < nbatches; ++i) batches[i] = &split->batch(i);
  }
  const std::span<codec::SeriesBatch* const> all(batches.data(), nbatches);
  auto total = [&](auto size) {
    size_t n = 0;
    for (const auto* b : all) n += size(*b);
    return n;
  };
  metrics_.received_requests.Increment();
  if (v2_in) metrics_.received_v2_requests.Increment();
  RequestTimer::Outcome outcome;
  outcome.thread = thread == IoPool::kNotInPool ? 0 : thread;
  outcome.request_wait_ns = request_wait_ns;
  if (may_split) {
    outcome.processing_others = processing.others;
    outcome.helper_busy_permille = helper_busy;
  }
  outcome.bytes_in = req.body().size();
  outcome.series_in = total([](const codec::SeriesBatch& b) { return b.series.size(); });
  metrics_.received_series.Increment(static_cast<double>(outcome.series_in));
  const size_t samples = total([](const codec::SeriesBatch& b) { return b.samples.size(); });
  const size_t histograms = total([](const codec::SeriesBatch& b) { return b.histograms.size(); });
  const size_t exemplars = total([](const codec::SeriesBatch& b) { return b.exemplars.size(); });
  metrics_.received_samples.Increment(static_cast<double>(samples));
  metrics_.received_histograms.Increment(static_cast<double>(histograms));
  metrics_.received_exemplars.Increment(static_cast<double>(exemplars));
  metrics_.received_metadata.Increment(total([](const codec::SeriesBatch& b) { return b.metadata.size(); }));
  // Decoding is all or nothing, so from here on everything received is
  // accepted: merged, dropped by policy, or forwarded (and then written as
  // far as the upstream says).
  const codec::WrittenCounts received{samples, histograms, exemplars};

  if (!split) {
    pipeline::processBatch(pipeline_, s.batch, rules, state, clock_, config_.dry_run, run_stages);
  } else {
    switch (split->process()) {
      case SplitRequest::Shared::kShared:
        metrics_.split_shared.Increment();
        outcome.split = "shared";
        break;
      case SplitRequest::Shared::kAlone:
        metrics_.split_alone.Increment();
        outcome.split = "alone";
        break;
      case SplitRequest::Shared::kInOrder:
        metrics_.split_in_order.Increment();
        outcome.split = "in_order";
        break;
    }
    abandon.processed = true;
  }
  timer.lap(Step::kProcess);

  struct Counts {
    size_t series, samples, histograms, exemplars, metadata, bytes;
  };
  Counts counts{0, 0, 0, 0, 0, 0};
  bool changed = false;
  for (size_t i = 0; i < nbatches; ++i) {
    const codec::SeriesBatch& b = *batches[i];
    // A split request's parts were counted by the thread that ran them.
    const auto live = split ? split->live(i) : b.liveCounts();
    counts.series += live.series;
    counts.samples += live.samples;
    counts.histograms += live.histograms;
    counts.exemplars += live.exemplars;
    counts.metadata += b.metadata.size();
    changed = changed || (split ? split->changed(i) : b.anyChanged());
  }
  // 2.0 has no metadata-only form: a 1.0 metadata request (the TypeTable has
  // learned from it above) has nothing to forward to a 2.0 upstream.
  outcome.series_out = counts.series;
  if (counts.series == 0 && (counts.metadata == 0 || v2_out)) {
    timer.endOfWork();
    outcome.status = 204;
    timer.finish(outcome);
    return finish(withWritten(Response{http::status::no_content, 11}, received));
  }

  const codec::WrittenCounts forwarded{counts.samples, counts.histograms, counts.exemplars};
  const codec::WrittenCounts kept = minus(received, forwarded);  // merged or dropped: accepted here
  std::shared_ptr<std::string> body;
  const bool translated = batches[0]->protocol != out_protocol;
  bool unchanged = !changed && !config_.codec_only && !translated;

  if (unchanged) {
    body = std::make_shared<std::string>(std::move(req.body()));
  } else {
    body = std::make_shared<std::string>();
    if (split) {
      // The parts that changed were encoded and compressed by whoever ran
      // them through the stages; the others are encoded here.
      s.parts.clear();
      for (size_t i = 0; i < nbatches; ++i) {
        if (!split->encoded(i)) split->encode(i);
        s.parts.push_back(split->compressed(i));
      }
      codec::joinCompressed(s.parts, *body);
    } else {
      codec::encodeForProtocol(s.batch, out_protocol, s.encoded);
      codec::compress(s.encoded, *body);
    }
    timer.lap(Step::kEncode);
  }
  timer.endOfWork();
  counts.bytes = body->size();

  upstream::SendOptions options{v2_out, forwarded.total()};
  upstream::Headers headers = upstream::remoteWriteHeaders(out_protocol);
  if (!passed.empty()) headers.insert(headers.end(), std::make_move_iterator(passed.begin()),
                                      std::make_move_iterator(passed.end()));
  client(thread).send(
      std::move(body), std::move(headers),
      [this, finish = std::move(finish), withWritten, counts, unchanged, translated, v2_out, kept, forwarded,
       timer, outcome](upstream::DeliveryResult r) mutable {
        timer.lap(Step::kUpstream);
        if (r.answer_wait) outcome.answer_wait_ns = r.answer_wait->count();
        auto answer = [&](Response res) {
          outcome.status = res.result_int();
          timer.finish(outcome);
          finish(std::move(res));
        };
        using Kind = upstream::DeliveryResult::Kind;
        // What the upstream wrote of the forwarded part: a 2.0 upstream says so
        // (on 2xx and 4xx); a 1.0 one writes all on 2xx and nothing otherwise.
        codec::WrittenCounts upstream_written;
        if (v2_out && r.written) upstream_written = atMost(*r.written, forwarded);
        else if (r.kind == Kind::kDelivered) upstream_written = forwarded;
        const codec::WrittenCounts written = plus(kept, upstream_written);
        if (r.kind == Kind::kDelivered) {
          metrics_.forwarded_series.Increment(static_cast<double>(counts.series));
          metrics_.forwarded_samples.Increment(static_cast<double>(counts.samples));
          metrics_.forwarded_histograms.Increment(static_cast<double>(counts.histograms));
          metrics_.forwarded_exemplars.Increment(static_cast<double>(counts.exemplars));
          metrics_.forwarded_metadata.Increment(static_cast<double>(counts.metadata));
          metrics_.forwarded_compressed_bytes.Increment(static_cast<double>(counts.bytes));
          if (unchanged) metrics_.forwarded_unchanged_requests.Increment();
          if (translated) metrics_.forwarded_translated_requests.Increment();
          return answer(withWritten(Response{http::status::no_content, 11}, written));
        }
        if (r.kind == Kind::kRejected) {
          core::logWarn("upstream rejected a request",
                        {{"status", std::to_string(r.status)}, {"series", std::to_string(counts.series)}});
          // The upstream does not take the protocol Cardinal speaks to it:
          // Cardinal's misconfiguration (--upstream.protocol), never the
          // sender's data. 502, which senders retry, so nothing is dropped
          // while the operator fixes it.
          if (r.unconfirmed_v2 || r.status == 415) {
            std::string msg = "upstream does not accept remote-write " +
                              std::string(v2_out ? "2.0" : "1.0") + " (" +
                              (r.unconfirmed_v2 ? r.message : "415: " + r.message) + "); check --upstream.protocol";
            return answer(withWritten(textResponse(http::status::bad_gateway, msg), written));
          }
          std::string msg = "upstream rejected the request with " + std::to_string(r.status);
          if (!r.message.empty()) msg += ": " + r.message;
          // 4xx goes back as is (the sender drops the batch); anything
          // else (a redirect) is a misconfiguration the sender should retry.
          auto status = r.status >= 400 && r.status < 500 ? static_cast<http::status>(r.status)
                                                          : http::status::bad_gateway;
          return answer(withWritten(textResponse(status, msg), written));
        }
        core::logWarn("upstream unavailable, answering 503",
                      {{"attempts", std::to_string(r.attempts)}, {"reason", r.message}});
        Response res = textResponse(http::status::service_unavailable, "upstream unavailable: " + r.message);
        auto hint = config_.retry_after_hint;
        if (r.retry_after) {
          auto secs = std::chrono::ceil<std::chrono::seconds>(*r.retry_after);
          if (secs > hint) hint = secs;
        }
        res.set(http::field::retry_after, std::to_string(hint.count()));
        answer(withWritten(std::move(res), written));
      },
      options);
}

}  // namespace cardinal::server
