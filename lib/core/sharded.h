#pragma once
// Helpers for sharded structures (each shard a struct with a `mu` mutex):
// totals over the shards, and a request's items grouped by shard so that each
// shard's lock is taken once.

#include <array>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <vector>

namespace cardinal::core {

template <class Shards, class Field>
auto sumOverShards(const Shards& shards, Field field) {
  decltype(field(*std::begin(shards))) total{};
  for (const auto& s : shards) {
    std::lock_guard lock(s.mu);
    total += field(s);
  }
  return total;
}

// Items 0..n-1 grouped by shard, keeping their order within a shard (a
// counting sort): shard k's items are order[start[k]] .. order[start[k+1]-1].
// For the batch operations that take each shard's lock once per request.
template <size_t kShards>
struct ShardGroups {
  std::array<uint32_t, kShards + 1> start{};
  std::vector<uint32_t> order;
  std::vector<uint8_t> shard_of;

  template <class ShardOf>
  void build(size_t n, ShardOf&& shard_of_item) {
    start.fill(0);
    shard_of.resize(n);
    order.resize(n);
    for (size_t i = 0; i < n; ++i) {
      shard_of[i] = static_cast<uint8_t>(shard_of_item(i));
      ++start[shard_of[i] + 1];
    }
    for (size_t k = 0; k < kShards; ++k) start[k + 1] += start[k];
    std::array<uint32_t, kShards> next{};
    for (size_t k = 0; k < kShards; ++k) next[k] = start[k];
    for (size_t i = 0; i < n; ++i) order[next[shard_of[i]]++] = static_cast<uint32_t>(i);
  }

  // Calls f(k) under shard k's lock (shards[k].mu) for every shard that has
  // items: first each shard whose lock is free, then the rest, waiting. A
  // thread does not wait for a shard (whose holder may be descheduled on a
  // busy machine) while others it needs are free.
  template <class Shards, class F>
  void forEachLocked(Shards& shards, F&& f) const {
    std::array<uint8_t, kShards> busy;
    size_t n_busy = 0;
    for (size_t k = 0; k < kShards; ++k) {
      if (start[k] == start[k + 1]) continue;
      std::unique_lock lock(shards[k].mu, std::try_to_lock);
      if (!lock.owns_lock()) {
        busy[n_busy++] = static_cast<uint8_t>(k);
        continue;
      }
      f(k);
    }
    for (size_t i = 0; i < n_busy; ++i) {
      std::lock_guard lock(shards[busy[i]].mu);
      f(static_cast<size_t>(busy[i]));
    }
  }
};

}  // namespace cardinal::core
