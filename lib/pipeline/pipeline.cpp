#include "pipeline/pipeline.h"

#include "pipeline/cardinality/cardinality_stage.h"
#include "pipeline/merge/merge_stage.h"
#include "pipeline/normalize/normalize_stage.h"
#include "pipeline/sanitize/sanitize_stage.h"
#include "pipeline/relabel/relabel_stage.h"

namespace cardinal::pipeline {

std::vector<std::unique_ptr<Stage>> buildStages(const PipelineConfig& config) {
  std::vector<std::unique_ptr<Stage>> stages;
  // Normalize before sanitize: a secret inside a URL path, SQL text or file
  // path is templated or cut away with its query string, and what remains is
  // checked by the detectors (an IP in a URL's host still gets the value
  // hashed). The other way round, the normalizers would rewrite hash tokens.
  stages.push_back(std::make_unique<NormalizeStage>(config.normalize_metrics));
  if (config.redactor) stages.push_back(std::make_unique<SanitizeStage>(config.redactor, config.sanitize_metrics));
  stages.push_back(std::make_unique<RelabelStage>(config.relabel_metrics));
  // Automatic decisions after the rules (explicit rules win), before merge
  // (which collapses what they made identical). A no-op without a state.
  stages.push_back(std::make_unique<CardinalityStage>(config.cardinality_metrics));
  stages.push_back(std::make_unique<MergeStage>(config.merge_metrics));
  return stages;
}

Outcome Pipeline::run(codec::SeriesBatch& batch, StageContext& ctx) const {
  Outcome overall = Outcome::kUnchanged;
  for (const auto& stage : stages_) {
    if (stage->process(batch, ctx) != Outcome::kUnchanged) overall = Outcome::kModified;
  }
  if (overall != Outcome::kUnchanged && !batch.series.empty() && batch.liveSeries() == 0 && batch.metadata.empty())
    return Outcome::kDropped;
  return overall;
}

void Pipeline::explain(codec::SeriesBatch& batch, StageContext& ctx,
                       const std::function<void(std::string_view, Outcome)>& after_stage) const {
  for (const auto& stage : stages_) after_stage(stage->name(), stage->process(batch, ctx));
}

}  // namespace cardinal::pipeline
