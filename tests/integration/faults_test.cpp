// Upstream faults: retried 5xx, 429 with Retry-After, 4xx passed back, and an upstream that is
// down for a while under a sender that retries like Prometheus.
#include <algorithm>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

prometheus::WriteRequest oneSample(const std::string& name, double value, int64_t ts) {
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", name}, {"job", "it"}}, {{value, ts}});
  return req;
}

bool sameSeries(const prometheus::WriteRequest& a, const prometheus::WriteRequest& b) {
  return expectedFrom(a) == expectedFrom(b);
}

TEST_CASE("upstream 500 then 204: retried, the sender gets 204") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({HttpReply::withStatus(500, "try later"), HttpReply::withStatus(503)},
                  HttpReply::withStatus(204));
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.retry-budget=4s"});
  INFO(describe(cardinal.process()));

  auto req = oneSample("it_retry_total", 1, nowMs() - 1000);
  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  CHECK_MESSAGE(res.status == 204, res.summary());
  auto got = upstream.requests();
  REQUIRE_MESSAGE(got.size() == 3, "upstream saw " << got.size()
                                                   << " requests; expected 500, 503, then 204");
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    REQUIRE_MESSAGE(got[i].decoded.has_value(), got[i].decode_error);
    CHECK_MESSAGE(sameSeries(*got[i].decoded, req), "retry " << i << " carried other data");
  }
}

TEST_CASE("upstream always 500: the sender gets 503 with Retry-After within the budget") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(500, "broken"));
  // The "--name value" flag form.
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.retry-budget", "1s"});
  INFO(describe(cardinal.process()));

  const auto start = Clock::now();
  auto res = postRemoteWrite(cardinal.writeUrl(), oneSample("it_500_total", 1, nowMs() - 1000),
                             Millis(15000));
  const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
  CAPTURE(elapsed.count());
  CHECK_MESSAGE(res.status == 503, res.summary());
  CHECK_MESSAGE(res.headers.get("Retry-After").has_value(), "503 without Retry-After");
  CHECK_MESSAGE(elapsed < Millis(1000 + 2000), "answered long after the 1s retry budget");
  CHECK_MESSAGE(upstream.requestCount() >= 2, "upstream saw " << upstream.requestCount()
                                                              << " attempts; 500 is retryable");
}

TEST_CASE("upstream 429 with Retry-After: the sender gets 503 with Retry-After") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(429, "slow down").header("Retry-After", "1"));
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--upstream.retry-budget=2s"});
  INFO(describe(cardinal.process()));

  const auto start = Clock::now();
  auto res = postRemoteWrite(cardinal.writeUrl(), oneSample("it_429_total", 1, nowMs() - 1000),
                             Millis(15000));
  const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
  CAPTURE(elapsed.count());
  CHECK_MESSAGE(res.status == 503, "a 429 upstream must become 503 (every sender retries 503, "
                                   "default Prometheus drops on 429): "
                                       << res.summary());
  auto retry_after = res.headers.get("Retry-After");
  CHECK_MESSAGE(retry_after.has_value(), "503 without Retry-After");
  if (retry_after) {
    CHECK_MESSAGE(std::all_of(retry_after->begin(), retry_after->end(), ::isdigit),
                  "Retry-After is not delay-seconds: '" << *retry_after << "'");
  }
  CHECK_MESSAGE(elapsed < Millis(2000 + 2500), "answered only after the 2s retry budget + 2.5s");
  CHECK(upstream.requestCount() >= 1);
}

TEST_CASE("upstream 400: passed back to the sender with the upstream's message, not retried") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(400, "bad thing"));
  CardinalServer cardinal(dir, upstream.writeUrl());
  INFO(describe(cardinal.process()));

  auto res = postRemoteWrite(cardinal.writeUrl(), oneSample("it_400_total", 1, nowMs() - 1000));
  CHECK_MESSAGE(res.status == 400, res.summary());
  CHECK_MESSAGE(res.body.find("bad thing") != std::string::npos, res.summary());
  std::this_thread::sleep_for(Millis(500));  // a retry would have happened by now
  CHECK_MESSAGE(upstream.requestCount() == 1, "a 400 was retried: upstream saw "
                                                  << upstream.requestCount() << " requests");
}

TEST_CASE("upstream closes kept-alive connections after each answer: no request lost") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({}, HttpReply::withStatus(204).thenClose());
  CardinalServer cardinal(dir, upstream.writeUrl());
  INFO(describe(cardinal.process()));

  constexpr int kRequests = 6;
  for (int i = 0; i < kRequests; ++i) {
    CAPTURE(i);
    auto res = postRemoteWrite(cardinal.writeUrl(),
                               oneSample("it_reconnect_total", i, nowMs() - 10000 + i));
    CHECK_MESSAGE(res.status == 204, res.summary());
    std::this_thread::sleep_for(Millis(50));  // let the close arrive before the next request
  }
  std::set<double> values;
  for (const auto& ts : upstream.allSeries()) {
    for (const auto& s : ts.samples()) values.insert(s.value());
  }
  CHECK_MESSAGE(values.size() == static_cast<size_t>(kRequests),
                "upstream got " << values.size() << " distinct samples in "
                                << upstream.requestCount() << " requests");
}

TEST_CASE("an upstream attempt that times out is retried") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({HttpReply::withStatus(204).after(Millis(3000))}, HttpReply::withStatus(204));
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--upstream.timeout=500ms", "--upstream.retry-budget=4s"});
  INFO(describe(cardinal.process()));

  const auto start = Clock::now();
  auto res = postRemoteWrite(cardinal.writeUrl(), oneSample("it_timeout_total", 1, nowMs() - 1000));
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - start);
  CHECK_MESSAGE(res.status == 204, res.summary());
  CHECK_MESSAGE(took < Millis(2500), "took " << took.count()
                                             << " ms; the 500ms attempt timeout was not applied");
  CHECK_MESSAGE(upstream.requestCount() >= 2, "upstream saw " << upstream.requestCount()
                                                              << " attempts");
}

TEST_CASE("upstream down, then up: every sample acknowledged with 2xx is stored") {
  TempDir dir;
  const uint16_t upstream_port = freePort();  // nothing listens here yet
  const std::string upstream_url =
      "http://127.0.0.1:" + std::to_string(upstream_port) + "/api/v1/write";
  // A budget shorter than the outage, so the sender sees 503s and has to retry.
  CardinalServer cardinal(dir, upstream_url, {"--upstream.retry-budget=1s"});
  INFO(describe(cardinal.process()));

  // A sender that behaves like Prometheus: retry 5xx and transport errors with backoff from
  // 30ms doubling to 1s, drop on other 4xx. Sequential, one sample per request.
  constexpr int kRequests = 20;
  const int64_t base = nowMs() - 2 * 60 * 1000;
  struct Outcome {
    std::vector<int> acked;  // request indexes answered 2xx
    std::vector<std::string> dropped;
    int retries = 0;
    std::optional<HttpResponse> first_503;
  };
  auto sender = std::async(std::launch::async, [&] {
    Outcome out;
    const auto deadline = Clock::now() + std::chrono::seconds(45);
    for (int i = 0; i < kRequests && Clock::now() < deadline; ++i) {
      auto req = oneSample("it_outage_total", i, base + i * 1000);
      Millis backoff(30);
      while (Clock::now() < deadline) {
        auto res = postRemoteWrite(cardinal.writeUrl(), req, Millis(10000));
        if (res.status >= 200 && res.status < 300) {
          out.acked.push_back(i);
          break;
        }
        if (res.status >= 400 && res.status < 500 && res.status != 429) {
          out.dropped.push_back("request " + std::to_string(i) + ": " + res.summary());
          break;
        }
        if (res.status == 503 && !out.first_503) out.first_503 = res;
        ++out.retries;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, Millis(1000));
      }
    }
    return out;
  });

  std::this_thread::sleep_for(std::chrono::seconds(3));
  PrometheusServer::Options opts;
  opts.port = upstream_port;
  PrometheusServer prom(dir, opts);
  INFO(describe(prom.process()));

  REQUIRE(sender.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  Outcome out = sender.get();
  std::string dropped;
  for (const auto& d : out.dropped) dropped += d + "\n";
  CHECK_MESSAGE(out.dropped.empty(), "requests answered with a non-retryable 4xx:\n" << dropped);
  CHECK_MESSAGE(out.retries > 0, "no request was ever refused while the upstream was down");
  if (out.first_503) {
    CHECK_MESSAGE(out.first_503->headers.get("Retry-After").has_value(),
                  "503 without Retry-After: " << out.first_503->summary());
  }
  CHECK_MESSAGE(out.acked.size() == static_cast<size_t>(kRequests),
                "only " << out.acked.size() << " of " << kRequests
                        << " requests acknowledged within 45s");

  ExpectedSamples acked;
  ExpectedSamples sent;
  Labels labels = {{"__name__", "it_outage_total"}, {"job", "it"}};
  for (int i = 0; i < kRequests; ++i) sent[labels][base + i * 1000] = i;
  for (int i : out.acked) acked[labels][base + i * 1000] = i;
  auto stored = prom.api().rawSamples("it_outage_total");
  StoredDiff diff = diffStored(acked, sent, stored);
  CHECK_MESSAGE(diff.empty(), "acknowledged " << out.acked.size() << " requests after "
                                              << out.retries << " retries:\n"
                                              << diff.report());
}

}  // namespace
}  // namespace cardinal::integration

namespace cardinal::integration {
namespace {

TEST_CASE("--log.slow-requests: a request slower than the threshold is logged with its steps, others are not") {
  TempDir dir;
  FakeUpstream upstream;
  upstream.script({HttpReply::withStatus(204).after(Millis(400)), HttpReply::withStatus(204),
                   HttpReply::withStatus(400, "bad sample").after(Millis(400))});
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--log.slow-requests=250ms", "--log.level=warn"});
  INFO(describe(cardinal.process()));

  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_slow_total"}, {"job", "it"}}, {{1, nowMs() - 1000}});
  addSeries(req, {{"__name__", "it_slow_total"}, {"job", "other"}}, {{2, nowMs() - 1000}});
  auto slow = postRemoteWrite(cardinal.writeUrl(), req);
  CHECK_MESSAGE(slow.status == 204, slow.summary());
  auto fast = postRemoteWrite(cardinal.writeUrl(), req);
  CHECK_MESSAGE(fast.status == 204, fast.summary());
  auto rejected = postRemoteWrite(cardinal.writeUrl(), req);
  CHECK_MESSAGE(rejected.status == 400, rejected.summary());

  // Written before the answer is sent: present once the sender has it.
  const auto lines = slowRequestLines(cardinal.process());
  REQUIRE_MESSAGE(lines.size() == 2, "expected the two slow requests logged, got " << lines.size());
  for (const auto& line : lines) {
    CAPTURE(line);
    CHECK(line.find("level=warn") != std::string::npos);
    CHECK(std::stod(logField(line, "total_ms")) >= 400.0);
    CHECK(std::stod(logField(line, "upstream_ms")) >= 400.0);
    CHECK(std::stod(logField(line, "upstream_ms")) <= std::stod(logField(line, "total_ms")));
    for (const char* step : {"decompress_ms", "decode_ms", "process_ms", "encode_ms"})
      CHECK_MESSAGE(std::stod(logField(line, step)) < 250.0, step);
    CHECK(std::stod(logField(line, "thread_cpu_ms")) >= 0.0);
    CHECK(std::stol(logField(line, "involuntary_switches")) >= 0);
    // The run-queue wait of the I/O thread, to the end of its work and to the answer (given on that thread).
    CHECK(std::stod(logField(line, "runqueue_wait_ms")) >= 0.0);
    CHECK(std::stod(logField(line, "runqueue_wait_total_ms")) >= std::stod(logField(line, "runqueue_wait_ms")));
    // What the I/O thread ran while the fake upstream held the answer: not the 400 ms.
    CHECK(std::stod(logField(line, "upstream_thread_cpu_ms")) >= 0.0);
    CHECK(std::stod(logField(line, "upstream_thread_cpu_ms")) < 250.0);
    // The answer was read as it came (the thread had nothing else to do): not the 400 ms it was held.
    CHECK(std::stod(logField(line, "answer_wait_ms")) >= 0.0);
    CHECK(std::stod(logField(line, "answer_wait_ms")) < 250.0);
    CHECK(logField(line, "series_in") == "2");
    CHECK(logField(line, "series_out") == "2");
    CHECK(std::stoul(logField(line, "bytes_in")) > 0);
    CHECK(logField(line, "split") == "no");
  }
  CHECK(logField(lines[0], "status") == "204");
  CHECK(logField(lines[1], "status") == "400");
}

TEST_CASE("--log.slow-requests: request_wait_ms is how long a request lay in its socket before its thread came") {
  TempDir dir;
  FakeUpstream upstream;
  // Every answer held 5 ms, so that every request is logged (1 ms threshold).
  upstream.script({}, HttpReply::withStatus(204).after(Millis(5)));
  // One I/O thread: a request on a second connection waits for the first one's processing.
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--web.io-threads=1", "--aggregation.interval=1h", "--log.slow-requests=1ms",
                           "--log.level=warn"});
  INFO(describe(cardinal.process()));
  const int64_t t = nowMs() - 60'000;
  // Fresh series, a few hundred milliseconds in the stages; encoded before the clock starts.
  prometheus::WriteRequest large;
  for (int i = 0; i < 100'000; ++i)
    addSeries(large, {{"__name__", "it_wait_seconds"}, {"instance", "host-" + std::to_string(i % 97)},
                      {"n", std::to_string(i)}},
              {{0.5 * i, t}});
  const std::string large_body = encodeWriteRequest(large);
  prometheus::WriteRequest small;
  addSeries(small, {{"__name__", "it_wait_small_total"}, {"job", "it"}}, {{1, t}});

  HttpResponse large_res;
  std::thread other([&] { large_res = postRemoteWrite(cardinal.writeUrl(), large_body, Millis(60'000)); });
  std::this_thread::sleep_for(Millis(100));  // the large request is being processed
  auto small_res = postRemoteWrite(cardinal.writeUrl(), small);
  other.join();
  CHECK_MESSAGE(large_res.status == 204, large_res.summary());
  CHECK_MESSAGE(small_res.status == 204, small_res.summary());

  std::string large_line, small_line;
  for (const auto& line : slowRequestLines(cardinal.process())) {
    if (logField(line, "series_in") == "100000") large_line = line;
    if (logField(line, "series_in") == "1") small_line = line;
  }
  CAPTURE(large_line);
  CAPTURE(small_line);
  REQUIRE(!large_line.empty());
  REQUIRE(!small_line.empty());
  // The large request came to an idle thread; the small one waited in its socket for the large
  // one's processing (started 100 ms before it was sent, and lasting longer), and that wait is
  // not in its total, which starts when its handling does.
  const double large_wait = std::stod(logField(large_line, "request_wait_ms"));
  const double small_wait = std::stod(logField(small_line, "request_wait_ms"));
  CHECK(large_wait >= 0.0);
  CHECK(large_wait < 50.0);
  CHECK(small_wait >= 50.0);
  CHECK(std::stod(logField(small_line, "total_ms")) < small_wait);
}

TEST_CASE("an upstream answer that arrives while its I/O thread processes another request is answered at once, "
          "not after that request") {
  TempDir dir;
  FakeUpstream upstream;
  // Three probes answered after 5 ms (so the slow-request log names their I/O thread), then the
  // small request's answer held for 50 ms; everything after is answered at once.
  constexpr Millis kHeld(50);
  upstream.script({HttpReply::withStatus(204).after(Millis(5)), HttpReply::withStatus(204).after(Millis(5)),
                   HttpReply::withStatus(204).after(Millis(5)), HttpReply::withStatus(204).after(kHeld)});
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--web.io-threads=2", "--aggregation.interval=1h", "--log.slow-requests=1ms",
                           "--log.level=warn"});
  INFO(describe(cardinal.process()));
  // Three connections on two I/O threads: two of them share one. Which, the probes' log lines say.
  std::vector<std::unique_ptr<KeepAliveClient>> conns;
  const int64_t t = nowMs() - 1000;
  std::vector<std::string> probe_thread;
  for (int i = 0; i < 3; ++i) conns.push_back(std::make_unique<KeepAliveClient>(cardinal.port(), 120));
  for (int i = 0; i < 3; ++i) {
    prometheus::WriteRequest probe;
    addSeries(probe, {{"__name__", "it_probe_total"}, {"conn", std::to_string(i)}}, {{1, t}});
    REQUIRE(conns[i]->post(probe) == 204);
    const auto lines = slowRequestLines(cardinal.process());
    REQUIRE(lines.size() == static_cast<size_t>(i + 1));
    probe_thread.push_back(logField(lines.back(), "thread"));
  }
  int x = -1, y = -1;
  for (int i = 0; i < 3 && x < 0; ++i)
    for (int j = i + 1; j < 3 && x < 0; ++j)
      if (probe_thread[i] == probe_thread[j]) {
        x = i;
        y = j;
      }
  REQUIRE(x >= 0);
  KeepAliveClient& a = *conns[x];
  KeepAliveClient& c = *conns[y];

  prometheus::WriteRequest small;
  addSeries(small, {{"__name__", "it_held_total"}, {"job", "it"}}, {{1, t}});
  // Large enough to keep its thread (and the helper) busy far longer than the held answer: fresh
  // series, each met for the first time.
  constexpr int kLarge = 100'000;
  prometheus::WriteRequest large;
  for (int i = 0; i < kLarge; ++i)
    addSeries(large, {{"__name__", "it_busy_seconds"}, {"instance", "host-" + std::to_string(i % 97) + ":9100"},
                      {"path", "/api/v" + std::to_string(i % 3)}, {"n", std::to_string(i)}},
              {{0.5 * i, t}});

  const std::string large_body = encodeWriteRequest(large);  // encoded before the clock starts
  using SteadyClock = std::chrono::steady_clock;
  SteadyClock::time_point small_answered, large_sent;
  int small_status = 0, large_status = 0;
  std::thread first([&] {
    small_status = a.post(small);
    small_answered = SteadyClock::now();
  });
  // The small request is at the upstream, its answer held: now the large one, on the same thread.
  REQUIRE(upstream.waitForRequests(4, Millis(5000)));
  large_sent = SteadyClock::now();
  large_status = c.postBody(large_body);
  first.join();
  CHECK(small_status == 204);
  CHECK(large_status == 204);

  // The large request's own work (from its decompression to the end of its encoding), from the log.
  const auto lines = slowRequestLines(cardinal.process());
  std::string large_line;
  for (const auto& line : lines)
    if (logField(line, "series_in") == std::to_string(kLarge)) large_line = line;
  REQUIRE_MESSAGE(!large_line.empty(), "the large request is not in the slow-request log");
  CAPTURE(large_line);
  const double work_ms = std::stod(logField(large_line, "total_ms")) - std::stod(logField(large_line, "upstream_ms"));
  const double small_after_ms =
      std::chrono::duration<double, std::milli>(small_answered - large_sent).count();
  MESSAGE("the large request's work: " << work_ms << " ms; the small one answered " << small_after_ms
                                       << " ms after the large one was sent");
  // Meaningful only when the work outlasts the held answer by far.
  REQUIRE_MESSAGE(work_ms > 3.0 * static_cast<double>(kHeld.count()),
                  "the large request took " << work_ms << " ms: too little to tell");
  // Held 50 ms at the upstream, then answered at the next yield point (between parts or stages),
  // not once the large request's work is over.
  CHECK(small_after_ms < work_ms - static_cast<double>(kHeld.count()));
}

}  // namespace
}  // namespace cardinal::integration
