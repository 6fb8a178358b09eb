#include "pipeline/plan_cache.h"

#include <cstring>

namespace cardinal::pipeline {
namespace {

void put32(std::string& out, size_t v) {
  const auto x = static_cast<uint32_t>(v);
  char b[4];
  std::memcpy(b, &x, 4);
  out.append(b, 4);
}
uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}


void pack(std::span<const core::LabelView> labels, std::string& out) {
  size_t n = 0;
  for (const auto& l : labels) n += 8 + l.name.size() + l.value.size();
  out.reserve(n);
  for (const auto& l : labels) {
    put32(out, l.name.size());
    put32(out, l.value.size());
    out.append(l.name);
    out.append(l.value);
  }
}

}  // namespace

SeriesPlan::SeriesPlan(std::span<const core::LabelView> in, std::string_view in_wire, Kind kind,
                       std::span<const core::LabelView> out, uint64_t out_hash, bool merge,
                       std::span<prometheus::Counter* const> counts)
    : counts_(counts.begin(), counts.end()), out_hash_(out_hash), kind_(kind), merge_(merge), wire_(!in_wire.empty()) {
  if (wire_) in_.assign(in_wire);
  else pack(in, in_);
  if (kind == Kind::kRewritten) pack(out, out_);
}

std::string_view SeriesPlan::labelWire(std::string_view raw, std::span<const core::LabelView> labels) {
  if (labels.empty() || raw.empty()) return {};
  const char* end = labels.back().value.data() + labels.back().value.size();
  if (end <= raw.data() || end > raw.data() + raw.size()) return {};
  return raw.substr(0, static_cast<size_t>(end - raw.data()));
}

bool SeriesPlan::madeFrom(std::span<const core::LabelView> labels, std::string_view wire) const {
  if (wire_) return wire.size() == in_.size() && std::memcmp(wire.data(), in_.data(), in_.size()) == 0;
  const char* p = in_.data();
  const char* end = p + in_.size();
  for (const auto& l : labels) {
    if (end - p < 8) return false;
    const uint32_t nn = get32(p), vn = get32(p + 4);
    p += 8;
    if (nn != l.name.size() || vn != l.value.size()) return false;
    if (std::memcmp(p, l.name.data(), nn) != 0 || std::memcmp(p + nn, l.value.data(), vn) != 0) return false;
    p += nn + vn;
  }
  return p == end;
}

void SeriesPlan::outLabels(std::vector<core::LabelView>& out) const {
  const char* p = out_.data();
  const char* end = p + out_.size();
  while (p < end) {
    const uint32_t nn = get32(p), vn = get32(p + 4);
    p += 8;
    out.push_back({std::string_view(p, nn), std::string_view(p + nn, vn)});
    p += nn + vn;
  }
}

size_t SeriesPlan::bytes() const {
  // The object, its two buffers and counter list, the shared_ptr control
  // block and the map node and ring slot that hold it.
  return sizeof(SeriesPlan) + in_.capacity() + out_.capacity() + counts_.capacity() * sizeof(void*) + 96;
}

PlanCache::PlanCache(size_t max_bytes) : per_shard_bytes_(max_bytes / kShards) {}

std::shared_ptr<const SeriesPlan> PlanCache::find(uint64_t key) const {
  const Shard& s = shardFor(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  return it == s.map.end() ? nullptr : it->second;
}

void PlanCache::put(uint64_t key, std::shared_ptr<const SeriesPlan> plan) {
  const size_t size = plan->bytes();
  if (size > per_shard_bytes_) return;  // a zero budget (or a huge label set): nothing is cached
  Shard& s = shardFor(key);
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.map.try_emplace(key, plan);
  if (!inserted) {  // the same key made again (two threads, or a collision): the newer plan wins
    s.bytes -= it->second->bytes();
    it->second = std::move(plan);
    s.bytes += size;
    return;
  }
  s.order.push_back(key);
  s.bytes += size;
  while (s.bytes > per_shard_bytes_ && !s.order.empty()) {
    auto old = s.map.find(s.order.front());
    s.order.pop_front();
    if (old == s.map.end()) continue;
    s.bytes -= old->second->bytes();
    s.map.erase(old);
    ++s.evictions;
  }
}

size_t PlanCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

size_t PlanCache::bytes() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.bytes;
  }
  return n;
}

uint64_t PlanCache::evictions() const {
  uint64_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.evictions;
  }
  return n;
}

}  // namespace cardinal::pipeline
