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

namespace {

// A block's length header: its value and how many bytes it takes.
std::pair<uint64_t, size_t> lengthHeader(std::string_view block) {
  uint64_t v = 0;
  for (size_t i = 0; i < block.size() && i < 5; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(block[i]) & 0x7f) << (7 * i);
    if ((static_cast<uint8_t>(block[i]) & 0x80) == 0) return {v, i + 1};
  }
  return {0, 0};  // not compress() output
}

}  // namespace

void joinCompressed(std::span<const std::string_view> parts, std::string& out) {
  uint64_t total = 0;
  size_t bytes = 5;
  for (auto p : parts) {
    total += lengthHeader(p).first;
    bytes += p.size();
  }
  out.clear();
  out.reserve(bytes);
  for (uint64_t v = total;; v >>= 7) {
    if (v < 0x80) {
      out.push_back(static_cast<char>(v));
      break;
    }
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  for (auto p : parts) out.append(p.substr(lengthHeader(p).second));
}

}  // namespace cardinal::codec
