#include "rules/analyze.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <map>

#include "rules/loader.h"

using namespace cardinal::rules::analyze;
using cardinal::pipeline::normalize::Normalizer;

namespace {

std::vector<std::string> values(size_t n, const std::function<std::string(size_t)>& make) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(make(i));
  return out;
}

std::string uuid(size_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08zx-1234-4abc-8def-%012zx", i * 2654435761u % 0xffffffffu, i * 40503u);
  return buf;
}

// classifyLabel on all of `vals` (the sample is the whole list) in a family of `series` series.
LabelFinding classify(const std::string& label, const std::vector<std::string>& vals, uint64_t series,
                      const Config& cfg = {}) {
  return classifyLabel(label, spreadSample(vals, cfg.sample), vals.size(), false, series, cfg);
}

}  // namespace

TEST_CASE("analyze: identifier-shaped labels past the identifier limit are dropped") {
  SUBCASE("uuids") {
    auto f = classify("user_id", values(300, uuid), 300);
    CHECK(f.proposal == Proposal::kDropLabel);
    CHECK(f.shape_class == "identifier");
    CHECK(f.reason.find("300 distinct values") != std::string::npos);
    CHECK(f.reason.find("uuid 100%") != std::string::npos);
    CHECK(f.reason.find("identifier limit 100") != std::string::npos);
  }
  SUBCASE("emails, timestamps, pids one per series") {
    CHECK(classify("email", values(300, [](size_t i) { return "user" + std::to_string(i) + "@example.com"; }), 300)
              .proposal == Proposal::kDropLabel);
    CHECK(classify("timestamp", values(300, [](size_t i) { return "2025-08-12T10:" + std::to_string(10 + i % 50) + ":" +
                                                                    std::to_string(10 + i / 50) + ".123456Z"; }), 300)
              .proposal == Proposal::kDropLabel);
    CHECK(classify("pid", values(300, [](size_t i) { return std::to_string(20000 + i); }), 300).proposal ==
          Proposal::kDropLabel);
  }
  SUBCASE("within the limit: kept, whatever the shape") {
    auto f = classify("user_id", values(100, uuid), 100);
    CHECK(f.proposal == Proposal::kKeep);
    CHECK(f.reason.find("within the identifier limit 100") != std::string::npos);
  }
  SUBCASE("the limits come from the config") {
    Config cfg;
    cfg.identifier_limit = 500;
    CHECK(classify("user_id", values(300, uuid), 300, cfg).proposal == Proposal::kKeep);
  }
  SUBCASE("the reason never holds a value") {
    const auto vals = values(300, [](size_t i) { return "someone" + std::to_string(i) + "@example.org"; });
    auto f = classify("email", vals, 300);
    CHECK(f.reason.find("@") == std::string::npos);
    CHECK(f.reason.find("someone") == std::string::npos);
  }
}

TEST_CASE("analyze: paths, file paths and SQL get the normalizer that collapses them") {
  SUBCASE("URL paths with ids: url_path") {
    auto f = classify("path", values(300, [](size_t i) {
      return "/users/" + std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(100 + i) + "/orders/" +
             std::to_string(7 * i + 11);
    }), 300);
    REQUIRE(f.proposal == Proposal::kNormalize);
    CHECK(*f.normalizer == Normalizer::kUrlPath);
    CHECK(f.templates <= 4);  // v121 and the like are versions to url_path: kept as route words
    CHECK(f.shape_class == "templatable");
  }
  SUBCASE("file paths under /tmp: file_path") {
    auto f = classify("file_path", values(300, [](size_t i) {
      return "/tmp/upload/session_" + std::to_string(1691831294000LL + static_cast<long long>(i) * 1000) + "/file.txt";
    }), 300);
    REQUIRE(f.proposal == Proposal::kNormalize);
    CHECK(*f.normalizer == Normalizer::kFilePath);
  }
  SUBCASE("SQL: sql") {
    auto f = classify("query", values(300, [](size_t i) {
      return "SELECT * FROM orders WHERE id = " + std::to_string(10000 + 13 * i);
    }), 300);
    REQUIRE(f.proposal == Proposal::kNormalize);
    CHECK(*f.normalizer == Normalizer::kSql);
    CHECK(f.reason.find("normalizer sql") != std::string::npos);
  }
  SUBCASE("paths that are ids in a slash: dropped") {
    auto f = classify("ref", values(300, [](size_t i) { return "/" + uuid(i); }), 300);
    CHECK(f.proposal == Proposal::kDropLabel);
    CHECK(f.reason.find("placeholders only") != std::string::npos);
  }
  SUBCASE("routes without ids, repeated across series: kept") {
    auto f = classify("route", values(300, [](size_t i) {
      static const char* nouns[] = {"users", "orders", "carts", "items", "payments", "invoices", "sessions",
                                    "products", "reviews", "coupons", "shipments", "returns", "accounts",
                                    "addresses", "wishlists"};
      static const char* verbs[] = {"list", "get", "create", "update", "delete", "search", "export", "import",
                                    "archive", "restore", "approve", "reject", "summary", "history", "status",
                                    "preview", "validate", "sync", "count", "batch"};
      return std::string("/api/v1/") + nouns[i % 15] + "/" + verbs[i / 15];
    }), 1200);
    CHECK(f.proposal == Proposal::kKeep);
    CHECK(f.reason.find("no normalizer collapses") != std::string::npos);
  }
}

TEST_CASE("analyze: word-like labels: top_k past the enumerated limit, a limit when one per series") {
  SUBCASE("many words, repeated: top_k") {
    auto f = classify("customer", values(2500, [](size_t i) {
      std::string s = "customer";
      for (size_t k = i; ; k /= 26) { s += static_cast<char>('a' + k % 26); if (k < 26) break; }
      return s;
    }), 10000);
    REQUIRE(f.proposal == Proposal::kTopK);
    CHECK(f.limit == 50);
    CHECK(f.shape_class == "enumerated");
  }
  SUBCASE("host names, one per series: limit") {
    auto g = classify("host", values(400, [](size_t i) { return "web" + std::to_string(i) + ".prod"; }), 420);
    REQUIRE(g.proposal == Proposal::kLimit);
    CHECK(g.limit == 100);
    CHECK(g.unique_ratio > 0.9);
  }
  SUBCASE("countries shared by many series: kept") {
    auto f = classify("country", values(200, [](size_t i) {
      return std::string{static_cast<char>('A' + i / 26), static_cast<char>('A' + i % 26)};
    }), 1200);
    CHECK(f.proposal == Proposal::kKeep);
  }
  SUBCASE("small numbers shared by many series are enumerations") {
    auto f = classify("shard", values(128, [](size_t i) { return std::to_string(i); }), 1200);
    CHECK(f.proposal == Proposal::kKeep);
    CHECK(f.shape_class == "enumerated");
  }
}

TEST_CASE("analyze: histogram and summary parts are one family; samples spread over the values") {
  const std::set<std::string, std::less<>> names = {"rpc_seconds_bucket", "rpc_seconds_sum", "rpc_seconds_count",
                                                    "api_request_count", "auth_event_count"};
  CHECK(familyOf("rpc_seconds_bucket", names) == "rpc_seconds");
  CHECK(familyOf("rpc_seconds_sum", names) == "rpc_seconds");
  CHECK(familyOf("rpc_seconds_count", names) == "rpc_seconds");
  CHECK(familyOf("api_request_count", names) == "api_request_count");  // no api_request_bucket
  CHECK(familyOf("orders_total", names) == "orders_total");
  CHECK(familyOf("_bucket", names) == "_bucket");

  std::vector<std::string> v = values(1000, [](size_t i) { return std::to_string(i); });
  auto s = spreadSample(v, 10);
  REQUIRE(s.size() == 10);
  CHECK(s.front() == "0");
  CHECK(s[5] == "500");
  CHECK(s.back() == "900");
  CHECK(spreadSample({"a", "b"}, 10).size() == 2);
}

namespace {

// A fake Prometheus API: canned answers by target; records what was asked.
struct FakeProm {
  std::map<std::string, std::vector<std::string>> values;  // label -> values (for every family)
  std::vector<std::string> asked;
  std::string tsdb = R"({"status":"success","data":{"headStats":{"numSeries":2350},
    "seriesCountByMetricName":[{"name":"checkout_request_latency_seconds","value":1000},
      {"name":"rpc_seconds_bucket","value":800},{"name":"rpc_seconds_sum","value":200},
      {"name":"rpc_seconds_count","value":200},{"name":"http_requests_total","value":150}],
    "labelValueCountByLabelName":[{"name":"user_id","value":1000},{"name":"pod","value":200}],
    "seriesCountByLabelValuePair":[{"name":"env=prod","value":2350}]}})";

  Fetch fetch() {
    return [this](const std::string& target) -> cardinal::core::Result<std::string> {
      asked.push_back(target);
      if (target.rfind("/api/v1/status/tsdb", 0) == 0) return tsdb;
      if (target.rfind("/api/v1/labels?", 0) == 0) {
        if (target.find("checkout") != std::string::npos)
          return std::string(R"({"status":"success","data":["__name__","env","instance","job","user_id"]})");
        if (target.find("rpc_seconds") != std::string::npos)
          return std::string(R"({"status":"success","data":["__name__","le","pod"]})");
        return std::string(R"({"status":"success","data":["__name__","code","method"]})");
      }
      const std::string prefix = "/api/v1/label/";
      if (target.rfind(prefix, 0) == 0) {
        const std::string label = target.substr(prefix.size(), target.find('/', prefix.size()) - prefix.size());
        std::string body = R"({"status":"success","data":[)";
        const auto& vs = values[label];
        for (size_t i = 0; i < vs.size(); ++i) body += (i ? ",\"" : "\"") + vs[i] + "\"";
        return body + "]}";
      }
      return cardinal::core::Error{"GET " + target + ": HTTP 404"};
    };
  }
};

}  // namespace

TEST_CASE("analyze: from the TSDB status to a rule file that loads") {
  FakeProm prom;
  prom.values["env"] = {"prod", "staging"};
  prom.values["user_id"] = values(1000, uuid);
  prom.values["pod"] = values(200, [](size_t i) { return uuid(5000 + i); });
  prom.values["code"] = {"200", "404", "500"};
  prom.values["method"] = {"GET", "POST"};
  Config cfg;
  cfg.top = 10;
  auto report = analyze(prom.fetch(), cfg);
  REQUIRE_MESSAGE(report.ok(), report.error());
  CHECK(report->head_series == 2350);
  REQUIRE(report->families.size() == 3);
  CHECK(report->families[0].family == "rpc_seconds");  // 1200 series over its three names
  CHECK(report->families[0].series == 1200);
  CHECK(report->families[0].metrics.size() == 3);
  CHECK(report->families[1].family == "checkout_request_latency_seconds");
  // Protected labels are never asked for.
  for (const auto& t : prom.asked) {
    CHECK(t.find("/label/instance/") == std::string::npos);
    CHECK(t.find("/label/job/") == std::string::npos);
    CHECK(t.find("/label/le/") == std::string::npos);
  }
  // The family's names are all in the match[] of its queries.
  bool asked_all = false;
  for (const auto& t : prom.asked)
    asked_all = asked_all || (t.rfind("/api/v1/label/pod/values?", 0) == 0 && t.find("rpc_seconds_sum") != std::string::npos &&
                              t.find("rpc_seconds_bucket") != std::string::npos && t.find("limit=10000") != std::string::npos);
  CHECK(asked_all);

  const std::string yaml = renderYaml(*report);
  INFO(yaml);
  auto rules = cardinal::rules::parseRules(yaml, "proposed.yaml");
  REQUIRE_MESSAGE(rules.ok(), rules.error());
  REQUIRE((*rules)->rules.size() == 2);
  CHECK((*rules)->rules[0].action == cardinal::rules::Action::kDropLabel);
  CHECK((*rules)->rules[0].metric.matches("rpc_seconds"));
  CHECK((*rules)->rules[0].namesLabel("pod"));
  CHECK((*rules)->rules[1].metric.matches("checkout_request_latency_seconds"));
  CHECK((*rules)->rules[1].namesLabel("user_id"));
  CHECK_FALSE((*rules)->rules[1].namesLabel("env"));
  // A _seconds gauge family averages; the histogram (rpc_seconds) does not get a gauge function.
  CHECK(yaml.find("merge: {gauge: avg}") != std::string::npos);
  CHECK(yaml.find("merge: {gauge: avg}") == yaml.rfind("merge: {gauge: avg}"));
  CHECK(yaml.find("merge: {gauge: avg}") > yaml.find("checkout_request_latency_seconds"));
  CHECK(yaml.find("#   http_requests_total (150 series)") != std::string::npos);
  for (const auto& v : prom.values["user_id"]) CHECK(yaml.find(v) == std::string::npos);

  const std::string text = renderText(*report);
  CHECK(text.find("user_id") != std::string::npos);
  CHECK(text.find("drop_label") != std::string::npos);
  CHECK(text.find(uuid(3)) == std::string::npos);
}

TEST_CASE("analyze: errors and empty proposals") {
  SUBCASE("the TSDB status cannot be read") {
    Fetch down = [](const std::string& t) -> cardinal::core::Result<std::string> {
      return cardinal::core::Error{"GET " + t + ": connect: Connection refused"};
    };
    auto r = analyze(down, Config{});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("/api/v1/status/tsdb") != std::string::npos);
    Fetch not_json = [](const std::string&) -> cardinal::core::Result<std::string> { return std::string("<html>"); };
    r = analyze(not_json, Config{});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("not JSON") != std::string::npos);
  }
  SUBCASE("nothing to propose: rules: [] that loads") {
    Report report;
    report.source = "http://p:9090";
    FamilyFinding f;
    f.family = "up";
    f.series = 3;
    report.families.push_back(f);
    const std::string yaml = renderYaml(report);
    CHECK(yaml.find("rules: []") != std::string::npos);
    auto rules = cardinal::rules::parseRules(yaml, "empty.yaml");
    REQUIRE_MESSAGE(rules.ok(), rules.error());
    CHECK((*rules)->rules.empty());
  }
  SUBCASE("a label whose values cannot be read is reported, not proposed") {
    FakeProm prom;
    prom.values["user_id"] = values(300, uuid);
    Fetch flaky = [&](const std::string& t) -> cardinal::core::Result<std::string> {
      if (t.find("/label/user_id/") != std::string::npos) return cardinal::core::Error{"GET " + t + ": HTTP 503: busy"};
      return prom.fetch()(t);
    };
    auto r = analyze(flaky, Config{});
    REQUIRE(r.ok());
    const auto& checkout = r->families[1];
    REQUIRE(checkout.family == "checkout_request_latency_seconds");
    bool reported = false;
    for (const auto& l : checkout.labels)
      if (l.label == "user_id") reported = l.proposal == Proposal::kKeep && l.error.find("503") != std::string::npos;
    CHECK(reported);
  }
}
