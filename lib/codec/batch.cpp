#include "codec/batch.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace cardinal::codec {

bool Sample::operator==(const Sample& o) const {
  return timestamp == o.timestamp && std::memcmp(&value, &o.value, sizeof value) == 0;
}

void SeriesBatch::clear() {
  series.clear();
  labels.clear();
  samples.clear();
  histograms.clear();
  exemplars.clear();
  exemplar_labels.clear();
  metadata.clear();
  protocol = WireProtocol::kV1;
  v2.clear();
  size_t kept = 0, n = 0;
  while (n < chunks_.size() && kept + chunks_[n].size <= kKeepInternBytes) kept += chunks_[n++].size;
  chunks_.resize(n);
  chunk_ = 0;
  chunk_used_ = 0;
}

void SeriesBatch::setLabels(Series& s, std::span<const LabelView> new_labels) {
  setLabels(s, new_labels, core::hashLabels(new_labels));
}

void SeriesBatch::setLabels(Series& s, std::span<const LabelView> new_labels, uint64_t hash) {
  assert(core::labelsSorted(new_labels) && "setLabels needs sorted labels");
  assert(hash == core::hashLabels(new_labels));
  s.label_begin = static_cast<uint32_t>(labels.size());
  s.label_count = static_cast<uint32_t>(new_labels.size());
  labels.insert(labels.end(), new_labels.begin(), new_labels.end());
  s.hash = hash;
  s.changed = true;
  s.canonical = false;  // raw's label bytes (and wire_check) are the old set's
}

std::string_view SeriesBatch::intern(std::string_view v) {
  for (;; ++chunk_, chunk_used_ = 0) {
    if (chunk_ == chunks_.size()) {
      const size_t size = std::max(kInternChunkBytes, v.size());
      chunks_.push_back({std::unique_ptr<char[]>(new char[size]), size});
    }
    InternChunk& c = chunks_[chunk_];
    if (c.size - chunk_used_ >= v.size()) {
      char* p = c.data.get() + chunk_used_;
      if (!v.empty()) std::memcpy(p, v.data(), v.size());
      chunk_used_ += v.size();
      return {p, v.size()};
    }
  }
}

bool SeriesBatch::anyChanged() const {
  for (const auto& s : series)
    if (s.changed || s.dropped) return true;
  for (const auto& m : metadata)
    if (m.changed) return true;
  return false;
}

SeriesBatch::LiveCounts SeriesBatch::liveCounts() const {
  LiveCounts c;
  for (const auto& s : series) {
    if (s.dropped) continue;
    ++c.series;
    c.samples += s.sample_count;
    c.histograms += s.histogram_count;
    c.exemplars += s.exemplar_count;
  }
  return c;
}

}  // namespace cardinal::codec
