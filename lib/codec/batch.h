#pragma once
// SeriesBatch: the protocol-neutral form of one remote-write request.
//
// Label names and values are views into the decompressed request (or into the
// batch's own arena once a stage rewrote them); samples are decoded; native
// histograms keep their encoded bytes plus the decoded scalar fields; every
// series keeps its original encoded bytes, so the encoder copies a series that
// no stage changed instead of re-encoding it. A batch is reused across requests
// on one connection: clear() keeps the capacity, so steady state allocates
// nothing per sample.
//
// Invariants after a successful decode: each series' labels are sorted by
// name, names are unique and non-empty, `__name__` is present, samples are in
// timestamp order.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/protocol.h"
#include "core/labels.h"

namespace cardinal::codec {

using core::LabelView;

struct Sample {
  int64_t timestamp = 0;  // milliseconds
  double value = 0;
  bool operator==(const Sample& o) const;  // bitwise on value (NaN markers compare)
};

// A native histogram: decoded scalars for stages, raw bytes for the encoder.
// Bucket spans/deltas/counts are validated but stay encoded; decodeHistogram()
// in histogram.h expands them on cold paths.
struct HistogramView {
  std::string_view raw;  // the encoded Histogram message
  int64_t timestamp = 0;
  bool count_is_float = false;
  uint64_t count_int = 0;
  double count_float = 0;
  double sum = 0;
  int32_t schema = 0;
  double zero_threshold = 0;
  bool zero_count_is_float = false;
  uint64_t zero_count_int = 0;
  double zero_count_float = 0;
  int32_t reset_hint = 0;
  int64_t start_timestamp = 0;  // remote-write 2.0 (field 17), milliseconds; 0 = not set
};

struct ExemplarView {
  uint32_t label_begin = 0;  // into SeriesBatch::exemplar_labels
  uint32_t label_count = 0;
  double value = 0;
  int64_t timestamp = 0;
};

enum class MetricType : int32_t {
  kUnknown = 0,
  kCounter = 1,
  kGauge = 2,
  kHistogram = 3,
  kGaugeHistogram = 4,
  kSummary = 5,
  kInfo = 6,
  kStateset = 7,
};

struct MetadataView {
  std::string_view raw;  // the encoded MetricMetadata message
  MetricType type = MetricType::kUnknown;
  std::string_view family;
  std::string_view help;
  std::string_view unit;
  bool changed = false;  // help or unit rewritten: re-encoded instead of copied
};

struct Series {
  uint32_t label_begin = 0;
  uint32_t label_count = 0;
  uint32_t sample_begin = 0;
  uint32_t sample_count = 0;
  uint32_t histogram_begin = 0;
  uint32_t histogram_count = 0;
  uint32_t exemplar_begin = 0;
  uint32_t exemplar_count = 0;
  std::string_view raw;  // the encoded TimeSeries message, as received
  uint64_t hash = 0;        // hash of the current (sorted) label set
  uint64_t input_hash = 0;  // hash of the label set as received: a merge input's identity
  bool changed = false;     // labels, samples or exemplars differ from `raw`
  bool dropped = false;
  // Routing set by the relabel stage: the series belongs to a family whose
  // labels are rewritten, so it goes through the merge engine under its
  // current labels instead of being forwarded.
  bool merge = false;
  // The label stages' result was replayed from a cached plan
  // (pipeline/plan_cache.h): those stages skip the series.
  bool planned = false;
  // Set with `planned` when the plan says its label set went through the
  // cardinality stage's seen filter in the filter's current generation: the
  // stage skips the filter (pipeline/cardinality/cardinality_state.h, seenEpoch).
  bool seen = false;
  // Set by the 1.0 decoder's fast path: `raw` is in the canonical form (only
  // name-then-value labels with one-byte lengths, sorted on the wire, and
  // samples), so equal bytes up to the last label mean equal label sets.
  bool canonical = false;
  // With `canonical`: core::labelWireCheck of raw's label fields (its bytes
  // from the start to the end of the last label), computed while the decoder
  // had them at hand; what a label-set plan is checked against.
  uint64_t wire_check = 0;
  // The series' shape, set by the decoders (shaped = true): its metric name
  // (a view into the __name__ value) and whether it has `le` / `quantile`
  // labels. Those three labels are protected, so no stage changes the shape.
  bool shaped = false;
  bool has_le = false;
  bool has_quantile = false;
  std::string_view name;
};

// Remote-write 2.0 parts of a batch (decode_v2.h), empty for a 1.0 request.
struct V2Parts {
  static constexpr uint32_t kNoMetadata = 0xffffffffu;
  // Start timestamps of `samples` (same index), once any sample of the
  // request has one; empty otherwise (0 = not set).
  std::vector<int64_t> sample_start_timestamps;
  // Per series (same index): its inline metadata as an index into
  // SeriesBatch::metadata, or kNoMetadata.
  std::vector<uint32_t> series_metadata;
  void clear() {
    sample_start_timestamps.clear();
    series_metadata.clear();
  }
};

class SeriesBatch {
 public:
  // The encoding of `Series::raw` and `MetadataView::raw`: the encoder copies
  // raw bytes only into a request of the same protocol (encode_v2.h).
  WireProtocol protocol = WireProtocol::kV1;
  V2Parts v2;
  std::vector<Series> series;
  std::vector<LabelView> labels;
  std::vector<Sample> samples;
  std::vector<HistogramView> histograms;
  std::vector<ExemplarView> exemplars;
  std::vector<LabelView> exemplar_labels;  // kept apart so a series' labels stay contiguous
  std::vector<MetadataView> metadata;

  void clear();

  std::span<LabelView> labelsOf(const Series& s) { return {labels.data() + s.label_begin, s.label_count}; }
  std::span<const LabelView> labelsOf(const Series& s) const {
    return {labels.data() + s.label_begin, s.label_count};
  }
  std::span<const Sample> samplesOf(const Series& s) const { return {samples.data() + s.sample_begin, s.sample_count}; }
  std::span<Sample> samplesOf(const Series& s) { return {samples.data() + s.sample_begin, s.sample_count}; }
  std::span<const HistogramView> histogramsOf(const Series& s) const {
    return {histograms.data() + s.histogram_begin, s.histogram_count};
  }
  std::span<const ExemplarView> exemplarsOf(const Series& s) const {
    return {exemplars.data() + s.exemplar_begin, s.exemplar_count};
  }
  std::span<const LabelView> labelsOf(const ExemplarView& e) const {
    return {exemplar_labels.data() + e.label_begin, e.label_count};
  }

  // Replaces a series' label set (appended to the label pool; the series is
  // marked changed, no longer canonical, and its hash recomputed). `new_labels` must be sorted and
  // unique; views must point into the request buffer or into intern().
  void setLabels(Series& s, std::span<const LabelView> new_labels);
  // The same with the new set's hash (core::hashLabels) already known.
  void setLabels(Series& s, std::span<const LabelView> new_labels, uint64_t hash);

  // Copies a string into storage owned by the batch, stable until clear().
  std::string_view intern(std::string_view s);

  bool anyChanged() const;  // some series changed or dropped
  // What is left after the stages (series not dropped), in one pass.
  struct LiveCounts {
    size_t series = 0, samples = 0, histograms = 0, exemplars = 0;
  };
  LiveCounts liveCounts() const;
  size_t liveSeries() const { return liveCounts().series; }
  size_t liveSamples() const { return liveCounts().samples; }
  size_t liveHistograms() const { return liveCounts().histograms; }
  size_t liveExemplars() const { return liveCounts().exemplars; }

 private:
  // intern()'s storage: chunks filled one after the other (a request's copies
  // lie next to each other, not in a heap block each), kept across clear() up
  // to kKeepInternBytes. A chunk is never reallocated or moved, so a view into
  // it stays valid until clear().
  struct InternChunk {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  static constexpr size_t kInternChunkBytes = 64 * 1024;
  static constexpr size_t kKeepInternBytes = 4u << 20;
  std::vector<InternChunk> chunks_;
  size_t chunk_ = 0;       // the chunk being filled
  size_t chunk_used_ = 0;  // its bytes handed out
};

}  // namespace cardinal::codec
