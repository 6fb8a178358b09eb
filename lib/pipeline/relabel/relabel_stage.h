#pragma once
// Relabel stage: applies the rule set's keep / drop / replace / drop_label
// rules to each series, by metric family, in the documented order
// (rules/rule_set.h). A family touched by a rewriting rule (replace or
// drop_label) is routed as a whole to the merge engine (Series::merge), since
// any rewrite can make its series identical; other series stay untouched and
// are forwarded byte for byte. Decisions for untouched and dropped series are
// cached per series; which rules match a family is cached per family.

#include <memory>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

struct RelabelMetrics {
  explicit RelabelMetrics(prometheus::Registry& registry);
  prometheus::Counter& dropped_series;          // drop rules
  prometheus::Counter& rewritten_series;        // labels changed by replace / drop_label
  prometheus::Counter& dry_run_would_change;    // --dry-run: series a rule would have changed
};

class RelabelStage final : public Stage {
 public:
  static constexpr uint32_t kSeriesCacheStage = 1;
  static constexpr uint32_t kFamilyCacheStage = 2;
  explicit RelabelStage(RelabelMetrics* metrics) : metrics_(metrics) {}
  std::string_view name() const override { return "relabel"; }
  Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const override;
  bool labelStage() const override { return true; }

 private:
  RelabelMetrics* metrics_;
};

}  // namespace cardinal::pipeline
