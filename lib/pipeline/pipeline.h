#pragma once
// Runs an ordered list of stages over one batch. Built once per rule-set
// generation and shared read-only by all I/O threads.

#include <memory>
#include <vector>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

struct RelabelMetrics;
struct MergeStageMetrics;
struct SanitizeMetrics;
struct NormalizeMetrics;
namespace sanitize {
class Redactor;
}

struct PipelineConfig {
  RelabelMetrics* relabel_metrics = nullptr;
  MergeStageMetrics* merge_metrics = nullptr;
  const sanitize::Redactor* redactor = nullptr;  // null: no sanitize stage (tests of other stages)
  SanitizeMetrics* sanitize_metrics = nullptr;
  NormalizeMetrics* normalize_metrics = nullptr;
};

// The one place that decides which stages run, in which order:
// normalize -> sanitize -> relabel (rules) -> merge. The cardinality stage
// comes before merge when it lands.
std::vector<std::unique_ptr<Stage>> buildStages(const PipelineConfig& config);

class Pipeline {
 public:
  explicit Pipeline(std::vector<std::unique_ptr<Stage>> stages) : stages_(std::move(stages)) {}
  // kDropped if every series ended up dropped, kModified if any changed.
  Outcome run(codec::SeriesBatch& batch, StageContext& ctx) const;
  size_t size() const { return stages_.size(); }

 private:
  std::vector<std::unique_ptr<Stage>> stages_;
};

}  // namespace cardinal::pipeline
