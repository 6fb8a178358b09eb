#pragma once
// A small open-addressing hash map for the merge engine's per-shard tables,
// whose keys are already hashes. Linear probing over one contiguous slot
// array (an empty slot holds the value-initialized key), backward-shift
// deletion (no deleted markers, so probe lengths do not degrade under churn).
// Lookups and updates of existing keys never allocate; an insert allocates
// only when the table grows. Not thread-safe: the owner (a MergeState shard)
// holds its lock.
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
    if (isEmptyKey(key)) return has_zero_ ? &zero_.value : nullptr;
    if (slots_.empty()) return nullptr;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (isEmptyKey(slots_[i].key)) return nullptr;
    }
  }
  const Value* find(const Key& key) const { return const_cast<FlatHashMap*>(this)->find(key); }

  // Starts fetching the slot `key` would be found in, both its cache lines
  // when it straddles two (a hint; no effect on the map).
  void prefetch(const Key& key) const {
    if (slots_.empty()) return;
    const char* p = reinterpret_cast<const char*>(&slots_[home(key)]);
    __builtin_prefetch(p);
    __builtin_prefetch(p + sizeof(Slot) - 1);
  }

  // Returns the value for `key`, default-constructed if it was absent.
  std::pair<Value*, bool> tryEmplace(const Key& key) {
    if (isEmptyKey(key)) {
      if (has_zero_) return {&zero_.value, false};
      has_zero_ = true;
      zero_.value = Value{};
      ++size_;
      return {&zero_.value, true};
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t i = home(key);
    for (; !isEmptyKey(slots_[i].key); i = (i + 1) & mask_)
      if (slots_[i].key == key) return {&slots_[i].value, false};
    slots_[i].key = key;
    slots_[i].value = Value{};
    ++size_;
    return {&slots_[i].value, true};
  }

  bool erase(const Key& key) {
    if (isEmptyKey(key)) {
      if (!has_zero_) return false;
      has_zero_ = false;
      zero_.value = Value{};  // release what the value owned
      --size_;
      return true;
    }
    if (slots_.empty()) return false;
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (isEmptyKey(slots_[i].key)) return false;
      if (slots_[i].key == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole
    // unless that would move them before their home slot.
    size_t hole = i;
    for (size_t j = (hole + 1) & mask_; !isEmptyKey(slots_[j].key); j = (j + 1) & mask_) {
      size_t h = home(slots_[j].key);
      bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
      if (!movable) continue;
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
    slots_[hole].key = Key{};
    slots_[hole].value = Value{};  // release what the value owned
    --size_;
    return true;
  }

  template <typename F>
  void forEach(F&& f) {
    if (has_zero_) f(static_cast<const Key&>(zero_.key), zero_.value);
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!isEmptyKey(slots_[i].key)) f(static_cast<const Key&>(slots_[i].key), slots_[i].value);
  }
  template <typename F>
  void forEach(F&& f) const {
    if (has_zero_) f(static_cast<const Key&>(zero_.key), static_cast<const Value&>(zero_.value));
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!isEmptyKey(slots_[i].key))
        f(static_cast<const Key&>(slots_[i].key), static_cast<const Value&>(slots_[i].value));
  }

  void clear() {
    slots_.clear();
    zero_.value = Value{};
    has_zero_ = false;
    size_ = 0;
    mask_ = 0;
  }

 private:
  // A slot whose key is the value-initialized Key is empty (no separate
  // occupancy array: a lookup touches one slot, not a slot and a flag byte
  // elsewhere). That key itself, if ever used, lives in `zero_`.
  struct Slot {
    Key key{};
    Value value{};
  };
  static bool isEmptyKey(const Key& key) { return key == Key{}; }

  size_t home(const Key& key) const { return static_cast<size_t>(Hash{}(key)) & mask_; }

  void grow() {
    size_t cap = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<Slot> old_slots(cap);
    old_slots.swap(slots_);
    mask_ = cap - 1;
    for (size_t i = 0; i < old_slots.size(); ++i) {
      if (isEmptyKey(old_slots[i].key)) continue;
      size_t j = home(old_slots[i].key);
      while (!isEmptyKey(slots_[j].key)) j = (j + 1) & mask_;
      slots_[j] = std::move(old_slots[i]);
    }
  }

  std::vector<Slot> slots_;
  Slot zero_;
  bool has_zero_ = false;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace cardinal::pipeline::merge
