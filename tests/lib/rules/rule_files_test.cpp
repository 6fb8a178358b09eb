#include "rules/rule_files.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using cardinal::rules::loadRuleFiles;

namespace {
std::string writeFile(const std::string& name, const std::string& text) {
  std::string path = "/tmp/cardinal_rules_test_" + name;
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("rule files are checked with file:line messages") {
  auto good = writeFile("good.yaml", "# comment\nrules: []\n");
  auto r = loadRuleFiles({good});
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(r->files.size() == 1);

  auto bad_yaml = writeFile("bad.yaml", "rules: [\n  - a: b\n  c\n");
  r = loadRuleFiles({good, bad_yaml});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().rfind(bad_yaml + ":", 0) == 0);

  auto unknown = writeFile("unknown.yaml", "rules: []\nlimits: 3\n");
  r = loadRuleFiles({unknown});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == unknown + ":2: unknown key \"limits\"");

  auto with_rules = writeFile("actions.yaml", "rules:\n  - match: foo\n");
  r = loadRuleFiles({with_rules});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find(with_rules + ":2: rule actions are not supported") == 0);

  r = loadRuleFiles({"/nonexistent/rules.yaml"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "/nonexistent/rules.yaml: cannot read file");

  auto shipped = loadRuleFiles({std::string(CARDINAL_SOURCE_DIR) + "/rules/default.yaml"});
  CHECK_MESSAGE(shipped.ok(), (shipped.ok() ? "" : shipped.error()));
  for (const auto& p : {good, bad_yaml, unknown, with_rules}) std::remove(p.c_str());
}
