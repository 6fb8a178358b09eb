#pragma once
// Snappy block format (not framed), as remote-write uses it.

#include <string>
#include <string_view>

#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec {

// Decompresses `body` into `out` (reusing its capacity). Reads the
// uncompressed length from the snappy header and checks it against the limit
// before allocating.
core::Status decompress(std::string_view body, const Limits& limits, std::string& out);

// Compresses `in` into `out` (reusing its capacity).
void compress(std::string_view in, std::string& out);

}  // namespace cardinal::codec
