#include "codec/encode.h"

#include <cstring>

#include "codec/wire.h"

namespace cardinal::codec {
namespace {

using wire::lenFieldSize;
using wire::varintSize;

size_t labelSize(const LabelView& l) { return lenFieldSize(l.name.size()) + lenFieldSize(l.value.size()); }

size_t sampleSize(const Sample& s) { return 9 + 1 + varintSize(static_cast<uint64_t>(s.timestamp)); }

void putLabel(std::string& out, uint32_t field, const LabelView& l) {
  wire::putTag(out, field, wire::kLen);
  wire::putVarint(out, labelSize(l));
  wire::putLen(out, 1, l.name);
  wire::putLen(out, 2, l.value);
}

size_t exemplarSize(const SeriesBatch& b, const ExemplarView& e) {
  size_t n = 9 + 1 + varintSize(static_cast<uint64_t>(e.timestamp));
  for (const auto& l : b.labelsOf(e)) n += lenFieldSize(labelSize(l));
  return n;
}

size_t labelsAndSamplesSize(std::span<const LabelView> labels, std::span<const Sample> samples) {
  size_t n = 0;
  for (const auto& l : labels) n += lenFieldSize(labelSize(l));
  for (const auto& smp : samples) n += lenFieldSize(sampleSize(smp));
  return n;
}

void putLabelsAndSamples(std::string& out, std::span<const LabelView> labels, std::span<const Sample> samples) {
  for (const auto& l : labels) putLabel(out, 1, l);
  for (const auto& smp : samples) {
    wire::putTag(out, 2, wire::kLen);
    wire::putVarint(out, sampleSize(smp));
    wire::putDouble(out, 1, smp.value);
    wire::putTag(out, 2, wire::kVarint);
    wire::putVarint(out, static_cast<uint64_t>(smp.timestamp));
  }
}

size_t changedSeriesSize(const SeriesBatch& b, const Series& s) {
  size_t n = labelsAndSamplesSize(b.labelsOf(s), b.samplesOf(s));
  for (const auto& e : b.exemplarsOf(s)) n += lenFieldSize(exemplarSize(b, e));
  for (const auto& h : b.histogramsOf(s)) n += lenFieldSize(h.raw.size());
  return n;
}

void putChangedSeries(std::string& out, const SeriesBatch& b, const Series& s) {
  wire::putTag(out, 1, wire::kLen);
  wire::putVarint(out, changedSeriesSize(b, s));
  putLabelsAndSamples(out, b.labelsOf(s), b.samplesOf(s));
  for (const auto& e : b.exemplarsOf(s)) {
    wire::putTag(out, 3, wire::kLen);
    wire::putVarint(out, exemplarSize(b, e));
    for (const auto& l : b.labelsOf(e)) putLabel(out, 1, l);
    wire::putDouble(out, 2, e.value);
    wire::putTag(out, 3, wire::kVarint);
    wire::putVarint(out, static_cast<uint64_t>(e.timestamp));
  }
  for (const auto& h : b.histogramsOf(s)) wire::putLen(out, 4, h.raw);
}

}  // namespace

void appendSeries(std::string& out, std::span<const LabelView> labels, std::span<const Sample> samples) {
  wire::putTag(out, 1, wire::kLen);
  wire::putVarint(out, labelsAndSamplesSize(labels, samples));
  putLabelsAndSamples(out, labels, samples);
}

void encodeWriteRequest(const SeriesBatch& batch, std::string& out) {
  out.clear();
  size_t estimate = 0;
  for (const auto& s : batch.series) estimate += s.raw.size() + 8;
  for (const auto& m : batch.metadata) estimate += m.raw.size() + 6;
  out.reserve(estimate);
  for (const auto& s : batch.series) {
    if (s.dropped) continue;
    if (s.changed) putChangedSeries(out, batch, s);
    else wire::putLen(out, 1, s.raw);
  }
  for (const auto& m : batch.metadata) {
    if (!m.changed) {
      wire::putLen(out, 3, m.raw);
      continue;
    }
    std::string body;
    wire::putTag(body, 1, wire::kVarint);
    wire::putVarint(body, static_cast<uint64_t>(static_cast<int64_t>(m.type)));
    wire::putLen(body, 2, m.family);
    wire::putLen(body, 4, m.help);
    wire::putLen(body, 5, m.unit);
    wire::putLen(out, 3, body);
  }
}

}  // namespace cardinal::codec
