// Cardinal in the OpenTelemetry ecosystem (issue 8): an application instrumented with the
// OpenTelemetry Go SDK (tests/peers/otel-sender) exports the seed's eight metric families, a
// histogram and its resource over OTLP; real Collectors (tests/peers/otelcol.sh, running the
// files of deploy/otelcol/ as they are) carry them to Cardinal with the prometheusremotewrite
// exporter, and a real Prometheus 2.42 stores what Cardinal forwards:
//   1. direct:    sender -> Collector (otlp -> prometheus_remote_write) -> Cardinal -> Prometheus
//   2. Kafka:     sender -> Collector A (otlp -> kafka, topic otlp_metrics, otlp_proto) -> Kafka
//                 (KRaft) -> Collector B (kafka -> prometheus_remote_write) -> Cardinal ->
//                 Prometheus
//   3. scale-out: sender -> front Collector (load_balancing, routing_key: metric) -> 2 x
//                 (Collector -> Cardinal) -> one Prometheus; every family handled by one pair.
// Each case checks, in Prometheus: target_info from the resource, the histogram complete
// (every bucket, _sum, _count equal to what the SDK recorded), the seed's families sanitized
// (no id label, no raw value the sender sent, paths/SQL/file paths normalized, emails as hash
// tokens) and merged type-correctly (the merged counter equals the number of orders sent).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "ecosystem_peers.h"
#include "harness.h"

namespace cardinal::integration {
namespace {

constexpr int64_t kMinute = 60 * 1000;
const char* const kHistogram = "http_server_request_duration_seconds";
const char* const kScope = "cardinal.tests/otel-sender";
const std::regex kTokenRe("h:[0-9a-f]{16}");
const std::regex kWholeTokenRe("^h:[0-9a-f]{16}$");

std::string stripTokens(const std::string& v) { return std::regex_replace(v, kTokenRe, "{h}"); }

Labels labelsFromJson(const nlohmann::json& obj) {
  Labels out;
  for (const auto& [k, v] : obj.items()) out[k] = v.get<std::string>();
  return out;
}

std::string join(const std::vector<std::string>& lines, size_t max = 30) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max; ++i) out += lines[i] + "\n";
  if (lines.size() > max) out += "... and " + std::to_string(lines.size() - max) + " more\n";
  return out;
}

// le values as the prometheusremotewrite exporter writes them (shortest decimal form).
std::string leOf(double bound) { return formatDouble(bound); }

// Every metric name the sender's data becomes in Prometheus.
std::set<std::string> expectedNames(const SenderReport& rep) {
  std::set<std::string> names(rep.families.begin(), rep.families.end());
  names.insert(rep.extra_families.begin(), rep.extra_families.end());
  for (const char* suffix : {"_bucket", "_sum", "_count"})
    names.insert(kHistogram + std::string(suffix));
  names.insert("target_info");
  return names;
}

// The metric family a stored name belongs to (the histogram's three series are one family).
std::string familyOf(const std::string& name) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string full = kHistogram + std::string(suffix);
    if (name == full) return kHistogram;
  }
  return name;
}

struct Snapshot {
  std::map<std::string, std::vector<Labels>> series;  // by metric name
  std::map<Labels, double> latest;                    // instant values (last sample)
};

Snapshot snapshot(const PromApi& api, int64_t start_ms) {
  Snapshot s;
  const auto data =
      api.series("{__name__=~\".+\"}", start_ms - kMinute, nowMs() + kMinute).at("data");
  for (const auto& j : data) {
    Labels l = labelsFromJson(j);
    s.series[l.at("__name__")].push_back(l);
  }
  s.latest = api.instantValues("{__name__=~\".+\"}");
  return s;
}

std::optional<double> latestOf(const Snapshot& s, const Labels& labels) {
  auto it = s.latest.find(labels);
  return it == s.latest.end() ? std::nullopt : std::optional<double>(it->second);
}

std::string describeStored(const Snapshot& s) {
  std::string out;
  for (const auto& [name, list] : s.series)
    for (const auto& l : list) {
      auto v = latestOf(s, l);
      out += labelsToString(l) + " " + (v ? formatDouble(*v) : "-") + "\n";
    }
  return out.substr(0, 12000);
}

// The labels every seed series keeps: job/instance from the resource, the SDK scope, env and
// region from the data points.
Labels seedBase(const SenderReport& rep, const std::string& name) {
  return {{"__name__", name},          {"job", rep.service_name}, {"instance", rep.instance_id},
          {"otel_scope_name", kScope}, {"env", "prod"},           {"region", "us-east"}};
}

Labels histogramLabels(const SenderReport& rep, const std::string& name) {
  return {{"__name__", name},
          {"job", rep.service_name},
          {"instance", rep.instance_id},
          {"otel_scope_name", kScope},
          {"http_request_method", "GET"},
          {"http_route", "/users/{id}/orders/{id}"},
          {"http_response_status_code", "200"}};
}

double mergedOrders(const SenderReport& rep) {
  return static_cast<double>(rep.distinctValues("order_payment_failures_total/order_id").size());
}

// True once Prometheus holds the sender's last round: the histogram's _count equals what the
// SDK recorded and the merged order counter equals the number of orders sent.
bool complete(const PromApi& api, const SenderReport& rep, int64_t start_ms, Snapshot* out) {
  *out = snapshot(api, start_ms);
  auto count = latestOf(*out, histogramLabels(rep, std::string(kHistogram) + "_count"));
  auto orders = latestOf(*out, seedBase(rep, "order_payment_failures_total"));
  if (!count || *count != static_cast<double>(rep.histogram_count)) return false;
  if (!orders || *orders != mergedOrders(rep)) return false;
  for (const auto& name : expectedNames(rep))
    if (!out->series.count(name)) return false;
  return true;
}

// Waits (bounded) until the data is complete, then checks everything stored.
void checkStored(const PromApi& api, const SenderReport& rep, int64_t start_ms) {
  Snapshot s;
  const bool arrived =
      waitUntil([&] { return complete(api, rep, start_ms, &s); }, Millis(40000), Millis(500));
  INFO("stored series (latest values):\n" << describeStored(s));
  CHECK_MESSAGE(arrived, "Prometheus did not hold the sender's last round within 40 s");

  // 1. Nothing but the sender's families (and target_info).
  const auto want_names = expectedNames(rep);
  for (const auto& [name, list] : s.series)
    CHECK_MESSAGE(want_names.count(name), "unexpected metric stored: " << name);
  for (const auto& name : want_names)
    CHECK_MESSAGE(s.series.count(name), "missing metric: " << name);

  // 2. No raw value the sender sent survives anywhere (hash tokens stripped first, so digit
  // runs inside a token do not count), no id label, nothing shaped like an email.
  std::vector<std::string> leaks;
  for (const auto& [name, list] : s.series) {
    for (const auto& labels : list) {
      for (const auto& [k, v] : labels) {
        for (const char* id_label : {"user_id", "order_id", "pid", "timestamp"})
          if (k == id_label) leaks.push_back(labelsToString(labels) + ": id label " + k + " kept");
        const std::string stripped = stripTokens(v);
        if (stripped.find('@') != std::string::npos)
          leaks.push_back(labelsToString(labels) + ": " + k + " looks like an email");
        if (stripped.find("h:") != std::string::npos)
          leaks.push_back(labelsToString(labels) + ": " + k + " holds a malformed hash token");
        for (const auto& [family_label, values] : rep.sensitive)
          for (const auto& raw : values)
            if (stripped.find(raw) != std::string::npos)
              leaks.push_back(labelsToString(labels) + ": " + k + " contains the raw " +
                              family_label + " value \"" + raw + "\"");
      }
    }
  }
  CHECK_MESSAGE(leaks.empty(), leaks.size() << " stored label values leak what was sent:\n"
                                            << join(leaks));

  // 3. The seed's families: ids dropped and the series merged into one, values normalized.
  const std::map<std::string, Labels> merged = {
      {"checkout_request_latency_seconds", {}},
      {"order_payment_failures_total", {}},
      {"process_cpu_percent", {}},
      {"auth_event_count", {}},
      {"temp_file_size_bytes", {{"file_path", "/tmp/upload/session_{ts}/file.txt"}}},
      {"api_request_count", {{"path", "/users/{id}/orders/{id}"}}},
      {"db_query_duration_seconds", {{"query", "SELECT * FROM orders WHERE id = ?"}}},
  };
  for (const auto& [name, extra] : merged) {
    CAPTURE(name);
    Labels want = seedBase(rep, name);
    want.insert(extra.begin(), extra.end());
    const auto& got = s.series[name];
    CHECK_MESSAGE(got.size() == 1,
                  got.size() << " series stored for " << name << ", want 1 merged series");
    CHECK_MESSAGE(std::count(got.begin(), got.end(), want) == 1,
                  "merged series " << labelsToString(want) << " not stored");
  }
  // The merged counter: each order counted once (SDK cumulative sums repeat old orders with
  // the same value; Cardinal adds increases only), so it ends at the number of orders.
  {
    auto v = latestOf(s, seedBase(rep, "order_payment_failures_total"));
    CHECK_MESSAGE((v && *v == mergedOrders(rep)), "order_payment_failures_total is "
                                                      << (v ? formatDouble(*v) : "absent")
                                                      << ", want " << mergedOrders(rep)
                                                      << " (one per order sent)");
  }
  // user_login_total: one hash token per distinct address, the same token every round (the
  // persistent address's counter reaches 1 + 2 + ... + rounds), every other login counted 1.
  {
    const auto emails = rep.distinctValues("user_login_total/email");
    const auto& got = s.series["user_login_total"];
    CHECK_MESSAGE(got.size() == emails.size(), got.size()
                                                   << " user_login_total series, " << emails.size()
                                                   << " distinct emails sent");
    const double persistent = rep.rounds * (rep.rounds + 1) / 2.0;
    int persistent_series = 0;
    for (const auto& l : got) {
      CAPTURE(labelsToString(l));
      Labels without = l;
      const std::string token = without.count("email") ? without.at("email") : "";
      without.erase("email");
      CHECK(without == seedBase(rep, "user_login_total"));
      CHECK_MESSAGE(std::regex_match(token, kWholeTokenRe), "email is not a hash token");
      auto v = latestOf(s, l);
      REQUIRE(v.has_value());
      if (*v == persistent) {
        ++persistent_series;
      } else {
        CHECK_MESSAGE(*v == 1, "a one-off login counted " << *v);
      }
    }
    CHECK_MESSAGE(persistent_series == 1, persistent_series
                                              << " series reached " << persistent
                                              << ": the persistent address did not keep one token");
  }

  // 4. The histogram: every bucket, _sum and _count as the SDK recorded them (cumulative).
  {
    const auto& buckets = s.series[std::string(kHistogram) + "_bucket"];
    std::vector<std::string> les;
    for (double b : rep.histogram_bounds) les.push_back(leOf(b));
    les.push_back("+Inf");
    CHECK_MESSAGE(buckets.size() == les.size(), buckets.size() << " buckets, want " << les.size());
    double previous = 0;
    for (const auto& le : les) {
      CAPTURE(le);
      Labels l = histogramLabels(rep, std::string(kHistogram) + "_bucket");
      l["le"] = le;
      auto v = latestOf(s, l);
      CHECK_MESSAGE(v.has_value(), "bucket le=" << le << " missing");
      if (!v) continue;
      CHECK_MESSAGE(*v >= previous, "buckets decrease at le=" << le);
      previous = *v;
      if (le == "+Inf") CHECK(*v == static_cast<double>(rep.histogram_count));
    }
    auto count = latestOf(s, histogramLabels(rep, std::string(kHistogram) + "_count"));
    auto sum = latestOf(s, histogramLabels(rep, std::string(kHistogram) + "_sum"));
    CHECK_MESSAGE(
        (count && *count == static_cast<double>(rep.histogram_count)),
        "_count " << (count ? formatDouble(*count) : "absent") << ", want " << rep.histogram_count);
    CHECK_MESSAGE(
        (sum && std::fabs(*sum - rep.histogram_sum) <= 1e-9 * std::max(1.0, rep.histogram_sum)),
        "_sum " << (sum ? formatDouble(*sum) : "absent") << ", want " << rep.histogram_sum);
  }

  // 5. target_info from the resource: job and instance from service.name and
  // service.instance.id, the other resource attributes as labels.
  {
    const Labels want = {{"__name__", "target_info"},
                         {"job", rep.service_name},
                         {"instance", rep.instance_id},
                         {"service_version", "1.4.2"},
                         {"deployment_environment_name", "prod"},
                         {"cloud_region", "us-east"},
                         {"telemetry_sdk_language", "go"},
                         {"telemetry_sdk_name", "opentelemetry"}};
    const auto& got = s.series["target_info"];
    CHECK_MESSAGE(got.size() == 1, got.size() << " target_info series, want 1");
    for (const auto& l : got) {
      for (const auto& [k, v] : want) {
        auto it = l.find(k);
        CHECK_MESSAGE((it != l.end() && it->second == v),
                      "target_info " << labelsToString(l) << ": want " << k << "=\"" << v << "\"");
      }
      CHECK_MESSAGE(l.count("telemetry_sdk_version"), labelsToString(l));
    }
  }
}

// Cardinal processed the data (not merely passed it through) and rejected nothing.
void checkCardinalCounters(const CardinalServer& cardinal) {
  const std::string text = cardinal.metricsText();
  INFO("cardinal /metrics:\n" << text.substr(0, 6000));
  CHECK(metricValue(text, "cardinal_received_samples_total").value_or(0) > 0);
  CHECK(metricValue(text, "cardinal_sanitize_redacted_total", {{"source", "email"}}).value_or(0) >
        0);
  for (const char* n : {"url_path", "sql", "file_path"})
    CHECK_MESSAGE(
        metricValue(text, "cardinal_normalize_values_total", {{"normalizer", n}}).value_or(0) > 0,
        "normalizer " << n << " never ran");
  CHECK(metricValue(text, "cardinal_merge_input_series_total").value_or(0) > 0);
  CHECK(metricValue(text, "cardinal_rejected_requests_total").value_or(0) == 0);
}

// The Collector's exporters lost nothing.
void checkNoExportFailures(const OtelCollector& collector, const std::string& what) {
  const std::string text = collector.telemetryText();
  INFO(what << " telemetry:\n" << text.substr(0, 4000));
  CHECK_MESSAGE(!text.empty(), what << ": no telemetry");
  CHECK_MESSAGE(metricValue(text, "otelcol_exporter_send_failed_metric_points").value_or(0) == 0,
                what << " failed to export some points");
}

std::string otlpEndpoint() { return "127.0.0.1:" + std::to_string(freePort()); }

PrometheusServer::Options receiverOptions() {
  PrometheusServer::Options o;
  o.name = "prometheus";
  return o;
}

const std::vector<std::string> kCardinalFlags = {"--aggregation.interval=1s"};

TEST_CASE(
    "ecosystem: OTel SDK -> Collector (otlp -> prometheus_remote_write) -> Cardinal -> "
    "Prometheus") {
  TempDir dir("cardinal-eco-direct");
  PrometheusServer prom(dir, receiverOptions());
  CardinalServer cardinal(dir, prom.writeUrl(), kCardinalFlags);
  const std::string otlp = otlpEndpoint();
  OtelCollector collector(
      dir, "otelcol", otelcolConfig("direct.yaml").string(),
      {{"OTLP_GRPC_ENDPOINT", otlp}, {"CARDINAL_WRITE_URL", cardinal.writeUrl()}});
  INFO(describe(collector.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(prom.process()));

  const int64_t start = nowMs();
  SenderOptions so;
  so.endpoint = otlp;
  const SenderReport rep = runOtelSender(dir, so);
  checkStored(prom.api(), rep, start);
  checkCardinalCounters(cardinal);
  checkNoExportFailures(collector, "collector");
  CHECK(collector.telemetry("otelcol_receiver_accepted_metric_points").value_or(0) > 0);
}

TEST_CASE(
    "ecosystem: the seed's Kafka path: Collector -> Kafka (KRaft) -> Collector bridge -> "
    "Cardinal -> Prometheus") {
  TempDir dir("cardinal-eco-kafka");
  KafkaBroker kafka(dir);
  INFO(describe(kafka.process()));
  const std::string topic = "otlp_metrics";
  kafka.createTopic(topic, 2);

  PrometheusServer prom(dir, receiverOptions());
  CardinalServer cardinal(dir, prom.writeUrl(), kCardinalFlags);
  OtelCollector bridge(dir, "otelcol-bridge", otelcolConfig("kafka-bridge.yaml").string(),
                       {{"KAFKA_BROKERS", kafka.bootstrap()},
                        {"KAFKA_TOPIC", topic},
                        {"KAFKA_GROUP_ID", "cardinal-bridge-it"},
                        {"CARDINAL_WRITE_URL", cardinal.writeUrl()}});
  const std::string otlp = otlpEndpoint();
  OtelCollector producer(
      dir, "otelcol-producer", otelcolConfig("kafka-producer.yaml").string(),
      {{"OTLP_GRPC_ENDPOINT", otlp}, {"KAFKA_BROKERS", kafka.bootstrap()}, {"KAFKA_TOPIC", topic}});
  INFO(describe(producer.process()));
  INFO(describe(bridge.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(prom.process()));

  const int64_t start = nowMs();
  SenderOptions so;
  so.endpoint = otlp;
  so.rounds = 3;
  const SenderReport rep = runOtelSender(dir, so);
  checkStored(prom.api(), rep, start);
  checkCardinalCounters(cardinal);

  // The data really went through Kafka: records in the topic, the producer's kafka exporter
  // sent points, the bridge's kafka receiver accepted them.
  const auto records = kafka.recordsIn(topic);
  CHECK_MESSAGE((records && *records > 0),
                "records in " << topic << ": " << (records ? std::to_string(*records) : "unknown"));
  CHECK(producer.telemetry("otelcol_exporter_sent_metric_points", {{"exporter", "kafka"}})
            .value_or(0) > 0);
  CHECK(bridge.telemetry("otelcol_receiver_accepted_metric_points", {{"receiver", "kafka"}})
            .value_or(0) > 0);
  checkNoExportFailures(producer, "producer");
  checkNoExportFailures(bridge, "bridge");
}

TEST_CASE(
    "ecosystem: scale-out: load_balancing by metric name to 2 Collector + Cardinal pairs, "
    "each family handled by exactly one") {
  TempDir dir("cardinal-eco-scale");
  PrometheusServer prom(dir, receiverOptions());
  // Each Cardinal forwards through its own recorder, which tells which families it handled.
  const auto first_write = std::make_shared<FirstWriteGate>();  // see FirstWriteGate
  RecordingForwarder tap1(prom.writeUrl(), first_write);
  RecordingForwarder tap2(prom.writeUrl(), first_write);
  CardinalServer cardinal1(dir, tap1.writeUrl(), kCardinalFlags, "cardinal1");
  CardinalServer cardinal2(dir, tap2.writeUrl(), kCardinalFlags, "cardinal2");
  const std::string pair1_otlp = otlpEndpoint();
  const std::string pair2_otlp = otlpEndpoint();
  // Only pair 1 writes target_info (see deploy/otelcol/scale-out-pair.yaml).
  OtelCollector pair1(dir, "otelcol-pair1", otelcolConfig("scale-out-pair.yaml").string(),
                      {{"OTLP_GRPC_ENDPOINT", pair1_otlp},
                       {"CARDINAL_WRITE_URL", cardinal1.writeUrl()},
                       {"OTELCOL_TARGET_INFO", "true"}});
  OtelCollector pair2(dir, "otelcol-pair2", otelcolConfig("scale-out-pair.yaml").string(),
                      {{"OTLP_GRPC_ENDPOINT", pair2_otlp},
                       {"CARDINAL_WRITE_URL", cardinal2.writeUrl()},
                       {"OTELCOL_TARGET_INFO", "false"}});
  const std::string otlp = otlpEndpoint();
  OtelCollector front(dir, "otelcol-front", otelcolConfig("scale-out-front.yaml").string(),
                      {{"OTLP_GRPC_ENDPOINT", otlp},
                       {"CARDINAL_PAIRS", "[" + pair1_otlp + ", " + pair2_otlp + "]"}});
  INFO(describe(front.process()));
  INFO(describe(pair1.process()));
  INFO(describe(pair2.process()));
  INFO(describe(cardinal1.process()));
  INFO(describe(cardinal2.process()));
  INFO(describe(prom.process()));

  const int64_t start = nowMs();
  SenderOptions so;
  so.endpoint = otlp;
  so.rounds = 3;
  // 20 more metric names: with 29 families, the chance that the hash ring gives all of them
  // to one pair (which would make the check below trivial) is about 2^-28.
  so.extra_families = 20;
  const SenderReport rep = runOtelSender(dir, so);
  // Everything arrives, sanitized and merged right: the merged counter would be wrong (two
  // Cardinals each writing their own sum into one series) if a family were split.
  checkStored(prom.api(), rep, start);

  std::map<std::string, std::set<int>> handled_by;  // family -> pairs
  std::set<std::string> families1, families2;
  for (const auto& n : tap1.metricNames()) {
    handled_by[familyOf(n)].insert(1);
    families1.insert(familyOf(n));
  }
  for (const auto& n : tap2.metricNames()) {
    handled_by[familyOf(n)].insert(2);
    families2.insert(familyOf(n));
  }
  auto list = [](const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += x + " ";
    return out;
  };
  INFO("pair 1 handled: " << list(families1));
  INFO("pair 2 handled: " << list(families2));
  std::set<std::string> want;
  for (const auto& n : expectedNames(rep)) want.insert(familyOf(n));
  for (const auto& family : want) {
    CAPTURE(family);
    const auto& pairs = handled_by[family];
    CHECK_MESSAGE(pairs.size() == 1,
                  family << " reached " << pairs.size() << " Cardinals, want exactly 1");
  }
  for (const auto& [family, pairs] : handled_by)
    CHECK_MESSAGE(want.count(family), "unexpected family forwarded: " << family);
  CHECK_MESSAGE(handled_by["target_info"] == std::set<int>{1},
                "target_info must come from pair 1 only");
  CHECK_MESSAGE((families1.size() > 1 && families2.size() > 0),
                "the ring gave (nearly) everything to one pair: nothing was spread");
  CHECK_MESSAGE(tap1.failures().empty(), "cardinal1 -> Prometheus failed:\n"
                                             << join(tap1.failures()));
  CHECK_MESSAGE(tap2.failures().empty(), "cardinal2 -> Prometheus failed:\n"
                                             << join(tap2.failures()));
  for (auto* c : {&cardinal1, &cardinal2})
    CHECK(metricValue(c->metricsText(), "cardinal_rejected_requests_total").value_or(0) == 0);
  for (auto* p : {&pair1, &pair2})
    CHECK(p->telemetry("otelcol_receiver_accepted_metric_points").value_or(0) > 0);
  checkNoExportFailures(front, "front");
  checkNoExportFailures(pair1, "pair 1");
  checkNoExportFailures(pair2, "pair 2");
}

}  // namespace
}  // namespace cardinal::integration
