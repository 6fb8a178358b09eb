// Validation and limits: each refusal names the position and the label name,
// never a label value.
#include "codec/decode.h"

#include <doctest/doctest.h>

#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::testing;

namespace {
core::Status decode(const prometheus::WriteRequest& req, const codec::Limits& limits = {}) {
  static codec::SeriesBatch batch;
  static std::string raw;
  raw = serialize(req);
  return codec::decodeWriteRequest(raw, limits, batch);
}
}  // namespace

TEST_CASE("label rules") {
  auto ok = makeSeries({{"__name__", "up"}, {"job", "a"}});
  SUBCASE("duplicate label name") {
    auto st = decode(makeRequest({ok, makeSeries({{"__name__", "up"}, {"a", "secret1"}, {"a", "secret2"}})}));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "series 1: duplicate label name \"a\"");
  }
  SUBCASE("empty label name") {
    auto st = decode(makeRequest({makeSeries({{"__name__", "up"}, {"", "v"}})}));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "series 0: empty label name");
  }
  SUBCASE("missing __name__") {
    auto st = decode(makeRequest({ok, ok, makeSeries({{"job", "a"}})}));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "series 2: no __name__ label (or an empty one)");
    CHECK_FALSE(decode(makeRequest({makeSeries({{"__name__", ""}, {"job", "a"}})})).ok());
  }
  SUBCASE("unsorted labels are sorted and marked for re-encoding") {
    auto req = makeRequest({makeSeries({{"zone", "z"}, {"__name__", "up"}, {"app", "x"}})});
    std::string raw = serialize(req);
    codec::SeriesBatch b;
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    auto l = b.labelsOf(b.series[0]);
    CHECK(l[0].name == "__name__");
    CHECK(l[1].name == "app");
    CHECK(l[2].name == "zone");
    CHECK(b.series[0].changed);
  }
  SUBCASE("samples out of order") {
    auto st = decode(makeRequest({makeSeries({{"__name__", "up"}}, {{2000, 1}, {1000, 2}})}));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "series 0: samples out of timestamp order at sample 1");
  }
}

TEST_CASE("invalid UTF-8 is refused") {
  // TimeSeries{ labels: {__name__: "up"}, labels: {p: "\xff"} } built by hand,
  // because the generated serializer refuses to write invalid UTF-8.
  auto label = [](std::string n, std::string v) {
    std::string l = "\x0a" + std::string(1, static_cast<char>(n.size())) + n + "\x12" +
                    std::string(1, static_cast<char>(v.size())) + v;
    return "\x0a" + std::string(1, static_cast<char>(l.size())) + l;
  };
  std::string ts = label("__name__", "up") + label("p", "\xff");
  std::string raw = "\x0a" + std::string(1, static_cast<char>(ts.size())) + ts;
  codec::SeriesBatch b;
  auto st = codec::decodeWriteRequest(raw, {}, b);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == "series 0: value of label \"p\" is not valid UTF-8");
}

TEST_CASE("limits") {
  codec::Limits limits;
  SUBCASE("labels per series") {
    LabelList labels = {{"__name__", "up"}};
    for (int i = 0; i < 5000; ++i) labels.emplace_back("l" + std::to_string(100000 + i), "v");
    auto st = decode(makeRequest({makeSeries(labels)}), limits);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "series 0: more than 256 labels (--limits.max-labels-per-series)");
  }
  SUBCASE("label value length, without the value") {
    std::string big(1 << 20, 'x');
    auto st = decode(makeRequest({makeSeries({{"__name__", "up"}, {"token", big}})}), limits);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() ==
          "series 0: value of label \"token\" is 1048576 bytes, more than the limit of 16384 "
          "(--limits.max-label-value-length)");
  }
  SUBCASE("label name length") {
    limits.max_label_name_bytes = 8;
    auto st = decode(makeRequest({makeSeries({{"__name__", "up"}, {"much_too_long", "v"}})}), limits);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().find("label name \"much_too_long\" is 13 bytes") != std::string::npos);
  }
  SUBCASE("series per request") {
    limits.max_series_per_request = 2;
    auto s = makeSeries({{"__name__", "up"}});
    CHECK(decode(makeRequest({s, s}), limits).ok());
    auto st = decode(makeRequest({s, s, s}), limits);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == "more than 2 series in one request (--limits.max-series-per-request)");
  }
}

TEST_CASE("malformed wire format") {
  std::string raw = serialize(makeRequest({makeSeries({{"__name__", "up"}, {"job", "a"}})}));
  codec::SeriesBatch b;
  SUBCASE("truncated") {
    auto st = codec::decodeWriteRequest(raw.substr(0, raw.size() - 3), {}, b);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().find("truncated") != std::string::npos);
  }
  SUBCASE("random bytes") {
    std::string junk = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    CHECK_FALSE(codec::decodeWriteRequest(junk, {}, b).ok());
  }
  SUBCASE("empty request is valid and empty") {
    REQUIRE(codec::decodeWriteRequest("", {}, b).ok());
    CHECK(b.series.empty());
  }
}
