#pragma once
// Heavy hitters of one label's values: Space-Saving (Metwally, Agrawal,
// El Abbadi 2005) with a fixed number of counters. Single-threaded: the owner
// serializes access. Memory is fixed at construction (entries, heap, index)
// except for the value strings, which keep their capacity when a counter is
// reused, so a steady stream allocates nothing once value lengths settle.
//
// Guarantees, for a value v with true (weighted) count t since it entered:
//   count(v) - error(v) <= t <= count(v)   for every monitored value;
//   any value with t > total / capacity is monitored;
//   the smallest counter is at most total / capacity.
// decay() halves counts (rounding down) and errors (rounding up, so the lower
// bound count - error stays conservative) and drops counters that reach 0;
// the bounds then hold against the halved true counts, up to rounding.
//
// Values are identified by their 64-bit hash (core::hashBytes); the text is
// kept, cut at kMaxValueBytes, for reports only.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cardinal::pipeline::cardinality {

struct HeavyHitter {
  std::string value;
  uint64_t count;
  uint64_t error;
};

class SpaceSaving {
 public:
  static constexpr size_t kMaxValueBytes = 128;
  static constexpr uint32_t kMaxCapacity = 1u << 16;

  // `capacity` is clamped to [1, kMaxCapacity].
  explicit SpaceSaving(uint32_t capacity);

  // Counts saturate at UINT64_MAX.
  void add(uint64_t hash, std::string_view value, uint64_t weight = 1);
  // The n largest counters, by count descending (ties by value, then hash).
  std::vector<HeavyHitter> top(size_t n) const;
  bool contains(uint64_t hash) const;
  std::optional<uint64_t> count(uint64_t hash) const;
  // Halves every count and error and the total (called at sub-window roll-over).
  void decay();
  // Sum of the weights added (after decays).
  uint64_t total() const { return total_; }
  size_t size() const { return entries_.size(); }
  uint32_t capacity() const { return capacity_; }
  // sizeof(*this) plus the heap it holds, value strings' capacities included.
  size_t memoryBytes() const;

  // Appends a versioned little-endian binary form.
  void serialize(std::string& out) const;
  // Consumes one serialized instance from the front of `in`; nullopt (and `in`
  // unchanged) on malformed input.
  static std::optional<SpaceSaving> deserialize(std::string_view& in);

 private:
  struct Entry {
    uint64_t hash;
    uint64_t count;
    uint64_t error;
    uint32_t heap_pos;  // index of this entry in heap_
    std::string value;
  };
  static constexpr uint32_t kEmptySlot = 0;  // index_ holds entry index + 1

  size_t slotOf(uint64_t hash) const;
  // Entry index of `hash`, or -1.
  int64_t find(uint64_t hash) const;
  void indexInsert(uint64_t hash, uint32_t entry);
  void indexErase(uint64_t hash);
  void siftDown(uint32_t pos);
  void siftUp(uint32_t pos);
  bool heapLess(uint32_t a, uint32_t b) const;  // by heap position
  void swapHeap(uint32_t a, uint32_t b);
  void rebuild();  // index and heap from entries_

  uint32_t capacity_;
  uint64_t total_ = 0;
  std::vector<Entry> entries_;
  std::vector<uint32_t> heap_;   // min-heap of entry indices by count
  std::vector<uint32_t> index_;  // open addressing, linear probing, power-of-two size
};

}  // namespace cardinal::pipeline::cardinality
