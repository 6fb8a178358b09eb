#pragma once
// Hot-path decoder: remote-write 1.0 WriteRequest wire bytes -> SeriesBatch,
// without generated classes. Labels become views into `buf`, which must
// outlive the batch. Validates structure, limits and label rules in the same
// pass; on error the batch content is unspecified and the message names the
// position and label name, never a label value.

#include <string_view>
#include <vector>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec {

core::Status decodeWriteRequest(std::string_view buf, const Limits& limits, SeriesBatch& out);

// Where to cut a 1.0 WriteRequest into parts (server/request_split.h): for
// each k in 1..parts-1 the first top-level field boundary at or after k/parts
// of its size, past the previous cut. Each part is a WriteRequest, and
// decoding them one after the other gives the series of the whole in order.
// Returns the cuts made (ascending, each part holding at least one field);
// none when the bytes are malformed before the last cut (the request is then
// decoded whole, which reports the error).
std::vector<size_t> splitPoints(std::string_view buf, size_t parts);

// Reads one encoded Histogram message: its scalar fields into `out`, its
// bucket fields only validated (histogram.h expands them on cold paths).
bool parseHistogramView(std::string_view msg, HistogramView& out);

}  // namespace cardinal::codec
