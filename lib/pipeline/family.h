#pragma once
// Metric families and their types. A family (`x`, `x_bucket`, `x_sum`,
// `x_count`, `x_created`) always gets one decision, so the relabel and merge
// stages work on the family name, never on a part of it.
//
// Type sources, in order: remote-write metadata (Prometheus sends it in
// separate periodic requests; kept in this table), then name conventions,
// then a rule's `type`, then gauge. `_sum`/`_count` are histogram or summary
// parts only when metadata says so or a `_bucket{le}` / `{quantile}` sibling
// has been seen: the seed's `api_request_count` and `auth_event_count` are
// plain metrics. Unknown types get gauge handling, never counter arithmetic.
//
// Thread-safe; bounded (families beyond the cap are resolved by convention
// only and counted).

#include <atomic>
#include <functional>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "codec/batch.h"

namespace cardinal::pipeline {

// How a series is aggregated when its family is merged.
enum class Role {
  kCounter,          // counters, histogram buckets/_sum/_count, summary _sum/_count
  kGauge,            // gauges, unknown, info, stateset, gauge histograms, _created
  kSummaryQuantile,  // {quantile} series of a summary: cannot be merged
};

enum class TypeSource { kMetadata, kConvention, kRule, kDefault };
std::string_view typeSourceName(TypeSource s);
std::string_view metricTypeName(codec::MetricType t);

// A series' metric name and `le`/`quantile` markers, what family resolution
// needs: noted by the decoders (Series::shaped), else scanned from `labels`,
// the series' current labels.
struct SeriesShape {
  std::string_view name;
  bool has_le = false;
  bool has_quantile = false;
};
SeriesShape seriesShape(std::span<const core::LabelView> labels);
inline SeriesShape seriesShape(const codec::Series& s, std::span<const core::LabelView> labels) {
  return s.shaped ? SeriesShape{s.name, s.has_le, s.has_quantile} : seriesShape(labels);
}

struct FamilyInfo {
  std::string_view family;  // a view into the metric name passed in
  codec::MetricType type = codec::MetricType::kUnknown;
  Role role = Role::kGauge;
  TypeSource source = TypeSource::kDefault;
};

class TypeTable {
 public:
  explicit TypeTable(size_t max_families = 200'000) : max_families_(max_families) {}

  // Learns from a decoded request: its metadata entries, and `_bucket{le}` /
  // `{quantile}` series that reveal histogram and summary families.
  void observe(const codec::SeriesBatch& batch);
  void setType(std::string_view family, codec::MetricType type);

  // Resolves a series' family, type and merge role. `rule_says_counter` is
  // the fallback of a matching rule's `type` (nullopt-like: -1 none, 0 gauge, 1 counter).
  FamilyInfo resolve(std::string_view metric_name, bool has_le, bool has_quantile, int rule_type = -1) const;

  // Merged families: once a rewrite has collapsed any series of a family, all
  // its series go through the merge engine (so no raw series can collide with
  // a merged one). Sticky within one rule-set generation; a reload starts over.
  void markMerged(std::string_view family, uint64_t generation);
  bool isMerged(std::string_view family, uint64_t generation) const;
  size_t mergedFamilies() const;

  // Bumped whenever a family's known type changes; part of decision-cache keys.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  size_t size() const;
  uint64_t overflow() const { return overflow_.load(); }

 private:
  struct Entry {
    codec::MetricType type = codec::MetricType::kUnknown;
    bool from_metadata = false;
    bool has_buckets = false;    // a name_bucket{le} series was seen
    bool has_quantiles = false;  // a name{quantile} series was seen
  };
  // Heterogeneous lookup: string_view keys without building a std::string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  const Entry* find(std::string_view family) const;  // caller holds the lock
  void update(std::string_view family, const Entry& e);

  size_t max_families_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> table_;
  mutable std::shared_mutex merged_mu_;
  std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>> merged_;  // family -> generation
  std::atomic<size_t> merged_count_{0};
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> overflow_{0};
};

}  // namespace cardinal::pipeline
