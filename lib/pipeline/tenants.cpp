#include "pipeline/tenants.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <system_error>

#include "core/file_io.h"

namespace cardinal::pipeline {

std::string checkTenantId(std::string_view id) {
  constexpr size_t kMaxTenantIdBytes = 150;
  if (id.empty()) return "tenant id is empty";
  if (id.size() > kMaxTenantIdBytes)
    return "tenant id is " + std::to_string(id.size()) + " bytes long; at most " +
           std::to_string(kMaxTenantIdBytes) + " allowed";
  if (id == "." || id == "..") return "tenant id must not be \".\" or \"..\"";
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
                    c == '-' || c == '_' || c == '.' || c == '*' || c == '\'' || c == '(' || c == ')';
    if (!ok)
      return "tenant id has an invalid character at position " + std::to_string(i) +
             " (allowed: letters, digits and !-_.*'())";
  }
  return {};
}

Tenants::Tenants(TenantsConfig cfg, Tenant default_tenant)
    : cfg_(std::move(cfg)), default_(std::make_unique<Tenant>(std::move(default_tenant))) {
  default_->name = cfg_.default_name;
}

std::unique_ptr<Tenant> Tenants::make(std::string_view name) const {
  auto t = std::make_unique<Tenant>();
  t->name = std::string(name);
  if (cfg_.cardinality_enabled) {
    t->own_cardinality = std::make_unique<cardinality::CardinalityState>(cfg_.cardinality);
    t->cardinality = t->own_cardinality.get();
  }
  t->own_merge = std::make_unique<merge::MergeState>(cfg_.merge);
  t->merge = t->own_merge.get();
  t->own_cache = std::make_unique<DecisionCache>(cfg_.cache_series, cfg_.cache_plan_bytes);
  t->cache = t->own_cache.get();
  t->own_types = std::make_unique<TypeTable>();
  t->types = t->own_types.get();
  return t;
}

Tenant* Tenants::find(std::string_view name) const {
  if (name == default_->name) return default_.get();
  std::shared_lock lock(mu_);
  auto it = others_.find(name);
  return it == others_.end() ? nullptr : it->second.get();
}

Tenant* Tenants::getOrCreate(std::string_view name) {
  if (Tenant* t = find(name)) return t;
  std::unique_lock lock(mu_);
  if (auto it = others_.find(name); it != others_.end()) return it->second.get();
  if (others_.size() + 1 >= cfg_.max_tenants) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto t = make(name);
  Tenant* raw = t.get();
  others_.emplace(std::string(name), std::move(t));
  return raw;
}

std::vector<Tenant*> Tenants::all() const {
  std::vector<Tenant*> out{default_.get()};
  std::shared_lock lock(mu_);
  for (const auto& [name, t] : others_) out.push_back(t.get());
  return out;
}

size_t Tenants::size() const {
  std::shared_lock lock(mu_);
  return others_.size() + 1;
}

core::Status Tenants::writeSnapshots(const std::string& dir) const {
  for (Tenant* t : all()) {
    std::string base = dir;
    if (t != default_.get()) {
      base = dir + "/tenants/" + t->name;
      std::error_code ec;
      std::filesystem::create_directories(base, ec);
      if (ec) return core::Error{"cannot create " + base + ": " + ec.message()};
    }
    if (auto st = core::writeFileAtomic(base + "/merge.snapshot", t->merge->snapshot()); !st) return st;
    if (t->cardinality)
      if (auto st = core::writeFileAtomic(base + "/cardinality.snapshot", t->cardinality->snapshot()); !st) return st;
  }
  return core::Status::Ok();
}

std::vector<std::string> Tenants::restoreSnapshots(const std::string& dir) {
  std::vector<std::string> problems;
  const std::filesystem::path root = std::filesystem::path(dir) / "tenants";
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return problems;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec))
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (!checkTenantId(name).empty() || name == default_->name) {
      problems.push_back(root.string() + "/" + name + ": not a tenant directory; ignored");
      continue;
    }
    Tenant* t = getOrCreate(name);
    if (!t) {
      problems.push_back(root.string() + "/" + name + ": over --tenant.max-tenants; not restored");
      continue;
    }
    const std::string base = (root / name).string();
    if (auto data = core::readFile(base + "/merge.snapshot"); data)
      if (auto st = t->merge->restore(*data); !st) problems.push_back(base + "/merge.snapshot: " + st.error());
    if (t->cardinality)
      if (auto data = core::readFile(base + "/cardinality.snapshot"); data)
        if (auto st = t->cardinality->restore(*data); !st)
          problems.push_back(base + "/cardinality.snapshot: " + st.error());
  }
  return problems;
}

}  // namespace cardinal::pipeline
