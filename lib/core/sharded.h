#pragma once
// Totals over the shards of a sharded structure (each shard a struct with a
// `mu` mutex): each shard is read under its own lock, one after the other.

#include <iterator>
#include <mutex>

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

}  // namespace cardinal::core
