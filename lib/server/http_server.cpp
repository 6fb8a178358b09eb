#include "server/http_server.h"

#include <sys/socket.h>

#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <prometheus/counter.h>

#include "codec/protocol.h"
#include "core/log.h"
#include "core/result.h"
#include "core/socket_wait.h"
#include "server/body_buffer.h"

namespace cardinal::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

thread_local int64_t t_request_wait_ns = -1;

// One connection. Tls = false is the plain path (a beast::tcp_stream, exactly as before TLS
// existed); Tls = true wraps it in an ssl_stream built on the context current at accept time.
template <bool Tls>
class Session : public std::enable_shared_from_this<Session<Tls>> {
 public:
  using Stream = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;
  Session(tcp::socket&& socket, HttpServer& server, std::shared_ptr<HttpServer::Counters> counters,
          size_t context, ProxyMetrics& metrics)
    requires(!Tls)
      : stream_(std::move(socket)),
        server_(server),
        counters_(std::move(counters)),
        context_(context),
        metrics_(metrics),
        wait_timer_(stream_.get_executor()) {
    metrics_.connections.Increment();
    if (server_.config().request_wait) timestamps_ = core::enableReceiveTimestamps(stream_.socket().native_handle());
  }
  Session(tcp::socket&& socket, std::shared_ptr<security::SslContext> ctx, HttpServer& server,
          std::shared_ptr<HttpServer::Counters> counters, size_t context, ProxyMetrics& metrics)
    requires(Tls)
      : ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_),
        server_(server),
        counters_(std::move(counters)),
        context_(context),
        metrics_(metrics),
        wait_timer_(stream_.get_executor()) {
    metrics_.connections.Increment();
  }
  // May run after the server is gone (pending handlers destroyed at exit):
  // touches only what it co-owns or what outlives the io_context.
  ~Session() {
    if (busy_) counters_->busy.fetch_sub(1);
    counters_->connections.fetch_sub(1);
    counters_->per_context[context_].fetch_sub(1);
    metrics_.connections.Decrement();
  }

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (Tls) self->handshake();
      else self->read();
    });
  }

 private:
  using std::enable_shared_from_this<Session<Tls>>::shared_from_this;

  void handshake() {
    beast::get_lowest_layer(stream_).expires_after(server_.config().read_timeout);
    stream_.async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        if (auto* c = self->server_.config().tls_handshake_failures) c->Increment();
        core::logDebug("TLS handshake failed", {{"error", ec.message()}});
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_).socket().close(ignored);
        return;
      }
      self->read();
    });
  }

  void read() {
    request_wait_ns_ = -1;
    read_started_ = std::chrono::steady_clock::now();
    // With timestamps (plain HTTP), first wait for the request's first bytes
    // and peek at when they arrived. Not when a request is already buffered
    // (pipelined): it arrived while the previous one was read.
    if constexpr (!Tls) {
      if (timestamps_ && buffer_.size() == 0) return awaitRequest();
    }
    readHeader();
  }

  // The read timeout bounds the wait and the reading together, as it bounds
  // a header read with the keep-alive idle time.
  void awaitRequest() {
    awaiting_ = true;
    wait_timer_.expires_at(read_started_ + server_.config().read_timeout);
    wait_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      // The wait below ends with operation_aborted (not the read after it, when
      // the timer expired as the request came).
      if (!ec && self->awaiting_) self->stream_.socket().cancel();
    });
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->awaiting_ = false;
      self->wait_timer_.cancel();
      if (ec) return self->close();
      // One byte peeked: the request stays in the socket for the parser.
      char byte;
      core::receiveTimed(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT,
                         &self->request_wait_ns_);
      self->readHeader();
    });
  }

  void readHeader() {
    parser_.emplace();
    parser_->body_limit(server_.config().max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_.config().max_header_bytes));
    beast::get_lowest_layer(stream_).expires_at(read_started_ + server_.config().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (ec) return onRead(ec);
    sizeBufferForBody(*parser_, buffer_);  // a large body in 64 KiB receives, not 512 bytes
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::ssl::error::stream_truncated || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof)
      return close();
    if (ec == http::error::body_limit) {
      metrics_.countRejected("body_too_large");
      Response res = textResponse(http::status::payload_too_large,
                                  "request body exceeds " + std::to_string(server_.config().max_body_bytes) +
                                      " bytes (--limits.max-body-bytes)");
      // A remote-write 2.0 sender gets the Written headers on every answer (nothing written).
      const auto& head = parser_->get();
      if (auto it = head.find(http::field::content_type); it != head.end()) {
        auto ct = codec::checkContentType(std::string_view(it->value().data(), it->value().size()));
        if (ct.error.empty() && ct.protocol == codec::WireProtocol::kV2) setWrittenHeaders(res, {});
      }
      return write(std::move(res), false);
    }
    if (ec == http::error::header_limit) {
      return write(textResponse(http::status::request_header_fields_too_large, "request headers too large"), false);
    }
    if (ec) {
      // Anything else from the parser is a malformed HTTP request.
      if (ec.category() == http::make_error_code(http::error::bad_target).category())
        return write(textResponse(http::status::bad_request, "malformed HTTP request: " + ec.message()), false);
      return close();
    }
    setBusy(true);
    Request req = parser_->release();
    unsigned version = req.version();
    bool keep_alive = req.keep_alive() && !server_.draining();
    std::string target(req.target());
    beast::get_lowest_layer(stream_).expires_never();  // the handler may wait for the upstream
    // The responder may run on another thread (or, on this one, within
    // another connection's handler): dispatch runs it here and now when this
    // connection's thread calls it, else hops back.
    auto self = shared_from_this();
    t_request_wait_ns = request_wait_ns_;
    struct Reset {
      ~Reset() { t_request_wait_ns = -1; }
    } reset;
    server_.handler()(std::move(req), [self, version, keep_alive](Response res) {
      net::dispatch(self->stream_.get_executor(), [self, version, keep_alive, res = std::move(res)]() mutable {
        res.version(version);
        bool keep = keep_alive && res.keep_alive() && !self->server_.draining();
        self->write(std::move(res), keep);
      });
    });
  }

  void write(Response res, bool keep_alive) {
    res.keep_alive(keep_alive);
    res.prepare_payload();
    response_ = std::make_shared<Response>(std::move(res));
    beast::get_lowest_layer(stream_).expires_after(server_.config().write_timeout);
    http::async_write(stream_, *response_, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      self->response_.reset();
      self->setBusy(false);
      if (ec || !keep_alive) return self->close();
      self->read();
    });
  }

  void setBusy(bool b) {
    if (b == busy_) return;
    busy_ = b;
    if (b) counters_->busy.fetch_add(1);
    else counters_->busy.fetch_sub(1);
  }

  void close() {
    if constexpr (Tls) {
      // close_notify, bounded by the write timeout, then the socket.
      beast::get_lowest_layer(stream_).expires_after(server_.config().write_timeout);
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::get_lowest_layer(self->stream_).close();
      });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.close();
    }
  }

  std::shared_ptr<security::SslContext> ctx_;  // TLS: the context this connection was accepted with
  Stream stream_;
  HttpServer& server_;  // only used while the server runs
  std::shared_ptr<HttpServer::Counters> counters_;
  size_t context_;  // the I/O thread this connection belongs to
  ProxyMetrics& metrics_;
  bool busy_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> response_;
  // ServerConfig::request_wait: the socket gives receive timestamps; the wait
  // of the request being read (-1: not measured); the bound on awaitRequest().
  bool timestamps_ = false;
  bool awaiting_ = false;
  int64_t request_wait_ns_ = -1;
  std::chrono::steady_clock::time_point read_started_;  // of the request being read (the idle wait included)
  net::steady_timer wait_timer_;
};

}  // namespace

int64_t requestWaitNs() { return t_request_wait_ns; }

core::Result<tcp::endpoint> parseListenAddress(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return core::Error{"listen address \"" + s + "\" has no port (host:port)"};
  std::string host = s.substr(0, colon);
  std::string port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned long p = 0;
  try {
    size_t used = 0;
    p = std::stoul(port, &used);
    if (used != port.size() || p > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return core::Error{"listen address \"" + s + "\" has an invalid port"};
  }
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) return core::Error{"listen address \"" + s + "\": host must be an IP address or localhost"};
  return tcp::endpoint(addr, static_cast<unsigned short>(p));
}

HttpServer::HttpServer(IoPool& pool, ServerConfig config, Handler handler, ProxyMetrics& metrics)
    : pool_(pool),
      config_(std::move(config)),
      handler_(std::move(handler)),
      metrics_(metrics),
      acceptor_(net::make_strand(pool.main())),
      counters_(std::make_shared<Counters>(pool.size())) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() {
  auto ep = parseListenAddress(config_.listen_address);
  if (!ep) throw std::runtime_error(ep.error());
  acceptor_.open(ep->protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  if (config_.request_wait) {
    // On the listener too: the kernel stamps received data only once some
    // socket asked for it, so a request sent right after its connection
    // (before the session asks) would otherwise come without a timestamp.
    core::enableReceiveTimestamps(acceptor_.native_handle());
  }
  acceptor_.bind(*ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  accept();
}

void HttpServer::stopAccepting() {
  draining_ = true;
  net::dispatch(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
}

tcp::endpoint HttpServer::localEndpoint() const { return acceptor_.local_endpoint(); }

size_t HttpServer::leastLoaded() const {
  size_t best = 0;
  for (size_t i = 1; i < counters_->per_context.size(); ++i)
    if (counters_->per_context[i].load() < counters_->per_context[best].load()) best = i;
  return best;
}

void HttpServer::accept() {
  // The connection's socket is made on the context of the thread it will
  // belong to, on the context's own executor: one thread runs each context,
  // so a strand would add nothing but a hop, and the answer to a request
  // written from a yield point of that thread (core/yield_point.h) must go
  // out at once, not be queued behind the computation it interrupted.
  const size_t context = leastLoaded();
  acceptor_.async_accept(pool_.context(context), [this, context](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      core::logWarn("accept failed", {{"error", ec.message()}});
      return accept();
    }
    counters_->per_context[context].fetch_add(1);
    if (counters_->connections.fetch_add(1) >= config_.max_connections) {
      counters_->connections.fetch_sub(1);
      counters_->per_context[context].fetch_sub(1);
      metrics_.connections_refused.Increment();
      beast::error_code ignored;
      socket.close(ignored);
    } else if (config_.tls_context) {
      auto ctx = config_.tls_context();
      if (!ctx) {
        counters_->connections.fetch_sub(1);
        counters_->per_context[context].fetch_sub(1);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session<true>>(std::move(socket), std::move(ctx), *this, counters_, context, metrics_)->run();
      }
    } else {
      std::make_shared<Session<false>>(std::move(socket), *this, counters_, context, metrics_)->run();
    }
    accept();
  });
}

}  // namespace cardinal::server
