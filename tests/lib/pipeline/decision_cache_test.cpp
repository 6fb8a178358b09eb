#include "pipeline/decision_cache.h"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using cardinal::pipeline::Decision;
using cardinal::pipeline::DecisionCache;

TEST_CASE("decisions are keyed by series hash, rule-set generation and stage") {
  DecisionCache cache(1024);
  cache.put(0xabc, 1, 0, {0, 7, 99});
  auto d = cache.find(0xabc, 1, 0);
  REQUIRE(d.has_value());
  CHECK(d->action == 7);
  CHECK(d->payload == 99);
  CHECK_FALSE(cache.find(0xabc, 2, 0).has_value());  // a reload invalidates
  CHECK_FALSE(cache.find(0xabc, 1, 1).has_value());  // another stage's decision
  CHECK_FALSE(cache.find(0xabd, 1, 0).has_value());
  cache.put(0xabc, 1, 0, {0, 8, 1});  // overwrite
  CHECK(cache.find(0xabc, 1, 0)->action == 8);
  CHECK(cache.size() == 1);
}

TEST_CASE("the cache stays within its capacity and evicts the oldest entries") {
  DecisionCache cache(DecisionCache::kShards * 4);
  for (uint64_t i = 0; i < 10'000; ++i) cache.put(i * 0x9e3779b97f4a7c15ULL, 1, 0, {0, 1, i});
  CHECK(cache.size() <= DecisionCache::kShards * 4);
  CHECK(cache.evictions() == 10'000 - cache.size());
  // The newest entry survives.
  uint64_t last = 9'999;
  CHECK(cache.find(last * 0x9e3779b97f4a7c15ULL, 1, 0).has_value());
}

TEST_CASE("concurrent use from several threads") {
  DecisionCache cache(4096);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&cache, t] {
      for (uint64_t i = 0; i < 20'000; ++i) {
        cache.put(i, 1, static_cast<uint32_t>(t), {0, static_cast<uint32_t>(t), i});
        auto d = cache.find(i, 1, static_cast<uint32_t>(t));
        if (d) REQUIRE(d->action == static_cast<uint32_t>(t));
      }
    });
  for (auto& th : threads) th.join();
  CHECK(cache.size() <= 4096);
}
