#include "pipeline/normalize/normalize_stage.h"

#include <string>
#include <vector>

#include "pipeline/family.h"
#include "pipeline/normalize/normalizers.h"
#include "pipeline/rule_match.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

NormalizeMetrics::NormalizeMetrics(prometheus::Registry& r)
    : normalized(prometheus::BuildCounter()
                     .Name("cardinal_normalize_values_total")
                     .Help("Label values changed by normalize rules, by normalizer.")
                     .Register(r)) {}

Outcome NormalizeStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  const rules::RuleSet* rs = ctx.rules;
  if (!rs || !ctx.types || !rs->hasAction(rules::Action::kNormalize)) return Outcome::kUnchanged;
  bool any = false;
  std::vector<codec::LabelView> scratch;
  std::string out;
  FamilyMemo families(ctx);
  for (auto& s : batch.series) {
    if (s.dropped) continue;
    auto labels = batch.labelsOf(s);
    families.resolve(labels);
    const FamilyRules& fr = families.rules(*rs);
    if (fr.none()) continue;
    bool changed = false;
    scratch.assign(labels.begin(), labels.end());
    for (size_t i = 0; i < rs->rules.size(); ++i) {
      const auto& r = rs->rules[i];
      if (r.action != rules::Action::kNormalize || !fr.matches(i)) continue;
      for (auto& l : scratch) {
        const LabelRules lr = labelRules(*rs, l.name);
        if (lr.is_protected || !(i < 64 ? lr.names(i) : r.namesLabel(l.name))) continue;
        if (!normalize::normalize(r.normalizer, l.value, out)) continue;
        l.value = batch.intern(out);
        changed = true;
        if (metrics_) metrics_->normalized.Add({{"normalizer", std::string(normalize::normalizerName(r.normalizer))}}).Increment();
      }
    }
    if (!changed || ctx.dry_run) continue;  // dry run: decisions only; redaction (sanitize) is never dry
    // An empty value means "no label": drop it to keep labels valid.
    std::erase_if(scratch, [](const codec::LabelView& l) { return l.value.empty(); });
    batch.setLabels(s, scratch);
    s.merge = true;  // normalized values can collide: the merge stage merges the family
    any = true;
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
