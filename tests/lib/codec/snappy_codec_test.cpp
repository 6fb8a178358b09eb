#include "codec/snappy_codec.h"

#include <doctest/doctest.h>
#include <snappy.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace cardinal;

namespace {

// libsnappy's verdict and output, the reference our decompressor is held to.
struct Reference {
  bool ok = false;
  std::string out;
};
Reference reference(const std::string& body) {
  Reference r;
  size_t n = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &n) || n > (1u << 22)) return r;
  r.out.resize(n);
  r.ok = snappy::RawUncompress(body.data(), body.size(), r.out.data());
  return r;
}

// Checks ours against libsnappy on `body`; `reused` keeps earlier contents, as
// the proxy's per-thread buffer does.
// Both loops are checked: the one decompress() picked for this CPU (AVX2 on
// most) and the one for any x86-64.
void sameAsLibsnappy(const std::string& body, std::string& reused) {
  const Reference want = reference(body);
  codec::Limits limits;
  limits.max_decompressed_bytes = 1u << 22;
  for (auto* decompress : {&codec::decompress, &codec::detail::decompressPortable}) {
    const auto st = decompress(body, limits, reused);
    REQUIRE(st.ok() == want.ok);
    if (want.ok) REQUIRE(reused == want.out);
  }
}

std::string compressed(const std::string& plain) {
  std::string out;
  snappy::Compress(plain.data(), plain.size(), &out);
  return out;
}

// Builds a block element by element.
struct Block {
  std::string elements;
  size_t length = 0;  // uncompressed

  Block& literal(const std::string& bytes, int length_bytes = -1) {
    const size_t m = bytes.size() - 1;
    if (length_bytes < 0) length_bytes = m < 60 ? 0 : m < 256 ? 1 : m < 65536 ? 2 : m < (1u << 24) ? 3 : 4;
    if (length_bytes == 0) {
      elements += static_cast<char>(m << 2);
    } else {
      elements += static_cast<char>((59 + length_bytes) << 2);
      for (int i = 0; i < length_bytes; ++i) elements += static_cast<char>((m >> (8 * i)) & 0xff);
    }
    elements += bytes;
    length += bytes.size();
    return *this;
  }
  // 1-byte offset: len 4-11, offset < 2048.
  Block& copy1(size_t len, size_t offset) {
    elements += static_cast<char>(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
    elements += static_cast<char>(offset & 0xff);
    length += len;
    return *this;
  }
  Block& copy2(size_t len, size_t offset) {
    elements += static_cast<char>(2 | ((len - 1) << 2));
    elements += static_cast<char>(offset & 0xff);
    elements += static_cast<char>(offset >> 8);
    length += len;
    return *this;
  }
  Block& copy4(size_t len, size_t offset) {
    elements += static_cast<char>(3 | ((len - 1) << 2));
    for (int i = 0; i < 4; ++i) elements += static_cast<char>((offset >> (8 * i)) & 0xff);
    length += len;
    return *this;
  }
  std::string body(size_t header_length) const {
    std::string out;
    for (size_t v = header_length; ; v >>= 7) {
      if (v < 0x80) {
        out += static_cast<char>(v);
        break;
      }
      out += static_cast<char>((v & 0x7f) | 0x80);
    }
    return out + elements;
  }
  std::string body() const { return body(length); }
};

std::string text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

}  // namespace

TEST_CASE("snappy: libsnappy's blocks decompress to what was compressed") {
  std::mt19937 rng(7);
  std::string reused = "left over from an earlier request";
  for (size_t size : {0u, 1u, 15u, 16u, 60u, 61u, 64u, 65u, 69u, 70u, 100u, 1000u, 65535u, 65536u, 65537u, 300000u}) {
    CAPTURE(size);
    std::string random(size, '\0'), zeros(size, '\0'), labels;
    for (auto& c : random) c = static_cast<char>(rng());
    while (labels.size() < size) {  // label-like: names repeat, values partly
      labels += "\n\x08__name__\x12\x13http_requests_total\n\x04user\x12";
      labels += "u" + std::to_string(rng() % 5000);
    }
    labels.resize(size);
    for (const std::string* plain : {&random, &zeros, &labels}) {
      const std::string body = compressed(*plain);
      sameAsLibsnappy(body, reused);
      CHECK(reused == *plain);
    }
    for (size_t period = 1; period <= 70 && size >= 1000; period += 3) {  // pattern copies, every overlap
      std::string plain;
      const std::string unit = text(period, static_cast<uint32_t>(period));
      while (plain.size() < size) plain += unit;
      plain.resize(size);
      sameAsLibsnappy(compressed(plain), reused);
      CHECK(reused == plain);
    }
  }
}

TEST_CASE("snappy: every element kind, at the start and far from both ends") {
  const std::string filler = text(200, 1);
  std::string reused;
  // Each element built after `filler` (so copies have 200 bytes to reach
  // back into) and followed by more filler, so the fast loop meets it; and
  // the same with nothing after it, where the careful path does.
  auto check = [&](auto&& add) {
    for (bool tail : {true, false}) {
      Block b;
      b.literal(filler);
      add(b);
      if (tail) b.literal(filler);
      const std::string body = b.body();
      const Reference want = reference(body);
      REQUIRE(want.ok);
      sameAsLibsnappy(body, reused);
    }
  };
  SUBCASE("literals of every short length and with 1-4 length bytes") {
    for (size_t len = 1; len <= 70; ++len) check([&](Block& b) { b.literal(text(len, static_cast<uint32_t>(len))); });
    for (int lb = 1; lb <= 4; ++lb) check([&](Block& b) { b.literal(text(lb == 1 ? 256 : 300, 3), lb); });
  }
  SUBCASE("copies: every length, overlapping their output (offset < length) or not") {
    for (size_t offset : {1u, 2u, 3u, 7u, 15u, 16u, 17u, 31u, 32u, 33u, 63u, 64u, 65u, 199u, 200u}) {
      for (size_t len = 4; len <= 11; ++len) check([&](Block& b) { b.copy1(len, offset); });
      for (size_t len = 1; len <= 64; ++len) check([&](Block& b) { b.copy2(len, offset); });
      for (size_t len : {1u, 4u, 16u, 64u}) check([&](Block& b) { b.copy4(len, offset); });
    }
  }
  SUBCASE("a copy right after another, reading what the previous one wrote") {
    check([&](Block& b) { b.copy2(64, 3).copy2(64, 70).copy1(11, 5).copy2(20, 64); });
  }
}

TEST_CASE("snappy: invalid blocks are refused as libsnappy refuses them, saying why") {
  const std::string filler = text(200, 2);
  std::string out;
  auto refused = [&](const std::string& body, const std::string& why) {
    CAPTURE(why);
    REQUIRE_FALSE(reference(body).ok);
    for (auto* decompress : {&codec::decompress, &codec::detail::decompressPortable}) {
      const auto st = decompress(body, {}, out);
      REQUIRE_FALSE(st.ok());
      CHECK(st.error().find(why) != std::string::npos);
    }
  };
  for (bool tail : {true, false}) {  // in the fast loop's reach, and near the end
    CAPTURE(tail);
    auto around = [&](auto&& add) {
      Block b;
      b.literal(filler);
      add(b);
      if (tail) b.literal(filler);
      return b;
    };
    refused(around([](Block& b) { b.copy2(4, 0); }).body(), "a copy with offset 0");
    refused(around([](Block& b) { b.copy2(4, 201); }).body(),
            "a copy reaches 201 bytes back, only 200 were decompressed");
    refused(around([](Block& b) { b.copy1(4, 201); }).body(), "a copy reaches 201 bytes back");
    refused(around([](Block& b) { b.copy4(4, 1u << 20); }).body(), "a copy reaches 1048576 bytes back");
    const Block ok = around([](Block& b) { b.copy2(64, 200); });
    REQUIRE(reference(ok.body()).ok);
    refused(ok.body(ok.length - 1), "longer than the");
    refused(ok.body(ok.length + 1), "its header gives");
  }
  // Cut anywhere: refused, never read past the end (ASan build).
  Block b;
  b.literal(filler).copy2(64, 100).literal(text(300, 4)).copy1(7, 3).copy4(9, 250).literal(filler);
  const std::string whole = b.body();
  for (size_t cut = 1; cut < whole.size(); ++cut) {
    CAPTURE(cut);
    REQUIRE_FALSE(codec::decompress(whole.substr(0, cut), {}, out).ok());
    REQUIRE_FALSE(codec::detail::decompressPortable(whole.substr(0, cut), {}, out).ok());
  }
  refused(Block{}.literal("abc").body().substr(0, 3), "a literal runs past the end of the body");
  refused(Block{}.literal(text(300, 5), 2).body().substr(0, 3), "the body ends inside an element");
}

TEST_CASE("snappy: mutated blocks, ours against libsnappy") {
  std::mt19937 rng(11);
  std::string plain;
  while (plain.size() < 20000) plain += "\n\x08__name__\x12\x0bhttp_total\n\x02id\x12" + std::to_string(rng() % 700);
  const std::string body = compressed(plain);
  std::string reused;
  int valid = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string m = body;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = 1 + rng() % (m.size() - 1);  // keep most headers
      switch (rng() % 3) {
        case 0: m[at] = static_cast<char>(rng()); break;
        case 1: m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8))); break;
        default: m.erase(at, 1 + rng() % 4); break;
      }
    }
    if (rng() % 8 == 0) m.resize(rng() % m.size());
    CAPTURE(i);
    sameAsLibsnappy(m, reused);
    valid += reference(m).ok;
  }
  MESSAGE(valid << " of 20000 mutated blocks were valid");
  CHECK(valid > 0);
}
