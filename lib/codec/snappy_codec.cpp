#include "codec/snappy_codec.h"

#include <snappy.h>

#include "codec/wire.h"

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

void joinCompressed(std::span<const std::string_view> parts, std::string& out) {
  // A block's length header is a varint, as in protobuf.
  auto elements = [](std::string_view block, uint64_t& length) {
    wire::Reader r(block);
    length = 0;
    (void)r.varint(length);  // compress() output: always a header
    return block.substr(block.size() - r.remaining());
  };
  uint64_t total = 0, length = 0;
  size_t bytes = 10;
  for (auto p : parts) {
    elements(p, length);
    total += length;
    bytes += p.size();
  }
  out.clear();
  out.reserve(bytes);
  wire::putVarint(out, total);
  for (auto p : parts) out.append(elements(p, length));
}

}  // namespace cardinal::codec
