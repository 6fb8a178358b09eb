#include "core/hash.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/labels.h"

using namespace cardinal::core;

TEST_CASE("hashBytes covers every length and every byte") {
  std::unordered_set<uint64_t> seen;
  std::string s;
  for (int len = 0; len < 80; ++len) {
    CHECK(seen.insert(hashBytes(s)).second);
    s += static_cast<char>('a' + len % 26);
  }
  // Flipping any single byte changes the hash.
  std::string base(40, 'x');
  uint64_t h0 = hashBytes(base);
  for (size_t i = 0; i < base.size(); ++i) {
    std::string t = base;
    t[i] = 'y';
    CHECK(hashBytes(t) != h0);
  }
}

TEST_CASE("hashBytesOr is hashBytes and sees every byte's high bit") {
  for (size_t len = 0; len < 70; ++len) {
    std::string s(len, 'a');
    for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
    uint64_t bits = 0;
    CHECK(hashBytesOr(s, 12345, bits) == hashBytes(s, 12345));
    CHECK((bits & 0x8080808080808080ULL) == 0);
    for (size_t i = 0; i < len; ++i) {
      std::string t = s;
      t[i] = static_cast<char>(0x80 | (i & 0x7f));
      uint64_t tbits = 0;
      CHECK(hashBytesOr(t, 99, tbits) == hashBytes(t, 99));
      CHECK_MESSAGE((tbits & 0x8080808080808080ULL) != 0, "length " << len << ", byte " << i);
    }
  }
}

TEST_CASE("label-set hashes separate names from values and sets from each other") {
  std::vector<LabelView> a = {{"ab", "c"}};
  std::vector<LabelView> b = {{"a", "bc"}};
  CHECK(hashLabels(a) != hashLabels(b));
  std::vector<LabelView> c = {{"a", "b"}, {"c", "d"}};
  std::vector<LabelView> d = {{"a", "b"}};
  CHECK(hashLabels(c) != hashLabels(d));

  std::unordered_set<uint64_t> seen;
  std::vector<std::string> values;
  for (int i = 0; i < 100'000; ++i) values.push_back("user-" + std::to_string(i));
  for (const auto& v : values) {
    std::vector<LabelView> ls = {{"__name__", "user_login_total"}, {"email", v}, {"env", "prod"}};
    CHECK(seen.insert(hashLabels(ls)).second);
  }
}

TEST_CASE("hashBytesKeyed: its own hash, set by its key, every byte counts") {
  const HashKey& key = HashKey::random();
  CHECK(&key == &HashKey::random());  // one key per process
  HashKey other = key;
  other.k1 ^= 1;
  std::unordered_set<uint64_t> seen;
  std::string s;
  for (int len = 0; len < 80; ++len) {
    const uint64_t h = hashBytesKeyed(s, key, 7);
    CHECK(seen.insert(h).second);
    CHECK(h == hashBytesKeyed(s, key, 7));  // stable within the process
    CHECK(h != hashBytesKeyed(s, key, 8));  // the seed counts
    CHECK(h != hashBytes(s, 7));            // not hashBytes
    if (len > 0) CHECK(h != hashBytesKeyed(s, other, 7));  // the key counts
    s += static_cast<char>('a' + len % 26);
  }
  // The block that makes hashBytes ignore the rest of its 16 bytes (its first
  // 8 bytes equal to hashBytes' constant) is an ordinary block here.
  std::string zeroing(8, '\0');
  const uint64_t k = detail::kS1;
  std::memcpy(zeroing.data(), &k, 8);
  std::string a = zeroing + "aaaaaaaa" + "tail-of-the-value", b = zeroing + "bbbbbbbb" + "tail-of-the-value";
  CHECK(hashBytes(a, 1) == hashBytes(b, 1));  // why the plan check is keyed
  CHECK(hashBytesKeyed(a, key, 1) != hashBytesKeyed(b, key, 1));
}
