#pragma once
// Whole-label-set plans: what the label stages (normalize, sanitize, relabel:
// every stage whose effect on a series depends only on its labels, the rules
// and the type table) did to one label set, remembered so a series seen again
// costs one lookup instead of three stage passes. Most series repeat every
// scrape; the stages run on first sight and after a rule reload or a type
// change (both are in the key).
//
// A plan keeps the label set it was made from and is applied only to an equal
// one, so a 64-bit key collision costs a miss, never another series' labels.
// It also keeps the counter increments the stages made for the series, so the
// metrics count the same whether a plan was replayed or the stages ran.
//
// Plans are immutable once cached and shared: a batch pins the plans whose
// labels it points into (SeriesBatch::pin) until the request is done, so an
// eviction by another thread never frees them early. Bounded by bytes; each
// shard evicts its oldest plans (insertion order) when over its share.
// Thread-safe, sharded.

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/labels.h"

namespace prometheus {
class Counter;
}

namespace cardinal::pipeline {

class SeriesPlan {
 public:
  enum class Kind : uint8_t { kUnchanged, kRewritten, kDropped };

  // `in`: the label set as received; `in_wire`: its encoding when the
  // series has one (labelWire), else empty. `counts`: one entry per
  // increment the stages made for this series.
  SeriesPlan(std::span<const core::LabelView> in, std::string_view in_wire, Kind kind,
             std::span<const core::LabelView> out, uint64_t out_hash, bool merge,
             std::span<prometheus::Counter* const> counts);

  // The bytes of a decoded 1.0 series (`raw`, the TimeSeries message) from its
  // start to the end of its last label: the label fields are sorted on the
  // wire, so equal bytes mean an equal label set, and comparing them is one
  // memcmp. Empty when the labels do not point into `raw` (2.0 symbols).
  static std::string_view labelWire(std::string_view raw, std::span<const core::LabelView> labels);

  // Whether `labels` (encoded as `wire`, see labelWire) is the label set this
  // plan was made from.
  bool madeFrom(std::span<const core::LabelView> labels, std::string_view wire) const;
  // kRewritten: appends the resulting labels (views into this plan) to `out`.
  void outLabels(std::vector<core::LabelView>& out) const;

  Kind kind() const { return kind_; }
  bool merge() const { return merge_; }
  uint64_t outHash() const { return out_hash_; }
  std::span<prometheus::Counter* const> counts() const { return counts_; }
  size_t bytes() const;  // memory held, for the cache's budget

 private:
  // The received label set: its wire bytes (wire_), or packed like out_.
  // Packed label sets: per label a 4-byte name length, a 4-byte value length,
  // then the name and value bytes.
  std::string in_;
  std::string out_;
  std::vector<prometheus::Counter*> counts_;
  uint64_t out_hash_ = 0;
  Kind kind_ = Kind::kUnchanged;
  bool merge_ = false;
  bool wire_ = false;
};

class PlanCache {
 public:
  static constexpr size_t kShards = 16;
  explicit PlanCache(size_t max_bytes);

  std::shared_ptr<const SeriesPlan> find(uint64_t key) const;
  void put(uint64_t key, std::shared_ptr<const SeriesPlan> plan);

  size_t size() const;
  size_t bytes() const;
  uint64_t evictions() const;
  size_t maxBytes() const { return per_shard_bytes_ * kShards; }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<const SeriesPlan>> map;
    std::deque<uint64_t> order;  // keys in insertion order (oldest first)
    size_t bytes = 0;
    uint64_t evictions = 0;
  };
  Shard& shardFor(uint64_t k) { return shards_[(k >> 32) % kShards]; }
  const Shard& shardFor(uint64_t k) const { return shards_[(k >> 32) % kShards]; }

  size_t per_shard_bytes_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cardinal::pipeline
