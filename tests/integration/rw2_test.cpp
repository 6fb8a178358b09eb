// Remote-write 2.0 in and out (issue 9), against Debian's Prometheus 2.42 and in-process fakes:
//   - a 2.0 request through Cardinal into Prometheus 2.42 (1.0): stored exactly (floats,
//     a native histogram, an exemplar), the Written headers exact;
//   - refusals of 2.0 requests (400, 413, 415) carry Written headers saying nothing was written;
//   - Written counts what rules dropped or merged; a 2.0 upstream gets 2.0 requests (exact
//     Content-Type and version), merged outputs included;
//   - a 1.0 request to a 2.0 upstream is translated, its metadata attached to its series;
//   - an upstream that does not speak 2.0 (Prometheus 2.42 itself, which ignores Content-Type,
//     and a fake like it) is detected from its answer without Written headers: 502, retried by
//     senders, nothing silently lost.
// The Prometheus 3 and Collector cases are in ecosystem_rw2_test.cpp (their peers are built
// from the Go module proxy).
#include <doctest/doctest.h>

#include "harness.h"
#include "rw2_support.h"

namespace cardinal::integration {
namespace {

std::string written(const HttpResponse& r) {
  auto w = writtenHeaders(r.headers);
  return w ? w->toString() : "(no Written headers)";
}

TEST_CASE("rw2: a 2.0 request through Cardinal into Prometheus 2.42 (1.0), Written headers exact") {
  TempDir dir;
  PrometheusServer::Options popts;
  popts.features = {"native-histograms", "exemplar-storage"};
  PrometheusServer prom(dir, popts);
  INFO(describe(prom.process()));
  CardinalServer cardinal(dir, prom.writeUrl());
  INFO(describe(cardinal.process()));

  const int64_t t = nowMs() - 30000;
  V2RequestBuilder b;
  auto* counter = b.series({{"__name__", "it_rw2_requests_total"}, {"code", "200"}, {"job", "it"}});
  b.sample(counter, t, 10, t - 3600000);
  b.sample(counter, t + 15000, 12.5, t - 3600000);
  b.metadata(counter, v2::Metadata::METRIC_TYPE_COUNTER, "Requests served.", "");
  b.exemplar(counter, {{"trace_id", "4bf92f3577b34da6"}}, 1, t + 14000);
  // Labels not sorted on the wire: Cardinal sorts them (Prometheus 2.42 would corrupt the series).
  auto* gauge = b.series({{"room", "kitchen"}, {"__name__", "it_rw2_temperature_celsius"}, {"job", "it"}});
  b.sample(gauge, t, -2.5);
  b.metadata(gauge, v2::Metadata::METRIC_TYPE_GAUGE, "", "celsius");
  auto* native = b.series({{"__name__", "it_rw2_latency_seconds"}, {"job", "it"}});
  auto* h = native->add_histograms();
  h->set_count_int(6);
  h->set_sum(3.25);
  h->set_schema(0);
  h->set_zero_threshold(1e-128);
  h->set_zero_count_int(1);
  auto* span = h->add_positive_spans();
  span->set_offset(0);
  span->set_length(2);
  h->add_positive_deltas(2);  // buckets 2, 3
  h->add_positive_deltas(1);
  h->set_timestamp(t);
  h->set_start_timestamp(t - 3600000);
  b.metadata(native, v2::Metadata::METRIC_TYPE_HISTOGRAM, "Latency.", "seconds");

  auto res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  auto w = writtenHeaders(res.headers);
  REQUIRE_MESSAGE(w.has_value(), "no Written headers on the 204");
  CHECK_MESSAGE(*w == countsOf(b.req), "written " << w->toString() << ", sent " << countsOf(b.req).toString());
  const ElementCounts carried{3, 1, 1};
  CHECK(countsOf(b.req) == carried);

  auto api = prom.api();
  auto expected = expectedFrom(b.req);
  auto stored = api.rawSamples("{__name__=~\"it_rw2_(requests_total|temperature_celsius)\"}");
  auto diff = diffStored(expected, expected, stored);
  CHECK_MESSAGE(diff.empty(), diff.report());
  auto counts = api.instantValues("histogram_count(it_rw2_latency_seconds)", t);
  REQUIRE(counts.size() == 1);
  CHECK(counts.begin()->second == 6);
  auto sums = api.instantValues("histogram_sum(it_rw2_latency_seconds)", t);
  REQUIRE(sums.size() == 1);
  CHECK(sums.begin()->second == 3.25);
  auto ex = api.queryExemplars("it_rw2_requests_total", t - 60000, t + 60000);
  CHECK_MESSAGE(ex.dump().find("4bf92f3577b34da6") != std::string::npos, ex.dump());
  CHECK(cardinal.metric("cardinal_received_v2_requests_total") == 1.0);
  CHECK(cardinal.metric("cardinal_forwarded_translated_requests_total") == 1.0);
}

TEST_CASE("rw2: refusals of 2.0 requests carry Written headers; 1.0 answers carry none") {
  TempDir dir;
  FakeUpstreamV2 upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--limits.max-body-bytes=8KiB"});
  INFO(describe(cardinal.process()));
  const int64_t t = nowMs();
  auto zero = ElementCounts{};

  SUBCASE("symbols[0] not empty: 400 naming the position") {
    V2RequestBuilder b;
    b.sample(b.series({{"__name__", "it_rw2_a"}}), t, 1);
    b.req.set_symbols(0, "oops");
    auto res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
    CHECK_MESSAGE(res.status == 400, res.summary());
    CHECK_MESSAGE(res.body.find("symbols[0] must be the empty string") != std::string::npos, res.body);
    CHECK_MESSAGE(writtenHeaders(res.headers) == zero, written(res));
  }
  SUBCASE("a reference out of range: 400 naming series and position, never a value") {
    V2RequestBuilder b;
    b.sample(b.series({{"__name__", "it_rw2_a"}, {"secret", "hunter2"}}), t, 1);
    b.req.mutable_timeseries(0)->set_labels_refs(3, 1000);
    auto res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
    CHECK_MESSAGE(res.status == 400, res.summary());
    CHECK_MESSAGE(res.body.find("series 0: labels_refs[3] = 1000 is out of range") != std::string::npos, res.body);
    CHECK(res.body.find("hunter2") == std::string::npos);
    CHECK_MESSAGE(writtenHeaders(res.headers) == zero, written(res));
  }
  SUBCASE("an unsupported encoding: 415 with Written headers") {
    V2RequestBuilder b;
    b.sample(b.series({{"__name__", "it_rw2_a"}}), t, 1);
    auto res = httpPost(cardinal.writeUrl(), encodeV2(b.req),
                        {{"Content-Encoding", "gzip"}, {"Content-Type", kV2ContentType}});
    CHECK_MESSAGE(res.status == 415, res.summary());
    CHECK_MESSAGE(writtenHeaders(res.headers) == zero, written(res));
  }
  SUBCASE("an unknown message: 415") {
    V2RequestBuilder b;
    b.sample(b.series({{"__name__", "it_rw2_a"}}), t, 1);
    auto res = httpPost(cardinal.writeUrl(), encodeV2(b.req),
                        {{"Content-Encoding", "snappy"},
                         {"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request"}});
    CHECK_MESSAGE(res.status == 415, res.summary());
    CHECK_MESSAGE(res.body.find("io.prometheus.write.v2.Request") != std::string::npos, res.body);
  }
  SUBCASE("a body over --limits.max-body-bytes: 413 with Written headers") {
    V2RequestBuilder b;
    for (int i = 0; i < 2000; ++i)
      b.sample(b.series({{"__name__", "it_rw2_big"}, {"i", std::to_string(i * 7919 % 100003) + "x" + std::to_string(i)}}),
               t, i);
    auto res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
    CHECK_MESSAGE(res.status == 413, res.summary());
    CHECK_MESSAGE(writtenHeaders(res.headers) == zero, written(res));
  }
  SUBCASE("1.0: no Written headers (a 1.0 sender does not read them)") {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_rw2_v1"}, {"job", "it"}}, {{1, t}});
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    CHECK_MESSAGE(res.status == 204, res.summary());
    CHECK_FALSE(res.headers.get("X-Prometheus-Remote-Write-Samples-Written").has_value());
    REQUIRE(upstream.waitForRequests(1, Millis(2000)));
    CHECK_FALSE(upstream.requests()[0].v2);  // --upstream.protocol defaults to v1
  }
  SUBCASE("a 1.0 body sent as 2.0 decodes as an empty request: 204, nothing written") {
    // The spec's reserved fields 1-3: read with the wrong schema, a message is empty, never
    // garbage. The Written headers tell the sender that nothing was written.
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_rw2_v1"}, {"job", "it"}}, {{1, t}});
    auto res = httpPost(cardinal.writeUrl(), encodeWriteRequest(req), remoteWriteV2Headers());
    CHECK_MESSAGE(res.status == 204, res.summary());
    CHECK_MESSAGE(writtenHeaders(res.headers) == zero, written(res));
    CHECK(upstream.requestCount() == 0);
  }
  if (upstream.requestCount() > 0) CHECK(upstream.requests()[0].v1req.has_value());
}

TEST_CASE("rw2: Written counts what rules dropped and merged; a 2.0 upstream gets 2.0, merged outputs too") {
  TempDir dir;
  FakeUpstreamV2 upstream;
  auto rules = dir.writeFile("rules.yaml", R"(rules:
  - name: drop debug
    match: {metric_regex: "it_rw2_debug_.*"}
    action: drop
  - name: merge pods
    match: {metric: it_rw2_pods_total}
    action: drop_label
    labels: [pod]
)");
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--upstream.protocol=v2", "--rules.file=" + rules.string(), "--aggregation.interval=1s",
                           "--cardinality.enabled=false"});
  INFO(describe(cardinal.process()));
  const int64_t t = nowMs() - 5000;
  V2RequestBuilder b;
  auto* dbg = b.series({{"__name__", "it_rw2_debug_queue"}, {"job", "it"}});
  b.sample(dbg, t, 1);
  b.sample(dbg, t + 1000, 2);
  b.sample(b.series({{"__name__", "it_rw2_pods_total"}, {"job", "it"}, {"pod", "a"}}), t, 3, t - 60000);
  b.sample(b.series({{"__name__", "it_rw2_pods_total"}, {"job", "it"}, {"pod", "b"}}), t, 4, t - 60000);
  auto* kept = b.series({{"__name__", "it_rw2_kept_total"}, {"job", "it"}});
  b.sample(kept, t, 5, t - 60000);
  b.exemplar(kept, {{"trace_id", "t1"}}, 5, t);
  b.metadata(kept, v2::Metadata::METRIC_TYPE_COUNTER, "Kept.", "");

  auto res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  const ElementCounts all{5, 0, 1};  // the dropped and merged samples count as written
  CHECK_MESSAGE(writtenHeaders(res.headers) == all, written(res));

  REQUIRE(upstream.waitForRequests(1, Millis(3000)));
  auto first = upstream.requests()[0];
  CHECK(first.http.headers.get("Content-Type") == std::string(kV2ContentType));
  CHECK(first.http.headers.get("X-Prometheus-Remote-Write-Version") == std::string("2.0.0"));
  CHECK(first.http.headers.get("Content-Encoding") == std::string("snappy"));
  REQUIRE(first.v2req.has_value());
  REQUIRE(first.v2req->timeseries_size() == 1);
  const auto& fwd = first.v2req->timeseries(0);
  CHECK(labelsOf(*first.v2req, fwd) == Labels{{"__name__", "it_rw2_kept_total"}, {"job", "it"}});
  REQUIRE(fwd.samples_size() == 1);
  CHECK(fwd.samples(0).start_timestamp() == t - 60000);  // kept from sender to upstream
  CHECK(fwd.exemplars_size() == 1);
  CHECK(fwd.metadata().type() == v2::Metadata::METRIC_TYPE_COUNTER);
  CHECK(first.v2req->symbols(static_cast<int>(fwd.metadata().help_ref())) == "Kept.");

  // The merged counter, emitted by Cardinal itself, also as 2.0.
  bool merged = waitUntil(
      [&] {
        for (const auto& r : upstream.requests()) {
          if (!r.v2req) continue;
          for (const auto& ts : r.v2req->timeseries())
            if (labelsOf(*r.v2req, ts) == Labels{{"__name__", "it_rw2_pods_total"}, {"job", "it"}} &&
                ts.samples_size() == 1 && ts.samples(0).value() == 7)
              return true;
        }
        return false;
      },
      Millis(5000));
  CHECK_MESSAGE(merged, "no merged it_rw2_pods_total{job=\"it\"} 7 reached the upstream");
  for (const auto& r : upstream.requests()) {
    CHECK(r.v2);
    CHECK(r.v2req.has_value());
  }
}

TEST_CASE("rw2: a 1.0 request to a 2.0 upstream is translated, metadata attached to its series") {
  TempDir dir;
  FakeUpstreamV2 upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.protocol=v2", "--cardinality.enabled=false"});
  INFO(describe(cardinal.process()));
  const int64_t t = nowMs() - 5000;
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_rw2_v1_requests_total"}, {"job", "it"}, {"code", "500"}}, {{1, t}, {2, t + 1000}});
  addSeries(req, {{"__name__", "it_rw2_v1_rpc_seconds_bucket"}, {"job", "it"}, {"le", "+Inf"}}, {{3, t}});
  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("it_rw2_v1_requests_total");
  md->set_help("Requests.");
  md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::HISTOGRAM);
  md->set_metric_family_name("it_rw2_v1_rpc_seconds");
  md->set_unit("seconds");

  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  REQUIRE(upstream.waitForRequests(1, Millis(2000)));
  auto got = upstream.requests()[0];
  REQUIRE(got.v2req.has_value());
  CHECK(expectedFrom(*got.v2req) == expectedFrom(req));
  std::map<std::string, std::pair<int, std::string>> meta;  // name -> (type, help or unit)
  for (const auto& ts : got.v2req->timeseries()) {
    auto labels = labelsOf(*got.v2req, ts);
    const auto& m = ts.metadata();
    meta[labels["__name__"]] = {m.type(), got.v2req->symbols(static_cast<int>(m.help_ref())) +
                                              got.v2req->symbols(static_cast<int>(m.unit_ref()))};
  }
  CHECK(meta["it_rw2_v1_requests_total"] == std::pair<int, std::string>{1, "Requests."});
  CHECK(meta["it_rw2_v1_rpc_seconds_bucket"] == std::pair<int, std::string>{3, "seconds"});

  // Prometheus sends 1.0 metadata in requests of their own: nothing 2.0 can carry.
  prometheus::WriteRequest md_only;
  *md_only.add_metadata() = req.metadata(0);
  res = postRemoteWrite(cardinal.writeUrl(), md_only);
  CHECK_MESSAGE(res.status == 204, res.summary());
  CHECK(upstream.requestCount() == 1);
}

TEST_CASE("rw2: an upstream that does not speak 2.0 is detected: 502, nothing silently lost") {
  TempDir dir;
  const int64_t t = nowMs() - 5000;
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_rw2_lost_total"}, {"job", "it"}}, {{1, t}});

  SUBCASE("Prometheus 2.42 ignores Content-Type: the 2.0 body reads as an empty 1.0 request") {
    PrometheusServer prom(dir, {});
    INFO(describe(prom.process()));
    CardinalServer cardinal(dir, prom.writeUrl(), {"--upstream.protocol=v2"});
    INFO(describe(cardinal.process()));
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    CHECK_MESSAGE(res.status == 502, res.summary());
    CHECK_MESSAGE(res.body.find("does not accept remote-write 2.0") != std::string::npos, res.body);
    CHECK_MESSAGE(res.body.find("--upstream.protocol") != std::string::npos, res.body);
    // ... and a 2.0 sender learns that nothing was written.
    V2RequestBuilder b;
    b.sample(b.series({{"__name__", "it_rw2_lost_total"}, {"job", "it"}}), t, 1);
    res = postRemoteWriteV2(cardinal.writeUrl(), b.req);
    CHECK_MESSAGE(res.status == 502, res.summary());
    const ElementCounts none;
    CHECK_MESSAGE(writtenHeaders(res.headers) == none, written(res));
    CHECK(prom.api().rawSamples("it_rw2_lost_total").empty());
  }
  SUBCASE("a receiver answering 204 without Written headers") {
    FakeUpstreamV2 upstream;
    upstream.answerLikeV1Receiver(true);
    CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.protocol=v2"});
    INFO(describe(cardinal.process()));
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    CHECK_MESSAGE(res.status == 502, res.summary());
    CHECK(upstream.requestCount() == 1);  // not retried by Cardinal: the same body never will be written
  }
}

}  // namespace
}  // namespace cardinal::integration
