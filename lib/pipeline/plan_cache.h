#pragma once
// Whole-label-set plans: what the label stages (normalize, sanitize, relabel:
// every stage whose effect on a series depends only on its labels, the rules
// and the type table) did to one label set, remembered so a series seen again
// costs one lookup instead of three stage passes. Most series repeat every
// scrape; the stages run on first sight and after a rule reload or a type
// change (both are in the key).
//
// A plan is applied only to the label set it was made from: beside its 64-bit
// key (core::hashLabels with the rules' generation) it keeps a second hash of
// that label set, keyed with a per-process secret (core::hashBytesKeyed), and
// a lookup checks it. A key collision then costs a miss, never another
// series' labels: applying a plan to another label set needs both hashes to
// collide at once (the merge engine identifies its inputs the same way), and
// the secret keeps label values from being chosen to make the second one
// collide. Keeping the hash instead of the label set's bytes makes a plan
// smaller (95 bytes on average instead of 263 on bench/compare.sh's workload:
// two cache lines instead of five), and those lines are what a lookup costs
// when the cache is cold (an I/O thread back from sleep between requests).
// It also keeps the counter increments the stages made for the series, so the
// metrics count the same whether a plan was replayed or the stages ran.
//
// Memory latency, not instructions, is what a lookup costs (measured with
// perf: a node-based map and a plan spread over four allocations made the
// lookup the hottest symbol of the proxy). So a shard is an open-addressing
// table of (key, plan pointer) (the merge engine's FlatHashMap), a plan is one
// allocation, and a plan is read under its shard's lock (visit) instead of
// being reference-counted: the slot, then the plan's contiguous bytes.
//
// Bounded by bytes; each shard evicts its oldest plans (insertion order) when
// over its share. When more label sets repeat than fit, insertion order alone
// would evict every plan before its series comes back (a scrape cycle longer
// than the cache: no hit at all, and a plan built for every series). So a
// full shard admits only a fraction of new plans, chosen by key (the same
// label sets each time, so they stay): halved whenever a plan leaves without
// ever having been replayed, doubled whenever one leaves after a replay. The
// cached fraction then settles where the kept plans live long enough to be
// replayed. Thread-safe, sharded.

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/labels.h"
#include "core/sharded.h"
#include "pipeline/merge/flat_hash_map.h"

namespace prometheus {
class Counter;
}

namespace cardinal::pipeline {

class PlanCache;

class SeriesPlan {
 public:
  enum class Kind : uint8_t { kUnchanged, kRewritten, kDropped };
  struct Free {
    void operator()(SeriesPlan* p) const;
  };
  using Ptr = std::unique_ptr<SeriesPlan, Free>;

  // One allocation. `in`: the label set as received; `in_wire_check`: the
  // keyed check of its canonical bytes when the decoder read it in that form
  // (codec::Series::wire_check), else none (see madeFrom). `out`: the labels
  // the stages made (kRewritten). `counts`: one entry per counter increment
  // the stages made for this series.
  static Ptr make(std::span<const core::LabelView> in, std::optional<uint64_t> in_wire_check, Kind kind,
                  std::span<const core::LabelView> out, uint64_t out_hash, bool merge,
                  std::span<prometheus::Counter* const> counts);

  // Whether `labels` is the label set this plan was made from: its keyed
  // hash is the plan's. That hash is of the label bytes when the plan was made
  // from a series in the decoder's canonical form (the label fields sorted on
  // the wire, so equal bytes mean an equal label set), given as `wire_check`
  // (core::labelWireCheck, computed by the decoder); else of the labels. A plan
  // made from label bytes does not apply to labels without them.
  bool madeFrom(std::span<const core::LabelView> labels, std::optional<uint64_t> wire_check) const;
  // kRewritten: the resulting labels, packed (unpack with unpackLabels). An
  // output label equal to one of the received labels (a rule dropped others
  // beside it) is kept as that label's index, not its bytes.
  std::string_view packedOut() const { return {data() + counts_bytes(), out_size_}; }
  // Whether packedOut holds bytes of its own (new values), or only indexes.
  bool outHasBytes() const { return out_has_bytes_; }
  // Appends the labels of a packed set to `out`: views into `packed`, and for
  // indexes, the labels of `in` (the set the plan was made from).
  static void unpackLabels(std::string_view packed, std::span<const core::LabelView> in,
                           std::vector<core::LabelView>& out);

  Kind kind() const { return kind_; }
  bool merge() const { return merge_; }
  // The cardinality stage's seen-filter epoch (CardinalityState::seenEpoch)
  // in which this label set last went through the filter; 0: never. Read and
  // written under the shard lock (PlanCache::visit), like the replay count.
  uint64_t seenEpoch() const { return seen_epoch_; }
  void setSeenEpoch(uint64_t epoch) const { seen_epoch_ = epoch; }
  uint64_t outHash() const { return out_hash_; }
  std::span<prometheus::Counter* const> counts() const {
    return {reinterpret_cast<prometheus::Counter* const*>(data()), n_counts_};
  }
  size_t bytes() const { return sizeof(SeriesPlan) + counts_bytes() + out_size_; }

 private:
  friend class PlanCache;
  SeriesPlan() = default;
  size_t counts_bytes() const { return n_counts_ * sizeof(prometheus::Counter*); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  char* data() { return reinterpret_cast<char*>(this + 1); }

  static uint64_t checkOf(std::span<const core::LabelView> labels);

  // Followed in the same allocation by: the counter pointers, the packed
  // output. Packed: per label a 4-byte name length, a 4-byte value length,
  // the bytes.
  uint64_t out_hash_ = 0;
  uint64_t check_ = 0;  // checkOf the received label set (core::labelWireCheck of its bytes when wire_)
  mutable uint64_t seen_epoch_ = 0;  // under the shard lock (PlanCache::visit)
  uint32_t out_size_ = 0;
  uint32_t n_counts_ = 0;
  mutable uint32_t replays_ = 0;  // likewise
  Kind kind_ = Kind::kUnchanged;
  bool merge_ = false;
  bool wire_ = false;
  bool out_has_bytes_ = false;
};
static_assert(sizeof(SeriesPlan) == 40, "a plan's header, counters and output share its first lines");

class PlanCache {
 public:
  static constexpr size_t kShards = 16;
  explicit PlanCache(size_t max_bytes);
  ~PlanCache();
  PlanCache(const PlanCache&) = delete;
  PlanCache& operator=(const PlanCache&) = delete;

  // Calls f(const SeriesPlan&) with the plan under `key`, under the shard's
  // lock (keep f short; the plan may be evicted once it returns). Returns
  // f's answer, or false when there is no plan.
  template <class F>
  bool visit(uint64_t key, F&& f) const {
    std::vector<uint8_t> hit;
    visitMany(std::span<const uint64_t>(&key, 1), hit, [&](size_t, const SeriesPlan& p) { return f(p); });
    return hit[0] != 0;
  }
  // visit() for a request's keys at once: each shard's lock is taken once
  // (busy ones last: core::ShardGroups::forEachLocked), and the table slots
  // and plans are fetched ahead (the lookups are cache misses: the tables are
  // big). Calls f(i, const SeriesPlan&) for each key i that has a plan, shard
  // by shard (in key order within a shard), and sets hit[i] to f's answer (0
  // without a plan).
  template <class F>
  void visitMany(std::span<const uint64_t> keys, std::vector<uint8_t>& hit, F&& f) const {
    thread_local core::ShardGroups<kShards> groups;
    thread_local std::vector<const SeriesPlan*> found;
    groups.build(keys.size(), [&](size_t i) { return shardIndex(keys[i]); });
    found.resize(keys.size());
    hit.assign(keys.size(), 0);
    constexpr size_t kAhead = 4;
    groups.forEachLocked(shards_, [&](size_t k) {
      const uint32_t begin = groups.start[k], end = groups.start[k + 1];
      const Shard& s = shards_[k];
      // First the slots (each fetched kAhead lookups early), fetching each
      // plan found; then the plans, whose first lines are on their way.
      for (uint32_t j = begin; j < end; ++j) {
        if (j + kAhead < end) s.plans.prefetch(keys[groups.order[j + kAhead]]);
        const SeriesPlan* p = s.find(keys[groups.order[j]]);
        found[j] = p;
        if (p) {
          const char* c = reinterpret_cast<const char*>(p);
          for (size_t line = 0; line < kPrefetchLines; ++line) __builtin_prefetch(c + 64 * line);
        }
      }
      for (uint32_t j = begin; j < end; ++j) {
        const uint32_t i = groups.order[j];
        const SeriesPlan* p = found[j];
        if (p != nullptr && f(static_cast<size_t>(i), *p)) {
          ++p->replays_;
          ++s.replays;
          hit[i] = 1;
        } else {
          ++s.misses;
        }
      }
    });
  }
  // Whether a plan made now for `key` would be kept (see admission above):
  // callers skip making the ones that would not.
  bool admits(uint64_t key) const;
  void put(uint64_t key, SeriesPlan::Ptr plan);

  size_t size() const;
  size_t bytes() const;
  uint64_t evictions() const;
  uint64_t replays() const;  // visits that found a plan made from the label set
  uint64_t misses() const;   // visits that did not
  size_t maxBytes() const { return per_shard_bytes_ * kShards; }

 private:
  struct KeyHash {  // keys are hashes already
    uint64_t operator()(uint64_t k) const { return k; }
  };
  struct Shard {
    mutable std::mutex mu;
    merge::FlatHashMap<uint64_t, SeriesPlan*, KeyHash> plans;  // owns the plans
    std::deque<uint64_t> order;  // keys in insertion order (oldest first)
    size_t bytes = 0;
    uint64_t evictions = 0;
    mutable uint64_t replays = 0, misses = 0;  // under mu
    std::atomic<uint32_t> admit_shift{0};  // when full, admit keys whose low admit_shift bits are 0
    std::atomic<bool> full{false};         // has evicted: admission applies
    const SeriesPlan* find(uint64_t key) const {
      SeriesPlan* const* p = plans.find(key);
      return p ? *p : nullptr;
    }
  };
  // What a plan is charged: its bytes, its table slot (at most 3/4 full:
  // about two slots and two used flags per entry) and its ring entry.
  static size_t charge(const SeriesPlan& p) {
    return p.bytes() + 2 * (sizeof(uint64_t) + sizeof(SeriesPlan*) + 1) + sizeof(uint64_t);
  }
  // A plan's first lines: header, counters and (typically) its whole output.
  static constexpr size_t kPrefetchLines = 2;
  static size_t shardIndex(uint64_t k) { return (k >> 59) % kShards; }
  Shard& shardFor(uint64_t k) { return shards_[shardIndex(k)]; }
  const Shard& shardFor(uint64_t k) const { return shards_[shardIndex(k)]; }

  size_t per_shard_bytes_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cardinal::pipeline
