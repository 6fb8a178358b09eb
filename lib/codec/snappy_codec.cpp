#include "codec/snappy_codec.h"

#include <snappy.h>

#include <array>
#include <bit>
#include <cstring>

#include "codec/wire.h"


namespace cardinal::codec {

// Decompression is ours, compression is libsnappy's. A block is a varint
// length, then elements: a literal (tag type 0: the length in the tag, or in
// the 1-4 bytes after it, then the bytes) or a copy of 1-64 bytes from
// `offset` bytes back in the output (tag types 1, 2 and 3: 1, 2 or 4 offset
// bytes). libsnappy's loop (1.1.9, Debian 12) moves each element's bytes with
// a call to memmove, which was half its time on remote-write bodies (most
// elements are copies of 4-64 bytes: label names and values seen a series
// earlier). Here the common elements are moved inline, 64 bytes at a time
// (two 32-byte moves where the CPU has AVX2), and everything else goes to a
// careful path that checks every bound and says what was wrong. Validity is
// libsnappy's exactly: every element inside the body, no copy before the
// output's start, and exactly the header's length.
namespace {

// The fast loop writes up to 64 bytes from any element's start, so the output
// buffer has this many bytes after the header's length while it runs.
constexpr size_t kSlop = 64;
// The fast loop runs while a tag is more than this many bytes before the
// body's end: it reads the tag, the next tag's two candidates (up to 61 bytes
// on), the 4 bytes after the tag and a literal's 64 bytes.
constexpr ptrdiff_t kInputMargin = 68;

// Per tag byte: bits 0-7 the element's length (a literal's length 61-64 means
// the length follows the tag), bits 8-10 a 1-byte-offset copy's high offset
// bits.
struct TagTable {
  std::array<uint16_t, 256> entry{};
  constexpr TagTable() {
    for (unsigned tag = 0; tag < 256; ++tag) {
      switch (tag & 3) {
        case 0: entry[tag] = static_cast<uint16_t>((tag >> 2) + 1); break;
        case 1: entry[tag] = static_cast<uint16_t>((4 + ((tag >> 2) & 7)) | ((tag >> 5) << 8)); break;
        default: entry[tag] = static_cast<uint16_t>((tag >> 2) + 1); break;
      }
    }
  }
};
constexpr TagTable kTags;
// The offset bytes that follow a tag, by tag type (a literal has none here).
constexpr std::array<uint32_t, 4> kOffsetMask{0, 0xff, 0xffff, 0xffffffff};

static_assert(std::endian::native == std::endian::little, "load32 reads the format's little-endian words as they are");
uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Copies 64 bytes, all read before any is written: two 32-byte vectors
// (one instruction each where AVX2 is compiled in, two 16-byte ones else).
using Bytes32 = char __attribute__((vector_size(32), aligned(1)));
[[gnu::always_inline]] inline void copy64(char* dst, const char* src) {
  Bytes32 a, b;
  std::memcpy(&a, src, 32);
  std::memcpy(&b, src + 32, 32);
  std::memcpy(dst, &a, 32);
  std::memcpy(dst + 32, &b, 32);
}

struct Output {
  char* const base;
  char* op;
  char* const end;  // base + the header's length; kSlop writable bytes follow
};

// Runs the elements from the tag at `ip` while they are far from the body's
// end and common: literals of up to 60 bytes, copies with 1- or 2-byte
// offsets that reach no further back than the output's start and do not
// overlap their own output, none past the header's length. Returns the tag it
// stopped at, `out.op` moved past what it wrote.
//
// The loop's speed is the chain from one tag to the next: both candidates
// for the next tag (after a literal's bytes, after a copy's offset) are loaded
// before the tag's type picks one (volatile: the compiler would otherwise pick
// first and load after, a longer chain), as libsnappy does.
[[gnu::always_inline]] inline const uint8_t* fastLoop(const uint8_t* ip, const uint8_t* in_end, Output& out) {
  if (in_end - ip <= kInputMargin) return ip;
  const uint8_t* const fast_end = in_end - kInputMargin;
  char* const base = out.base;
  char* const op_end = out.end;
  char* op = out.op;
  size_t tag = *ip++;
  while (true) {
    const uint8_t* const at = ip;  // just past the tag
    const size_t type = tag & 3;
    const bool literal = type == 0;
    const size_t literal_len = (tag >> 2) + 1;
    const size_t tag_after_literal = static_cast<const volatile uint8_t*>(at)[literal_len];
    const size_t tag_after_copy = static_cast<const volatile uint8_t*>(at)[type];
    const uint32_t entry = kTags.entry[tag];
    const size_t len = entry & 0xff;
    const size_t offset = (entry & 0x700) + (load32(at) & kOffsetMask[type]);
    const char* from = reinterpret_cast<const char*>(at);
    if ((type == 3) | (literal & (len > 60)) | (len > static_cast<size_t>(op_end - op))) {
      ip = at - 1;
      break;
    }
    if (!literal) {
      if ((offset - 1 >= static_cast<size_t>(op - base)) | (offset < len)) {
        ip = at - 1;
        break;
      }
      from = op - offset;
    }
    copy64(op, from);
    op += len;
    tag = literal ? tag_after_literal : tag_after_copy;
    ip = literal ? at + literal_len + 1 : at + type + 1;
    if (ip - 1 >= fast_end) {
      --ip;
      break;
    }
  }
  out.op = op;
  return ip;
}

// The same loop compiled twice: for any x86-64, and with AVX2 (32-byte moves)
// for the CPUs that have it, picked once at start-up.
__attribute__((noinline)) const uint8_t* fastElementsBase(const uint8_t* ip, const uint8_t* in_end, Output& out) {
  return fastLoop(ip, in_end, out);
}
#if defined(__x86_64__)
__attribute__((noinline, target("avx2"))) const uint8_t* fastElementsAvx2(const uint8_t* ip, const uint8_t* in_end,
                                                                          Output& out) {
  return fastLoop(ip, in_end, out);
}
#endif
using FastElements = const uint8_t* (*)(const uint8_t*, const uint8_t*, Output&);
FastElements fastElements() {
  static const FastElements chosen = [] {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return fastElementsAvx2;
#endif
    return fastElementsBase;
  }();
  return chosen;
}

enum class Bad { kNone, kCutOff, kLiteralPastEnd, kZeroOffset, kBeforeStart, kPastLength };

struct Step {
  const uint8_t* ip = nullptr;
  Bad bad = Bad::kNone;
  size_t offset = 0;  // kBeforeStart: how far back the copy reached
};

// One element from the tag at `ip`, every bound checked.
Step carefulElement(const uint8_t* ip, const uint8_t* in_end, Output& out) {
  const uint8_t tag = *ip++;
  const size_t left = static_cast<size_t>(out.end - out.op);
  if ((tag & 3) == 0) {
    size_t len = (tag >> 2) + 1;
    if (len > 60) {
      const size_t nbytes = len - 60;
      if (static_cast<size_t>(in_end - ip) < nbytes) return {ip, Bad::kCutOff};
      uint64_t v = 0;
      for (size_t i = 0; i < nbytes; ++i) v |= uint64_t{ip[i]} << (8 * i);
      ip += nbytes;
      len = static_cast<size_t>(v) + 1;
    }
    if (static_cast<size_t>(in_end - ip) < len) return {ip, Bad::kLiteralPastEnd};
    if (left < len) return {ip, Bad::kPastLength};
    std::memcpy(out.op, ip, len);
    out.op += len;
    return {ip + len};
  }
  size_t len = 0, offset = 0;
  const size_t nbytes = (tag & 3) == 3 ? 4 : (tag & 3);
  if (static_cast<size_t>(in_end - ip) < nbytes) return {ip, Bad::kCutOff};
  if ((tag & 3) == 1) {
    len = 4 + ((tag >> 2) & 7);
    offset = (size_t{tag & 0xe0u} << 3) | ip[0];
  } else {
    len = (tag >> 2) + 1;
    for (size_t i = 0; i < nbytes; ++i) offset |= size_t{ip[i]} << (8 * i);
  }
  ip += nbytes;
  if (offset == 0) return {ip, Bad::kZeroOffset};
  if (offset > static_cast<size_t>(out.op - out.base)) return {ip, Bad::kBeforeStart, offset};
  if (left < len) return {ip, Bad::kPastLength};
  const char* from = out.op - offset;
  if (offset >= len) {
    std::memcpy(out.op, from, len);
  } else {
    for (size_t i = 0; i < len; ++i) out.op[i] = from[i];  // repeats the last `offset` bytes
  }
  out.op += len;
  return {ip};
}

core::Error invalid(const std::string& what) {
  return core::Error{"body is not valid snappy block-compressed data: " + what};
}

core::Status decompressWith(FastElements fast_elements, std::string_view body, const Limits& limits, std::string& out) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &n))
    return core::Error{"body is not snappy block-compressed data (bad length header)"};
  if (n > limits.max_decompressed_bytes)
    return core::Error{"decompressed size " + std::to_string(n) + " bytes exceeds the limit of " +
                       std::to_string(limits.max_decompressed_bytes) + " (--limits.max-decompressed-bytes)"};
  wire::Reader header(body);
  uint64_t ignored = 0;
  (void)header.varint(ignored);  // GetUncompressedLength parsed it
  const uint8_t* const start = reinterpret_cast<const uint8_t*>(body.data());
  const uint8_t* const in_end = start + body.size();
  const uint8_t* ip = header.p;
  out.resize(n + kSlop);
  Output o{out.data(), out.data(), out.data() + n};
  while (true) {
    ip = fast_elements(ip, in_end, o);
    if (ip == in_end) break;
    const uint8_t* const element = ip;
    const Step step = carefulElement(ip, in_end, o);
    if (step.bad != Bad::kNone) {
      out.resize(n);
      const std::string at = " (element at compressed byte " + std::to_string(element - start) + ")";
      switch (step.bad) {
        case Bad::kCutOff: return invalid("the body ends inside an element" + at);
        case Bad::kLiteralPastEnd: return invalid("a literal runs past the end of the body" + at);
        case Bad::kZeroOffset: return invalid("a copy with offset 0" + at);
        case Bad::kBeforeStart:
          return invalid("a copy reaches " + std::to_string(step.offset) + " bytes back, only " +
                         std::to_string(o.op - o.base) + " were decompressed" + at);
        case Bad::kPastLength:
          return invalid("the data is longer than the " + std::to_string(n) + " bytes its header gives" + at);
        case Bad::kNone: break;
      }
    }
    ip = step.ip;
  }
  const size_t produced = static_cast<size_t>(o.op - o.base);
  out.resize(n);
  if (produced != n)
    return invalid("the data is " + std::to_string(produced) + " bytes, its header gives " + std::to_string(n));
  return core::Status::Ok();
}

}  // namespace

core::Status decompress(std::string_view body, const Limits& limits, std::string& out) {
  return decompressWith(fastElements(), body, limits, out);
}

core::Status detail::decompressPortable(std::string_view body, const Limits& limits, std::string& out) {
  return decompressWith(fastElementsBase, body, limits, out);
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
