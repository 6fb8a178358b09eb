#include "pipeline/cardinality/cardinality_stage.h"

#include <array>

#include <algorithm>
#include <optional>

#include "core/hash.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/family.h"
#include "pipeline/rule_match.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

namespace {

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Gauge& labelsWith(prometheus::Registry& r, const char* decision) {
  return prometheus::BuildGauge()
      .Name("cardinal_cardinality_labels")
      .Help("Labels of tracked families with an automatic decision, by decision (details: /api/v1/stats).")
      .Register(r)
      .Add({{"decision", decision}});
}

}  // namespace

CardinalityMetrics::CardinalityMetrics(prometheus::Registry& r)
    : rewritten_series(prometheus::BuildCounter()
                           .Name("cardinal_cardinality_series_total")
                           .Help("Series acted on by automatic cardinality decisions (per request), by result.")
                           .Register(r)
                           .Add({{"result", "rewritten"}})),
      rewritten_samples(prometheus::BuildCounter()
                            .Name("cardinal_cardinality_rewritten_samples_total")
                            .Help("Samples of series rewritten by automatic cardinality decisions.")
                            .Register(r)
                            .Add({})),
      would_rewrite_series(prometheus::BuildCounter()
                               .Name("cardinal_cardinality_series_total")
                               .Register(r)
                               .Add({{"result", "would_rewrite"}})),
      observed_label_sets(prometheus::BuildCounter()
                              .Name("cardinal_cardinality_observed_label_sets_total")
                              .Help("Label sets observed into the sketches (new to their sub-window).")
                              .Register(r)
                              .Add({})),
      families(gauge(r, "cardinal_cardinality_families", "Metric families tracked by the cardinality engine.")),
      memory_bytes(gauge(r, "cardinal_cardinality_memory_bytes", "Memory held by cardinality sketches and decisions.")),
      untracked_families(gauge(r, "cardinal_cardinality_untracked_families",
                               "New families refused at the family or memory cap (forwarded untracked).")),
      evicted_families(gauge(r, "cardinal_cardinality_evicted_families",
                             "Families evicted (idle, or least recently seen over the memory budget).")),
      labels_drop(labelsWith(r, "drop")),
      labels_normalize(labelsWith(r, "normalize")),
      labels_fold(labelsWith(r, "fold")) {}

namespace {

using cardinality::Applied;
using cardinality::DecisionKind;
using cardinality::FamilyState;
using core::LabelView;

// The rules' word on the engine for one family: explicit rules win, a `keep`
// rule without labels turns the engine off, `cardinality` rules set limits.
class RuleSettings final : public cardinality::SettingsSource {
 public:
  RuleSettings(const rules::RuleSet& rs, std::string_view family, StageContext& ctx)
      : rs_(rs), fr_(rs, family, ctx), generation_(ctx.ruleset_generation) {}
  uint64_t generation() const override { return generation_; }
  cardinality::FamilySettings family() const override {
    cardinality::FamilySettings out;
    bool have_mode = false;
    for (size_t i = 0; i < rs_.rules.size(); ++i) {
      if (!fr_.matches(i)) continue;
      const auto& r = rs_.rules[i];
      if (r.action == rules::Action::kKeep && r.labels.empty() && !r.label_regex) {
        out.mode = rules::CardinalityMode::kOff;
        return out;
      }
      if (r.action != rules::Action::kCardinality) continue;
      if (!have_mode && r.cardinality.mode) {
        out.mode = *r.cardinality.mode;
        have_mode = true;
      }
      if (!out.max_series && r.cardinality.max_series) out.max_series = r.cardinality.max_series;
    }
    return out;
  }
  cardinality::LabelSettings label(std::string_view name) const override {
    cardinality::LabelSettings out;
    if (rs_.isProtected(name)) {
      out.managed = false;
      return out;
    }
    for (size_t i = 0; i < rs_.rules.size(); ++i) {
      if (!fr_.matches(i)) continue;
      const auto& r = rs_.rules[i];
      switch (r.action) {
        case rules::Action::kCardinality: {
          const bool scoped = !r.labels.empty() || r.label_regex;
          if (scoped && !r.namesLabel(name)) break;
          if (!out.limit && r.cardinality.limit) out.limit = r.cardinality.limit;
          if (!out.top_k && r.cardinality.top_k) out.top_k = r.cardinality.top_k;
          break;
        }
        case rules::Action::kReplace:
          if (r.source_label == name || r.target_label == name) out.managed = false;
          break;
        case rules::Action::kDrop: break;
        default:
          if (r.namesLabel(name)) out.managed = false;
      }
    }
    return out;
  }

 private:
  const rules::RuleSet& rs_;
  FamilyRules fr_;
  uint64_t generation_;
};

// One identity for all parts of a family: the family name and the labels
// other than __name__, le and quantile (a histogram's buckets are one label set).
uint64_t labelSetKey(std::string_view family, std::span<const LabelView> labels) {
  uint64_t h = core::hashBytes(family);
  for (const auto& l : labels) {
    if (l.name == "__name__" || l.name == "le" || l.name == "quantile") continue;
    h = core::hashCombine(h, core::hashBytes(l.name));
    h = core::hashCombine(h, core::hashBytes(l.value));
  }
  return h;
}

constexpr std::string_view kOther = "__other__";

// Applies the decisions to a copy of `labels`; true if anything changed.
bool rewrite(const Applied& a, std::span<const LabelView> labels, std::vector<LabelView>& out,
             codec::SeriesBatch& batch, std::string& buf) {
  out.assign(labels.begin(), labels.end());
  bool changed = false;
  for (const auto& al : a.labels) {
    auto it = std::lower_bound(out.begin(), out.end(), al.name,
                               [](const LabelView& l, std::string_view n) { return l.name < n; });
    if (it == out.end() || it->name != al.name) continue;
    switch (al.kind) {
      case DecisionKind::kDrop:
        out.erase(it);
        changed = true;
        break;
      case DecisionKind::kNormalize:
        if (normalize::normalize(al.normalizer, it->value, buf)) {
          if (buf.empty()) out.erase(it);
          else it->value = batch.intern(buf);
          changed = true;
        }
        break;
      case DecisionKind::kFold:
        if (it->value != kOther && !std::binary_search(al.kept.begin(), al.kept.end(), core::hashBytes(it->value))) {
          it->value = kOther;
          changed = true;
        }
        break;
      case DecisionKind::kKeep: break;
    }
  }
  return changed;
}

}  // namespace

Outcome CardinalityStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  cardinality::CardinalityState* state = ctx.cardinality;
  if (!state || !ctx.rules || !ctx.types) return Outcome::kUnchanged;
  const int64_t now = ctx.clock.nowMillis();
  bool any = false;
  std::vector<LabelView> scratch;
  std::string buf;

  // Requests interleave a few dozen families: each family's state, settings
  // and counters are looked up once per pass and kept in a small table (the
  // last one used is tried first), counters added to the family at the end.
  struct Run {
    std::string_view family;
    std::shared_ptr<FamilyState> state;
    std::optional<RuleSettings> settings;
    // The family's decisions as this pass last read them (one lock and one
    // reference count per family and pass, not per series).
    std::shared_ptr<const Applied> applied;
    uint64_t samples_in = 0, samples_rewritten = 0, series_rewritten = 0;
  };
  std::array<Run, 16> runs;
  size_t victim = 0;
  Run* last = nullptr;
  auto flush = [](Run& run) {
    if (!run.state) return;
    run.state->samples_in.fetch_add(run.samples_in, std::memory_order_relaxed);
    if (run.series_rewritten) {
      run.state->samples_rewritten.fetch_add(run.samples_rewritten, std::memory_order_relaxed);
      run.state->series_rewritten.fetch_add(run.series_rewritten, std::memory_order_relaxed);
    }
    run.state.reset();
    run.settings.reset();
    run.applied.reset();
    run.samples_in = run.samples_rewritten = run.series_rewritten = 0;
  };
  auto runFor = [&](std::string_view family) -> Run* {
    if (last && last->family == family) return last;
    for (auto& r : runs)
      if (r.state && r.family.size() == family.size() && r.family == family) return last = &r;
    Run& r = runs[victim];
    victim = (victim + 1) % runs.size();
    flush(r);
    r.state = state->family(family, now);
    if (!r.state) return last = nullptr;  // over the family or memory cap: forwarded untracked
    r.family = r.state->name;
    return last = &r;
  };

  FamilyMemo families(ctx);
  // Counter increments, summed over the request (one atomic update each, not one per series).
  uint64_t observed = 0, would_rewrite = 0, rewritten = 0, rewritten_samples = 0;
  // The seen filter is a cache miss per series: its line for the series a few
  // ahead is fetched while this one is handled (by the label set's hash, which
  // is the filter's key for every series but histogram and summary parts).
  constexpr size_t kAhead = 4;
  for (size_t i = 0; i < batch.series.size(); ++i) {
    if (i + kAhead < batch.series.size() && !batch.series[i + kAhead].seen)
      state->prefetchSeen(batch.series[i + kAhead].hash);
    codec::Series& s = batch.series[i];
    if (s.dropped) continue;
    auto labels = batch.labelsOf(s);
    const FamilyInfo& info = families.resolve(s, labels);
    const SeriesShape& shape = families.shape();
    Run* rp = runFor(info.family);
    if (!rp) continue;
    Run& run = *rp;
    FamilyState& f = *run.state;
    const uint64_t samples = s.sample_count + s.histogram_count;
    run.samples_in += samples;
    const bool plain = !shape.has_le && !shape.has_quantile && shape.name == info.family;
    const uint64_t key = plain ? s.hash : labelSetKey(info.family, labels);

    const Applied* applied = nullptr;  // kept alive by run.applied for the pass
    bool changed = false;
    // s.seen: its plan says the filter has it in this epoch (Pipeline::runLabelStagesPlanned).
    if (!ctx.explain && !s.seen && !state->seen(key, now)) {
      if (!run.settings) run.settings.emplace(*ctx.rules, info.family, ctx);
      ++observed;
      std::lock_guard lock(f.mu);
      state->observe(f, labels, key, *run.settings, now);
      run.applied = f.applied;
      applied = run.applied.get();
      changed = !applied->labels.empty() && rewrite(*applied, labels, scratch, batch, buf);
      // The label set as it leaves (enforced or not), for the family's series limit.
      const uint64_t out_key = changed ? labelSetKey(info.family, scratch) : key;
      state->observeOutput(f, out_key, *run.settings, now);
      if (f.applied.get() != applied) {  // the series limit just decided: apply it to this series too
        run.applied = f.applied;
        applied = run.applied.get();
        changed = !applied->labels.empty() && rewrite(*applied, labels, scratch, batch, buf);
      }
    } else if (f.active.load(std::memory_order_relaxed) != 0) {
      if (!run.applied) {
        std::lock_guard lock(f.mu);
        run.applied = f.applied;
      }
      applied = run.applied.get();
      changed = rewrite(*applied, labels, scratch, batch, buf);
    }
    if (ctx.explain && applied) {
      for (const auto& al : applied->labels)
        if (std::any_of(labels.begin(), labels.end(), [&](const LabelView& l) { return l.name == al.name; }))
          ctx.explain->push_back("cardinality: label \"" + al.name + "\" " + std::string(decisionName(al.kind)) +
                                 (applied->enforce ? "" : " (not enforced: dry-run or observe mode)"));
    }
    if (!changed) continue;
    if (!applied->enforce) {
      ++would_rewrite;
      continue;
    }
    batch.setLabels(s, scratch);
    s.merge = true;
    any = true;
    run.samples_rewritten += samples;
    ++run.series_rewritten;
    ++rewritten;
    rewritten_samples += samples;
  }
  if (metrics_) {
    if (observed) metrics_->observed_label_sets.Increment(static_cast<double>(observed));
    if (would_rewrite) metrics_->would_rewrite_series.Increment(static_cast<double>(would_rewrite));
    if (rewritten) metrics_->rewritten_series.Increment(static_cast<double>(rewritten));
    if (rewritten_samples) metrics_->rewritten_samples.Increment(static_cast<double>(rewritten_samples));
  }
  for (auto& r : runs) flush(r);
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
