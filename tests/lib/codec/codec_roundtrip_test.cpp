#include "codec/decode.h"

#include <doctest/doctest.h>


#include "codec/encode.h"
#include "codec/snappy_codec.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::testing;

namespace {

prometheus::WriteRequest richRequest() {
  auto req = makeRequest({
      makeSeries({{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}}, {{1000, 1}, {2000, 3}}),
      makeSeries({{"__name__", "temp_celsius"}, {"room", "S\xc3\xa3o Paulo"}}, {{1000, -2.5}}),
  });
  auto* ts = req.add_timeseries();
  *ts = makeSeries({{"__name__", "rpc_seconds"}, {"job", "api"}}, {});
  auto* h = ts->add_histograms();
  h->set_count_int(10);
  h->set_sum(12.5);
  h->set_schema(3);
  h->set_zero_threshold(1e-128);
  h->set_zero_count_int(1);
  auto* span = h->add_positive_spans();
  span->set_offset(-2);
  span->set_length(3);
  h->add_positive_deltas(4);
  h->add_positive_deltas(-1);
  h->add_positive_deltas(2);
  h->set_timestamp(5000);
  auto* e = ts->add_exemplars();
  auto* el = e->add_labels();
  el->set_name("trace_id");
  el->set_value("abc123");
  e->set_value(0.25);
  e->set_timestamp(4999);
  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("http_requests_total");
  md->set_help("Requests.");
  md->set_unit("");
  return req;
}

}  // namespace

TEST_CASE("decode exposes labels, samples, histograms, exemplars and metadata") {
  auto req = richRequest();
  std::string raw = serialize(req);
  codec::SeriesBatch b;
  auto st = codec::decodeWriteRequest(raw, {}, b);
  REQUIRE_MESSAGE(st.ok(), st.error());
  REQUIRE(b.series.size() == 3);
  auto l0 = b.labelsOf(b.series[0]);
  REQUIRE(l0.size() == 3);
  CHECK(l0[0].name == "__name__");
  CHECK(l0[0].value == "http_requests_total");
  CHECK(b.samplesOf(b.series[0]).size() == 2);
  CHECK(b.samplesOf(b.series[0])[1].value == 3);
  CHECK(b.samplesOf(b.series[0])[1].timestamp == 2000);
  // Views point into the request buffer, not into copies.
  CHECK(l0[0].name.data() >= raw.data());
  CHECK(l0[0].name.data() < raw.data() + raw.size());
  REQUIRE(b.histogramsOf(b.series[2]).size() == 1);
  const auto& h = b.histogramsOf(b.series[2])[0];
  CHECK(h.count_int == 10);
  CHECK(h.sum == 12.5);
  CHECK(h.schema == 3);
  CHECK(h.timestamp == 5000);
  REQUIRE(b.exemplarsOf(b.series[2]).size() == 1);
  CHECK(b.labelsOf(b.exemplarsOf(b.series[2])[0])[0].value == "abc123");
  REQUIRE(b.metadata.size() == 1);
  CHECK(b.metadata[0].type == codec::MetricType::kCounter);
  CHECK(b.metadata[0].family == "http_requests_total");
  CHECK_FALSE(b.anyChanged());
}

TEST_CASE("encode copies unchanged series and re-encodes changed ones to the same meaning") {
  auto req = richRequest();
  std::string raw = serialize(req);
  codec::SeriesBatch b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  std::string out;

  SUBCASE("unchanged: byte-identical") {
    codec::encodeWriteRequest(b, out);
    CHECK(out == raw);
  }
  SUBCASE("all marked changed: same message") {
    for (auto& s : b.series) s.changed = true;
    codec::encodeWriteRequest(b, out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(out));
    CHECK(cardinal::testing::sameMessage(back, req));
  }
  SUBCASE("a dropped series is left out") {
    b.series[1].dropped = true;
    codec::encodeWriteRequest(b, out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(out));
    REQUIRE(back.timeseries_size() == 2);
    CHECK(back.timeseries(1).labels(0).value() == "rpc_seconds");
    CHECK(back.metadata_size() == 1);
  }
  SUBCASE("a relabelled series carries the new labels and its original data") {
    auto& s = b.series[0];
    std::vector<codec::LabelView> labels(b.labelsOf(s).begin(), b.labelsOf(s).end());
    labels[1].value = b.intern("2xx");
    b.setLabels(s, labels);
    codec::encodeWriteRequest(b, out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(out));
    auto expected = req;
    expected.mutable_timeseries(0)->mutable_labels(1)->set_value("2xx");
    CHECK(cardinal::testing::sameMessage(back, expected));
  }
}

TEST_CASE("snappy block format with the size checked before allocating") {
  std::string raw = serialize(richRequest());
  std::string body = snappyCompress(raw);
  std::string out;
  REQUIRE(codec::decompress(body, {}, out).ok());
  CHECK(out == raw);

  codec::Limits small;
  small.max_decompressed_bytes = raw.size() - 1;
  auto st = codec::decompress(body, small, out);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().find("exceeds the limit") != std::string::npos);

  // A header claiming 4 GiB: refused from the header alone.
  std::string huge = "\xff\xff\xff\xff\x0f";
  huge += "garbage";
  st = codec::decompress(huge, {}, out);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().find("decompressed size 4294967295 bytes exceeds the limit") == 0);

  CHECK_FALSE(codec::decompress(raw, {}, out).ok());  // plain protobuf is not snappy
  CHECK_FALSE(codec::decompress(body.substr(0, body.size() / 2), {}, out).ok());

  std::string again;
  codec::compress(raw, again);
  REQUIRE(codec::decompress(again, {}, out).ok());
  CHECK(out == raw);
}

TEST_CASE("batch: interned strings stay put until clear(), across chunks and for strings larger than one") {
  codec::SeriesBatch b;
  for (int round = 0; round < 3; ++round) {  // clear() reuses the storage
    CAPTURE(round);
    std::vector<std::pair<std::string, std::string_view>> kept;
    for (size_t i = 0; i < 3000; ++i) {
      // Sizes from empty to twice a chunk (64 KiB): every chunk boundary is crossed.
      const size_t size = i % 500 == 499 ? 130'000 : (i * 37) % 200;
      std::string s(size, static_cast<char>('a' + i % 26));
      if (!s.empty()) s[0] = static_cast<char>(round);
      kept.emplace_back(s, b.intern(s));
    }
    for (const auto& [want, view] : kept) REQUIRE(view == want);
    b.clear();
  }
  CHECK(b.intern("").empty());
  CHECK(b.intern("x") == "x");
}
