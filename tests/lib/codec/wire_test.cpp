#include "codec/wire.h"

#include <doctest/doctest.h>

using namespace cardinal::codec::wire;

TEST_CASE("varints round trip and reject overlong input") {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 35, ~0ull}) {
    std::string buf;
    putVarint(buf, v);
    CHECK(buf.size() == varintSize(v));
    Reader r(buf);
    uint64_t out = 0;
    REQUIRE(r.varint(out));
    CHECK(out == v);
    CHECK(r.done());
  }
  std::string eleven(11, '\x80');
  Reader r(eleven);
  uint64_t out;
  CHECK_FALSE(r.varint(out));
  std::string truncated = "\x80\x80";
  Reader r2(truncated);
  CHECK_FALSE(r2.varint(out));
}

TEST_CASE("zigzag") {
  for (int64_t v : {0ll, -1ll, 1ll, -64ll, 1ll << 40, -(1ll << 62)}) CHECK(zigzagDecode64(zigzagEncode64(v)) == v);
  CHECK(zigzagDecode32(0xfffffffful) == INT32_MIN);
  CHECK(zigzagDecode32(0xfffffffeul) == INT32_MAX);
}

TEST_CASE("skip handles every wire type, groups included") {
  std::string buf;
  putTag(buf, 1, kVarint);
  putVarint(buf, 5);
  putDouble(buf, 2, 1.5);
  putLen(buf, 3, "abc");
  putTag(buf, 4, kStartGroup);
  putTag(buf, 1, kVarint);
  putVarint(buf, 1);
  putTag(buf, 4, kEndGroup);
  putTag(buf, 5, kI32);
  buf.append(4, '\0');
  Reader r(buf);
  int fields = 0;
  while (!r.done()) {
    uint32_t f = 0, wt = 0;
    REQUIRE(r.tag(f, wt));
    REQUIRE(r.skip(f, wt));
    ++fields;
  }
  CHECK(fields == 5);

  std::string bad_group;
  putTag(bad_group, 4, kStartGroup);
  putTag(bad_group, 5, kEndGroup);  // mismatched end
  Reader rb(bad_group);
  uint32_t f = 0, wt = 0;
  REQUIRE(rb.tag(f, wt));
  CHECK_FALSE(rb.skip(f, wt));
}

TEST_CASE("validUtf8") {
  CHECK(validUtf8(""));
  CHECK(validUtf8("plain ascii that is longer than eight bytes"));
  CHECK(validUtf8("S\xc3\xa3o Paulo"));
  CHECK(validUtf8("\xf0\x9f\x98\x80"));
  CHECK_FALSE(validUtf8("\xc3"));
  CHECK_FALSE(validUtf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(validUtf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(validUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  CHECK_FALSE(validUtf8("abcdefgh\xff"));
}
