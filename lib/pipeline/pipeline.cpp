#include "pipeline/pipeline.h"

#include <algorithm>
#include <optional>

#include "core/hash.h"
#include "core/yield_point.h"
#include "pipeline/cardinality/cardinality_stage.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/merge/merge_stage.h"
#include "pipeline/normalize/normalize_stage.h"
#include "pipeline/relabel/relabel_stage.h"
#include "pipeline/sanitize/sanitize_stage.h"

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

Pipeline::Pipeline(std::vector<std::unique_ptr<Stage>> stages) : stages_(std::move(stages)) {
  while (label_stages_ < stages_.size() && stages_[label_stages_]->labelStage()) ++label_stages_;
}

namespace {

// Per-thread scratch of the plan pass, reused across requests (no allocation
// per request once warm, unless plans are recorded).
struct PlanScratch {
  struct Miss {
    uint32_t series;
    uint32_t label_begin;  // the label set as received (still in the label pool
    uint32_t label_count;  // after a stage gave the series a new one)
    uint64_t key;
    std::optional<uint64_t> wire_check;  // of the received labels, when canonical (Series::wire_check)
  };
  std::vector<Miss> misses;
  std::vector<SeriesCount> counts;
  std::vector<core::LabelView> labels;
  std::vector<prometheus::Counter*> plan_counts;
  std::vector<std::pair<prometheus::Counter*, uint64_t>> replay;  // increments summed per counter
  std::vector<uint32_t> items;  // the live series
  std::vector<uint64_t> keys;   // their plan keys
  std::vector<uint8_t> hit;     // whether a plan was applied
};
thread_local PlanScratch t_plan;

void addReplay(std::vector<std::pair<prometheus::Counter*, uint64_t>>& replay, prometheus::Counter* c) {
  for (auto& [counter, n] : replay)
    if (counter == c) {
      ++n;
      return;
    }
  replay.emplace_back(c, 1);
}

}  // namespace

bool Pipeline::runLabelStagesPlanned(codec::SeriesBatch& batch, StageContext& ctx) const {
  PlanScratch& t = t_plan;
  t.misses.clear();
  t.counts.clear();
  t.replay.clear();
  PlanCache& plans = ctx.cache->plans;
  // Family resolution (rule masks, types) is part of every label stage's
  // answer: plans are keyed on the rule-set generation and the type table's version.
  const uint64_t generation = core::hashCombine(ctx.ruleset_generation, ctx.types->version());
  // The cardinality stage's seen filter, as plans remember it (codec::Series::seen).
  const uint64_t seen_epoch = ctx.cardinality ? ctx.cardinality->seenEpoch(ctx.clock.nowMillis()) : 0;
  bool any = false;
  t.items.clear();
  t.keys.clear();
  for (size_t i = 0; i < batch.series.size(); ++i) {
    const codec::Series& s = batch.series[i];
    if (s.dropped) continue;
    t.items.push_back(static_cast<uint32_t>(i));
    t.keys.push_back(core::hashCombine(s.hash, generation));
  }
  // The label bytes stand for the label set only in the canonical encoding.
  auto wireOf = [](const codec::Series& s) { return s.canonical ? std::optional(s.wire_check) : std::nullopt; };
  // Applied under the plan cache's shard lock: the new labels are copied
  // into the batch, so nothing points into the plan once this returns.
  plans.visitMany(t.keys, t.hit, [&](size_t j, const SeriesPlan& plan) {
    codec::Series& s = batch.series[t.items[j]];
    const auto labels = batch.labelsOf(s);
    if (!plan.madeFrom(labels, wireOf(s))) return false;
    for (prometheus::Counter* c : plan.counts()) addReplay(t.replay, c);
    if (plan.merge()) s.merge = true;
    // The cardinality stage runs seen() for every series it reaches right
    // after this pass: from the second replay in an epoch on, it need not.
    if (seen_epoch != 0 && plan.kind() != SeriesPlan::Kind::kDropped) {
      if (plan.seenEpoch() == seen_epoch) s.seen = true;
      else plan.setSeenEpoch(seen_epoch);
    }
    switch (plan.kind()) {
      case SeriesPlan::Kind::kUnchanged: break;
      case SeriesPlan::Kind::kDropped:
        s.dropped = true;
        any = true;
        break;
      case SeriesPlan::Kind::kRewritten:
        t.labels.clear();
        // New values are copied into the batch; kept labels are the request's own.
        SeriesPlan::unpackLabels(plan.outHasBytes() ? batch.intern(plan.packedOut()) : plan.packedOut(), labels,
                                 t.labels);
        batch.setLabels(s, t.labels, plan.outHash());
        any = true;
        break;
    }
    return true;
  });
  for (size_t j = 0; j < t.items.size(); ++j) {
    codec::Series& s = batch.series[t.items[j]];
    if (t.hit[j]) s.planned = true;
    else if (plans.admits(t.keys[j]))
      t.misses.push_back({t.items[j], s.label_begin, s.label_count, t.keys[j], wireOf(s)});
  }
  for (auto& [counter, n] : t.replay) counter->Increment(static_cast<double>(n));

  // The stages run even when every series had a plan: metadata and exemplars
  // are not part of a plan (sanitize redacts them every time).
  ctx.series_counts = t.misses.empty() ? nullptr : &t.counts;
  for (size_t i = 0; i < label_stages_; ++i)
    if (stages_[i]->process(batch, ctx) != Outcome::kUnchanged) any = true;
  ctx.series_counts = nullptr;

  // Record what the stages did to each label set that had no plan.
  std::sort(t.counts.begin(), t.counts.end(),
            [](const SeriesCount& a, const SeriesCount& b) { return a.series < b.series; });
  size_t ci = 0;
  for (const auto& m : t.misses) {
    const codec::Series& s = batch.series[m.series];
    t.plan_counts.clear();
    while (ci < t.counts.size() && t.counts[ci].series < m.series) ++ci;
    while (ci < t.counts.size() && t.counts[ci].series == m.series) t.plan_counts.push_back(t.counts[ci++].counter);
    SeriesPlan::Kind kind = SeriesPlan::Kind::kUnchanged;
    if (s.dropped) kind = SeriesPlan::Kind::kDropped;
    else if (s.label_begin != m.label_begin || s.label_count != m.label_count) kind = SeriesPlan::Kind::kRewritten;
    std::span<const core::LabelView> received(batch.labels.data() + m.label_begin, m.label_count);
    plans.put(m.key, SeriesPlan::make(received, m.wire_check, kind, batch.labelsOf(s), s.hash, s.merge, t.plan_counts));
  }
  return any;
}

Outcome Pipeline::run(codec::SeriesBatch& batch, StageContext& ctx) const {
  Outcome overall = Outcome::kUnchanged;
  size_t first = 0;
  if (label_stages_ > 0 && ctx.cache && ctx.rules && ctx.types && !ctx.dry_run && !ctx.explain) {
    if (runLabelStagesPlanned(batch, ctx)) overall = Outcome::kModified;
    first = label_stages_;
    core::yieldPoint();
  }
  for (size_t i = first; i < stages_.size(); ++i) {
    if (stages_[i]->process(batch, ctx) != Outcome::kUnchanged) overall = Outcome::kModified;
    core::yieldPoint();  // between stages: see core/yield_point.h
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
