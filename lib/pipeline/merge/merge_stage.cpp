#include "pipeline/merge/merge_stage.h"

#include "pipeline/family.h"
#include "pipeline/rule_match.h"
#include "pipeline/merge/merge_state.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

namespace {
prometheus::Counter& counter(prometheus::Registry& r, const char* what) {
  return prometheus::BuildCounter()
      .Name("cardinal_merge_samples_total")
      .Help("Samples of series routed to the merge engine, by what happened to them.")
      .Register(r)
      .Add({{"result", what}});
}
}  // namespace

MergeStageMetrics::MergeStageMetrics(prometheus::Registry& r)
    : absorbed_series(prometheus::BuildCounter()
                          .Name("cardinal_merge_input_series_total")
                          .Help("Input series absorbed by the merge engine (per request).")
                          .Register(r)
                          .Add({})),
      dropped_quantiles(prometheus::BuildCounter()
                            .Name("cardinal_merge_dropped_quantile_series_total")
                            .Help("Rewritten summary {quantile} series, dropped because quantiles cannot be merged.")
                            .Register(r)
                            .Add({})),
      absorbed_samples(counter(r, "absorbed")),
      duplicates(counter(r, "duplicate")),
      out_of_order(counter(r, "out_of_order")),
      over_cap(counter(r, "over_cap")),
      nan(counter(r, "not_a_value")),
      // Samples the merge engine refused (counted by MergeState::AddResult::refused): a native
      // histogram whose output holds float samples or the other way round, custom buckets whose
      // bounds differ from the output's, an invalid native histogram. The member's name predates
      // native histogram merging.
      refused(counter(r, "refused")),
      state_outputs(prometheus::BuildGauge()
                        .Name("cardinal_merge_outputs")
                        .Help("Merged output series held by the merge engine (as of the last emit).")
                        .Register(r)
                        .Add({})),
      state_inputs(prometheus::BuildGauge()
                       .Name("cardinal_merge_inputs")
                       .Help("Live input series held by the merge engine (as of the last emit).")
                       .Register(r)
                       .Add({})),
      state_tombstones(prometheus::BuildGauge()
                           .Name("cardinal_merge_tombstones")
                           .Help("Retired input series the merge engine still remembers (as of the last emit).")
                           .Register(r)
                           .Add({})) {}

Outcome MergeStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  if (!ctx.merge || !ctx.rules) return Outcome::kUnchanged;
  if (ctx.explain) {  // say what would happen, touch no state
    FamilyMemo families(ctx);
    for (const auto& s : batch.series) {
      if (s.dropped) continue;
      families.resolve(s, batch.labelsOf(s));
      const bool merged = s.merge || families.merged();
      ctx.explain->push_back(merged ? "merge: the family is merged; the output series is emitted by the merge engine "
                                      "every --aggregation.interval, type-correctly"
                                    : "merge: not merged; forwarded as is");
    }
    return Outcome::kUnchanged;
  }
  bool any = false;
  const int64_t now = ctx.clock.nowMillis();
  // Options and the type hint come from the first matching rule (file order)
  // that gives them, so one family always merges one way: looked up once per
  // run of series of one family.
  FamilyMemo families(ctx);
  uint64_t absorbed_series = 0;
  static const merge::Options kDefaults;
  const merge::Options* opts = &kDefaults;
  int rule_type = -1;
  std::string_view opts_family;
  bool opts_valid = false;
  // Float samples go to the merge state in one call at the end (addMany: one
  // lock per shard), then native histograms (a series with both: floats first, as always).
  thread_local std::vector<merge::MergeState::AddItem> items;
  thread_local std::vector<const codec::Series*> with_histograms;
  items.clear();
  with_histograms.clear();
  // Summed over the pass and added to the counters once at the end (a
  // prometheus-cpp increment is a compare-and-swap on a line both I/O threads
  // write; a replayed request has a duplicate for every series).
  merge::AddResult totals;
  // Absorbs series `s` (its family just resolved by `families`) into the merge state.
  auto absorb = [&](codec::Series& s, const FamilyInfo& info) {
    const SeriesShape& shape = families.shape();
    if (!opts_valid || opts_family != info.family) {
      const FamilyRules& fr = families.rules(*ctx.rules);
      opts = &kDefaults;
      rule_type = -1;
      bool have_opts = false;
      fr.forEach([&](size_t i) {
        const auto& r = ctx.rules->rules[i];
        if (!have_opts && r.has_merge) {
          opts = &r.merge;
          have_opts = true;
        }
        if (rule_type < 0 && r.type) rule_type = *r.type == rules::TypeHint::kCounter ? 1 : 0;
        return !(have_opts && rule_type >= 0);
      });
      opts_family = info.family;
      opts_valid = true;
    }
    // The type decides the arithmetic: metadata, then naming, then the rule's `type`, then gauge.
    Role role = ctx.types ? (rule_type < 0 ? info.role
                                           : ctx.types->resolve(shape.name, shape.has_le, shape.has_quantile, rule_type).role)
                          : (rule_type == 1 ? Role::kCounter : Role::kGauge);
    if (role == Role::kSummaryQuantile) {
      // Quantiles of different series cannot be combined: a rewritten one is
      // dropped (its family's _sum and _count are merged); an untouched one
      // is forwarded as is, since no other series can now share its labels.
      s.merge = false;
      if (s.changed) {
        s.dropped = true;
        any = true;
        if (metrics_) metrics_->dropped_quantiles.Increment();
      }
      return;
    }
    auto kind = role == Role::kCounter ? merge::Kind::kCounter : merge::Kind::kGauge;
    if (s.sample_count)
      items.push_back({s.input_hash, batch.labelsOf(s), s.hash, kind, opts, batch.samplesOf(s)});
    if (s.histogram_count) with_histograms.push_back(&s);
    ++absorbed_series;  // counted once per pass (below): one atomic add per counter, not per series
    s.dropped = true;  // absorbed: the emitter forwards the merged result
    any = true;
  };
  // A family in which any series was collapsed by a rewrite is merged as a
  // whole from then on (sticky per rule-set generation), so no raw series can
  // collide with a merged one. Two passes: the series a stage routed here
  // (marking their families merged), then the others of merged families.
  for (auto& s : batch.series) {
    if (!s.merge || s.dropped) continue;
    const FamilyInfo& info = families.resolve(s, batch.labelsOf(s));
    if (ctx.types && !families.merged()) {
      ctx.types->markMerged(info.family, ctx.ruleset_generation);
      families.invalidateMerged();
    }
    absorb(s, info);
  }
  if (ctx.types && ctx.types->mergedFamilies() != 0) {
    for (auto& s : batch.series) {
      if (s.merge || s.dropped) continue;
      const FamilyInfo& info = families.resolve(s, batch.labelsOf(s));
      if (!families.merged()) continue;
      s.merge = true;
      absorb(s, info);
    }
  }
  if (!items.empty()) totals += ctx.merge->addMany(items, now);
  for (const codec::Series* s : with_histograms)  // their kind comes from their reset hint
    totals += ctx.merge->addHistograms(s->input_hash, batch.labelsOf(*s), s->hash, batch.histogramsOf(*s), now);
  if (metrics_) {
    auto add = [](prometheus::Counter& c, size_t n) {
      if (n) c.Increment(static_cast<double>(n));
    };
    add(metrics_->duplicates, totals.duplicates);
    add(metrics_->out_of_order, totals.out_of_order);
    add(metrics_->over_cap, totals.over_cap);
    add(metrics_->nan, totals.nan);
    add(metrics_->refused, totals.refused);
    if (absorbed_series) {
      metrics_->absorbed_series.Increment(static_cast<double>(absorbed_series));
      metrics_->absorbed_samples.Increment(static_cast<double>(totals.accepted + totals.stale_markers));
    }
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
