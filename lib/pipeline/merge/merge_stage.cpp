#include "pipeline/merge/merge_stage.h"

#include "pipeline/family.h"
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
      absorbed_samples(counter(r, "absorbed")),
      duplicates(counter(r, "duplicate")),
      out_of_order(counter(r, "out_of_order")),
      over_cap(counter(r, "over_cap")),
      nan(counter(r, "not_a_value")),
      histograms_dropped(counter(r, "native_histogram_dropped")) {}

Outcome MergeStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  if (!ctx.merge || !ctx.rules) return Outcome::kUnchanged;
  bool any = false;
  const int64_t now = ctx.clock.nowMillis();
  for (auto& s : batch.series) {
    if (!s.merge || s.dropped) continue;
    const rules::Rule* rule =
        s.merge_rule >= 0 && static_cast<size_t>(s.merge_rule) < ctx.rules->rules.size() ? &ctx.rules->rules[static_cast<size_t>(s.merge_rule)] : nullptr;
    static const merge::Options kDefaults;
    const merge::Options& opts = rule ? rule->merge : kDefaults;
    auto kind = static_cast<Role>(s.merge_role) == Role::kCounter ? merge::Kind::kCounter : merge::Kind::kGauge;
    auto r = ctx.merge->add(s.input_hash, batch.labelsOf(s), s.hash, kind, opts, batch.samplesOf(s), now);
    if (metrics_) {
      metrics_->absorbed_series.Increment();
      metrics_->absorbed_samples.Increment(static_cast<double>(r.accepted + r.stale_markers));
      if (r.duplicates) metrics_->duplicates.Increment(static_cast<double>(r.duplicates));
      if (r.out_of_order) metrics_->out_of_order.Increment(static_cast<double>(r.out_of_order));
      if (r.over_cap) metrics_->over_cap.Increment(static_cast<double>(r.over_cap));
      if (r.nan) metrics_->nan.Increment(static_cast<double>(r.nan));
      if (s.histogram_count) metrics_->histograms_dropped.Increment(static_cast<double>(s.histogram_count));
    }
    s.dropped = true;  // absorbed: the emitter forwards the merged result
    any = true;
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
