#include "pipeline/cardinality/cardinality_stage.h"

#include <doctest/doctest.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "codec/decode.h"
#include "core/binary_io.h"
#include "core/hash.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/normalize/normalize_stage.h"
#include "pipeline/pipeline.h"
#include "rules/loader.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
using cardinality::CardinalityState;
using cardinality::DecisionKind;
using testing::LabelList;
using testing::makeSeries;

namespace {

std::string uuid(std::mt19937_64& rng) {
  char buf[40];
  uint64_t a = rng(), b = rng();
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>(a & 0xffff), static_cast<unsigned>((a >> 16) & 0xfff),
                static_cast<unsigned>(b & 0xfff), static_cast<unsigned long long>((b >> 12) & 0xffffffffffffULL));
  return buf;
}

// The cardinality stage over real decoded requests, with an injected clock.
struct Engine {
  std::shared_ptr<const rules::RuleSet> rules;
  TypeTable types;
  DecisionCache cache{10'000};
  core::ManualClock clock;
  std::unique_ptr<CardinalityState> state;
  CardinalityStage stage{nullptr};
  bool dry_run = false;
  uint64_t generation = 1;

  explicit Engine(const std::string& yaml = "rules: []", cardinality::Config cfg = {}) {
    clock.set(1'700'000'000'000);
    load(yaml);
    state = std::make_unique<CardinalityState>(cfg);
  }
  void load(const std::string& yaml) {
    auto r = rules::parseRules(yaml, "t.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
    ++generation;
  }
  struct Out {
    std::vector<LabelList> forwarded;  // labels of series left unchanged
    std::vector<LabelList> merged;     // labels of series routed to the merge engine
  };
  Out run(const std::vector<LabelList>& series) {
    prometheus::WriteRequest req;
    for (const auto& l : series) *req.add_timeseries() = makeSeries(l, {{clock.nowMillis(), 1.0}});
    std::string raw = testing::serialize(req);
    codec::SeriesBatch b;
    auto st = codec::decodeWriteRequest(raw, {}, b);
    REQUIRE_MESSAGE(st.ok(), st.error());
    types.observe(b);
    StageContext ctx{clock, generation, &cache, dry_run, rules.get(), &types, nullptr, state.get()};
    stage.process(b, ctx);
    Out out;
    for (const auto& s : b.series) {
      LabelList l;
      for (const auto& lv : b.labelsOf(s)) l.emplace_back(std::string(lv.name), std::string(lv.value));
      (s.merge ? out.merged : out.forwarded).push_back(std::move(l));
    }
    return out;
  }
  const cardinality::LabelState* label(const std::string& family, const std::string& name) {
    auto f = state->find(family);
    if (!f) return nullptr;
    std::lock_guard lock(f->mu);
    return f->findLabel(name);
  }
  DecisionKind decision(const std::string& family, const std::string& name) {
    auto* l = label(family, name);
    return l ? l->decision.kind : DecisionKind::kKeep;
  }
};

LabelList seedLabels(const std::string& name, const std::string& label, const std::string& value) {
  return {{"__name__", name}, {"env", "prod"}, {"region", "us-east"}, {label, value}};
}

// Sends `n` fresh values of one label over `requests` requests; returns the
// distinct output label sets (forwarded + merged).
size_t sendFresh(Engine& e, const std::string& family, const std::string& label,
                 const std::function<std::string(int)>& value, int n, int requests) {
  std::set<LabelList> outputs;
  for (int r = 0; r < requests; ++r) {
    std::vector<LabelList> batch;
    for (int i = r * n / requests; i < (r + 1) * n / requests; ++i) batch.push_back(seedLabels(family, label, value(i)));
    auto out = e.run(batch);
    for (auto& l : out.forwarded) outputs.insert(l);
    for (auto& l : out.merged) outputs.insert(l);
    e.clock.advance(std::chrono::seconds(15));
  }
  return outputs.size();
}

}  // namespace

TEST_CASE("the seed's eight families are cut by at least 85% with no rule written") {
  Engine e;
  std::mt19937_64 rng(7);
  std::vector<std::string> uuids;
  for (int i = 0; i < 2000; ++i) uuids.push_back(uuid(rng));
  char buf[128];
  struct Family {
    const char* name;
    const char* label;
    std::function<std::string(int)> value;
    DecisionKind expected;
  } families[] = {
      {"checkout_request_latency_seconds", "user_id", [&](int i) { return uuids[i]; }, DecisionKind::kDrop},
      {"order_payment_failures_total", "order_id", [&](int i) { return uuids[1000 + i]; }, DecisionKind::kDrop},
      {"process_cpu_percent", "pid", [](int i) { return std::to_string(48291 + i); }, DecisionKind::kDrop},
      {"temp_file_size_bytes", "file_path",
       [&](int i) {
         std::snprintf(buf, sizeof buf, "/tmp/upload/session_%lld/file.txt", 1691831294000LL + i * 1000LL);
         return std::string(buf);
       },
       DecisionKind::kNormalize},
      {"auth_event_count", "timestamp",
       [&](int i) {
         std::snprintf(buf, sizeof buf, "2025-08-12T10:%02d:%02d.123456Z", (i / 60) % 60, i % 60);
         return std::string(buf);
       },
       DecisionKind::kDrop},
      // What the sanitize stage leaves of an email: a keyed hash token.
      {"user_login_total", "email",
       [&](int i) {
         std::snprintf(buf, sizeof buf, "h:%016llx", static_cast<unsigned long long>(std::hash<int>{}(i) * 0x9e3779b97f4a7c15ULL));
         return std::string(buf);
       },
       DecisionKind::kDrop},
      {"api_request_count", "path",
       [&](int i) {
         std::snprintf(buf, sizeof buf, "/users/%c%c%c%d/orders/%d", 'a' + i % 26, 'a' + (i / 26) % 26, 'a' + i % 7,
                       100 + i, 1000 + i * 7);
         return std::string(buf);
       },
       DecisionKind::kNormalize},
      {"db_query_duration_seconds", "query",
       [](int i) { return "SELECT * FROM orders WHERE id = " + std::to_string(10000 + i * 13); }, DecisionKind::kNormalize},
  };
  for (auto& f : families) {
    const std::string family = f.name;
    CAPTURE(family);
    const size_t outputs = sendFresh(e, f.name, f.label, f.value, 1000, 10);
    CHECK(outputs <= 150);
    CHECK(e.decision(f.name, f.label) == f.expected);
    auto* l = e.label(f.name, f.label);
    REQUIRE(l);
    CHECK_FALSE(l->decision.reason.empty());
    CHECK(l->decision.since_ms > 0);
    MESSAGE(family << ": " << outputs << " output label sets; " << l->decision.reason);
    // env and region stay.
    CHECK(e.decision(f.name, "env") == DecisionKind::kKeep);
    CHECK(e.decision(f.name, "region") == DecisionKind::kKeep);
  }
  // Normalized values keep the meaning.
  auto out = e.run({seedLabels("api_request_count", "path", "/users/zz9/orders/77")});
  REQUIRE(out.merged.size() == 1);
  CHECK(out.merged[0] == LabelList{{"__name__", "api_request_count"}, {"env", "prod"}, {"path", "/users/{id}/orders/{id}"}, {"region", "us-east"}});
  out = e.run({seedLabels("db_query_duration_seconds", "query", "SELECT * FROM orders WHERE id = 5")});
  REQUIRE(out.merged.size() == 1);
  CHECK(out.merged[0][2].second == "SELECT * FROM orders WHERE id = ?");
}

TEST_CASE("well-behaved labels are kept exactly: routes, countries, versions, shard numbers") {
  Engine e;
  const char* nouns[] = {"users", "orders", "carts", "items", "payments", "invoices", "sessions", "products",
                         "reviews", "coupons", "shipments", "returns", "accounts", "addresses", "wishlists"};
  const char* verbs[] = {"list", "get", "create", "update", "delete", "search", "export", "import", "archive",
                         "restore", "approve", "reject", "summary", "history", "status", "preview", "validate",
                         "sync", "count", "batch"};
  std::vector<std::string> routes;
  for (auto* n : nouns)
    for (auto* v : verbs) routes.push_back(std::string("/api/v1/") + n + "/" + v);  // 300 routes
  std::vector<std::string> countries;
  for (char a = 'A'; a <= 'Z' && countries.size() < 200; ++a)
    for (char b = 'A'; b <= 'Z' && countries.size() < 200; ++b) countries.push_back(std::string{a, b});
  std::mt19937 rng(3);
  size_t rewritten = 0;
  for (int r = 0; r < 20; ++r) {
    std::vector<LabelList> batch;
    for (int i = 0; i < 500; ++i) {
      batch.push_back({{"__name__", "http_requests_total"},
                       {"country", countries[rng() % countries.size()]},
                       {"route", routes[rng() % routes.size()]},
                       {"shard", std::to_string(rng() % 128)},
                       {"version", "v1." + std::to_string(rng() % 12) + "." + std::to_string(rng() % 5)}});
    }
    auto out = e.run(batch);
    rewritten += out.merged.size();
    e.clock.advance(std::chrono::seconds(15));
  }
  CHECK(rewritten == 0);
  for (const char* l : {"route", "country", "shard", "version"}) {
    CAPTURE(l);
    CHECK(e.decision("http_requests_total", l) == DecisionKind::kKeep);
  }
  CHECK(e.label("http_requests_total", "route")->estimate > 250);
}

TEST_CASE("protected labels and labels named by rules are never decided (explicit rules win)") {
  Engine e(R"(rules:
  - match: {metric: jobs_total}
    action: keep
    labels: [job_uuid])");
  std::mt19937_64 rng(1);
  std::vector<LabelList> batch;
  for (int i = 0; i < 600; ++i)
    batch.push_back({{"__name__", "jobs_total"}, {"instance", uuid(rng)}, {"job_uuid", uuid(rng)}});
  auto out = e.run(batch);
  CHECK(out.merged.empty());
  CHECK(e.decision("jobs_total", "instance") == DecisionKind::kKeep);
  CHECK(e.decision("jobs_total", "job_uuid") == DecisionKind::kKeep);
}

TEST_CASE("a per-metric limit overrides the shape default") {
  Engine e(R"(rules:
  - match: {metric: tenants_total}
    action: cardinality
    labels: [tenant]
    limit: 20)");
  auto outputs = sendFresh(e, "tenants_total", "tenant", [](int i) { return "tenant-" + std::string(1, 'a' + i % 26) + std::string(1, 'a' + i / 26); }, 100, 4);
  CHECK(e.decision("tenants_total", "tenant") == DecisionKind::kDrop);
  CHECK(outputs <= 22);
  CHECK(e.label("tenants_total", "tenant")->decision.reason.find("rule's limit 20") != std::string::npos);
}

TEST_CASE("decisions have hysteresis: released only after staying below half the limit for the hold time") {
  cardinality::Config cfg;
  cfg.window = {4, 60'000, 10, 128};  // 4 x 1 min
  cfg.release_hold_ms = 120'000;
  Engine e("rules: []", cfg);
  std::mt19937_64 rng(5);
  sendFresh(e, "checkout_latency_seconds", "user_id", [&](int) { return uuid(rng); }, 300, 3);
  REQUIRE(e.decision("checkout_latency_seconds", "user_id") == DecisionKind::kDrop);
  const int64_t decided = e.label("checkout_latency_seconds", "user_id")->decision.since_ms;

  // Still over the release level inside the window: kept dropped.
  e.clock.advance(std::chrono::seconds(30));
  e.state->maintain(e.clock.nowMillis());
  CHECK(e.decision("checkout_latency_seconds", "user_id") == DecisionKind::kDrop);

  // The ids stop; a few values keep coming. The window forgets the ids 4
  // minutes after the first (t+255s here); the decision holds for 2 more
  // minutes below the release level.
  for (int minute = 0; minute < 4; ++minute) {
    e.clock.advance(std::chrono::seconds(60));
    e.run({seedLabels("checkout_latency_seconds", "user_id", "u1"), seedLabels("checkout_latency_seconds", "user_id", "u2")});
    e.state->maintain(e.clock.nowMillis());
    CHECK(e.decision("checkout_latency_seconds", "user_id") == DecisionKind::kDrop);
  }
  e.clock.advance(std::chrono::seconds(90));
  e.run({seedLabels("checkout_latency_seconds", "user_id", "u1")});
  e.state->maintain(e.clock.nowMillis());
  auto* l = e.label("checkout_latency_seconds", "user_id");
  CHECK(l->decision.kind == DecisionKind::kKeep);
  CHECK(l->decision.reason.find("released") != std::string::npos);
  CHECK(l->decision.since_ms > decided);
  // Released: series are forwarded with their label again.
  auto out = e.run({seedLabels("checkout_latency_seconds", "user_id", "u3")});
  CHECK(out.forwarded.size() == 1);
}

TEST_CASE("the window rolls over: distinct estimates forget values older than the window") {
  cardinality::Config cfg;
  cfg.window = {3, 60'000, 10, 128};
  Engine e("rules: []", cfg);
  std::vector<LabelList> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(seedLabels("jobs", "worker", "w" + std::to_string(i)));
  e.run(batch);
  e.state->maintain(e.clock.nowMillis());
  CHECK(e.label("jobs", "worker")->estimate == doctest::Approx(50));
  e.clock.advance(std::chrono::seconds(3 * 60 + 1));
  e.run({seedLabels("jobs", "worker", "w1")});
  e.state->maintain(e.clock.nowMillis());
  CHECK(e.label("jobs", "worker")->estimate == doctest::Approx(1));
}

TEST_CASE("snapshot and restore keep decisions: a restart does not let raw ids through") {
  Engine e;
  std::mt19937_64 rng(9);
  sendFresh(e, "order_payment_failures_total", "order_id", [&](int) { return uuid(rng); }, 400, 4);
  sendFresh(e, "api_request_count", "path", [](int i) { return "/users/u" + std::to_string(i) + "x/orders/" + std::to_string(i); }, 400, 4);
  REQUIRE(e.decision("order_payment_failures_total", "order_id") == DecisionKind::kDrop);
  REQUIRE(e.decision("api_request_count", "path") == DecisionKind::kNormalize);
  const std::string snap = e.state->snapshot();

  Engine restarted;
  restarted.clock.set(e.clock.nowMillis());
  REQUIRE(restarted.state->restore(snap).ok());
  CHECK(restarted.decision("order_payment_failures_total", "order_id") == DecisionKind::kDrop);
  CHECK(restarted.label("order_payment_failures_total", "order_id")->decision.reason ==
        e.label("order_payment_failures_total", "order_id")->decision.reason);
  auto out = restarted.run({seedLabels("order_payment_failures_total", "order_id", uuid(rng)),
                            seedLabels("api_request_count", "path", "/users/new1x/orders/9")});
  REQUIRE(out.merged.size() == 2);
  CHECK(out.merged[0].size() == 3);  // order_id gone
  CHECK(out.merged[1][2] == std::pair<std::string, std::string>{"path", "/users/{id}/orders/{id}"});

  // Corrupt or truncated snapshots are refused, never half-restored.
  for (size_t cut : {size_t{0}, size_t{10}, snap.size() / 2, snap.size() - 1}) {
    CardinalityState s{cardinality::Config{}};
    CHECK_FALSE(s.restore(std::string_view(snap).substr(0, cut)).ok());
    CHECK(s.familyCount() == 0);
  }
  std::string flipped = snap;
  flipped[flipped.size() / 2] ^= 0x40;
  CardinalityState s{cardinality::Config{}};
  CHECK_FALSE(s.restore(flipped).ok());
}

TEST_CASE("snapshot: refused when written with other hash functions than this binary's") {
  Engine e;
  std::mt19937_64 rng(3);
  sendFresh(e, "order_payment_failures_total", "order_id", [&](int) { return uuid(rng); }, 100, 2);
  std::string snap = e.state->snapshot();
  // The header: an 8-byte magic, a u32 version, then the fingerprint.
  constexpr size_t kFingerprintAt = 8 + 4;
  uint64_t fingerprint;
  std::memcpy(&fingerprint, snap.data() + kFingerprintAt, 8);
  // With today's label-set hashes the fingerprint is what builds before the
  // label-set part wrote, so their snapshots still load. A change to
  // core::hashLabels, hashBytes or hashCombine fails here: the windows' keys
  // then differ, and snapshots of earlier builds must be refused (or migrated).
  CHECK(fingerprint == core::hashBytes("cardinal-cardinality-probe"));
  // Another fingerprint (the checksum made right): refused, and nothing restored.
  fingerprint ^= 1;
  std::memcpy(snap.data() + kFingerprintAt, &fingerprint, 8);
  const uint32_t crc = core::crc32(std::string_view(snap).substr(0, snap.size() - 4));
  std::memcpy(snap.data() + snap.size() - 4, &crc, 4);
  CardinalityState s{cardinality::Config{}};
  const auto st = s.restore(snap);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().find("hashes values or label sets differently") != std::string::npos);
  CHECK(s.familyCount() == 0);
}

TEST_CASE("dry-run and observe mode decide and report, but change nothing") {
  SUBCASE("--dry-run") {
    cardinality::Config cfg;
    cfg.dry_run = true;
    Engine e("rules: []", cfg);
    e.dry_run = true;
    std::mt19937_64 rng(2);
    const size_t outputs = sendFresh(e, "checkout_latency_seconds", "user_id", [&](int) { return uuid(rng); }, 300, 3);
    CHECK(outputs == 300);
    CHECK(e.decision("checkout_latency_seconds", "user_id") == DecisionKind::kDrop);
    auto f = e.state->find("checkout_latency_seconds");
    CHECK_FALSE(f->applied->enforce);
  }
  SUBCASE("mode: observe") {
    Engine e(R"(rules:
  - match: {metric_regex: "checkout_.*"}
    action: cardinality
    mode: observe)");
    std::mt19937_64 rng(2);
    CHECK(sendFresh(e, "checkout_latency_seconds", "user_id", [&](int) { return uuid(rng); }, 300, 3) == 300);
    CHECK(e.decision("checkout_latency_seconds", "user_id") == DecisionKind::kDrop);
    // Another family is enforced as usual.
    CHECK(sendFresh(e, "orders_total", "order_id", [&](int) { return uuid(rng); }, 300, 3) <= 110);
  }
}

TEST_CASE("a family over its series limit drops the label contributing most, and repeats while over") {
  Engine e(R"(rules:
  - match: {metric: requests_total}
    action: cardinality
    max_series: 500)");
  std::set<LabelList> outputs;
  std::mt19937 rng(4);
  for (int r = 0; r < 20; ++r) {
    std::vector<LabelList> batch;
    for (int i = 0; i < 300; ++i)
      batch.push_back({{"__name__", "requests_total"},
                       {"customer", "c" + std::to_string(rng() % 90)},
                       {"handler", "h" + std::to_string(rng() % 40)},
                       {"method", "m" + std::to_string(rng() % 3)}});
    auto out = e.run(batch);
    for (auto& l : out.merged) outputs.insert(l);
    e.clock.advance(std::chrono::seconds(15));
  }
  CHECK(e.decision("requests_total", "customer") == DecisionKind::kDrop);
  CHECK(e.label("requests_total", "customer")->decision.by_series_limit);
  CHECK(e.decision("requests_total", "method") == DecisionKind::kKeep);
  // 40 handlers x 3 methods = 120 label sets remain: under the limit, so handler stays.
  CHECK(e.decision("requests_total", "handler") == DecisionKind::kKeep);
  CHECK(outputs.size() <= 120);
}

TEST_CASE("top_k folds all but the K heaviest values into __other__") {
  Engine e(R"(rules:
  - match: {metric: sales_total}
    action: cardinality
    labels: [shop]
    top_k: 3)");
  std::vector<LabelList> batch;
  // shops s0..s2 carry many label sets each (one per sku); s3..s39 one each.
  for (int shop = 0; shop < 40; ++shop)
    for (int sku = 0; sku < (shop < 3 ? 30 : 1); ++sku)
      batch.push_back({{"__name__", "sales_total"}, {"shop", "s" + std::to_string(shop)}, {"sku", "k" + std::to_string(sku)}});
  e.run(batch);
  REQUIRE(e.decision("sales_total", "shop") == DecisionKind::kFold);
  e.clock.advance(std::chrono::seconds(15));
  auto out = e.run({{{"__name__", "sales_total"}, {"shop", "s1"}, {"sku", "k1"}},
                    {{"__name__", "sales_total"}, {"shop", "s17"}, {"sku", "k0"}}});
  CHECK(out.forwarded.size() + out.merged.size() == 2);
  std::set<std::string> shops;
  for (auto& l : out.merged) shops.insert(l[1].second);
  for (auto& l : out.forwarded) shops.insert(l[1].second);
  CHECK(shops == std::set<std::string>{"__other__", "s1"});
}

namespace {
struct DefaultSettings final : cardinality::SettingsSource {
  uint64_t generation() const override { return 1; }
  cardinality::FamilySettings family() const override { return {}; }
  cardinality::LabelSettings label(std::string_view name) const override {
    cardinality::LabelSettings s;
    s.managed = name != "instance" && name != "job";
    return s;
  }
};

// Observes one label set directly (what the stage does for a label set new to its sub-window).
void observe(CardinalityState& st, const std::string& family, const LabelList& labels, int64_t now) {
  std::vector<core::LabelView> views;
  for (const auto& [n, v] : labels) views.push_back({n, v});
  auto f = st.family(family, now);
  if (!f) return;
  std::lock_guard lock(f->mu);
  const uint64_t key = core::hashLabels(views);
  static const DefaultSettings settings;
  st.observe(*f, views, key, settings, now);
  st.observeOutput(*f, key, settings, now);
}
}  // namespace

TEST_CASE("memory per tracked family and label (documented in docs/cardinality.md)") {
  cardinality::Config cfg;  // defaults: 12 x 5 min, precision 10, sparse up to 128 values
  CardinalityState st(cfg);
  const int64_t now = 1'700'000'000'000;
  // A family with four small labels (env, region, method, code): 2 x 3 x 4 x 5 = 120 label sets.
  for (int i = 0; i < 120; ++i)
    observe(st, "small_total",
            {{"code", std::to_string(200 + i % 5)}, {"env", i % 2 ? "prod" : "dev"},
             {"method", std::to_string(i % 4)}, {"region", "r" + std::to_string(i % 3)}}, now);
  // A family with one exploding label (100k distinct values) next to env.
  for (int i = 0; i < 100'000; ++i) observe(st, "big_total", {{"env", "prod"}, {"id", "id-" + std::to_string(i)}}, now);
  const size_t small = CardinalityState::familyMemory(*st.find("small_total"));
  const size_t big = CardinalityState::familyMemory(*st.find("big_total"));
  MESSAGE("family with 4 small labels (120 label sets): " << small << " bytes; family with a 100k-value label: " << big
                                                          << " bytes");
  CHECK(small < 40'000);
  CHECK(big < 120'000);  // dense: 12 slots x 1 KiB registers per sketch, whatever the number of values
}

TEST_CASE("bounded memory: 1 million distinct label values stay under the configured budget") {
  cardinality::Config cfg;
  cfg.max_memory_bytes = 8 << 20;
  cfg.seen_filter_bits = 1 << 20;
  CardinalityState st(cfg);
  int64_t now = 1'700'000'000'000;
  // 1M distinct values over 2,000 families; every 1,000th family explodes an id label.
  for (int i = 0; i < 1'000'000; ++i) {
    const int fam = i % 2000;
    observe(st, "fam_" + std::to_string(fam) + "_total",
            {{"env", "prod"}, {"value", std::to_string(i)}}, now);
    if (i % 100'000 == 99'999) {
      now += 1000;
      st.maintain(now);
      CHECK(st.memoryBytes() <= cfg.max_memory_bytes + (1 << 20));
    }
  }
  st.maintain(now);
  MESSAGE("families tracked " << st.familyCount() << ", refused " << st.untrackedFamilies() << ", evicted "
                              << st.evictedFamilies() << ", memory " << st.memoryBytes() << " bytes");
  CHECK(st.memoryBytes() <= cfg.max_memory_bytes + (1 << 20));
  // Families with decisions are never evicted (their ids would come back).
  size_t with_decisions = 0;
  for (const auto& f : st.families()) with_decisions += f->active.load() > 0;
  CHECK(with_decisions > 0);
}

TEST_CASE("label-set plans remember the seen filter's epoch: each sub-window still observes every label set once") {
  prometheus::Registry registry;
  CardinalityMetrics metrics(registry);
  core::ManualClock clock;
  clock.set(1'700'000'000'000);
  auto parsed = rules::parseRules("rules: []", "t.yaml");
  REQUIRE(parsed.ok());
  std::shared_ptr<const rules::RuleSet> rules = *parsed;
  TypeTable types;
  DecisionCache cache(10'000);  // with plans
  cardinality::Config cfg;
  auto state = std::make_unique<CardinalityState>(cfg);
  // A label stage first, so that plans are made and replayed (Pipeline::runLabelStagesPlanned).
  std::vector<std::unique_ptr<Stage>> stages;
  stages.push_back(std::make_unique<NormalizeStage>(nullptr));
  stages.push_back(std::make_unique<CardinalityStage>(&metrics));
  Pipeline pipeline(std::move(stages));

  prometheus::WriteRequest req;
  constexpr int kSeries = 50;
  for (int i = 0; i < kSeries; ++i)
    *req.add_timeseries() = makeSeries({{"__name__", "jobs_total"}, {"worker", "w" + std::to_string(i)}},
                                       {{clock.nowMillis(), 1.0}});
  const std::string raw = testing::serialize(req);
  auto observed = [&] { return metrics.observed_label_sets.Value(); };
  // Runs the request; how many of its series came with the plan's seen mark.
  auto run = [&] {
    codec::SeriesBatch b;
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    types.observe(b);
    StageContext ctx{clock, 1, &cache, false, rules.get(), &types, nullptr, state.get()};
    pipeline.run(b, ctx);
    size_t marked = 0;
    for (const auto& s : b.series) {
      CHECK_FALSE(s.dropped);
      if (s.seen) CHECK(s.planned);
      marked += s.seen;
    }
    return marked;
  };

  CHECK(run() == 0);  // plans made
  CHECK(observed() == kSeries);
  CHECK(run() == 0);  // plans replayed and marked; the filter still asked (and says seen)
  CHECK(observed() == kSeries);
  CHECK(run() == kSeries);  // from the marks alone
  CHECK(observed() == kSeries);

  // The next sub-window: every label set is observed once more, marks or not.
  clock.advance(std::chrono::milliseconds(cfg.window.sub_window_ms));
  CHECK(run() == 0);
  CHECK(observed() == 2 * kSeries);
  CHECK(run() == kSeries);
  CHECK(observed() == 2 * kSeries);

  // Another state (a tenant's, or after a reset): the marks made for the old one do not count.
  state = std::make_unique<CardinalityState>(cfg);
  CHECK(run() == 0);
  CHECK(observed() == 3 * kSeries);
  CHECK(run() == kSeries);
  CHECK(observed() == 3 * kSeries);
}
