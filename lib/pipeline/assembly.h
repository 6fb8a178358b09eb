#pragma once
// The proxy's processing as app/main.cpp assembles it, in one place so the
// pipeline fuzz target (tests/fuzz/pipeline) runs exactly what production runs:
// the stages (buildStages), the decision cache, the type table, the merge and
// cardinality states built from flag-level options, the write path's step
// over one decoded batch (processBatch, used by server::WriteHandler), and
// the merge engine's emission into upstream request bodies (emitRequests).
//
// An Assembly owns its states; the caller owns the metrics and the redactor
// named in the PipelineConfig, and keeps them alive as long as the Assembly.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec/batch.h"
#include "codec/protocol.h"
#include "core/clock.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/merge/merge_state.h"
#include "pipeline/pipeline.h"
#include "rules/rules_manager.h"

namespace cardinal::pipeline {

// The flags that shape the processing state (defaults: the flags' defaults).
struct AssemblyOptions {
  bool dry_run = false;
  size_t cache_series = 1'000'000;
  size_t cache_plan_bytes = DecisionCache::kDefaultPlanBytes;
  // Merge engine.
  size_t merge_max_inputs = 5'000'000;
  size_t merge_max_outputs = 1'000'000;
  std::chrono::milliseconds merge_stale_after{5 * 60'000};
  // Cardinality engine.
  bool cardinality_enabled = true;
  std::chrono::milliseconds cardinality_window{3'600'000};
  size_t cardinality_sub_windows = 12;
  size_t cardinality_identifier_limit = 100;
  size_t cardinality_enum_limit = 2000;
  size_t cardinality_max_series = 50'000;
  size_t cardinality_max_families = 20'000;
  size_t cardinality_max_labels = 32;
  size_t cardinality_max_memory = size_t{512} << 20;
  std::chrono::milliseconds cardinality_release_hold{600'000};
  // Not a flag: bits of each of the two "seen this sub-window" filters
  // (2 MiB each by default); the fuzz target shrinks it.
  size_t cardinality_seen_filter_bits = cardinality::Config{}.seen_filter_bits;
};

merge::Config mergeConfig(const AssemblyOptions& o);
cardinality::Config cardinalityConfig(const AssemblyOptions& o);

// The mutable state one write request's pipeline run touches.
struct WriteState {
  TypeTable& types;
  DecisionCache& cache;
  merge::MergeState* merge = nullptr;                  // null: no merge engine (tests of other parts)
  cardinality::CardinalityState* cardinality = nullptr;  // null: --cardinality.enabled=false
};

// The write path's step over one decoded, validated batch: learns family
// types from it (metadata, `_bucket`/`{quantile}` siblings), then runs the
// stages on the rule snapshot the request started with (none when
// `run_stages` is false: the codec-only benchmark baseline).
Outcome processBatch(const Pipeline& pipeline, codec::SeriesBatch& batch, const rules::RulesManager::Snapshot& rules,
                     WriteState& state, const core::Clock& clock, bool dry_run, bool run_stages = true);
// processBatch's second step alone (the stages), for a request whose parts
// all learned their types first (server/request_split.h).
Outcome runStages(const Pipeline& pipeline, codec::SeriesBatch& batch, const rules::RulesManager::Snapshot& rules,
                  WriteState& state, const core::Clock& clock, bool dry_run);

// Series per merged-output request body.
inline constexpr size_t kMergedSeriesPerRequest = 2000;

class Assembly {
 public:
  // `stages`: the metrics and redactor of the production pipeline; the
  // explain pipeline gets the same redactor and no metrics.
  Assembly(const AssemblyOptions& options, const PipelineConfig& stages);
  Assembly(const Assembly&) = delete;
  Assembly& operator=(const Assembly&) = delete;

  WriteState writeState() {
    return {types, cache, &merge_state, options_.cardinality_enabled ? &cardinality_state : nullptr};
  }
  // Merged outputs due at `now_ms`, encoded in `protocol`, snappy-compressed.
  std::vector<std::shared_ptr<const std::string>> emitRequests(int64_t now_ms, codec::WireProtocol protocol);
  const AssemblyOptions& options() const { return options_; }

 private:
  AssemblyOptions options_;

 public:
  Pipeline pipeline;
  Pipeline explain_pipeline;  // /api/v1/stats/explain: the same stages, counting nothing
  DecisionCache cache;
  TypeTable types;
  merge::MergeState merge_state;
  cardinality::CardinalityState cardinality_state;
};

}  // namespace cardinal::pipeline
