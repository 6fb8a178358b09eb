// cardinal_loadgen: remote-write 1.0 load generator for the benchmark kit.
//
// Pool mode (default): a pool of encoded and snappy-compressed request bodies
// is generated before the timed phase and replayed, so the generator costs
// little more than writing bytes to sockets. Fresh series ids are fresh within
// the pool only, and the samples' timestamps repeat on every replay: a TSDB
// would reject the repeats as duplicates. This mode targets the sink and the
// proxy. Live mode (--live) encodes every request at send time with the
// current time, one series slice per connection, for runs against a real
// Prometheus; its throughput is not a benchmark.
//
// N keep-alive connections each send one request at a time (like Prometheus'
// shards), optionally paced to a global rate. No retries: a failed request is
// counted and the connection moves on. Prints one JSON object to stdout and a
// human-readable summary to stderr; exits 1 if no request was acknowledged.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/span_body.hpp>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "codec/snappy_codec.h"
#include "core/flags.h"
#include "upstream/url.h"
#include "workload.h"

namespace {

using namespace cardinal;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using bench::RequestCounts;
using bench::Workload;

constexpr const char* kUserAgent = "cardinal-loadgen/0.1";

struct Options {
  std::string url = "http://127.0.0.1:9192/api/v1/write";
  milliseconds duration{20'000};
  size_t concurrency = 8;
  size_t series_per_request = 2000;
  std::string mix = "seed";
  std::string fresh_ratio = "0.2";
  size_t pool = 64;
  size_t seed = 1;
  size_t requests = 0;
  std::string rate = "0";
  bool live = false;
  size_t population = 0;
  size_t threads = 1;
  milliseconds timeout{30'000};
  std::vector<std::string> headers;  // "Name: value", sent with every request
  bool help = false;
};

std::optional<double> parseDouble(const std::string& s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

int64_t wallMillis() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct PoolEntry {
  std::string body;  // compressed
  RequestCounts counts;
};

// What all senders share. Immutable during the run except the atomics.
struct Run {
  tcp::resolver::results_type endpoints;
  upstream::Url url;
  std::vector<PoolEntry> pool;             // pool mode
  std::optional<Workload> live_workload;   // live mode: copied per sender
  uint64_t max_requests = 0;               // 0 = no limit
  SteadyClock::time_point start;
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  double rate = 0;  // requests per second over all connections, 0 = unpaced
  milliseconds timeout{30'000};
  std::vector<std::pair<std::string, std::string>> headers;
  std::atomic<uint64_t> next_index{0};
  std::atomic<bool> stopping{false};
  std::atomic<size_t> active{0};
  std::function<void()> on_all_done;

  // Claims the next request index, or false when the run is over.
  bool take(uint64_t& index) {
    if (stopping.load(std::memory_order_relaxed) || SteadyClock::now() >= deadline) return false;
    index = next_index.fetch_add(1, std::memory_order_relaxed);
    return max_requests == 0 || index < max_requests;
  }
};

struct SenderStats {
  uint64_t requests = 0;
  uint64_t ok = 0;
  uint64_t samples_sent = 0;
  uint64_t samples_acked = 0;
  uint64_t series_sent = 0;
  uint64_t bytes_sent = 0;  // compressed bodies
  std::map<std::string, uint64_t> errors;
  std::vector<int64_t> latencies_ns;  // requests that got a response
  SteadyClock::time_point finished{};
};

// One keep-alive connection sending one request at a time. Every handler
// runs on the sender's strand.
class Sender : public std::enable_shared_from_this<Sender> {
 public:
  Sender(net::io_context& ioc, Run& run, size_t stream, SenderStats& stats)
      : strand_(net::make_strand(ioc)), run_(run), stream_index_(stream), stats_(stats), timer_(strand_) {
    if (run_.live_workload) workload_.emplace(*run_.live_workload);
    req_.method(http::verb::post);
    req_.target(run_.url.target);
    req_.version(11);
    req_.set(http::field::host, run_.url.hostHeader());
    req_.set(http::field::user_agent, kUserAgent);
    req_.set(http::field::content_type, "application/x-protobuf");
    req_.set(http::field::content_encoding, "snappy");
    req_.set("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (const auto& [name, value] : run_.headers) req_.set(name, value);
    req_.keep_alive(true);
  }

  void start() {
    net::dispatch(strand_, [self = shared_from_this()] { self->next(); });
  }

 private:
  void next() {
    if (!run_.take(index_)) return finish();
    if (run_.rate > 0) {
      auto due = run_.start + std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(index_) / run_.rate));
      if (due >= run_.deadline) return finish();
      if (due > SteadyClock::now()) {
        timer_.expires_at(due);
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->finish();
          self->send();
        });
        return;
      }
    }
    send();
  }

  void send() {
    // The body: a pool entry, or (live) this connection's next request now.
    std::string_view body;
    if (workload_) {
      int64_t ts = std::max(wallMillis(), last_timestamp_ + 1);
      last_timestamp_ = ts;
      counts_ = workload_->build(stream_index_, live_seq_++, ts, raw_);
      codec::compress(raw_, live_body_);
      body = live_body_;
    } else {
      const PoolEntry& e = run_.pool[index_ % run_.pool.size()];
      counts_ = e.counts;
      body = e.body;
    }
    req_.body() = http::span_body<const char>::value_type(body.data(), body.size());
    req_.prepare_payload();
    ++stats_.requests;
    stats_.samples_sent += counts_.samples;
    stats_.series_sent += counts_.series;
    stats_.bytes_sent += body.size();
    if (!stream_) return connect();
    write();
  }

  void connect() {
    stream_.emplace(strand_);
    stream_->expires_after(run_.timeout);
    stream_->async_connect(run_.endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->failure("connect", ec);
      beast::error_code ignored;
      self->stream_->socket().set_option(tcp::no_delay(true), ignored);
      self->write();
    });
  }

  void write() {
    sent_at_ = SteadyClock::now();
    stream_->expires_after(run_.timeout);
    http::async_write(*stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->failure("write", ec);
      self->read();
    });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    http::async_read(*stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->failure("read", ec);
      self->onResponse();
    });
  }

  void onResponse() {
    stats_.latencies_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - sent_at_).count());
    auto& res = parser_->get();
    unsigned status = res.result_int();
    if (status >= 200 && status < 300) {
      ++stats_.ok;
      stats_.samples_acked += counts_.samples;
    } else {
      ++stats_.errors["status_" + std::to_string(status)];
      if (!first_error_logged_) {
        first_error_logged_ = true;
        std::string body = res.body().substr(0, 300);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        std::cerr << "cardinal_loadgen: connection " << stream_index_ << ": first error: " << status << " " << body
                  << "\n";
      }
    }
    if (!res.keep_alive()) closeStream();
    next();
  }

  void failure(const char* step, beast::error_code ec) {
    closeStream();
    std::string kind = ec == beast::error::timeout ? std::string("timeout") : std::string(step) + ": " + ec.message();
    ++stats_.errors[kind];
    if (run_.stopping.load(std::memory_order_relaxed)) return finish();
    // A short pause so a dead target does not turn into a busy loop.
    timer_.expires_after(milliseconds(50));
    timer_.async_wait([self = shared_from_this()](beast::error_code) { self->next(); });
  }

  void closeStream() {
    if (!stream_) return;
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->close();
    stream_.reset();
  }

  void finish() {
    closeStream();
    stats_.finished = SteadyClock::now();
    if (run_.active.fetch_sub(1) == 1 && run_.on_all_done) run_.on_all_done();
  }

  net::strand<net::io_context::executor_type> strand_;
  Run& run_;
  size_t stream_index_;
  SenderStats& stats_;
  net::steady_timer timer_;
  std::optional<beast::tcp_stream> stream_;
  http::request<http::span_body<const char>> req_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  uint64_t index_ = 0;
  RequestCounts counts_;
  SteadyClock::time_point sent_at_;
  bool first_error_logged_ = false;
  // Live mode only.
  std::optional<Workload> workload_;
  uint64_t live_seq_ = 0;
  int64_t last_timestamp_ = 0;
  std::string raw_, live_body_;
};

double percentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

int runMain(int argc, char** argv) {
  Options o;
  core::FlagSet f("cardinal_loadgen");
  f.addString("url", &o.url, "Remote-write URL to send to");
  f.addDuration("duration", &o.duration,
                "Stop claiming new requests after this long (unlimited if only --requests is given)");
  f.addCount("concurrency", &o.concurrency, "Keep-alive connections, each with one request in flight");
  f.addCount("series-per-request", &o.series_per_request, "Series per request (one sample each)");
  f.addString("mix", &o.mix, "Workload: seed (80% the seed's high-cardinality families) or wellbehaved");
  f.addString("fresh-ratio", &o.fresh_ratio, "Share of each request's series with never-sent ids (0..1)");
  f.addCount("pool", &o.pool, "Distinct pre-generated request bodies replayed in pool mode");
  f.addCount("seed", &o.seed, "Seed for label values and sample values");
  f.addCount("requests", &o.requests, "Stop after this many requests (0 = no limit)");
  f.addString("rate", &o.rate, "Requests per second over all connections (0 = as fast as possible)");
  f.addBool("live", &o.live, "Encode each request at send time with the current time (for a real Prometheus)");
  f.addCount("population", &o.population,
             "Repeating series in total (0 = 10 x the repeating series per request, per connection in live mode)");
  f.addCount("threads", &o.threads, "I/O threads");
  f.addDuration("timeout", &o.timeout,
                "Timeout of a connect, and of a request from the start of its write to the end of its response");
  f.addStringList("header", &o.headers, "Extra request header \"Name: value\" (repeatable), e.g. X-Scope-OrgID: team-a");
  f.addBool("help", &o.help, "Show this help");
  if (auto stop = bench::parseToolFlags(f, argc, argv, o.help, "cardinal_loadgen")) return *stop;
  auto url = upstream::parseUrl(o.url);
  if (!url) {
    std::cerr << "cardinal_loadgen: --url: " << url.error() << "\n";
    return 2;
  }
  auto mix = bench::parseMix(o.mix);
  if (!mix) {
    std::cerr << "cardinal_loadgen: --mix must be seed or wellbehaved\n";
    return 2;
  }
  auto fresh = parseDouble(o.fresh_ratio);
  auto rate = parseDouble(o.rate);
  if (!fresh || *fresh < 0 || *fresh > 1) {
    std::cerr << "cardinal_loadgen: --fresh-ratio must be a number between 0 and 1\n";
    return 2;
  }
  if (!rate || *rate < 0) {
    std::cerr << "cardinal_loadgen: --rate must be a number >= 0\n";
    return 2;
  }
  if (o.concurrency == 0 || o.threads == 0 || (!o.live && o.pool == 0)) {
    std::cerr << "cardinal_loadgen: --concurrency, --threads and --pool must be at least 1\n";
    return 2;
  }
  bool duration_limited = f.wasSet("duration") || !f.wasSet("requests");
  if (!duration_limited && o.requests == 0) {
    std::cerr << "cardinal_loadgen: give --duration or --requests, or the run would never stop\n";
    return 2;
  }

  bench::WorkloadConfig wc;
  wc.mix = *mix;
  wc.series_per_request = o.series_per_request;
  wc.fresh_ratio = *fresh;
  wc.population = o.population;
  wc.streams = o.live ? o.concurrency : 1;
  wc.seed = o.seed;
  auto workload = Workload::create(wc);
  if (!workload) {
    std::cerr << "cardinal_loadgen: " << workload.error() << "\n";
    return 2;
  }

  net::io_context ioc(static_cast<int>(o.threads));
  Run run;
  run.url = *url;
  for (const auto& h : o.headers) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::cerr << "cardinal_loadgen: --header wants \"Name: value\"\n";
      return 2;
    }
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    run.headers.emplace_back(h.substr(0, colon), std::move(value));
  }
  run.max_requests = o.requests;
  run.rate = *rate;
  run.timeout = o.timeout;
  {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    run.endpoints = resolver.resolve(url->host, url->port, ec);
    if (ec) {
      std::cerr << "cardinal_loadgen: cannot resolve " << url->host << ": " << ec.message() << "\n";
      return 2;
    }
  }

  // Pool mode: generate every body before the clock starts.
  double pool_build_s = 0;
  uint64_t pool_bytes = 0, pool_raw_bytes = 0;
  if (o.live) {
    run.live_workload.emplace(std::move(*workload));
  } else {
    auto t0 = SteadyClock::now();
    int64_t now_ms = wallMillis();
    std::string raw;
    run.pool.resize(o.pool);
    for (size_t k = 0; k < o.pool; ++k) {
      // One second apart, the last one now: a series' timestamps increase
      // along the pool, and repeat when the pool is replayed.
      int64_t ts = now_ms - static_cast<int64_t>(o.pool - 1 - k) * 1000;
      run.pool[k].counts = workload->build(0, k, ts, raw);
      codec::compress(raw, run.pool[k].body);
      pool_bytes += run.pool[k].body.size();
      pool_raw_bytes += raw.size();
    }
    pool_build_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  }
  const Workload& w = o.live ? *run.live_workload : *workload;
  size_t population = w.population();
  size_t fresh_per_request = w.freshPerRequest();

  if (o.live) {
    std::cerr << "cardinal_loadgen: live mode: each request encoded at send time with the current time; "
                 "throughput is not a benchmark\n";
  } else {
    std::cerr << "cardinal_loadgen: pool of " << o.pool << " bodies built in " << round3(pool_build_s) << " s ("
              << o.series_per_request << " series each, " << pool_raw_bytes / o.pool << " bytes raw, "
              << pool_bytes / o.pool << " compressed); fresh ids are fresh within the pool only (" << o.pool
              << " bodies replayed in turn), timestamps repeat on replay\n";
  }

  std::vector<SenderStats> stats(o.concurrency);
  net::signal_set signals(net::make_strand(ioc), SIGINT, SIGTERM);
  signals.async_wait([&run](beast::error_code ec, int) {
    if (!ec) run.stopping = true;
  });
  run.on_all_done = [&signals] { net::post(signals.get_executor(), [&signals] { signals.cancel(); }); };
  run.active = o.concurrency;
  run.start = SteadyClock::now();
  if (duration_limited) run.deadline = run.start + o.duration;
  for (size_t i = 0; i < o.concurrency; ++i) {
    auto sender = std::make_shared<Sender>(ioc, run, i, stats[i]);
    sender->start();
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < o.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  // Aggregate.
  SenderStats total;
  SteadyClock::time_point end = run.start;
  std::vector<int64_t> lat;
  for (auto& s : stats) {
    total.requests += s.requests;
    total.ok += s.ok;
    total.samples_sent += s.samples_sent;
    total.samples_acked += s.samples_acked;
    total.series_sent += s.series_sent;
    total.bytes_sent += s.bytes_sent;
    for (auto& [k, v] : s.errors) total.errors[k] += v;
    lat.insert(lat.end(), s.latencies_ns.begin(), s.latencies_ns.end());
    end = std::max(end, s.finished);
  }
  std::sort(lat.begin(), lat.end());
  double duration_s = std::chrono::duration<double>(end - run.start).count();
  double samples_per_s = duration_s > 0 ? static_cast<double>(total.samples_acked) / duration_s : 0;
  double requests_per_s = duration_s > 0 ? static_cast<double>(total.ok) / duration_s : 0;

  nlohmann::ordered_json out;
  out["requests"] = total.requests;
  out["ok"] = total.ok;
  out["errors"] = nlohmann::ordered_json::object();
  for (auto& [k, v] : total.errors) out["errors"][k] = v;
  out["samples_sent"] = total.samples_sent;
  out["samples_acked"] = total.samples_acked;
  out["duration_s"] = round3(duration_s);
  out["samples_per_s"] = std::round(samples_per_s);
  out["requests_per_s"] = round3(requests_per_s);
  out["latency_ms"] = {{"p50", round3(percentileMs(lat, 50))},
                       {"p90", round3(percentileMs(lat, 90))},
                       {"p99", round3(percentileMs(lat, 99))},
                       {"max", round3(lat.empty() ? 0 : static_cast<double>(lat.back()) / 1e6)}};
  out["series_per_request"] = o.series_per_request;
  out["mix"] = bench::mixName(*mix);
  out["fresh_ratio"] = *fresh;
  out["concurrency"] = o.concurrency;
  out["pool"] = o.live ? 0 : o.pool;
  out["mode"] = o.live ? "live" : "pool";
  out["fresh_scope"] = o.live ? std::string("run: fresh ids never repeat")
                              : "pool: fresh ids repeat every " + std::to_string(o.pool) + " requests";
  out["fresh_per_request"] = fresh_per_request;
  out["population"] = population;
  out["bytes_sent"] = total.bytes_sent;
  out["rate"] = *rate;
  out["threads"] = o.threads;
  out["seed"] = o.seed;
  std::cout << out.dump() << std::endl;

  std::fprintf(stderr,
               "cardinal_loadgen: %llu requests (%llu ok) in %.2f s: %.0f samples/s acknowledged, %.1f requests/s; "
               "latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
               static_cast<unsigned long long>(total.requests), static_cast<unsigned long long>(total.ok), duration_s,
               samples_per_s, requests_per_s, percentileMs(lat, 50), percentileMs(lat, 90), percentileMs(lat, 99),
               lat.empty() ? 0.0 : static_cast<double>(lat.back()) / 1e6);
  for (auto& [k, v] : total.errors)
    std::fprintf(stderr, "cardinal_loadgen:   error %s: %llu\n", k.c_str(), static_cast<unsigned long long>(v));
  if (total.ok == 0) {
    std::fprintf(stderr, "cardinal_loadgen: no request was acknowledged\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return runMain(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cardinal_loadgen: " << e.what() << "\n";
    return 2;
  }
}
