#pragma once
// Fast non-cryptographic hashing for label sets (series identity, caches).
// 64-bit, seeded, stable across runs of one binary version; not for secrets.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace cardinal::core {

inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Hashes bytes 8 at a time; finalised with a murmur3 mixer.
inline uint64_t hashBytes(std::string_view s, uint64_t seed = 0x9e3779b97f4a7c15ULL) {
  uint64_t h = seed ^ (s.size() * 0x87c37b91114253d5ULL);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);
    h = rotl64(h ^ mix64(k), 27) * 0x52dce729 + 0x38495ab5;
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  h ^= mix64(tail ^ (uint64_t{n} << 56));
  return mix64(h);
}

inline uint64_t hashCombine(uint64_t h, uint64_t v) { return mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))); }

}  // namespace cardinal::core
