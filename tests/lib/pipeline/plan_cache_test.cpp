// Whole-label-set plans (pipeline/plan_cache.h): a replayed plan must give
// exactly what the label stages give, count the same, never apply to another
// label set, and leave metadata and exemplars to the stages.
#include "pipeline/plan_cache.h"

#include <doctest/doctest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "codec/decode.h"
#include "core/hash.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/pipeline.h"
#include "pipeline/normalize/normalize_stage.h"
#include "pipeline/relabel/relabel_stage.h"
#include "pipeline/sanitize/redactor.h"
#include "pipeline/sanitize/sanitize_stage.h"
#include "rules/rules_manager.h"
#include "support/builders.h"

using namespace cardinal;
using core::LabelView;
using pipeline::PlanCache;
using pipeline::SeriesPlan;

TEST_CASE("plan cache: a plan applies only to the label set it was made from") {
  std::vector<LabelView> a{{"__name__", "up"}, {"job", "api"}};
  std::vector<LabelView> out{{"__name__", "up"}};
  auto plan = SeriesPlan::make(a, {}, SeriesPlan::Kind::kRewritten, out, core::hashLabels(out), true, {});
  CHECK(plan->madeFrom(a, {}));
  CHECK_FALSE(plan->madeFrom(std::vector<LabelView>{{"__name__", "up"}, {"job", "apx"}}, {}));  // same lengths
  CHECK_FALSE(plan->madeFrom(std::vector<LabelView>{{"__name__", "up"}, {"jo", "bapi"}}, {}));  // same bytes, other split
  CHECK_FALSE(plan->madeFrom(std::vector<LabelView>{{"__name__", "up"}}, {}));                   // a prefix
  CHECK_FALSE(plan->madeFrom(std::vector<LabelView>{{"__name__", "up"}, {"job", "api"}, {"x", "1"}}, {}));
  std::vector<LabelView> got;
  SeriesPlan::unpackLabels(plan->packedOut(), a, got);
  CHECK(got == out);
  CHECK_FALSE(plan->outHasBytes());  // out is a subset of a: indexes only
  CHECK(got[0].name.data() == a[0].name.data());
  CHECK(plan->merge());
  CHECK(plan->outHash() == core::hashLabels(out));
}

TEST_CASE("plan cache: empty names and values without a data pointer (found by the pipeline fuzz target under UBSan)") {
  std::vector<LabelView> in{{"__name__", "up"}, {"job", std::string_view()}};
  std::vector<LabelView> out{{"__name__", "up"}, {std::string_view(), std::string_view()}};
  auto plan = SeriesPlan::make(in, {}, SeriesPlan::Kind::kRewritten, out, 0, false, {});
  CHECK(plan->madeFrom(in, {}));
  CHECK_FALSE(plan->madeFrom(out, {}));
  std::vector<LabelView> got;
  SeriesPlan::unpackLabels(plan->packedOut(), in, got);
  REQUIRE(got.size() == 2);
  CHECK(got[1].name.empty());
}

TEST_CASE("plan cache: a decoded 1.0 series is matched on its label bytes") {
  const std::string raw = testing::serialize(testing::makeRequest(
      {testing::makeSeries({{"__name__", "up"}, {"job", "api"}}, {{1000, 1.0}}),
       testing::makeSeries({{"__name__", "up"}, {"job", "apx"}}, {{1000, 1.0}}),
       testing::makeSeries({{"__name__", "up"}, {"job", "api"}}, {{2000, 5.0}})}));
  codec::SeriesBatch b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  // The decoder's fast path checks the label fields' bytes: from the series'
  // start to the end of its last label's value, not the sample after them.
  auto labelBytes = [&](size_t i) {
    const auto& s = b.series[i];
    const auto last = b.labelsOf(s).back().value;
    return s.raw.substr(0, static_cast<size_t>(last.data() + last.size() - s.raw.data()));
  };
  for (size_t i = 0; i < b.series.size(); ++i) {
    REQUIRE(b.series[i].canonical);
    CHECK(labelBytes(i).size() < b.series[i].raw.size());
    CHECK(b.series[i].wire_check == core::labelWireCheck(labelBytes(i)));
  }
  CHECK(labelBytes(0) == labelBytes(2));
  CHECK(b.series[0].wire_check == b.series[2].wire_check);  // other samples, same label bytes
  CHECK(b.series[0].wire_check != b.series[1].wire_check);
  {  // New labels: the bytes (and their check) no longer stand for them.
    codec::SeriesBatch c;
    REQUIRE(codec::decodeWriteRequest(raw, {}, c).ok());
    const std::vector<LabelView> other{{"__name__", "up"}};
    c.setLabels(c.series[0], other);
    CHECK_FALSE(c.series[0].canonical);
  }
  auto wire = [&](size_t i) { return std::optional(b.series[i].wire_check); };
  auto plan = SeriesPlan::make(b.labelsOf(b.series[0]), wire(0), SeriesPlan::Kind::kUnchanged, {}, 0, false, {});
  CHECK(plan->madeFrom(b.labelsOf(b.series[2]), wire(2)));
  CHECK_FALSE(plan->madeFrom(b.labelsOf(b.series[1]), wire(1)));
  CHECK_FALSE(plan->madeFrom(b.labelsOf(b.series[0]), {}));  // the same labels without their bytes: a miss
  // And a plan made from the labels alone is not matched by a check of bytes.
  auto by_labels = SeriesPlan::make(b.labelsOf(b.series[0]), {}, SeriesPlan::Kind::kUnchanged, {}, 0, false, {});
  CHECK(by_labels->madeFrom(b.labelsOf(b.series[2]), wire(2)));
  CHECK_FALSE(by_labels->madeFrom(b.labelsOf(b.series[1]), wire(1)));
  // Only the fast path's canonical form stands for its label set by its bytes:
  // labels the decoder had to sort (or read in another field order) do not.
  const std::string unsorted = testing::serialize(
      testing::makeRequest({testing::makeSeries({{"job", "api"}, {"__name__", "up"}}, {{1000, 1.0}})}));
  codec::SeriesBatch u;
  REQUIRE(codec::decodeWriteRequest(unsorted, {}, u).ok());
  CHECK_FALSE(u.series[0].canonical);
  CHECK(u.series[0].shaped);
  CHECK(u.series[0].name == "up");
}

TEST_CASE("plan cache: a plan keeps a hash of its label set, not its bytes") {
  // Its size: header, counters and output; not the received label set's length.
  std::vector<LabelView> small{{"__name__", "up"}, {"job", "api"}};
  const std::string long_value(500, 'v');
  std::vector<LabelView> big{{"__name__", "up"}, {"job", long_value}};
  const auto a = SeriesPlan::make(small, {}, SeriesPlan::Kind::kUnchanged, {}, 0, false, {});
  const auto b = SeriesPlan::make(big, {}, SeriesPlan::Kind::kUnchanged, {}, 0, false, {});
  CHECK(a->bytes() == b->bytes());
  CHECK(b->bytes() <= 64);
  CHECK(b->madeFrom(big, {}));
  std::string other_value = long_value;
  for (size_t i = 0; i < other_value.size(); i += 37) {  // one byte anywhere in the value
    other_value[i] = 'w';
    CHECK_FALSE(b->madeFrom(std::vector<LabelView>{{"__name__", "up"}, {"job", other_value}}, {}));
    other_value[i] = 'v';
  }
  // A rewritten plan: its output, indexes into the received set, follows the header.
  std::vector<LabelView> out{{"__name__", "up"}};
  const auto r = SeriesPlan::make(big, {}, SeriesPlan::Kind::kRewritten, out, core::hashLabels(out), true, {});
  CHECK(r->bytes() == a->bytes() + 8);
  std::vector<LabelView> got;
  SeriesPlan::unpackLabels(r->packedOut(), big, got);
  CHECK(got == out);
  // Indexes never read past the set they are given (a shorter one than the plan's).
  std::vector<LabelView> prefix{{"__name__", "up"}};
  const auto r2 = SeriesPlan::make(big, {}, SeriesPlan::Kind::kRewritten, std::vector<LabelView>{{"job", long_value}}, 0,
                                   true, {});
  got.clear();
  SeriesPlan::unpackLabels(r2->packedOut(), prefix, got);
  CHECK(got.empty());
}

TEST_CASE("plan cache: bounded by bytes, oldest plans evicted first") {
  std::vector<LabelView> labels{{"__name__", "requests_total"}, {"instance", "10.0.0.1:9100"}};
  // A plan's bytes with its slot and ring entry (PlanCache::charge).
  const size_t one = SeriesPlan::make(labels, {}, SeriesPlan::Kind::kUnchanged, {}, 0, false, {})->bytes() + 42;
  PlanCache cache(PlanCache::kShards * one * 4);  // room for 4 plans per shard
  size_t kept = 0;
  uint64_t last_kept = 0;
  for (uint64_t k = 1; k <= 1000; ++k) {
    const uint64_t key = k * 0x9e3779b97f4a7c15ULL;
    const bool admitted = cache.admits(key);
    cache.put(key, SeriesPlan::make(labels, std::nullopt, SeriesPlan::Kind::kUnchanged,
                                    std::span<const LabelView>{}, 0, false, std::span<prometheus::Counter* const>{}));
    if (admitted) {
      ++kept;
      last_kept = key;
    }
  }
  CHECK(cache.size() <= PlanCache::kShards * 4);
  CHECK(cache.bytes() <= cache.maxBytes());
  CHECK(cache.evictions() == kept - cache.size());
  // Never replayed plans leaving made the full shards admit fewer new ones.
  CHECK(kept < 1000);
  CHECK(cache.visit(last_kept, [](const SeriesPlan&) { return true; }));                       // the newest stays
  CHECK_FALSE(cache.visit(0x9e3779b97f4a7c15ULL, [](const SeriesPlan&) { return true; }));  // the oldest went
  PlanCache off(0);                                   // a zero budget caches nothing
  off.put(1, SeriesPlan::make(labels, std::nullopt, SeriesPlan::Kind::kUnchanged, std::span<const LabelView>{}, 0,
                                                false, std::span<prometheus::Counter* const>{}));
  CHECK(off.size() == 0);
}

namespace {

// Every counter of the registry, by name and labels.
std::map<std::string, double> counters(prometheus::Registry& r) {
  std::map<std::string, double> out;
  for (const auto& family : r.Collect()) {
    if (family.type != prometheus::MetricType::Counter) continue;
    for (const auto& m : family.metric) {
      std::string key = family.name;
      for (const auto& l : m.label) key += "," + l.name + "=" + l.value;
      out[key] = m.counter.value;
    }
  }
  return out;
}

struct Result {
  std::vector<std::vector<std::pair<std::string, std::string>>> labels;  // per series, empty when dropped
  std::vector<bool> merge, planned;
  std::vector<std::string> help;
};

Result resultOf(const codec::SeriesBatch& b) {
  Result r;
  for (const auto& s : b.series) {
    std::vector<std::pair<std::string, std::string>> ls;
    if (!s.dropped)
      for (const auto& l : b.labelsOf(s)) ls.emplace_back(std::string(l.name), std::string(l.value));
    r.labels.push_back(ls);
    r.merge.push_back(s.merge);
    r.planned.push_back(s.planned);
  }
  for (const auto& m : b.metadata) r.help.emplace_back(m.help);
  return r;
}

// The label stages as the proxy builds them, with their own decision cache
// (and plan budget), type table and /metrics counters.
struct Proxy {
  prometheus::Registry registry;
  pipeline::RelabelMetrics relabel{registry};
  pipeline::SanitizeMetrics sanitize{registry};
  pipeline::NormalizeMetrics normalize{registry};
  pipeline::sanitize::Redactor redactor{std::vector<uint8_t>(32, 7)};
  rules::RulesManager rules{{}, nullptr};  // the built-in default rules
  pipeline::DecisionCache cache;
  pipeline::TypeTable types;
  std::unique_ptr<pipeline::Pipeline> stages;
  core::ManualClock clock;
  explicit Proxy(size_t plan_bytes = pipeline::DecisionCache::kDefaultPlanBytes) : cache(10'000, plan_bytes) {
    REQUIRE(rules.reload().ok());
    std::vector<std::unique_ptr<pipeline::Stage>> v;
    v.push_back(std::make_unique<pipeline::NormalizeStage>(&normalize));
    v.push_back(std::make_unique<pipeline::SanitizeStage>(&redactor, &sanitize));
    v.push_back(std::make_unique<pipeline::RelabelStage>(&relabel));
    stages = std::make_unique<pipeline::Pipeline>(std::move(v));
  }
  Result run(const std::string& raw) {
    codec::SeriesBatch batch;
    REQUIRE(codec::decodeWriteRequest(raw, {}, batch).ok());
    types.observe(batch);
    auto snapshot = rules.current();
    pipeline::StageContext ctx{clock, snapshot.generation, &cache, false, snapshot.rules.get(), &types};
    stages->run(batch, ctx);
    return resultOf(batch);
  }
};

std::string seedRequest() {
  auto req = testing::makeRequest({
      testing::makeSeries({{"__name__", "checkout_seconds"}, {"user_id", "u-81623"}, {"region", "eu"}}),
      testing::makeSeries({{"__name__", "http_requests_total"}, {"path", "/users/81623/orders/77"}}),
      testing::makeSeries({{"__name__", "logins_total"}, {"email", "joao@example.com"}}),
      testing::makeSeries({{"__name__", "db_calls_total"}, {"query", "SELECT * FROM t WHERE id = 42"}}),
      testing::makeSeries({{"__name__", "up"}, {"job", "api"}}),
  });
  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("logins_total");
  md->set_help("logins, e.g. by joao@example.com");
  return testing::serialize(req);
}

}  // namespace

TEST_CASE("plan cache: a replayed plan gives what the label stages give and counts the same") {
  const std::string raw = seedRequest();
  Proxy with_plans, without(0);  // a zero budget: never a plan, the stages run every time

  auto first = with_plans.run(raw);
  auto counted_once = counters(with_plans.registry);
  CHECK(with_plans.cache.plans.size() == 5);
  auto second = with_plans.run(raw);  // every series from its plan
  for (bool p : second.planned) CHECK(p);
  for (bool p : first.planned) CHECK_FALSE(p);
  CHECK(with_plans.cache.plans.misses() == 5);
  CHECK(with_plans.cache.plans.replays() == 5);
  CHECK(second.labels == first.labels);
  CHECK(second.merge == first.merge);

  without.run(raw);
  auto reference = without.run(raw);
  CHECK(reference.labels == second.labels);
  CHECK(reference.merge == second.merge);
  for (bool p : reference.planned) CHECK_FALSE(p);

  // The stages changed what they should (so the comparison above means something).
  REQUIRE(second.labels.size() == 5);
  REQUIRE(second.labels[0].size() == 2);  // user_id dropped
  CHECK(second.labels[0][1].first == "region");
  REQUIRE(second.labels[1].size() == 2);
  CHECK(second.labels[1][1].second == "/users/{id}/orders/{id}");
  REQUIRE(second.labels[2].size() == 2);
  CHECK(pipeline::sanitize::Redactor::isToken(second.labels[2][1].second));
  CHECK(second.labels[4].size() == 2);
  // Metadata is not part of a plan: redacted on the second request too.
  REQUIRE(second.help.size() == 1);
  CHECK(second.help[0].find("joao@example.com") == std::string::npos);

  // Counters: twice what one request counted, with plans as without.
  auto counted_twice = counters(with_plans.registry);
  CHECK(counters(without.registry) == counted_twice);
  size_t nonzero = 0;
  for (const auto& [name, v] : counted_once) {
    CHECK_MESSAGE(counted_twice[name] == 2 * v, name);
    nonzero += v > 0;
  }
  CHECK(nonzero >= 3);  // normalizer, redaction, drop_label at least
}

TEST_CASE("plan cache: a plan cached under a series' key but made from another label set is not applied") {
  Proxy p;
  const std::string raw = testing::serialize(testing::makeRequest(
      {testing::makeSeries({{"__name__", "logins_total"}, {"email", "joao@example.com"}})}));
  codec::SeriesBatch batch;
  REQUIRE(codec::decodeWriteRequest(raw, {}, batch).ok());
  // The key the pipeline computes for this series; a plan made from other labels
  // that would pass the e-mail through unchanged sits there (a 64-bit collision).
  const uint64_t generation = core::hashCombine(p.rules.current().generation, p.types.version());
  std::vector<LabelView> other{{"__name__", "logins_total"}, {"email", "nobody"}};
  p.cache.plans.put(core::hashCombine(batch.series[0].hash, generation),
                              SeriesPlan::make(other, std::nullopt, SeriesPlan::Kind::kUnchanged,
                                                                 std::span<const LabelView>{}, 0, false,
                                                                 std::span<prometheus::Counter* const>{}));
  auto r = p.run(raw);
  REQUIRE(r.labels.size() == 1);
  CHECK_FALSE(r.planned[0]);
  REQUIRE(r.labels[0].size() == 2);
  CHECK(pipeline::sanitize::Redactor::isToken(r.labels[0][1].second));
}

TEST_CASE("plan cache: threads replaying and recording plans under evictions give what the stages give") {
  // A budget of a few dozen plans for a few hundred label sets: plans are
  // evicted while other threads look them up, record them and replay them.
  std::vector<prometheus::TimeSeries> series;
  for (int i = 0; i < 300; ++i)
    series.push_back(testing::makeSeries({{"__name__", "http_requests_total"},
                                          {"email", "user" + std::to_string(i % 7) + "@example.com"},
                                          {"path", "/users/" + std::to_string(i) + "/orders"},
                                          {"user_id", std::to_string(i)}}));
  prometheus::WriteRequest req;
  for (const auto& s : series) *req.add_timeseries() = s;
  const std::string raw = testing::serialize(req);

  Proxy reference(0);
  const Result expected = reference.run(raw);
  Proxy shared(40 * 1024);
  constexpr int kThreads = 4, kRounds = 30;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, planned{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        codec::SeriesBatch batch;
        if (!codec::decodeWriteRequest(raw, {}, batch).ok()) {
          ++mismatches;
          return;
        }
        auto snapshot = shared.rules.current();
        pipeline::StageContext ctx{shared.clock, snapshot.generation, &shared.cache, false, snapshot.rules.get(),
                                   &shared.types};
        shared.stages->run(batch, ctx);
        const Result got = resultOf(batch);
        if (got.labels != expected.labels || got.merge != expected.merge) ++mismatches;
        for (bool p : got.planned) planned += p;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
  CHECK(planned > 0);                     // some series were replayed from plans
  CHECK(shared.cache.plans.evictions() > 0);  // and plans were evicted meanwhile
  CHECK(shared.cache.plans.bytes() <= shared.cache.plans.maxBytes());
}

TEST_CASE("plan cache: more repeating label sets than fit still get replays (admission), all of them when they fit") {
  std::vector<LabelView> labels{{"__name__", "requests_total"}, {"instance", "10.0.0.1:9100"}};
  // A plan's bytes with its slot and ring entry (PlanCache::charge).
  const size_t one = SeriesPlan::make(labels, {}, SeriesPlan::Kind::kUnchanged, {}, 0, false, {})->bytes() + 42;
  constexpr size_t kCapacity = 4000;  // plans the budget holds
  // Each cycle asks for every label set once, in the same order (a scrape
  // interval); a miss makes the plan when the cache admits it.
  auto hitRate = [&](size_t distinct) {
    PlanCache cache(kCapacity * one);
    size_t hits = 0, asked = 0;
    for (int cycle = 0; cycle < 12; ++cycle) {
      for (uint64_t k = 0; k < distinct; ++k) {
        const uint64_t key = core::mix64(k + 1);
        const bool hit = cache.visit(key, [](const SeriesPlan&) { return true; });
        if (cycle >= 8) {
          ++asked;
          hits += hit;
        }
        if (!hit && cache.admits(key))
          cache.put(key, SeriesPlan::make(labels, std::nullopt, SeriesPlan::Kind::kUnchanged,
                                          std::span<const LabelView>{}, 0, false,
                                          std::span<prometheus::Counter* const>{}));
      }
    }
    CHECK(cache.bytes() <= cache.maxBytes());
    return static_cast<double>(hits) / static_cast<double>(asked);
  };
  const double fits = hitRate(kCapacity / 2);
  const double three_times = hitRate(kCapacity * 3);
  MESSAGE("replayed: " << fits << " of label sets that fit, " << three_times << " of 3x the capacity");
  CHECK(fits == 1.0);
  // Insertion order alone would give 0 here: each plan evicted before its label set returns.
  CHECK(three_times > 0.15);
}
