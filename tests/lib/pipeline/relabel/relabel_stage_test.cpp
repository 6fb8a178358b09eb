#include "pipeline/relabel/relabel_stage.h"

#include <doctest/doctest.h>

#include "codec/decode.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "rules/loader.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
using testing::makeSeries;

namespace {

struct Fixture {
  std::shared_ptr<const rules::RuleSet> rules;
  TypeTable types;
  DecisionCache cache{10'000};
  core::ManualClock clock;
  std::string raw;
  codec::SeriesBatch batch;
  RelabelStage stage{nullptr};
  bool dry_run = false;

  explicit Fixture(const std::string& yaml) {
    auto r = rules::parseRules(yaml, "t.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
  }
  Outcome run(prometheus::WriteRequest req, uint64_t generation = 1) {
    raw = testing::serialize(req);
    auto st = codec::decodeWriteRequest(raw, {}, batch);
    REQUIRE_MESSAGE(st.ok(), st.error());
    types.observe(batch);
    StageContext ctx{clock, generation, &cache, dry_run, rules.get(), &types, nullptr};
    return stage.process(batch, ctx);
  }
  std::string labels(size_t i) const {
    std::string out;
    for (const auto& l : batch.labelsOf(batch.series[i])) out += std::string(l.name) + "=" + std::string(l.value) + ",";
    return out;
  }
};

}  // namespace

TEST_CASE("drop_label rewrites labels and marks the rewritten series for the merge engine") {
  Fixture f(R"(
rules:
  - match: {metric: orders_total}
    action: drop_label
    label_regex: "order_id|instance"
)");
  auto req = testing::makeRequest({
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"instance", "a:1"}, {"order_id", "a3f5"}}),
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"instance", "a:1"}}),
      makeSeries({{"__name__", "other_total"}, {"order_id", "x"}}),
  });
  CHECK(f.run(req) == Outcome::kModified);
  // instance is protected: kept even though the rule's regex names it.
  CHECK(f.labels(0) == "__name__=orders_total,env=prod,instance=a:1,");
  CHECK(f.batch.series[0].merge);
  CHECK(f.batch.series[0].changed);
  CHECK(f.batch.series[0].input_hash != f.batch.series[0].hash);
  // Same family, label absent: unchanged here; the merge stage routes it (its family is merged).
  CHECK_FALSE(f.batch.series[1].merge);
  CHECK_FALSE(f.batch.series[1].changed);
  CHECK(f.batch.series[1].hash == f.batch.series[0].hash);
  CHECK_FALSE(f.batch.series[2].merge);
  CHECK_FALSE(f.batch.series[2].changed);
}

TEST_CASE("order of evaluation: keep exempts, drop, replace, drop_label with keep exceptions") {
  Fixture f(R"y(
rules:
  - {match: {metric: audit_total}, action: keep}
  - {match: {metric_regex: ".*_total"}, action: drop_label, labels: [user_id, order_id]}
  - {match: {metric: payments_total}, action: keep, labels: [order_id]}
  - {match: {metric_regex: "debug_.*"}, action: drop}
  - match: {metric: api_request_count}
    action: replace
    source_label: path
    regex: "/users/[^/]+/orders/([^/]+)"
    replacement: "/users/{id}/orders/{id}"
  - match: {metric: api_request_count}
    action: replace
    source_label: path
    target_label: route_kind
    regex: "/users/.*"
    replacement: "user"
)y");
  auto req = testing::makeRequest({
      makeSeries({{"__name__", "audit_total"}, {"user_id", "u1"}}),
      makeSeries({{"__name__", "payments_total"}, {"order_id", "o1"}, {"user_id", "u1"}}),
      makeSeries({{"__name__", "debug_thing"}, {"x", "y"}}),
      makeSeries({{"__name__", "api_request_count"}, {"path", "/users/abc123/orders/456"}}),
      makeSeries({{"__name__", "api_request_count"}, {"path", "/health"}}),
  });
  f.run(req);
  CHECK(f.labels(0) == "__name__=audit_total,user_id=u1,");
  CHECK_FALSE(f.batch.series[0].merge);
  CHECK(f.labels(1) == "__name__=payments_total,order_id=o1,");
  CHECK(f.batch.series[2].dropped);
  CHECK(f.labels(3) == "__name__=api_request_count,path=/users/{id}/orders/{id},route_kind=user,");
  CHECK(f.batch.series[3].merge);
  CHECK(f.labels(4) == "__name__=api_request_count,path=/health,");
  CHECK_FALSE(f.batch.series[4].merge);  // unchanged: routed by the merge stage, its family being merged
}

TEST_CASE("a histogram or summary family is one decision") {
  Fixture f(R"(
rules:
  - {match: {metric: rpc_seconds}, action: drop_label, labels: [pod]}
  - {match: {metric: lat}, action: drop_label, labels: [pod]}
)");
  auto req = testing::makeRequest({
      makeSeries({{"__name__", "rpc_seconds_bucket"}, {"le", "0.1"}, {"pod", "p1"}}),
      makeSeries({{"__name__", "rpc_seconds_sum"}, {"pod", "p1"}}),
      makeSeries({{"__name__", "rpc_seconds_count"}, {"pod", "p1"}}),
      makeSeries({{"__name__", "lat"}, {"pod", "p1"}, {"quantile", "0.9"}}),
      makeSeries({{"__name__", "lat_count"}, {"pod", "p1"}}),
  });
  f.run(req);
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(f.batch.series[i].merge);  // the merge stage drops the rewritten quantile series
  }
  CHECK(f.labels(0) == "__name__=rpc_seconds_bucket,le=0.1,");
  CHECK(f.labels(3) == "__name__=lat,quantile=0.9,");
}

TEST_CASE("decisions are cached; a new generation re-evaluates; dry run changes nothing") {
  Fixture f("rules:\n  - {match: {metric: debug_x}, action: drop}\n");
  auto req = testing::makeRequest({makeSeries({{"__name__", "debug_x"}}), makeSeries({{"__name__", "up"}})});
  f.run(req);
  CHECK(f.batch.series[0].dropped);
  size_t cached = f.cache.size();
  CHECK(cached >= 2);
  f.run(req);
  CHECK(f.batch.series[0].dropped);
  CHECK(f.cache.size() == cached);  // served from the cache
  f.dry_run = true;
  CHECK(f.run(req, 2) == Outcome::kUnchanged);
  CHECK_FALSE(f.batch.series[0].dropped);
  CHECK_FALSE(f.batch.anyChanged());
}

TEST_CASE("replace expands $n, ${n} and ${name}, $$ is a literal $, an unmatched group is empty") {
  Fixture f(R"y(
rules:
  - match: {metric: m}
    action: replace
    source_label: path
    target_label: route
    regex: "/(?P<kind>[a-z]+)/([0-9]+)(/x)?"
    replacement: "${kind}:$2${3}$$"
)y");
  f.run(testing::makeRequest({makeSeries({{"__name__", "m"}, {"path", "/users/42"}})}));
  CHECK(f.labels(0) == "__name__=m,path=/users/42,route=users:42$,");
}
