#include "pipeline/cardinality/sketch/space_saving.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "core/binary_io.h"
#include "core/hash.h"

namespace cardinal::pipeline::cardinality {
namespace {

constexpr uint8_t kMagic = 'S';
constexpr uint8_t kVersion = 1;

uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  const uint64_t s = a + b;
  return s < a ? std::numeric_limits<uint64_t>::max() : s;
}

std::string_view cut(std::string_view v) { return v.substr(0, std::min(v.size(), SpaceSaving::kMaxValueBytes)); }


// Whether the string's characters live outside the object (not in the small-string buffer).
size_t heapBytes(const std::string& s) {
  const char* data = s.data();
  const char* self = reinterpret_cast<const char*>(&s);
  return (data >= self && data < self + sizeof(std::string)) ? 0 : s.capacity() + 1;
}

}  // namespace

SpaceSaving::SpaceSaving(uint32_t capacity)
    : capacity_(std::clamp<uint32_t>(capacity, 1, kMaxCapacity)),
      index_(std::bit_ceil(size_t{capacity_} * 2), kEmptySlot) {
  heap_.reserve(capacity_);
}

size_t SpaceSaving::slotOf(uint64_t hash) const {
  return static_cast<size_t>(core::mix64(hash)) & (index_.size() - 1);
}

int64_t SpaceSaving::find(uint64_t hash) const {
  const size_t mask = index_.size() - 1;
  for (size_t i = slotOf(hash);; i = (i + 1) & mask) {
    const uint32_t e = index_[i];
    if (e == kEmptySlot) return -1;
    if (entries_[e - 1].hash == hash) return e - 1;
  }
}

void SpaceSaving::indexInsert(uint64_t hash, uint32_t entry) {
  const size_t mask = index_.size() - 1;
  size_t i = slotOf(hash);
  while (index_[i] != kEmptySlot) i = (i + 1) & mask;
  index_[i] = entry + 1;
}

// Linear-probing deletion by backward shift: no tombstones, probes stay short.
void SpaceSaving::indexErase(uint64_t hash) {
  const size_t mask = index_.size() - 1;
  size_t i = slotOf(hash);
  while (index_[i] != kEmptySlot && entries_[index_[i] - 1].hash != hash) i = (i + 1) & mask;
  if (index_[i] == kEmptySlot) return;
  for (size_t j = (i + 1) & mask; index_[j] != kEmptySlot; j = (j + 1) & mask) {
    const size_t home = slotOf(entries_[index_[j] - 1].hash);
    // Move j into the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    index_[i] = index_[j];
    i = j;
  }
  index_[i] = kEmptySlot;
}

bool SpaceSaving::heapLess(uint32_t a, uint32_t b) const {
  return entries_[heap_[a]].count < entries_[heap_[b]].count;
}

void SpaceSaving::swapHeap(uint32_t a, uint32_t b) {
  std::swap(heap_[a], heap_[b]);
  entries_[heap_[a]].heap_pos = a;
  entries_[heap_[b]].heap_pos = b;
}

void SpaceSaving::siftDown(uint32_t pos) {
  const auto n = static_cast<uint32_t>(heap_.size());
  for (;;) {
    const uint32_t l = 2 * pos + 1, r = l + 1;
    uint32_t smallest = pos;
    if (l < n && heapLess(l, smallest)) smallest = l;
    if (r < n && heapLess(r, smallest)) smallest = r;
    if (smallest == pos) return;
    swapHeap(pos, smallest);
    pos = smallest;
  }
}

void SpaceSaving::siftUp(uint32_t pos) {
  while (pos > 0) {
    const uint32_t parent = (pos - 1) / 2;
    if (!heapLess(pos, parent)) return;
    swapHeap(pos, parent);
    pos = parent;
  }
}

void SpaceSaving::add(uint64_t hash, std::string_view value, uint64_t weight) {
  if (weight == 0) return;
  total_ = saturatingAdd(total_, weight);
  if (const int64_t found = find(hash); found >= 0) {
    Entry& e = entries_[static_cast<size_t>(found)];
    e.count = saturatingAdd(e.count, weight);
    siftDown(e.heap_pos);
    return;
  }
  if (entries_.size() < capacity_) {
    const auto idx = static_cast<uint32_t>(entries_.size());
    entries_.push_back(Entry{hash, weight, 0, idx, std::string(cut(value))});
    heap_.push_back(idx);
    siftUp(idx);
    indexInsert(hash, idx);
    return;
  }
  // Full: the smallest counter is taken over; its count becomes the newcomer's error.
  const uint32_t idx = heap_[0];
  Entry& e = entries_[idx];
  indexErase(e.hash);
  e.hash = hash;
  e.error = e.count;
  e.count = saturatingAdd(e.count, weight);
  e.value.assign(cut(value));
  indexInsert(hash, idx);
  siftDown(0);
}

std::vector<HeavyHitter> SpaceSaving::top(size_t n) const {
  std::vector<uint32_t> order(entries_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  n = std::min(n, order.size());
  auto before = [this](uint32_t a, uint32_t b) {
    const Entry &x = entries_[a], &y = entries_[b];
    if (x.count != y.count) return x.count > y.count;
    if (x.value != y.value) return x.value < y.value;
    return x.hash < y.hash;
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), before);
  std::vector<HeavyHitter> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Entry& e = entries_[order[i]];
    out.push_back(HeavyHitter{e.value, e.count, e.error});
  }
  return out;
}

bool SpaceSaving::contains(uint64_t hash) const { return find(hash) >= 0; }

std::optional<uint64_t> SpaceSaving::count(uint64_t hash) const {
  const int64_t found = find(hash);
  if (found < 0) return std::nullopt;
  return entries_[static_cast<size_t>(found)].count;
}

void SpaceSaving::rebuild() {
  std::fill(index_.begin(), index_.end(), kEmptySlot);
  heap_.resize(entries_.size());
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    heap_[i] = i;
    entries_[i].heap_pos = i;
    indexInsert(entries_[i].hash, i);
  }
  for (auto pos = static_cast<uint32_t>(heap_.size() / 2); pos-- > 0;) siftDown(pos);
}

void SpaceSaving::decay() {
  // Halving is monotone, so the heap order survives unless a counter reaches 0 and is dropped.
  bool dropped = false;
  for (Entry& e : entries_) {
    e.count /= 2;
    e.error = std::min((e.error + 1) / 2, e.count);
    dropped = dropped || e.count == 0;
  }
  total_ /= 2;
  if (!dropped) return;
  std::erase_if(entries_, [](const Entry& e) { return e.count == 0; });
  rebuild();
}

size_t SpaceSaving::memoryBytes() const {
  size_t bytes = sizeof(*this) + entries_.capacity() * sizeof(Entry) + heap_.capacity() * sizeof(uint32_t) +
                 index_.capacity() * sizeof(uint32_t);
  for (const Entry& e : entries_) bytes += heapBytes(e.value);
  return bytes;
}

// Layout, little-endian: 'S', version, capacity (u32), total (u64), count (u32), then
// count x (hash u64, count u64, error u64, value length u8, value bytes).
void SpaceSaving::serialize(std::string& out) const {
  core::BinaryWriter w(out);
  w.put<uint8_t>(kMagic);
  w.put<uint8_t>(kVersion);
  w.put<uint32_t>(capacity_);
  w.put<uint64_t>(total_);
  w.put<uint32_t>(static_cast<uint32_t>(entries_.size()));
  for (const Entry& e : entries_) {
    w.put<uint64_t>(e.hash);
    w.put<uint64_t>(e.count);
    w.put<uint64_t>(e.error);
    w.put<uint8_t>(static_cast<uint8_t>(e.value.size()));
    out.append(e.value);
  }
}

std::optional<SpaceSaving> SpaceSaving::deserialize(std::string_view& in) {
  constexpr size_t kMinEntryBytes = 8 + 8 + 8 + 1;
  core::BinaryReader r(in);
  if (r.take<uint8_t>() != kMagic || r.take<uint8_t>() != kVersion) return std::nullopt;
  const uint32_t capacity = r.take<uint32_t>();
  const uint64_t total = r.take<uint64_t>();
  const uint32_t n = r.take<uint32_t>();
  if (r.failed() || capacity == 0 || capacity > kMaxCapacity || n > capacity || n > r.rest().size() / kMinEntryBytes)
    return std::nullopt;
  SpaceSaving s(capacity);
  s.total_ = total;
  s.entries_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t hash = r.take<uint64_t>();
    const uint64_t count = r.take<uint64_t>();
    const uint64_t error = r.take<uint64_t>();
    const uint8_t len = r.take<uint8_t>();
    if (r.failed() || error > count || len > kMaxValueBytes || r.rest().size() < len || s.find(hash) >= 0)
      return std::nullopt;
    const auto idx = static_cast<uint32_t>(s.entries_.size());
    s.entries_.push_back(Entry{hash, count, error, idx, std::string(r.rest().substr(0, len))});
    r.skip(len);
    s.indexInsert(hash, idx);
  }
  s.rebuild();
  in = r.rest();
  return s;
}

}  // namespace cardinal::pipeline::cardinality
