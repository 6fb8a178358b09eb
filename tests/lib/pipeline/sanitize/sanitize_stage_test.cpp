#include "pipeline/sanitize/sanitize_stage.h"

#include <doctest/doctest.h>

#include "codec/decode.h"
#include "codec/encode.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/sanitize/redactor.h"
#include "rules/loader.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
using testing::makeSeries;

namespace {

struct Fixture {
  std::shared_ptr<const rules::RuleSet> rules;
  sanitize::Redactor redactor{std::vector<uint8_t>(32, 3)};
  SanitizeStage stage{&redactor, nullptr};
  TypeTable types;
  DecisionCache cache{1000};
  core::ManualClock clock;
  std::string raw;
  codec::SeriesBatch batch;

  explicit Fixture(const std::string& yaml) {
    auto r = rules::parseRules(yaml, "t.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
  }
  prometheus::WriteRequest run(const prometheus::WriteRequest& req) {
    raw = testing::serialize(req);
    REQUIRE(codec::decodeWriteRequest(raw, {}, batch).ok());
    StageContext ctx{clock, 1, &cache, false, rules.get(), &types, nullptr};
    stage.process(batch, ctx);
    std::string out;
    codec::encodeWriteRequest(batch, out);
    prometheus::WriteRequest back;
    REQUIRE(back.ParseFromString(out));
    return back;
  }
  std::string token(std::string_view v) {
    std::string t;
    redactor.token(v, t);
    return t;
  }
};

std::string valueOf(const prometheus::TimeSeries& ts, const std::string& name) {
  for (const auto& l : ts.labels())
    if (l.name() == name) return l.value();
  return "<absent>";
}

}  // namespace

TEST_CASE("detectors hash values in labels, exemplars and metadata; protected labels stay") {
  Fixture f("rules: []\n");
  auto req = testing::makeRequest({makeSeries(
      {{"__name__", "user_login_total"}, {"email", "joao.silva@example.com"}, {"instance", "10.0.0.7:8080"}, {"method", "GET"}})});
  auto* e = req.mutable_timeseries(0)->add_exemplars();
  auto* el = e->add_labels();
  el->set_name("user");
  el->set_value("maria@example.com");
  e->set_value(1);
  e->set_timestamp(1000);
  auto* md = req.add_metadata();
  md->set_type(prometheus::MetricMetadata::COUNTER);
  md->set_metric_family_name("user_login_total");
  md->set_help("Logins; questions to admin@example.com");
  auto back = f.run(req);
  const auto& ts = back.timeseries(0);
  CHECK(valueOf(ts, "email") == f.token("joao.silva@example.com"));
  CHECK(valueOf(ts, "instance") == "10.0.0.7:8080");  // protected
  CHECK(valueOf(ts, "method") == "GET");
  CHECK(ts.exemplars(0).labels(0).value() == f.token("maria@example.com"));
  CHECK(back.metadata(0).help() == f.token("Logins; questions to admin@example.com"));
  CHECK(back.metadata(0).metric_family_name() == "user_login_total");
  CHECK(back.metadata(0).type() == prometheus::MetricMetadata::COUNTER);
  CHECK_FALSE(f.batch.series[0].merge);  // tokens are distinct per value: no merge needed
}

TEST_CASE("a label whose name the detectors flag is dropped and its series merged (fuzz finding)") {
  // Remote-write allows any UTF-8 label name: an address as a name cannot be
  // hashed in place. Found by tests/fuzz/pipeline (regression input:
  // tests/fuzz/pipeline/corpus/regression-label-name-ipv4).
  Fixture f("rules: []\n");
  auto back = f.run(testing::makeRequest({makeSeries(
      {{"10.14.0.14:8443", "us-east"}, {"__name__", "user_login_total"}, {"method", "GET"}, {"ana@example.com", "x"}})}));
  const auto& ts = back.timeseries(0);
  CHECK(ts.labels_size() == 2);
  CHECK(valueOf(ts, "10.14.0.14:8443") == "<absent>");
  CHECK(valueOf(ts, "ana@example.com") == "<absent>");
  CHECK(valueOf(ts, "method") == "GET");
  CHECK(f.batch.series[0].merge);  // series that differed only there now collide

  SUBCASE("with the detectors disabled, names are left alone") {
    Fixture off("detectors: {disabled: [email, ipv4, ipv6, card, jwt, secret, phone]}\nrules: []\n");
    auto kept = off.run(testing::makeRequest({makeSeries({{"__name__", "up"}, {"10.14.0.14:8443", "a"}})}));
    CHECK(valueOf(kept.timeseries(0), "10.14.0.14:8443") == "a");
  }
}

TEST_CASE("redact rules: mask merges, drop_series drops, rules win over detectors") {
  Fixture f(R"(
detectors: {disabled: [email]}
rules:
  - {match: {metric: logins_total}, action: redact, labels: [user], method: mask, mask: "someone"}
  - {action: redact, labels: [debug_token], method: drop_series}
)");
  auto back = f.run(testing::makeRequest({
      makeSeries({{"__name__", "logins_total"}, {"user", "ana"}}),
      makeSeries({{"__name__", "x"}, {"debug_token", "abc"}}),
      makeSeries({{"__name__", "y"}, {"email", "pedro@example.com"}}),  // email detector disabled
  }));
  REQUIRE(back.timeseries_size() == 2);
  CHECK(valueOf(back.timeseries(0), "user") == "someone");
  CHECK(f.batch.series[0].merge);  // masked values can collide
  CHECK(f.batch.series[1].dropped);
  CHECK(valueOf(back.timeseries(1), "email") == "pedro@example.com");
}

TEST_CASE("tokens of repeated sensitive values come from the cache, equal to fresh ones") {
  Fixture f("rules: []\n");
  auto req = testing::makeRequest({makeSeries({{"__name__", "a"}, {"email", "ana@example.com"}}),
                                   makeSeries({{"__name__", "b"}, {"email", "ana@example.com"}})});
  auto first = f.run(req);
  size_t entries = f.cache.size();
  auto second = f.run(req);
  CHECK(f.cache.size() == entries);  // nothing new computed
  CHECK(valueOf(second.timeseries(0), "email") == f.token("ana@example.com"));
  CHECK(valueOf(second.timeseries(1), "email") == valueOf(first.timeseries(0), "email"));
}
