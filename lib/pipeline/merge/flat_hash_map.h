#pragma once
// A small open-addressing hash map for the merge engine's per-shard tables,
// whose keys are already hashes. Linear probing over one contiguous slot
// array, backward-shift deletion (no deleted markers, so probe lengths do not
// degrade under churn). Lookups and updates of existing keys never allocate;
// an insert allocates only when the table grows. Not thread-safe: the owner
// (a MergeState shard) holds its lock.
//
// Pointers returned by find()/tryEmplace() stay valid until the next insert
// or erase on the same map. forEach() must not insert or erase.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace cardinal::pipeline::merge {

template <typename Key, typename Value, typename Hash>
class FlatHashMap {
 public:
  FlatHashMap() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size(); }

  Value* find(const Key& key) {
    if (size_ == 0) return nullptr;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      if (!used_[i]) return nullptr;
      if (slots_[i].key == key) return &slots_[i].value;
    }
  }
  const Value* find(const Key& key) const { return const_cast<FlatHashMap*>(this)->find(key); }

  // Starts fetching the slot `key` would be found in (a hint; no effect on the map).
  void prefetch(const Key& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(key)]);
  }

  // Returns the value for `key`, default-constructed if it was absent.
  std::pair<Value*, bool> tryEmplace(const Key& key) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t i = home(key);
    for (; used_[i]; i = (i + 1) & mask_)
      if (slots_[i].key == key) return {&slots_[i].value, false};
    used_[i] = 1;
    slots_[i].key = key;
    slots_[i].value = Value{};
    ++size_;
    return {&slots_[i].value, true};
  }

  bool erase(const Key& key) {
    if (size_ == 0) return false;
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (!used_[i]) return false;
      if (slots_[i].key == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole
    // unless that would move them before their home slot.
    size_t hole = i;
    for (size_t j = (hole + 1) & mask_; used_[j]; j = (j + 1) & mask_) {
      size_t h = home(slots_[j].key);
      bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
      if (!movable) continue;
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
    used_[hole] = 0;
    slots_[hole].value = Value{};  // release what the value owned
    --size_;
    return true;
  }

  template <typename F>
  void forEach(F&& f) {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (used_[i]) f(static_cast<const Key&>(slots_[i].key), slots_[i].value);
  }
  template <typename F>
  void forEach(F&& f) const {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (used_[i]) f(static_cast<const Key&>(slots_[i].key), static_cast<const Value&>(slots_[i].value));
  }

  void clear() {
    slots_.clear();
    used_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  struct Slot {
    Key key{};
    Value value{};
  };

  size_t home(const Key& key) const { return static_cast<size_t>(Hash{}(key)) & mask_; }

  void grow() {
    size_t cap = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<Slot> old_slots(cap);
    std::vector<uint8_t> old_used(cap, 0);
    old_slots.swap(slots_);
    old_used.swap(used_);
    mask_ = cap - 1;
    for (size_t i = 0; i < old_slots.size(); ++i) {
      if (!old_used[i]) continue;
      size_t j = home(old_slots[i].key);
      while (used_[j]) j = (j + 1) & mask_;
      used_[j] = 1;
      slots_[j] = std::move(old_slots[i]);
    }
  }

  std::vector<Slot> slots_;
  std::vector<uint8_t> used_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace cardinal::pipeline::merge
