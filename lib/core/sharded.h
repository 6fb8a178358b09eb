#pragma once
// Totals over the shards of a sharded structure (each shard a struct with a
// `mu` mutex): each shard is read under its own lock, one after the other.

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
};

}  // namespace cardinal::core
