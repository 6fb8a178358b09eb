#pragma once
// Boost.Beast async HTTP/1.1 server: a listener and one session per
// connection, each on its own strand of the context of one I/O thread (the
// one with the fewest connections at accept time; io_pool.h). Keep-alive,
// read/write timeouts, a header and body limit, and a connection limit.
// Requests on one connection are handled one at a time (a response is written
// before the next request is read), which is what remote-write senders do.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/result.h"
#include "security/tls.h"
#include "server/http_types.h"
#include "server/io_pool.h"
#include "server/metrics.h"

namespace prometheus {
class Counter;
}

namespace cardinal::server {

struct ServerConfig {
  std::string listen_address = "0.0.0.0:9192";
  std::chrono::milliseconds read_timeout{60'000};   // to receive one whole request, idle wait included
  std::chrono::milliseconds write_timeout{30'000};  // to send one response
  size_t max_body_bytes = 32u << 20;                // compressed; beyond it: 413
  size_t max_header_bytes = 64u << 10;
  size_t max_connections = 1024;
  // Set: every connection is TLS, with the context this returns at accept time (it changes on
  // reload; open connections keep theirs). Unset: plain HTTP.
  std::function<std::shared_ptr<security::SslContext>()> tls_context;
  prometheus::Counter* tls_handshake_failures = nullptr;
  // Plain HTTP: before reading each request, wait for its first bytes and read
  // their kernel receive timestamp (SO_TIMESTAMPNS, a peek of one byte): how
  // long the request lay in its socket before its I/O thread came to it
  // (requestWaitNs()). One more system call per request; on with the
  // slow-request log (request_wait_ms).
  bool request_wait = false;
};

// The request being handed to the handler: how long its first bytes had been
// in the socket when its connection's thread came to read it, in ns; -1 when
// not measured (ServerConfig::request_wait off, TLS, a request already
// buffered). Set on the connection's thread for the duration of the handler
// call: read it at the start of the handler, on that thread.
int64_t requestWaitNs();

using Handler = std::function<void(Request&&, Responder)>;

class HttpServer {
 public:
  HttpServer(IoPool& pool, ServerConfig config, Handler handler, ProxyMetrics& metrics);
  ~HttpServer();
  // Binds and starts accepting. Throws on bind failure (start-up only).
  void start();
  // Stops accepting new connections; open ones finish their current request.
  void stopAccepting();
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  bool draining() const { return draining_; }

  // Requests read and not yet fully answered (response written), all routes.
  // Shutdown waits for this to reach zero so no acknowledgement is lost.
  size_t busy() const { return counters_->busy.load(); }

  // Shared with sessions, which may outlive the server at process exit.
  struct Counters {
    explicit Counters(size_t contexts) : per_context(contexts) {}
    std::atomic<size_t> connections{0};
    std::atomic<size_t> busy{0};
    std::vector<std::atomic<size_t>> per_context;  // open connections of each I/O thread
  };
  const ServerConfig& config() const { return config_; }
  const Handler& handler() const { return handler_; }

 private:
  void accept();

  // The I/O thread with the fewest open connections.
  size_t leastLoaded() const;

  IoPool& pool_;
  ServerConfig config_;
  Handler handler_;
  ProxyMetrics& metrics_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<Counters> counters_;
  std::atomic<bool> draining_{false};
};

// Parses "host:port", ":port", "[v6]:port" into an endpoint (numeric hosts,
// "localhost" and "0.0.0.0"/"" mean what they usually mean).
core::Result<boost::asio::ip::tcp::endpoint> parseListenAddress(const std::string& s);

}  // namespace cardinal::server
