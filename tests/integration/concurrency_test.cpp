// Many senders at once, and more than --upstream.max-in-flight of them.
#include <future>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

TEST_CASE("concurrent senders: every request 204, every series forwarded exactly once") {
  TempDir dir;
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl());
  INFO(describe(cardinal.process()));

  constexpr int kSenders = 8;
  constexpr int kRequestsEach = 25;
  const int64_t t = nowMs() - 60000;
  std::vector<std::future<std::vector<std::string>>> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.push_back(std::async(std::launch::async, [&, s] {
      std::vector<std::string> failures;
      for (int i = 0; i < kRequestsEach; ++i) {
        prometheus::WriteRequest req;
        addSeries(req,
                  {{"__name__", "it_concurrent_total"},
                   {"sender", std::to_string(s)},
                   {"seq", std::to_string(i)}},
                  {{static_cast<double>(i), t}, {static_cast<double>(i + 1), t + 1000}});
        auto res = postRemoteWrite(cardinal.writeUrl(), req);
        if (res.status != 204) {
          failures.push_back("sender " + std::to_string(s) + " request " + std::to_string(i) +
                             ": " + res.summary());
        }
      }
      return failures;
    }));
  }
  std::string failures;
  for (auto& f : senders) {
    REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    for (const auto& line : f.get()) failures += line + "\n";
  }
  CHECK_MESSAGE(failures.empty(), failures);

  std::map<Labels, int> seen;
  for (const auto& ts : upstream.allSeries()) {
    ++seen[labelsOf(ts)];
    CHECK_MESSAGE(ts.samples_size() == 2, labelsToString(labelsOf(ts)));
  }
  CHECK(seen.size() == static_cast<size_t>(kSenders * kRequestsEach));
  // Every request went through each step once (none changed: nothing re-encoded).
  for (const char* step : {"decompress", "decode", "process", "upstream"}) {
    CHECK_MESSAGE(cardinal.metric("cardinal_write_step_duration_seconds_count", {{"step", step}}) ==
                      static_cast<double>(kSenders * kRequestsEach),
                  step);
  }
  CHECK(cardinal.metric("cardinal_write_step_duration_seconds_count", {{"step", "encode"}}) == 0);
  for (const auto& [labels, n] : seen) {
    CHECK_MESSAGE(n == 1, labelsToString(labels) << " forwarded " << n << " times");
  }
}

TEST_CASE("more requests than --upstream.max-in-flight: the extra one gets 503 at once") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(204).after(Millis(1500)));
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.max-in-flight=2"});
  INFO(describe(cardinal.process()));

  auto request = [&](int i) {
    prometheus::WriteRequest req;
    addSeries(req, {{"__name__", "it_overload_total"}, {"i", std::to_string(i)}},
              {{1, nowMs() - 1000}});
    return req;
  };
  auto first = std::async(std::launch::async,
                          [&] { return postRemoteWrite(cardinal.writeUrl(), request(0)); });
  auto second = std::async(std::launch::async,
                           [&] { return postRemoteWrite(cardinal.writeUrl(), request(1)); });
  REQUIRE_MESSAGE(upstream.waitForRequests(2, Millis(5000)),
                  "the first two requests did not reach the upstream");

  const auto start = Clock::now();
  auto extra = postRemoteWrite(cardinal.writeUrl(), request(2), Millis(5000));
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - start);
  CHECK_MESSAGE(extra.status == 503, "third request while two are in flight: " << extra.summary());
  CHECK_MESSAGE(extra.headers.get("Retry-After").has_value(), "503 without Retry-After");
  CHECK_MESSAGE(took < Millis(1000), "the overload answer took " << took.count() << " ms");

  auto r1 = first.get();
  auto r2 = second.get();
  CHECK_MESSAGE(r1.status == 204, r1.summary());
  CHECK_MESSAGE(r2.status == 204, r2.summary());
  upstream.script({}, HttpReply::withStatus(204));
  auto after = postRemoteWrite(cardinal.writeUrl(), request(3));
  CHECK_MESSAGE(after.status == 204, "once the load is gone: " << after.summary());
  CHECK_MESSAGE(upstream.requestCount() == 3, "upstream saw " << upstream.requestCount()
                                                              << " requests; the refused one "
                                                                 "must not be forwarded");
}

}  // namespace
}  // namespace cardinal::integration
