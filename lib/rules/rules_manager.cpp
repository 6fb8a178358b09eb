#include "rules/rules_manager.h"

#include <chrono>

#include "core/log.h"
#include "rules/default_rules.h"
#include "rules/loader.h"

namespace cardinal::rules {

RulesMetrics::RulesMetrics(prometheus::Registry& r)
    : last_reload_successful(prometheus::BuildGauge()
                                 .Name("cardinal_config_last_reload_successful")
                                 .Help("Whether the last rule-file reload succeeded (1) or failed (0).")
                                 .Register(r)
                                 .Add({})),
      last_reload_success_timestamp(prometheus::BuildGauge()
                                        .Name("cardinal_config_last_reload_success_timestamp_seconds")
                                        .Help("Time of the last successful rule-file reload.")
                                        .Register(r)
                                        .Add({})),
      rules_loaded(prometheus::BuildGauge()
                       .Name("cardinal_rules_loaded")
                       .Help("Rules in the active rule set.")
                       .Register(r)
                       .Add({})),
      reloads(prometheus::BuildCounter()
                  .Name("cardinal_config_reloads_total")
                  .Help("Rule-file reloads (start-up, SIGHUP, POST /-/reload, file watcher) by result.")
                  .Register(r)),
      reloads_success(reloads.Add({{"result", "success"}})),
      reloads_failure(reloads.Add({{"result", "failure"}})) {}

RulesManager::RulesManager(std::vector<std::string> files, RulesMetrics* metrics)
    : files_(std::move(files)), metrics_(metrics), current_{std::make_shared<RuleSet>(), 0} {}

core::Status RulesManager::reload() {
  std::lock_guard serial(reload_mu_);
  auto loaded = files_.empty() ? parseRules(kDefaultRulesYaml, std::string(kDefaultRulesName)) : loadRuleFiles(files_);
  if (!loaded) {
    if (metrics_) {
      metrics_->last_reload_successful.Set(0);
      metrics_->reloads_failure.Increment();
    }
    core::logError("rule reload failed; keeping the previous rules", {{"error", loaded.error()}});
    return core::Error{loaded.error()};
  }
  size_t n = (*loaded)->rules.size();
  {
    std::lock_guard lock(mu_);
    current_ = {*loaded, current_.generation + 1};
  }
  if (metrics_) {
    metrics_->last_reload_successful.Set(1);
    metrics_->reloads_success.Increment();
    metrics_->last_reload_success_timestamp.Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    metrics_->rules_loaded.Set(static_cast<double>(n));
  }
  core::logInfo("rules loaded", {{"files", std::to_string(files_.size())}, {"rules", std::to_string(n)}});
  return core::Status::Ok();
}

RulesManager::Snapshot RulesManager::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace cardinal::rules
