#include "pipeline/merge/emitter.h"

#include "codec/encode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "codec/wire.h"

namespace cardinal::pipeline::merge {

namespace {

// One TimeSeries (WriteRequest field 1) holding one native histogram (field
// 4): the emitted histogram fields plus its timestamp (field 15).
void appendHistogramSeries(std::string& out, const std::vector<std::pair<std::string, std::string>>& labels,
                           const std::string& histogram, int64_t timestamp) {
  std::string series, label, hist;
  for (const auto& [n, v] : labels) {
    label.clear();
    codec::wire::putLen(label, 1, n);
    codec::wire::putLen(label, 2, v);
    codec::wire::putLen(series, 1, label);
  }
  hist.reserve(histogram.size() + 11);
  hist = histogram;
  codec::wire::putTag(hist, 15, codec::wire::kVarint);
  codec::wire::putVarint(hist, static_cast<uint64_t>(timestamp));
  codec::wire::putLen(series, 4, hist);
  codec::wire::putLen(out, 1, series);
}

}  // namespace

std::vector<std::shared_ptr<const std::string>> encodeEmitted(const std::vector<MergeState::Emitted>& emitted,
                                                              size_t max_series, codec::WireProtocol protocol) {
  std::vector<std::shared_ptr<const std::string>> bodies;
  std::string raw;
  std::vector<core::LabelView> labels;
  size_t in_body = 0;
  if (protocol == codec::WireProtocol::kV2) {
    // Symbols point into `emitted`'s labels, alive until finish(); histogram
    // messages are copied in.
    codec::RequestV2Writer writer;
    std::string hist;
    auto flush_v2 = [&] {
      if (writer.seriesCount() == 0) return;
      writer.finish(raw);
      auto body = std::make_shared<std::string>();
      codec::compress(raw, *body);
      bodies.push_back(std::move(body));
    };
    for (const auto& e : emitted) {
      labels.clear();
      for (const auto& [n, v] : e.labels) labels.push_back({n, v});
      writer.beginSeries(labels);
      if (e.histogram) {
        hist = *e.histogram;
        codec::wire::putTag(hist, 15, codec::wire::kVarint);
        codec::wire::putVarint(hist, static_cast<uint64_t>(e.sample.timestamp));
        writer.addHistogram(hist);
      } else {
        writer.addSample(e.sample);
      }
      writer.endSeries();
      if (writer.seriesCount() >= max_series) flush_v2();
    }
    flush_v2();
    return bodies;
  }
  auto flush = [&] {
    if (in_body == 0) return;
    auto body = std::make_shared<std::string>();
    codec::compress(raw, *body);
    bodies.push_back(std::move(body));
    raw.clear();
    in_body = 0;
  };
  for (const auto& e : emitted) {
    if (e.histogram) {
      appendHistogramSeries(raw, e.labels, *e.histogram, e.sample.timestamp);
    } else {
      labels.clear();
      for (const auto& [n, v] : e.labels) labels.push_back({n, v});
      codec::appendSeries(raw, labels, std::span<const codec::Sample>(&e.sample, 1));
    }
    if (++in_body >= max_series) flush();
  }
  flush();
  return bodies;
}

}  // namespace cardinal::pipeline::merge
