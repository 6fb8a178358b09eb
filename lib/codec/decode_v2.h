#pragma once
// Hot-path decoder: remote-write 2.0 io.prometheus.write.v2.Request wire bytes
// -> the protocol-neutral SeriesBatch, without generated classes. Label names
// and values become views into the request's symbols table, i.e. into `buf`,
// which must outlive the batch. Each series' inline metadata becomes an entry
// of SeriesBatch::metadata (one per family and content in the request), so
// the TypeTable learns types from 2.0 requests as from 1.0 metadata.
//
// Validated in the same pass, beyond the wire format (each refusal names the
// position, never a label value):
//   - symbols[0] is the empty string (when there are symbols), every symbol is
//     valid UTF-8;
//   - labels_refs (series and exemplars) have even length and every reference
//     (labels, exemplar labels, help_ref, unit_ref) is in range;
//   - the resolved labels obey the 1.0 rules: non-empty, unique names, a
//     non-empty __name__, limits; unsorted ones are sorted (and the series
//     re-encoded), samples and histograms in timestamp order.
// The rc.3 field TimeSeries.created_timestamp (6), still sent by Prometheus
// 3.0 to 3.7, is accepted and ignored (rc.4 reserves it; its successor is the
// per-sample start_timestamp, which is kept).
//
// Family of a series' metadata: its metric name, without `_bucket`, `_sum`,
// `_count` for a histogram type and without `_sum`, `_count` for a summary
// (the family Prometheus' 1.0 metadata names). Metadata without a type
// (METRIC_TYPE_UNSPECIFIED) keeps help and unit for re-encoding but gets no
// family, so it teaches the TypeTable nothing.

#include <string_view>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec {

core::Status decodeRequestV2(std::string_view buf, const Limits& limits, SeriesBatch& out);

// The metadata family of a series named `metric_name` with type `type` (above).
std::string_view metadataFamily(std::string_view metric_name, MetricType type);

}  // namespace cardinal::codec
