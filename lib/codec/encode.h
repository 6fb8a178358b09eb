#pragma once
// Hot-path encoder: SeriesBatch -> remote-write 1.0 WriteRequest wire bytes.
// A series no stage changed is copied from its original bytes; a changed one
// is encoded from its labels, samples and exemplars, with native histograms
// copied from their original bytes. Dropped series are left out; metadata is
// copied through.

#include <string>

#include "codec/batch.h"

namespace cardinal::codec {

// Replaces `out` with the encoded request (reusing its capacity).
void encodeWriteRequest(const SeriesBatch& batch, std::string& out);

// Appends one TimeSeries (field 1 of WriteRequest) with the given sorted
// labels and samples: for series Cardinal creates itself (merged outputs).
void appendSeries(std::string& out, std::span<const LabelView> labels, std::span<const Sample> samples);

}  // namespace cardinal::codec
