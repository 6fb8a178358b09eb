#pragma once
// Runs an ordered list of stages over one batch. Built once per rule-set
// generation and shared read-only by all I/O threads.

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

struct RelabelMetrics;
struct MergeStageMetrics;
struct SanitizeMetrics;
struct NormalizeMetrics;
struct CardinalityMetrics;
namespace sanitize {
class Redactor;
}

struct PipelineConfig {
  RelabelMetrics* relabel_metrics = nullptr;
  MergeStageMetrics* merge_metrics = nullptr;
  const sanitize::Redactor* redactor = nullptr;  // null: no sanitize stage (tests of other stages)
  SanitizeMetrics* sanitize_metrics = nullptr;
  NormalizeMetrics* normalize_metrics = nullptr;
  CardinalityMetrics* cardinality_metrics = nullptr;
};

// The one place that decides which stages run, in which order:
// normalize -> sanitize -> relabel (rules) -> cardinality -> merge.
std::vector<std::unique_ptr<Stage>> buildStages(const PipelineConfig& config);

class Pipeline {
 public:
  explicit Pipeline(std::vector<std::unique_ptr<Stage>> stages);
  // kDropped if every series ended up dropped, kModified if any changed.
  // With a decision cache (and neither dry-run nor explain), the leading
  // label stages are replayed per series from cached plans (plan_cache.h)
  // and run only on label sets without one, whose plans are then recorded.
  Outcome run(codec::SeriesBatch& batch, StageContext& ctx) const;
  size_t size() const { return stages_.size(); }
  // Runs the stages one by one, calling `after_stage` after each (for
  // /api/v1/stats/explain, with StageContext::explain set).
  void explain(codec::SeriesBatch& batch, StageContext& ctx,
               const std::function<void(std::string_view, Outcome)>& after_stage) const;

 private:
  // Runs stages_[0, label_stages_) with plans; true if any series changed.
  bool runLabelStagesPlanned(codec::SeriesBatch& batch, StageContext& ctx) const;

  std::vector<std::unique_ptr<Stage>> stages_;
  size_t label_stages_ = 0;  // the leading stages whose labelStage() is true
};

}  // namespace cardinal::pipeline
