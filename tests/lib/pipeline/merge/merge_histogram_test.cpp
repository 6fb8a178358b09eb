// Native histograms through the merge engine: MergeState::addHistograms(),
// emission, snapshot, and the upstream encoding (encodeEmitted).
#include <doctest/doctest.h>

#include "codec/decode.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "codec/histogram.h"
#include "codec/snappy_codec.h"
#include "pipeline/merge/emitter.h"
#include "pipeline/merge/merge_state.h"
#include "remote_write_v1.pb.h"

using namespace cardinal;
namespace merge = cardinal::pipeline::merge;
using codec::HistogramBuckets;
using codec::NativeHistogram;
using merge::AddResult;
using merge::Config;
using merge::Kind;
using merge::MergeState;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
using Pairs = std::vector<std::pair<std::string, std::string>>;
using Emitted = std::vector<MergeState::Emitted>;

class LabelSet {
 public:
  LabelSet(std::initializer_list<std::pair<std::string, std::string>> pairs) : pairs_(pairs) {
    std::sort(pairs_.begin(), pairs_.end());
    for (const auto& [n, v] : pairs_) views_.push_back({n, v});
    hash_ = core::hashLabels(views_);
  }
  LabelSet(const LabelSet&) = delete;
  std::span<const core::LabelView> views() const { return views_; }
  uint64_t hash() const { return hash_; }
  const Pairs& pairs() const { return pairs_; }

 private:
  Pairs pairs_;
  std::vector<core::LabelView> views_;
  uint64_t hash_ = 0;
};

// One input histogram, written by the generated classes as an integer
// histogram (spans + deltas), as Prometheus senders do.
struct H {
  int64_t ts = 0;
  HistogramBuckets pos{};
  int32_t schema = 0;
  double zero_count = 0;
  double zero_threshold = 0;
  int32_t hint = codec::kResetUnknown;
  std::vector<double> custom{};
  bool stale = false;
  HistogramBuckets neg{};
};
H stale(int64_t ts) { return H{.ts = ts, .stale = true}; }

double total(const HistogramBuckets& b) {
  double n = 0;
  for (const auto& [i, c] : b) n += c;
  return n;
}

void putSide(const HistogramBuckets& b, google::protobuf::RepeatedPtrField<prometheus::BucketSpan>* spans,
             google::protobuf::RepeatedField<int64_t>* deltas) {
  int64_t prev = 0;
  for (size_t k = 0; k < b.size(); ++k) {
    if (k == 0 || b[k].first != b[k - 1].first + 1) {
      auto* s = spans->Add();
      s->set_offset(k == 0 ? b[k].first : b[k].first - b[k - 1].first - 1);
    }
    spans->Mutable(spans->size() - 1)->set_length(spans->Get(spans->size() - 1).length() + 1);
    deltas->Add(static_cast<int64_t>(b[k].second) - prev);
    prev = static_cast<int64_t>(b[k].second);
  }
}

double sumOf(const H& h) { return h.stale ? merge::staleMarker() : 0.5 * (total(h.pos) + h.zero_count); }

std::string protoOf(const H& h) {
  prometheus::Histogram p;
  p.set_sum(sumOf(h));
  p.set_timestamp(h.ts);
  if (h.stale) {
    p.set_count_int(0);
    return p.SerializeAsString();
  }
  p.set_count_int(static_cast<uint64_t>(total(h.pos) + total(h.neg) + h.zero_count));
  p.set_schema(h.schema);
  p.set_zero_threshold(h.zero_threshold);
  p.set_zero_count_int(static_cast<uint64_t>(h.zero_count));
  putSide(h.pos, p.mutable_positive_spans(), p.mutable_positive_deltas());
  putSide(h.neg, p.mutable_negative_spans(), p.mutable_negative_deltas());
  p.set_reset_hint(static_cast<prometheus::Histogram::ResetHint>(h.hint));
  for (double b : h.custom) p.add_custom_values(b);
  return p.SerializeAsString();
}

struct Engine {
  MergeState st;
  explicit Engine(Config cfg = {}) : st(cfg) {}
  AddResult add(uint64_t input, const LabelSet& out, const std::vector<H>& hs, int64_t now) {
    return addTo(st, input, out, hs, now);
  }
  static AddResult addTo(MergeState& st, uint64_t input, const LabelSet& out, const std::vector<H>& hs, int64_t now) {
    std::vector<std::string> raws;
    for (const auto& h : hs) raws.push_back(protoOf(h));
    std::vector<codec::HistogramView> views;
    for (size_t k = 0; k < hs.size(); ++k) {
      codec::HistogramView v;  // as the request decoder produces it
      REQUIRE(codec::parseHistogramView(raws[k], v));
      REQUIRE(v.timestamp == hs[k].ts);
      views.push_back(v);
    }
    return st.addHistograms(input, out.views(), out.hash(), views, now);
  }
  Emitted emit(int64_t now) {
    Emitted e;
    st.emit(now, e);
    return e;
  }
};

// The decoded histograms emitted for one output, with their timestamps.
std::vector<std::pair<int64_t, NativeHistogram>> histogramsFor(const Emitted& e, const Pairs& labels) {
  std::vector<std::pair<int64_t, NativeHistogram>> out;
  for (const auto& x : e) {
    if (x.labels != labels) continue;
    REQUIRE(x.histogram.has_value());
    auto h = codec::decodeHistogram(*x.histogram);
    REQUIRE_MESSAGE(h.ok(), h.error());
    out.emplace_back(x.sample.timestamp, std::move(h).value());
  }
  return out;
}

NativeHistogram only(const Emitted& e, const Pairs& labels) {
  auto got = histogramsFor(e, labels);
  REQUIRE(got.size() == 1);
  return got[0].second;
}

}  // namespace

TEST_CASE("merge histograms: two inputs with one schema add bucket by bucket") {
  Engine e;
  LabelSet out({{"__name__", "rpc_duration_seconds"}, {"job", "api"}});
  CHECK(e.add(1, out, {{.ts = 1000, .pos = {{1, 3}, {2, 1}}, .schema = 1, .zero_count = 1}}, kT0).accepted == 1);
  CHECK(e.add(2, out, {{.ts = 1500, .pos = {{1, 1}, {3, 2}}, .schema = 1}}, kT0).accepted == 1);
  Emitted em = e.emit(kT0);
  auto got = histogramsFor(em, out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == 1500);
  NativeHistogram h = got[0].second;
  CHECK(h.schema == 1);
  CHECK(h.count == 8);
  CHECK(h.zero_count == 1);
  CHECK(h.sum == 2.5 + 1.5);
  CHECK(h.positive == HistogramBuckets{{1, 4}, {2, 1}, {3, 2}});
  CHECK(h.reset_hint == codec::kResetUnknown);  // an output's first histogram
  CHECK(em[0].sample.value == 8);

  e.add(1, out, {{.ts = 16'000, .pos = {{1, 5}, {2, 1}}, .schema = 1, .zero_count = 1}}, kT0 + 15'000);
  e.add(2, out, {{.ts = 16'000, .pos = {{1, 1}, {3, 4}}, .schema = 1}}, kT0 + 15'000);
  h = only(e.emit(kT0 + 15'000), out.pairs());
  CHECK(h.count == 12);
  CHECK(h.positive == HistogramBuckets{{1, 6}, {2, 1}, {3, 4}});
  CHECK(h.sum == 3.5 + 2.5);
  CHECK(h.reset_hint == codec::kResetNo);
  CHECK(e.emit(kT0 + 16'000).empty());  // no new data, no histogram
}

TEST_CASE("merge histograms: different schemas are reduced to the coarser one, zero buckets widened") {
  Engine e;
  LabelSet out({{"__name__", "rpc_duration_seconds"}});
  // Schema 2: bucket i is (2^((i-1)/4), 2^(i/4)]; -4 is (0.42, 0.5].
  e.add(1, out, {{.ts = 1000, .pos = {{-4, 1}, {1, 1}, {2, 1}, {5, 2}}, .schema = 2}}, kT0);
  // Schema 0: bucket i is (2^(i-1), 2^i]; a zero bucket of [-0.5, 0.5].
  e.add(2, out, {{.ts = 1000, .pos = {{1, 3}}, .schema = 0, .zero_count = 2, .zero_threshold = 0.5}}, kT0);
  NativeHistogram h = only(e.emit(kT0), out.pairs());
  CHECK(h.schema == 0);
  CHECK(h.zero_threshold == 0.5);
  CHECK(h.zero_count == 3);  // input 1's (0.42, 0.5] is inside the zero bucket
  CHECK(h.positive == HistogramBuckets{{1, 5}, {2, 2}});
  CHECK(h.count == 10);

  // Input 1 keeps sending schema 2: its increases are reduced too.
  e.add(1, out, {{.ts = 2000, .pos = {{-4, 1}, {1, 1}, {2, 2}, {5, 2}, {8, 1}}, .schema = 2}}, kT0 + 1000);
  h = only(e.emit(kT0 + 1000), out.pairs());
  CHECK(h.schema == 0);
  CHECK(h.positive == HistogramBuckets{{1, 6}, {2, 3}});
  CHECK(h.count == 12);

  // An input that goes coarser itself is no reset: its last histogram is reduced.
  // (The last one at schema 0: {-1: 1, 1: 3, 2: 3}.)
  e.add(1, out, {{.ts = 3000, .pos = {{-1, 1}, {1, 4}, {2, 4}}, .schema = 0}}, kT0 + 2000);
  h = only(e.emit(kT0 + 2000), out.pairs());
  CHECK(h.positive == HistogramBuckets{{1, 7}, {2, 4}});
  CHECK(h.count == 14);
  CHECK(e.st.stats().resets_detected == 0);
}

TEST_CASE("merge histograms: a reset of one input never decreases the output") {
  Engine e;
  LabelSet out({{"__name__", "jobs_seconds"}});
  e.add(1, out, {{.ts = 1000, .pos = {{0, 10}, {1, 5}}}}, kT0);
  e.add(2, out, {{.ts = 1000, .pos = {{0, 4}}}}, kT0);
  CHECK(only(e.emit(kT0), out.pairs()).count == 19);
  e.add(1, out, {{.ts = 2000, .pos = {{0, 2}}}}, kT0 + 1000);  // restarted: +2, not -13
  e.add(2, out, {{.ts = 2000, .pos = {{0, 5}}}}, kT0 + 1000);  // +1
  NativeHistogram h = only(e.emit(kT0 + 1000), out.pairs());
  CHECK(h.count == 22);
  CHECK(h.positive == HistogramBuckets{{0, 17}, {1, 5}});
  // A reset the sender flags (reset_hint YES) although nothing went down.
  e.add(2, out, {{.ts = 3000, .pos = {{0, 6}}, .hint = codec::kResetYes}}, kT0 + 2000);
  h = only(e.emit(kT0 + 2000), out.pairs());
  CHECK(h.count == 28);
  // A finer schema is a reset too.
  e.add(2, out, {{.ts = 4000, .pos = {{0, 1}}, .schema = 1}}, kT0 + 3000);
  h = only(e.emit(kT0 + 3000), out.pairs());
  CHECK(h.schema == 0);
  CHECK(h.count == 29);
  CHECK(e.st.stats().resets_detected == 3);
}

TEST_CASE("merge histograms: churning inputs add in full; a stale histogram retires an input") {
  Config cfg;
  cfg.stale_after_ms = 30'000;
  Engine e(cfg);
  LabelSet out({{"__name__", "orders_seconds"}, {"job", "shop"}});
  e.add(0, out, {{.ts = kT0, .pos = {{2, 50}}}}, kT0);  // a long-lived input sets the starting level
  CHECK(only(e.emit(kT0), out.pairs()).count == 50);
  for (uint64_t id = 1; id <= 40; ++id) {
    std::vector<H> hs{{.ts = kT0 + 100 + static_cast<int64_t>(id), .pos = {{static_cast<int32_t>(id % 3), 1}}}};
    if (id % 2 == 0) hs.push_back(stale(kT0 + 200 + static_cast<int64_t>(id)));
    AddResult r = e.add(1000 + id, out, hs, kT0 + 1000);
    CHECK(r.accepted == 1);
    CHECK(r.stale_markers == (id % 2 == 0 ? 1u : 0u));
  }
  NativeHistogram h = only(e.emit(kT0 + 1000), out.pairs());
  CHECK(h.count == 90);
  CHECK(h.positive == HistogramBuckets{{0, 13}, {1, 14}, {2, 63}});
  CHECK(e.st.stats().inputs == 21);
  e.add(0, out, {{.ts = kT0 + 31'000, .pos = {{2, 50}}}}, kT0 + 31'000);
  CHECK(only(e.emit(kT0 + 31'000), out.pairs()).count == 90);  // the stale ones keep their part
  CHECK(e.st.stats().tombstones == 40);

  // The last input leaves: a stale histogram, and the state is freed.
  e.add(0, out, {stale(kT0 + 32'000)}, kT0 + 32'000);
  Emitted em = e.emit(kT0 + 32'000);
  REQUIRE(em.size() == 1);
  CHECK(merge::isStaleMarker(em[0].sample.value));
  CHECK(em[0].sample.timestamp == kT0 + 32'000);
  REQUIRE(em[0].histogram.has_value());
  auto marker = codec::decodeHistogram(*em[0].histogram);
  REQUIRE(marker.ok());
  CHECK(std::bit_cast<uint64_t>(marker->sum) == merge::kStaleMarkerBits);
  CHECK(marker->count == 0);
  CHECK(e.st.stats().outputs == 0);
}

TEST_CASE("merge histograms: sender retries and out-of-order histograms are ignored and counted") {
  Engine e;
  LabelSet out({{"__name__", "x_seconds"}});
  std::vector<H> batch{{.ts = 1000, .pos = {{0, 1}}}, {.ts = 2000, .pos = {{0, 3}}}};
  CHECK(e.add(1, out, batch, kT0).accepted == 2);
  AddResult r = e.add(1, out, batch, kT0 + 5000);
  CHECK(r.accepted == 0);
  CHECK(r.duplicates == 1);
  CHECK(r.out_of_order == 1);
  CHECK(only(e.emit(kT0 + 5000), out.pairs()).count == 3);
  e.add(1, out, {{.ts = 2000, .pos = {{0, 3}}}}, kT0 + 6000);
  CHECK(e.emit(kT0 + 6000).empty());
  auto st = e.st.stats();
  CHECK(st.duplicates == 2);
  CHECK(st.out_of_order == 1);
}

TEST_CASE("merge histograms: float vs histogram outputs and custom bounds are never mixed") {
  Engine e;
  LabelSet hist_out({{"__name__", "latency_seconds"}});
  LabelSet float_out({{"__name__", "requests_total"}});
  std::vector<codec::Sample> samples{{1000, 5}};
  e.add(1, hist_out, {{.ts = 1000, .pos = {{0, 2}}}}, kT0);
  CHECK(e.st.add(2, hist_out.views(), hist_out.hash(), Kind::kCounter, {}, samples, kT0).refused == 1);
  e.st.add(3, float_out.views(), float_out.hash(), Kind::kCounter, {}, samples, kT0);
  CHECK(e.add(4, float_out, {{.ts = 1000, .pos = {{0, 2}}}}, kT0).refused == 1);

  LabelSet nhcb({{"__name__", "nhcb_seconds"}});
  const std::vector<double> bounds{0.1, 1, 10};
  e.add(5, nhcb, {{.ts = 1000, .pos = {{0, 1}, {3, 2}}, .schema = -53, .custom = bounds}}, kT0);
  e.add(6, nhcb, {{.ts = 1000, .pos = {{1, 4}}, .schema = -53, .custom = bounds}}, kT0);
  CHECK(e.add(7, nhcb, {{.ts = 1000, .pos = {{1, 4}}, .schema = -53, .custom = {0.2, 2}}}, kT0).refused == 1);
  CHECK(e.add(8, nhcb, {{.ts = 1000, .pos = {{1, 4}}}}, kT0).refused == 1);  // exponential
  CHECK(e.add(1, hist_out, {{.ts = 2000, .pos = {{1, 4}}, .schema = -53, .custom = bounds}}, kT0).refused == 1);

  Emitted em = e.emit(kT0);
  NativeHistogram h = only(em, nhcb.pairs());
  CHECK(h.customBuckets());
  CHECK(h.custom_values == bounds);
  CHECK(h.positive == HistogramBuckets{{0, 1}, {1, 4}, {3, 2}});
  CHECK(only(em, hist_out.pairs()).count == 2);
  CHECK(e.st.stats().refused == 5);
}

TEST_CASE("merge histograms: gauge histograms sum the live inputs' last histograms") {
  Engine e;
  LabelSet out({{"__name__", "queue_wait_seconds"}});
  const int32_t g = codec::kResetGauge;
  e.add(1, out, {{.ts = 1000, .pos = {{0, 5}}, .hint = g}, {.ts = 1500, .pos = {{0, 3}}, .hint = g}}, kT0);
  e.add(2, out, {{.ts = 1200, .pos = {{1, 2}}, .hint = g}}, kT0);
  NativeHistogram h = only(e.emit(kT0), out.pairs());
  CHECK(h.reset_hint == codec::kResetGauge);
  CHECK(h.positive == HistogramBuckets{{0, 3}, {1, 2}});  // a gauge may go down: only the last counts
  e.add(2, out, {stale(2000)}, kT0 + 1000);
  e.add(1, out, {{.ts = 2000, .pos = {{0, 1}}, .hint = g}}, kT0 + 1000);
  h = only(e.emit(kT0 + 1000), out.pairs());
  CHECK(h.positive == HistogramBuckets{{0, 1}});
  CHECK(h.count == 1);
}

namespace {

// A fixed script with histograms: resets, churn, a schema change, a gauge
// histogram, stale markers, a returning input.
void histogramStep(MergeState& st, int i) {
  static const LabelSet counter({{"__name__", "rpc_seconds"}, {"job", "a"}});
  static const LabelSet gauge({{"__name__", "queue_seconds"}});
  const int64_t now = kT0 + i * 10'000;
  const int64_t ts = now - 500;
  auto add = [&](uint64_t in, const LabelSet& out, std::vector<H> hs) { Engine::addTo(st, in, out, hs, now); };
  const double v = static_cast<double>(i);
  add(1, counter, {{.ts = ts, .pos = {{0, v}, {1, 2 * v}}, .schema = i < 8 ? 1 : 0, .zero_count = v}});
  if (i % 7 != 3)
    add(2, counter, {{.ts = ts + 1, .pos = {{2, static_cast<double>(i % 5)}}, .zero_threshold = 0.25}});  // resets
  else
    add(2, counter, {stale(ts + 2)});  // and returns
  add(100 + static_cast<uint64_t>(i), counter, {{.ts = ts, .pos = {{-1, 1}}}});  // churn
  for (uint64_t k = 10; k < 13; ++k)
    if ((static_cast<uint64_t>(i) + k) % 3 != 0)
      add(k, gauge, {{.ts = ts + static_cast<int64_t>(k), .pos = {{static_cast<int32_t>(k % 2), v}}, .hint = codec::kResetGauge}});
  if (i % 4 == 1) add(1, counter, {{.ts = ts, .pos = {{0, 1}}}});  // a retry of this very step
}

using Row = std::tuple<Pairs, int64_t, std::string>;
std::vector<Row> rows(const Emitted& e) {
  std::vector<Row> r;
  for (const auto& x : e) r.emplace_back(x.labels, x.sample.timestamp, x.histogram.value_or("float"));
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace

TEST_CASE("merge histograms: snapshot and restore continue as if never restarted") {
  Config cfg;
  cfg.stale_after_ms = 25'000;
  for (int cut : {3, 8, 11}) {
    CAPTURE(cut);
    MergeState ref(cfg);
    auto restarted = std::make_unique<MergeState>(cfg);
    for (int i = 0; i < 16; ++i) {
      histogramStep(ref, i);
      histogramStep(*restarted, i);
      if (i == cut) {
        std::string snap = restarted->snapshot();
        restarted = std::make_unique<MergeState>(cfg);
        core::Status s = restarted->restore(snap);
        REQUIRE_MESSAGE(s.ok(), s.error());
        CHECK(ref.stats().tombstones == restarted->stats().tombstones);
        CHECK(ref.stats().inputs == restarted->stats().inputs);
      }
      if (i % 2 == 0) {
        Emitted ea, eb;
        ref.emit(kT0 + i * 10'000 + 1, ea);
        restarted->emit(kT0 + i * 10'000 + 1, eb);
        CHECK(!ea.empty());
        CHECK(rows(ea) == rows(eb));
      }
    }
  }
}

TEST_CASE("merge histograms: a version 1 snapshot (no histograms) is still read") {
  MergeState st({});
  LabelSet out({{"__name__", "x_total"}});
  std::vector<codec::Sample> s{{1000, 10}};
  st.add(1, out.views(), out.hash(), Kind::kCounter, {}, s, kT0);
  std::string snap = st.snapshot();
  // Without histograms, version 2 is version 1 byte for byte but for the
  // version and the checksum.
  const uint32_t v1 = 1;
  std::memcpy(snap.data() + 8, &v1, 4);
  snap.resize(snap.size() - 4);
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : snap) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  crc ^= 0xFFFFFFFFu;
  snap.append(reinterpret_cast<const char*>(&crc), 4);
  MergeState fresh({});
  core::Status r = fresh.restore(snap);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(fresh.stats().inputs == 1);
}

TEST_CASE("merge histograms: emitted histograms encode as TimeSeries.histograms the generated classes read") {
  Engine e;
  LabelSet out({{"__name__", "rpc_duration_seconds"}, {"job", "api"}});
  LabelSet floats({{"__name__", "requests_total"}, {"job", "api"}});
  e.add(1, out, {{.ts = 1000, .pos = {{-2, 1}, {-1, 2}, {3, 4}}, .schema = 3, .zero_count = 1,
                  .zero_threshold = std::ldexp(1.0, -128), .neg = {{0, 2}}}},
        kT0);
  e.add(2, out, {{.ts = 1200, .pos = {{3, 1}, {4, 5}}, .schema = 3, .zero_threshold = std::ldexp(1.0, -128)}}, kT0);
  std::vector<codec::Sample> s{{1100, 7}};
  e.st.add(3, floats.views(), floats.hash(), Kind::kCounter, {}, s, kT0);
  Emitted em = e.emit(kT0);
  REQUIRE(em.size() == 2);

  auto bodies = merge::encodeEmitted(em, 1);
  REQUIRE(bodies.size() == 2);
  int histograms = 0, samples = 0;
  for (const auto& body : bodies) {
    std::string plain;
    REQUIRE(codec::decompress(*body, {}, plain).ok());
    prometheus::WriteRequest req;
    REQUIRE(req.ParseFromString(plain));
    REQUIRE(req.timeseries_size() == 1);
    const auto& ts = req.timeseries(0);
    Pairs labels;
    for (const auto& l : ts.labels()) labels.emplace_back(l.name(), l.value());
    if (ts.histograms_size() == 0) {
      ++samples;
      CHECK(labels == floats.pairs());
      REQUIRE(ts.samples_size() == 1);
      CHECK(ts.samples(0).value() == 7);
      CHECK(ts.samples(0).timestamp() == 1100);
      continue;
    }
    ++histograms;
    CHECK(labels == out.pairs());
    CHECK(ts.samples_size() == 0);
    REQUIRE(ts.histograms_size() == 1);
    const prometheus::Histogram& h = ts.histograms(0);
    CHECK(h.timestamp() == 1200);
    CHECK(h.count_case() == prometheus::Histogram::kCountInt);  // integer inputs: an integer histogram
    CHECK(h.count_int() == 16);
    CHECK(h.zero_count_int() == 1);
    CHECK(h.schema() == 3);
    CHECK(h.zero_threshold() == std::ldexp(1.0, -128));
    CHECK(h.sum() == 4 + 3);
    CHECK(h.reset_hint() == prometheus::Histogram::UNKNOWN);
    // Positive buckets -2,-1 | 3,4 with counts 1 2 5 5: spans {-2,2} {4,2}, deltas 1 1 3 0.
    REQUIRE(h.positive_spans_size() == 2);
    CHECK(h.positive_spans(0).offset() == -2);
    CHECK(h.positive_spans(0).length() == 2);
    CHECK(h.positive_spans(1).offset() == 3);
    CHECK(h.positive_spans(1).length() == 2);
    CHECK(std::vector<int64_t>(h.positive_deltas().begin(), h.positive_deltas().end()) ==
          std::vector<int64_t>{1, 1, 3, 0});
    REQUIRE(h.negative_spans_size() == 1);
    CHECK(h.negative_spans(0).offset() == 0);
    CHECK(std::vector<int64_t>(h.negative_deltas().begin(), h.negative_deltas().end()) == std::vector<int64_t>{2});
  }
  CHECK(histograms == 1);
  CHECK(samples == 1);
}

TEST_CASE("merge histograms property: the output count is the sum of the inputs' increases, and never resets") {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    auto pick = [&](uint64_t n) { return static_cast<int64_t>(rng() % n); };
    Config cfg;
    cfg.stale_after_ms = 60'000;
    auto st = std::make_unique<MergeState>(cfg);
    LabelSet out({{"__name__", "prop_seconds"}});
    struct In {
      uint64_t id;
      H h;  // the last histogram sent
      double expected = 0;
      bool started = false;
    };
    std::vector<In> ins;
    for (uint64_t i = 0; i < 3 + static_cast<uint64_t>(pick(10)); ++i) {
      In in{.id = 100 + i, .h = H{.ts = kT0, .schema = static_cast<int32_t>(pick(4))}};
      ins.push_back(in);
    }
    double churn = 0;
    std::vector<NativeHistogram> seen;
    auto emitAt = [&](int64_t now) {
      Emitted em;
      st->emit(now, em);
      for (const auto& x : em)
        if (!merge::isStaleMarker(x.sample.value)) seen.push_back(codec::decodeHistogram(*x.histogram).value());
    };
    int64_t now = kT0;
    const int restart_at = static_cast<int>(pick(120));
    for (int step = 0; step < 120; ++step) {
      now += 1000;
      for (auto& in : ins) {
        if (pick(10) < 3) continue;
        H next = in.h;
        next.ts += 1 + pick(900);
        next.hint = codec::kResetUnknown;
        if (in.started && total(in.h.pos) >= 2 && pick(20) == 0) {  // a reset: fewer observations
          next.pos = {{static_cast<int32_t>(pick(8)) - 2, 1}};
          in.expected += 1;
        } else {
          if (in.started && next.schema > -2 && pick(15) == 0) {  // coarser, no reset
            NativeHistogram n;
            n.schema = next.schema;
            n.positive = next.pos;
            codec::reduceResolution(n, next.schema - 1);
            next.schema = n.schema;
            next.pos = n.positive;
          }
          const double before = total(next.pos);
          for (int k = 0, n = static_cast<int>(pick(4)); k < n; ++k) {
            NativeHistogram one;
            one.schema = next.schema;
            one.positive = {{static_cast<int32_t>(pick(10)) - 3, static_cast<double>(1 + pick(3))}};
            NativeHistogram acc;
            acc.schema = next.schema;
            acc.positive = next.pos;
            codec::addHistogram(acc, one);
            next.pos = acc.positive;
          }
          in.expected += in.started ? total(next.pos) - before : total(next.pos);
        }
        in.started = true;
        in.h = next;
        Engine::addTo(*st, in.id, out, {next}, now);
        if (pick(10) == 0) CHECK(Engine::addTo(*st, in.id, out, {next}, now).duplicates == 1);  // a retry
      }
      if (pick(4) == 0) {  // a churning id: appears once
        const double n = static_cast<double>(1 + pick(3));
        Engine::addTo(*st, 10'000 + static_cast<uint64_t>(step), out,
                      {{.ts = now, .pos = {{static_cast<int32_t>(pick(5)), n}}, .schema = static_cast<int32_t>(pick(3))}},
                      now);
        churn += n;
      }
      if (pick(3) == 0) emitAt(now + 1);
      if (step == restart_at) {
        std::string snap = st->snapshot();
        st = std::make_unique<MergeState>(cfg);
        REQUIRE(st->restore(snap).ok());
      }
    }
    emitAt(now + 1);
    REQUIRE(!seen.empty());
    double expected = churn;
    for (const auto& in : ins) expected += in.expected;
    CHECK(seen.back().count == expected);
    double buckets = 0;
    for (const auto& [i, c] : seen.back().positive) buckets += c;
    CHECK(buckets + seen.back().zero_count == expected);
    for (size_t k = 1; k < seen.size(); ++k) CHECK(codec::counterIncrease(seen[k], seen[k - 1]).has_value());
  }
}
