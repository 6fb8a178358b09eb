#include "codec/encode_v2.h"

#include "codec/encode.h"
#include "codec/wire.h"

namespace cardinal::codec {
namespace {

void putVarintField(std::string& out, uint32_t field, uint64_t v) {
  wire::putTag(out, field, wire::kVarint);
  wire::putVarint(out, v);
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool isHistogramType(MetricType t) { return t == MetricType::kHistogram || t == MetricType::kGaugeHistogram; }

// 1.0 metadata entries by family, to attach them to the series of a 1.0 batch.
class MetadataByFamily {
 public:
  explicit MetadataByFamily(const SeriesBatch& b) : b_(b) {
    index_.clear();
    if (b.protocol != WireProtocol::kV1) return;  // 2.0 metadata is per series already
    for (size_t i = 0; i < b.metadata.size(); ++i)
      if (!b.metadata[i].family.empty()) index_[b.metadata[i].family] = i;  // the last entry wins
  }
  const MetadataView* find(std::string_view name) const {
    if (index_.empty()) return nullptr;
    if (auto* m = get(name)) return m;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (!endsWith(name, suffix)) continue;
      auto* m = get(name.substr(0, name.size() - suffix.size()));
      if (m && (isHistogramType(m->type) || (suffix != "_bucket" && m->type == MetricType::kSummary))) return m;
    }
    if (endsWith(name, "_total")) {  // OpenMetrics counters: the family has no _total
      auto* m = get(name.substr(0, name.size() - 6));
      if (m && m->type == MetricType::kCounter) return m;
    }
    return nullptr;
  }

 private:
  const MetadataView* get(std::string_view family) const {
    auto it = index_.find(family);
    return it == index_.end() ? nullptr : &b_.metadata[it->second];
  }
  const SeriesBatch& b_;
  static thread_local std::unordered_map<std::string_view, size_t> index_;
};
thread_local std::unordered_map<std::string_view, size_t> MetadataByFamily::index_;

thread_local RequestV2Writer t_writer;

// ---- 1.0 pieces (field numbers of prometheus.WriteRequest) ----------------

void putLabelV1(std::string& out, uint32_t field, const LabelView& l, std::string& scratch) {
  scratch.clear();
  wire::putLen(scratch, 1, l.name);
  wire::putLen(scratch, 2, l.value);
  wire::putLen(out, field, scratch);
}

void putSeriesV1(std::string& out, const SeriesBatch& b, const Series& s, std::string& series, std::string& scratch,
                 std::string& scratch2) {
  series.clear();
  for (const auto& l : b.labelsOf(s)) putLabelV1(series, 1, l, scratch);
  for (const auto& smp : b.samplesOf(s)) {
    scratch.clear();
    wire::putDouble(scratch, 1, smp.value);
    putVarintField(scratch, 2, static_cast<uint64_t>(smp.timestamp));
    wire::putLen(series, 2, scratch);
  }
  for (const auto& e : b.exemplarsOf(s)) {
    scratch.clear();
    for (const auto& l : b.labelsOf(e)) putLabelV1(scratch, 1, l, scratch2);
    wire::putDouble(scratch, 2, e.value);
    putVarintField(scratch, 3, static_cast<uint64_t>(e.timestamp));
    wire::putLen(series, 3, scratch);
  }
  for (const auto& h : b.histogramsOf(s)) {
    scratch.clear();
    appendHistogramForV1(scratch, h.raw);
    wire::putLen(series, 4, scratch);
  }
  wire::putLen(out, 1, series);
}

}  // namespace

// ---- RequestV2Writer --------------------------------------------------------

void RequestV2Writer::reset() {
  index_.clear();
  symbols_.clear();
  symbol_bytes_ = 0;
  series_count_ = 0;
  body_.clear();
  series_.clear();
  ref("");  // symbols[0]
}

uint32_t RequestV2Writer::ref(std::string_view s) {
  auto [it, inserted] = index_.try_emplace(s, static_cast<uint32_t>(symbols_.size()));
  if (inserted) {
    symbols_.push_back(s);
    symbol_bytes_ += s.size();
  }
  return it->second;
}

void RequestV2Writer::putRefs(std::string& out, std::span<const LabelView> labels) {
  if (labels.empty()) return;
  scratch_.clear();
  for (const auto& l : labels) {
    wire::putVarint(scratch_, ref(l.name));
    wire::putVarint(scratch_, ref(l.value));
  }
  wire::putLen(out, 1, scratch_);
}

void RequestV2Writer::beginSeries(std::span<const LabelView> labels) {
  series_.clear();
  putRefs(series_, labels);
}

void RequestV2Writer::addSample(const Sample& s, int64_t start_timestamp) {
  scratch_.clear();
  wire::putDouble(scratch_, 1, s.value);
  putVarintField(scratch_, 2, static_cast<uint64_t>(s.timestamp));
  if (start_timestamp != 0) putVarintField(scratch_, 3, static_cast<uint64_t>(start_timestamp));
  wire::putLen(series_, 2, scratch_);
}

void RequestV2Writer::addHistogram(std::string_view histogram_message) { wire::putLen(series_, 3, histogram_message); }

void RequestV2Writer::addExemplar(std::span<const LabelView> labels, double value, int64_t timestamp) {
  std::string exemplar;  // cold enough: exemplars are rare next to samples
  putRefs(exemplar, labels);
  wire::putDouble(exemplar, 2, value);
  putVarintField(exemplar, 3, static_cast<uint64_t>(timestamp));
  wire::putLen(series_, 4, exemplar);
}

void RequestV2Writer::setMetadata(MetricType type, std::string_view help, std::string_view unit) {
  scratch_.clear();
  if (type != MetricType::kUnknown) putVarintField(scratch_, 1, static_cast<uint64_t>(static_cast<int64_t>(type)));
  if (!help.empty()) putVarintField(scratch_, 3, ref(help));
  if (!unit.empty()) putVarintField(scratch_, 4, ref(unit));
  wire::putLen(series_, 5, scratch_);
}

void RequestV2Writer::endSeries() {
  wire::putLen(body_, 5, series_);
  ++series_count_;
}

void RequestV2Writer::finish(std::string& out) {
  out.clear();
  out.reserve(symbol_bytes_ + 3 * symbols_.size() + body_.size());
  for (auto s : symbols_) wire::putLen(out, 4, s);
  out.append(body_);
  reset();
}

// ---- batch encoders ---------------------------------------------------------

void encodeRequestV2(const SeriesBatch& batch, std::string& out) {
  RequestV2Writer& w = t_writer;
  const bool from_v2 = batch.protocol == WireProtocol::kV2;
  const auto& starts = batch.v2.sample_start_timestamps;
  const auto& series_metadata = batch.v2.series_metadata;
  MetadataByFamily by_family(batch);
  for (size_t i = 0; i < batch.series.size(); ++i) {
    const Series& s = batch.series[i];
    if (s.dropped) continue;
    auto labels = batch.labelsOf(s);
    w.beginSeries(labels);
    for (uint32_t k = 0; k < s.sample_count; ++k) {
      size_t at = s.sample_begin + k;
      w.addSample(batch.samples[at], at < starts.size() ? starts[at] : 0);
    }
    for (const auto& h : batch.histogramsOf(s)) w.addHistogram(h.raw);
    for (const auto& e : batch.exemplarsOf(s)) w.addExemplar(batch.labelsOf(e), e.value, e.timestamp);
    const MetadataView* m = nullptr;
    if (from_v2) {
      if (i < series_metadata.size() && series_metadata[i] != V2Parts::kNoMetadata)
        m = &batch.metadata[series_metadata[i]];
    } else {
      m = by_family.find(core::metricName(labels));
    }
    if (m) w.setMetadata(m->type, m->help, m->unit);
    w.endSeries();
  }
  w.finish(out);
}

void encodeWriteRequestFromV2(const SeriesBatch& batch, std::string& out) {
  out.clear();
  size_t estimate = 0;
  for (const auto& s : batch.series) estimate += 2 * s.raw.size() + 16;
  out.reserve(estimate);
  thread_local std::string series, scratch, scratch2;
  for (const auto& s : batch.series)
    if (!s.dropped) putSeriesV1(out, batch, s, series, scratch, scratch2);
  for (const auto& m : batch.metadata) {
    if (m.family.empty()) continue;  // no type: nothing a 1.0 receiver could file it under
    scratch.clear();
    putVarintField(scratch, 1, static_cast<uint64_t>(static_cast<int64_t>(m.type)));
    wire::putLen(scratch, 2, m.family);
    wire::putLen(scratch, 4, m.help);
    wire::putLen(scratch, 5, m.unit);
    wire::putLen(out, 3, scratch);
  }
}

void encodeForProtocol(const SeriesBatch& batch, WireProtocol protocol, std::string& out) {
  if (protocol == WireProtocol::kV2) return encodeRequestV2(batch, out);
  if (batch.protocol == WireProtocol::kV2) return encodeWriteRequestFromV2(batch, out);
  encodeWriteRequest(batch, out);
}

void appendHistogramForV1(std::string& out, std::string_view msg) {
  wire::Reader r(msg);
  const char* copied = msg.data();  // bytes before this are in `out`
  while (!r.done()) {
    const char* field_start = reinterpret_cast<const char*>(r.p);
    uint32_t f, wt;
    if (!r.tag(f, wt) || !r.skip(f, wt)) break;  // validated on decode; copy the rest as is
    if (f == 17) {
      out.append(copied, static_cast<size_t>(field_start - copied));
      copied = reinterpret_cast<const char*>(r.p);
    }
  }
  out.append(copied, static_cast<size_t>(msg.data() + msg.size() - copied));
}

}  // namespace cardinal::codec
