// Graceful shutdown: SIGTERM while a request waits on a slow upstream.
#include <csignal>
#include <future>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

TEST_CASE("SIGTERM during a slow in-flight request: it completes with 204, exit status 0") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(204).after(Millis(1000)));
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--shutdown.timeout=10s"});
  INFO(describe(cardinal.process()));

  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_shutdown_total"}, {"job", "it"}}, {{1, nowMs() - 1000}});
  auto in_flight = std::async(std::launch::async, [&] {
    return postRemoteWrite(cardinal.writeUrl(), req, Millis(15000));
  });
  REQUIRE_MESSAGE(upstream.waitForRequests(1, Millis(5000)),
                  "the request never reached the upstream");

  const auto sigterm_at = Clock::now();
  cardinal.process().terminate();
  std::this_thread::sleep_for(Millis(300));

  // Stopped accepting: a new request must not be taken on (refused, reset or 503).
  auto late = postRemoteWrite(cardinal.writeUrl(), req, Millis(3000));
  CHECK_MESSAGE(!(late.status >= 200 && late.status < 300),
                "a request sent 300ms after SIGTERM was accepted: " << late.summary());

  REQUIRE(in_flight.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
  auto res = in_flight.get();
  CHECK_MESSAGE(res.status == 204, "in-flight request during shutdown: " << res.summary());

  auto status = cardinal.process().waitExit(Millis(10000));
  REQUIRE_MESSAGE(status.has_value(), "still running 10s after SIGTERM");
  CHECK_MESSAGE(status->exited, status->toString());
  CHECK_MESSAGE(status->code == 0, status->toString());
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - sigterm_at);
  MESSAGE("exited " << took.count() << " ms after SIGTERM");
  CHECK_MESSAGE(upstream.requestCount() == 1,
                "upstream saw " << upstream.requestCount() << " requests, expected only the "
                                                              "in-flight one");
}

TEST_CASE("SIGTERM with an idle keep-alive connection open: exits promptly with status 0") {
  TempDir dir;
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--shutdown.timeout=10s"});
  INFO(describe(cardinal.process()));

  // Every real sender keeps its connection open between batches.
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_idle_total"}, {"job", "it"}}, {{1, nowMs() - 1000}});
  const std::string body = encodeWriteRequest(req);
  const std::string request =
      "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
      "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  auto idle = std::async(std::launch::async, [&] {
    return rawExchange(cardinal.port(), request, false, Millis(15000));
  });
  REQUIRE_MESSAGE(upstream.waitForRequests(1, Millis(5000)), "the request was not forwarded");
  std::this_thread::sleep_for(Millis(300));

  const auto sigterm_at = Clock::now();
  cardinal.process().terminate();
  auto status = cardinal.process().waitExit(Millis(12000));
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - sigterm_at);
  REQUIRE_MESSAGE(status.has_value(), "still running 12s after SIGTERM");
  CHECK_MESSAGE(status->exited, status->toString());
  CHECK_MESSAGE(status->code == 0, status->toString());
  CHECK_MESSAGE(took < Millis(3000),
                "exit took " << took.count()
                             << " ms: an idle keep-alive connection held up shutdown");
  auto ex = idle.get();
  CHECK_MESSAGE(ex.received.rfind("HTTP/1.1 204", 0) == 0,
                "the request on the kept-alive connection: " << ex.received.substr(0, 200));
}

}  // namespace
}  // namespace cardinal::integration
