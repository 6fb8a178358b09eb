#pragma once
// Fast non-cryptographic hashing for label sets (series identity, caches),
// in the style of wyhash: one 64x64->128 multiply per 16 bytes. Stable for a
// given binary; not for secrets (sanitize uses HMAC).

#include <cstdint>
#include <cstring>
#include <string_view>

namespace cardinal::core {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t mum(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

namespace detail {
inline constexpr uint64_t kS0 = 0xa0761d6478bd642fULL;
inline constexpr uint64_t kS1 = 0xe7037ed1a0b428dbULL;
inline constexpr uint64_t kS2 = 0x8ebc6af09c88c6e3ULL;
inline uint64_t read64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t read32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace detail

namespace detail {
// hashBytes; with kOr, also ORs every byte of `s` (each at some byte position)
// into `bits`: the reads below cover every byte for every length. `s0` and
// `s1` are the constants mixed in (hashBytesKeyed passes secret ones).
template <bool kOr>
inline uint64_t hashBytesImpl(std::string_view s, uint64_t seed, uint64_t& bits, uint64_t s0 = kS0,
                              uint64_t s1 = kS1) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t a, b;
  seed ^= s0;
  if (n <= 16) {
    if (n >= 4) {
      a = (read32(p) << 32) | read32(p + ((n >> 3) << 2));
      b = (read32(p + n - 4) << 32) | read32(p + n - 4 - ((n >> 3) << 2));
    } else if (n > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) | (uint64_t{static_cast<uint8_t>(p[n >> 1])} << 8) |
          static_cast<uint8_t>(p[n - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = n;
    while (i > 16) {
      const uint64_t x = read64(p), y = read64(p + 8);
      if constexpr (kOr) bits |= x | y;
      seed = mum(x ^ s1, y ^ seed);
      p += 16;
      i -= 16;
    }
    a = read64(p + i - 16);
    b = read64(p + i - 8);
  }
  if constexpr (kOr) bits |= a | b;
  return mum(s1 ^ n, mum(a ^ s1, b ^ seed));
}
}  // namespace detail

inline uint64_t hashBytes(std::string_view s, uint64_t seed = 0x9e3779b97f4a7c15ULL) {
  uint64_t unused = 0;
  return detail::hashBytesImpl<false>(s, seed, unused);
}

// hashBytes(s, seed), and ORs every byte of `s` into `bits`, each at some byte
// position: (bits & 0x8080808080808080) != 0 iff some byte of s is >= 0x80.
// For a caller that hashes a string and also needs to know it is ASCII.
inline uint64_t hashBytesOr(std::string_view s, uint64_t seed, uint64_t& bits) {
  return detail::hashBytesImpl<true>(s, seed, bits);
}

inline uint64_t hashCombine(uint64_t h, uint64_t v) { return mum(h ^ detail::kS2, v ^ detail::kS1); }

// A hash keyed with secret constants (HashKey::random(): drawn once per
// process), for where a collision must not be something an input can be made
// to produce: with the constants unknown, no choice of bytes zeroes a
// multiplication (which in hashBytes ignores the rest of a 16-byte block).
// Independent of hashBytes: a plan is checked with both (pipeline/plan_cache.h).
struct HashKey {
  uint64_t k0, k1, seed;
  static const HashKey& random();  // core/hash.cpp
};

inline uint64_t hashBytesKeyed(std::string_view s, const HashKey& key, uint64_t seed) {
  uint64_t unused = 0;
  return detail::hashBytesImpl<false>(s, seed ^ key.seed, unused, key.k0, key.k1);
}

}  // namespace cardinal::core
