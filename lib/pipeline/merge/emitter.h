#pragma once
// Turns what MergeState::emit() produced into remote-write request bodies
// (snappy-compressed WriteRequest), at most `max_series` series each.

#include <memory>
#include <string>
#include <vector>

#include "pipeline/merge/merge_state.h"

namespace cardinal::pipeline::merge {

std::vector<std::shared_ptr<const std::string>> encodeEmitted(const std::vector<MergeState::Emitted>& emitted,
                                                              size_t max_series);

}  // namespace cardinal::pipeline::merge
