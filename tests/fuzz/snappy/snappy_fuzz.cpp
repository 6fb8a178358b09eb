// libFuzzer target: our snappy block decompressor (codec::decompress, and
// detail::decompressPortable, its loop for any x86-64) against libsnappy's.
// Asserts: no crash, no read or write outside the buffers (ASan); the same
// verdict as libsnappy on every input; the same bytes when valid. Inputs with
// an odd first byte are taken as they are (mostly invalid); with an even one
// the rest is compressed by libsnappy first, then one bit of the block is
// flipped at a position and bit the first byte picks (when its bit 1 is set),
// so valid blocks and near-valid ones are both common.
#include <snappy.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec/snappy_codec.h"

using namespace cardinal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string body;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    body = rest;
  } else {
    snappy::Compress(rest.data(), rest.size(), &body);
    if (data[0] & 2) {
      const size_t at = (static_cast<size_t>(data[0]) * 2654435761u) % body.size();
      body[at] = static_cast<char>(body[at] ^ (1 << ((data[0] >> 2) & 7)));
    }
  }
  codec::Limits limits;
  limits.max_decompressed_bytes = 1 << 20;
  size_t n = 0;
  const bool header = snappy::GetUncompressedLength(body.data(), body.size(), &n);
  std::string want;
  bool want_ok = false;
  if (header && n <= limits.max_decompressed_bytes) {
    want.resize(n);
    want_ok = snappy::RawUncompress(body.data(), body.size(), want.data());
  }
  for (auto* decompress : {&codec::decompress, &codec::detail::decompressPortable}) {
    std::string got = "some earlier request's bytes";
    const bool got_ok = decompress(body, limits, got).ok();
    if (got_ok != want_ok) abort();
    if (got_ok && got != want) abort();
  }
  return 0;
}
