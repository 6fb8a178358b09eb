#include "pipeline/merge/merge_stage.h"

#include <doctest/doctest.h>

#include <map>

#include "codec/decode.h"
#include "codec/histogram.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/merge/emitter.h"
#include "pipeline/merge/merge_state.h"
#include "pipeline/relabel/relabel_stage.h"
#include "rules/loader.h"
#include "codec/snappy_codec.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
using testing::makeSeries;

namespace {

// relabel -> merge over real decoded requests, then emit and decode what
// would be sent upstream.
struct Chain {
  std::shared_ptr<const rules::RuleSet> rules;
  TypeTable types;
  DecisionCache cache{1000};
  merge::MergeState state{merge::Config{}};
  core::ManualClock clock;
  RelabelStage relabel{nullptr};
  MergeStage merge_stage{nullptr};

  explicit Chain(const std::string& yaml) {
    auto r = rules::parseRules(yaml, "t.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
  }
  size_t forwarded(const prometheus::WriteRequest& req) {
    std::string raw = testing::serialize(req);
    codec::SeriesBatch b;
    REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
    types.observe(b);
    StageContext ctx{clock, 1, &cache, false, rules.get(), &types, &state};
    relabel.process(b, ctx);
    merge_stage.process(b, ctx);
    return b.liveSeries();
  }
  std::map<std::string, std::vector<codec::NativeHistogram>> histograms;  // filled by emit()
  // Emits and decodes the upstream requests: labels string -> samples.
  std::map<std::string, std::vector<codec::Sample>> emit() {
    histograms.clear();
    std::vector<merge::MergeState::Emitted> out;
    state.emit(clock.nowMillis(), out);
    std::map<std::string, std::vector<codec::Sample>> got;
    for (const auto& body : merge::encodeEmitted(out, 2)) {
      std::string plain;
      REQUIRE(codec::decompress(*body, {}, plain).ok());
      codec::SeriesBatch b;
      auto st = codec::decodeWriteRequest(plain, {}, b);
      REQUIRE_MESSAGE(st.ok(), st.error());
      for (const auto& s : b.series) {
        std::string key;
        for (const auto& l : b.labelsOf(s)) key += std::string(l.name) + "=" + std::string(l.value) + ",";
        for (const auto& smp : b.samplesOf(s)) got[key].push_back(smp);
        for (const auto& h : b.histogramsOf(s)) {
          auto d = codec::decodeHistogram(h);
          REQUIRE_MESSAGE(d.ok(), d.error());
          histograms[key].push_back(std::move(d).value());
        }
      }
    }
    return got;
  }
};

}  // namespace

TEST_CASE("dropping order_id merges churning counters into one monotonic counter") {
  Chain c("rules:\n  - {match: {metric: orders_total}, action: drop_label, labels: [order_id]}\n");
  int64_t t = 1'700'000'000'000;
  // Scrape 1: three orders; scrape 2: three new orders, the old ones gone.
  CHECK(c.forwarded(testing::makeRequest({
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "a"}}, {{t, 1}}),
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "b"}}, {{t, 1}}),
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "c"}}, {{t, 1}}),
            makeSeries({{"__name__", "up"}, {"job", "x"}}, {{t, 1}}),
        })) == 1);  // only `up` is forwarded as is
  auto first = c.emit();
  REQUIRE(first.size() == 1);
  const std::string key = "__name__=orders_total,env=prod,";
  REQUIRE(first[key].size() == 1);
  CHECK(first[key][0].value == 3);
  CHECK(first[key][0].timestamp == t);

  c.forwarded(testing::makeRequest({
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "d"}}, {{t + 15000, 1}}),
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "e"}}, {{t + 15000, 1}}),
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "f"}}, {{t + 15000, 1}}),
  }));
  auto second = c.emit();
  REQUIRE(second[key].size() == 1);
  CHECK(second[key][0].value == 6);  // 3 + 3 new ids: no double count, no reset
  CHECK(second[key][0].timestamp == t + 15000);

  // A sender retry of the same request changes nothing.
  c.forwarded(testing::makeRequest({
      makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "d"}}, {{t + 15000, 1}}),
  }));
  CHECK(c.emit().empty());
}

TEST_CASE("once a family is merged, its unchanged series go through the merge engine too") {
  Chain c("rules:\n  - {match: {metric: orders_total}, action: drop_label, labels: [order_id]}\n");
  int64_t t = 1'700'000'000'000;
  // The same output labels from a series without order_id and one with it:
  // forwarding the first raw would collide with the merged output.
  CHECK(c.forwarded(testing::makeRequest({
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}}, {{t, 5}}),
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}, {"order_id", "a"}}, {{t, 1}}),
        })) == 0);
  auto got = c.emit();
  CHECK(got["__name__=orders_total,env=prod,"].at(0).value == 6);
  // Later requests: the family stays merged even without any order_id.
  CHECK(c.forwarded(testing::makeRequest({
            makeSeries({{"__name__", "orders_total"}, {"env", "prod"}}, {{t + 15000, 7}}),
        })) == 0);
  CHECK(c.emit()["__name__=orders_total,env=prod,"].at(0).value == 8);
  // Other families are untouched.
  CHECK(c.forwarded(testing::makeRequest({makeSeries({{"__name__", "up"}}, {{t, 1}})})) == 1);
}

TEST_CASE("a histogram family merges bucket by bucket") {
  Chain c("rules:\n  - {match: {metric: rpc_seconds}, action: drop_label, labels: [pod]}\n");
  int64_t t = 1'700'000'000'000;
  auto bucket = [&](const char* pod, const char* le, double v) {
    return makeSeries({{"__name__", "rpc_seconds_bucket"}, {"le", le}, {"pod", pod}}, {{t, v}});
  };
  c.forwarded(testing::makeRequest({bucket("a", "0.1", 1), bucket("a", "+Inf", 2), bucket("b", "0.1", 3),
                                    bucket("b", "+Inf", 5),
                                    makeSeries({{"__name__", "rpc_seconds_count"}, {"pod", "a"}}, {{t, 2}}),
                                    makeSeries({{"__name__", "rpc_seconds_count"}, {"pod", "b"}}, {{t, 5}})}));
  auto got = c.emit();
  CHECK(got["__name__=rpc_seconds_bucket,le=0.1,"].at(0).value == 4);
  CHECK(got["__name__=rpc_seconds_bucket,le=+Inf,"].at(0).value == 7);
  CHECK(got["__name__=rpc_seconds_count,"].at(0).value == 7);
}

TEST_CASE("summaries: _sum and _count merge as counters, rewritten quantiles are dropped") {
  Chain c("rules:\n  - {match: {metric: lat}, action: drop_label, labels: [pod]}\n");
  int64_t t = 1'700'000'000'000;
  size_t forwarded = c.forwarded(testing::makeRequest({
      makeSeries({{"__name__", "lat"}, {"pod", "a"}, {"quantile", "0.9"}}, {{t, 0.3}}),
      makeSeries({{"__name__", "lat"}, {"quantile", "0.9"}}, {{t, 0.2}}),  // untouched by the rule
      makeSeries({{"__name__", "lat_count"}, {"pod", "a"}}, {{t, 10}}),
      makeSeries({{"__name__", "lat_count"}, {"pod", "b"}}, {{t, 5}}),
  }));
  CHECK(forwarded == 1);  // only the untouched quantile series
  auto got = c.emit();
  CHECK(got.size() == 1);
  CHECK(got["__name__=lat_count,"].at(0).value == 15);
}

TEST_CASE("gauges use the rule's function and keep the metric name") {
  Chain c(R"(
rules:
  - match: {metric: process_cpu_percent}
    action: drop_label
    labels: [pid]
    merge: {gauge: max, quantiles: [0.5]}
)");
  int64_t t = 1'700'000'000'000;
  c.forwarded(testing::makeRequest({
      makeSeries({{"__name__", "process_cpu_percent"}, {"pid", "1"}}, {{t, 15.3}}),
      makeSeries({{"__name__", "process_cpu_percent"}, {"pid", "2"}}, {{t, 12.1}}),
      makeSeries({{"__name__", "process_cpu_percent"}, {"pid", "3"}}, {{t, 18.7}}),
  }));
  auto got = c.emit();
  CHECK(got["__name__=process_cpu_percent,"].at(0).value == doctest::Approx(18.7));
  CHECK(got["__name__=process_cpu_percent,quantile=0.5,"].at(0).value == doctest::Approx(15.3));
}

TEST_CASE("native histograms of a merged family merge bucket by bucket") {
  Chain c("rules:\n  - {match: {metric: rpc_duration_seconds}, action: drop_label, labels: [pod]}\n");
  int64_t t = 1'700'000'000'000;
  auto native = [&](const char* pod, int64_t ts, std::vector<int64_t> deltas) {
    auto s = makeSeries({{"__name__", "rpc_duration_seconds"}, {"pod", pod}}, {});
    auto* h = s.add_histograms();
    int64_t n = 0, abs = 0;
    for (int64_t d : deltas) n += (abs += d);
    h->set_count_int(static_cast<uint64_t>(n));
    h->set_sum(static_cast<double>(n));
    h->set_schema(0);
    auto* span = h->add_positive_spans();
    span->set_offset(0);
    span->set_length(static_cast<uint32_t>(deltas.size()));
    for (int64_t d : deltas) h->add_positive_deltas(d);
    h->set_timestamp(ts);
    return s;
  };
  CHECK(c.forwarded(testing::makeRequest({native("a", t, {1, 1}), native("b", t, {3, -1})})) == 0);
  auto got = c.emit();
  CHECK(got.empty());  // no float samples
  const std::string key = "__name__=rpc_duration_seconds,";
  REQUIRE(c.histograms[key].size() == 1);
  CHECK(c.histograms[key][0].positive == codec::HistogramBuckets{{0, 4}, {1, 4}});
  CHECK(c.histograms[key][0].count == 8);

  // Pod a restarts (its counts go down), pod b goes on: no reset in the output.
  c.forwarded(testing::makeRequest({native("a", t + 15000, {1}), native("b", t + 15000, {4, -1})}));
  c.emit();
  REQUIRE(c.histograms[key].size() == 1);
  CHECK(c.histograms[key][0].positive == codec::HistogramBuckets{{0, 6}, {1, 5}});
  CHECK(c.histograms[key][0].count == 11);
}
