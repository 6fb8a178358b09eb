#include "pipeline/merge/flat_hash_map.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <unordered_map>

using cardinal::pipeline::merge::FlatHashMap;

namespace {

// Few distinct home slots: long probe runs that wrap around the table end,
// so backward-shift deletion is exercised on every erase.
struct CrowdedHash {
  uint64_t operator()(uint64_t k) const { return (k % 7) * 0x9e3779b97f4a7c15ULL + (k % 3); }
};

}  // namespace

TEST_CASE("flat hash map: agrees with std::unordered_map under random inserts and erases") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 rng(seed);
    FlatHashMap<uint64_t, int, CrowdedHash> map;
    std::unordered_map<uint64_t, int> ref;
    for (int step = 0; step < 20'000; ++step) {
      uint64_t k = rng() % 300;
      if (rng() % 3 == 0) {
        CHECK(map.erase(k) == (ref.erase(k) == 1));
      } else {
        auto [v, inserted] = map.tryEmplace(k);
        CHECK(inserted == !ref.contains(k));
        *v += 1;
        ref[k] += 1;
      }
      REQUIRE(map.size() == ref.size());
    }
    for (const auto& [k, v] : ref) {
      const int* got = map.find(k);
      REQUIRE(got != nullptr);
      CHECK(*got == v);
    }
    size_t visited = 0;
    map.forEach([&](const uint64_t& k, int& v) {
      ++visited;
      CHECK(ref.at(k) == v);
    });
    CHECK(visited == ref.size());
  }
}

TEST_CASE("flat hash map: pointers to existing values survive lookups; growth keeps the contents") {
  FlatHashMap<uint64_t, std::string, std::hash<uint64_t>> map;
  CHECK(map.find(1) == nullptr);
  CHECK_FALSE(map.erase(1));
  for (uint64_t i = 0; i < 1000; ++i) *map.tryEmplace(i).first = std::to_string(i);
  CHECK(map.size() == 1000);
  CHECK(map.capacity() * 3 >= map.size() * 4);  // load factor at most 3/4
  for (uint64_t i = 0; i < 1000; ++i) CHECK(*map.find(i) == std::to_string(i));
  auto [again, inserted] = map.tryEmplace(7);
  CHECK_FALSE(inserted);
  CHECK(*again == "7");
}
