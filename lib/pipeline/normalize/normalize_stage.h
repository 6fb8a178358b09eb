#pragma once
// Normalize stage: `normalize` rules shrink the value space of the labels
// they name (URL paths to templates, SQL to fingerprints, ids, timestamps,
// IPs, emails; pipeline/normalize/normalizers.h). Values that normalize to
// the same text make series identical, so a family with a normalize rule goes
// through the merge engine as a whole. Runs first, before sanitize: ids and
// secrets inside paths, queries and SQL are templated away (keeping the
// meaning), and sanitize then checks what is left; normalizers never see
// hash tokens. Normalizers are pure functions: nothing here logs or stores a
// value.

#include <array>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "pipeline/stage.h"

namespace cardinal::pipeline {

struct NormalizeMetrics {
  explicit NormalizeMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& normalized;  // {normalizer}
  // One child per normalizer, resolved once (no label lookup per value).
  std::array<prometheus::Counter*, 16> by_normalizer{};
};

class NormalizeStage final : public Stage {
 public:
  explicit NormalizeStage(NormalizeMetrics* metrics) : metrics_(metrics) {}
  static constexpr uint32_t kCacheStage = 5;  // decision cache: series no normalize rule changes
  std::string_view name() const override { return "normalize"; }
  Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const override;
  bool labelStage() const override { return true; }

 private:
  NormalizeMetrics* metrics_;
};

}  // namespace cardinal::pipeline
