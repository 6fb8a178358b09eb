#include "pipeline/pipeline.h"

namespace cardinal::pipeline {

std::vector<std::unique_ptr<Stage>> buildStages(const PipelineConfig& /*config*/) { return {}; }

Outcome Pipeline::run(codec::SeriesBatch& batch, StageContext& ctx) const {
  Outcome overall = Outcome::kUnchanged;
  for (const auto& stage : stages_) {
    Outcome o = stage->process(batch, ctx);
    if (o == Outcome::kDropped && batch.liveSeries() == 0 && batch.metadata.empty()) return Outcome::kDropped;
    if (o != Outcome::kUnchanged) overall = Outcome::kModified;
  }
  return overall;
}

}  // namespace cardinal::pipeline
