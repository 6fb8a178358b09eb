// The built-in default rules plus the detectors, through the whole pipeline
// (sanitize -> normalize -> relabel -> merge), on every example of the seed
// document: what reaches the upstream is sanitized and normalized, series
// that became identical are merged, and well-behaved labels are untouched.
#include "rules/default_rules.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/snappy_codec.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/merge/emitter.h"
#include "pipeline/merge/merge_state.h"
#include "pipeline/pipeline.h"
#include "pipeline/sanitize/redactor.h"
#include "rules/loader.h"
#include "support/builders.h"

using namespace cardinal;
using testing::makeSeries;

namespace {

struct Upstream {
  std::map<std::string, std::vector<codec::Sample>> series;  // "name{a=b,...}" -> samples
  void add(const codec::SeriesBatch& b, const codec::Series& s) {
    std::string key;
    for (const auto& l : b.labelsOf(s)) key += std::string(l.name) + "=" + std::string(l.value) + ",";
    for (const auto& smp : b.samplesOf(s)) series[key].push_back(smp);
  }
  std::string all() const {
    std::string out;
    for (const auto& [k, v] : series) out += k + "\n";
    return out;
  }
};

struct DefaultChain {
  std::shared_ptr<const rules::RuleSet> rules;
  pipeline::sanitize::Redactor redactor{std::vector<uint8_t>(32, 7)};
  pipeline::Pipeline pipeline{pipeline::buildStages({nullptr, nullptr, &redactor, nullptr, nullptr})};
  pipeline::TypeTable types;
  pipeline::DecisionCache cache{10'000};
  pipeline::merge::MergeState state{pipeline::merge::Config{}};
  core::ManualClock clock;
  Upstream upstream;

  DefaultChain() {
    auto r = rules::parseRules(rules::kDefaultRulesYaml, "default.yaml");
    REQUIRE_MESSAGE(r.ok(), r.error());
    rules = *r;
  }
  void send(const prometheus::WriteRequest& req) {
    std::string raw = testing::serialize(req);
    codec::SeriesBatch b;
    auto st = codec::decodeWriteRequest(raw, {}, b);
    REQUIRE_MESSAGE(st.ok(), st.error());
    types.observe(b);
    pipeline::StageContext ctx{clock, 1, &cache, false, rules.get(), &types, &state};
    pipeline.run(b, ctx);
    // What the proxy forwards directly: encode and decode, as the upstream would.
    std::string enc;
    codec::encodeWriteRequest(b, enc);
    codec::SeriesBatch fwd;
    REQUIRE(codec::decodeWriteRequest(enc, {}, fwd).ok());
    for (const auto& s : fwd.series) upstream.add(fwd, s);
  }
  void emit() {
    std::vector<pipeline::merge::MergeState::Emitted> out;
    state.emit(clock.nowMillis(), out);
    for (const auto& body : pipeline::merge::encodeEmitted(out, 500)) {
      std::string plain;
      REQUIRE(codec::decompress(*body, {}, plain).ok());
      codec::SeriesBatch b;
      REQUIRE(codec::decodeWriteRequest(plain, {}, b).ok());
      for (const auto& s : b.series) upstream.add(b, s);
    }
  }
};

prometheus::WriteRequest seedRequest(int64_t t, double scale) {
  using L = testing::LabelList;
  auto s = [&](L labels, double v) {
    labels.emplace_back("env", "prod");
    labels.emplace_back("region", "us-east");
    return makeSeries(labels, {{t, v * scale}});
  };
  return testing::makeRequest({
      s({{"__name__", "checkout_request_latency_seconds"}, {"user_id", "550e8400-e29b-41d4-a716-446655440000"}}, 0.342),
      s({{"__name__", "checkout_request_latency_seconds"}, {"user_id", "c2f8b7a2-4b9e-4f7a-a98b-7e2f7b2f38c4"}}, 0.291),
      s({{"__name__", "order_payment_failures_total"}, {"order_id", "a3f5d12c-0b2a-4dc7-83e5-9f72c3a421df"}}, 1),
      s({{"__name__", "order_payment_failures_total"}, {"order_id", "91df21e1-1870-4d94-bd07-7fa6d6c7f1df"}}, 1),
      s({{"__name__", "process_cpu_percent"}, {"pid", "48291"}}, 15.3),
      s({{"__name__", "process_cpu_percent"}, {"pid", "48292"}}, 12.1),
      s({{"__name__", "temp_file_size_bytes"}, {"file_path", "/tmp/upload/session_1691831294000/file.txt"}}, 18432),
      s({{"__name__", "temp_file_size_bytes"}, {"file_path", "/tmp/upload/session_1691831295000/file.txt"}}, 10240),
      s({{"__name__", "auth_event_count"}, {"timestamp", "2025-08-12T10:03:42.123456Z"}}, 4),
      s({{"__name__", "auth_event_count"}, {"timestamp", "2025-08-12T10:03:43.123456Z"}}, 3),
      s({{"__name__", "user_login_total"}, {"email", "joao.silva@example.com"}}, 7),
      s({{"__name__", "user_login_total"}, {"email", "maria.oliveira@example.com"}}, 3),
      s({{"__name__", "api_request_count"}, {"path", "/users/abc123/orders/456"}}, 15),
      s({{"__name__", "api_request_count"}, {"path", "/users/xyz789/orders/789"}}, 23),
      s({{"__name__", "db_query_duration_seconds"}, {"query", "SELECT * FROM orders WHERE id = 12345"}}, 0.052),
      s({{"__name__", "db_query_duration_seconds"}, {"query", "SELECT * FROM orders WHERE id = 67890"}}, 0.034),
      // Well-behaved series: must arrive untouched.
      makeSeries({{"__name__", "http_requests_total"}, {"code", "404"}, {"handler", "/api/v1/users"}, {"instance", "10.0.0.7:8080"},
                  {"job", "api"}, {"method", "GET"}, {"route", "/users/{id}"}, {"status", "404"}, {"version", "1.2.3"}},
                 {{t, 10 * scale}}),
      makeSeries({{"__name__", "http_request_duration_seconds_bucket"}, {"env", "prod"}, {"le", "0.005"}, {"region", "us-east"}},
                 {{t, 3 * scale}}),
  });
}

}  // namespace

TEST_CASE("default rules: the seed's examples arrive sanitized, normalized and merged") {
  DefaultChain c;
  int64_t t = c.clock.nowMillis();
  c.send(seedRequest(t, 1));
  c.emit();
  const std::string all = c.upstream.all();
  INFO(all);
  // Nothing secret or id-like survives anywhere.
  for (const char* leaked : {"joao.silva", "maria.oliveira", "example.com", "550e8400", "a3f5d12c", "48291",
                             "1691831294000", "2025-08-12T10", "abc123", "12345"})
    CHECK_MESSAGE(all.find(leaked) == std::string::npos, leaked);

  auto& u = c.upstream.series;
  // Identifier labels dropped, values merged: latency gauges by average, others by sum, counters by increases.
  REQUIRE(u.count("__name__=checkout_request_latency_seconds,env=prod,region=us-east,"));
  CHECK(u["__name__=checkout_request_latency_seconds,env=prod,region=us-east,"].at(0).value == doctest::Approx((0.342 + 0.291) / 2));
  CHECK(u["__name__=order_payment_failures_total,env=prod,region=us-east,"].at(0).value == 2);
  CHECK(u["__name__=process_cpu_percent,env=prod,region=us-east,"].at(0).value == doctest::Approx(27.4));
  CHECK(u["__name__=auth_event_count,env=prod,region=us-east,"].at(0).value == 7);
  // Values with ids inside keep their meaning.
  CHECK(u["__name__=temp_file_size_bytes,env=prod,file_path=/tmp/upload/session_{ts}/file.txt,region=us-east,"].at(0).value == 28672);
  CHECK(u["__name__=api_request_count,env=prod,path=/users/{id}/orders/{id},region=us-east,"].at(0).value == 38);
  CHECK(u["__name__=db_query_duration_seconds,env=prod,query=SELECT * FROM orders WHERE id = ?,region=us-east,"].at(0).value ==
        doctest::Approx(0.043));
  // Emails become stable keyed tokens: one series per user, no address.
  size_t logins = 0;
  for (const auto& [k, v] : u)
    if (k.rfind("__name__=user_login_total,email=h:", 0) == 0) ++logins;
  CHECK(logins == 2);
  // Well-behaved labels are untouched, including a protected IP in `instance`.
  CHECK(u.count("__name__=http_requests_total,code=404,handler=/api/v1/users,instance=10.0.0.7:8080,job=api,method=GET,"
                "route=/users/{id},status=404,version=1.2.3,"));
  CHECK(u.count("__name__=http_request_duration_seconds_bucket,env=prod,le=0.005,region=us-east,"));
}

TEST_CASE("default rules: churning values over several requests merge into monotonic counters") {
  DefaultChain c;
  int64_t t = c.clock.nowMillis();
  for (int i = 0; i < 5; ++i) {
    prometheus::WriteRequest req;
    for (int k = 0; k < 10; ++k) {
      *req.add_timeseries() = makeSeries({{"__name__", "order_payment_failures_total"},
                                          {"order_id", "id-" + std::to_string(i) + "-" + std::to_string(k)},
                                          {"env", "prod"}},
                                         {{t + i * 15000, 1}});
    }
    c.send(req);
    c.emit();
  }
  auto& out = c.upstream.series["__name__=order_payment_failures_total,env=prod,"];
  REQUIRE(out.size() == 5);
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(out[i].value == 10.0 * static_cast<double>(i + 1));  // every new id adds its 1: no double count, no reset
    if (i) CHECK(out[i].timestamp > out[i - 1].timestamp);
  }
}
