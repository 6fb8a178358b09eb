#pragma once
// Per-series decision cache: most series repeat every scrape, so the regex
// and detector work of the stages runs once per new series, not once per
// sample. Keyed by the label-set hash and the rule-set generation, so a
// reload invalidates every entry without a sweep. Bounded: each shard evicts
// its oldest entries (insertion order) when full. Thread-safe; sharded to keep
// I/O threads off each other's locks. Holds the whole-label-set plans too
// (plan_cache.h): same scope (one per tenant), same invalidation by generation.

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "pipeline/plan_cache.h"

namespace cardinal::pipeline {

// What a stage decided for a series. `action` and `payload` are the stage's
// own encoding (e.g. an index into the rule set's rewrites).
struct Decision {
  uint32_t stage = 0;
  uint32_t action = 0;
  uint64_t payload = 0;
  bool operator==(const Decision&) const = default;
};

class DecisionCache {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kDefaultPlanBytes = size_t{128} << 20;
  explicit DecisionCache(size_t capacity, size_t plan_bytes = kDefaultPlanBytes);

  std::optional<Decision> find(uint64_t series_hash, uint64_t generation, uint32_t stage) const;
  void put(uint64_t series_hash, uint64_t generation, uint32_t stage, const Decision& d);
  size_t size() const;
  uint64_t evictions() const;

  PlanCache plans;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, Decision> map;
    std::vector<uint64_t> order;  // ring of keys in insertion order
    size_t next = 0;
    uint64_t evictions = 0;
  };
  static uint64_t key(uint64_t series_hash, uint64_t generation, uint32_t stage);
  Shard& shardFor(uint64_t k) { return shards_[k % kShards]; }
  const Shard& shardFor(uint64_t k) const { return shards_[k % kShards]; }

  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cardinal::pipeline
