// Crafted remote-write requests through Cardinal into a real Prometheus receiver: floats,
// native histograms, exemplars, and label sets that arrive unsorted.
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

constexpr int64_t kMinute = 60 * 1000;

TEST_CASE("crafted counters and gauges reach the Prometheus receiver exactly") {
  TempDir dir;
  PrometheusServer prom(dir, {});
  CardinalServer cardinal(dir, prom.writeUrl());
  INFO(describe(cardinal.process()));
  INFO(describe(prom.process()));

  const int64_t base = nowMs() - 5 * kMinute;
  prometheus::WriteRequest req;
  addSeries(req,
            {{"__name__", "it_crafted_requests_total"},
             {"code", "200"},
             {"instance", "host-a:9100"},
             {"job", "api"}},
            {{0, base}, {1, base + 30000}, {2.5, base + 60000}, {1e15 + 0.5, base + 90000}});
  addSeries(req,
            {{"__name__", "it_crafted_requests_total"},
             {"code", "500"},
             {"instance", "host-a:9100"},
             {"job", "api"}},
            {{7, base + 1}, {8, base + 30001}});
  addSeries(req, {{"__name__", "it_crafted_temperature"}, {"room", "Grüße, 世界"}},
            {{-273.15, base + 5}, {1e-9, base + 10}, {123456.789, base + 15},
             {-0.0, base + 20}});
  addSeries(req,
            {{"__name__", "it_crafted_temperature"}, {"room", "quote\" back\\slash\nnewline"}},
            {{std::numeric_limits<double>::infinity(), base + 100},
             {-std::numeric_limits<double>::infinity(), base + 200},
             {std::nan(""), base + 300},
             {42, base + 400}});
  std::vector<std::pair<std::string, std::string>> many = {{"__name__", "it_crafted_wide"}};
  for (int i = 0; i < 40; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "l%02d", i);
    many.emplace_back(name, "value-" + std::to_string(i * 7));
  }
  addSeries(req, many, {{3.5, base + 7 * 1000}});
  // A second request for an existing series, later samples: appended, not replaced.
  prometheus::WriteRequest req2;
  addSeries(req2,
            {{"__name__", "it_crafted_requests_total"},
             {"code", "200"},
             {"instance", "host-a:9100"},
             {"job", "api"}},
            {{1e15 + 1, base + 120000}});

  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, "first request: " << res.summary());
  res = postRemoteWrite(cardinal.writeUrl(), req2);
  REQUIRE_MESSAGE(res.status == 204, "second request: " << res.summary());

  ExpectedSamples expected = expectedFrom(req);
  for (const auto& [labels, samples] : expectedFrom(req2)) {
    expected[labels].insert(samples.begin(), samples.end());
  }

  // 204 means "the upstream accepted it", so the data must be queryable right away.
  auto stored = prom.api().rawSamples(R"({__name__=~"it_crafted_.*"})", "15m");
  StoredDiff diff = diffStored(expected, expected, stored);
  CHECK_MESSAGE(diff.empty(), "right after 204, Prometheus holds:\n" << diff.report());

  size_t sent_samples = 0;
  for (const auto& [labels, samples] : expected) sent_samples += samples.size();
  const std::string metrics = cardinal.metricsText();
  INFO("cardinal /metrics:\n" << metrics.substr(0, 6000));
  CHECK_MESSAGE(metricValue(metrics, "cardinal_received_samples_total").value_or(-1) >=
                    static_cast<double>(sent_samples),
                "cardinal_received_samples_total should count the " << sent_samples
                                                                    << " samples sent");
  CHECK_MESSAGE(metricValue(metrics, "cardinal_forwarded_samples_total").value_or(-1) >=
                    static_cast<double>(sent_samples),
                "cardinal_forwarded_samples_total should count the " << sent_samples
                                                                     << " samples delivered");
  CHECK_MESSAGE(metricValue(metrics, "cardinal_http_requests_total",
                            {{"code", "204"}, {"handler", "/api/v1/write"}})
                        .value_or(-1) >= 2,
                "cardinal_http_requests_total{code=\"204\",handler=\"/api/v1/write\"} >= 2");
  CHECK_MESSAGE(
      metricValue(metrics, "cardinal_upstream_requests_total", {{"outcome", "delivered"}})
              .value_or(-1) >= 2,
      "cardinal_upstream_requests_total{outcome=\"delivered\"} >= 2");
  // Prometheus listens on loopback: each request written to it at once made the
  // I/O thread yield its CPU to it (--upstream.yield-to-local, on by default).
  const double yields = metricValue(metrics, "cardinal_upstream_local_yields_total").value_or(-1);
  CHECK_MESSAGE(yields >= 2, "cardinal_upstream_local_yields_total = " << yields);
  CHECK(yields <= metricValue(metrics, "cardinal_upstream_attempts_total", {{"result", "2xx"}}).value_or(-1));
}

TEST_CASE("native histograms and exemplars reach the receiver intact") {
  TempDir dir;
  PrometheusServer::Options opts;
  opts.features = {"native-histograms", "exemplar-storage"};
  PrometheusServer prom(dir, opts);
  CardinalServer cardinal(dir, prom.writeUrl());
  INFO(describe(cardinal.process()));
  INFO(describe(prom.process()));

  const int64_t base = nowMs() - 2 * kMinute;
  prometheus::WriteRequest req;

  // Schema 0 (bucket i covers (2^(i-1), 2^i]); zero bucket [-0.001, 0.001].
  // Positive counts 3, 4, 2 at indexes 0, 1, 3; negative count 1 at index 0. Total 12.
  auto* hs = addSeries(req, {{"__name__", "it_native_latency_seconds"}, {"job", "it"}});
  struct Expect {
    int64_t ts;
    uint64_t count;
    double sum;
    uint64_t zero;
    std::vector<int64_t> pos;
    int64_t neg;
  };
  const std::vector<Expect> points = {{base, 12, 18.4, 2, {3, 4, 2}, 1},
                                      {base + 15000, 24, 36.8, 4, {6, 8, 4}, 2}};
  for (const auto& p : points) {
    auto* h = hs->add_histograms();
    h->set_count_int(p.count);
    h->set_sum(p.sum);
    h->set_schema(0);
    h->set_zero_threshold(0.001);
    h->set_zero_count_int(p.zero);
    auto* span = h->add_positive_spans();
    span->set_offset(0);
    span->set_length(2);
    span = h->add_positive_spans();
    span->set_offset(1);
    span->set_length(1);
    h->add_positive_deltas(p.pos[0]);
    h->add_positive_deltas(p.pos[1] - p.pos[0]);
    h->add_positive_deltas(p.pos[2] - p.pos[1]);
    span = h->add_negative_spans();
    span->set_offset(0);
    span->set_length(1);
    h->add_negative_deltas(p.neg);
    h->set_timestamp(p.ts);
  }

  auto* cs = addSeries(req, {{"__name__", "it_exemplar_requests_total"}, {"job", "it"}},
                       {{1, base}, {2, base + 15000}});
  auto* ex = cs->add_exemplars();
  auto* el = ex->add_labels();
  el->set_name("span_id");
  el->set_value("00f067aa0ba902b7");
  el = ex->add_labels();
  el->set_name("trace_id");
  el->set_value("4bf92f3577b34da6a3ce929d0e0e4736");
  ex->set_value(0.75);
  ex->set_timestamp(base + 15000);

  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());

  auto doc = prom.api().query("it_native_latency_seconds[15m]");
  INFO("query it_native_latency_seconds[15m] -> " << doc.dump().substr(0, 3000));
  const auto& result = doc.at("data").at("result");
  REQUIRE_MESSAGE(result.size() == 1, "expected one histogram series");
  CHECK(result[0].at("metric") ==
        nlohmann::json({{"__name__", "it_native_latency_seconds"}, {"job", "it"}}));
  REQUIRE_MESSAGE(result[0].contains("histograms"), "series has no native histogram samples");
  const auto& hists = result[0].at("histograms");
  REQUIRE(hists.size() == points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    CAPTURE(i);
    CHECK(promTimestampToMs(hists[i].at(0)) == p.ts);
    const auto& h = hists[i].at(1);
    CHECK(std::stod(h.at("count").get<std::string>()) == static_cast<double>(p.count));
    CHECK(std::stod(h.at("sum").get<std::string>()) == p.sum);
    // [boundary rule, lower, upper, count]; rule 0: (lower, upper], 1: [lower, upper),
    // 3: [lower, upper].
    std::vector<std::tuple<int, double, double, double>> want = {
        {1, -1, -0.5, static_cast<double>(p.neg)},
        {3, -0.001, 0.001, static_cast<double>(p.zero)},
        {0, 0.5, 1, static_cast<double>(p.pos[0])},
        {0, 1, 2, static_cast<double>(p.pos[1])},
        {0, 4, 8, static_cast<double>(p.pos[2])}};
    std::vector<std::tuple<int, double, double, double>> got;
    for (const auto& b : h.at("buckets")) {
      got.emplace_back(b.at(0).get<int>(), std::stod(b.at(1).get<std::string>()),
                       std::stod(b.at(2).get<std::string>()),
                       std::stod(b.at(3).get<std::string>()));
    }
    CHECK_MESSAGE(got == want, "buckets: " << h.at("buckets").dump());
  }

  auto exdoc = prom.api().queryExemplars("it_exemplar_requests_total", base - kMinute, nowMs());
  INFO("query_exemplars -> " << exdoc.dump().substr(0, 3000));
  const auto& data = exdoc.at("data");
  REQUIRE_MESSAGE(data.size() == 1, "expected exemplars for exactly one series");
  CHECK(data[0].at("seriesLabels") ==
        nlohmann::json({{"__name__", "it_exemplar_requests_total"}, {"job", "it"}}));
  const auto& exemplars = data[0].at("exemplars");
  REQUIRE(exemplars.size() == 1);
  CHECK(exemplars[0].at("labels") == nlohmann::json({{"span_id", "00f067aa0ba902b7"},
                                                     {"trace_id",
                                                      "4bf92f3577b34da6a3ce929d0e0e4736"}}));
  CHECK(std::stod(exemplars[0].at("value").get<std::string>()) == 0.75);
  CHECK(promTimestampToMs(exemplars[0].at("timestamp")) == base + 15000);

  // The float samples of the exemplar's series are stored too.
  auto stored = prom.api().rawSamples("it_exemplar_requests_total");
  prometheus::WriteRequest floats;
  *floats.add_timeseries() = *cs;
  auto expected = expectedFrom(floats);
  StoredDiff diff = diffStored(expected, expected, stored);
  CHECK_MESSAGE(diff.empty(), diff.report());
}

// Canonical bytes of one series: decoding and re-encoding with the generated classes removes
// any encoding choices (field order, packing), so equal bytes mean equal data, NaN bits too.
std::string canonical(const prometheus::TimeSeries& ts) { return ts.SerializeAsString(); }

std::string valueBits(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%016llx",
                static_cast<unsigned long long>(std::bit_cast<uint64_t>(v)));
  return buf;
}

std::string describeSeries(const prometheus::TimeSeries& ts) {
  std::string out = ts.ShortDebugString();
  out += " | sample bits:";
  for (const auto& s : ts.samples()) out += " " + valueBits(s.value());
  return out;
}

TEST_CASE("an already valid request is forwarded bit for bit, metadata and headers included") {
  TempDir dir;
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl());
  INFO(describe(cardinal.process()));

  const int64_t t = nowMs() - 60000;
  const double stale_nan = std::bit_cast<double>(uint64_t{0x7ff0000000000002});
  prometheus::WriteRequest req;
  auto* floats = addSeries(req, {{"__name__", "it_exact_total"}, {"job", "it"}},
                           {{1, t},
                            {stale_nan, t + 1000},
                            {-0.0, t + 2000},
                            {std::numeric_limits<double>::denorm_min(), t + 3000},
                            {std::numeric_limits<double>::max(), t + 4000},
                            {std::numeric_limits<double>::lowest(), t + 5000}});
  auto* ex = floats->add_exemplars();
  auto* el = ex->add_labels();
  el->set_name("trace_id");
  el->set_value("abc123");
  ex->set_value(0.5);
  ex->set_timestamp(t + 4000);

  auto* ints = addSeries(req, {{"__name__", "it_exact_native"}, {"job", "it"}});
  auto* h = ints->add_histograms();
  h->set_count_int(5);
  h->set_sum(-1.5);
  h->set_schema(-4);
  h->set_zero_threshold(0);
  h->set_zero_count_int(0);
  auto* span = h->add_positive_spans();
  span->set_offset(-2);
  span->set_length(2);
  h->add_positive_deltas(4);
  h->add_positive_deltas(-3);
  h->set_reset_hint(prometheus::Histogram::NO);
  h->set_timestamp(t);

  auto* gauge_hist = addSeries(req, {{"__name__", "it_exact_float_native"}, {"job", "it"}});
  h = gauge_hist->add_histograms();
  h->set_count_float(7.5);
  h->set_sum(3.25);
  h->set_schema(3);
  h->set_zero_threshold(1e-128);
  h->set_zero_count_float(0.5);
  span = h->add_negative_spans();
  span->set_offset(1);
  span->set_length(1);
  h->add_negative_counts(2);
  span = h->add_positive_spans();
  span->set_offset(0);
  span->set_length(2);
  h->add_positive_counts(1.5);
  h->add_positive_counts(3.5);
  h->set_reset_hint(prometheus::Histogram::GAUGE);
  h->set_timestamp(t + 1);

  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("it_exact_total");
  md->set_help("Counts exact things.");
  md->set_unit("things");
  md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::HISTOGRAM);
  md->set_metric_family_name("it_exact_native");
  md->set_help("A native histogram.");

  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  auto got = upstream.requests();
  REQUIRE_MESSAGE(!got.empty(), "nothing reached the upstream");
  std::vector<prometheus::TimeSeries> series;
  std::vector<prometheus::MetricMetadata> metadata;
  for (const auto& r : got) {
    REQUIRE_MESSAGE(r.decoded.has_value(), "upstream could not decode: " << r.decode_error);
    for (const auto& ts : r.decoded->timeseries()) series.push_back(ts);
    for (const auto& m : r.decoded->metadata()) metadata.push_back(m);
    CHECK(r.http.method == "POST");
    CHECK(r.http.headers.get("Content-Encoding") == std::optional<std::string>("snappy"));
    CHECK(r.http.headers.get("Content-Type") ==
          std::optional<std::string>("application/x-protobuf"));
    CHECK(r.http.headers.get("X-Prometheus-Remote-Write-Version") ==
          std::optional<std::string>("0.1.0"));
  }
  CHECK_MESSAGE(got.size() == 1, "one request was forwarded as " << got.size());
  REQUIRE_MESSAGE(series.size() == static_cast<size_t>(req.timeseries_size()),
                  "forwarded " << series.size() << " series");
  for (int i = 0; i < req.timeseries_size(); ++i) {
    CHECK_MESSAGE(canonical(series[i]) == canonical(req.timeseries(i)),
                  "series " << i << " changed\n sent:      " << describeSeries(req.timeseries(i))
                            << "\n forwarded: " << describeSeries(series[i]));
  }
  std::string sent_md;
  std::string got_md;
  for (const auto& m : req.metadata()) sent_md += m.ShortDebugString() + "\n";
  for (const auto& m : metadata) got_md += m.ShortDebugString() + "\n";
  CHECK_MESSAGE(got_md == sent_md, "metadata not forwarded as sent\n sent:\n"
                                       << sent_md << " forwarded:\n"
                                       << got_md);
}

TEST_CASE("unsorted but valid labels are accepted, forwarded sorted and stored") {
  TempDir dir;
  const int64_t base = nowMs() - kMinute;
  prometheus::WriteRequest req;
  // vmagent and hand-written senders do not sort.
  addSeries(req, {{"zone", "b"}, {"__name__", "it_unsorted_total"}, {"app", "x"}},
            {{1, base}, {2, base + 1000}});
  addSeries(req,
            {{"job", "j"}, {"instance", "i:1"}, {"env", "prod"}, {"__name__", "it_unsorted_total"}},
            {{5, base + 2}});
  addSeries(req, {{"b", "2"}, {"a", "1"}, {"__name__", "it_unsorted_gauge"}}, {{-1.5, base + 3}});

  SUBCASE("forwarded with labels in sorted order") {
    FakeUpstream upstream;
    CardinalServer cardinal(dir, upstream.writeUrl());
    INFO(describe(cardinal.process()));
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    REQUIRE_MESSAGE(res.status == 204, res.summary());
    auto series = upstream.allSeries();
    REQUIRE_MESSAGE(series.size() == static_cast<size_t>(req.timeseries_size()),
                    "upstream got " << upstream.requestCount() << " requests with "
                                    << series.size() << " series");
    for (const auto& ts : series) {
      CHECK_MESSAGE(labelsSorted(ts), "forwarded unsorted: " << pairsToString(labelPairsOf(ts)));
    }
    std::map<Labels, std::map<int64_t, double>> got;
    for (const auto& ts : series) {
      for (const auto& s : ts.samples()) got[labelsOf(ts)][s.timestamp()] = s.value();
    }
    CHECK(got == expectedFrom(req));
  }

  SUBCASE("stored by Prometheus under the right label set") {
    PrometheusServer prom(dir, {});
    CardinalServer cardinal(dir, prom.writeUrl());
    INFO(describe(cardinal.process()));
    INFO(describe(prom.process()));
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    REQUIRE_MESSAGE(res.status == 204, res.summary());
    auto expected = expectedFrom(req);
    auto stored = prom.api().rawSamples(R"({__name__=~"it_unsorted_.*"})");
    StoredDiff diff = diffStored(expected, expected, stored);
    CHECK_MESSAGE(diff.empty(), diff.report());
    // Label matchers must find them (the index is built from the forwarded label order).
    auto doc = prom.api().query(R"(it_unsorted_total{zone="b",app="x"})", base + 1000);
    CHECK_MESSAGE(doc.at("data").at("result").size() == 1, doc.dump());
    doc = prom.api().series(R"({__name__="it_unsorted_total",env="prod"})", base - kMinute,
                            nowMs());
    CHECK_MESSAGE(doc.at("data") == nlohmann::json::array({{{"__name__", "it_unsorted_total"},
                                                           {"env", "prod"},
                                                           {"instance", "i:1"},
                                                           {"job", "j"}}}),
                  doc.dump());
  }
}

}  // namespace
}  // namespace cardinal::integration
