#include "pipeline/assembly.h"

#include <doctest/doctest.h>

#include "codec/decode.h"
#include "codec/snappy_codec.h"
#include "pipeline/sanitize/redactor.h"
#include "rules/rules_manager.h"
#include "support/builders.h"

using namespace cardinal;

TEST_CASE("assembly: flag values map to the engines' configs as the proxy documents them") {
  pipeline::AssemblyOptions o;
  o.merge_max_inputs = 7;
  o.merge_max_outputs = 3;
  o.merge_stale_after = std::chrono::seconds(90);
  auto m = pipeline::mergeConfig(o);
  CHECK(m.max_inputs == 7);
  CHECK(m.max_outputs == 3);
  CHECK(m.stale_after_ms == 90'000);

  o.cardinality_window = std::chrono::minutes(10);
  o.cardinality_sub_windows = 5;
  o.dry_run = true;
  auto c = pipeline::cardinalityConfig(o);
  CHECK(c.window.sub_windows == 5);
  CHECK(c.window.sub_window_ms == 120'000);
  CHECK(c.dry_run);
  SUBCASE("sub-windows are clamped to 1..1024 and last at least 1 s") {
    o.cardinality_sub_windows = 0;
    CHECK(pipeline::cardinalityConfig(o).window.sub_windows == 1);
    o.cardinality_sub_windows = 5000;
    o.cardinality_window = std::chrono::seconds(10);
    auto clamped = pipeline::cardinalityConfig(o);
    CHECK(clamped.window.sub_windows == 1024);
    CHECK(clamped.window.sub_window_ms == 1000);
  }
}

TEST_CASE("assembly: the write path's step redacts with the default rules and merges what it collapsed") {
  rules::RulesManager rules({}, nullptr);  // the built-in default rules
  REQUIRE(rules.reload().ok());
  pipeline::sanitize::Redactor redactor(std::vector<uint8_t>(32, 7));
  pipeline::AssemblyOptions o;
  o.cardinality_seen_filter_bits = 1u << 12;
  pipeline::Assembly a(o, pipeline::PipelineConfig{nullptr, nullptr, &redactor});
  core::ManualClock clock;
  // Two series that differ only in a dropped identifier label: merged into one output.
  std::string raw = testing::serialize(testing::makeRequest(
      {testing::makeSeries({{"__name__", "orders_total"}, {"client", "joao@example.com"}, {"order_id", "1"}},
                           {{1000, 1.0}}),
       testing::makeSeries({{"__name__", "orders_total"}, {"client", "joao@example.com"}, {"order_id", "2"}},
                           {{1000, 2.0}})}));
  codec::SeriesBatch batch;
  REQUIRE(codec::decodeWriteRequest(raw, {}, batch).ok());
  auto state = a.writeState();
  CHECK(pipeline::processBatch(a.pipeline, batch, rules.current(), state, clock, false) != pipeline::Outcome::kUnchanged);
  CHECK(batch.liveSeries() == 0);  // both went to the merge engine

  auto bodies = a.emitRequests(clock.nowMillis(), codec::WireProtocol::kV1);
  REQUIRE(bodies.size() == 1);
  std::string plain;
  REQUIRE(codec::decompress(*bodies[0], {}, plain).ok());
  CHECK(plain.find("joao@example.com") == std::string::npos);
  codec::SeriesBatch out;
  REQUIRE(codec::decodeWriteRequest(plain, {}, out).ok());
  REQUIRE(out.series.size() == 1);
  auto labels = out.labelsOf(out.series[0]);
  REQUIRE(labels.size() == 2);
  CHECK(labels[1].name == "client");
  CHECK(pipeline::sanitize::Redactor::isToken(labels[1].value));
  REQUIRE(out.samplesOf(out.series[0]).size() == 1);
  CHECK(out.samplesOf(out.series[0])[0].value == 3.0);
}
