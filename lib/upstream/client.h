#pragma once
// Pooled keep-alive HTTP client to the upstream remote-write receiver.
//
// send() delivers one encoded request: it retries 5xx, 429, connection errors
// and timeouts with capped exponential backoff and jitter (honouring
// Retry-After) until the retry budget is spent, and reports exactly one
// DeliveryResult through the callback. Connections are reused across requests;
// a pooled connection the upstream closed meanwhile is replaced once without
// counting as an attempt. Thread-safe: send() may be called from any thread;
// the delivery runs on the thread that runs the client's io_context (one
// thread), and never calls back from within send().
//
// Plain TCP answers are read without blocking as soon as they are there: by
// the event loop, or at a yield point (core/yield_point.h) of a computation
// on that thread, so an answer does not wait for the request its thread
// happens to be processing.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "codec/protocol.h"
#include "security/tls.h"
#include "upstream/retry_policy.h"
#include "upstream/url.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace cardinal::upstream {

struct ClientConfig {
  Url url;
  std::chrono::milliseconds attempt_timeout{5000};  // one attempt, capped by what is left of the budget
  std::chrono::milliseconds retry_budget{4000};     // all attempts of one request, backoff included
  BackoffPolicy backoff;
  size_t max_idle_connections = 64;
  std::chrono::seconds max_idle_age{60};  // pooled connections older than this are closed, not reused
  std::string user_agent = "cardinal";
  // https:// URLs: the TLS context (changes on reload; a connection keeps the one it was made
  // with), the name to send as SNI and verify (default: the URL's host), and whether to verify.
  std::function<std::shared_ptr<security::SslContext>()> tls_context;
  std::string tls_server_name;
  bool tls_verify = true;
  prometheus::Counter* tls_handshake_failures = nullptr;
  // Set: the Authorization header value for every request (nullptr: none). Read per request, so
  // a reload of the credential files applies to the next request.
  std::function<std::shared_ptr<const std::string>()> authorization;
  // Plain TCP: timestamp each answer's arrival (SO_TIMESTAMPNS) to report how
  // long it waited in the socket before its thread read it
  // (DeliveryResult::answer_wait). For the slow-request log; off by default.
  bool answer_timestamps = false;
  // Plain TCP to a loopback address (the receiver runs on this host and shares
  // its CPUs): after writing a request, the thread yields its CPU
  // (sched_yield), so a receiver the write woke on this CPU answers now
  // instead of waiting for the end of this thread's time slice (on a busy
  // host, up to a few milliseconds of the next request's work). A no-op when
  // nothing else waits for the CPU; never for other addresses.
  bool yield_to_local_upstream = true;
};

// A connection to the upstream: plain TCP, or TLS over it.
struct Connection {
  std::unique_ptr<boost::beast::tcp_stream> plain;
  std::shared_ptr<security::SslContext> ctx;
  std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls;
  boost::beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }
  bool timestamps = false;  // SO_TIMESTAMPNS is on (ClientConfig::answer_timestamps)
  bool loopback = false;    // connected to a loopback address (ClientConfig::yield_to_local_upstream)
};

struct DeliveryResult {
  enum class Kind { kDelivered, kRejected, kGaveUp };
  Kind kind = Kind::kGaveUp;
  int status = 0;       // last upstream HTTP status, 0 when none arrived
  std::string message;  // upstream body on reject (truncated); our reason on give-up
  int attempts = 0;
  std::optional<std::chrono::milliseconds> retry_after;  // the upstream's last hint
  // The last answer's X-Prometheus-Remote-Write-*-Written headers, if it had any.
  std::optional<codec::WrittenCounts> written;
  // kRejected because a 2xx to a 2.0 request confirmed nothing (unconfirmedV2()):
  // the upstream does not speak remote-write 2.0. `status` is that 2xx.
  bool unconfirmed_v2 = false;
  // With ClientConfig::answer_timestamps, for the last attempt's answer: how
  // long its first bytes had been in the socket when this thread read them
  // (the kernel's receive timestamp to the read). Long: the answer waited
  // for the thread; short: the thread waited for the upstream.
  std::optional<std::chrono::nanoseconds> answer_wait;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Content-Encoding, Content-Type and X-Prometheus-Remote-Write-Version of a
// request in `protocol` (codec/protocol.h).
Headers remoteWriteHeaders(codec::WireProtocol protocol);

// How to judge the answers to one request.
struct SendOptions {
  // The body is a 2.0 request holding `sent_elements` samples, histograms and
  // exemplars: a 2xx must confirm some as written (unconfirmedV2()).
  bool v2 = false;
  uint64_t sent_elements = 0;
  // Whether send() may yield the CPU within itself, when it writes the request
  // at once to a loopback upstream (ClientConfig::yield_to_local_upstream).
  // False for a caller that holds a lock another thread may wait for: the
  // yield then only happens for writes from the event loop (retries, a new
  // connection).
  bool may_yield_within_send = true;
};

// Upstream metrics, declared together.
struct ClientMetrics {
  explicit ClientMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& attempts;  // {result="2xx|4xx|429|5xx|error"}
  prometheus::Family<prometheus::Counter>& requests;  // {outcome="delivered|rejected|gave_up"}
  prometheus::Counter& delivered;
  prometheus::Counter& rejected;
  prometheus::Counter& gave_up;
  prometheus::Counter& stale_reconnects;
  prometheus::Histogram& attempt_seconds;
  prometheus::Counter& attempt_2xx;
  prometheus::Counter& attempt_4xx;
  prometheus::Counter& attempt_429;
  prometheus::Counter& attempt_5xx;
  prometheus::Counter& attempt_error;
  prometheus::Counter& local_yields;  // ClientConfig::yield_to_local_upstream
};

class Client {
 public:
  using Callback = std::function<void(DeliveryResult)>;
  Client(boost::asio::io_context& ioc, ClientConfig config, ClientMetrics* metrics);
  ~Client();

  // `body` is the snappy-compressed request; `headers` are sent as given
  // (Content-Type, Content-Encoding, remote-write version, pass-through ones).
  void send(std::shared_ptr<const std::string> body, Headers headers, Callback done, SendOptions options = {});

  const ClientConfig& config() const { return config_; }

 private:
  friend class Delivery;
  struct Idle {
    std::unique_ptr<Connection> conn;
    std::chrono::steady_clock::time_point since;
  };
  std::unique_ptr<Connection> takeIdle();
  void putIdle(std::unique_ptr<Connection> c);
  double random01();

  boost::asio::io_context& ioc_;
  ClientConfig config_;
  ClientMetrics* metrics_;
  std::mutex mu_;
  std::vector<Idle> idle_;
  std::mt19937_64 rng_;
};

}  // namespace cardinal::upstream
