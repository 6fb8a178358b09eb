#pragma once
// GET /api/v1/stats and GET /api/v1/stats/explain: what the cardinality engine
// sees and decided, as JSON (schema: docs/stats.md). Responses are bounded
// (families, labels, top values and bytes are capped) and show values only
// after redaction: the sanitize stage runs before anything is recorded.

#include <map>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/pipeline.h"
#include "pipeline/tenants.h"
#include "rules/rules_manager.h"
#include "server/http_types.h"

namespace cardinal::server {

// Query string of a request target, percent-decoded ('+' is a space).
std::map<std::string, std::string, std::less<>> parseQuery(std::string_view target);

class StatsHandler {
 public:
  struct Deps {
    pipeline::cardinality::CardinalityState& state;
    const pipeline::Pipeline& explain_pipeline;  // built without metrics: explain counts nothing
    rules::RulesManager& rules;
    pipeline::TypeTable& types;
    pipeline::DecisionCache& cache;
    pipeline::merge::MergeState* merge;
    const core::Clock& clock;
    bool dry_run;
    // --tenant.header set: every tenant's state is reported (each family
    // names its tenant) and `tenant=ID` selects one; null: `state` alone.
    pipeline::Tenants* tenants = nullptr;
  };
  explicit StatsHandler(Deps deps) : d_(deps) {}

  Response stats(std::string_view target) const;
  Response explain(std::string_view target) const;

 private:
  Deps d_;
};

}  // namespace cardinal::server
