#include "codec/snappy_codec.h"

#include <snappy.h>

namespace cardinal::codec {

core::Status decompress(std::string_view body, const Limits& limits, std::string& out) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &n))
    return core::Error{"body is not snappy block-compressed data (bad length header)"};
  if (n > limits.max_decompressed_bytes)
    return core::Error{"decompressed size " + std::to_string(n) + " bytes exceeds the limit of " +
                       std::to_string(limits.max_decompressed_bytes) + " (--limits.max-decompressed-bytes)"};
  out.resize(n);
  if (!snappy::RawUncompress(body.data(), body.size(), out.data()))
    return core::Error{"body is not valid snappy block-compressed data"};
  return core::Status::Ok();
}

void compress(std::string_view in, std::string& out) {
  out.resize(snappy::MaxCompressedLength(in.size()));
  size_t n = 0;
  snappy::RawCompress(in.data(), in.size(), out.data(), &n);
  out.resize(n);
}

}  // namespace cardinal::codec
