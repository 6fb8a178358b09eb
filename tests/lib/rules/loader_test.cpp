#include "rules/loader.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using namespace cardinal::rules;

namespace {
std::string errorOf(const std::string& yaml) {
  auto r = parseRules(yaml, "r.yaml");
  return r.ok() ? std::string("OK") : r.error();
}
}  // namespace

TEST_CASE("a complete rule file parses into compiled rules") {
  auto r = parseRules(R"(
protected_labels: [tenant]
rules:
  - name: orders without ids
    match: {metric: orders_total}
    action: drop_label
    labels: [order_id]
    type: counter
  - match: {metric_regex: "checkout_.*"}
    action: drop_label
    label_regex: "(user|session)_id"
    merge: {gauge: avg, quantiles: [0.5, 0.99]}
  - match: {metric: payments_total}
    action: keep
    labels: [order_id]
  - match: {metric_regex: "debug_.*"}
    action: drop
  - match: {metric: api_request_count}
    action: replace
    source_label: path
    regex: "/users/[^/]+/orders/[^/]+"
    replacement: "/users/{id}/orders/{id}"
)", "r.yaml");
  REQUIRE_MESSAGE(r.ok(), r.error());
  const RuleSet& rs = **r;
  REQUIRE(rs.rules.size() == 5);
  CHECK(rs.rules[0].name == "orders without ids");
  CHECK(rs.rules[0].action == Action::kDropLabel);
  CHECK(rs.rules[0].metric.matches("orders_total"));
  CHECK_FALSE(rs.rules[0].metric.matches("orders_total_x"));
  CHECK(rs.rules[0].type == TypeHint::kCounter);
  CHECK(rs.rules[1].where == "r.yaml:9");
  CHECK(rs.rules[1].metric.matches("checkout_request_latency_seconds"));
  CHECK_FALSE(rs.rules[1].metric.matches("xcheckout_a"));  // full match
  CHECK(rs.rules[1].namesLabel("user_id"));
  CHECK_FALSE(rs.rules[1].namesLabel("user_idx"));
  CHECK(rs.rules[1].merge.gauge == GaugeFn::kAvg);
  CHECK(rs.rules[1].merge.quantiles == std::vector<double>{0.5, 0.99});
  CHECK(rs.rules[4].target_label == "path");
  CHECK(rs.rules[4].replacement == "/users/{id}/orders/{id}");
  CHECK(rs.isProtected("tenant"));
  CHECK(rs.isProtected("le"));
  CHECK(rs.isProtected("__name__"));
  CHECK_FALSE(rs.isProtected("order_id"));
}

TEST_CASE("every mistake is reported with file and line") {
  CHECK(errorOf("rules:\n  - action: explode\n") ==
        "r.yaml:2: unknown action \"explode\" (keep, drop, drop_label, replace, redact, normalize, cardinality)");
  CHECK(errorOf("rules:\n  - action: drop_label\n    labels: [job]\n") ==
        "r.yaml:3: label \"job\" is protected and cannot be dropped");
  CHECK(errorOf("protected_labels: [tenant]\nrules:\n  - action: drop_label\n    labels: [tenant]\n") ==
        "r.yaml:4: label \"tenant\" is protected and cannot be dropped");
  CHECK(errorOf("rules:\n  - action: drop_label\n") == "r.yaml:2: drop_label needs \"labels\" or \"label_regex\"");
  CHECK(errorOf("rules:\n  - action: drop\n    match: {metric_regex: \"(\"}\n")
            .find("r.yaml:3: invalid regex \"(\": missing )") == 0);
  CHECK(errorOf("rules:\n  - action: replace\n") == "r.yaml:2: replace needs \"source_label\"");
  CHECK(errorOf("rules:\n  - action: replace\n    source_label: a\n    regex: \"(x)\"\n    replacement: \"$2\"\n") ==
        "r.yaml:5: replacement refers to group $2 but the regex has 1");
  // Found by the rule-loader fuzzer: a group number too large for any integer.
  CHECK(errorOf("rules:\n  - action: replace\n    source_label: a\n    regex: \"(x)\"\n    replacement: \"$2222222222222222222222\"\n") ==
        "r.yaml:5: replacement refers to group $2222222222222222222222 but the regex has 1");
  CHECK(errorOf("rules:\n  - action: replace\n    source_label: a\n    regex: \"(?P<my_id>x)\"\n    replacement: \"${my_id}-$1\"\n") == "OK");
  CHECK(errorOf("rules:\n  - action: replace\n    source_label: a\n    regex: \"(?P<my_id>x)\"\n    replacement: \"${nope}\"\n") ==
        "r.yaml:5: replacement refers to unknown group \"nope\"");
  CHECK(errorOf("rules:\n  - action: replace\n    source_label: a\n    target_label: instance\n") ==
        "r.yaml:2: label \"instance\" is protected and cannot be rewritten");
  CHECK(errorOf("rules:\n  - action: drop\n    lables: [a]\n").find("r.yaml:3: unknown key \"lables\" in rule") == 0);
  CHECK(errorOf("rules:\n  - action: drop_label\n    labels: [a]\n    merge: {gauge: median}\n") ==
        "r.yaml:4: \"gauge\" must be one of sum, avg, min, max, count, last");
  CHECK(errorOf("rules:\n  - action: drop_label\n    labels: [a]\n    merge: {quantiles: [2]}\n") ==
        "r.yaml:4: quantile must be a number in [0, 1]");
  CHECK(errorOf("rules:\n  - action: drop\n    labels: [a]\n") ==
        "r.yaml:3: \"labels\" applies to keep, drop_label, redact, normalize and cardinality only");
  CHECK(errorOf("rules: [\n").find("r.yaml:") == 0);
  CHECK(errorOf("surprise: 1\n").find("r.yaml:1: unknown key \"surprise\"") == 0);
  CHECK(errorOf("rules:\n  - action: cardinality\n") ==
        "r.yaml:2: cardinality needs at least one of mode, limit, max_series, top_k, merge");
  CHECK(errorOf("rules:\n  - action: cardinality\n    mode: maybe\n") ==
        "r.yaml:3: \"mode\" must be enforce, observe or off");
  CHECK(errorOf("rules:\n  - action: cardinality\n    limit: -3\n") == "r.yaml:3: \"limit\" must be a positive integer");
  CHECK(errorOf("rules:\n  - action: cardinality\n    top_k: 5000\n") == "r.yaml:3: \"top_k\" must be at most 1000");
  CHECK(errorOf("rules:\n  - action: drop_label\n    labels: [a]\n    max_series: 5\n") ==
        "r.yaml:4: \"max_series\" applies to cardinality only");
  CHECK(errorOf("rules:\n  - action: cardinality\n    labels: [a]\n    limit: 5\n    top_k: 3\n    max_series: 9\n"
                "    mode: observe\n    merge: {gauge: avg}\n") == "OK");
  CHECK(errorOf("") == "OK");
  CHECK(errorOf("rules: []\n") == "OK");
}

TEST_CASE("files: order kept, protected labels shared, unreadable file named") {
  std::string a = "/tmp/cardinal_loader_a.yaml", b = "/tmp/cardinal_loader_b.yaml";
  std::ofstream(a) << "protected_labels: [tenant]\nrules:\n  - {action: drop, match: {metric: x}}\n";
  std::ofstream(b) << "rules:\n  - {action: drop_label, labels: [tenant]}\n";
  auto r = loadRuleFiles({a, b});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == b + ":2: label \"tenant\" is protected and cannot be dropped");
  std::ofstream(b) << "rules:\n  - {action: drop_label, labels: [pid]}\n";
  r = loadRuleFiles({a, b});
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK((*r)->rules.size() == 2);
  CHECK((*r)->rules[1].where == b + ":2");
  CHECK(loadRuleFiles({"/nonexistent.yaml"}).error() == "/nonexistent.yaml: cannot read file");
  auto shipped = loadRuleFiles({std::string(CARDINAL_SOURCE_DIR) + "/rules/default.yaml"});
  CHECK_MESSAGE(shipped.ok(), (shipped.ok() ? "" : shipped.error()));
  std::remove(a.c_str());
  std::remove(b.c_str());
}
