#include "pipeline/pipeline.h"

namespace cardinal::pipeline {

std::vector<std::unique_ptr<Stage>> buildStages(const PipelineConfig& /*config*/) { return {}; }

Outcome Pipeline::run(codec::SeriesBatch& batch, StageContext& ctx) const {
  Outcome overall = Outcome::kUnchanged;
  for (const auto& stage : stages_) {
    if (stage->process(batch, ctx) != Outcome::kUnchanged) overall = Outcome::kModified;
  }
  if (overall != Outcome::kUnchanged && !batch.series.empty() && batch.liveSeries() == 0 && batch.metadata.empty())
    return Outcome::kDropped;
  return overall;
}

}  // namespace cardinal::pipeline
