#pragma once
// Merge stage: absorbs every series the relabel stage routed to the merge
// engine (Series::merge) into the MergeState passed in the context, and
// removes it from the forwarded batch. Merged output series are emitted later,
// every --aggregation.interval, by the emitter (emitter.h), never inline: two
// inputs of one output in one request must become one sample, not two.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

struct MergeStageMetrics {
  explicit MergeStageMetrics(prometheus::Registry& registry);
  prometheus::Counter& absorbed_series;
  prometheus::Counter& dropped_quantiles;   // rewritten summary {quantile} series: cannot be merged
  prometheus::Counter& absorbed_samples;
  prometheus::Counter& duplicates;      // sender retries, ignored
  prometheus::Counter& out_of_order;    // ignored
  prometheus::Counter& over_cap;        // refused at the memory caps (under-count, never double count)
  prometheus::Counter& nan;             // NaN/Inf samples of counters, not values
  prometheus::Counter& refused;  // samples the engine refused (float/histogram mismatch, custom bounds)
  // State size, set by the owner of the MergeState after each emit (the stage never walks it).
  prometheus::Gauge& state_outputs;     // cardinal_merge_outputs
  prometheus::Gauge& state_inputs;      // cardinal_merge_inputs (live)
  prometheus::Gauge& state_tombstones;  // cardinal_merge_tombstones (retired inputs remembered)
};

class MergeStage final : public Stage {
 public:
  explicit MergeStage(MergeStageMetrics* metrics) : metrics_(metrics) {}
  std::string_view name() const override { return "merge"; }
  Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const override;

 private:
  MergeStageMetrics* metrics_;
};

}  // namespace cardinal::pipeline
