#pragma once
// Turns what MergeState::emit() produced into remote-write request bodies
// (snappy-compressed), at most `max_series` series each, in the upstream's
// protocol: a 1.0 WriteRequest or a 2.0 Request (--upstream.protocol). Merged
// series carry no metadata (2.0 metadata is optional; types of merged
// families are Cardinal's arithmetic, not a sender's statement).

#include <memory>
#include <string>
#include <vector>

#include "codec/protocol.h"
#include "pipeline/merge/merge_state.h"

namespace cardinal::pipeline::merge {

std::vector<std::shared_ptr<const std::string>> encodeEmitted(
    const std::vector<MergeState::Emitted>& emitted, size_t max_series,
    codec::WireProtocol protocol = codec::WireProtocol::kV1);

}  // namespace cardinal::pipeline::merge
