#pragma once
// Label views: names and values point into a buffer owned by someone else
// (the decompressed request, or a batch's arena). Whoever holds a LabelView
// must not outlive that buffer.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/hash.h"

namespace cardinal::core {

struct LabelView {
  std::string_view name;
  std::string_view value;
  bool operator==(const LabelView&) const = default;
};

inline constexpr std::string_view kMetricNameLabel = "__name__";

// Hash of a label set, order-sensitive (callers hash sorted sets).
// hashLabels in steps, for a caller that sees the labels one at a time:
// h = kLabelsHashSeed; per label h = hashBytes(value, hashBytes(name, h));
// then finishLabelsHash(h, count).
inline constexpr uint64_t kLabelsHashSeed = 0x2545f4914f6cdd1dULL;
inline uint64_t finishLabelsHash(uint64_t h, size_t count) { return mix64(h ^ count); }

// hashLabels with another string hash: hash(bytes, seed) -> uint64_t.
template <class HashString>
inline uint64_t hashLabelsWith(std::span<const LabelView> labels, HashString hash) {
  // Each string seeds the next, so ("ab","c") and ("a","bc") differ by length.
  uint64_t h = kLabelsHashSeed;
  for (const auto& l : labels) h = hash(l.value, hash(l.name, h));
  return finishLabelsHash(h, labels.size());
}

inline uint64_t hashLabels(std::span<const LabelView> labels) {
  return hashLabelsWith(labels, [](std::string_view s, uint64_t seed) { return hashBytes(s, seed); });
}

// The keyed check of a label set's canonical bytes (a 1.0 series' label
// fields, as the decoder's fast path reads them: codec::Series::wire_check):
// what a label-set plan keeps to know it is applied to the set it was made
// from (pipeline/plan_cache.h). Keyed with the process' secret.
inline uint64_t labelWireCheck(std::string_view wire, const HashKey& key = HashKey::random()) {
  return hashBytesKeyed(wire, key, wire.size());
}

inline bool labelsSorted(std::span<const LabelView> labels) {
  return std::is_sorted(labels.begin(), labels.end(),
                        [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
}

inline std::string_view metricName(std::span<const LabelView> labels) {
  for (const auto& l : labels)
    if (l.name == kMetricNameLabel) return l.value;
  return {};
}

}  // namespace cardinal::core
