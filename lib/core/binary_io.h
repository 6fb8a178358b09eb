#pragma once
// Little-endian binary records for state snapshots (merge state, cardinality
// state): a Writer appending to a string, a bounds-checked Reader that never
// reads past its input (corrupt counts cannot make a restore allocate
// gigabytes), and CRC-32 for the trailer. Snapshots are only read by the
// architecture that wrote them (checked at compile time below).

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cardinal::core {

static_assert(std::endian::native == std::endian::little, "snapshot formats are written little-endian");

class BinaryWriter {
 public:
  explicit BinaryWriter(std::string& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out_.append(buf, sizeof(T));
  }
  void str(std::string_view s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class BinaryReader {
 public:
  explicit BinaryReader(std::string_view in, size_t base = 0) : in_(in), base_(base) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() - pos_ < sizeof(T)) return fail();
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // The value, or 0 once the input ran out (then failed() is true).
  template <typename T>
  T take() {
    T v{};
    if (!get(v)) return T{};
    return v;
  }
  bool str(std::string& s) {
    uint32_t n;
    if (!get(n)) return false;
    if (in_.size() - pos_ < n) return fail();
    s.assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  // Guards a count against the bytes left, so a corrupt count cannot make a
  // restore reserve gigabytes.
  bool count(uint64_t& n, size_t min_record_bytes) {
    if (!get(n)) return false;
    return fits(n, min_record_bytes);
  }
  // Whether n records of at least min_record_bytes each can still follow.
  bool fits(uint64_t n, size_t min_record_bytes) {
    if (n > (in_.size() - pos_) / min_record_bytes) return fail();
    return true;
  }
  // The unread rest, for a nested reader (e.g. a sketch's own format); skip() consumes it.
  std::string_view rest() const { return in_.substr(pos_); }
  bool skip(size_t n) {
    if (in_.size() - pos_ < n) return fail();
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }
  size_t offset() const { return base_ + pos_; }
  bool failed() const { return failed_; }
  bool fail() {
    failed_ = true;
    return false;
  }

 private:
  std::string_view in_;
  size_t base_;
  size_t pos_ = 0;
  bool failed_ = false;
};

namespace detail {
constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
inline constexpr auto kCrcTable = makeCrcTable();
}  // namespace detail

// CRC-32 (IEEE, as zlib): stable across builds, unlike core::hashBytes.
inline uint32_t crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = detail::kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace cardinal::core
