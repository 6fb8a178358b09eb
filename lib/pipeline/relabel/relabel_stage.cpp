#include "pipeline/relabel/relabel_stage.h"

#include <algorithm>
#include <string>
#include <vector>

#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/rule_match.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

RelabelMetrics::RelabelMetrics(prometheus::Registry& r)
    : dropped_series(prometheus::BuildCounter()
                         .Name("cardinal_relabel_series_total")
                         .Help("Series acted on by rules, by action.")
                         .Register(r)
                         .Add({{"action", "drop"}})),
      rewritten_series(prometheus::BuildCounter().Name("cardinal_relabel_series_total").Register(r).Add({{"action", "rewrite"}})),
      dry_run_would_change(prometheus::BuildCounter()
                               .Name("cardinal_relabel_series_total")
                               .Register(r)
                               .Add({{"action", "dry_run_would_change"}})) {}

namespace {

using codec::LabelView;
using rules::Action;

enum CachedAction : uint32_t { kUntouched = 0, kDropSeries = 1 };

// Expands $1, ${1}, ${name} in `rep` from the regex's groups.
void expand(const rules::Rule& r, const re2::StringPiece* groups, int ngroups, std::string& out) {
  const std::string& rep = r.replacement;
  out.clear();
  for (size_t i = 0; i < rep.size(); ++i) {
    if (rep[i] == '$' && i + 1 < rep.size() && rep[i + 1] == '$') {  // "$$" is a literal "$", as in Prometheus
      out += '$';
      ++i;
      continue;
    }
    auto ref = rep[i] == '$' ? rules::scanGroupRef(rep, i, *r.value_regex) : std::nullopt;
    if (!ref) {
      out += rep[i];
      continue;
    }
    const int idx = ref->group;
    if (idx >= 0 && idx < ngroups && groups[idx].data() != nullptr) out.append(groups[idx].data(), groups[idx].size());
    i = ref->end - 1;
  }
}

void setLabel(std::vector<LabelView>& labels, std::string_view name, std::string_view value) {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const LabelView& l, std::string_view n) { return l.name < n; });
  if (it != labels.end() && it->name == name) {
    if (value.empty()) labels.erase(it);
    else it->value = value;
  } else if (!value.empty()) {
    labels.insert(it, LabelView{name, value});
  }
}

}  // namespace

Outcome RelabelStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  const rules::RuleSet* rs = ctx.rules;
  if (!rs || rs->rules.empty() || !ctx.types) return Outcome::kUnchanged;
  // Family resolution can change as metadata arrives: key cached decisions on both.
  const uint64_t generation = core::hashCombine(ctx.ruleset_generation, ctx.types->version());
  bool any = false;
  std::vector<LabelView> scratch;
  std::string value;
  std::vector<re2::StringPiece> groups;
  FamilyMemo families(ctx);

  for (size_t si = 0; si < batch.series.size(); ++si) {
    codec::Series& s = batch.series[si];
    if (s.dropped || s.planned) continue;
    // A `drop` decision: applied, or only counted under --dry-run.
    auto dropSeries = [&] {
      if (ctx.dry_run) {
        if (metrics_) metrics_->dry_run_would_change.Increment();
        return;
      }
      s.dropped = true;
      any = true;
      if (metrics_) countSeries(ctx, si, metrics_->dropped_series);
    };
    if (ctx.cache) {
      if (auto d = ctx.cache->find(s.hash, generation, kSeriesCacheStage)) {
        if (d->action == kUntouched) continue;
        if (d->action == kDropSeries) {
          dropSeries();
          continue;
        }
      }
    }
    auto labels = batch.labelsOf(s);
    families.resolve(s, labels);
    const FamilyRules& family_rules = families.rules(*rs);
    auto remember = [&](uint32_t action) {
      if (ctx.cache) ctx.cache->put(s.hash, generation, kSeriesCacheStage, {kSeriesCacheStage, action, 0});
    };
    if (family_rules.none() && !s.merge) {
      remember(kUntouched);
      continue;
    }

    bool exempt = false, drop = false, rewriting = false;
    family_rules.forEach([&](size_t i) {
      const auto& r = rs->rules[i];
      if (r.action == Action::kKeep && r.labels.empty() && !r.label_regex) exempt = true;
      if (r.action == Action::kDrop) drop = true;
      if (r.action == Action::kReplace || r.action == Action::kDropLabel) rewriting = true;
      return true;
    });
    if (exempt || (!drop && !rewriting)) {
      if (!s.merge) remember(kUntouched);  // a series an earlier stage rewrote is never cached as untouched
      continue;
    }
    if (drop) {
      remember(kDropSeries);
      dropSeries();
      continue;
    }

    // A rewriting family: replace rules in order, then drop_label.
    scratch.assign(labels.begin(), labels.end());
    family_rules.forEach([&](size_t i) {
      const auto& r = rs->rules[i];
      if (r.action != Action::kReplace || rs->isProtected(r.target_label)) return true;
      std::string_view src;
      for (const auto& l : scratch)
        if (l.name == r.source_label) src = l.value;
      int ngroups = 1 + r.value_regex->NumberOfCapturingGroups();
      groups.assign(static_cast<size_t>(ngroups), re2::StringPiece());
      if (!r.value_regex->Match(re2::StringPiece(src.data(), src.size()), 0, src.size(), RE2::ANCHOR_BOTH,
                                groups.data(), ngroups))
        return true;
      expand(r, groups.data(), ngroups, value);
      std::string_view target = r.target_label;
      for (const auto& l : scratch)
        if (l.name == target) target = l.name;  // prefer a view into the request over the rule's string
      setLabel(scratch, target, value.empty() ? std::string_view() : batch.intern(value));
      return true;
    });
    // Per label name, the rules naming it come from a per-thread memo (no RE2 per series).
    auto names = [&](const LabelRules& lr, size_t i, std::string_view label) {
      return i < 64 ? lr.names(i) : rs->rules[i].namesLabel(label);
    };
    auto droppedByRule = [&](std::string_view label) {
      const LabelRules lr = labelRules(*rs, label);
      if (lr.is_protected) return false;
      bool dropped = false, kept = false;
      family_rules.forEach(  // the rules of this family naming this label, in file order; a keep ends it
          [&](size_t i) {
            if (!names(lr, i, label)) return true;
            if (rs->rules[i].action == Action::kKeep) {
              kept = true;
              return false;
            }
            if (rs->rules[i].action == Action::kDropLabel) dropped = true;
            return true;
          },
          lr.mask);
      return dropped && !kept;
    };
    scratch.erase(std::remove_if(scratch.begin(), scratch.end(), [&](const LabelView& l) { return droppedByRule(l.name); }),
                  scratch.end());
    bool labels_changed = !std::equal(scratch.begin(), scratch.end(), labels.begin(), labels.end());

    if (ctx.dry_run) {
      if (labels_changed && metrics_) metrics_->dry_run_would_change.Increment();
      continue;
    }
    if (!labels_changed) {  // the merge stage routes it if its family is merged
      if (!s.merge) remember(kUntouched);
      continue;
    }
    batch.setLabels(s, scratch);
    s.merge = true;
    any = true;
    if (metrics_) countSeries(ctx, si, metrics_->rewritten_series);
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
