#pragma once
// Owns the current RuleSet and its generation. reload() parses, validates and
// compiles the complete new set off the hot path, then swaps it in; requests
// in flight keep the snapshot they started with. A failed reload leaves the
// old set in place and is visible in the reload metrics. Thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "core/result.h"
#include "rules/rule_set.h"

namespace cardinal::rules {

struct RulesMetrics {
  explicit RulesMetrics(prometheus::Registry& registry);
  prometheus::Gauge& last_reload_successful;              // cardinal_config_last_reload_successful
  prometheus::Gauge& last_reload_success_timestamp;       // cardinal_config_last_reload_success_timestamp_seconds
  prometheus::Gauge& rules_loaded;                        // cardinal_rules_loaded
  prometheus::Family<prometheus::Counter>& reloads;       // cardinal_config_reloads_total{result}
  prometheus::Counter& reloads_success;                   // result="success" (the first load included)
  prometheus::Counter& reloads_failure;                   // result="failure"
};

class RulesManager {
 public:
  struct Snapshot {
    std::shared_ptr<const RuleSet> rules;
    uint64_t generation = 0;
  };
  // No files: the built-in default rules (rules/default.yaml, compiled in).
  RulesManager(std::vector<std::string> files, RulesMetrics* metrics);

  // Loads the files; the first load's error is returned to the caller (start-up fails).
  core::Status reload();
  Snapshot current() const;
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<std::string> files_;
  RulesMetrics* metrics_;
  std::mutex reload_mu_;  // one reload at a time
  mutable std::mutex mu_;
  Snapshot current_;
};

}  // namespace cardinal::rules
