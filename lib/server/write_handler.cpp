#include "server/write_handler.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "codec/batch.h"
#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/snappy_codec.h"
#include "core/log.h"

namespace cardinal::server {
namespace {

// Per-thread buffers reused across requests: steady state allocates no
// decompression buffer, batch vectors or encode buffer per request.
struct Scratch {
  std::string decompressed;
  codec::SeriesBatch batch;
  std::string encoded;
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

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Returns an error text for unsupported content types/encodings, or "".
std::string checkContentHeaders(const Request& req) {
  if (auto it = req.find(http::field::content_encoding); it != req.end()) {
    std::string enc = lower(trim(std::string_view(it->value().data(), it->value().size())));
    if (enc != "snappy")
      return "unsupported Content-Encoding \"" + enc + "\": remote-write bodies are snappy block-compressed";
  }
  if (auto it = req.find(http::field::content_type); it != req.end()) {
    std::string ct = lower(std::string_view(it->value().data(), it->value().size()));
    std::string_view rest = ct;
    auto semi = rest.find(';');
    std::string_view media = trim(rest.substr(0, semi));
    if (media != "application/x-protobuf")
      return "unsupported Content-Type \"" + std::string(media) + "\": expected application/x-protobuf";
    while (semi != std::string_view::npos) {
      rest.remove_prefix(semi + 1);
      semi = rest.find(';');
      std::string_view param = trim(rest.substr(0, semi));
      if (param.substr(0, 6) == "proto=") {
        std::string_view proto = param.substr(6);
        if (proto != "prometheus.writerequest")
          return "unsupported remote-write message \"" + std::string(proto) +
                 "\": this receiver speaks remote-write 1.0 (prometheus.WriteRequest)";
      }
    }
  }
  return "";
}

}  // namespace

WriteHandler::WriteHandler(WriteConfig config, const pipeline::Pipeline& pipeline, rules::RulesManager& rules,
                           pipeline::TypeTable& types, pipeline::DecisionCache& cache, upstream::Client& client,
                           ProxyMetrics& metrics, const core::Clock& clock)
    : config_(std::move(config)),
      pipeline_(pipeline),
      rules_(rules),
      types_(types),
      cache_(cache),
      client_(client),
      metrics_(metrics),
      clock_(clock) {}

Response WriteHandler::overloaded(std::string_view why) const {
  Response res = textResponse(http::status::service_unavailable, why);
  res.set(http::field::retry_after, std::to_string(config_.retry_after_hint.count()));
  return res;
}

void WriteHandler::handle(Request&& req, Responder respond) {
  if (draining_) {
    metrics_.countRejected("shutting_down");
    Response res = overloaded("shutting down");
    res.keep_alive(false);
    return respond(std::move(res));
  }
  if (std::string err = checkContentHeaders(req); !err.empty()) {
    metrics_.countRejected("content_type");
    return respond(textResponse(http::status::unsupported_media_type, err));
  }
  if (in_flight_.fetch_add(1) >= static_cast<int>(config_.max_in_flight)) {
    in_flight_.fetch_sub(1);
    metrics_.countRejected("overload");
    return respond(overloaded("too many requests in flight (--upstream.max-in-flight); retry later"));
  }
  metrics_.in_flight.Increment();
  // Runs once when this request is answered, whichever path answers it.
  auto finish = [this, respond = std::move(respond)](Response res) {
    in_flight_.fetch_sub(1);
    metrics_.in_flight.Decrement();
    respond(std::move(res));
  };

  Scratch& s = t_scratch;
  ReleaseLarge release_large{s};
  metrics_.received_compressed_bytes.Increment(static_cast<double>(req.body().size()));
  if (auto st = codec::decompress(req.body(), config_.limits, s.decompressed); !st) {
    metrics_.countRejected("decompress");
    return finish(textResponse(http::status::bad_request, st.error()));
  }
  metrics_.received_decompressed_bytes.Increment(static_cast<double>(s.decompressed.size()));
  if (auto st = codec::decodeWriteRequest(s.decompressed, config_.limits, s.batch); !st) {
    metrics_.countRejected("decode");
    core::logDebug("rejected write request", {{"reason", st.error()}});
    return finish(textResponse(http::status::bad_request, st.error()));
  }
  codec::SeriesBatch& batch = s.batch;
  metrics_.received_requests.Increment();
  metrics_.received_series.Increment(static_cast<double>(batch.series.size()));
  metrics_.received_samples.Increment(static_cast<double>(batch.samples.size()));
  metrics_.received_histograms.Increment(static_cast<double>(batch.histograms.size()));
  metrics_.received_exemplars.Increment(static_cast<double>(batch.exemplars.size()));
  metrics_.received_metadata.Increment(static_cast<double>(batch.metadata.size()));

  types_.observe(batch);
  auto snapshot = rules_.current();  // in-flight requests keep the rules they started with
  pipeline::StageContext ctx{clock_, snapshot.generation, &cache_, config_.dry_run, snapshot.rules.get(), &types_,
                             merge_, cardinality_};
  if (!config_.codec_only) pipeline_.run(batch, ctx);

  struct Counts {
    size_t series, samples, histograms, exemplars, metadata, bytes;
  };
  Counts counts{batch.liveSeries(), batch.liveSamples(), batch.liveHistograms(), batch.liveExemplars(),
                batch.metadata.size(), 0};
  if (counts.series == 0 && counts.metadata == 0) return finish(Response{http::status::no_content, 11});

  std::shared_ptr<std::string> body;
  bool unchanged = !batch.anyChanged() && !config_.codec_only;

  if (unchanged) {
    body = std::make_shared<std::string>(std::move(req.body()));
  } else {
    codec::encodeWriteRequest(batch, s.encoded);
    body = std::make_shared<std::string>();
    codec::compress(s.encoded, *body);
  }
  counts.bytes = body->size();

  upstream::Headers headers = {
      {"Content-Encoding", "snappy"},
      {"Content-Type", "application/x-protobuf"},
      {"X-Prometheus-Remote-Write-Version", "0.1.0"},
  };
  client_.send(std::move(body), std::move(headers),
               [this, finish = std::move(finish), counts, unchanged](upstream::DeliveryResult r) mutable {
                 using Kind = upstream::DeliveryResult::Kind;
                 if (r.kind == Kind::kDelivered) {
                   metrics_.forwarded_series.Increment(static_cast<double>(counts.series));
                   metrics_.forwarded_samples.Increment(static_cast<double>(counts.samples));
                   metrics_.forwarded_histograms.Increment(static_cast<double>(counts.histograms));
                   metrics_.forwarded_exemplars.Increment(static_cast<double>(counts.exemplars));
                   metrics_.forwarded_metadata.Increment(static_cast<double>(counts.metadata));
                   metrics_.forwarded_compressed_bytes.Increment(static_cast<double>(counts.bytes));
                   if (unchanged) metrics_.forwarded_unchanged_requests.Increment();
                   return finish(Response{http::status::no_content, 11});
                 }
                 if (r.kind == Kind::kRejected) {
                   core::logWarn("upstream rejected a request",
                                 {{"status", std::to_string(r.status)}, {"series", std::to_string(counts.series)}});
                   std::string msg = "upstream rejected the request with " + std::to_string(r.status);
                   if (!r.message.empty()) msg += ": " + r.message;
                   // 4xx goes back as is (the sender drops the batch); anything
                   // else (a redirect) is a misconfiguration the sender should retry.
                   auto status = r.status >= 400 && r.status < 500 ? static_cast<http::status>(r.status)
                                                                   : http::status::bad_gateway;
                   return finish(textResponse(status, msg));
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
                 finish(std::move(res));
               });
}

}  // namespace cardinal::server
