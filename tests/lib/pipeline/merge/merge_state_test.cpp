#include "pipeline/merge/merge_state.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

using namespace cardinal;
namespace merge = cardinal::pipeline::merge;
using codec::Sample;
using merge::AddResult;
using merge::Config;
using merge::GaugeFn;
using merge::Kind;
using merge::MergeState;
using merge::Options;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // the injected now_ms starts here
using Pairs = std::vector<std::pair<std::string, std::string>>;
using Emitted = std::vector<MergeState::Emitted>;

// An output label set: owned strings, their views, and core::hashLabels.
class LabelSet {
 public:
  LabelSet(std::initializer_list<std::pair<std::string, std::string>> pairs) : LabelSet(Pairs(pairs)) {}
  explicit LabelSet(Pairs pairs) : pairs_(std::move(pairs)) {
    std::sort(pairs_.begin(), pairs_.end());
    for (const auto& [n, v] : pairs_) views_.push_back({n, v});
    hash_ = core::hashLabels(views_);
  }
  LabelSet(const LabelSet&) = delete;
  LabelSet& operator=(const LabelSet&) = delete;
  std::span<const core::LabelView> views() const { return views_; }
  uint64_t hash() const { return hash_; }
  const Pairs& pairs() const { return pairs_; }

 private:
  Pairs pairs_;
  std::vector<core::LabelView> views_;
  uint64_t hash_ = 0;
};

Pairs withLabel(Pairs p, std::string name, std::string value) {
  p.emplace_back(std::move(name), std::move(value));
  std::sort(p.begin(), p.end());
  return p;
}

const double kStale = merge::staleMarker();
bool isStale(const Sample& s) { return merge::isStaleMarker(s.value); }

struct Engine {
  MergeState st;
  explicit Engine(Config cfg = {}) : st(cfg) {}
  AddResult add(uint64_t input, const LabelSet& out, std::vector<Sample> samples, int64_t now,
                Kind kind = Kind::kCounter, const Options& opts = {}) {
    return st.add(input, out.views(), out.hash(), kind, opts, samples, now);
  }
  Emitted emit(int64_t now) {
    Emitted e;
    st.emit(now, e);
    return e;
  }
};

// The samples emitted for one output series, in emission order.
std::vector<Sample> samplesFor(const Emitted& e, const Pairs& labels) {
  std::vector<Sample> out;
  for (const auto& x : e)
    if (x.labels == labels) out.push_back(x.sample);
  return out;
}

// One emission as comparable rows: (labels, timestamp, value bits), sorted.
using Row = std::tuple<Pairs, int64_t, uint64_t>;
std::vector<Row> rows(const Emitted& e) {
  std::vector<Row> r;
  for (const auto& x : e) r.emplace_back(x.labels, x.sample.timestamp, std::bit_cast<uint64_t>(x.sample.value));
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace

TEST_CASE("merge counters: two inputs merge into the sum of their contributions") {
  Engine e;
  LabelSet out({{"__name__", "http_requests_total"}, {"job", "api"}});
  CHECK(e.add(1, out, {{1000, 10}, {2000, 15}}, kT0).accepted == 2);
  CHECK(e.add(2, out, {{1500, 5}}, kT0).accepted == 1);
  auto got = samplesFor(e.emit(kT0 + 10), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == 20);  // starting level: both inputs' values
  CHECK(got[0].timestamp == 2000);

  e.add(1, out, {{3000, 18}}, kT0 + 15'000);
  e.add(2, out, {{3000, 9}}, kT0 + 15'000);
  got = samplesFor(e.emit(kT0 + 15'010), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == 27);  // 20 + 3 + 4
  CHECK(got[0].timestamp == 3000);
  auto st = e.st.stats();
  CHECK(st.outputs == 1);
  CHECK(st.inputs == 2);
}

TEST_CASE("merge counters: a reset of one input never decreases the output") {
  Engine e;
  LabelSet out({{"__name__", "jobs_done_total"}});
  e.add(1, out, {{1000, 100}}, kT0);
  e.add(2, out, {{1000, 50}}, kT0);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 150);
  e.add(1, out, {{2000, 110}}, kT0 + 1000);
  e.add(2, out, {{2000, 2}}, kT0 + 1000);  // input 2 restarted: its increase is 2, not -48
  CHECK(samplesFor(e.emit(kT0 + 1000), out.pairs()).at(0).value == 162);
  e.add(2, out, {{3000, 0}, {4000, 4}}, kT0 + 2000);  // reset to 0, then +4
  CHECK(samplesFor(e.emit(kT0 + 2000), out.pairs()).at(0).value == 166);
  CHECK(e.st.stats().resets_detected == 2);
}

TEST_CASE("merge counters: 100 churning ids each appearing once with 1 add exactly 100") {
  Config cfg;
  cfg.stale_after_ms = 30'000;
  Engine e(cfg);
  LabelSet out({{"__name__", "orders_total"}, {"job", "shop"}});
  e.add(0, out, {{kT0, 50}}, kT0);  // a long-lived input sets the starting level
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 50);
  for (uint64_t id = 1; id <= 100; ++id) {
    std::vector<Sample> samples{{kT0 + 100 + static_cast<int64_t>(id), 1}};
    if (id % 2 == 0) samples.push_back({kT0 + 200 + static_cast<int64_t>(id), kStale});  // half end with a marker
    e.add(1000 + id, out, samples, kT0 + 1000);
  }
  CHECK(samplesFor(e.emit(kT0 + 1000), out.pairs()).at(0).value == 150);
  CHECK(e.st.stats().inputs == 51);
  // The other half go stale by time; their contributions stay.
  e.add(0, out, {{kT0 + 31'000, 50}}, kT0 + 31'000);
  auto got = samplesFor(e.emit(kT0 + 31'000), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == 150);
  auto st = e.st.stats();
  CHECK(st.inputs == 1);
  CHECK(st.tombstones == 100);
}

TEST_CASE("merge counters: an incoming stale marker retires the input and keeps its contribution") {
  Engine e;
  LabelSet out({{"__name__", "bytes_total"}});
  e.add(1, out, {{1000, 10}}, kT0);
  e.add(2, out, {{1000, 5}}, kT0);
  e.emit(kT0);
  AddResult r = e.add(2, out, {{2000, kStale}}, kT0 + 1000);
  CHECK(r.stale_markers == 1);
  CHECK(r.accepted == 0);  // a marker is never a value
  auto st = e.st.stats();
  CHECK(st.inputs == 1);
  CHECK(st.tombstones == 1);
  e.add(1, out, {{3000, 12}}, kT0 + 2000);
  CHECK(samplesFor(e.emit(kT0 + 2000), out.pairs()).at(0).value == 17);  // 12 + the retired 5
}

TEST_CASE("merge counters: an input returning after a retire continues from its tombstone") {
  Config cfg;
  cfg.tombstone_ms = 10'000;
  Engine e(cfg);
  LabelSet out({{"__name__", "bytes_total"}});
  e.add(1, out, {{1000, 10}}, kT0);
  e.add(2, out, {{1000, 5}, {2000, kStale}}, kT0);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 15);

  SUBCASE("within the tombstone time only the increase since the tombstone counts") {
    e.add(2, out, {{4000, 8}}, kT0 + 1000);
    CHECK(samplesFor(e.emit(kT0 + 1000), out.pairs()).at(0).value == 18);  // +3, not +8
    CHECK(e.st.stats().tombstones == 0);
    e.add(2, out, {{5000, kStale}}, kT0 + 2000);
    e.add(2, out, {{6000, 2}}, kT0 + 3000);  // reset while it was gone: +2
    CHECK(samplesFor(e.emit(kT0 + 3000), out.pairs()).at(0).value == 20);
    AddResult r = e.add(2, out, {{4000, 8}}, kT0 + 3000);  // a late retry of an old request
    CHECK(r.out_of_order == 1);
    CHECK(samplesFor(e.emit(kT0 + 3000), out.pairs()).empty());
  }
  SUBCASE("after the tombstone expired the input counts as new, in full (documented)") {
    e.add(1, out, {{9000, 10}}, kT0 + 9000);
    e.emit(kT0 + 10'000);  // tombstone of input 2 expires
    CHECK(e.st.stats().tombstones == 0);
    e.add(2, out, {{12'000, 8}}, kT0 + 11'000);
    CHECK(samplesFor(e.emit(kT0 + 11'000), out.pairs()).at(0).value == 23);
  }
}

TEST_CASE("merge: sender retries are ignored and counted as duplicates") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  std::vector<Sample> batch{{1000, 10}, {2000, 20}};
  CHECK(e.add(1, out, batch, kT0).accepted == 2);
  AddResult r = e.add(1, out, batch, kT0 + 5000);
  CHECK(r.accepted == 0);
  CHECK(r.duplicates == 1);     // 2000 == last
  CHECK(r.out_of_order == 1);   // 1000 < last
  auto got = samplesFor(e.emit(kT0 + 5000), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == 20);
  e.add(1, out, {{2000, 20}}, kT0 + 6000);
  CHECK(e.emit(kT0 + 6000).empty());  // a retry alone is no new data
  CHECK(e.st.stats().duplicates == 2);
}

TEST_CASE("merge: out-of-order samples are ignored and counted") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{2000, 10}}, kT0);
  AddResult r = e.add(1, out, {{1000, 5}, {1500, 10}}, kT0);
  CHECK(r.out_of_order == 2);
  r = e.add(1, out, {{3000, 12}, {2500, 99}, {3500, 13}}, kT0);
  CHECK(r.accepted == 2);
  CHECK(r.out_of_order == 1);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 13);
  CHECK(e.st.stats().out_of_order == 3);
}

TEST_CASE("merge: addMany returns the sum of its items' results and absorbs as add() one by one") {
  // Items of every outcome over outputs in several shards, two items of one
  // input among them (they keep their order): accepted samples, a retry, an
  // out-of-order one, a NaN, a stale marker, and at the input cap an input
  // that takes a tombstone's place and one that finds none left.
  Config cfg;
  cfg.max_inputs = 6;
  std::vector<std::unique_ptr<LabelSet>> outs;
  for (int i = 0; i < 4; ++i)
    outs.push_back(std::make_unique<LabelSet>(Pairs{{"__name__", "x_total"}, {"k", std::to_string(i)}}));
  struct Item {
    uint64_t input;
    size_t out;
    std::vector<Sample> samples;
  };
  auto many = [&](MergeState& st, const std::vector<Item>& items, int64_t now) {
    const Options opts;
    std::vector<MergeState::AddItem> v;
    for (const auto& it : items)
      v.push_back({it.input, outs[it.out]->views(), outs[it.out]->hash(), Kind::kCounter, &opts, it.samples});
    return st.addMany(v, now);
  };
  auto oneByOne = [&](Engine& e, const std::vector<Item>& items, int64_t now) {
    AddResult sum;
    for (const auto& it : items) sum += e.add(it.input, *outs[it.out], it.samples, now);
    return sum;
  };
  Engine a(cfg), b(cfg);
  const std::vector<Item> first{{1, 0, {{1000, 10}}}, {2, 1, {{1000, 5}}}, {3, 2, {{1000, 1}}},
                                {4, 3, {{1000, 2}}}, {5, 0, {{1000, 3}}}};
  CHECK(many(a.st, first, kT0).accepted == 5);
  CHECK(oneByOne(b, first, kT0).accepted == 5);
  const std::vector<Item> second{
      {1, 0, {{2000, 12}, {3000, 15}}},  // two accepted
      {2, 1, {{1000, 5}}},               // a retry: duplicate
      {3, 2, {{500, 9}}},                // out of order
      {4, 3, {{2000, std::nan("")}}},    // not a value
      {5, 0, {{2000, kStale}}},          // retires input 5: a tombstone
      {6, 1, {{2000, 4}}},               // the sixth input entry: at the cap, taken
      {1, 0, {{4000, 16}}},              // input 1 again, after its first item
  };
  const AddResult ra = many(a.st, second, kT0 + 1000), rb = oneByOne(b, second, kT0 + 1000);
  for (const AddResult& r : {ra, rb}) {
    CHECK(r.accepted == 4);  // 12, 15, 4, 16
    CHECK(r.duplicates == 1);
    CHECK(r.out_of_order == 1);
    CHECK(r.nan == 1);
    CHECK(r.stale_markers == 1);
    CHECK(r.over_cap == 0);
    CHECK(r.refused == 0);
  }
  CHECK(rows(a.emit(kT0 + 1000)) == rows(b.emit(kT0 + 1000)));
  // Two new inputs at the cap with one tombstone: one of them takes its place
  // (which one depends on the order of their shards), the other is refused.
  const AddResult r3 = many(a.st, {{7, 2, {{5000, 8}}}, {8, 3, {{5000, 1}}}, {1, 0, {{5000, 20}}}}, kT0 + 2000);
  CHECK(r3.accepted == 2);
  CHECK(r3.over_cap == 1);
  // Input 1 contributed 10 + 2 + 3 + 1 + 4, input 5 its 3 before it retired.
  CHECK(samplesFor(a.emit(kT0 + 2000), outs[0]->pairs()).at(0).value == 23);
}

TEST_CASE("merge counters: NaN and infinite values are skipped and counted") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{1000, 10}}, kT0);
  AddResult r = e.add(1, out, {{2000, std::nan("")}, {3000, INFINITY}, {4000, 12}}, kT0);
  CHECK(r.nan == 2);
  CHECK(r.accepted == 1);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 12);
  CHECK(e.st.stats().nan == 2);
}

TEST_CASE("merge gauges: each function over the live inputs' last values") {
  LabelSet out({{"__name__", "queue_depth"}, {"job", "q"}});
  struct Case {
    GaugeFn fn;
    double want;
  };
  // Values 2 @1000, 8 @1100, 5 @1200 (input 3 holds the newest sample).
  for (auto [fn, want] : {Case{GaugeFn::kSum, 15}, Case{GaugeFn::kAvg, 5}, Case{GaugeFn::kMin, 2},
                          Case{GaugeFn::kMax, 8}, Case{GaugeFn::kCount, 3}, Case{GaugeFn::kLast, 5}}) {
    CAPTURE(static_cast<int>(fn));
    Engine e;
    Options opts{.gauge = fn, .quantiles = {}};
    e.add(1, out, {{900, 100}, {1000, 2}}, kT0, Kind::kGauge, opts);  // only the last value counts
    e.add(2, out, {{1100, 8}}, kT0, Kind::kGauge, opts);
    e.add(3, out, {{1200, 5}}, kT0, Kind::kGauge, opts);
    auto got = samplesFor(e.emit(kT0), out.pairs());
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == want);
    CHECK(got[0].timestamp == 1200);
  }
}

TEST_CASE("merge gauges: NaN values and retired inputs are left out; a gauge may go down") {
  Engine e;
  LabelSet out({{"__name__", "temperature"}});
  Options sum;
  e.add(1, out, {{1000, 20}}, kT0, Kind::kGauge, sum);
  e.add(2, out, {{1000, 30}}, kT0, Kind::kGauge, sum);
  e.add(3, out, {{1000, 40}}, kT0, Kind::kGauge, sum);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 90);
  e.add(3, out, {{2000, kStale}}, kT0 + 1000, Kind::kGauge, sum);
  AddResult r = e.add(2, out, {{2000, std::nan("")}}, kT0 + 1000, Kind::kGauge, sum);
  CHECK(r.nan == 1);
  e.add(1, out, {{2000, 15}}, kT0 + 1000, Kind::kGauge, sum);
  CHECK(samplesFor(e.emit(kT0 + 1000), out.pairs()).at(0).value == 15);
  // With no live input holding a number there is nothing to say.
  e.add(1, out, {{3000, std::nan("")}}, kT0 + 2000, Kind::kGauge, sum);
  CHECK(e.emit(kT0 + 2000).empty());
}

TEST_CASE("merge gauges: quantile outputs carry the output labels plus quantile") {
  Engine e;
  LabelSet out({{"__name__", "queue_depth"}, {"job", "q"}, {"zone", "a"}});
  Options opts{.gauge = GaugeFn::kSum, .quantiles = {0.5, 0.9, 0}};
  for (uint64_t i = 1; i <= 5; ++i)
    e.add(i, out, {{1000 + static_cast<int64_t>(i), static_cast<double>(6 - i)}}, kT0, Kind::kGauge, opts);
  Emitted em = e.emit(kT0);
  CHECK(em.size() == 4);
  CHECK(samplesFor(em, out.pairs()).at(0).value == 15);
  auto q50 = samplesFor(em, withLabel(out.pairs(), "quantile", "0.5"));
  auto q90 = samplesFor(em, withLabel(out.pairs(), "quantile", "0.9"));
  auto q0 = samplesFor(em, withLabel(out.pairs(), "quantile", "0"));
  REQUIRE(q50.size() == 1);
  REQUIRE(q90.size() == 1);
  REQUIRE(q0.size() == 1);
  CHECK(q50[0].value == 3);
  CHECK(q90[0].value == doctest::Approx(4.6));  // PromQL quantile(): rank 3.6 between 4 and 5
  CHECK(q0[0].value == 1);
  CHECK(q90[0].timestamp == 1005);
  for (const auto& x : em) {  // labels stay sorted: quantile lands between job and zone
    bool sorted = std::is_sorted(x.labels.begin(), x.labels.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
    CHECK(sorted);
  }
  // All inputs gone: every output series gets its stale marker.
  for (uint64_t i = 1; i <= 5; ++i) e.add(i, out, {{2000, kStale}}, kT0 + 1000, Kind::kGauge, opts);
  em = e.emit(kT0 + 1000);
  CHECK(em.size() == 4);
  for (const auto& x : em) CHECK(isStale(x.sample));
}

TEST_CASE("merge gauges: no quantile outputs when the output labels already hold quantile") {
  Engine e;
  LabelSet out({{"__name__", "rpc_latency_seconds"}, {"quantile", "0.99"}});
  Options opts{.gauge = GaugeFn::kMax, .quantiles = {0.5}};
  e.add(1, out, {{1000, 1}}, kT0, Kind::kGauge, opts);
  e.add(2, out, {{1000, 3}}, kT0, Kind::kGauge, opts);
  Emitted em = e.emit(kT0);
  REQUIRE(em.size() == 1);
  CHECK(em[0].sample.value == 3);
}

TEST_CASE("merge: output timestamps strictly increase; no new data, no sample") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{5000, 10}}, kT0);
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).timestamp == 5000);
  e.add(2, out, {{4000, 1}}, kT0 + 1000);  // a lagging sender
  auto got = samplesFor(e.emit(kT0 + 1000), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(got[0].timestamp == 5001);
  CHECK(got[0].value == 11);
  e.add(1, out, {{5001, 12}}, kT0 + 2000);
  CHECK(samplesFor(e.emit(kT0 + 2000), out.pairs()).at(0).timestamp == 5002);
  e.add(1, out, {{9000, 13}}, kT0 + 3000);
  CHECK(samplesFor(e.emit(kT0 + 3000), out.pairs()).at(0).timestamp == 9000);
  CHECK(e.emit(kT0 + 4000).empty());
}

TEST_CASE("merge: an output whose inputs are all gone emits a stale marker and is freed") {
  Config cfg;
  cfg.stale_after_ms = 60'000;
  Engine e(cfg);
  LabelSet out({{"__name__", "x_total"}, {"job", "a"}});

  SUBCASE("by incoming stale markers") {
    e.add(1, out, {{1000, 10}}, kT0);
    e.add(2, out, {{1000, 5}}, kT0);
    e.emit(kT0);
    e.add(1, out, {{2000, kStale}}, kT0 + 1000);
    CHECK(e.emit(kT0 + 1000).empty());  // input 2 still live; a retire alone emits nothing
    e.add(2, out, {{2500, kStale}}, kT0 + 2000);
    auto got = samplesFor(e.emit(kT0 + 2000), out.pairs());
    REQUIRE(got.size() == 1);
    CHECK(isStale(got[0]));
    CHECK(got[0].timestamp == 2500);
    auto st = e.st.stats();
    CHECK(st.outputs == 0);
    CHECK(st.inputs == 0);
    CHECK(st.stale_markers_emitted == 1);
    e.emit(kT0 + 3000);
    CHECK(e.st.stats().tombstones == 0);  // the freed output's tombstones are swept
    // Coming back makes a new output with a new starting level.
    e.add(1, out, {{4000, 12}}, kT0 + 4000);
    got = samplesFor(e.emit(kT0 + 4000), out.pairs());
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == 12);
  }
  SUBCASE("by time") {
    e.add(1, out, {{1000, 10}}, kT0);
    e.emit(kT0);
    CHECK(e.emit(kT0 + 59'999).empty());
    auto got = samplesFor(e.emit(kT0 + 60'000), out.pairs());
    REQUIRE(got.size() == 1);
    CHECK(isStale(got[0]));
    CHECK(got[0].timestamp == 1001);  // after the last emitted sample
    CHECK(e.st.stats().outputs == 0);
  }
  SUBCASE("last data and the marker in one request: the data first, then the marker") {
    e.add(1, out, {{1000, 10}, {2000, 11}, {3000, kStale}}, kT0);
    auto got = samplesFor(e.emit(kT0), out.pairs());
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == 11);
    CHECK(got[0].timestamp == 2000);
    CHECK(isStale(got[1]));
    CHECK(got[1].timestamp == 3000);
  }
  SUBCASE("a stale marker for an unknown input creates nothing") {
    AddResult r = e.add(9, out, {{1000, kStale}}, kT0);
    CHECK(r.stale_markers == 1);
    CHECK(e.st.stats().outputs == 0);
    CHECK(e.emit(kT0).empty());
  }
}

TEST_CASE("merge caps: new inputs and outputs are refused and counted, never double counted") {
  LabelSet out({{"__name__", "x_total"}});
  SUBCASE("inputs") {
    Config cfg;
    cfg.max_inputs = 2;
    Engine e(cfg);
    e.add(1, out, {{1000, 10}}, kT0);
    e.add(2, out, {{1000, 5}}, kT0);
    AddResult r = e.add(3, out, {{1000, 7}, {2000, 8}}, kT0);
    CHECK(r.over_cap == 2);
    CHECK(r.accepted == 0);
    CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 15);
    // Live inputs are never evicted: both keep counting.
    e.add(1, out, {{2000, 11}}, kT0 + 1000);
    e.add(2, out, {{2000, 6}}, kT0 + 1000);
    CHECK(e.add(3, out, {{3000, 9}}, kT0 + 1000).over_cap == 1);
    CHECK(samplesFor(e.emit(kT0 + 1000), out.pairs()).at(0).value == 17);
    // A tombstone makes room: the oldest one is evicted for the new input.
    e.add(2, out, {{3000, kStale}}, kT0 + 2000);
    r = e.add(3, out, {{4000, 9}}, kT0 + 2000);
    CHECK(r.accepted == 1);
    CHECK(samplesFor(e.emit(kT0 + 2000), out.pairs()).at(0).value == 26);  // 17 + 9 in full
    auto st = e.st.stats();
    CHECK(st.tombstones_evicted == 1);
    CHECK(st.over_cap == 3);
    CHECK(st.inputs + st.tombstones <= 2);
  }
  SUBCASE("a tombstone under an output in another shard makes room too") {
    Config cfg;
    cfg.max_inputs = 1;
    Engine e(cfg);
    // Shards are picked by the top 4 bits of mix64(output hash); pick an
    // output in another shard so the cross-shard eviction path runs.
    auto shard = [](const LabelSet& l) { return core::mix64(l.hash()) >> 60; };
    std::unique_ptr<LabelSet> other;
    for (int i = 0; !other || shard(*other) == shard(out); ++i)
      other = std::make_unique<LabelSet>(Pairs{{"__name__", "y_total"}, {"i", std::to_string(i)}});
    e.add(1, out, {{1000, 10}, {2000, kStale}}, kT0);
    AddResult r = e.add(2, *other, {{1000, 5}}, kT0);
    CHECK(r.accepted == 1);
    CHECK(e.st.stats().tombstones_evicted == 1);
    CHECK(e.add(3, *other, {{1000, 5}}, kT0).over_cap == 1);  // input 2 is live: never evicted
  }
  SUBCASE("outputs") {
    Config cfg;
    cfg.max_outputs = 1;
    Engine e(cfg);
    LabelSet other({{"__name__", "y_total"}});
    e.add(1, out, {{1000, 10}}, kT0);
    CHECK(e.add(2, other, {{1000, 5}}, kT0).over_cap == 1);
    Emitted em = e.emit(kT0);
    REQUIRE(em.size() == 1);
    CHECK(em[0].labels == out.pairs());
    CHECK(e.st.stats().outputs == 1);
  }
}

TEST_CASE("merge: the first add fixes an output's kind; a hash collision is refused") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{1000, 10}}, kT0, Kind::kCounter);
  e.add(2, out, {{1000, 5}}, kT0, Kind::kGauge);
  e.add(2, out, {{2000, 3}}, kT0, Kind::kGauge);  // counter arithmetic: a reset, +3
  CHECK(samplesFor(e.emit(kT0), out.pairs()).at(0).value == 18);

  LabelSet other({{"__name__", "y_total"}});
  std::vector<Sample> s{{3000, 1}};
  AddResult r = e.st.add(3, other.views(), out.hash(), Kind::kCounter, {}, s, kT0);
  CHECK(r.over_cap == 1);
  CHECK(e.st.stats().hash_collisions == 1);
}

namespace {

// A fixed script over a few outputs: counters with resets, churn, a gauge
// with quantiles, stale markers, returning inputs.
void scriptStep(MergeState& st, int i) {
  static const LabelSet counter({{"__name__", "orders_total"}, {"job", "shop"}});
  static const LabelSet bucket({{"__name__", "latency_bucket"}, {"le", "0.5"}});
  static const LabelSet gauge({{"__name__", "queue_depth"}});
  const Options gauge_opts{.gauge = GaugeFn::kAvg, .quantiles = {0.5, 0.99}};
  const int64_t now = kT0 + i * 10'000;
  const int64_t ts = kT0 + i * 10'000 - 500;
  auto add = [&](uint64_t in, const LabelSet& out, std::vector<Sample> s, Kind k, const Options& o = {}) {
    st.add(in, out.views(), out.hash(), k, o, s, now);
  };
  add(1, counter, {{ts, static_cast<double>(i * 3)}}, Kind::kCounter);
  if (i % 7 != 3) add(2, counter, {{ts + 1, static_cast<double>((i % 5) * 2)}}, Kind::kCounter);  // resets
  if (i % 7 == 3) add(2, counter, {{ts + 2, kStale}}, Kind::kCounter);                         // and returns
  add(100 + i, counter, {{ts, 1}}, Kind::kCounter);                                            // churn
  add(3, bucket, {{ts, static_cast<double>(i)}}, Kind::kCounter);
  add(4, bucket, {{ts - 1, static_cast<double>(i * i)}}, Kind::kCounter);
  for (uint64_t g = 10; g < 14; ++g)
    if ((i + g) % 3 != 0)
      add(g, gauge, {{ts + static_cast<int64_t>(g), static_cast<double>((i * g) % 11)}}, Kind::kGauge, gauge_opts);
  if (i % 4 == 1) add(1, counter, {{ts, 0}}, Kind::kCounter);  // a retry of this very step
}

}  // namespace

TEST_CASE("merge snapshot: restore into a fresh state continues as if never restarted") {
  Config cfg;
  cfg.stale_after_ms = 25'000;  // churn inputs go stale during the run
  for (int cut : {4, 9, 10}) {
    CAPTURE(cut);
    MergeState ref(cfg);
    auto restarted = std::make_unique<MergeState>(cfg);
    for (int i = 0; i < 20; ++i) {
      scriptStep(ref, i);
      scriptStep(*restarted, i);
      if (i == cut) {
        // Snapshot with pending (not yet emitted) data, tombstones and quantile outputs.
        std::string snap = restarted->snapshot();
        restarted = std::make_unique<MergeState>(cfg);
        core::Status s = restarted->restore(snap);
        REQUIRE_MESSAGE(s.ok(), s.error());
        auto a = ref.stats();
        auto b = restarted->stats();
        CHECK(a.outputs == b.outputs);
        CHECK(a.inputs == b.inputs);
        CHECK(a.tombstones == b.tombstones);
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

TEST_CASE("merge snapshot: corrupt, foreign or misplaced snapshots are refused with a clear message") {
  Engine e;
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{1000, 10}}, kT0);
  e.add(2, out, {{1000, 5}, {2000, kStale}}, kT0);
  std::string snap = e.st.snapshot();
  MergeState fresh({});

  SUBCASE("a flipped byte") {
    snap[snap.size() / 2] ^= 0x10;
    core::Status s = fresh.restore(snap);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("checksum mismatch") != std::string::npos);
  }
  SUBCASE("truncated") {
    core::Status s = fresh.restore(std::string_view(snap).substr(0, snap.size() - 9));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("checksum mismatch") != std::string::npos);
    s = fresh.restore(std::string_view(snap).substr(0, 10));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("too short") != std::string::npos);
  }
  SUBCASE("not a snapshot") {
    core::Status s = fresh.restore(std::string(100, 'x'));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("bad magic") != std::string::npos);
  }
  SUBCASE("another version") {
    uint32_t v = 3;
    std::memcpy(snap.data() + 8, &v, 4);
    core::Status s = fresh.restore(snap);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error() == "merge snapshot: version 3 not supported (this build reads versions 1 to 2)");
  }
  SUBCASE("into a state that is in use") {
    core::Status s = e.st.restore(snap);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("empty merge state") != std::string::npos);
  }
  // A refused restore leaves the state empty and usable.
  CHECK(fresh.stats().outputs == 0);
  CHECK(fresh.restore(e.st.snapshot()).ok());
  CHECK(fresh.stats().outputs == 1);
  CHECK(fresh.stats().tombstones == 1);
}

TEST_CASE("merge snapshot: downtime does not count toward input staleness") {
  Config cfg;
  cfg.stale_after_ms = 60'000;
  Engine e(cfg);
  LabelSet out({{"__name__", "x_total"}});
  e.add(1, out, {{1000, 10}}, kT0);
  e.emit(kT0);
  std::string snap = e.st.snapshot();
  Engine after(cfg);
  REQUIRE(after.st.restore(snap).ok());
  const int64_t back = kT0 + 10 * 60'000;  // down for ten minutes
  CHECK(after.emit(back).empty());          // no stale marker: the sender may still be retrying
  after.add(1, out, {{2000, 12}}, back + 5000);
  CHECK(samplesFor(after.emit(back + 5000), out.pairs()).at(0).value == 12);
  auto got = samplesFor(after.emit(back + 65'000), out.pairs());
  REQUIRE(got.size() == 1);
  CHECK(isStale(got[0]));
}

TEST_CASE("merge property: merged increases equal the inputs' increases; outputs monotonic, timestamps increasing") {
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    auto pick = [&](uint64_t n) { return rng() % n; };
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
    Config cfg;
    cfg.stale_after_ms = 60'000;
    auto st = std::make_unique<MergeState>(cfg);

    const size_t n_out = 1 + pick(8);
    std::deque<LabelSet> outs;
    std::unordered_map<uint64_t, size_t> out_index;
    for (size_t o = 0; o < n_out; ++o) {
      outs.emplace_back(Pairs{{"__name__", "m_total"}, {"shard", std::to_string(o)}});
      out_index[outs.back().hash()] = o;
    }
    struct In {
      uint64_t id = 0;
      size_t out = 0;
      bool anchor = false;  // never leaves, so its output is never freed mid-run
      double value = 0;
      int64_t ts = kT0;
      bool started = false;
      double first = 0, increases = 0;  // the model: reset-corrected
      int away = 0;
      std::vector<Sample> last_batch;
    };
    std::vector<In> ins;
    const size_t n_in = n_out + pick(50);
    for (size_t i = 0; i < n_in; ++i) {
      In in;
      in.id = 1000 + i;
      in.out = i < n_out ? i : pick(n_out);
      in.anchor = i < n_out;
      ins.push_back(in);
    }
    std::vector<double> churn_total(n_out, 0);
    uint64_t churn_id = 1'000'000;
    std::vector<std::vector<Sample>> seen(n_out);
    auto emitAt = [&](int64_t now) {
      Emitted em;
      st->emit(now, em);
      for (const auto& x : em) seen[out_index.at(core::hashLabels(LabelSet(x.labels).views()))].push_back(x.sample);
    };

    int64_t now = kT0;
    const int steps = 300;
    const int restart_at = seed % 2 == 0 ? static_cast<int>(pick(steps)) : -1;
    for (int step = 0; step < steps; ++step) {
      now += 1000;
      for (auto& in : ins) {
        if (in.away > 0) {
          --in.away;
          continue;
        }
        if (!chance(0.7)) continue;
        const LabelSet& out = outs[in.out];
        if (in.started && chance(0.1)) {  // a sender retry: nothing new
          AddResult r = st->add(in.id, out.views(), out.hash(), Kind::kCounter, {}, in.last_batch, now);
          CHECK(r.accepted == 0);
        }
        std::vector<Sample> batch;
        for (uint64_t k = 0, n = 1 + pick(3); k < n; ++k) {
          in.ts += 1 + static_cast<int64_t>(pick(900));
          double v = chance(0.05) ? static_cast<double>(pick(6)) : in.value + static_cast<double>(pick(11));
          if (!in.started)
            in.first = v;
          else
            in.increases += v >= in.value ? v - in.value : v;
          in.value = v;
          in.started = true;
          batch.push_back({in.ts, v});
        }
        if (!in.anchor && chance(0.03)) {  // leaves with a stale marker, comes back later
          in.ts += 1 + static_cast<int64_t>(pick(100));
          batch.push_back({in.ts, kStale});
          in.away = 1 + static_cast<int>(pick(120));  // sometimes past stale_after too
        }
        AddResult r = st->add(in.id, out.views(), out.hash(), Kind::kCounter, {}, batch, now);
        CHECK(r.over_cap == 0);
        in.last_batch = batch;
        if (chance(0.05)) {  // a late sample from an older request
          std::vector<Sample> late{{in.ts - 1, 1e9}};
          CHECK(st->add(in.id, out.views(), out.hash(), Kind::kCounter, {}, late, now).accepted == 0);
        }
      }
      if (chance(0.3)) {  // churning ids: appear once, never again
        for (uint64_t c = 0, n = pick(5); c < n; ++c) {
          size_t o = pick(n_out);
          double v = 1 + static_cast<double>(pick(5));
          std::vector<Sample> once{{now - static_cast<int64_t>(pick(500)), v}};
          st->add(churn_id++, outs[o].views(), outs[o].hash(), Kind::kCounter, {}, once, now);
          churn_total[o] += v;
        }
      }
      if (chance(0.2)) emitAt(now + 1);
      if (step == restart_at) {
        std::string snap = st->snapshot();
        st = std::make_unique<MergeState>(cfg);
        REQUIRE(st->restore(snap).ok());
      }
    }
    emitAt(now + 1);
    std::vector<double> final_value(n_out, 0);
    for (size_t o = 0; o < n_out; ++o) {
      REQUIRE(!seen[o].empty());
      final_value[o] = seen[o].back().value;
    }
    emitAt(now + 1 + cfg.stale_after_ms);  // everyone goes stale: markers, state freed
    CHECK(st->stats().outputs == 0);

    double sum_final = 0, sum_first = 0, sum_increases = 0;
    for (size_t o = 0; o < n_out; ++o) {
      double expected = churn_total[o];
      for (const auto& in : ins)
        if (in.out == o) expected += in.first + in.increases;
      CHECK(final_value[o] == expected);
      sum_final += final_value[o];
      const auto& s = seen[o];
      CHECK(isStale(s.back()));
      for (size_t k = 1; k < s.size(); ++k) {
        CHECK(s[k].timestamp > s[k - 1].timestamp);
        if (k + 1 < s.size()) CHECK(s[k].value >= s[k - 1].value);
      }
    }
    for (const auto& in : ins) {
      sum_first += in.first;
      sum_increases += in.increases;
    }
    for (double c : churn_total) sum_first += c;  // a churning id's only value is its first
    CHECK(sum_final - sum_first == sum_increases);
  }
}

TEST_CASE("merge: concurrent adds and emits") {
  MergeState st({});
  LabelSet outs[3] = {LabelSet({{"__name__", "c_total"}, {"o", "0"}}), LabelSet({{"__name__", "c_total"}, {"o", "1"}}),
                      LabelSet({{"__name__", "c_total"}, {"o", "2"}})};
  constexpr int kThreads = 4, kInputs = 30, kSamples = 100;
  std::atomic<bool> done{false};
  std::vector<std::vector<Sample>> seen(3);
  std::thread emitter([&] {
    while (!done.load()) {
      Emitted em;
      st.emit(kT0, em);
      for (const auto& x : em)
        for (int o = 0; o < 3; ++o)
          if (x.labels == outs[o].pairs()) seen[o].push_back(x.sample);
    }
  });
  std::vector<std::thread> adders;
  for (int t = 0; t < kThreads; ++t)
    adders.emplace_back([&, t] {
      for (int k = 1; k <= kSamples; ++k)
        for (int i = 0; i < kInputs; ++i) {
          const LabelSet& out = outs[i % 3];
          std::vector<Sample> s{{kT0 + k, static_cast<double>(k)}};
          st.add(static_cast<uint64_t>(t * 1000 + i), out.views(), out.hash(), Kind::kCounter, {}, s, kT0);
        }
    });
  for (auto& a : adders) a.join();
  done = true;
  emitter.join();
  Emitted em;
  st.emit(kT0, em);
  for (const auto& x : em)
    for (int o = 0; o < 3; ++o)
      if (x.labels == outs[o].pairs()) seen[o].push_back(x.sample);
  for (int o = 0; o < 3; ++o) {
    REQUIRE(!seen[o].empty());
    CHECK(seen[o].back().value == kThreads * (kInputs / 3) * kSamples);
    for (size_t k = 1; k < seen[o].size(); ++k) {
      CHECK(seen[o][k].timestamp > seen[o][k - 1].timestamp);
      CHECK(seen[o][k].value >= seen[o][k - 1].value);
    }
  }
}
