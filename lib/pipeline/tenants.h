#pragma once
// Per-tenant state for multi-tenant receivers (--tenant.header, e.g.
// X-Scope-OrgID). Each tenant owns its own cardinality state (families,
// sketches, decisions), merge state, per-series decision cache and type table,
// so one tenant's traffic never changes another's decisions or merged series.
//
// Ownership: the default tenant (requests without the header) uses the
// objects main() already owns, so a restart reads snapshots written before
// tenants existed as the default tenant's. Other tenants are created on first
// use, up to max_tenants (the default included); beyond that create() refuses
// and counts. Tenants are never removed while the process runs, so the
// pointers returned stay valid until the Tenants object is destroyed.
// Thread-safe: find()/getOrCreate() from any I/O thread, all() from timers.

#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/merge/merge_state.h"

namespace cardinal::pipeline {

struct Tenant {
  std::string name;
  cardinality::CardinalityState* cardinality = nullptr;  // null when --cardinality.enabled=false
  merge::MergeState* merge = nullptr;
  DecisionCache* cache = nullptr;
  TypeTable* types = nullptr;
  // Storage of tenants other than the default one.
  std::unique_ptr<cardinality::CardinalityState> own_cardinality;
  std::unique_ptr<merge::MergeState> own_merge;
  std::unique_ptr<DecisionCache> own_cache;
  std::unique_ptr<TypeTable> own_types;
};

struct TenantsConfig {
  std::string default_name = "anonymous";
  size_t max_tenants = 100;  // the default tenant included
  bool cardinality_enabled = true;
  cardinality::Config cardinality;
  merge::Config merge;
  size_t cache_series = 1'000'000;
  size_t cache_plan_bytes = DecisionCache::kDefaultPlanBytes;
};

// A tenant id as Mimir accepts it: 1..150 bytes of [A-Za-z0-9!-_.*'()], not
// "." or "..". The id also names a snapshot directory, so nothing else passes.
// Returns an empty string when valid, else why not (never quoting the value).
std::string checkTenantId(std::string_view id);

class Tenants {
 public:
  // `default_tenant` holds the objects of the default tenant (name is set here).
  Tenants(TenantsConfig cfg, Tenant default_tenant);

  const TenantsConfig& config() const { return cfg_; }
  Tenant& defaultTenant() { return *default_; }
  // Null when unknown.
  Tenant* find(std::string_view name) const;
  // Null when `name` is new and max_tenants are known (counted in refused()).
  Tenant* getOrCreate(std::string_view name);
  // Every tenant, the default first, then by name.
  std::vector<Tenant*> all() const;
  size_t size() const;
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // Snapshots: the default tenant's files stay where they were
  // (<dir>/merge.snapshot, <dir>/cardinality.snapshot); each other tenant's go
  // to <dir>/tenants/<id>/. writeSnapshots() writes every tenant;
  // restoreSnapshots() creates and restores the tenants found under
  // <dir>/tenants (up to max_tenants) and returns one message per problem.
  core::Status writeSnapshots(const std::string& dir) const;
  std::vector<std::string> restoreSnapshots(const std::string& dir);

 private:
  std::unique_ptr<Tenant> make(std::string_view name) const;

  TenantsConfig cfg_;
  std::unique_ptr<Tenant> default_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Tenant>, std::less<>> others_;
  std::atomic<uint64_t> refused_{0};
};

}  // namespace cardinal::pipeline
