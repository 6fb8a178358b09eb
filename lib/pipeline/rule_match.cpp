#include "pipeline/rule_match.h"

#include "pipeline/decision_cache.h"

namespace cardinal::pipeline {

namespace {
constexpr uint32_t kFamilyCacheStage = 2;
}

FamilyRules::FamilyRules(const rules::RuleSet& rs, std::string_view family, StageContext& ctx)
    : rs_(rs), family_(family) {
  if (rs.rules.size() > 64) {
    direct_ = true;
    return;
  }
  uint64_t key = core::hashBytes(family);
  if (ctx.cache) {
    if (auto d = ctx.cache->find(key, ctx.ruleset_generation, kFamilyCacheStage)) {
      mask_ = d->payload;
      return;
    }
  }
  for (size_t i = 0; i < rs.rules.size(); ++i)
    if (rs.rules[i].metric.matches(family)) mask_ |= uint64_t{1} << i;
  if (ctx.cache) ctx.cache->put(key, ctx.ruleset_generation, kFamilyCacheStage, {kFamilyCacheStage, 0, mask_});
}

bool FamilyRules::matches(size_t i) const {
  if (direct_) return rs_.rules[i].metric.matches(family_);
  return i < 64 && ((mask_ >> i) & 1) != 0;
}

SeriesShape seriesShape(std::span<const core::LabelView> labels) {
  SeriesShape s;
  for (const auto& l : labels) {
    if (l.name == core::kMetricNameLabel) s.name = l.value;
    else if (l.name == "le") s.has_le = true;
    else if (l.name == "quantile") s.has_quantile = true;
  }
  return s;
}

}  // namespace cardinal::pipeline
