// upstream::Client's plain-TCP answer path: an answer read by the event loop,
// an answer read at a yield point while the thread computes (core/yield_point.h),
// an answer in pieces, an attempt that times out, and a pooled connection the
// upstream closed. The upstream is a scripted loopback server on a thread of its own.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <doctest/doctest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "core/yield_point.h"
#include "upstream/client.h"

namespace cardinal::upstream {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// One scripted answer: written in pieces, `pause` apart; `close` closes the
// connection after it; `silent` reads the request and never answers.
struct Answer {
  std::vector<std::string> pieces;
  std::chrono::milliseconds pause{0};
  bool close = false;
  bool silent = false;
};

// Accepts connections one after the other and answers each request on them
// with the next scripted answer (or a plain 204 once the script is used up).
class ScriptedUpstream {
 public:
  // `address`: the IPv4 address to listen on (network byte order).
  explicit ScriptedUpstream(std::deque<Answer> script, in_addr_t address = htonl(INADDR_LOOPBACK))
      : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = address;
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedUpstream() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }
  int connections() const { return connections_.load(); }
  // Waits until `n` requests arrived in full.
  bool waitForRequests(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.load() >= n; });
  }

 private:
  void serve() {
    while (!stop_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      serveConnection(fd);
      ::close(fd);
    }
  }
  // Reads one request (head and Content-Length body); false at EOF or error.
  static bool readRequest(int fd, std::string& pending) {
    for (;;) {
      auto head_end = pending.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        auto cl = pending.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(pending.substr(cl + 16));
        if (pending.size() >= head_end + 4 + length) {
          pending.erase(0, head_end + 4 + length);
          return true;
        }
      }
      char buf[65536];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      pending.append(buf, static_cast<size_t>(n));
    }
  }
  void serveConnection(int fd) {
    std::string pending;
    while (!stop_ && readRequest(fd, pending)) {
      Answer a;
      {
        std::lock_guard lock(mu_);
        if (!script_.empty()) {
          a = std::move(script_.front());
          script_.pop_front();
        } else {
          a.pieces = {"HTTP/1.1 204 No Content\r\n\r\n"};
        }
        ++requests_;
      }
      cv_.notify_all();
      if (a.silent) {
        // Holds the connection until the client gives up on it.
        char buf[4096];
        while (::read(fd, buf, sizeof buf) > 0) {
        }
        return;
      }
      for (size_t i = 0; i < a.pieces.size(); ++i) {
        if (i > 0) std::this_thread::sleep_for(a.pause);
        if (::write(fd, a.pieces[i].data(), a.pieces[i].size()) < 0) return;
      }
      if (a.close) return;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Answer> script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

ClientConfig configFor(uint16_t port, const std::string& host = "127.0.0.1") {
  ClientConfig c;
  auto url = parseUrl("http://" + host + ":" + std::to_string(port) + "/api/v1/write");
  REQUIRE(url);
  c.url = *url;
  c.attempt_timeout = 2000ms;
  c.retry_budget = 3000ms;
  c.backoff.min = 10ms;
  c.backoff.max = 20ms;
  return c;
}

std::shared_ptr<const std::string> body() { return std::make_shared<const std::string>(std::string(1000, 'x')); }

// Runs the io_context until `result` is set, for 10 s at most.
void runUntil(boost::asio::io_context& ioc, const std::optional<DeliveryResult>& result) {
  ioc.restart();
  const auto until = Clock::now() + 10s;
  while (!result && Clock::now() < until) ioc.run_one_for(100ms);
}

// Sends one request and runs the io_context until its result.
DeliveryResult sendAndRun(boost::asio::io_context& ioc, Client& client) {
  std::optional<DeliveryResult> result;
  client.send(body(), remoteWriteHeaders(codec::WireProtocol::kV1), [&](DeliveryResult r) { result = std::move(r); });
  runUntil(ioc, result);
  REQUIRE(result);
  return *result;
}

// In a handler of the client's io_context: sends one request (on a pooled
// connection), then computes, calling yield points, until its result came or
// `limit` passed. Whether the result came during the computation.
struct Computed {
  std::optional<DeliveryResult> result;
  bool during_computation = false;
};
Computed sendWhileComputing(boost::asio::io_context& ioc, Client& client, std::chrono::milliseconds limit) {
  Computed out;
  bool computing = false;
  boost::asio::post(ioc, [&] {
    client.send(body(), remoteWriteHeaders(codec::WireProtocol::kV1), [&](DeliveryResult r) {
      out.result = std::move(r);
      out.during_computation = computing;
    });
    computing = true;
    const auto until = Clock::now() + limit;
    while (!out.result && Clock::now() < until) {
      core::yieldPoint();
      std::this_thread::sleep_for(100us);  // the "work" between two yield points
    }
    computing = false;
  });
  runUntil(ioc, out.result);
  return out;
}

TEST_CASE("upstream client: an answer read by the event loop, then one read at a yield point of a computation") {
  ScriptedUpstream upstream({});
  boost::asio::io_context ioc;
  Client client(ioc, configFor(upstream.port()), nullptr);

  // The first request connects (asynchronously) and its answer comes through the event loop.
  DeliveryResult first = sendAndRun(ioc, client);
  CHECK(first.kind == DeliveryResult::Kind::kDelivered);
  CHECK(first.status == 204);
  CHECK((core::t_yield_hook == nullptr));  // nothing awaited any more

  // The next one goes out on the pooled connection while the handler that sent
  // it computes: its answer is read and its callback runs at a yield point.
  Computed c = sendWhileComputing(ioc, client, 5000ms);
  REQUIRE(c.result);
  CHECK(c.result->kind == DeliveryResult::Kind::kDelivered);
  CHECK(c.result->status == 204);
  CHECK(c.during_computation);
  CHECK(upstream.connections() == 1);
  CHECK((core::t_yield_hook == nullptr));

  // A computation that ends before the answer: the event loop takes it as before.
  ScriptedUpstream slow({Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}}});
  Client slow_client(ioc, configFor(slow.port()), nullptr);
  REQUIRE(sendAndRun(ioc, slow_client).kind == DeliveryResult::Kind::kDelivered);
  Computed quick = sendWhileComputing(ioc, slow_client, 0ms);
  REQUIRE(quick.result);
  CHECK(quick.result->kind == DeliveryResult::Kind::kDelivered);
  CHECK_FALSE(quick.during_computation);
}

// An IPv4 address of this host that is not a loopback one, if it has one.
std::optional<in_addr_t> nonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<in_addr_t> found;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    const in_addr_t a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    if ((ntohl(a) >> 24) != 127) found = a;
  }
  ::freeifaddrs(list);
  return found;
}

TEST_CASE("upstream client: after writing to a loopback upstream the thread yields its CPU; not when off, nor for other addresses") {
  boost::asio::io_context ioc;
  {
    prometheus::Registry registry;
    ClientMetrics metrics(registry);
    ScriptedUpstream upstream({});
    Client client(ioc, configFor(upstream.port()), &metrics);
    // The first request connects, the second goes out on the pooled connection: both written at once.
    CHECK(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
    CHECK(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
    CHECK(metrics.local_yields.Value() == 2);
    // From the client's own thread, the request is written within send():
    // it yields there unless the caller said it must not (it holds a lock).
    auto sendWithin = [&](bool may_yield) {
      std::optional<DeliveryResult> result;
      boost::asio::post(ioc, [&] {
        client.send(body(), remoteWriteHeaders(codec::WireProtocol::kV1),
                    [&](DeliveryResult r) { result = std::move(r); }, SendOptions{false, 0, may_yield});
      });
      runUntil(ioc, result);
      REQUIRE(result);
      CHECK(result->kind == DeliveryResult::Kind::kDelivered);
    };
    sendWithin(false);
    CHECK(metrics.local_yields.Value() == 2);
    sendWithin(true);
    CHECK(metrics.local_yields.Value() == 3);
    CHECK(upstream.connections() == 1);  // all on the pooled connection: written within send()
  }
  {
    prometheus::Registry registry;
    ClientMetrics metrics(registry);
    ScriptedUpstream upstream({});
    ClientConfig cfg = configFor(upstream.port());
    cfg.yield_to_local_upstream = false;  // --upstream.yield-to-local=false
    Client client(ioc, cfg, &metrics);
    CHECK(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
    CHECK(metrics.local_yields.Value() == 0);
  }
  const auto address = nonLoopbackAddress();
  if (!address) {
    MESSAGE("this host has no IPv4 address besides loopback: the other-address case is not checked");
    return;
  }
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &*address, text, sizeof text);
  prometheus::Registry registry;
  ClientMetrics metrics(registry);
  ScriptedUpstream upstream({}, *address);
  Client client(ioc, configFor(upstream.port(), text), &metrics);
  CHECK(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
  CHECK(metrics.local_yields.Value() == 0);
  MESSAGE("other address: " << text);
}

TEST_CASE("upstream client: an answer in pieces is put together across yield points and the event loop") {
  ScriptedUpstream upstream({
      Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}},
      // A rejection whose head and body come 30 ms apart, read at yield points.
      Answer{{"HTTP/1.1 400 Bad Request\r\nContent-Le", "ngth: 19\r\n\r\nout of order ", "sample"}, 30ms},
      // The same through the event loop alone.
      Answer{{"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nbad", " one"}, 30ms},
  });
  boost::asio::io_context ioc;
  Client client(ioc, configFor(upstream.port()), nullptr);
  REQUIRE(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);

  Computed c = sendWhileComputing(ioc, client, 5000ms);
  REQUIRE(c.result);
  CHECK(c.during_computation);
  CHECK(c.result->kind == DeliveryResult::Kind::kRejected);
  CHECK(c.result->status == 400);
  CHECK(c.result->message == "out of order sample");

  DeliveryResult r = sendAndRun(ioc, client);
  CHECK(r.kind == DeliveryResult::Kind::kRejected);
  CHECK(r.message == "bad one");
  CHECK(upstream.connections() == 1);
}

TEST_CASE("upstream client: no answer within the attempt timeout is a timeout, retried until the budget is spent") {
  ScriptedUpstream upstream({Answer{{}, 0ms, false, true}, Answer{{}, 0ms, false, true}, Answer{{}, 0ms, false, true},
                             Answer{{}, 0ms, false, true}});
  boost::asio::io_context ioc;
  ClientConfig cfg = configFor(upstream.port());
  cfg.attempt_timeout = 150ms;
  cfg.retry_budget = 400ms;
  Client client(ioc, cfg, nullptr);
  const auto t0 = Clock::now();
  DeliveryResult r = sendAndRun(ioc, client);
  CHECK(r.kind == DeliveryResult::Kind::kGaveUp);
  CHECK(r.message.find("read: timeout") != std::string::npos);
  CHECK(r.attempts >= 2);
  CHECK(Clock::now() - t0 < 2s);
  CHECK((core::t_yield_hook == nullptr));
}

TEST_CASE("upstream client: a pooled connection the upstream closed is replaced without an attempt") {
  ScriptedUpstream upstream({Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}, 0ms, true}});
  boost::asio::io_context ioc;
  Client client(ioc, configFor(upstream.port()), nullptr);
  REQUIRE(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
  // The pooled connection is closed: the write may still succeed (the kernel
  // takes it), the read then sees the end of the stream, and the request goes
  // out again on a new connection as the same attempt.
  REQUIRE(upstream.waitForRequests(1, 2000ms));
  std::this_thread::sleep_for(50ms);  // the close has reached this side
  DeliveryResult r = sendAndRun(ioc, client);
  CHECK(r.kind == DeliveryResult::Kind::kDelivered);
  CHECK(r.attempts == 1);
  CHECK(upstream.connections() == 2);
}

TEST_CASE("upstream client: with answer timestamps, how long an answer waited in the socket for its thread") {
  // The third request's answer comes 20 ms after the request.
  ScriptedUpstream upstream({Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}}, Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}},
                             Answer{{"", "HTTP/1.1 204 No Content\r\n\r\n"}, 20ms}});
  boost::asio::io_context ioc;
  ClientConfig cfg = configFor(upstream.port());
  cfg.answer_timestamps = true;
  Client client(ioc, cfg, nullptr);
  REQUIRE(sendAndRun(ioc, client).kind == DeliveryResult::Kind::kDelivered);
  // The kernel turns receive timestamps on for everyone a moment after the
  // first socket asks (deferred work); answers before that carry none.
  std::this_thread::sleep_for(200ms);
  DeliveryResult first = sendAndRun(ioc, client);
  REQUIRE(first.kind == DeliveryResult::Kind::kDelivered);
  REQUIRE(first.answer_wait);  // read by the loop as it came
  CHECK(*first.answer_wait < 1s);

  // The thread is busy 100 ms without a yield point after sending: the answer
  // (sent 20 ms after the request) waits in the socket for about 80 ms.
  std::optional<DeliveryResult> busy;
  boost::asio::post(ioc, [&] {
    client.send(body(), remoteWriteHeaders(codec::WireProtocol::kV1), [&](DeliveryResult r) { busy = std::move(r); });
    REQUIRE(upstream.waitForRequests(3, 2000ms));
    std::this_thread::sleep_for(100ms);
  });
  runUntil(ioc, busy);
  REQUIRE(busy);
  CHECK(busy->kind == DeliveryResult::Kind::kDelivered);
  REQUIRE(busy->answer_wait);
  CHECK(*busy->answer_wait >= 60ms);
  CHECK(*busy->answer_wait < 2s);

  // Read at the yield points of a computation, it hardly waits.
  Computed c = sendWhileComputing(ioc, client, 5000ms);
  REQUIRE(c.result);
  CHECK(c.during_computation);
  REQUIRE(c.result->answer_wait);
  CHECK(*c.result->answer_wait < 40ms);

  // Off by default: not measured.
  Client plain(ioc, configFor(upstream.port()), nullptr);
  CHECK_FALSE(sendAndRun(ioc, plain).answer_wait);
}

}  // namespace
}  // namespace cardinal::upstream
