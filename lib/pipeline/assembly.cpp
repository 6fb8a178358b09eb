#include "pipeline/assembly.h"

#include <algorithm>

#include "pipeline/merge/emitter.h"

namespace cardinal::pipeline {

merge::Config mergeConfig(const AssemblyOptions& o) {
  merge::Config c;
  c.max_inputs = o.merge_max_inputs;
  c.max_outputs = o.merge_max_outputs;
  c.stale_after_ms = o.merge_stale_after.count();
  return c;
}

cardinality::Config cardinalityConfig(const AssemblyOptions& o) {
  cardinality::Config c;
  c.window.sub_windows = static_cast<uint32_t>(std::clamp<size_t>(o.cardinality_sub_windows, 1, 1024));
  c.window.sub_window_ms = std::max<int64_t>(1000, o.cardinality_window.count() / c.window.sub_windows);
  c.identifier_limit = o.cardinality_identifier_limit;
  c.enum_limit = o.cardinality_enum_limit;
  c.max_series = o.cardinality_max_series;
  c.max_families = o.cardinality_max_families;
  c.max_labels_per_family = o.cardinality_max_labels;
  c.max_memory_bytes = o.cardinality_max_memory;
  c.release_hold_ms = o.cardinality_release_hold.count();
  c.dry_run = o.dry_run;
  c.seen_filter_bits = o.cardinality_seen_filter_bits;
  return c;
}

Outcome processBatch(const Pipeline& pipeline, codec::SeriesBatch& batch, const rules::RulesManager::Snapshot& rules,
                     WriteState& state, const core::Clock& clock, bool dry_run, bool run_stages) {
  state.types.observe(batch);
  if (!run_stages) return Outcome::kUnchanged;
  return runStages(pipeline, batch, rules, state, clock, dry_run);
}

Outcome runStages(const Pipeline& pipeline, codec::SeriesBatch& batch, const rules::RulesManager::Snapshot& rules,
                  WriteState& state, const core::Clock& clock, bool dry_run) {
  StageContext ctx{clock,          rules.generation, &state.cache, dry_run, rules.rules.get(), &state.types,
                   state.merge,    state.cardinality};
  return pipeline.run(batch, ctx);
}

namespace {
PipelineConfig explainConfig(const PipelineConfig& stages) {
  PipelineConfig c;
  c.redactor = stages.redactor;
  return c;
}
}  // namespace

Assembly::Assembly(const AssemblyOptions& options, const PipelineConfig& stages)
    : options_(options),
      pipeline(buildStages(stages)),
      explain_pipeline(buildStages(explainConfig(stages))),
      cache(options.cache_series, options.cache_plan_bytes),
      merge_state(mergeConfig(options)),
      cardinality_state(cardinalityConfig(options)) {}

std::vector<std::shared_ptr<const std::string>> Assembly::emitRequests(int64_t now_ms, codec::WireProtocol protocol) {
  std::vector<merge::MergeState::Emitted> emitted;
  merge_state.emit(now_ms, emitted);
  return merge::encodeEmitted(emitted, kMergedSeriesPerRequest, protocol);
}

}  // namespace cardinal::pipeline
