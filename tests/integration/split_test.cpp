// Large requests decoded, processed and encoded in parts by two I/O threads
// (--web.split-request-bytes, lib/server/request_split.h): the same forwarded data as a whole
// request, a series present in two parts kept in order, errors that name the whole request's
// series, and a real Prometheus receiver taking the joined snappy body.
#include <doctest/doctest.h>

#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "rw2_support.h"
#include "workload.h"

namespace cardinal::integration {
namespace {

const char* const kHmacKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

double splitCount(const CardinalServer& c, const std::string& how) {
  return c.metric("cardinal_split_requests_total", {{"stages", how}}).value_or(-1);
}

prometheus::WriteRequest numbered(const std::string& name, int n, int64_t t) {
  prometheus::WriteRequest req;
  for (int i = 0; i < n; ++i)
    addSeries(req, {{"__name__", name}, {"instance", "host-" + std::to_string(i % 7) + ":9100"},
                    {"n", std::to_string(i)}},
              {{1.0 * i, t}});
  return req;
}

// Posts `n` numbered series named `name` (30 s old) through `cardinal`, which must split the
// request into parts (shared or alone) and answer 204; `prom` must then hold every sample.
void checkSplitAndStored(const CardinalServer& cardinal, PrometheusServer& prom, const std::string& name, int n) {
  const auto req = numbered(name, n, nowMs() - 30'000);
  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  CHECK(splitCount(cardinal, "shared") + splitCount(cardinal, "alone") == 1);
  const auto expected = expectedFrom(req);
  auto diff = diffStored(expected, expected, prom.api().rawSamples("{__name__=\"" + name + "\"}", "5m"));
  CHECK_MESSAGE(diff.empty(), diff.report());
}

}  // namespace

TEST_CASE("split requests: the seed workload through the default pipeline forwards what whole requests do") {
  TempDir dir;
  const auto key = dir.writeFile("hmac.key", kHmacKey);
  FakeUpstream split_up, whole_up;
  // Both with the same redaction key; no merged-output emission while the test runs, so the
  // upstreams see only the forwarded parts of the requests, one upstream request per request.
  const std::vector<std::string> common{"--sanitize.hmac-key-file=" + key.string(), "--aggregation.interval=1h",
                                        "--web.io-threads=2"};
  auto with = [&](std::string flag) {
    auto v = common;
    v.push_back(std::move(flag));
    return v;
  };
  CardinalServer split(dir, split_up.writeUrl(), with("--web.split-request-bytes=1"), "split");
  CardinalServer whole(dir, whole_up.writeUrl(), with("--web.split-request-bytes=0"), "whole");

  cardinal::bench::WorkloadConfig cfg;  // the seed mix of bench/compare.sh: 2000 series, 20% fresh ids
  auto workload = cardinal::bench::Workload::create(cfg);
  REQUIRE(workload.ok());
  const int64_t t0 = nowMs() - 10 * 60'000;
  // The cardinality engine decides on the seed's families during the first requests, and a
  // decision made while one part is in the stages reaches another part's series or not,
  // as it does between concurrent requests. From then on, both proxies do the same.
  constexpr int kWarmup = 4;
  constexpr int kRequests = 16;
  for (int k = 0; k < kRequests; ++k) {
    std::string raw;
    workload->build(0, static_cast<uint64_t>(k), t0 + k * 15'000, raw);
    const std::string body = snappyCompress(raw);
    auto a = postRemoteWrite(split.writeUrl(), body);
    auto b = postRemoteWrite(whole.writeUrl(), body);
    REQUIRE_MESSAGE(a.status == 204, a.summary());
    REQUIRE_MESSAGE(b.status == 204, b.summary());
  }
  CHECK(splitCount(split, "shared") + splitCount(split, "alone") + splitCount(split, "in_order") == kRequests);
  CHECK(splitCount(whole, "shared") + splitCount(whole, "alone") + splitCount(whole, "in_order") == 0);

  auto got = split_up.requests();
  auto want = whole_up.requests();
  REQUIRE(got.size() == static_cast<size_t>(kRequests));
  REQUIRE(want.size() == got.size());
  for (size_t i = kWarmup; i < got.size(); ++i) {
    CAPTURE(i);
    auto g = snappyUncompress(got[i].http.body);
    auto w = snappyUncompress(want[i].http.body);
    REQUIRE(g.has_value());
    REQUIRE(w.has_value());
    REQUIRE(got[i].decoded.has_value());
    CHECK(got[i].decoded->timeseries_size() > 0);
    // Byte for byte: the parts' encodings concatenate to the whole's.
    CHECK(*g == *w);
  }
}

TEST_CASE("split requests: a series in two parts goes through the stages in the request's order") {
  TempDir dir;
  FakeUpstream upstream;
  // orders_total loses order_id: its series go to the merge engine, which takes samples of
  // each input series in timestamp order only.
  const auto rules = dir.writeFile("rules.yaml", R"(rules:
  - name: order ids
    match: {metric: orders_total}
    action: drop_label
    labels: [order_id]
)");
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--rules.file=" + rules.string(), "--web.split-request-bytes=1", "--web.io-threads=2",
                           "--cardinality.enabled=false", "--aggregation.interval=1h"});
  const int64_t t = nowMs() - 60'000;
  // One order's counter at t, 600 other series, the same counter at t + 15 s: a sender
  // catching up sends a series' samples in several entries of one request.
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "orders_total"}, {"order_id", "o-1"}, {"shop", "a"}}, {{1.0, t}});
  const auto fillers = numbered("it_split_filler", 600, t);
  for (const auto& ts : fillers.timeseries()) *req.add_timeseries() = ts;
  addSeries(req, {{"__name__", "orders_total"}, {"order_id", "o-1"}, {"shop", "a"}}, {{2.0, t + 15'000}});
  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, res.summary());
  // Never shared with the helper for the stages: all on the request's thread, in order.
  CHECK(splitCount(cardinal, "shared") == 0);
  CHECK(splitCount(cardinal, "in_order") + splitCount(cardinal, "alone") == 1);
  CHECK(cardinal.metric("cardinal_merge_samples_total", {{"result", "absorbed"}}).value_or(0) == 2);
  CHECK(cardinal.metric("cardinal_merge_samples_total", {{"result", "out_of_order"}}).value_or(0) == 0);
  // The fillers are forwarded, in order.
  auto series = upstream.allSeries();
  REQUIRE(series.size() == 600);
  for (size_t i = 0; i < series.size(); ++i) CHECK(labelsOf(series[i]).at("n") == std::to_string(i));
}

TEST_CASE("split requests: an error in a later part names the series as in the whole request") {
  TempDir dir;
  FakeUpstream upstream;
  CardinalServer split(dir, upstream.writeUrl(),
                       {"--web.split-request-bytes=1", "--web.io-threads=2", "--limits.max-label-value-length=64"},
                       "split");
  CardinalServer whole(dir, upstream.writeUrl(), {"--web.split-request-bytes=0", "--limits.max-label-value-length=64"},
                       "whole");
  prometheus::WriteRequest req = numbered("it_split_bad", 1000, nowMs());
  // Series 900 (in the last part) has a value over the limit.
  req.mutable_timeseries(900)->mutable_labels(2)->set_value(std::string(100, 'v'));
  auto a = postRemoteWrite(split.writeUrl(), req);
  auto b = postRemoteWrite(whole.writeUrl(), req);
  CHECK(a.status == 400);
  CHECK(a.body == b.body);
  CHECK(a.body.find("900") != std::string::npos);
  CHECK(upstream.requestCount() == 0);
  // Over the series limit only together: the whole request's message.
  CardinalServer limited(dir, upstream.writeUrl(),
                         {"--web.split-request-bytes=1", "--web.io-threads=2", "--limits.max-series-per-request=999"},
                         "limited");
  auto c = postRemoteWrite(limited.writeUrl(), numbered("it_split_many", 1000, nowMs()));
  CHECK(c.status == 400);
  CHECK(c.body.find("--limits.max-series-per-request") != std::string::npos);
  CHECK(upstream.requestCount() == 0);
}

TEST_CASE("split requests: a Prometheus receiver stores every series of a joined body") {
  TempDir dir;
  PrometheusServer prom(dir, {});
  CardinalServer cardinal(dir, prom.writeUrl(),
                          {"--web.split-request-bytes=1", "--web.io-threads=2", "--cardinality.enabled=false"});
  // Large enough to be cut into several parts, each spanning snappy 64 KiB fragments.
  checkSplitAndStored(cardinal, prom, "it_split_stored", 4000);
}

TEST_CASE("split requests: while another request is processed, split when the helper's thread has time") {
  TempDir dir;
  FakeUpstream upstream;
  // The probe's answer held 5 ms, so that the slow-request log names its I/O thread.
  upstream.script({HttpReply::withStatus(204).after(Millis(5))});
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--web.split-request-bytes=1", "--web.io-threads=2", "--aggregation.interval=1h",
                           "--log.slow-requests=1ms", "--log.level=warn"});
  INFO(describe(cardinal.process()));
  // A connection of its own: every later one goes to the other I/O thread (the one with the
  // fewest connections).
  KeepAliveClient mine(cardinal.port(), 60);
  const int64_t t = nowMs() - 60'000;
  prometheus::WriteRequest probe;
  addSeries(probe, {{"__name__", "it_probe_total"}, {"job", "it"}}, {{1, t}});
  REQUIRE(mine.post(probe) == 204);
  REQUIRE(slowRequestLines(cardinal.process()).size() == 1);
  const std::string my_thread = logField(slowRequestLines(cardinal.process())[0], "thread");

  // 2.0 requests (never split) of 100,000 fresh series each, a few hundred milliseconds in the
  // stages, encoded before the clock starts.
  auto busyBody = [&](int k) {
    V2RequestBuilder b;
    for (int i = 0; i < 100'000; ++i)
      b.sample(b.series({{"__name__", "it_busy_seconds"}, {"instance", "host-" + std::to_string(i % 97)},
                         {"k", std::to_string(k)}, {"n", std::to_string(i)}}),
               t, 0.5 * i);
    return encodeV2(b.req);
  };
  // Posts `busy` one after the other on the other thread and, 100 ms into the last one (whose
  // processing takes a few hundred), a 1.0 request of `n` series on this connection; returns
  // that request's log line.
  auto beside = [&](const std::vector<std::string>& busy, int n) {
    std::atomic<size_t> answered{0};
    std::vector<int> statuses;
    std::thread other([&] {
      for (const auto& body : busy) {
        statuses.push_back(httpPost(cardinal.writeUrl(), body, remoteWriteV2Headers(), Millis(60'000)).status);
        ++answered;
      }
    });
    REQUIRE(waitUntil([&] { return answered.load() + 1 == busy.size(); }, Millis(60'000)));
    std::this_thread::sleep_for(Millis(100));
    const int status = mine.post(numbered("it_split_beside_" + std::to_string(n), n, t));
    other.join();
    CHECK(status == 204);
    CHECK(statuses == std::vector<int>(busy.size(), 204));
    std::string line;
    for (const auto& l : slowRequestLines(cardinal.process())) {
      if (logField(l, "series_in") == std::to_string(n)) line = l;
      if (logField(l, "series_in") == "100000") {
        CHECK(logField(l, "thread") != my_thread);
        CHECK(logField(l, "processing_others").empty());  // 2.0: never looked at
      }
    }
    REQUIRE(!line.empty());
    CHECK(logField(line, "thread") == my_thread);
    // Sent while the 2.0 request was processed (the test's timing holds).
    REQUIRE(logField(line, "processing_others") == "1");
    return line;
  };

  {
    // The other thread has been idle since it started: its first window, closed when the 2.0
    // request starts, says so. The 1.0 request is split (its helper task runs after the 2.0
    // request: its own thread does most parts, if not all).
    std::this_thread::sleep_for(Millis(200));
    const auto line = beside({busyBody(0)}, 2000);
    CAPTURE(line);
    CHECK(std::stoi(logField(line, "helper_busy_permille")) < 800);
    CHECK(logField(line, "split") != "no");
    CHECK(splitCount(cardinal, "shared") + splitCount(cardinal, "alone") == 1);
  }
  {
    // Busy all through its last window (one 2.0 request to the next): the request runs whole.
    // On a host that takes the CPU from that thread for a fifth of the window, its share is
    // lower and the request is split: the decision must follow the share either way.
    const auto line = beside({busyBody(1), busyBody(2)}, 2001);
    CAPTURE(line);
    const int busy = std::stoi(logField(line, "helper_busy_permille"));
    WARN_MESSAGE(busy >= 800, "the busy thread ran less than 80% of its window (a loaded host)");
    const bool whole = busy >= 800;
    CHECK((logField(line, "split") == "no") == whole);
    CHECK(splitCount(cardinal, "shared") + splitCount(cardinal, "alone") == (whole ? 1 : 2));
  }
  // Both forwarded whole, in order.
  for (int n : {2000, 2001}) {
    std::vector<prometheus::TimeSeries> forwarded;
    for (const auto& ts : upstream.allSeries())
      if (labelsOf(ts).at("__name__") == "it_split_beside_" + std::to_string(n)) forwarded.push_back(ts);
    REQUIRE(forwarded.size() == static_cast<size_t>(n));
    for (size_t i = 0; i < forwarded.size(); ++i) CHECK(labelsOf(forwarded[i]).at("n") == std::to_string(i));
  }
}

// Every thread's allowed CPUs (Cpus_allowed_list of /proc/<pid>/task/*/status).
std::vector<std::string> threadCpuLists(int pid) {
  std::vector<std::string> lists;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& t : std::filesystem::directory_iterator(tasks)) {
    std::ifstream status(t.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      std::string list = line.substr(line.find(':') + 1);
      list.erase(0, list.find_first_not_of(" \t"));
      lists.push_back(list);
    }
  }
  return lists;
}

TEST_CASE("pinned I/O threads (--web.io-threads-pin) each keep to one CPU and serve as before") {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
  const int cpus = CPU_COUNT(&mine);  // the proxy inherits this set
  TempDir dir;
  PrometheusServer prom(dir, {});
  CardinalServer cardinal(dir, prom.writeUrl(),
                          {"--web.split-request-bytes=1", "--web.io-threads=2", "--web.io-threads-pin",
                           "--cardinality.enabled=false"});
  // Every thread's allowed CPUs, from /proc: the two I/O threads have one each (two different
  // ones when there are two), every other thread (background, file watchers) all of them.
  std::vector<std::string> single, wide;
  for (const auto& list : threadCpuLists(cardinal.process().pid()))
    (list.find_first_of(",-") == std::string::npos ? single : wide).push_back(list);
  CAPTURE(cpus);
  if (cpus >= 2) {
    REQUIRE(single.size() == 2);
    CHECK(std::set<std::string>(single.begin(), single.end()).size() == 2);
    CHECK(!wide.empty());
  } else {
    CHECK(wide.empty());  // one CPU: every thread has just that one
  }
  // And the proxy serves as it does unpinned: a request cut into parts reaches Prometheus whole.
  checkSplitAndStored(cardinal, prom, "it_pinned_stored", 3000);
}

std::string startedLine(CardinalServer& cardinal) {
  const auto lines = logLines(cardinal.process(), "cardinal started");
  return lines.empty() ? "" : lines.front();
}

TEST_CASE("spread I/O threads (--web.io-threads-spread, on by default): concurrent requests all stored, every "
          "thread keeps all its CPUs, moves counted; off when set false") {
  TempDir dir;
  PrometheusServer prom(dir, {});
  CardinalServer cardinal(dir, prom.writeUrl(),
                          {"--web.split-request-bytes=1", "--web.io-threads=2", "--cardinality.enabled=false",
                           "--aggregation.interval=1s"});
  CHECK(startedLine(cardinal).find("io_threads=\"2 (spread)\"") != std::string::npos);
  const auto before = threadCpuLists(cardinal.process().pid());
  REQUIRE(!before.empty());
  // Four senders at once, so that both I/O threads process requests at the same time (and a
  // thread may be moved): every request answered, every sample stored.
  const int64_t t = nowMs() - 30'000;
  std::atomic<int> ok{0};
  auto send = [&](int k, int r) {
    const auto res = postRemoteWrite(cardinal.writeUrl(), numbered("it_spread_" + std::to_string(k), 2000, t + r));
    if (res.status == 204) ++ok;
  };
  // The first request alone: a fresh Prometheus 2.42 can refuse a write that arrives while the
  // first one sets its head's time range (see FirstWriteGate in ecosystem_peers.h).
  send(0, 0);
  std::vector<std::thread> senders;
  for (int k = 0; k < 4; ++k)
    senders.emplace_back([&, k] {
      for (int r = k == 0 ? 1 : 0; r < 10; ++r) send(k, r);
    });
  for (auto& s : senders) s.join();
  CHECK(ok == 40);
  for (int k = 0; k < 4; ++k) {
    const std::string name = "it_spread_" + std::to_string(k);
    ExpectedSamples expected;
    for (int r = 0; r < 10; ++r)
      for (auto& [labels, samples] : expectedFrom(numbered(name, 2000, t + r)))
        expected[labels].insert(samples.begin(), samples.end());
    auto diff = diffStored(expected, expected, prom.api().rawSamples("{__name__=\"" + name + "\"}", "5m"));
    CHECK_MESSAGE(diff.empty(), diff.report());
  }
  // A move gives the thread its CPUs back: every thread (some start later) may use what every
  // thread could use before the load, all the CPUs the proxy may use.
  const auto after = threadCpuLists(cardinal.process().pid());
  const std::set<std::string> lists_before(before.begin(), before.end()), lists_after(after.begin(), after.end());
  CHECK(lists_before.size() == 1);
  CHECK(lists_after == lists_before);
  // The counter is exported (brought up to date each aggregation interval).
  std::this_thread::sleep_for(Millis(1500));
  const auto moves = cardinal.metric("cardinal_io_thread_moves_total");
  REQUIRE(moves.has_value());
  MESSAGE("I/O thread moves under this load: " << *moves);

  CardinalServer off(dir, prom.writeUrl(), {"--web.io-threads=2", "--web.io-threads-spread=false"}, "off");
  const std::string line = startedLine(off);
  CHECK(line.find("io_threads=2 ") != std::string::npos);
  CHECK(line.find("spread") == std::string::npos);
}

}  // namespace cardinal::integration
