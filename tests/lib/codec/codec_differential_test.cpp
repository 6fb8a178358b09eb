// Differential test: the hot-path codec against the generated protobuf code
// on the same inputs, random valid requests and random mutations of them.
#include "codec/decode.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>


#include "codec/encode.h"
#include "support/builders.h"

using namespace cardinal;

namespace {

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
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
        uint64_t bits = 0x7ff0000000000002ull;  // stale marker
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
      default: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    }
  }
  int64_t ts() { return 1'700'000'000'000 + upTo(100000) - (upTo(10) == 0 ? 2'000'000'000'000 : 0); }

  prometheus::WriteRequest request() {
    prometheus::WriteRequest req;
    int n = upTo(6);
    for (int i = 0; i < n; ++i) {
      auto* s = req.add_timeseries();
      std::vector<std::string> names = {"__name__"};
      int extra = upTo(5);
      for (int j = 0; j < extra; ++j) names.push_back("l" + std::to_string(j) + word(3));
      std::sort(names.begin(), names.end());
      for (const auto& name : names) {
        auto* l = s->add_labels();
        l->set_name(name);
        l->set_value(name == "__name__" ? "m" + std::to_string(i) : (upTo(8) == 0 ? "" : word(12)));
      }
      int64_t t = ts();
      for (int k = upTo(3); k > 0; --k) {
        auto* smp = s->add_samples();
        smp->set_value(value());
        smp->set_timestamp(t);
        t += upTo(30000);
      }
      for (int k = upTo(1); k > 0; --k) {
        auto* h = s->add_histograms();
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
        h->set_reset_hint(static_cast<prometheus::Histogram::ResetHint>(upTo(3)));
        h->set_timestamp(t);
        for (int d = upTo(1); d > 0; --d) h->add_custom_values(value());
      }
      for (int k = upTo(1); k > 0; --k) {
        auto* e = s->add_exemplars();
        auto* el = e->add_labels();
        el->set_name("trace_id");
        el->set_value(word(16));
        e->set_value(value());
        e->set_timestamp(t);
      }
    }
    for (int k = upTo(2); k > 0; --k) {
      auto* m = req.add_metadata();
      m->set_type(static_cast<prometheus::MetricMetadata::MetricType>(upTo(7)));
      m->set_metric_family_name("m" + std::to_string(k));
      m->set_help(word(20));
      m->set_unit(upTo(1) ? "seconds" : "");
    }
    return req;
  }
};

bool sameBits(double a, double b) { return std::memcmp(&a, &b, 8) == 0; }

// The rules our decoder enforces beyond the wire format; a request the
// generated code accepts may only be refused by us for one of these.
bool violatesSemantics(const prometheus::WriteRequest& req, const codec::Limits& limits) {
  if (static_cast<size_t>(req.timeseries_size()) > limits.max_series_per_request) return true;
  for (const auto& s : req.timeseries()) {
    if (static_cast<size_t>(s.labels_size()) > limits.max_labels_per_series) return true;
    std::vector<std::string> names;
    bool has_name = false;
    for (const auto& l : s.labels()) {
      if (l.name().empty() || l.name().size() > limits.max_label_name_bytes ||
          l.value().size() > limits.max_label_value_bytes)
        return true;
      if (l.name() == "__name__" && !l.value().empty()) has_name = true;
      names.push_back(l.name());
    }
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end() || !has_name) return true;
    for (int i = 1; i < s.samples_size(); ++i)
      if (s.samples(i).timestamp() < s.samples(i - 1).timestamp()) return true;
    for (int i = 1; i < s.histograms_size(); ++i)
      if (s.histograms(i).timestamp() < s.histograms(i - 1).timestamp()) return true;
  }
  return false;
}

// Same meaning: every field of the generated message is visible in the batch.
void checkSameMeaning(const prometheus::WriteRequest& want, const codec::SeriesBatch& got) {
  REQUIRE(got.series.size() == static_cast<size_t>(want.timeseries_size()));
  for (int i = 0; i < want.timeseries_size(); ++i) {
    const auto& ws = want.timeseries(i);
    const auto& gs = got.series[static_cast<size_t>(i)];
    std::vector<std::pair<std::string, std::string>> wl;
    for (const auto& l : ws.labels()) wl.emplace_back(l.name(), l.value());
    std::sort(wl.begin(), wl.end());
    auto gl = got.labelsOf(gs);
    REQUIRE(gl.size() == wl.size());
    for (size_t j = 0; j < wl.size(); ++j) {
      CHECK(gl[j].name == wl[j].first);
      CHECK(gl[j].value == wl[j].second);
    }
    auto smp = got.samplesOf(gs);
    REQUIRE(smp.size() == static_cast<size_t>(ws.samples_size()));
    for (size_t j = 0; j < smp.size(); ++j) {
      CHECK(smp[j].timestamp == ws.samples(static_cast<int>(j)).timestamp());
      CHECK(sameBits(smp[j].value, ws.samples(static_cast<int>(j)).value()));
    }
    auto hs = got.histogramsOf(gs);
    REQUIRE(hs.size() == static_cast<size_t>(ws.histograms_size()));
    for (size_t j = 0; j < hs.size(); ++j) {
      const auto& wh = ws.histograms(static_cast<int>(j));
      CHECK(hs[j].timestamp == wh.timestamp());
      CHECK(hs[j].schema == wh.schema());
      CHECK(sameBits(hs[j].sum, wh.sum()));
      CHECK(hs[j].count_is_float == (wh.count_case() == prometheus::Histogram::kCountFloat));
      if (hs[j].count_is_float) CHECK(sameBits(hs[j].count_float, wh.count_float()));
      else CHECK(hs[j].count_int == wh.count_int());
      CHECK(hs[j].reset_hint == static_cast<int32_t>(wh.reset_hint()));
      prometheus::Histogram reparsed;
      REQUIRE(reparsed.ParseFromArray(hs[j].raw.data(), static_cast<int>(hs[j].raw.size())));
      CHECK(cardinal::testing::sameMessage(reparsed, wh));
    }
    auto es = got.exemplarsOf(gs);
    REQUIRE(es.size() == static_cast<size_t>(ws.exemplars_size()));
    for (size_t j = 0; j < es.size(); ++j) {
      const auto& we = ws.exemplars(static_cast<int>(j));
      CHECK(es[j].timestamp == we.timestamp());
      CHECK(sameBits(es[j].value, we.value()));
      auto el = got.labelsOf(es[j]);
      REQUIRE(el.size() == static_cast<size_t>(we.labels_size()));
      for (size_t k = 0; k < el.size(); ++k) {
        CHECK(el[k].name == we.labels(static_cast<int>(k)).name());
        CHECK(el[k].value == we.labels(static_cast<int>(k)).value());
      }
    }
  }
  REQUIRE(got.metadata.size() == static_cast<size_t>(want.metadata_size()));
  for (int i = 0; i < want.metadata_size(); ++i) {
    const auto& wm = want.metadata(i);
    const auto& gm = got.metadata[static_cast<size_t>(i)];
    CHECK(static_cast<int>(gm.type) == static_cast<int>(wm.type()));
    CHECK(gm.family == wm.metric_family_name());
    CHECK(gm.help == wm.help());
    CHECK(gm.unit == wm.unit());
  }
}

}  // namespace

TEST_CASE("differential: random valid requests decode and re-encode to the generated meaning") {
  Gen g(20261126);
  codec::SeriesBatch batch;
  std::string out;
  for (int iter = 0; iter < 2000; ++iter) {
    auto req = g.request();
    std::string raw = cardinal::testing::serialize(req);
    auto st = codec::decodeWriteRequest(raw, {}, batch);
    REQUIRE_MESSAGE(st.ok(), "iteration " << iter << ": " << st.error());
    checkSameMeaning(req, batch);
    for (auto& s : batch.series) s.changed = (g.upTo(1) == 1);
    codec::encodeWriteRequest(batch, out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(out));
    CHECK_MESSAGE(cardinal::testing::sameMessage(back, req), "iteration " << iter);
  }
}

TEST_CASE("differential: mutated bytes are accepted or refused like the generated parser does") {
  Gen g(42);
  codec::SeriesBatch batch;
  codec::Limits limits;
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string raw = cardinal::testing::serialize(g.request());
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
    prometheus::WriteRequest want;
    bool gen_ok = want.ParseFromString(raw);
    auto st = codec::decodeWriteRequest(raw, limits, batch);
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
    checkSameMeaning(want, batch);
  }
  // Both outcomes must actually be exercised for the test to mean anything.
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}
