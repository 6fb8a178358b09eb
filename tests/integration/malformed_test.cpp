// Malformed and over-limit remote-write bodies: each gets a 4xx with a message that names the
// problem (never a label value), nothing reaches the upstream, and Cardinal keeps serving.
#include <random>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

struct BadBody {
  std::string name;
  std::string body;                       // as sent (already compressed where it should be)
  int status = 400;
  std::vector<std::string> must_contain;  // in the response body
  std::string must_not_contain;
};

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

std::string serialized(const prometheus::WriteRequest& req) {
  std::string raw;
  req.SerializeToString(&raw);
  return raw;
}

std::vector<BadBody> badBodies() {
  const int64_t ts = nowMs() - 60000;
  std::vector<BadBody> out;

  std::mt19937 rng(42);
  std::string random(1000, '\0');
  for (auto& c : random) c = static_cast<char>(rng() & 0xff);
  out.push_back({"random bytes", random, 400, {}, {}});

  {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_truncated"}, {"job", "it"}}, {{1, ts}, {2, ts + 1}});
    std::string raw = serialized(req);
    // Cut inside the only top-level field: its length prefix overruns the message.
    out.push_back({"truncated protobuf", snappyCompress(raw.substr(0, raw.size() - 5)), 400, {},
                   {}});
    out.push_back({"plain protobuf, not snappy", raw, 400, {}, {}});
  }

  // Snappy preamble claiming 4 GiB - 1 of output, then a short literal.
  out.push_back({"snappy header claiming 4 GiB",
                 varint(0xFFFFFFFFull) + std::string("\x10", 1) + "hello", 400, {}, {}});
  // A preamble that does not even fit snappy's 32-bit length.
  out.push_back({"snappy header claiming 2^32 bytes",
                 varint(uint64_t{1} << 32) + std::string("\x10", 1) + "hello", 400, {}, {}});

  {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_ok_a"}}, {{1, ts}});
    addSeries(req, {{"__name__", "it_ok_b"}}, {{1, ts}});
    addSeries(req, {{"__name__", "it_dup"}, {"x", "1"}, {"x", "2"}}, {{1, ts}});
    out.push_back({"duplicate label name in series 2",
                   encodeWriteRequest(req),
                   400,
                   {"duplicate label name \"x\"", "series 2"},
                   {}});
  }
  {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_empty_name"}, {"", "v"}}, {{1, ts}});
    out.push_back({"empty label name", encodeWriteRequest(req), 400, {"empty", "series 0"}, {}});
  }
  {
    prometheus::WriteRequest req;
    addSeries(req, {{"job", "it"}, {"instance", "x"}}, {{1, ts}});
    out.push_back(
        {"series without __name__", encodeWriteRequest(req), 400, {"__name__", "series 0"}, {}});
  }
  {
    prometheus::WriteRequest req;
    std::vector<std::pair<std::string, std::string>> labels = {{"__name__", "it_wide"}};
    for (int i = 0; i < 5000; ++i) {
      char name[16];
      std::snprintf(name, sizeof(name), "l%04d", i);
      labels.emplace_back(name, "v");
    }
    addSeries(req, labels, {{1, ts}});
    out.push_back({"5000 labels", encodeWriteRequest(req), 400, {"label", "series 0"}, {}});
  }
  {
    prometheus::WriteRequest req;
    std::string value;
    while (value.size() < (1u << 20)) value += "secret-label-value-" + std::to_string(value.size());
    addSeries(req, {{"__name__", "it_big_value"}, {"big", value}}, {{1, ts}});
    out.push_back({"1 MiB label value",
                   encodeWriteRequest(req),
                   400,
                   {"\"big\"", "series 0"},
                   "secret-label-value"});
  }
  {
    // With --limits.max-series-per-request=1000.
    prometheus::WriteRequest req;
    for (int i = 0; i < 1001; ++i) {
      addSeries(req, {{"__name__", "it_many"}, {"i", std::to_string(i)}}, {{1, ts}});
    }
    out.push_back({"1001 series, limit 1000", encodeWriteRequest(req), 400, {"series"}, {}});
  }
  {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_long_name"}, {std::string(2000, 'n'), "v"}}, {{1, ts}});
    out.push_back({"2000-byte label name", encodeWriteRequest(req), 400, {"series 0"}, {}});
  }
  {
    // With --limits.max-body-bytes=1MiB: 2 MiB of incompressible bytes.
    std::mt19937 big_rng(7);
    std::string body(2u << 20, '\0');
    for (auto& c : body) c = static_cast<char>(big_rng() & 0xff);
    out.push_back({"2 MiB compressed body, limit 1 MiB", body, 413, {}, {}});
  }
  return out;
}

TEST_CASE("malformed bodies get 4xx with a useful message and Cardinal keeps serving") {
  TempDir dir;
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--limits.max-body-bytes=1MiB", "--limits.max-series-per-request=1000"});
  INFO(describe(cardinal.process()));

  size_t valid_sent = 0;
  for (const auto& bad : badBodies()) {
    INFO("case: " << bad.name << " (" << bad.body.size() << " bytes sent)");
    auto res = postRemoteWrite(cardinal.writeUrl(), bad.body);
    CHECK_MESSAGE(res.status == bad.status, "expected HTTP " << bad.status << ", got "
                                                             << res.summary());
    CHECK_MESSAGE(!res.body.empty(), "the error response has no message");
    CHECK_MESSAGE(res.body.size() < 4096, "error message of " << res.body.size() << " bytes");
    for (const auto& s : bad.must_contain) {
      CHECK_MESSAGE(res.body.find(s) != std::string::npos,
                    "message should contain '" << s << "': " << res.summary());
    }
    if (!bad.must_not_contain.empty()) {
      CHECK_MESSAGE(res.body.find(bad.must_not_contain) == std::string::npos,
                    "message leaks the label value: " << res.summary());
    }

    auto health = httpGet(cardinal.baseUrl() + "/-/healthy");
    REQUIRE_MESSAGE(health.status == 200, "after '" << bad.name << "': " << health.summary());

    prometheus::WriteRequest good;
    addSeries(good, {{"__name__", "it_still_alive"}, {"after", bad.name}},
              {{static_cast<double>(valid_sent), nowMs() - 1000}});
    auto ok = postRemoteWrite(cardinal.writeUrl(), good);
    ++valid_sent;
    REQUIRE_MESSAGE(ok.status == 204, "valid request after '" << bad.name
                                                              << "': " << ok.summary());
    REQUIRE_MESSAGE(upstream.requestCount() == valid_sent,
                    "upstream got " << upstream.requestCount() << " requests, expected "
                                    << valid_sent << " (only the valid ones)");
    auto last = upstream.requests().back();
    REQUIRE_MESSAGE(last.decoded.has_value(), last.decode_error);
    REQUIRE(last.decoded->timeseries_size() == 1);
    CHECK(labelsOf(last.decoded->timeseries(0)) ==
          Labels{{"__name__", "it_still_alive"}, {"after", bad.name}});
  }
  CHECK(cardinal.process().running());
}

}  // namespace
}  // namespace cardinal::integration
