#pragma once
// Sanitize stage: no sensitive value reaches the upstream. Runs right after
// normalize (which only templates values), for every unprotected label value
// and for exemplar labels:
//   1. `redact` rules (by family and label name) act on the named labels;
//   2. otherwise the built-in detectors (email, IPv4/6, card, JWT, secrets,
//      phone; rules/rule_set.h DetectorsConfig) decide, with cheap
//      pre-filters first.
// Methods: hash (a keyed HMAC token, stable: the same value maps to the same
// token, so no series collide and no merge is needed), mask (a fixed text:
// series may collide, so they go through the merge engine), drop_label
// (merge too) and drop_series. A series found clean is cached as clean per
// rule-set generation, so detectors run once per new series. Dry-run never
// turns redaction off.

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>

#include "pipeline/sanitize/detectors.h"
#include "pipeline/stage.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

namespace sanitize {
class Redactor;
}

struct SanitizeMetrics {
  explicit SanitizeMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& redacted;  // {source="rule|email|ipv4|...", method="hash|mask|..."}
  prometheus::Counter& exemplar_labels_redacted;
  // The child of `redacted` for a source ("rule" or a detector name) and a
  // method, resolved once and then taken from a table: counting a redaction
  // allocates nothing (Family::Add builds a label map per call).
  prometheus::Counter& counter(std::string_view source, rules::RedactMethod method);

 private:
  static constexpr size_t kSources = 1 + sanitize::kDetectorCount, kMethods = 4;
  std::array<std::array<std::atomic<prometheus::Counter*>, kMethods>, kSources> resolved_{};
};

class SanitizeStage final : public Stage {
 public:
  static constexpr uint32_t kCacheStage = 3;
  static constexpr uint32_t kTokenCacheStage = 4;
  SanitizeStage(const sanitize::Redactor* redactor, SanitizeMetrics* metrics) : redactor_(redactor), metrics_(metrics) {}
  std::string_view name() const override { return "sanitize"; }
  Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const override;
  bool labelStage() const override { return true; }

 private:
  const sanitize::Redactor* redactor_;
  SanitizeMetrics* metrics_;
};

}  // namespace cardinal::pipeline
