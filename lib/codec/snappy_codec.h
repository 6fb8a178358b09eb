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

// The compression of A+B from compress(A) and compress(B), each made on its
// own (on two threads): a block is its uncompressed length, then literals and
// back references, and a part's references reach only into the part itself,
// so the parts' elements follow one another under the length of the whole.
// `a` and `b` must be compress() output; `out` is replaced.
void joinCompressed(std::string_view a, std::string_view b, std::string& out);

}  // namespace cardinal::codec
