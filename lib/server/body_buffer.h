#pragma once
// Sizing of a connection's read buffer for a request body (the server's sessions and the bench
// sink). Beast reads at most the dynamic buffer's free capacity per receive (at least 512 bytes),
// and a flat_buffer stays as small as its first use because the parser consumes everything it is
// given: a 100 KB body would take ~200 receives, each a trip through the executor (a quarter of
// the proxy's CPU at half load, by perf and /proc accounting: BENCHMARKS.md). Once a header is
// in, a body gets up to kMaxBodyReadChunk (beast's own cap per receive); the buffer keeps that
// capacity for the connection's next requests, so memory is at most one chunk per connection.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <boost/beast/core/flat_buffer.hpp>

namespace cardinal::server {

inline constexpr size_t kMaxBodyReadChunk = 65536;

// Call between async_read_header and async_read of the body.
template <class Parser>
void sizeBufferForBody(const Parser& parser, boost::beast::flat_buffer& buffer) {
  if (parser.is_done()) return;
  auto length = parser.content_length();  // none: chunked
  size_t want = length ? static_cast<size_t>(std::min<std::uint64_t>(*length, kMaxBodyReadChunk)) : kMaxBodyReadChunk;
  if (want > buffer.capacity()) buffer.reserve(want);
}

}  // namespace cardinal::server
