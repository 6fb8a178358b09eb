#pragma once
// Protobuf wire-format primitives used by the hot-path decoder and encoder.
// Reads never go past `end`; every failure is reported, never assumed away.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cardinal::codec::wire {

enum WireType : uint32_t { kVarint = 0, kI64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kI32 = 5 };

struct Reader {
  const uint8_t* p;
  const uint8_t* end;

  explicit Reader(std::string_view s)
      : p(reinterpret_cast<const uint8_t*>(s.data())), end(p + s.size()) {}
  bool done() const { return p >= end; }
  size_t remaining() const { return static_cast<size_t>(end - p); }

  bool varint(uint64_t& out) {
    if (p < end && *p < 0x80) {  // one-byte fast path
      out = *p++;
      return true;
    }
    if (end - p >= 2 && p[1] < 0x80) {  // two bytes (lengths up to 16 KiB)
      out = (p[0] & 0x7fu) | (uint64_t{p[1]} << 7);
      p += 2;
      return true;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p >= end) return false;
      uint8_t b = *p++;
      v |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) {
        out = v;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  // Reads a tag as protobuf does: at most 5 bytes, bits beyond 32 dropped
  // (a longer varint is an error, an overflowing 5-byte one is not).
  bool tag(uint32_t& field, uint32_t& wire_type) {
    uint32_t t = 0;
    for (int i = 0; i < 5; ++i) {
      if (p >= end) return false;
      uint8_t b = *p++;
      t |= uint32_t{b & 0x7fu} << (7 * i);
      if (b < 0x80) {
        field = t >> 3;
        wire_type = t & 7;
        return field != 0;
      }
    }
    return false;
  }
  bool fixed64(uint64_t& out) {
    if (remaining() < 8) return false;
    std::memcpy(&out, p, 8);
    p += 8;
    return true;
  }
  bool fixed32(uint32_t& out) {
    if (remaining() < 4) return false;
    std::memcpy(&out, p, 4);
    p += 4;
    return true;
  }
  bool f64(double& out) {
    uint64_t bits;
    if (!fixed64(bits)) return false;
    std::memcpy(&out, &bits, 8);
    return true;
  }
  bool bytes(std::string_view& out) {
    uint64_t n;
    if (!varint(n) || n > remaining()) return false;
    out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return true;
  }
  // Skips one field whose tag was just read. Groups are skipped with their
  // contents, as protobuf does for unknown fields.
  bool skip(uint32_t field, uint32_t wire_type, int depth = 0) {
    switch (wire_type) {
      case kVarint: {
        uint64_t v = 0;
        return varint(v);
      }
      case kI64:
        if (remaining() < 8) return false;
        p += 8;
        return true;
      case kLen: {
        std::string_view v;
        return bytes(v);
      }
      case kI32:
        if (remaining() < 4) return false;
        p += 4;
        return true;
      case kStartGroup: {
        if (depth >= 64) return false;
        while (true) {
          uint32_t f, wt;
          if (!tag(f, wt)) return false;
          if (wt == kEndGroup) return f == field;
          if (!skip(f, wt, depth + 1)) return false;
        }
      }
      default:
        return false;  // stray end-group or invalid wire type
    }
  }
};

inline int64_t zigzagDecode64(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }
inline int32_t zigzagDecode32(uint64_t v) { return zigzagDecode64(static_cast<uint32_t>(v)); }
inline uint64_t zigzagEncode64(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }

inline size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Size of a length-delimited field (tag + length + payload) for fields < 16.
inline size_t lenFieldSize(size_t payload) { return 1 + varintSize(payload) + payload; }

inline void putVarint(std::string& out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}
inline void putTag(std::string& out, uint32_t field, WireType wt) { putVarint(out, (uint64_t{field} << 3) | wt); }
inline void putLen(std::string& out, uint32_t field, std::string_view payload) {
  putTag(out, field, kLen);
  putVarint(out, payload.size());
  out.append(payload);
}
inline void putDouble(std::string& out, uint32_t field, double v) {
  putTag(out, field, kI64);
  char buf[8];
  std::memcpy(buf, &v, 8);
  out.append(buf, 8);
}

// Checks that s is valid UTF-8 (protobuf requires it for proto3 strings).
bool validUtf8(std::string_view s);

// True when every byte is below 0x80 (8 bytes at a time).
inline bool isAscii(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t acc = 0;
  if (n >= 8) {  // whole words, the last one overlapping the one before
    uint64_t w;
    for (const char* last = p + n - 8; p < last; p += 8) {
      std::memcpy(&w, p, 8);
      acc |= w;
    }
    std::memcpy(&w, s.data() + n - 8, 8);
    acc |= w;
  } else {
    for (; n > 0; ++p, --n) acc |= static_cast<uint8_t>(*p);
  }
  return (acc & 0x8080808080808080ULL) == 0;
}

}  // namespace cardinal::codec::wire
