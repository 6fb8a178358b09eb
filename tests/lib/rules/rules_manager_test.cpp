#include "rules/rules_manager.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include <prometheus/registry.h>

using namespace cardinal::rules;

TEST_CASE("reload swaps in a new generation; a broken file changes nothing but the reload metric") {
  std::string path = "/tmp/cardinal_rules_manager_test.yaml";
  std::ofstream(path) << "rules:\n  - {action: drop, match: {metric: a}}\n";
  prometheus::Registry registry;
  RulesMetrics metrics(registry);
  RulesManager m({path}, &metrics);
  REQUIRE(m.reload().ok());
  auto first = m.current();
  CHECK(first.generation == 1);
  CHECK(first.rules->rules.size() == 1);
  CHECK(metrics.last_reload_successful.Value() == 1);
  double stamp = metrics.last_reload_success_timestamp.Value();
  CHECK(stamp > 0);

  std::ofstream(path) << "rules:\n  - {action: drop, match: {metric: a}}\n  - {action: nonsense}\n";
  auto st = m.reload();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == path + ":3: unknown action \"nonsense\" (keep, drop, drop_label, replace, redact, normalize, cardinality)");
  CHECK(m.current().generation == 1);  // the old set stays
  CHECK(m.current().rules == first.rules);
  CHECK(metrics.last_reload_successful.Value() == 0);
  CHECK(metrics.last_reload_success_timestamp.Value() == stamp);

  std::ofstream(path) << "rules:\n  - {action: drop, match: {metric: a}}\n  - {action: drop, match: {metric: b}}\n";
  REQUIRE(m.reload().ok());
  CHECK(m.current().generation == 2);
  CHECK(m.current().rules->rules.size() == 2);
  CHECK(metrics.last_reload_successful.Value() == 1);
  // A request that started on the first snapshot still holds it.
  CHECK(first.rules->rules.size() == 1);
  std::remove(path.c_str());
}
