#pragma once
// Rule-file loader: YAML -> validated, compiled RuleSet. Every problem is
// reported as "file:line: what", promtool-style; nothing is half-applied.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "rules/rule_set.h"

namespace cardinal::rules {

// Loads and merges several files (rules keep file order, then rule order).
core::Result<std::shared_ptr<const RuleSet>> loadRuleFiles(const std::vector<std::string>& paths);

// Parses one document from memory; `name` is used in messages (also the fuzz entry point).
core::Result<std::shared_ptr<const RuleSet>> parseRules(std::string_view yaml, const std::string& name);

}  // namespace cardinal::rules
