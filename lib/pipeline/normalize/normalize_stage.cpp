#include "pipeline/normalize/normalize_stage.h"

#include <string>
#include <vector>

#include "core/hash.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/normalize/normalizers.h"
#include "pipeline/rule_match.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

NormalizeMetrics::NormalizeMetrics(prometheus::Registry& r)
    : normalized(prometheus::BuildCounter()
                     .Name("cardinal_normalize_values_total")
                     .Help("Label values changed by normalize rules, by normalizer.")
                     .Register(r)) {
  for (int n = 0; n <= static_cast<int>(normalize::Normalizer::kAuto); ++n)
    by_normalizer[static_cast<size_t>(n)] =
        &normalized.Add({{"normalizer", std::string(normalize::normalizerName(static_cast<normalize::Normalizer>(n)))}});
}

namespace {

// Normalizers are pure functions of (normalizer, value). A series rewritten by
// a rule is not cached as a series (only untouched ones are), so its values
// would be templated again on every sample: a per-thread direct-mapped memo of
// recent values and their results makes a repeated value one hash and one
// compare. Entries keep their string capacity, so a warm memo allocates
// nothing; long values (> kMaxValue) are not kept.
class ValueMemo {
 public:
  struct Entry {
    uint64_t key = 0;
    bool used = false;
    bool changed = false;
    std::string in, out;
  };
  static constexpr size_t kSlots = 8192;
  static constexpr size_t kMaxValue = 256;

  static uint64_t keyOf(normalize::Normalizer n, std::string_view v) {
    return core::hashCombine(core::hashBytes(v), static_cast<uint64_t>(n) + 1);
  }
  Entry* find(uint64_t key, std::string_view v) {
    if (v.size() > kMaxValue) return nullptr;
    if (slots_.empty()) slots_.resize(kSlots);
    Entry& e = slots_[key & (kSlots - 1)];
    return e.used && e.key == key && e.in == v ? &e : nullptr;
  }
  void put(uint64_t key, std::string_view v, bool changed, std::string_view out) {
    if (v.size() > kMaxValue || out.size() > kMaxValue) return;
    if (slots_.empty()) slots_.resize(kSlots);
    Entry& e = slots_[key & (kSlots - 1)];
    e.used = true;
    e.key = key;
    e.changed = changed;
    e.in.assign(v);
    e.out.assign(changed ? out : std::string_view{});
  }

 private:
  std::vector<Entry> slots_;
};

// Applies normalizer `n` to `value`; true and the result in `out` when it changes.
bool normalizeMemo(normalize::Normalizer n, std::string_view value, std::string& out) {
  thread_local ValueMemo memo;
  const uint64_t key = ValueMemo::keyOf(n, value);
  if (const auto* e = memo.find(key, value)) {
    if (!e->changed) return false;
    out.assign(e->out);
    return true;
  }
  const bool changed = normalize::normalize(n, value, out);
  memo.put(key, value, changed, out);
  return changed;
}

}  // namespace

Outcome NormalizeStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  const rules::RuleSet* rs = ctx.rules;
  if (!rs || !ctx.types || !rs->hasAction(rules::Action::kNormalize)) return Outcome::kUnchanged;
  bool any = false;
  std::vector<codec::LabelView> scratch;
  std::string out;
  FamilyMemo families(ctx);
  // Series no rule changes are remembered (most series repeat every scrape);
  // the key includes the type table's version, as family resolution does.
  const uint64_t generation = core::hashCombine(ctx.ruleset_generation, ctx.types->version());
  const size_t n_rules = rs->rules.size();
  for (size_t si = 0; si < batch.series.size(); ++si) {
    codec::Series& s = batch.series[si];
    if (s.dropped || s.planned) continue;
    if (ctx.cache && ctx.cache->find(s.hash, generation, kCacheStage)) continue;
    auto labels = batch.labelsOf(s);
    families.resolve(s, labels);
    const FamilyRules& fr = families.rules(*rs);
    bool changed = false;
    if (!fr.none()) {
      scratch.assign(labels.begin(), labels.end());
      // Label by label; for each, the matching normalize rules in file order.
      for (auto& l : scratch) {
        const LabelRules lr = labelRules(*rs, l.name);
        if (lr.is_protected || (n_rules <= 64 && lr.mask == 0)) continue;
        fr.forEach(
            [&](size_t i) {
              const auto& r = rs->rules[i];
              if (r.action != rules::Action::kNormalize) return true;
              if (!(i < 64 ? lr.names(i) : r.namesLabel(l.name))) return true;
              if (!normalizeMemo(r.normalizer, l.value, out)) return true;
              l.value = batch.intern(out);
              changed = true;
              if (metrics_) {
                if (auto* c = metrics_->by_normalizer[static_cast<size_t>(r.normalizer)]) countSeries(ctx, si, *c);
              }
              return true;
            },
            lr.mask);
      }
    }
    if (!changed) {
      if (ctx.cache) ctx.cache->put(s.hash, generation, kCacheStage, {kCacheStage, 0, 0});
      continue;
    }
    if (ctx.dry_run) continue;  // dry run: decisions only; redaction (sanitize) is never dry
    // An empty value means "no label": drop it to keep labels valid.
    std::erase_if(scratch, [](const codec::LabelView& l) { return l.value.empty(); });
    batch.setLabels(s, scratch);
    s.merge = true;  // normalized values can collide: the merge stage merges the family
    any = true;
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
