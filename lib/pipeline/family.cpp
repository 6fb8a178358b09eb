#include "pipeline/family.h"

#include <mutex>

namespace cardinal::pipeline {
namespace {

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
std::string_view stripSuffix(std::string_view s, std::string_view suffix) { return s.substr(0, s.size() - suffix.size()); }

bool isHistogram(codec::MetricType t) {
  return t == codec::MetricType::kHistogram || t == codec::MetricType::kGaugeHistogram;
}

}  // namespace

std::string_view typeSourceName(TypeSource s) {
  switch (s) {
    case TypeSource::kMetadata: return "metadata";
    case TypeSource::kConvention: return "convention";
    case TypeSource::kRule: return "rule";
    case TypeSource::kDefault: return "default";
  }
  return "default";
}

std::string_view metricTypeName(codec::MetricType t) {
  switch (t) {
    case codec::MetricType::kCounter: return "counter";
    case codec::MetricType::kGauge: return "gauge";
    case codec::MetricType::kHistogram: return "histogram";
    case codec::MetricType::kGaugeHistogram: return "gaugehistogram";
    case codec::MetricType::kSummary: return "summary";
    case codec::MetricType::kInfo: return "info";
    case codec::MetricType::kStateset: return "stateset";
    default: return "unknown";
  }
}

const TypeTable::Entry* TypeTable::find(std::string_view family) const {
  auto it = table_.find(family);
  return it == table_.end() ? nullptr : &it->second;
}

void TypeTable::update(std::string_view family, const Entry& e) {
  std::unique_lock lock(mu_);
  auto it = table_.find(family);
  if (it == table_.end()) {
    if (table_.size() >= max_families_) {
      overflow_.fetch_add(1);
      return;
    }
    table_.emplace(std::string(family), e);
    version_.fetch_add(1);
    return;
  }
  Entry& cur = it->second;
  Entry next = cur;
  if (e.from_metadata) {
    next.type = e.type;
    next.from_metadata = true;
  }
  next.has_buckets |= e.has_buckets;
  next.has_quantiles |= e.has_quantiles;
  if (next.type != cur.type || next.from_metadata != cur.from_metadata || next.has_buckets != cur.has_buckets ||
      next.has_quantiles != cur.has_quantiles) {
    cur = next;
    version_.fetch_add(1);
  }
}

void TypeTable::setType(std::string_view family, codec::MetricType type) {
  Entry e;
  e.type = type;
  e.from_metadata = true;
  update(family, e);
}

SeriesShape seriesShape(std::span<const core::LabelView> labels) {
  SeriesShape s;
  for (const auto& l : labels) {
    if (l.name == core::kMetricNameLabel) s.name = l.value;
    else if (l.name == "le") s.has_le = true;
    else if (l.name == "quantile") s.has_quantile = true;
  }
  return s;
}

void TypeTable::observe(const codec::SeriesBatch& batch) {
  for (const auto& m : batch.metadata) {
    if (m.family.empty()) continue;
    {
      std::shared_lock lock(mu_);
      const Entry* e = find(m.family);
      if (e && e->from_metadata && e->type == m.type) continue;  // the common case: nothing new
    }
    setType(m.family, m.type);
  }
  for (const auto& s : batch.series) {
    const auto [name, has_le, has_quantile] = seriesShape(s, batch.labelsOf(s));
    if (!has_le && !has_quantile) continue;
    Entry e;
    std::string_view family = name;
    if (has_le && endsWith(name, "_bucket")) {
      family = stripSuffix(name, "_bucket");
      e.has_buckets = true;
    } else if (has_quantile) {
      e.has_quantiles = true;
    } else {
      continue;
    }
    {
      std::shared_lock lock(mu_);
      const Entry* cur = find(family);
      if (cur && (cur->has_buckets || !e.has_buckets) && (cur->has_quantiles || !e.has_quantiles)) continue;
    }
    update(family, e);
  }
}

FamilyInfo TypeTable::resolve(std::string_view name, bool has_le, bool has_quantile, int rule_type) const {
  FamilyInfo info;
  info.family = name;
  std::shared_lock lock(mu_);
  auto typeOf = [&](std::string_view f, codec::MetricType& t) {
    const Entry* e = find(f);
    if (e && e->from_metadata) {
      t = e->type;
      return true;
    }
    return false;
  };
  auto parentRole = [&](codec::MetricType t) {
    return t == codec::MetricType::kGaugeHistogram ? Role::kGauge : Role::kCounter;
  };

  // Parts of a histogram or summary family.
  for (std::string_view suffix : {"_bucket", "_sum", "_count", "_created"}) {
    if (!endsWith(name, suffix)) continue;
    std::string_view base = stripSuffix(name, suffix);
    const Entry* e = find(base);
    codec::MetricType t = codec::MetricType::kUnknown;
    bool meta = typeOf(base, t);
    bool histogram = meta ? isHistogram(t) : (e && e->has_buckets);
    bool summary = meta ? t == codec::MetricType::kSummary : (e && e->has_quantiles);
    if (suffix == "_bucket" && !meta && has_le) histogram = true;  // a bucket names its own family
    bool counter_created = meta && t == codec::MetricType::kCounter && suffix == "_created";
    if (!(histogram || summary || counter_created)) continue;
    if (suffix == "_bucket" && !histogram) continue;
    info.family = base;
    info.type = meta ? t : (histogram ? codec::MetricType::kHistogram : codec::MetricType::kSummary);
    info.source = meta ? TypeSource::kMetadata : TypeSource::kConvention;
    info.role = suffix == "_created" ? Role::kGauge : parentRole(info.type);
    return info;
  }

  codec::MetricType t = codec::MetricType::kUnknown;
  bool meta = typeOf(name, t);
  // OpenMetrics counters: metadata names the family without `_total`.
  if (!meta && endsWith(name, "_total") && typeOf(stripSuffix(name, "_total"), t) && t == codec::MetricType::kCounter) {
    info.family = stripSuffix(name, "_total");
    meta = true;
  }
  if (meta && t != codec::MetricType::kUnknown) {
    info.type = t;
    info.source = TypeSource::kMetadata;
    if (t == codec::MetricType::kCounter) info.role = Role::kCounter;
    else if (t == codec::MetricType::kSummary) info.role = has_quantile ? Role::kSummaryQuantile : Role::kGauge;
    else info.role = Role::kGauge;
    return info;
  }
  if (has_quantile) {
    info.type = codec::MetricType::kSummary;
    info.role = Role::kSummaryQuantile;
    info.source = TypeSource::kConvention;
    return info;
  }
  if (endsWith(name, "_total")) {
    info.type = codec::MetricType::kCounter;
    info.role = Role::kCounter;
    info.source = TypeSource::kConvention;
    return info;
  }
  if (rule_type >= 0) {
    info.type = rule_type == 1 ? codec::MetricType::kCounter : codec::MetricType::kGauge;
    info.role = rule_type == 1 ? Role::kCounter : Role::kGauge;
    info.source = TypeSource::kRule;
    return info;
  }
  info.type = codec::MetricType::kUnknown;
  info.role = Role::kGauge;
  info.source = TypeSource::kDefault;
  return info;
}

void TypeTable::markMerged(std::string_view family, uint64_t generation) {
  {
    std::shared_lock lock(merged_mu_);
    auto it = merged_.find(family);
    if (it != merged_.end() && it->second == generation) return;
  }
  std::unique_lock lock(merged_mu_);
  if (merged_.size() >= max_families_ && !merged_.count(family)) {
    overflow_.fetch_add(1);
    return;
  }
  merged_.insert_or_assign(std::string(family), generation);
  merged_count_.store(merged_.size());
}

bool TypeTable::isMerged(std::string_view family, uint64_t generation) const {
  if (merged_count_.load(std::memory_order_relaxed) == 0) return false;
  std::shared_lock lock(merged_mu_);
  auto it = merged_.find(family);
  return it != merged_.end() && it->second == generation;
}

size_t TypeTable::mergedFamilies() const { return merged_count_.load(); }

size_t TypeTable::size() const {
  std::shared_lock lock(mu_);
  return table_.size();
}

}  // namespace cardinal::pipeline
