#include "pipeline/plan_cache.h"

#include <new>

#include "core/hash.h"
#include "core/sharded.h"

namespace cardinal::pipeline {
namespace {

uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

char* pack(std::span<const core::LabelView> labels, char* p) {
  for (const auto& l : labels) {
    const auto nn = static_cast<uint32_t>(l.name.size()), vn = static_cast<uint32_t>(l.value.size());
    std::memcpy(p, &nn, 4);
    std::memcpy(p + 4, &vn, 4);
    if (nn) std::memcpy(p + 8, l.name.data(), nn);  // an empty view may have no data pointer
    if (vn) std::memcpy(p + 8 + nn, l.value.data(), vn);
    p += 8 + nn + vn;
  }
  return p;
}

constexpr uint32_t kIndex = 0xffffffffu;  // a packed "name length" that marks an index into the input

// Packs `out`; with `in`, a label of `out` equal to one of `in` (both sorted by
// name) is packed as (kIndex, its index in `in`). Returns the size, writes only
// when `p` is set; `has_bytes` tells whether any label was packed as bytes.
size_t packOut(std::span<const core::LabelView> out, std::span<const core::LabelView> in, char* p, bool& has_bytes) {
  size_t n = 0, j = 0;
  has_bytes = false;
  for (const auto& l : out) {
    while (j < in.size() && in[j].name < l.name) ++j;
    if (j < in.size() && in[j].name == l.name && in[j].value == l.value) {
      if (p) {
        const auto idx = static_cast<uint32_t>(j);
        std::memcpy(p + n, &kIndex, 4);
        std::memcpy(p + n + 4, &idx, 4);
      }
      n += 8;
      continue;
    }
    has_bytes = true;
    if (p) pack(std::span<const core::LabelView>(&l, 1), p + n);
    n += 8 + l.name.size() + l.value.size();
  }
  return n;
}

}  // namespace

void SeriesPlan::Free::operator()(SeriesPlan* p) const {
  p->~SeriesPlan();
  ::operator delete(p);
}

uint64_t SeriesPlan::checkOf(std::span<const core::LabelView> labels) {
  const core::HashKey& key = core::HashKey::random();
  return core::hashLabelsWith(labels,
                              [&](std::string_view s, uint64_t seed) { return core::hashBytesKeyed(s, key, seed); });
}

SeriesPlan::Ptr SeriesPlan::make(std::span<const core::LabelView> in, std::optional<uint64_t> in_wire_check, Kind kind,
                                 std::span<const core::LabelView> out, uint64_t out_hash, bool merge,
                                 std::span<prometheus::Counter* const> counts) {
  const bool wire = in_wire_check.has_value();
  bool out_has_bytes = false;
  const size_t out_size = kind == Kind::kRewritten ? packOut(out, in, nullptr, out_has_bytes) : 0;
  const size_t counts_size = counts.size() * sizeof(prometheus::Counter*);
  void* mem = ::operator new(sizeof(SeriesPlan) + counts_size + out_size);
  Ptr p(new (mem) SeriesPlan());
  p->out_hash_ = out_hash;
  p->check_ = wire ? *in_wire_check : checkOf(in);
  p->out_size_ = static_cast<uint32_t>(out_size);
  p->n_counts_ = static_cast<uint32_t>(counts.size());
  p->kind_ = kind;
  p->merge_ = merge;
  p->wire_ = wire;
  p->out_has_bytes_ = out_has_bytes;
  char* d = p->data();
  if (counts_size) std::memcpy(d, counts.data(), counts_size);
  d += counts_size;
  if (out_size) packOut(out, in, d, out_has_bytes);
  return p;
}

bool SeriesPlan::madeFrom(std::span<const core::LabelView> labels, std::optional<uint64_t> wire_check) const {
  if (wire_) return wire_check && check_ == *wire_check;
  return check_ == checkOf(labels);
}

void SeriesPlan::unpackLabels(std::string_view packed, std::span<const core::LabelView> in,
                              std::vector<core::LabelView>& out) {
  const char* p = packed.data();
  const char* end = p + packed.size();
  while (p < end) {
    const uint32_t nn = get32(p), vn = get32(p + 4);
    p += 8;
    if (nn == kIndex) {
      // In range whenever `in` is the set the plan was made from; madeFrom
      // checks that by hashes, so a read past `in` is ruled out here too.
      if (vn < in.size()) out.push_back(in[vn]);
      continue;
    }
    out.push_back({std::string_view(p, nn), std::string_view(p + nn, vn)});
    p += nn + vn;
  }
}

PlanCache::PlanCache(size_t max_bytes) : per_shard_bytes_(max_bytes / kShards) {}

PlanCache::~PlanCache() {
  for (auto& s : shards_) s.plans.forEach([](uint64_t, SeriesPlan* p) { SeriesPlan::Free{}(p); });
}

namespace {
constexpr uint32_t kMaxAdmitShift = 10;  // at least 1 in 1024 new label sets is still tried
// The bits admission looks at: independent of the bits that pick the shard and the slot.
uint64_t admissionBits(uint64_t key) { return core::mix64(key ^ 0x2545f4914f6cdd1dULL); }
}  // namespace

bool PlanCache::admits(uint64_t key) const {
  if (per_shard_bytes_ == 0) return false;
  const Shard& s = shardFor(key);
  const uint32_t shift = s.admit_shift.load(std::memory_order_relaxed);
  return !s.full.load(std::memory_order_relaxed) || shift == 0 || (admissionBits(key) & ((uint64_t{1} << shift) - 1)) == 0;
}

void PlanCache::put(uint64_t key, SeriesPlan::Ptr plan) {
  const size_t size = charge(*plan);
  if (size > per_shard_bytes_) return;  // a zero budget (or a huge label set): nothing is cached
  Shard& s = shardFor(key);
  std::lock_guard lock(s.mu);
  if (!admits(key)) return;
  auto [slot, inserted] = s.plans.tryEmplace(key);
  if (!inserted) {  // the same key made again (two threads, or a collision): the newer plan wins
    s.bytes -= charge(**slot);
    SeriesPlan::Free{}(*slot);
    *slot = plan.release();
    s.bytes += size;
    return;
  }
  *slot = plan.release();
  s.order.push_back(key);
  s.bytes += size;
  while (s.bytes > per_shard_bytes_ && !s.order.empty()) {
    const uint64_t old = s.order.front();
    s.order.pop_front();
    SeriesPlan** victim = s.plans.find(old);
    if (!victim) continue;
    s.bytes -= charge(**victim);
    // Admission: a plan that leaves unused means plans do not live long
    // enough to be replayed: admit half as many; one that was used, twice as many.
    const uint32_t shift = s.admit_shift.load(std::memory_order_relaxed);
    if ((*victim)->replays_ == 0) {
      if (shift < kMaxAdmitShift) s.admit_shift.store(shift + 1, std::memory_order_relaxed);
    } else if (shift > 0) {
      s.admit_shift.store(shift - 1, std::memory_order_relaxed);
    }
    SeriesPlan::Free{}(*victim);
    s.plans.erase(old);
    ++s.evictions;
    s.full.store(true, std::memory_order_relaxed);
  }
}

size_t PlanCache::size() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.plans.size(); });
}

size_t PlanCache::bytes() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.bytes; });
}

uint64_t PlanCache::evictions() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.evictions; });
}

uint64_t PlanCache::replays() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.replays; });
}

uint64_t PlanCache::misses() const {
  return core::sumOverShards(shards_, [](const Shard& s) { return s.misses; });
}

}  // namespace cardinal::pipeline
