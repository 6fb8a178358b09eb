#include "core/fork_join.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using cardinal::core::ForkJoin;

TEST_CASE("fork-join: both pieces run before run() returns; b on a helper when one is free") {
  ForkJoin fj(1);
  CHECK(fj.helpers() == 1);
  const auto caller = std::this_thread::get_id();
  int helper_runs = 0;
  for (int i = 0; i < 200; ++i) {
    bool a_ran = false, b_ran = false;
    std::thread::id b_thread;
    fj.run([&] { a_ran = true; std::this_thread::sleep_for(std::chrono::microseconds(200)); },
           [&] { b_ran = true; b_thread = std::this_thread::get_id(); });
    REQUIRE(a_ran);
    REQUIRE(b_ran);
    if (b_thread != caller) ++helper_runs;
  }
  // a takes 200 us: an idle helper takes b long before that.
  CHECK(helper_runs > 100);
  CHECK(fj.ranOnHelper() == static_cast<uint64_t>(helper_runs));
  CHECK(fj.ranOnHelper() + fj.ranOnCaller() == 200);
}

TEST_CASE("fork-join: without helpers the caller runs a then b") {
  ForkJoin fj(0);
  std::vector<char> order;
  fj.run([&] { order.push_back('a'); }, [&] { order.push_back('b'); });
  CHECK(order == std::vector<char>{'a', 'b'});
}

TEST_CASE("fork-join: an exception in either piece reaches the caller, after both ran") {
  ForkJoin fj(1);
  for (int i = 0; i < 50; ++i) {
    bool a_ran = false;
    CHECK_THROWS_AS(fj.run([&] { a_ran = true; }, [] { throw std::runtime_error("b failed"); }), std::runtime_error);
    CHECK(a_ran);
    std::atomic<bool> b_ran{false};
    CHECK_THROWS_AS(fj.run([] { throw std::logic_error("a failed"); }, [&] { b_ran = true; }), std::logic_error);
    CHECK(b_ran);
  }
}

TEST_CASE("fork-join: more callers than helpers, each b runs exactly once") {
  ForkJoin fj(1);
  constexpr int kCallers = 4, kRuns = 2000;
  std::atomic<int> as{0}, bs{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&] {
      for (int i = 0; i < kRuns; ++i) fj.run([&] { as.fetch_add(1); }, [&] { bs.fetch_add(1); });
    });
  for (auto& t : callers) t.join();
  CHECK(as.load() == kCallers * kRuns);
  CHECK(bs.load() == kCallers * kRuns);
  CHECK(fj.ranOnHelper() + fj.ranOnCaller() == static_cast<uint64_t>(kCallers * kRuns));
}
