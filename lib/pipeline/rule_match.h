#pragma once
// Shared by the rule-driven stages (sanitize, normalize, relabel): which rules
// of the snapshot apply to a metric family. Metric matchers (exact or RE2) run
// once per family and rule-set generation; the answer is a bitmask cached in
// the DecisionCache. Rule sets with more than 64 rules are matched directly.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "pipeline/family.h"

#include "pipeline/stage.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

class FamilyRules {
 public:
  FamilyRules(const rules::RuleSet& rs, std::string_view family, StageContext& ctx);
  bool matches(size_t rule_index) const;
  bool none() const { return !direct_ && mask_ == 0; }
  // Calls f(i) for each rule i matching the family, in file order, while f
  // returns true. With `only` (a mask over the first 64 rules, e.g. a label's
  // LabelRules::mask) just those; rules past 64 are matched directly and
  // `only` does not apply to them (callers check them themselves).
  template <class F>
  void forEach(F&& f, uint64_t only = ~uint64_t{0}) const {
    if (!direct_) {
      for (uint64_t m = mask_ & only; m != 0; m &= m - 1)
        if (!f(static_cast<size_t>(__builtin_ctzll(m)))) return;
      return;
    }
    for (size_t i = 0; i < rs_.rules.size(); ++i)
      if ((i >= 64 || ((only >> i) & 1) != 0) && matches(i) && !f(i)) return;
  }

 private:
  const rules::RuleSet& rs_;
  std::string_view family_;
  uint64_t mask_ = 0;
  bool direct_ = false;
};

// Which of the first 64 rules name a label (labels / label_regex), and whether
// it is protected: computed once per label name and rule set per thread, so
// the RE2 matches and the protected-list search do not run per series. With
// more than 64 rules, `mask` is unused and callers ask Rule::namesLabel.
struct LabelRules {
  uint64_t mask = 0;
  bool is_protected = false;
  bool names(size_t rule_index) const { return rule_index < 64 && ((mask >> rule_index) & 1) != 0; }
};
LabelRules labelRules(const rules::RuleSet& rs, std::string_view label);

// Resolves families for one stage's pass over a batch. Requests interleave a
// few dozen families, so the answers (type-table lookup under a shared lock,
// the rule mask, the merged-family check) are kept per family in a small
// direct-mapped table for the pass: each runs once per family and pass, not
// once per series. Name views point into the batch, stable for the pass.
class FamilyMemo {
 public:
  explicit FamilyMemo(StageContext& ctx) : ctx_(ctx) {}
  // The series' shape (from the decoder when it noted it, else from `labels`,
  // the series' current labels) and family (FamilyInfo::family views into the
  // series' name).
  const FamilyInfo& resolve(const codec::Series& s, std::span<const core::LabelView> labels);
  const SeriesShape& shape() const { return shape_; }
  // The rules matching the last resolved family.
  const FamilyRules& rules(const rules::RuleSet& rs);
  // TypeTable::isMerged for the last resolved family under ctx.ruleset_generation.
  bool merged();
  // Forget the merged answers (after the stage marked a family merged).
  void invalidateMerged();

 private:
  struct Slot {
    std::string_view name;  // the metric name the slot was filled for
    bool has_le = false;
    bool has_quantile = false;
    bool used = false;
    FamilyInfo info;
    std::optional<FamilyRules> rules;
    bool merged_known = false;
    bool merged = false;
  };
  static constexpr size_t kSlots = 64;

  StageContext& ctx_;
  SeriesShape shape_;
  FamilyInfo info_;
  Slot* current_ = nullptr;
  std::array<Slot, kSlots> slots_;
};

}  // namespace cardinal::pipeline
