// Remote-write 2.0 with real 2.0 peers (issue 9), in the ecosystem executable because its peers
// are built from the Go module proxy and cached outside the repo (tests/peers/README.md):
//   1. Prometheus 3 (tests/peers/prometheus3.sh) in agent mode scrapes the fixture and sends
//      io.prometheus.write.v2.Request (protobuf_message) through two Cardinals: one forwards 1.0
//      to Prometheus 2.42 (Debian), the other 2.0 to a Prometheus 3 receiver that accepts only
//      io.prometheus.write.v2.Request (and a 1.0 request is translated into it). Every scraped
//      sample is stored exactly in both; every
//      answer's Written headers equal what the request carried (checked by a recording hop
//      between the sender and each Cardinal); Prometheus 3 counts no failed sample.
//   2. The pinned Collector (tests/peers/otelcol.sh) in its RW2 mode (feature gate
//      exporter.prometheusremotewritexporter.enableSendingRW2, protobuf_message) carries the
//      OTel SDK sender's data to Cardinal -> Prometheus 2.42; Written headers exact per request,
//      the Collector's own written_samples telemetry equal to what it sent, the histogram
//      complete in Prometheus.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>

#include "ecosystem_peers.h"
#include "harness.h"
#include "rw2_support.h"

namespace cardinal::integration {
namespace {

constexpr int kMinScrapes = 3;
const char* const kFixtureSelector = R"({__name__=~"fixture_.*"})";

std::string prometheus3Binary() {
  return requiredPeerPath("CARDINAL_PROMETHEUS3_BIN", false,
                          "Prometheus 3 built by tests/peers/prometheus3.sh, which prints its path");
}

// Prometheus 3 as a child process: an agent (remote-write sender) or a server whose
// remote-write receiver accepts only the 2.0 message (so nothing arrives there as 1.0).
class Prometheus3 {
 public:
  Prometheus3(const TempDir& dir, const std::string& name, const std::string& config_yaml, bool agent)
      : port_(freePort()) {
    auto config = dir.writeFile(name + ".yml", config_yaml);
    auto data = dir.subdir(name + "-data");
    std::vector<std::string> argv = {prometheus3Binary(), "--config.file=" + config.string(),
                                     "--web.listen-address=127.0.0.1:" + std::to_string(port_)};
    if (agent) {
      argv.push_back("--agent");
      argv.push_back("--storage.agent.path=" + data.string());
    } else {
      argv.push_back("--storage.tsdb.path=" + data.string());
      argv.push_back("--web.enable-remote-write-receiver");
      argv.push_back("--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request");
    }
    process_ = std::make_unique<Process>(name, argv, dir.path() / (name + ".log"), dir.subdir(name));
    waitReady(*process_, baseUrl() + "/-/ready", Millis(30000));
  }
  Process& process() { return *process_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string writeUrl() const { return baseUrl() + "/api/v1/write"; }
  PromApi api() const { return PromApi(baseUrl()); }
  std::optional<double> metric(std::string_view name, const Labels& match = {}) const {
    auto r = httpGet(baseUrl() + "/metrics", Millis(3000));
    return r.status == 200 ? metricValue(r.body, name, match) : std::nullopt;
  }

 private:
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

// Prometheus 3 normalizes classic histogram and summary bucket labels when it scrapes
// (`le="1"` becomes `le="1.0"`: integral values get ".0"); Cardinal forwards them as they come.
std::string prometheus3Float(const std::string& v) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !std::isfinite(d)) return v;
  std::string out = formatDouble(d);
  if (out.find_first_of(".eEnI") == std::string::npos) out += ".0";
  return out;
}

// What the fixture served, as a receiver must store it: fixture labels + job + instance.
ExpectedSamples servedAsStored(const std::vector<ScrapeTarget::Served>& served, const Labels& target_labels,
                               int max_scrape) {
  ExpectedSamples out;
  for (const auto& s : served) {
    if (max_scrape > 0 && s.scrape > max_scrape) continue;
    Labels labels = s.labels;
    for (const char* name : {"le", "quantile"})
      if (auto it = labels.find(name); it != labels.end()) it->second = prometheus3Float(it->second);
    labels.insert(target_labels.begin(), target_labels.end());
    out[labels][s.timestamp_ms] = s.value;
  }
  return out;
}

// Waits until `receiver` holds every sample of the first kMinScrapes scrapes, then checks that
// everything stored under fixture_* was served exactly so.
void checkFixtureStored(const std::string& what, const PromApi& receiver, const ScrapeTarget& target,
                        const Labels& target_labels) {
  const ExpectedSamples must_have = servedAsStored(target.served(), target_labels, kMinScrapes);
  StoredSeries stored;
  StoredDiff diff;
  bool arrived = waitUntil(
      [&] {
        stored = receiver.rawSamples(kFixtureSelector);
        diff = diffStored(must_have, servedAsStored(target.served(), target_labels, 0), stored);
        return diff.missing.empty();
      },
      Millis(30000), Millis(250));
  CHECK_MESSAGE(arrived, what << ": the first " << kMinScrapes << " scrapes did not all arrive within 30s:\n"
                              << diff.report());
  diff = diffStored(must_have, servedAsStored(target.served(), target_labels, 0), stored);
  CHECK_MESSAGE(diff.empty(), what << ": " << diff.report());
  size_t n = 0;
  for (const auto& [labels, samples] : stored) n += samples.size();
  MESSAGE(what << " holds " << stored.size() << " fixture series, " << n << " samples");
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 20; ++i) out += lines[i] + "\n";
  return out;
}

TEST_CASE("rw2: Prometheus 3 sends 2.0 through Cardinal to Prometheus 2.42 (1.0) and to Prometheus 3 (2.0)") {
  TempDir dir;
  PrometheusServer::Options ropts;
  ropts.name = "prometheus-2.42";
  PrometheusServer store_v1(dir, ropts);
  Prometheus3 store_v2(dir, "prometheus3-receiver", "global: {}\n", false);
  CardinalServer cardinal_v1(dir, store_v1.writeUrl(), {}, "cardinal-v1");
  CardinalServer cardinal_v2(dir, store_v2.writeUrl(), {"--upstream.protocol=v2"}, "cardinal-v2");
  WrittenRecorder rec_v1(cardinal_v1.writeUrl());
  WrittenRecorder rec_v2(cardinal_v2.writeUrl());
  ScrapeTarget target;
  Prometheus3 sender(dir, "prometheus3-agent",
                     scrapeConfigYaml("fixture", target.hostPort()) +
                         orderedRemoteWriteYaml({rec_v1.writeUrl(), rec_v2.writeUrl()}, "protobuf_message: io.prometheus.write.v2.Request"),
                     true);
  INFO(describe(sender.process()));
  INFO(describe(cardinal_v1.process()));
  INFO(describe(cardinal_v2.process()));
  INFO(describe(store_v1.process()));
  INFO(describe(store_v2.process()));

  REQUIRE_MESSAGE(waitUntil([&] { return target.scrapeCount() >= kMinScrapes; }, Millis(20000)),
                  "Prometheus 3 scraped the fixture only " << target.scrapeCount() << " times");
  const Labels target_labels{{"job", "fixture"}, {"instance", target.hostPort()}};
  checkFixtureStored("Prometheus 2.42 (via 1.0)", store_v1.api(), target, target_labels);
  checkFixtureStored("Prometheus 3 (via 2.0)", store_v2.api(), target, target_labels);

  // Every request was 2.0 and every answer confirmed exactly what it carried.
  for (auto* rec : {&rec_v1, &rec_v2}) {
    auto ex = rec->exchanges();
    REQUIRE_FALSE(ex.empty());
    for (const auto& x : ex) CHECK_MESSAGE(x.content_type == kV2ContentType, x.content_type);
    CHECK_MESSAGE(rec->mismatches().empty(), join(rec->mismatches()));
    CHECK(rec->sentTotal().samples > 0);
  }
  // Prometheus 3 itself found nothing wrong with the answers (it fails a batch whose 2xx does not
  // confirm its samples).
  auto failed = sender.metric("prometheus_remote_storage_samples_failed_total");
  CHECK_MESSAGE((!failed || *failed == 0), "Prometheus 3 counted " << *failed << " failed samples");
  CHECK(cardinal_v1.metric("cardinal_forwarded_translated_requests_total").value_or(0) > 0);
  CHECK(cardinal_v2.metric("cardinal_forwarded_unchanged_requests_total").value_or(0) > 0);
  CHECK(cardinal_v2.metric("cardinal_received_v2_requests_total").value_or(0) > 0);

  // 1.0 in, 2.0 out: a 1.0 request (with its metadata) through the v2 Cardinal into the
  // Prometheus 3 that takes only 2.0.
  const double translated_before = cardinal_v2.metric("cardinal_forwarded_translated_requests_total").value_or(0);
  prometheus::WriteRequest v1req;
  const int64_t t = nowMs() - 10000;
  addSeries(v1req, {{"__name__", "it_rw2_translated_total"}, {"job", "it"}, {"code", "200"}}, {{1, t}, {4, t + 5000}});
  addSeries(v1req, {{"__name__", "it_rw2_translated_celsius"}, {"job", "it"}}, {{-3.5, t}});
  auto* md = v1req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("it_rw2_translated_total");
  md->set_help("Translated.");
  auto res = postRemoteWrite(cardinal_v2.writeUrl(), v1req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  auto expected = expectedFrom(v1req);
  auto stored = store_v2.api().rawSamples("{__name__=~\"it_rw2_translated_.*\"}");
  auto diff = diffStored(expected, expected, stored);
  CHECK_MESSAGE(diff.empty(), diff.report());
  CHECK(cardinal_v2.metric("cardinal_forwarded_translated_requests_total").value_or(0) == translated_before + 1);
}

const char* const kCollectorRw2Config = R"(receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:OTLP_GRPC_ENDPOINT}
processors:
  batch:
    timeout: 1s
exporters:
  prometheus_remote_write:
    endpoint: ${env:CARDINAL_WRITE_URL}
    # Remote-write 2.0: needs --feature-gates=exporter.prometheusremotewritexporter.enableSendingRW2
    protobuf_message: io.prometheus.write.v2.Request
    remote_write_queue:
      enabled: true
      queue_size: 10000
    max_batch_request_parallelism: 1
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 5s
      max_elapsed_time: 5m
    timeout: 10s
service:
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [prometheus_remote_write]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: ${env:OTELCOL_TELEMETRY_PORT}
)";

TEST_CASE("rw2: the Collector in its RW2 mode -> Cardinal -> Prometheus 2.42, Written headers exact") {
  TempDir dir;
  PrometheusServer::Options ropts;
  ropts.name = "prometheus-2.42";
  PrometheusServer store(dir, ropts);
  CardinalServer cardinal(dir, store.writeUrl(), {"--aggregation.interval=1s"});
  WrittenRecorder rec(cardinal.writeUrl());
  const std::string otlp = "127.0.0.1:" + std::to_string(freePort());
  auto config = dir.writeFile("otelcol-rw2.yaml", kCollectorRw2Config);
  OtelCollector collector(dir, "otelcol-rw2", config.string(),
                          {{"OTLP_GRPC_ENDPOINT", otlp}, {"CARDINAL_WRITE_URL", rec.writeUrl()}},
                          {"--feature-gates=exporter.prometheusremotewritexporter.enableSendingRW2"});
  INFO(describe(collector.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(store.process()));

  SenderOptions so;
  so.endpoint = otlp;
  so.rounds = 3;
  const SenderReport rep = runOtelSender(dir, so);

  // The sender's last round is in Prometheus once the histogram's count is complete.
  const std::string count_expr = "sum(http_server_request_duration_seconds_count)";
  std::map<Labels, double> count;
  bool complete = waitUntil(
      [&] {
        count = store.api().instantValues(count_expr);
        return count.size() == 1 && count.begin()->second == static_cast<double>(rep.histogram_count);
      },
      Millis(40000), Millis(500));
  CHECK_MESSAGE(complete, count_expr << " never reached " << rep.histogram_count);

  auto ex = rec.exchanges();
  REQUIRE_FALSE(ex.empty());
  for (const auto& x : ex) CHECK_MESSAGE(x.content_type == kV2ContentType, x.content_type);
  CHECK_MESSAGE(rec.mismatches().empty(), join(rec.mismatches()));
  const ElementCounts sent = rec.sentTotal();
  CHECK(sent.samples > 0);
  // The Collector counted, from Cardinal's headers, exactly what it sent.
  auto telemetry = [&](const char* name) {
    auto v = collector.telemetry(std::string(name) + "_total");
    return v ? v : collector.telemetry(name);
  };
  auto written_samples = telemetry("otelcol_exporter_prometheusremotewrite_written_samples");
  REQUIRE_MESSAGE(written_samples.has_value(), collector.telemetryText().substr(0, 3000));
  CHECK(*written_samples == static_cast<double>(sent.samples));
  auto failed = collector.telemetry("otelcol_exporter_send_failed_metric_points_total");
  CHECK_MESSAGE((!failed || *failed == 0), "the Collector failed to send " << *failed << " points");
  CHECK(cardinal.metric("cardinal_received_v2_requests_total").value_or(0) == static_cast<double>(ex.size()));
}

}  // namespace
}  // namespace cardinal::integration
