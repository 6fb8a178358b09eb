// HTTP-level edge cases on the write endpoint: chunked bodies, clients that vanish mid-body,
// garbage, wrong methods and paths, big requests.
#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

std::string statusLine(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }

prometheus::WriteRequest smallRequest(const std::string& name) {
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", name}, {"job", "it"}}, {{1, nowMs() - 1000}});
  return req;
}

std::string requestHead(uint16_t port, const std::string& extra_headers, bool close = true) {
  return "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
         "X-Prometheus-Remote-Write-Version: 0.1.0\r\n" + (close ? "Connection: close\r\n" : "") +
         extra_headers + "\r\n";
}

// `n` series of one counter, each with its own `series` label and two samples.
prometheus::WriteRequest manySeries(const std::string& name, int n) {
  prometheus::WriteRequest req;
  const int64_t t = nowMs() - 60000;
  for (int i = 0; i < n; ++i) {
    addSeries(req,
              {{"__name__", name},
               {"instance", "host-" + std::to_string(i % 97) + ":9100"},
               {"series", std::to_string(i)}},
              {{static_cast<double>(i), t}, {static_cast<double>(i) + 0.5, t + 15000}});
  }
  return req;
}

TEST_CASE("HTTP edge cases on the write endpoint") {
  TempDir dir;
  FakeUpstream upstream;
  // Pass-through edges: the cardinality engine is off, or the large request's 20000 distinct
  // `series` numbers would rightly be dropped as an identifier label (cardinality_test.cpp).
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--cardinality.enabled=false"});
  INFO(describe(cardinal.process()));
  const std::string body = encodeWriteRequest(smallRequest("it_edge_total"));

  SUBCASE("a chunked body is accepted") {
    char size_hex[16];
    std::snprintf(size_hex, sizeof(size_hex), "%zx", body.size());
    std::string req = requestHead(cardinal.port(), "Transfer-Encoding: chunked\r\n") + size_hex +
                      "\r\n" + body + "\r\n0\r\n\r\n";
    auto ex = rawExchange(cardinal.port(), req, false);
    CHECK_MESSAGE(statusLine(ex.received) == "HTTP/1.1 204 No Content",
                  "got: " << ex.received.substr(0, 300) << " " << ex.error);
    CHECK(upstream.requestCount() == 1);
  }

  SUBCASE("a client that disconnects mid-body is not forwarded and does no harm") {
    std::string req = requestHead(cardinal.port(),
                                  "Content-Length: " + std::to_string(body.size() + 100) + "\r\n") +
                      body.substr(0, body.size() / 2);
    auto ex = rawExchange(cardinal.port(), req, true, Millis(2000));
    CHECK_MESSAGE(ex.received.find(" 204 ") == std::string::npos,
                  "a truncated body was acknowledged: " << ex.received.substr(0, 300));
    CHECK(upstream.requestCount() == 0);
  }

  SUBCASE("garbage instead of HTTP") {
    auto ex = rawExchange(cardinal.port(), "\x16\x03\x01 this is not http\r\n\r\n", true);
    CHECK_MESSAGE(ex.received.find(" 204 ") == std::string::npos, ex.received.substr(0, 300));
  }

  SUBCASE("GET on the write endpoint and an unknown path") {
    auto get = httpGet(cardinal.writeUrl());
    CHECK_MESSAGE(get.status / 100 == 4, "GET /api/v1/write: " << get.summary());
    auto unknown = httpPost(cardinal.baseUrl() + "/api/v1/nope", body, remoteWriteHeaders());
    CHECK_MESSAGE(unknown.status == 404, "POST /api/v1/nope: " << unknown.summary());
    CHECK(upstream.requestCount() == 0);
  }

  SUBCASE("unknown messages, media types and encodings: 415, nothing forwarded") {
    // An unknown encoding parsed as snappy, or an unknown message parsed as a known one, would
    // be garbage: refused outright. (Remote-write 2.0 itself is accepted: rw2_test.cpp.)
    auto v3 = httpPost(
        cardinal.writeUrl(), body,
        {{"Content-Encoding", "snappy"},
         {"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request"}});
    CHECK_MESSAGE(v3.status == 415, "unknown proto: " << v3.summary());
    auto json = httpPost(cardinal.writeUrl(), body,
                         {{"Content-Encoding", "snappy"}, {"Content-Type", "application/json"}});
    CHECK_MESSAGE(json.status == 415, "application/json: " << json.summary());
    auto gzip =
        httpPost(cardinal.writeUrl(), body,
                 {{"Content-Encoding", "gzip"}, {"Content-Type", "application/x-protobuf"}});
    CHECK_MESSAGE(gzip.status == 415, "Content-Encoding gzip: " << gzip.summary());
    // 2.0 content type, 1.0 body: decodes as an empty 2.0 request (the spec reserves the 1.0
    // fields for this); the Written headers tell the sender nothing was written.
    auto v2 = httpPost(
        cardinal.writeUrl(), body,
        {{"Content-Encoding", "snappy"},
         {"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
         {"X-Prometheus-Remote-Write-Version", "2.0.0"}});
    CHECK_MESSAGE(v2.status == 204, "v2 content type: " << v2.summary());
    CHECK(v2.headers.get("X-Prometheus-Remote-Write-Samples-Written") == std::string("0"));
    CHECK(upstream.requestCount() == 0);
  }

  SUBCASE("a large valid request: 20000 series, about 2 MB decompressed") {
    auto req = manySeries("it_large_total", 20000);
    auto res = postRemoteWrite(cardinal.writeUrl(), req, Millis(30000));
    REQUIRE_MESSAGE(res.status == 204, res.summary());
    auto series = upstream.allSeries();
    REQUIRE(series.size() == 20000);
    ExpectedSamples got;
    for (const auto& ts : series) {
      for (const auto& s : ts.samples()) got[labelsOf(ts)][s.timestamp()] = s.value();
    }
    CHECK(got == expectedFrom(req));
  }

  SUBCASE("one keep-alive connection: a large body trickling in after its header, then a small and a large request pipelined") {
    // Large bodies are read in big chunks once their header is in (http_server.cpp): a body that
    // arrives in pieces, and requests whose bytes share a receive, must come out whole.
    auto first = manySeries("it_trickle_total", 6000);
    auto small = smallRequest("it_pipelined_small_total");
    auto last = manySeries("it_pipelined_large_total", 6000);
    const std::string b1 = encodeWriteRequest(first), b2 = encodeWriteRequest(small), b3 = encodeWriteRequest(last);
    REQUIRE(b1.size() > 3 * 65536 / 2);  // more than one read chunk
    auto head = [&](const std::string& b, bool close) {
      return requestHead(cardinal.port(), "Content-Length: " + std::to_string(b.size()) + "\r\n", close);
    };
    std::vector<std::string> pieces{head(b1, false), b1.substr(0, 1000), b1.substr(1000, 70000), b1.substr(71000),
                                    head(b2, false) + b2 + head(b3, true) + b3};
    auto ex = rawExchange(cardinal.port(), pieces, Millis(50), false, Millis(10000));
    size_t answers = 0;
    for (size_t at = ex.received.find("HTTP/1.1 204 "); at != std::string::npos;
         at = ex.received.find("HTTP/1.1 204 ", at + 1))
      ++answers;
    CHECK_MESSAGE(answers == 3, "got: " << ex.received.substr(0, 600) << " " << ex.error);
    CHECK(upstream.requestCount() == 3);
    prometheus::WriteRequest all = first;
    for (const auto* r : {&small, &last})
      for (const auto& ts : r->timeseries()) *all.add_timeseries() = ts;
    ExpectedSamples got;
    for (const auto& ts : upstream.allSeries()) {
      for (const auto& s : ts.samples()) got[labelsOf(ts)][s.timestamp()] = s.value();
    }
    CHECK(got == expectedFrom(all));
  }

  // Whatever happened above, Cardinal still answers and forwards.
  auto health = httpGet(cardinal.baseUrl() + "/-/healthy");
  CHECK_MESSAGE(health.status == 200, health.summary());
  const size_t before = upstream.requestCount();
  auto ok = postRemoteWrite(cardinal.writeUrl(), smallRequest("it_edge_after_total"));
  CHECK_MESSAGE(ok.status == 204, ok.summary());
  CHECK(upstream.requestCount() == before + 1);
}

}  // namespace
}  // namespace cardinal::integration
