#pragma once
// Snappy block format (not framed), as remote-write uses it.

#include <span>
#include <string>
#include <string_view>

#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec {

// Decompresses `body` into `out` (reusing its capacity). Reads the
// uncompressed length from the snappy header and checks it against the limit
// before allocating. Our own decoder (libsnappy's verdicts, faster on
// remote-write bodies: snappy_codec.cpp); an invalid block's error says what
// was wrong and at which compressed byte.
core::Status decompress(std::string_view body, const Limits& limits, std::string& out);

namespace detail {
// decompress() with its loop built for any x86-64 (16-byte moves), also where
// the AVX2 one runs: for tests, which check both against libsnappy.
core::Status decompressPortable(std::string_view body, const Limits& limits, std::string& out);
}  // namespace detail

// Compresses `in` into `out` (reusing its capacity).
void compress(std::string_view in, std::string& out);

// The compression of A+B+... from compress(A), compress(B), ... each made on
// its own (on different threads): a block is its uncompressed length, then
// literals and back references, and a part's references reach only into the
// part itself, so the parts' elements follow one another under the length of
// the whole. `parts` must be compress() output; `out` is replaced.
void joinCompressed(std::span<const std::string_view> parts, std::string& out);

}  // namespace cardinal::codec
