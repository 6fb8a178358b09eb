#include "pipeline/decision_cache.h"

#include <algorithm>

#include "core/hash.h"
#include "core/sharded.h"

namespace cardinal::pipeline {

DecisionCache::DecisionCache(size_t capacity, size_t plan_bytes)
    : plans(plan_bytes), per_shard_(capacity / kShards > 0 ? capacity / kShards : 1) {
  // A small start: with --tenant.header every tenant has its own cache, and
  // reserving the whole capacity for each would cost memory tenants never use.
  for (auto& s : shards_) s.order.reserve(std::min<size_t>(per_shard_, 4096));
}

uint64_t DecisionCache::key(uint64_t series_hash, uint64_t generation, uint32_t stage) {
  return core::hashCombine(core::hashCombine(series_hash, generation), stage);
}

std::optional<Decision> DecisionCache::find(uint64_t series_hash, uint64_t generation, uint32_t stage) const {
  uint64_t k = key(series_hash, generation, stage);
  const Shard& s = shardFor(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end() || it->second.stage != stage) return std::nullopt;
  return it->second;
}

void DecisionCache::put(uint64_t series_hash, uint64_t generation, uint32_t stage, const Decision& d) {
  uint64_t k = key(series_hash, generation, stage);
  Shard& s = shardFor(k);
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.map.insert_or_assign(k, d);
  it->second.stage = stage;
  if (!inserted) return;
  if (s.order.size() < per_shard_) {
    s.order.push_back(k);
    return;
  }
  // Full: evict the oldest key in the ring and take its slot.
  s.map.erase(s.order[s.next]);
  s.order[s.next] = k;
  s.next = (s.next + 1) % per_shard_;
  ++s.evictions;
}

size_t DecisionCache::size() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.map.size(); });
}

uint64_t DecisionCache::evictions() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.evictions; });
}

}  // namespace cardinal::pipeline
