// Remote-write 2.0 codec: the hot-path decoder and encoders against the generated classes of
// proto/remote_write_v2.proto (round trips, validation, translation to and from 1.0, a
// differential test on random requests and mutations), and the content negotiation.
#include "codec/decode_v2.h"

#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/encode_v2.h"
#include "codec/protocol.h"
#include "codec/snappy_codec.h"
#include "codec/wire.h"
#include "pipeline/merge/emitter.h"
#include "remote_write_v2.pb.h"
#include "support/builders.h"

using namespace cardinal;
namespace v2 = io::prometheus::write::v2;

namespace {

// ---- building 2.0 requests with the generated classes ----------------------------------------

class Builder {
 public:
  Builder() { req.add_symbols(""); }
  uint32_t sym(const std::string& s) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<uint32_t>(req.symbols_size()));
    if (inserted) req.add_symbols(s);
    return it->second;
  }
  v2::TimeSeries* series(const std::vector<std::pair<std::string, std::string>>& labels) {
    auto* ts = req.add_timeseries();
    for (const auto& [n, v] : labels) {
      ts->add_labels_refs(sym(n));
      ts->add_labels_refs(sym(v));
    }
    return ts;
  }
  void sample(v2::TimeSeries* ts, int64_t t, double v, int64_t start = 0) {
    auto* s = ts->add_samples();
    s->set_timestamp(t);
    s->set_value(v);
    s->set_start_timestamp(start);
  }
  void metadata(v2::TimeSeries* ts, v2::Metadata::MetricType type, const std::string& help, const std::string& unit) {
    auto* m = ts->mutable_metadata();
    m->set_type(type);
    m->set_help_ref(sym(help));
    m->set_unit_ref(sym(unit));
  }
  v2::Request req;

 private:
  std::map<std::string, uint32_t> index_{{"", 0}};
};

std::string ser(const google::protobuf::Message& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// A histogram as the 1.0 message without start_timestamp (comparable across protocols), plus
// its start timestamp.
std::string describeHistogram(std::string_view raw) {
  v2::Histogram h;
  REQUIRE(h.ParseFromArray(raw.data(), static_cast<int>(raw.size())));
  int64_t start = h.start_timestamp();
  h.clear_start_timestamp();
  prometheus::Histogram h1;
  REQUIRE(h1.ParseFromString(ser(h)));
  std::string canon;
  {
    google::protobuf::io::StringOutputStream stream(&canon);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    h1.SerializeToCodedStream(&coded);
  }
  return "hist(" + hex(canon) + " st=" + std::to_string(start) + ")";
}

std::string describeMetadata(int type, const std::string& help, const std::string& unit) {
  if (type == 0 && help.empty() && unit.empty()) return "meta(none)";
  return "meta(" + std::to_string(type) + "," + help + "," + unit + ")";
}

// The meaning of a 2.0 request, as text: per series its labels (sorted), samples, histograms,
// exemplars and metadata, every string resolved. Two requests mean the same iff equal.
std::string describe(const v2::Request& req, bool with_start = true, bool with_metadata = true) {
  std::ostringstream o;
  const auto& sym = req.symbols();
  for (const auto& ts : req.timeseries()) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (int i = 0; i + 1 < ts.labels_refs_size(); i += 2)
      labels.emplace_back(sym.at(static_cast<int>(ts.labels_refs(i))), sym.at(static_cast<int>(ts.labels_refs(i + 1))));
    std::stable_sort(labels.begin(), labels.end(), [](auto& a, auto& b) { return a.first < b.first; });
    o << "{";
    for (const auto& [n, v] : labels) o << n << "=" << v << ",";
    o << "}";
    for (const auto& s : ts.samples())
      o << " s(" << s.timestamp() << "," << bits(s.value()) << ",st=" << (with_start ? s.start_timestamp() : 0) << ")";
    for (const auto& h : ts.histograms()) {
      auto copy = h;
      if (!with_start) copy.clear_start_timestamp();
      o << " " << describeHistogram(ser(copy));
    }
    for (const auto& e : ts.exemplars()) {
      o << " e(";
      for (int i = 0; i + 1 < e.labels_refs_size(); i += 2)
        o << sym.at(static_cast<int>(e.labels_refs(i))) << "=" << sym.at(static_cast<int>(e.labels_refs(i + 1))) << ",";
      o << e.timestamp() << "," << bits(e.value()) << ")";
    }
    if (with_metadata) {
      const auto& m = ts.metadata();
      o << " " << describeMetadata(m.type(), sym.at(static_cast<int>(m.help_ref())), sym.at(static_cast<int>(m.unit_ref())));
    }
    o << "\n";
  }
  return o.str();
}

// The same for a decoded batch (live series only).
std::string describe(const codec::SeriesBatch& b, bool with_start = true, bool with_metadata = true) {
  std::ostringstream o;
  const auto& starts = b.v2.sample_start_timestamps;
  for (size_t i = 0; i < b.series.size(); ++i) {
    const auto& s = b.series[i];
    if (s.dropped) continue;
    o << "{";
    for (const auto& l : b.labelsOf(s)) o << l.name << "=" << l.value << ",";
    o << "}";
    for (uint32_t k = 0; k < s.sample_count; ++k) {
      size_t at = s.sample_begin + k;
      int64_t st = with_start && at < starts.size() ? starts[at] : 0;
      o << " s(" << b.samples[at].timestamp << "," << bits(b.samples[at].value) << ",st=" << st << ")";
    }
    for (const auto& h : b.histogramsOf(s)) {
      v2::Histogram copy;
      REQUIRE(copy.ParseFromArray(h.raw.data(), static_cast<int>(h.raw.size())));
      CHECK(copy.start_timestamp() == h.start_timestamp);
      if (!with_start) copy.clear_start_timestamp();
      o << " " << describeHistogram(ser(copy));
    }
    for (const auto& e : b.exemplarsOf(s)) {
      o << " e(";
      for (const auto& l : b.labelsOf(e)) o << l.name << "=" << l.value << ",";
      o << e.timestamp << "," << bits(e.value) << ")";
    }
    if (with_metadata) {
      uint32_t m = i < b.v2.series_metadata.size() ? b.v2.series_metadata[i] : codec::V2Parts::kNoMetadata;
      if (m == codec::V2Parts::kNoMetadata) {
        o << " meta(none)";
      } else {
        const auto& md = b.metadata[m];
        o << " " << describeMetadata(static_cast<int>(md.type), std::string(md.help), std::string(md.unit));
      }
    }
    o << "\n";
  }
  return o.str();
}

// The series of a 1.0 request, in the same form (no start timestamps, no metadata).
std::string describe(const prometheus::WriteRequest& req) {
  std::ostringstream o;
  for (const auto& ts : req.timeseries()) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (const auto& l : ts.labels()) labels.emplace_back(l.name(), l.value());
    std::stable_sort(labels.begin(), labels.end(), [](auto& a, auto& b) { return a.first < b.first; });
    o << "{";
    for (const auto& [n, v] : labels) o << n << "=" << v << ",";
    o << "}";
    for (const auto& s : ts.samples()) o << " s(" << s.timestamp() << "," << bits(s.value()) << ",st=0)";
    for (const auto& h : ts.histograms()) o << " " << describeHistogram(ser(h));
    for (const auto& e : ts.exemplars()) {
      o << " e(";
      for (const auto& l : e.labels()) o << l.name() << "=" << l.value() << ",";
      o << e.timestamp() << "," << bits(e.value()) << ")";
    }
    o << "\n";
  }
  return o.str();
}

v2::Request parseV2(const std::string& raw) {
  v2::Request r;
  REQUIRE(r.ParseFromString(raw));
  return r;
}

v2::Request richRequest() {
  Builder b;
  auto* c = b.series({{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}});
  b.sample(c, 1000, 1, 500);
  b.sample(c, 2000, 3, 500);
  b.metadata(c, v2::Metadata::METRIC_TYPE_COUNTER, "Requests.", "");
  auto* e = c->add_exemplars();
  e->add_labels_refs(b.sym("trace_id"));
  e->add_labels_refs(b.sym("abc123"));
  e->set_value(1);
  e->set_timestamp(1999);
  auto* g = b.series({{"__name__", "temp_celsius"}, {"room", "S\xc3\xa3o Paulo"}});
  b.sample(g, 1000, -2.5);
  b.metadata(g, v2::Metadata::METRIC_TYPE_GAUGE, "", "celsius");
  for (const char* le : {"0.5", "+Inf"}) {
    auto* bk = b.series({{"__name__", "rpc_seconds_bucket"}, {"job", "api"}, {"le", le}});
    b.sample(bk, 1000, 4);
    b.metadata(bk, v2::Metadata::METRIC_TYPE_HISTOGRAM, "RPC latency.", "seconds");
  }
  auto* n = b.series({{"__name__", "rpc_native_seconds"}, {"job", "api"}});
  auto* h = n->add_histograms();
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
  h->set_start_timestamp(4000);
  b.metadata(n, v2::Metadata::METRIC_TYPE_HISTOGRAM, "Native.", "seconds");
  auto* u = b.series({{"__name__", "untyped"}});
  b.sample(u, 1000, 7);
  return b.req;
}

}  // namespace

TEST_CASE("v2 decode: labels are views into the symbols table; samples, histograms, exemplars, metadata") {
  auto req = richRequest();
  std::string raw = ser(req);
  codec::SeriesBatch b;
  auto st = codec::decodeRequestV2(raw, {}, b);
  REQUIRE_MESSAGE(st.ok(), st.error());
  CHECK(b.protocol == codec::WireProtocol::kV2);
  REQUIRE(b.series.size() == 6);
  auto l0 = b.labelsOf(b.series[0]);
  REQUIRE(l0.size() == 3);
  CHECK(l0[0].name == "__name__");
  CHECK(l0[0].value == "http_requests_total");
  // No copies: every label string lies inside the decompressed request.
  for (const auto& l : b.labels) {
    CHECK(l.name.data() >= raw.data());
    CHECK(l.value.data() + l.value.size() <= raw.data() + raw.size());
  }
  CHECK(b.samplesOf(b.series[0]).size() == 2);
  CHECK(b.samplesOf(b.series[0])[1].value == 3);
  REQUIRE(b.v2.sample_start_timestamps.size() == b.samples.size());
  CHECK(b.v2.sample_start_timestamps[0] == 500);
  CHECK(b.v2.sample_start_timestamps[2] == 0);  // temp_celsius: none
  REQUIRE(b.exemplarsOf(b.series[0]).size() == 1);
  CHECK(b.labelsOf(b.exemplarsOf(b.series[0])[0])[0].name == "trace_id");
  CHECK(b.labelsOf(b.exemplarsOf(b.series[0])[0])[0].value == "abc123");
  REQUIRE(b.histogramsOf(b.series[4]).size() == 1);
  const auto& h = b.histogramsOf(b.series[4])[0];
  CHECK(h.count_int == 10);
  CHECK(h.schema == 3);
  CHECK(h.timestamp == 5000);
  CHECK(h.start_timestamp == 4000);

  // Metadata: one entry per family and content; the two buckets share one (family rpc_seconds).
  REQUIRE(b.metadata.size() == 4);
  CHECK(b.metadata[0].family == "http_requests_total");
  CHECK(b.metadata[0].type == codec::MetricType::kCounter);
  CHECK(b.metadata[0].help == "Requests.");
  CHECK(b.metadata[1].family == "temp_celsius");
  CHECK(b.metadata[1].unit == "celsius");
  CHECK(b.metadata[2].family == "rpc_seconds");
  CHECK(b.metadata[2].type == codec::MetricType::kHistogram);
  CHECK(b.metadata[3].family == "rpc_native_seconds");
  CHECK(b.v2.series_metadata == std::vector<uint32_t>{0, 1, 2, 2, 3, codec::V2Parts::kNoMetadata});
  CHECK_FALSE(b.anyChanged());
  CHECK(describe(b) == describe(req));
}

TEST_CASE("v2 metadata family: histogram and summary parts name their family") {
  using codec::MetricType;
  CHECK(codec::metadataFamily("x_bucket", MetricType::kHistogram) == "x");
  CHECK(codec::metadataFamily("x_sum", MetricType::kGaugeHistogram) == "x");
  CHECK(codec::metadataFamily("x_count", MetricType::kSummary) == "x");
  CHECK(codec::metadataFamily("x_bucket", MetricType::kSummary) == "x_bucket");
  CHECK(codec::metadataFamily("x_count", MetricType::kGauge) == "x_count");
  CHECK(codec::metadataFamily("x_total", MetricType::kCounter) == "x_total");
  CHECK(codec::metadataFamily("_sum", MetricType::kSummary) == "_sum");

  // A series with help but no type keeps its help for re-encoding but names no family.
  Builder b;
  auto* ts = b.series({{"__name__", "m"}});
  b.sample(ts, 1, 1);
  b.metadata(ts, v2::Metadata::METRIC_TYPE_UNSPECIFIED, "help text", "");
  std::string raw = ser(b.req);
  codec::SeriesBatch batch;
  REQUIRE(codec::decodeRequestV2(raw, {}, batch).ok());
  REQUIRE(batch.metadata.size() == 1);
  CHECK(batch.metadata[0].family.empty());
  CHECK(batch.metadata[0].help == "help text");
}

TEST_CASE("v2 encode: re-encoding means the same, unchanged or changed, with a fresh symbols table") {
  auto req = richRequest();
  std::string raw = ser(req);
  codec::SeriesBatch b;
  REQUIRE(codec::decodeRequestV2(raw, {}, b).ok());
  std::string out;

  SUBCASE("all series") {
    codec::encodeRequestV2(b, out);
    auto back = parseV2(out);
    CHECK(describe(back) == describe(req));
    CHECK(back.symbols(0).empty());
  }
  SUBCASE("a dropped series and its symbols are left out") {
    b.series[1].dropped = true;
    codec::encodeRequestV2(b, out);
    auto back = parseV2(out);
    REQUIRE(back.timeseries_size() == 5);
    for (const auto& s : back.symbols()) CHECK(s.find("Paulo") == std::string::npos);
  }
  SUBCASE("a rewritten label value does not survive anywhere in the request") {
    // The sanitize stage replaces a value; the old one must not stay in the symbols table.
    auto& s = b.series[1];
    std::vector<codec::LabelView> labels(b.labelsOf(s).begin(), b.labelsOf(s).end());
    labels[1].value = b.intern("h:0123456789abcdef");
    b.setLabels(s, labels);
    codec::encodeRequestV2(b, out);
    CHECK(out.find("Paulo") == std::string::npos);
    auto back = parseV2(out);
    CHECK(describe(back).find("room=h:0123456789abcdef") != std::string::npos);
  }
  SUBCASE("redacted help text is what goes out") {
    b.metadata[0].help = b.intern("h:feedfacefeedface");
    b.metadata[0].changed = true;
    codec::encodeRequestV2(b, out);
    CHECK(out.find("Requests.") == std::string::npos);
    CHECK(out.find("h:feedfacefeedface") != std::string::npos);
  }
  SUBCASE("encodeForProtocol: v2 -> v2 re-encodes") {
    codec::encodeForProtocol(b, codec::WireProtocol::kV2, out);
    CHECK(describe(parseV2(out)) == describe(req));
  }
}

TEST_CASE("v2 validation: refused with a message naming positions, never values") {
  codec::SeriesBatch b;
  auto refuse = [&](const std::string& raw, const std::string& expected, codec::Limits limits = {}) {
    auto st = codec::decodeRequestV2(raw, limits, b);
    REQUIRE_FALSE(st.ok());
    CHECK_MESSAGE(st.error().find(expected) != std::string::npos, st.error());
    CHECK_MESSAGE(st.error().find("secret-value") == std::string::npos, st.error());
  };

  SUBCASE("symbols[0] must be empty") {
    v2::Request r;
    r.add_symbols("secret-value");
    refuse(ser(r), "symbols[0] must be the empty string");
  }
  SUBCASE("a label reference out of range") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}, {"a", "secret-value"}});
    bd.sample(ts, 1, 1);
    ts->set_labels_refs(3, 99);
    refuse(ser(bd.req), "series 0: labels_refs[3] = 99 is out of range (the request has 5 symbols)");
  }
  SUBCASE("odd labels_refs") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}});
    ts->add_labels_refs(bd.sym("secret-value"));
    refuse(ser(bd.req), "series 0: labels_refs has odd length 3");
  }
  SUBCASE("exemplar references") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}});
    bd.sample(ts, 1, 1);
    auto* e = ts->add_exemplars();
    e->add_labels_refs(bd.sym("trace_id"));
    refuse(ser(bd.req), "series 0: exemplar 0: labels_refs has odd length 1");
    e->add_labels_refs(77);
    refuse(ser(bd.req), "series 0: exemplar 0: labels_refs[1] = 77 is out of range");
  }
  SUBCASE("metadata references") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}});
    bd.sample(ts, 1, 1);
    ts->mutable_metadata()->set_help_ref(40);
    refuse(ser(bd.req), "series 0: metadata help_ref = 40 is out of range");
    ts->mutable_metadata()->set_help_ref(0);
    ts->mutable_metadata()->set_unit_ref(41);
    refuse(ser(bd.req), "series 0: metadata unit_ref = 41 is out of range");
  }
  SUBCASE("label rules as in 1.0") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}, {"a", "secret-value"}, {"a", "secret-value2"}});
    bd.sample(ts, 1, 1);
    refuse(ser(bd.req), "series 0: duplicate label name \"a\"");
    Builder bd2;
    bd2.series({{"job", "secret-value"}});
    refuse(ser(bd2.req), "series 0: no __name__ label");
    Builder bd3;
    bd3.series({{"__name__", "m"}, {"", "secret-value"}});
    refuse(ser(bd3.req), "series 0: empty label name");
    Builder bd4;
    bd4.series({{"__name__", "m"}, {"a", "secret-value"}});
    codec::Limits small;
    small.max_label_value_bytes = 4;
    refuse(ser(bd4.req), "value of label \"a\" is 12 bytes", small);
    small = {};
    small.max_labels_per_series = 1;
    refuse(ser(bd4.req), "more than 1 labels", small);
    small = {};
    small.max_series_per_request = 0;
    refuse(ser(bd4.req), "more than 0 series", small);
  }
  SUBCASE("samples out of order") {
    Builder bd;
    auto* ts = bd.series({{"__name__", "m"}});
    bd.sample(ts, 2, 1);
    bd.sample(ts, 1, 1);
    refuse(ser(bd.req), "series 0: samples out of timestamp order at sample 1");
  }
  SUBCASE("invalid UTF-8 in a symbol") {
    std::string raw;
    codec::wire::putLen(raw, 4, "");
    codec::wire::putLen(raw, 4, "\xff\xfe");
    refuse(raw, "symbols[1] is not valid UTF-8");
  }
  SUBCASE("truncated") {
    std::string raw = ser(richRequest());
    refuse(raw.substr(0, raw.size() - 3), "");
  }
}

TEST_CASE("v2 decode: unsorted labels are sorted; rc.3 created_timestamp (field 6) is accepted and ignored") {
  Builder bd;
  auto* ts = bd.series({{"zone", "b"}, {"__name__", "m"}, {"app", "x"}});
  bd.sample(ts, 5, 1);
  std::string raw = ser(bd.req);
  // Append TimeSeries field 6 (created_timestamp, int64) by hand: our proto reserves it.
  v2::Request with_ct;
  REQUIRE(with_ct.ParseFromString(raw));
  std::string series = ser(with_ct.timeseries(0));
  codec::wire::putTag(series, 6, codec::wire::kVarint);
  codec::wire::putVarint(series, 1700000000000);
  std::string crafted;
  for (const auto& s : with_ct.symbols()) codec::wire::putLen(crafted, 4, s);
  codec::wire::putLen(crafted, 5, series);

  codec::SeriesBatch b;
  auto st = codec::decodeRequestV2(crafted, {}, b);
  REQUIRE_MESSAGE(st.ok(), st.error());
  REQUIRE(b.series.size() == 1);
  auto labels = b.labelsOf(b.series[0]);
  CHECK(labels[0].name == "__name__");
  CHECK(labels[1].name == "app");
  CHECK(labels[2].name == "zone");
  CHECK(b.series[0].changed);
  CHECK(b.v2.sample_start_timestamps.empty());
  std::string out;
  codec::encodeRequestV2(b, out);
  auto back = parseV2(out);
  CHECK(describe(back) == "{__name__=m,app=x,zone=b,} s(5," + std::to_string(bits(1)) + ",st=0) meta(none)\n");
}

TEST_CASE("translation v2 -> v1: series from their parts, metadata once per family, no start timestamps") {
  auto req = richRequest();
  std::string raw = ser(req);
  codec::SeriesBatch b;
  REQUIRE(codec::decodeRequestV2(raw, {}, b).ok());
  std::string out;
  codec::encodeForProtocol(b, codec::WireProtocol::kV1, out);
  prometheus::WriteRequest v1;
  REQUIRE(v1.ParseFromString(out));
  CHECK(describe(v1) == describe(req, /*with_start=*/false, /*with_metadata=*/false));
  // The 1.0 histogram carries no field 17 (start_timestamp): not even as an unknown field.
  CHECK(v1.timeseries(4).histograms(0).GetReflection()->GetUnknownFields(v1.timeseries(4).histograms(0)).empty());
  REQUIRE(v1.metadata_size() == 4);
  CHECK(v1.metadata(0).metric_family_name() == "http_requests_total");
  CHECK(v1.metadata(0).type() == prometheus::MetricMetadata::COUNTER);
  CHECK(v1.metadata(0).help() == "Requests.");
  CHECK(v1.metadata(2).metric_family_name() == "rpc_seconds");
  CHECK(v1.metadata(2).type() == prometheus::MetricMetadata::HISTOGRAM);
  CHECK(v1.metadata(2).unit() == "seconds");
  CHECK(v1.metadata(3).metric_family_name() == "rpc_native_seconds");

  // And the 1.0 decoder takes it back with the same meaning.
  codec::SeriesBatch again;
  REQUIRE(codec::decodeWriteRequest(out, {}, again).ok());
  CHECK(describe(again, false, false) == describe(req, false, false));
}

TEST_CASE("translation v1 -> v2: metadata of the request attached to its family's series") {
  using testing::makeSeries;
  auto req = testing::makeRequest({
      makeSeries({{"__name__", "http_requests_total"}, {"code", "200"}}, {{1000, 1}, {2000, 2}}),
      makeSeries({{"__name__", "rpc_seconds_bucket"}, {"le", "+Inf"}}, {{1000, 4}}),
      makeSeries({{"__name__", "rpc_seconds_count"}}, {{1000, 4}}),
      makeSeries({{"__name__", "orders_total"}}, {{1000, 9}}),
      makeSeries({{"__name__", "plain"}}, {{1000, 5}}),
  });
  auto add_md = [&](prometheus::MetricMetadata::MetricType t, const char* family, const char* help, const char* unit) {
    auto* m = req.add_metadata();
    m->set_type(t);
    m->set_metric_family_name(family);
    m->set_help(help);
    m->set_unit(unit);
  };
  add_md(prometheus::MetricMetadata::COUNTER, "http_requests_total", "Requests.", "");
  add_md(prometheus::MetricMetadata::HISTOGRAM, "rpc_seconds", "RPC.", "seconds");
  add_md(prometheus::MetricMetadata::COUNTER, "orders", "Orders (OpenMetrics family).", "");
  add_md(prometheus::MetricMetadata::GAUGE, "not_in_this_request", "", "");
  auto* e = req.mutable_timeseries(0)->add_exemplars();
  auto* el = e->add_labels();
  el->set_name("trace_id");
  el->set_value("t1");
  e->set_value(1);
  e->set_timestamp(999);

  std::string raw = testing::serialize(req);
  codec::SeriesBatch b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  std::string out;
  codec::encodeForProtocol(b, codec::WireProtocol::kV2, out);
  auto v2req = parseV2(out);
  CHECK(describe(v2req, true, false) == describe(req));
  auto d = describe(v2req);
  CHECK(d.find("{__name__=http_requests_total,code=200,}") == 0);
  std::istringstream lines(d);
  std::vector<std::string> meta;
  for (std::string line; std::getline(lines, line);) meta.push_back(line.substr(line.find(" meta(")));
  REQUIRE(meta.size() == 5);
  CHECK(meta[0] == " meta(1,Requests.,)");
  CHECK(meta[1] == " meta(3,RPC.,seconds)");
  CHECK(meta[2] == " meta(3,RPC.,seconds)");
  CHECK(meta[3] == " meta(1,Orders (OpenMetrics family).,)");
  CHECK(meta[4] == " meta(none)");

  SUBCASE("and back to v1: the same series, metadata per family of the request") {
    codec::SeriesBatch again;
    REQUIRE(codec::decodeRequestV2(out, {}, again).ok());
    std::string v1out;
    codec::encodeForProtocol(again, codec::WireProtocol::kV1, v1out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(v1out));
    CHECK(describe(back) == describe(req));
    REQUIRE(back.metadata_size() == 3);
    CHECK(back.metadata(0).metric_family_name() == "http_requests_total");
    CHECK(back.metadata(1).metric_family_name() == "rpc_seconds");
    CHECK(back.metadata(2).metric_family_name() == "orders_total");  // named after its series now
  }
  SUBCASE("a metadata-only 1.0 request has no 2.0 form") {
    prometheus::WriteRequest md_only;
    *md_only.add_metadata() = req.metadata(0);
    std::string md_raw = testing::serialize(md_only);
    REQUIRE(codec::decodeWriteRequest(md_raw, {}, b).ok());
    codec::encodeForProtocol(b, codec::WireProtocol::kV2, out);
    auto empty = parseV2(out);
    CHECK(empty.timeseries_size() == 0);
  }
  SUBCASE("v1 -> v1 still copies unchanged series byte for byte") {
    codec::encodeForProtocol(b, codec::WireProtocol::kV1, out);
    CHECK(out == raw);
  }
}

TEST_CASE("merged outputs are emitted in the upstream's protocol") {
  using pipeline::merge::MergeState;
  std::vector<MergeState::Emitted> emitted;
  MergeState::Emitted f;
  f.labels = {{"__name__", "orders_total"}, {"env", "prod"}};
  f.sample = {5000, 42};
  emitted.push_back(f);
  MergeState::Emitted h;
  h.labels = {{"__name__", "rpc"}, {"env", "prod"}};
  h.sample = {6000, 3};
  prometheus::Histogram hist;
  hist.set_count_float(3);
  hist.set_sum(1.5);
  hist.set_schema(0);
  auto* span = hist.add_positive_spans();
  span->set_offset(0);
  span->set_length(1);
  hist.add_positive_counts(3);
  h.histogram = ser(hist);
  emitted.push_back(h);
  emitted.push_back(f);
  emitted.back().labels[1].second = "dev";

  auto bodies = pipeline::merge::encodeEmitted(emitted, 2, codec::WireProtocol::kV2);
  REQUIRE(bodies.size() == 2);
  std::string raw;
  REQUIRE(codec::decompress(*bodies[0], {}, raw).ok());
  auto first = parseV2(raw);
  REQUIRE(first.timeseries_size() == 2);
  hist.set_timestamp(6000);
  CHECK(describe(first) == "{__name__=orders_total,env=prod,} s(5000," + std::to_string(bits(42)) +
                               ",st=0) meta(none)\n{__name__=rpc,env=prod,} " + describeHistogram(ser(hist)) +
                               " meta(none)\n");
  REQUIRE(codec::decompress(*bodies[1], {}, raw).ok());
  CHECK(describe(parseV2(raw)).find("env=dev") != std::string::npos);

  // The 1.0 form of the same outputs means the same.
  auto v1bodies = pipeline::merge::encodeEmitted(emitted, 2);
  REQUIRE(v1bodies.size() == 2);
  REQUIRE(codec::decompress(*v1bodies[0], {}, raw).ok());
  prometheus::WriteRequest v1;
  REQUIRE(v1.ParseFromString(raw));
  CHECK(describe(v1) == describe(first, true, false));
}

TEST_CASE("content negotiation as the 2.0 specification says") {
  using codec::WireProtocol;
  struct Case {
    const char* value;
    bool ok;
    WireProtocol protocol;
  };
  const Case cases[] = {
      {"", true, WireProtocol::kV1},  // absent: 1.0
      {"application/x-protobuf", true, WireProtocol::kV1},
      {"application/x-protobuf;proto=prometheus.WriteRequest", true, WireProtocol::kV1},
      {"application/x-protobuf;proto=io.prometheus.write.v2.Request", true, WireProtocol::kV2},
      {"application/x-protobuf; proto=io.prometheus.write.v2.Request", true, WireProtocol::kV2},
      {"Application/X-Protobuf;Proto=\"io.prometheus.write.v2.Request\"", true, WireProtocol::kV2},
      {"application/x-protobuf;charset=utf-8;proto=io.prometheus.write.v2.Request", true, WireProtocol::kV2},
      {"application/x-protobuf;proto=io.prometheus.write.v3.Request", false, WireProtocol::kV1},
      {"application/json", false, WireProtocol::kV1},
      {"application/x-protobuf;proto", false, WireProtocol::kV1},
      {"text/plain;proto=io.prometheus.write.v2.Request", false, WireProtocol::kV1},
  };
  for (const auto& c : cases) {
    auto r = codec::checkContentType(c.value);
    CHECK_MESSAGE(r.error.empty() == c.ok, c.value << ": " << r.error);
    if (c.ok) CHECK_MESSAGE(r.protocol == c.protocol, c.value);
  }
  CHECK(codec::checkContentEncoding("").empty());
  CHECK(codec::checkContentEncoding("snappy").empty());
  CHECK(codec::checkContentEncoding(" Snappy ").empty());
  CHECK(codec::checkContentEncoding("gzip").find("unsupported Content-Encoding \"gzip\"") == 0);
  // What Cardinal sends: no space before proto= (Prometheus does not trim parameters).
  CHECK(codec::contentType(WireProtocol::kV2) == "application/x-protobuf;proto=io.prometheus.write.v2.Request");
  CHECK(codec::versionHeaderValue(WireProtocol::kV2) == "2.0.0");
  CHECK(codec::versionHeaderValue(WireProtocol::kV1) == "0.1.0");
  CHECK(codec::parseProtocolName("v2") == WireProtocol::kV2);
  CHECK(codec::parseProtocolName("V1") == WireProtocol::kV1);
  CHECK_FALSE(codec::parseProtocolName("v3").has_value());
}

// ---- differential test against the generated classes -------------------------------------------

namespace {

struct GenV2 {
  std::mt19937_64 rng;
  explicit GenV2(uint64_t seed) : rng(seed) {}
  int upTo(int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n + 1)); }
  std::string word(int max_len) {
    static const char* alphabet[] = {"a", "b", "z", "_", "0", "9", "/", " ", "\xc3\xa9", "\xe2\x82\xac", "{", "\""};
    std::string s;
    int n = 1 + upTo(max_len - 1);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % 12];
    return s;
  }
  double value() {
    switch (upTo(4)) {
      case 0: return 0;
      case 1: return static_cast<double>(upTo(1000));
      case 2: {
        uint64_t b = 0x7ff0000000000002ull;  // stale marker
        double d;
        std::memcpy(&d, &b, 8);
        return d;
      }
      default: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    }
  }
  int64_t ts() { return 1'700'000'000'000 + upTo(100000); }

  v2::Request request() {
    Builder b;
    // Some symbols nobody references, in random places.
    for (int k = upTo(2); k > 0; --k) b.sym("unused" + word(4));
    int n = upTo(6);
    for (int i = 0; i < n; ++i) {
      std::vector<std::pair<std::string, std::string>> labels = {{"__name__", "m" + std::to_string(i)}};
      for (int j = upTo(5); j > 0; --j) labels.emplace_back("l" + std::to_string(j) + word(3), word(12));
      if (upTo(3) != 0) std::sort(labels.begin(), labels.end());  // senders sort; not all do
      auto* ts = b.series(labels);
      int64_t t = this->ts();
      bool histograms = upTo(3) == 0;
      int64_t start = upTo(1) ? t - 1000 : 0;
      for (int k = upTo(3); k > 0 && !histograms; --k) {
        b.sample(ts, t, value(), start);
        t += upTo(30000);
      }
      for (int k = histograms ? 1 + upTo(1) : 0; k > 0; --k) {
        auto* h = ts->add_histograms();
        if (upTo(1)) h->set_count_int(static_cast<uint64_t>(upTo(100)));
        else h->set_count_float(value());
        h->set_sum(value());
        h->set_schema(upTo(16) - 8);
        h->set_zero_threshold(upTo(1) ? 0 : 1e-128);
        if (upTo(1)) h->set_zero_count_int(static_cast<uint64_t>(upTo(5)));
        else h->set_zero_count_float(value());
        for (int sp = upTo(2); sp > 0; --sp) {
          auto* span = (upTo(1) ? h->add_positive_spans() : h->add_negative_spans());
          span->set_offset(upTo(20) - 10);
          span->set_length(static_cast<uint32_t>(upTo(3)));
        }
        for (int d = upTo(3); d > 0; --d) h->add_positive_deltas(upTo(40) - 20);
        for (int d = upTo(2); d > 0; --d) h->add_negative_counts(value());
        h->set_reset_hint(static_cast<v2::Histogram::ResetHint>(upTo(3)));
        h->set_timestamp(t);
        h->set_start_timestamp(start);
        for (int d = upTo(1); d > 0; --d) h->add_custom_values(value());
        t += upTo(30000);
      }
      for (int k = upTo(1); k > 0; --k) {
        auto* e = ts->add_exemplars();
        for (int l = upTo(2); l > 0; --l) {
          e->add_labels_refs(b.sym(l == 1 ? "trace_id" : "span_id"));
          e->add_labels_refs(b.sym(word(16)));
        }
        e->set_value(value());
        e->set_timestamp(t);
      }
      if (upTo(2) != 0) {
        b.metadata(ts, static_cast<v2::Metadata::MetricType>(upTo(7)), upTo(1) ? word(20) : "",
                   upTo(1) ? "seconds" : "");
      }
    }
    // Senders choose the order of the table: shuffle it (fixing every reference).
    if (b.req.symbols_size() > 2 && upTo(1)) {
      std::vector<int> perm(static_cast<size_t>(b.req.symbols_size()));
      for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
      std::shuffle(perm.begin() + 1, perm.end(), rng);  // symbols[0] stays ""
      std::vector<uint32_t> where(perm.size());
      auto old = b.req.symbols();
      for (size_t i = 0; i < perm.size(); ++i) {
        b.req.set_symbols(static_cast<int>(i), old.at(perm[i]));
        where[static_cast<size_t>(perm[i])] = static_cast<uint32_t>(i);
      }
      for (auto& ts : *b.req.mutable_timeseries()) {
        for (auto& r : *ts.mutable_labels_refs()) r = where[r];
        for (auto& e : *ts.mutable_exemplars())
          for (auto& r : *e.mutable_labels_refs()) r = where[r];
        if (ts.has_metadata()) {
          ts.mutable_metadata()->set_help_ref(where[ts.metadata().help_ref()]);
          ts.mutable_metadata()->set_unit_ref(where[ts.metadata().unit_ref()]);
        }
      }
    }
    return b.req;
  }
};

// The rules our decoder enforces beyond the wire format; a request the generated code accepts
// may only be refused by us for one of these.
bool violatesSemantics(const v2::Request& req, const codec::Limits& limits) {
  const auto& sym = req.symbols();
  const auto n = static_cast<uint32_t>(sym.size());
  if (n > 0 && !sym.at(0).empty()) return true;
  if (static_cast<size_t>(req.timeseries_size()) > limits.max_series_per_request) return true;
  for (const auto& s : req.timeseries()) {
    if (s.labels_refs_size() % 2 != 0) return true;
    if (static_cast<size_t>(s.labels_refs_size() / 2) > limits.max_labels_per_series) return true;
    for (uint32_t r : s.labels_refs())
      if (r >= n) return true;
    std::vector<std::string> names;
    bool has_name = false;
    for (int i = 0; i + 1 < s.labels_refs_size(); i += 2) {
      const std::string& name = sym.at(static_cast<int>(s.labels_refs(i)));
      const std::string& value = sym.at(static_cast<int>(s.labels_refs(i + 1)));
      if (name.empty() || name.size() > limits.max_label_name_bytes || value.size() > limits.max_label_value_bytes)
        return true;
      if (name == "__name__" && !value.empty()) has_name = true;
      names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end() || !has_name) return true;
    for (int i = 1; i < s.samples_size(); ++i)
      if (s.samples(i).timestamp() < s.samples(i - 1).timestamp()) return true;
    for (int i = 1; i < s.histograms_size(); ++i)
      if (s.histograms(i).timestamp() < s.histograms(i - 1).timestamp()) return true;
    for (const auto& e : s.exemplars()) {
      if (e.labels_refs_size() % 2 != 0) return true;
      for (uint32_t r : e.labels_refs())
        if (r >= n) return true;
    }
    if (s.has_metadata() && (s.metadata().help_ref() >= n || s.metadata().unit_ref() >= n)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("differential v2: random valid requests decode, re-encode and translate to the generated meaning") {
  GenV2 g(20261127);
  codec::SeriesBatch batch;
  std::string out;
  for (int iter = 0; iter < 2000; ++iter) {
    auto req = g.request();
    std::string raw = ser(req);
    auto st = codec::decodeRequestV2(raw, {}, batch);
    REQUIRE_MESSAGE(st.ok(), "iteration " << iter << ": " << st.error());
    REQUIRE_MESSAGE(describe(batch) == describe(req), "iteration " << iter);
    for (auto& s : batch.series) s.changed = (g.upTo(1) == 1);
    codec::encodeRequestV2(batch, out);
    auto back = parseV2(out);
    REQUIRE_MESSAGE(describe(back) == describe(req), "iteration " << iter);
    codec::encodeWriteRequestFromV2(batch, out);
    prometheus::WriteRequest v1;
    REQUIRE(v1.ParseFromString(out));
    REQUIRE_MESSAGE(describe(v1) == describe(req, false, false), "iteration " << iter);
  }
}

TEST_CASE("differential v2: mutated bytes are accepted or refused like the generated parser does") {
  GenV2 g(43);
  codec::SeriesBatch batch;
  codec::Limits limits;
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string raw = ser(g.request());
    if (raw.empty()) continue;
    int edits = 1 + g.upTo(3);
    for (int e = 0; e < edits; ++e) {
      size_t pos = g.rng() % raw.size();
      switch (g.upTo(3)) {
        case 0: raw[pos] = static_cast<char>(g.rng()); break;
        case 1: raw[pos] ^= static_cast<char>(1 << g.upTo(7)); break;
        case 2: raw.resize(pos); break;
        default: raw.insert(pos, 1, static_cast<char>(g.rng())); break;
      }
      if (raw.empty()) break;
    }
    v2::Request want;
    bool gen_ok = want.ParseFromString(raw);
    auto st = codec::decodeRequestV2(raw, limits, batch);
    if (!gen_ok) {
      CHECK_MESSAGE(!st.ok(), "iteration " << iter << ": generated parser refused, hot path accepted");
      ++refused;
      continue;
    }
    if (!st.ok()) {
      CHECK_MESSAGE(violatesSemantics(want, limits),
                    "iteration " << iter << ": hot path refused a well-formed request: " << st.error());
      ++refused;
      continue;
    }
    ++accepted;
    CHECK_MESSAGE(describe(batch) == describe(want), "iteration " << iter);
  }
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}
