#pragma once
// The seam every processing step plugs into. A stage is built once from
// validated config (all regex compilation and validation happen in its
// factory), then only its const process() runs on the hot path. Mutable state
// (cardinality windows, merge accumulators, the decision cache) is passed in
// through the StageContext, never held by the stage.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>

#include "codec/batch.h"
#include "core/clock.h"

namespace cardinal::rules {
struct RuleSet;
}

namespace cardinal::pipeline {

class DecisionCache;
class TypeTable;
namespace merge {
class MergeState;
}
namespace cardinality {
class CardinalityState;
}

enum class Outcome { kUnchanged, kModified, kDropped };

// One counter increment a label stage made for one series (by index in the
// batch), remembered while the pipeline records plans (plan_cache.h).
struct SeriesCount {
  uint32_t series;
  prometheus::Counter* counter;
};

struct StageContext {
  const core::Clock& clock;
  uint64_t ruleset_generation = 0;  // keys the decision cache together with a series' hash
  DecisionCache* cache = nullptr;   // may be null (e.g. in tests of one stage)
  bool dry_run = false;             // decide and count, but do not change what is forwarded
  const rules::RuleSet* rules = nullptr;  // the snapshot this request runs on
  TypeTable* types = nullptr;             // family -> type, learned from metadata and siblings
  merge::MergeState* merge = nullptr;     // merged output series state
  cardinality::CardinalityState* cardinality = nullptr;  // sketches and automatic decisions
  // GET /api/v1/stats/explain: stages change the batch as usual but leave all
  // state alone (no observation, no merge input) and say why in `notes`.
  std::vector<std::string>* explain = nullptr;
  // Set by the pipeline while label stages run on series it will make plans
  // for: per-series counter increments go through countSeries().
  std::vector<SeriesCount>* series_counts = nullptr;
};

// Increments a per-series counter of a label stage (and remembers it for the
// series' plan, so a replayed plan counts the same).
inline void countSeries(StageContext& ctx, size_t series, prometheus::Counter& c) {
  c.Increment();
  if (ctx.series_counts) ctx.series_counts->push_back({static_cast<uint32_t>(series), &c});
}

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  // Marks series changed or dropped in `batch`; returns what it did overall.
  virtual Outcome process(codec::SeriesBatch& batch, StageContext& ctx) const = 0;
  // A label stage: what it does to a series depends only on the series'
  // labels, the rules and the type table, it changes a series only through
  // setLabels, `dropped` and `merge`, counts per series only through
  // countSeries, and skips series marked `planned`. The pipeline caches the
  // result of its leading label stages per label set (plan_cache.h).
  virtual bool labelStage() const { return false; }
};

}  // namespace cardinal::pipeline
