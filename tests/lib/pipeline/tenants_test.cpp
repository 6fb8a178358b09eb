#include "pipeline/tenants.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "codec/decode.h"
#include "core/clock.h"
#include "pipeline/pipeline.h"
#include "rules/loader.h"
#include "server/forward_headers.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
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

// The whole pipeline (no sanitize stage) over per-tenant state, selected as
// the write handler selects it: by the tenant id.
struct MultiTenant {
  core::ManualClock clock;
  std::shared_ptr<const rules::RuleSet> rules;
  cardinality::CardinalityState def_card{cardinality::Config{}};
  merge::MergeState def_merge{merge::Config{}};
  DecisionCache def_cache{10'000};
  TypeTable def_types;
  std::unique_ptr<Tenants> tenants;
  Pipeline pipeline{buildStages(PipelineConfig{})};

  explicit MultiTenant(size_t max_tenants = 10) {
    clock.set(1'700'000'000'000);
    auto r = rules::parseRules("rules: []", "t.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
    TenantsConfig cfg;
    cfg.max_tenants = max_tenants;
    cfg.cache_series = 10'000;
    Tenant def;
    def.cardinality = &def_card;
    def.merge = &def_merge;
    def.cache = &def_cache;
    def.types = &def_types;
    tenants = std::make_unique<Tenants>(cfg, std::move(def));
  }
  struct Out {
    std::vector<LabelList> forwarded;
    size_t merged = 0;
  };
  Out run(std::string_view tenant_id, const std::vector<LabelList>& series) {
    Tenant* t = tenants->getOrCreate(tenant_id);
    REQUIRE(t != nullptr);
    prometheus::WriteRequest req;
    for (const auto& l : series) *req.add_timeseries() = makeSeries(l, {{clock.nowMillis(), 1.0}});
    std::string raw = testing::serialize(req);
    codec::SeriesBatch b;
    auto st = codec::decodeWriteRequest(raw, {}, b);
    REQUIRE_MESSAGE(st.ok(), st.error());
    t->types->observe(b);
    StageContext ctx{clock, 1, t->cache, false, rules.get(), t->types, t->merge, t->cardinality};
    pipeline.run(b, ctx);
    Out out;
    for (const auto& s : b.series) {
      if (s.merge) {  // handed to the merge engine (and so not forwarded as is)
        ++out.merged;
        continue;
      }
      if (s.dropped) continue;
      LabelList l;
      for (const auto& lv : b.labelsOf(s)) l.emplace_back(std::string(lv.name), std::string(lv.value));
      out.forwarded.push_back(std::move(l));
    }
    return out;
  }
  DecisionKind decision(std::string_view tenant_id, const std::string& family, const std::string& label) {
    Tenant* t = tenants->find(tenant_id);
    REQUIRE(t != nullptr);
    auto f = t->cardinality->find(family);
    if (!f) return DecisionKind::kKeep;
    std::lock_guard lock(f->mu);
    auto* l = f->findLabel(label);
    return l ? l->decision.kind : DecisionKind::kKeep;
  }
};

LabelList orderSeries(const std::string& order_id) {
  return {{"__name__", "order_payment_failures_total"}, {"env", "prod"}, {"order_id", order_id}};
}

// Tenant "a" sends 400 fresh uuids, tenant "b" the same family with 3 uuids, interleaved.
void sendChurnAndFew(MultiTenant& m, std::mt19937_64& rng) {
  std::vector<std::string> few = {uuid(rng), uuid(rng), uuid(rng)};
  for (int r = 0; r < 4; ++r) {
    std::vector<LabelList> churn;
    for (int i = 0; i < 100; ++i) churn.push_back(orderSeries(uuid(rng)));
    m.run("a", churn);
    std::vector<LabelList> calm;
    for (const auto& id : few) calm.push_back(orderSeries(id));
    m.run("b", calm);
    m.clock.advance(std::chrono::seconds(15));
  }
}

}  // namespace

TEST_CASE("tenants: the same family with different churn gets independent decisions and merges") {
  MultiTenant m;
  std::mt19937_64 rng(7);
  sendChurnAndFew(m, rng);
  CHECK(m.decision("a", "order_payment_failures_total", "order_id") == DecisionKind::kDrop);
  CHECK(m.decision("b", "order_payment_failures_total", "order_id") == DecisionKind::kKeep);
  CHECK(m.tenants->size() == 3);  // default + a + b
  CHECK(m.def_card.familyCount() == 0);  // the default tenant saw nothing

  // After the decision: a's series are merged, b's forwarded as they came.
  auto a = m.run("a", {orderSeries(uuid(rng))});
  CHECK(a.merged == 1);
  CHECK(a.forwarded.empty());
  const std::string kept_id = uuid(rng);
  auto b = m.run("b", {orderSeries(kept_id)});
  CHECK(b.merged == 0);
  REQUIRE(b.forwarded.size() == 1);
  CHECK(b.forwarded[0] == orderSeries(kept_id));

  // Merged output lives in a's merge state only.
  std::vector<merge::MergeState::Emitted> ea, eb, ed;
  m.tenants->find("a")->merge->emit(m.clock.nowMillis() + 1, ea);
  m.tenants->find("b")->merge->emit(m.clock.nowMillis() + 1, eb);
  m.def_merge.emit(m.clock.nowMillis() + 1, ed);
  // (a's series of the request that crossed the limit before the decision
  // went through the merge engine as they were: one output may keep an id.)
  REQUIRE_FALSE(ea.empty());
  bool merged_output = false;
  for (const auto& e : ea)
    merged_output = merged_output || e.labels == std::vector<std::pair<std::string, std::string>>{
                                                     {"__name__", "order_payment_failures_total"}, {"env", "prod"}};
  CHECK(merged_output);
  CHECK(eb.empty());
  CHECK(ed.empty());
}

TEST_CASE("tenants: the number of tenants is bounded and refusals are counted") {
  MultiTenant m(3);  // default + 2
  CHECK(m.tenants->getOrCreate("anonymous") == &m.tenants->defaultTenant());
  CHECK(m.tenants->getOrCreate("a") != nullptr);
  CHECK(m.tenants->getOrCreate("b") != nullptr);
  CHECK(m.tenants->getOrCreate("c") == nullptr);
  CHECK(m.tenants->getOrCreate("a") != nullptr);  // known ones still pass
  CHECK(m.tenants->refused() == 1);
  CHECK(m.tenants->size() == 3);
}

TEST_CASE("tenants: snapshot round trip keeps tenants apart; old snapshots are the default tenant's") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cardinal-tenants-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng(11);
  {
    MultiTenant m;
    sendChurnAndFew(m, rng);
    m.run("anonymous", {orderSeries("o-1")});
    REQUIRE(m.tenants->writeSnapshots(dir.string()).ok());
  }
  CHECK(std::filesystem::exists(dir / "cardinality.snapshot"));  // the default tenant: where it always was
  CHECK(std::filesystem::exists(dir / "tenants" / "a" / "cardinality.snapshot"));
  CHECK(std::filesystem::exists(dir / "tenants" / "b" / "merge.snapshot"));

  MultiTenant restarted;
  restarted.clock.advance(std::chrono::minutes(1));
  // The default tenant's files are restored by main() as before tenants existed.
  {
    std::FILE* f = std::fopen((dir / "cardinality.snapshot").c_str(), "rb");
    REQUIRE(f);
    std::string data;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) data.append(buf, n);
    std::fclose(f);
    REQUIRE(restarted.def_card.restore(data).ok());
  }
  auto problems = restarted.tenants->restoreSnapshots(dir.string());
  CHECK_MESSAGE(problems.empty(), (problems.empty() ? "" : problems[0]));
  CHECK(restarted.tenants->size() == 3);
  CHECK(restarted.decision("a", "order_payment_failures_total", "order_id") == DecisionKind::kDrop);
  CHECK(restarted.decision("b", "order_payment_failures_total", "order_id") == DecisionKind::kKeep);
  CHECK(restarted.def_card.familyCount() == 1);
  CHECK(restarted.tenants->find("b")->merge->stats().outputs == 0);
  CHECK(restarted.tenants->find("a")->merge->stats().outputs >= 1);
  CHECK(restarted.def_merge.stats().outputs == 0);  // not restored by restoreSnapshots(): main() does

  // A directory that is no tenant id is reported, not restored.
  std::filesystem::create_directories(dir / "tenants" / "bad id");
  MultiTenant again;
  auto p2 = again.tenants->restoreSnapshots(dir.string());
  CHECK(p2.size() == 1);
  CHECK(again.tenants->size() == 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("tenant ids and forwarded headers are checked") {
  CHECK(checkTenantId("team-a_1.(x)").empty());
  CHECK_FALSE(checkTenantId("").empty());
  CHECK_FALSE(checkTenantId("..").empty());
  CHECK_FALSE(checkTenantId("a/b").empty());
  CHECK_FALSE(checkTenantId(std::string(151, 'a')).empty());

  auto ok = server::parseForwardHeaders({"X-Scope-OrgID, x-team", "X-TEAM"}, "upstream.forward-headers");
  REQUIRE(ok.ok());
  CHECK(*ok == std::vector<std::string>{"x-scope-orgid", "x-team"});
  for (const char* bad : {"Authorization", "content-type", "Content-Encoding", "Host", "Connection",
                          "X-Prometheus-Remote-Write-Version", "Transfer-Encoding", "bad header"}) {
    auto r = server::parseForwardHeaders({bad}, "upstream.forward-headers");
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.error().find("--upstream.forward-headers") == 0);
  }
  CHECK(server::checkForwardedValue("x-team", "a b\tc").empty());
  CHECK_FALSE(server::checkForwardedValue("x-team", "a\r\nb").empty());
  CHECK_FALSE(server::checkForwardedValue("x-team", std::string(2000, 'a')).empty());
  CHECK(server::checkForwardedValue("x-team", "secret\n").find("secret") == std::string::npos);
}
