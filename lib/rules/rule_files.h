#pragma once
// Rule files: YAML documents named by --rules.file. This version validates
// their shape (a map with a `rules` list) so that a file written for a later
// version is refused loudly instead of ignored; the rule actions, the merge
// engine and hot reload of a compiled RuleSet arrive with the rules work.

#include <string>
#include <vector>

#include "core/result.h"

namespace cardinal::rules {

struct RuleFileSet {
  std::vector<std::string> files;
  size_t rule_count = 0;
};

// Reads and checks every file; the first problem is reported as "file:line: what".
core::Result<RuleFileSet> loadRuleFiles(const std::vector<std::string>& paths);

}  // namespace cardinal::rules
