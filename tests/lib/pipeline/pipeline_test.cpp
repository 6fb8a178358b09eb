#include "pipeline/pipeline.h"

#include <doctest/doctest.h>

#include "codec/decode.h"
#include "codec/encode.h"
#include "pipeline/decision_cache.h"
#include "support/builders.h"

using namespace cardinal;

namespace {

// A test stage that drops series whose name starts with "drop_" and caches
// its decision per series, the way real stages use the seam.
class DropByPrefix final : public pipeline::Stage {
 public:
  mutable int evaluations = 0;
  std::string_view name() const override { return "drop_by_prefix"; }
  pipeline::Outcome process(codec::SeriesBatch& batch, pipeline::StageContext& ctx) const override {
    bool any = false;
    for (auto& s : batch.series) {
      bool drop;
      if (auto d = ctx.cache ? ctx.cache->find(s.hash, ctx.ruleset_generation, 1) : std::nullopt) {
        drop = d->action == 1;
      } else {
        ++evaluations;
        drop = core::metricName(batch.labelsOf(s)).substr(0, 5) == "drop_";
        if (ctx.cache) ctx.cache->put(s.hash, ctx.ruleset_generation, 1, {1, drop ? 1u : 0u, 0});
      }
      if (drop && !ctx.dry_run) {
        s.dropped = true;
        any = true;
      }
    }
    return any ? pipeline::Outcome::kModified : pipeline::Outcome::kUnchanged;
  }
};

}  // namespace

TEST_CASE("the default pipeline, without rules, leaves batches unchanged") {
  pipeline::Pipeline p(pipeline::buildStages({}));
  CHECK(p.size() == 4);  // normalize, relabel, cardinality, merge (no redactor: no sanitize)  // normalize, relabel, merge (sanitize needs a redactor)
  std::string raw = testing::serialize(testing::makeRequest({testing::makeSeries({{"__name__", "up"}})}));
  codec::SeriesBatch b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  core::ManualClock clock;
  pipeline::StageContext ctx{clock};
  CHECK(p.run(b, ctx) == pipeline::Outcome::kUnchanged);
  CHECK_FALSE(b.anyChanged());
}

TEST_CASE("stages plug into the seam and use the decision cache") {
  auto stage = std::make_unique<DropByPrefix>();
  auto* probe = stage.get();
  std::vector<std::unique_ptr<pipeline::Stage>> stages;
  stages.push_back(std::move(stage));
  pipeline::Pipeline p(std::move(stages));
  pipeline::DecisionCache cache(1000);
  core::ManualClock clock;
  auto req = testing::makeRequest({testing::makeSeries({{"__name__", "keep_me"}}),
                                   testing::makeSeries({{"__name__", "drop_me"}})});
  std::string raw = testing::serialize(req);
  codec::SeriesBatch b;

  pipeline::StageContext ctx{clock, 1, &cache};
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  CHECK(p.run(b, ctx) == pipeline::Outcome::kModified);
  CHECK(probe->evaluations == 2);
  std::string out;
  codec::encodeWriteRequest(b, out);
  prometheus::WriteRequest back;
  REQUIRE(back.ParseFromString(out));
  REQUIRE(back.timeseries_size() == 1);
  CHECK(back.timeseries(0).labels(0).value() == "keep_me");

  SUBCASE("repeated series hit the cache") {
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    p.run(b, ctx);
    CHECK(probe->evaluations == 2);
  }
  SUBCASE("a new rule-set generation evaluates again") {
    pipeline::StageContext next{clock, 2, &cache};
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    p.run(b, next);
    CHECK(probe->evaluations == 4);
  }
  SUBCASE("dry run decides but forwards everything") {
    pipeline::StageContext dry{clock, 1, &cache, true};
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    CHECK(p.run(b, dry) == pipeline::Outcome::kUnchanged);
    CHECK(b.liveSeries() == 2);
  }
  SUBCASE("a batch where everything is dropped reports kDropped") {
    auto only_drop = testing::serialize(testing::makeRequest({testing::makeSeries({{"__name__", "drop_a"}})}));
    REQUIRE(codec::decodeWriteRequest(only_drop, {}, b).ok());
    CHECK(p.run(b, ctx) == pipeline::Outcome::kDropped);
  }
}
