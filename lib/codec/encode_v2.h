#pragma once
// Hot-path encoders for remote-write 2.0 and for translating between the two
// protocols, without generated classes:
//
//   encodeRequestV2()          any batch -> io.prometheus.write.v2.Request
//   encodeWriteRequestFromV2() a batch decoded from 2.0 -> prometheus.WriteRequest
//   encodeForProtocol()        picks the right one (and encode.h's 1.0 encoder,
//                              which copies unchanged series, for 1.0 -> 1.0)
//
// What carries over between the protocols (both ways): labels, samples,
// native histograms (the 1.0 and 2.0 Histogram messages share their field
// numbers; 2.0 adds start_timestamp = 17), exemplars, metric type, help and
// unit. What does not: start timestamps have no 1.0 field (dropped on the way
// to 1.0); 1.0 metadata is per family in separate entries, 2.0 metadata per
// series, so 1.0 -> 2.0 attaches each entry to the series of its family in
// the same request (Prometheus sends 1.0 metadata in requests of its own,
// which 2.0 cannot carry: such a request encodes to no series) and 2.0 -> 1.0
// writes one entry per family.
//
// 2.0 output always builds a fresh symbols table from the live series: a
// table copied from the request would still hold values a stage redacted.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codec/batch.h"

namespace cardinal::codec {

// Builds one 2.0 Request series by series, interning strings into its symbols
// table (symbols[0] = ""). Strings passed in are referenced, not copied: they
// must stay valid until finish(). Reusable: finish() resets it.
class RequestV2Writer {
 public:
  RequestV2Writer() { reset(); }
  // `labels` sorted by name; then any of the add*/setMetadata calls; then endSeries().
  void beginSeries(std::span<const LabelView> labels);
  void addSample(const Sample& s, int64_t start_timestamp = 0);
  void addHistogram(std::string_view histogram_message);  // a complete Histogram message
  void addExemplar(std::span<const LabelView> labels, double value, int64_t timestamp);
  void setMetadata(MetricType type, std::string_view help, std::string_view unit);
  void endSeries();

  size_t seriesCount() const { return series_count_; }
  // Replaces `out` with the request (symbols first, then the series) and resets.
  void finish(std::string& out);

 private:
  void reset();
  uint32_t ref(std::string_view s);
  void putRefs(std::string& out, std::span<const LabelView> labels);

  std::unordered_map<std::string_view, uint32_t> index_;
  std::vector<std::string_view> symbols_;
  size_t symbol_bytes_ = 0;
  size_t series_count_ = 0;
  std::string body_;    // TimeSeries fields (Request field 5) so far
  std::string series_;  // the series being built
  std::string scratch_;
};

// Replaces `out` with `batch` as a 2.0 Request (live series only).
void encodeRequestV2(const SeriesBatch& batch, std::string& out);

// Replaces `out` with a batch decoded from 2.0 (batch.protocol == kV2) as a
// 1.0 WriteRequest (live series only).
void encodeWriteRequestFromV2(const SeriesBatch& batch, std::string& out);

// Replaces `out` with `batch` encoded in `protocol`.
void encodeForProtocol(const SeriesBatch& batch, WireProtocol protocol, std::string& out);

// Appends a Histogram message without its start_timestamp (field 17), for 1.0.
void appendHistogramForV1(std::string& out, std::string_view histogram_message);

}  // namespace cardinal::codec
