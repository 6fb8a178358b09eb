#include "pipeline/rule_match.h"

#include "pipeline/decision_cache.h"

#include <array>
#include <string>
#include <unordered_map>

#include "core/hash.h"

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

LabelRules labelRules(const rules::RuleSet& rs, std::string_view label) {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return core::hashBytes(v); }
  };
  // A direct-mapped front (label names are few and short: one compare of the
  // name on a hit), backed by a map of every name seen under this rule set.
  struct Front {
    std::string name;
    LabelRules rules;
    bool used = false;
  };
  struct Memo {
    uint64_t instance = 0;
    std::array<Front, 256> front;
    std::unordered_map<std::string, LabelRules, Hash, std::equal_to<>> by_name;
  };
  thread_local Memo memo;
  if (memo.instance != rs.instance) {
    memo.by_name.clear();
    for (auto& f : memo.front) f.used = false;
    memo.instance = rs.instance;
  }
  // Slot from the length and the first and last bytes: no full hash per call.
  uint64_t h = label.size() * 0x9e3779b97f4a7c15ULL;
  if (!label.empty()) h ^= (uint64_t(uint8_t(label.front())) << 8 | uint8_t(label.back())) * 0xff51afd7ed558ccdULL;
  if (label.size() > 2) h ^= uint64_t(uint8_t(label[label.size() / 2])) * 0xc4ceb9fe1a85ec53ULL;
  Front& f = memo.front[(h >> 32) & 255];
  if (f.used && f.name == label) return f.rules;
  LabelRules out;
  if (auto it = memo.by_name.find(label); it != memo.by_name.end()) {
    out = it->second;
  } else {
    out.is_protected = rs.isProtected(label);
    for (size_t i = 0; i < rs.rules.size() && i < 64; ++i)
      if (rs.rules[i].namesLabel(label)) out.mask |= uint64_t{1} << i;
    if (memo.by_name.size() >= 100'000) memo.by_name.clear();  // bounded: label names are few
    memo.by_name.emplace(std::string(label), out);
  }
  if (label.size() <= 64) {  // keep the front small and its strings allocation-free once warm
    f.name.assign(label);
    f.rules = out;
    f.used = true;
  }
  return out;
}

const FamilyInfo& FamilyMemo::resolve(const codec::Series& s, std::span<const core::LabelView> labels) {
  shape_ = seriesShape(s, labels);
  const std::string_view name = shape_.name;
  // Slot by length and the last bytes (names of one family differ there:
  // _bucket/_sum/_count); cheaper than hashing the whole name per series.
  uint64_t h = name.size();
  if (name.size() >= 8) h ^= core::detail::read64(name.data() + name.size() - 8) * core::detail::kS0;
  else if (!name.empty()) h ^= uint64_t(uint8_t(name.back())) * core::detail::kS1 + uint8_t(name.front());
  h = core::mix64(h ^ (shape_.has_le ? 1 : 0) ^ (shape_.has_quantile ? 2 : 0));
  Slot& slot = slots_[h % kSlots];
  if (!(slot.used && slot.has_le == shape_.has_le && slot.has_quantile == shape_.has_quantile &&
        slot.name == name)) {
    slot.used = true;
    slot.name = name;
    slot.has_le = shape_.has_le;
    slot.has_quantile = shape_.has_quantile;
    slot.info = ctx_.types ? ctx_.types->resolve(name, shape_.has_le, shape_.has_quantile) : FamilyInfo{name};
    slot.rules.reset();
    slot.merged_known = false;
  }
  current_ = &slot;
  info_ = slot.info;
  // Re-point the view at this series' name (same bytes, this series' storage).
  info_.family = name.substr(0, slot.info.family.size());
  return info_;
}

const FamilyRules& FamilyMemo::rules(const rules::RuleSet& rs) {
  if (!current_->rules) current_->rules.emplace(rs, current_->info.family, ctx_);
  return *current_->rules;
}

bool FamilyMemo::merged() {
  if (!current_->merged_known) {
    current_->merged = ctx_.types && ctx_.types->isMerged(current_->info.family, ctx_.ruleset_generation);
    current_->merged_known = true;
  }
  return current_->merged;
}

void FamilyMemo::invalidateMerged() {
  for (auto& s : slots_) s.merged_known = false;
}

}  // namespace cardinal::pipeline
