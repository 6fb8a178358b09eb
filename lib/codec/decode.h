#pragma once
// Hot-path decoder: remote-write 1.0 WriteRequest wire bytes -> SeriesBatch,
// without generated classes. Labels become views into `buf`, which must
// outlive the batch. Validates structure, limits and label rules in the same
// pass; on error the batch content is unspecified and the message names the
// position and label name, never a label value.

#include <string_view>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec {

core::Status decodeWriteRequest(std::string_view buf, const Limits& limits, SeriesBatch& out);

// Where to cut a 1.0 WriteRequest in two (server/request_split.h): the first
// top-level field boundary at or after the middle, when both sides then hold
// at least one field. Both sides are WriteRequests, and decoding them one
// after the other gives the series of the whole in order. 0 when there is no
// such boundary or the bytes up to it are malformed (the request is then
// decoded whole, which reports the error).
size_t splitPoint(std::string_view buf);

// Reads one encoded Histogram message: its scalar fields into `out`, its
// bucket fields only validated (histogram.h expands them on cold paths).
bool parseHistogramView(std::string_view msg, HistogramView& out);

}  // namespace cardinal::codec
