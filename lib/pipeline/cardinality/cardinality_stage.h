#pragma once
// Cardinality stage: observes each label set once per sub-window into the
// CardinalityState (passed in the context, never held here), then applies the
// family's decisions: drop a label, normalize its values, or fold values beyond
// the top K into `__other__`. Rewritten series are routed to the merge engine
// (Series::merge), so series made identical merge type-correctly. Under
// --dry-run or `mode: observe` decisions are taken and reported, never applied.
// Runs after the rule stages (explicit rules win) and before merge.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

// Bounded: no label per user metric or label name (those are in /api/v1/stats).
struct CardinalityMetrics {
  explicit CardinalityMetrics(prometheus::Registry& registry);
  prometheus::Counter& rewritten_series;   // series rewritten by a decision (per request)
  prometheus::Counter& rewritten_samples;
  prometheus::Counter& would_rewrite_series;  // decisions not enforced (dry-run / observe)
  prometheus::Counter& observed_label_sets;   // label sets new to the sub-window
  prometheus::Gauge& families;
  prometheus::Gauge& memory_bytes;
  prometheus::Gauge& untracked_families;
  prometheus::Gauge& evicted_families;
  prometheus::Gauge& labels_drop;
  prometheus::Gauge& labels_normalize;
  prometheus::Gauge& labels_fold;
};

class CardinalityStage final : public Stage {
 public:
  explicit CardinalityStage(CardinalityMetrics* metrics) : metrics_(metrics) {}
  std::string_view name() const override { return "cardinality"; }
  Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const override;

 private:
  CardinalityMetrics* metrics_;
};

}  // namespace cardinal::pipeline
