#pragma once
// Shared by the rule-driven stages (sanitize, normalize, relabel): which rules
// of the snapshot apply to a metric family. Metric matchers (exact or RE2) run
// once per family and rule-set generation; the answer is a bitmask cached in
// the DecisionCache. Rule sets with more than 64 rules are matched directly.

#include <cstdint>
#include <string_view>

#include "pipeline/stage.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

class FamilyRules {
 public:
  FamilyRules(const rules::RuleSet& rs, std::string_view family, StageContext& ctx);
  bool matches(size_t rule_index) const;
  bool none() const { return !direct_ && mask_ == 0; }

 private:
  const rules::RuleSet& rs_;
  std::string_view family_;
  uint64_t mask_ = 0;
  bool direct_ = false;
};

// Scans a series' labels for the metric name and the `le`/`quantile` markers
// the family resolution needs.
struct SeriesShape {
  std::string_view name;
  bool has_le = false;
  bool has_quantile = false;
};
SeriesShape seriesShape(std::span<const core::LabelView> labels);

}  // namespace cardinal::pipeline
