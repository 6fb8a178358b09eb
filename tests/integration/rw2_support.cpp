#include "rw2_support.h"

#include <algorithm>
#include <charconv>

namespace cardinal::integration {

V2RequestBuilder::V2RequestBuilder() {
  req.add_symbols("");
  index_[""] = 0;
}

uint32_t V2RequestBuilder::sym(const std::string& s) {
  auto [it, inserted] = index_.try_emplace(s, static_cast<uint32_t>(req.symbols_size()));
  if (inserted) req.add_symbols(s);
  return it->second;
}

v2::TimeSeries* V2RequestBuilder::series(const std::vector<std::pair<std::string, std::string>>& labels) {
  auto* ts = req.add_timeseries();
  for (const auto& [n, v] : labels) {
    ts->add_labels_refs(sym(n));
    ts->add_labels_refs(sym(v));
  }
  return ts;
}

void V2RequestBuilder::sample(v2::TimeSeries* ts, int64_t timestamp_ms, double value, int64_t start_ms) {
  auto* s = ts->add_samples();
  s->set_timestamp(timestamp_ms);
  s->set_value(value);
  s->set_start_timestamp(start_ms);
}

void V2RequestBuilder::metadata(v2::TimeSeries* ts, v2::Metadata::MetricType type, const std::string& help,
                                const std::string& unit) {
  auto* m = ts->mutable_metadata();
  m->set_type(type);
  m->set_help_ref(sym(help));
  m->set_unit_ref(sym(unit));
}

void V2RequestBuilder::exemplar(v2::TimeSeries* ts,
                                const std::vector<std::pair<std::string, std::string>>& labels, double value,
                                int64_t timestamp_ms) {
  auto* e = ts->add_exemplars();
  for (const auto& [n, v] : labels) {
    e->add_labels_refs(sym(n));
    e->add_labels_refs(sym(v));
  }
  e->set_value(value);
  e->set_timestamp(timestamp_ms);
}

std::vector<std::pair<std::string, std::string>> remoteWriteV2Headers() {
  return {{"Content-Encoding", "snappy"},
          {"Content-Type", kV2ContentType},
          {"X-Prometheus-Remote-Write-Version", "2.0.0"},
          {"User-Agent", "cardinal-integration-tests"}};
}

std::string encodeV2(const v2::Request& req) {
  std::string raw;
  req.SerializeToString(&raw);
  return snappyCompress(raw);
}

std::optional<v2::Request> decodeV2(std::string_view body, std::string* error) {
  auto raw = snappyUncompress(body);
  if (!raw) {
    if (error) *error = "not snappy";
    return std::nullopt;
  }
  v2::Request req;
  if (!req.ParseFromString(*raw)) {
    if (error) *error = "not an io.prometheus.write.v2.Request";
    return std::nullopt;
  }
  return req;
}

HttpResponse postRemoteWriteV2(std::string_view url, const v2::Request& req, Millis timeout) {
  return httpPost(url, encodeV2(req), remoteWriteV2Headers(), timeout);
}

ElementCounts& ElementCounts::operator+=(const ElementCounts& o) {
  samples += o.samples;
  histograms += o.histograms;
  exemplars += o.exemplars;
  return *this;
}

std::string ElementCounts::toString() const {
  return "samples " + std::to_string(samples) + ", histograms " + std::to_string(histograms) + ", exemplars " +
         std::to_string(exemplars);
}

ElementCounts countsOf(const v2::Request& req) {
  ElementCounts c;
  for (const auto& ts : req.timeseries()) {
    c.samples += static_cast<uint64_t>(ts.samples_size());
    c.histograms += static_cast<uint64_t>(ts.histograms_size());
    c.exemplars += static_cast<uint64_t>(ts.exemplars_size());
  }
  return c;
}

ElementCounts countsOf(const prometheus::WriteRequest& req) {
  ElementCounts c;
  for (const auto& ts : req.timeseries()) {
    c.samples += static_cast<uint64_t>(ts.samples_size());
    c.histograms += static_cast<uint64_t>(ts.histograms_size());
    c.exemplars += static_cast<uint64_t>(ts.exemplars_size());
  }
  return c;
}

std::optional<ElementCounts> writtenHeaders(const HttpHeaders& headers) {
  ElementCounts c;
  auto read = [&](const char* name, uint64_t& out) {
    auto v = headers.get(name);
    if (!v) return false;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    return ec == std::errc() && p == v->data() + v->size();
  };
  if (!read("X-Prometheus-Remote-Write-Samples-Written", c.samples) ||
      !read("X-Prometheus-Remote-Write-Histograms-Written", c.histograms) ||
      !read("X-Prometheus-Remote-Write-Exemplars-Written", c.exemplars))
    return std::nullopt;
  return c;
}

Labels labelsOf(const v2::Request& req, const v2::TimeSeries& ts) {
  Labels out;
  for (int i = 0; i + 1 < ts.labels_refs_size(); i += 2)
    out[req.symbols(static_cast<int>(ts.labels_refs(i)))] = req.symbols(static_cast<int>(ts.labels_refs(i + 1)));
  return out;
}

ExpectedSamples expectedFrom(const v2::Request& req) {
  ExpectedSamples out;
  for (const auto& ts : req.timeseries()) {
    if (ts.samples_size() == 0) continue;
    auto& samples = out[labelsOf(req, ts)];
    for (const auto& s : ts.samples()) samples[s.timestamp()] = s.value();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

FakeUpstreamV2::FakeUpstreamV2() : server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

void FakeUpstreamV2::answerLikeV1Receiver(bool yes) {
  std::lock_guard lock(mu_);
  like_v1_ = yes;
}

HttpReply FakeUpstreamV2::handle(const HttpRequestRecord& req) {
  Received r;
  r.http = req;
  r.v2 = req.headers.get("Content-Type").value_or("").find("io.prometheus.write.v2.Request") != std::string::npos;
  ElementCounts counts;
  if (r.v2) {
    r.v2req = decodeV2(req.body);
    if (r.v2req) counts = countsOf(*r.v2req);
  } else {
    r.v1req = decodeWriteRequest(req.body);
  }
  std::lock_guard lock(mu_);
  received_.push_back(r);
  if (like_v1_ || !r.v2) return HttpReply::withStatus(204);
  if (!r.v2req) return HttpReply::withStatus(400, "not a 2.0 request");
  return HttpReply::withStatus(204)
      .header("X-Prometheus-Remote-Write-Samples-Written", std::to_string(counts.samples))
      .header("X-Prometheus-Remote-Write-Histograms-Written", std::to_string(counts.histograms))
      .header("X-Prometheus-Remote-Write-Exemplars-Written", std::to_string(counts.exemplars));
}

size_t FakeUpstreamV2::requestCount() const {
  std::lock_guard lock(mu_);
  return received_.size();
}

std::vector<FakeUpstreamV2::Received> FakeUpstreamV2::requests() const {
  std::lock_guard lock(mu_);
  return received_;
}

bool FakeUpstreamV2::waitForRequests(size_t n, Millis timeout) const {
  return waitUntil([&] { return requestCount() >= n; }, timeout, Millis(10));
}

// ---------------------------------------------------------------------------------------------

WrittenRecorder::WrittenRecorder(std::string target_url)
    : target_(std::move(target_url)), server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

HttpReply WrittenRecorder::handle(const HttpRequestRecord& req) {
  Exchange x;
  x.content_type = req.headers.get("Content-Type").value_or("");
  x.v2 = x.content_type.find("io.prometheus.write.v2.Request") != std::string::npos;
  if (x.v2) {
    if (auto decoded = decodeV2(req.body)) x.sent = countsOf(*decoded);
  } else if (auto decoded = decodeWriteRequest(req.body)) {
    x.sent = countsOf(*decoded);
  }
  // Forwarding blocks this server's one thread for a loopback round trip: one at a time.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const char* h : {"Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version", "User-Agent"})
    if (auto v = req.headers.get(h)) headers.emplace_back(h, *v);
  HttpResponse res = httpPost(target_, req.body, headers, Millis(10000));
  x.status = res.status;
  x.written = writtenHeaders(res.headers);
  {
    std::lock_guard lock(mu_);
    exchanges_.push_back(x);
  }
  if (res.status == 0) return HttpReply::withStatus(503, "recorder: " + res.error);
  HttpReply reply = HttpReply::withStatus(res.status, res.body);
  for (const char* h : {"X-Prometheus-Remote-Write-Samples-Written", "X-Prometheus-Remote-Write-Histograms-Written",
                        "X-Prometheus-Remote-Write-Exemplars-Written", "Retry-After"})
    if (auto v = res.headers.get(h)) reply.header(h, *v);
  return reply;
}

std::vector<WrittenRecorder::Exchange> WrittenRecorder::exchanges() const {
  std::lock_guard lock(mu_);
  return exchanges_;
}

std::vector<std::string> WrittenRecorder::mismatches() const {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < exchanges_.size(); ++i) {
    const auto& x = exchanges_[i];
    std::string what = "request " + std::to_string(i) + " (" + (x.v2 ? "2.0" : "1.0") + ", " + x.sent.toString() +
                       "): HTTP " + std::to_string(x.status);
    if (x.status / 100 != 2) {
      out.push_back(what);
    } else if (x.v2 && (!x.written || !(*x.written == x.sent))) {
      out.push_back(what + ", written " + (x.written ? x.written->toString() : std::string("(no headers)")));
    }
  }
  return out;
}

ElementCounts WrittenRecorder::sentTotal() const {
  ElementCounts total;
  std::lock_guard lock(mu_);
  for (const auto& x : exchanges_)
    if (x.v2 && x.status / 100 == 2) total += x.sent;
  return total;
}

}  // namespace cardinal::integration
