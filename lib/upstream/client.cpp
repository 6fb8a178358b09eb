#include "upstream/client.h"

#include <sched.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/asio/ssl/error.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <sys/socket.h>

#include <cerrno>
#include <charconv>

#include "core/log.h"
#include "core/socket_wait.h"
#include "core/yield_point.h"

namespace cardinal::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// One X-Prometheus-Remote-Write-*-Written header: absent -> false; a value
// that is not a number counts as 0 (the upstream answered, badly).
template <typename Fields>
bool readWritten(const Fields& fields, std::string_view name, uint64_t& out) {
  auto it = fields.find(beast::string_view(name.data(), name.size()));
  if (it == fields.end()) return false;
  std::string_view v(it->value().data(), it->value().size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  out = (ec == std::errc() && p == v.data() + v.size()) ? n : 0;
  return true;
}

auto& counterFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
}  // namespace

ClientMetrics::ClientMetrics(prometheus::Registry& r)
    : attempts(counterFamily(r, "cardinal_upstream_attempts_total",
                             "HTTP attempts to the upstream, by result (2xx, 4xx, 429, 5xx, error).")),
      requests(counterFamily(r, "cardinal_upstream_requests_total",
                             "Requests forwarded to the upstream, by final outcome (delivered, rejected, gave_up).")),
      delivered(requests.Add({{"outcome", "delivered"}})),
      rejected(requests.Add({{"outcome", "rejected"}})),
      gave_up(requests.Add({{"outcome", "gave_up"}})),
      stale_reconnects(counterFamily(r, "cardinal_upstream_stale_connections_total",
                                     "Pooled upstream connections found closed and replaced.")
                           .Add({})),
      attempt_seconds(prometheus::BuildHistogram()
                          .Name("cardinal_upstream_attempt_duration_seconds")
                          .Help("Duration of single HTTP attempts to the upstream.")
                          .Register(r)
                          .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                          0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      attempt_2xx(attempts.Add({{"result", "2xx"}})),
      attempt_4xx(attempts.Add({{"result", "4xx"}})),
      attempt_429(attempts.Add({{"result", "429"}})),
      attempt_5xx(attempts.Add({{"result", "5xx"}})),
      attempt_error(attempts.Add({{"result", "error"}})),
      local_yields(counterFamily(r, "cardinal_upstream_local_yields_total",
                                 "Times an I/O thread yielded its CPU after writing a request to an upstream on a "
                                 "loopback address, so the receiver could answer at once (--upstream.yield-to-local).")
                       .Add({})) {}

// One request's journey through attempts, backoff and connections. Exactly
// one async operation is outstanding at any time, so its members need no lock.
class Delivery : public std::enable_shared_from_this<Delivery> {
 public:
  Delivery(Client& client, std::shared_ptr<const std::string> body, Headers headers, Client::Callback done,
           SendOptions options)
      : client_(client),
        body_(std::move(body)),
        done_(std::move(done)),
        options_(options) {
    const auto& cfg = client_.config_;
    req_.method(http::verb::post);
    req_.target(cfg.url.target);
    req_.version(11);
    req_.set(http::field::host, cfg.url.hostHeader());
    req_.set(http::field::user_agent, cfg.user_agent);
    for (auto& [k, v] : headers) req_.set(k, v);
    if (cfg.authorization)
      if (auto auth = cfg.authorization()) req_.set(http::field::authorization, *auth);
    req_.body() = http::span_body<const char>::value_type(body_->data(), body_->size());
    req_.prepare_payload();
    deadline_ = Clock::now() + cfg.retry_budget;
  }

  // Normally gone from this thread's awaiting list already; not when its
  // io_context was destroyed with the wait pending (the thread stopped).
  ~Delivery() {
    if (awaiting_) delist();
  }

  // Called by send() on the client's thread (within_send), or from the event loop.
  void start(bool within_send) {
    within_send_ = within_send;
    attempt();
    within_send_ = false;
  }

 private:
  milliseconds remaining() const {
    return std::chrono::duration_cast<milliseconds>(deadline_ - Clock::now());
  }
  milliseconds attemptTimeout() const { return std::max(milliseconds(1), std::min(client_.config_.attempt_timeout, remaining())); }

  void attempt() {
    ++attempts_;
    stale_retry_used_ = false;
    attempt_start_ = Clock::now();
    connectOrReuse();
  }

  void connectOrReuse() {
    stream_ = client_.takeIdle();
    if (stream_) {
      reused_ = true;
      write();
      return;
    }
    reused_ = false;
    const auto& url = client_.config_.url;
    if (!resolver_) resolver_.emplace(net::make_strand(client_.ioc_));
    resolver_->async_resolve(url.host, url.port,
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                              self->onResolve(ec, std::move(results));
                            });
  }

  void onResolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return transportFailure(ec, "resolve");
    const auto& cfg = client_.config_;
    stream_ = std::make_unique<Connection>();
    if (cfg.tls_context) {
      stream_->ctx = cfg.tls_context();
      if (!stream_->ctx) return finish(DeliveryResult::Kind::kGaveUp, "no upstream TLS context");
      stream_->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(net::make_strand(client_.ioc_),
                                                                            *stream_->ctx);
      const std::string& name = cfg.tls_server_name.empty() ? cfg.url.host : cfg.tls_server_name;
      if (auto st = security::prepareClientSession(stream_->tls->native_handle(), name, cfg.tls_verify); !st)
        return finish(DeliveryResult::Kind::kGaveUp, "upstream TLS: " + st.error());
    } else {
      stream_->plain = std::make_unique<beast::tcp_stream>(net::make_strand(client_.ioc_));
    }
    stream_->lowest().expires_after(attemptTimeout());
    stream_->lowest().async_connect(results, [self = shared_from_this()](beast::error_code ec2, const tcp::endpoint& ep) {
      if (ec2) return self->transportFailure(ec2, "connect");
      self->stream_->loopback = ep.address().is_loopback();
      if (self->stream_->tls) return self->handshake();
      self->write();
    });
  }

  void handshake() {
    stream_->lowest().expires_after(attemptTimeout());
    stream_->tls->async_handshake(net::ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) return self->write();
      auto& cfg = self->client_.config_;
      if (cfg.tls_handshake_failures) cfg.tls_handshake_failures->Increment();
      std::string verify = security::verifyError(self->stream_->tls->native_handle());
      if (!verify.empty()) {
        // The upstream's certificate is not trusted: retrying cannot help.
        std::string why = "upstream TLS certificate verification failed: " + verify;
        core::logWarn("upstream TLS handshake failed", {{"error", ec.message()}, {"verify_result", verify}});
        self->closeStream();
        self->observeAttempt();
        if (auto* m = self->client_.metrics_) m->attempt_error.Increment();
        self->last_status_ = 0;
        return self->finish(DeliveryResult::Kind::kGaveUp, why);
      }
      core::logWarn("upstream TLS handshake failed", {{"error", ec.message()}});
      self->transportFailure(ec, "tls handshake");
    });
  }

  void write() {
    attempt_deadline_ = Clock::now() + attemptTimeout();
    stream_->lowest().expires_at(attempt_deadline_);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->transportFailure(ec, "write");
      self->read(false);
    };
    if (stream_->tls) return http::async_write(*stream_->tls, req_, std::move(done));
    // Plain TCP: as much as the socket takes now, then the rest (if any)
    // asynchronously. Written at once (the usual case on a local network),
    // the answer is awaited before the caller returns to its event loop, so
    // a yield point of the request this thread runs next can already take it
    // (an asynchronous write would only finish after that request).
    serializer_.emplace(req_);
    beast::error_code ec;
    auto& socket = stream_->plain->socket();
    if (!socket.non_blocking()) socket.non_blocking(true, ec);  // for this thread's reads and writes only
    if (!ec && client_.config_.answer_timestamps && !stream_->timestamps)
      stream_->timestamps = core::enableReceiveTimestamps(socket.native_handle());
    if (!ec) http::write(*stream_->plain, *serializer_, ec);
    if (!ec) {
      // A receiver on this host was just woken by the write: let it answer now.
      if (stream_->loopback && client_.config_.yield_to_local_upstream &&
          (!within_send_ || options_.may_yield_within_send)) {
        sched_yield();
        if (client_.metrics_) client_.metrics_->local_yields.Increment();
      }
      return read(true);
    }
    if (ec == net::error::would_block || ec == net::error::try_again)
      return http::async_write(*stream_->plain, *serializer_, std::move(done));
    // Never from within send(): the caller's callback may take a lock send() runs under.
    net::post(client_.ioc_, [self = shared_from_this(), ec] { self->transportFailure(ec, "write"); });
  }

  // `in_send`: called by write() right after writing the request itself,
  // which may be within send(): the callback must not run from here then.
  void read(bool in_send) {
    buffer_.clear();
    parser_.emplace();
    parser_->body_limit(1 << 20);
    answer_wait_.reset();
    if (stream_->tls) {
      auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->transportFailure(ec, "read");
        self->onResponse();
      };
      http::async_read(*stream_->tls, buffer_, *parser_, std::move(done));
      return;
    }
    // Plain TCP: the answer is read without blocking whenever the socket is
    // readable, by the event loop or at a yield point of this thread
    // (answerArrived()), whichever comes first. What already arrived is taken
    // first (an answer, or the end of a pooled connection the upstream
    // closed): Asio's epoll is edge-triggered, and a wait does not see bytes
    // whose arrival the event loop reported before it. write() made the
    // socket non-blocking.
    beast::error_code ec;
    const bool complete = readArrived(ec);
    if (complete && !in_send) return answered(ec);
    awaiting_ = true;
    enlist();
    const uint64_t gen = ++wait_gen_;
    if (complete) {
      // Already there, within send(): answered at this thread's next yield
      // point or by the event loop, whichever comes first.
      arrived_ = ec;
      return net::post(client_.ioc_, [self = shared_from_this(), gen] {
        if (gen == self->wait_gen_ && self->awaiting_) self->pump();
      });
    }
    if (!wait_timer_) wait_timer_.emplace(client_.ioc_);
    wait_timer_->expires_at(attempt_deadline_);
    wait_timer_->async_wait([self = shared_from_this(), gen](beast::error_code tec) {
      if (tec || gen != self->wait_gen_ || !self->awaiting_) return;
      self->stopAwaiting();
      self->transportFailure(beast::error::timeout, "read");
    });
    awaitReadable(gen);
  }

  void awaitReadable(uint64_t gen) {
    wait_pending_ = true;
    stream_->plain->socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](beast::error_code ec) {
      if (gen != self->wait_gen_ || !self->awaiting_) return;  // answered at a yield point, or timed out
      self->wait_pending_ = false;
      if (ec) {
        self->stopAwaiting();
        return self->transportFailure(ec, "read");
      }
      if (!self->pump()) self->awaitReadable(gen);
    });
  }

  // Reads what has arrived into the parser, without blocking. True once the
  // answer is complete or broken (`ec`); false: wait for more.
  bool readArrived(beast::error_code& ec) {
    for (;;) {
      if (buffer_.size() > 0) {
        const size_t used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == http::error::need_more) ec = {};
        else if (ec) return true;
        if (parser_->is_done()) return true;
        if (used > 0 && buffer_.size() > 0) continue;
      }
      const size_t got = receive(ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        ec = {};
        return false;
      }
      if (ec == net::error::eof) {
        // As http::async_read: nothing at all is a closed connection (a
        // pooled one the upstream dropped), part of an answer a broken one.
        if (parser_->got_some()) parser_->put_eof(ec);
        else ec = http::error::end_of_stream;
        if (!ec && !parser_->is_done()) ec = http::error::partial_message;
        return true;
      }
      if (ec) return true;
      buffer_.commit(got);
    }
  }

  // One non-blocking read into buffer_. With timestamps, the first bytes of
  // the answer also give answer_wait_ (their arrival to now, both CLOCK_REALTIME).
  size_t receive(beast::error_code& ec) {
    auto& socket = stream_->plain->socket();
    if (!stream_->timestamps || answer_wait_) return socket.read_some(buffer_.prepare(kReadBytes), ec);
    const auto space = buffer_.prepare(kReadBytes);
    int64_t wait_ns = -1;
    const ssize_t n = core::receiveTimed(socket.native_handle(), space.data(), space.size(), MSG_DONTWAIT, &wait_ns);
    if (n < 0) {
      ec = beast::error_code(errno, boost::system::system_category());
      if (errno == EAGAIN || errno == EWOULDBLOCK) ec = net::error::would_block;
      return 0;
    }
    if (n == 0) {
      ec = net::error::eof;
      return 0;
    }
    if (wait_ns >= 0) answer_wait_ = std::chrono::nanoseconds(wait_ns);
    ec = {};
    return static_cast<size_t>(n);
  }

  // The answer is complete (or broken): the attempt goes on.
  void answered(beast::error_code ec) {
    stopAwaiting();
    if (ec) transportFailure(ec, "read");
    else onResponse();
  }

  // readArrived(), then answered() when that is the answer. False: wait for more.
  bool pump() {
    beast::error_code ec;
    if (arrived_) {
      ec = *arrived_;
      arrived_.reset();
    } else if (!readArrived(ec)) {
      return false;
    }
    answered(ec);
    return true;
  }

  // Into and out of this thread's awaiting list; the yield hook is
  // installed while the list is not empty.
  void enlist() {
    t_awaiting.push_back(this);
    core::t_yield_hook = &answerArrived;
  }
  void delist() {
    std::erase(t_awaiting, this);
    if (t_awaiting.empty()) core::t_yield_hook = nullptr;
  }

  void stopAwaiting() {
    if (!awaiting_) return;
    awaiting_ = false;
    delist();
    if (wait_timer_) wait_timer_->cancel();
    if (wait_pending_) {
      wait_pending_ = false;
      beast::error_code ignored;
      stream_->plain->socket().cancel(ignored);
    }
  }

 public:
  // The yield hook (core/yield_point.h) while this thread has answers to
  // await: reads every one that arrived and finishes its delivery, so its
  // callback (the sender's answer) runs now, not after the computation.
  static void answerArrived() {
    thread_local bool running = false;
    thread_local std::vector<std::shared_ptr<Delivery>> ready;
    if (running) return;
    running = true;
    ready.clear();
    for (Delivery* d : t_awaiting) ready.push_back(d->shared_from_this());
    for (auto& d : ready)
      if (d->awaiting_) d->pump();
    ready.clear();
    running = false;
  }

 private:
  void observeAttempt() {
    if (!client_.metrics_) return;
    client_.metrics_->attempt_seconds.Observe(std::chrono::duration<double>(Clock::now() - attempt_start_).count());
  }

  void onResponse() {
    observeAttempt();
    auto& res = parser_->get();
    int status = static_cast<int>(res.result_int());
    last_status_ = status;
    bool keep = res.keep_alive();
    auto* m = client_.metrics_;
    if (m) {
      if (status >= 200 && status < 300) m->attempt_2xx.Increment();
      else if (status == 429) m->attempt_429.Increment();
      else if (status >= 500) m->attempt_5xx.Increment();
      else m->attempt_4xx.Increment();
    }
    retry_after_.reset();
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
      retry_after_ = parseRetryAfter(std::string_view(it->value().data(), it->value().size()), now_s);
    }
    written_.reset();
    codec::WrittenCounts w;
    bool any = readWritten(res, codec::kSamplesWrittenHeader, w.samples);
    any |= readWritten(res, codec::kHistogramsWrittenHeader, w.histograms);
    any |= readWritten(res, codec::kExemplarsWrittenHeader, w.exemplars);
    if (any) written_ = w;
    std::string body = std::move(res.body());
    if (keep) client_.putIdle(std::move(stream_));
    else closeStream();

    AttemptResult attempt{status, false, options_.v2, options_.sent_elements, w.total()};
    switch (classify(attempt)) {
      case Verdict::kDelivered:
        return finish(DeliveryResult::Kind::kDelivered, "");
      case Verdict::kReject:
        if (unconfirmedV2(attempt)) {
          unconfirmed_v2_ = true;
          return finish(DeliveryResult::Kind::kRejected,
                        "the upstream answered " + std::to_string(status) +
                            " to a remote-write 2.0 request without confirming any sample in "
                            "X-Prometheus-Remote-Write-*-Written headers: it does not speak remote-write 2.0 "
                            "(taken as 415, as the 2.0 specification says)");
        }
        if (body.size() > 1024) body.resize(1024);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        return finish(DeliveryResult::Kind::kRejected, std::move(body));
      case Verdict::kRetry:
        last_reason_ = "upstream answered " + std::to_string(status);
        return retryLater();
    }
  }

  void transportFailure(beast::error_code ec, const char* step) {
    closeStream();
    // A pooled connection may have been closed by the upstream while idle:
    // replace it once, immediately, without spending an attempt.
    if (reused_ && !stale_retry_used_ &&
        (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::ssl::error::stream_truncated)) {
      stale_retry_used_ = true;
      if (client_.metrics_) client_.metrics_->stale_reconnects.Increment();
      return connectOrReuse();
    }
    observeAttempt();
    if (client_.metrics_) client_.metrics_->attempt_error.Increment();
    last_status_ = 0;
    retry_after_.reset();
    written_.reset();
    last_reason_ = std::string(step) + ": " + (ec == beast::error::timeout ? std::string("timeout") : ec.message());
    core::logDebug("upstream attempt failed", {{"attempt", std::to_string(attempts_)}, {"reason", last_reason_}});
    retryLater();
  }

  void retryLater() {
    auto delay = backoffDelay(client_.config_.backoff, attempts_, client_.random01(), retry_after_);
    if (delay >= remaining()) {
      return finish(DeliveryResult::Kind::kGaveUp, "gave up after " + std::to_string(attempts_) +
                                                       " attempts within the retry budget; last: " + last_reason_);
    }
    if (!timer_) timer_.emplace(net::make_strand(client_.ioc_));
    timer_->expires_after(delay);
    timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->finish(DeliveryResult::Kind::kGaveUp, "cancelled");
      self->attempt();
    });
  }

  void closeStream() {
    if (!stream_) return;
    beast::error_code ignored;
    stream_->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->lowest().close();
    stream_.reset();
  }

  void finish(DeliveryResult::Kind kind, std::string message) {
    auto* m = client_.metrics_;
    if (m) {
      if (kind == DeliveryResult::Kind::kDelivered) m->delivered.Increment();
      else if (kind == DeliveryResult::Kind::kRejected) m->rejected.Increment();
      else m->gave_up.Increment();
    }
    DeliveryResult r;
    r.kind = kind;
    r.status = last_status_;
    r.message = std::move(message);
    r.attempts = attempts_;
    r.retry_after = retry_after_;
    r.written = written_;
    r.unconfirmed_v2 = unconfirmed_v2_;
    r.answer_wait = answer_wait_;
    auto done = std::move(done_);
    done(std::move(r));
  }

  Client& client_;
  std::shared_ptr<const std::string> body_;
  Client::Callback done_;
  SendOptions options_;
  bool within_send_ = false;  // start() runs within send() (SendOptions::may_yield_within_send)
  http::request<http::span_body<const char>> req_;
  std::optional<http::request_serializer<http::span_body<const char>>> serializer_;  // plain TCP's write()
  // Made on first use: most deliveries reuse a pooled connection (no
  // resolve) and succeed at once (no backoff), and each costs a strand.
  std::optional<net::steady_timer> timer_;
  std::optional<tcp::resolver> resolver_;
  std::unique_ptr<Connection> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  // Plain TCP's wait for the answer (read()): the attempt's deadline, its
  // timer, whether a socket wait is pending, and a generation that tells a
  // wait's or timer's late handler that its wait is over.
  static constexpr size_t kReadBytes = 4096;
  static inline thread_local std::vector<Delivery*> t_awaiting;  // this thread's deliveries awaiting an answer
  Clock::time_point attempt_deadline_;
  std::optional<net::steady_timer> wait_timer_;
  std::optional<std::chrono::nanoseconds> answer_wait_;  // see DeliveryResult::answer_wait
  std::optional<beast::error_code> arrived_;  // complete when read() looked, within send(): how it ended
  uint64_t wait_gen_ = 0;
  bool awaiting_ = false;
  bool wait_pending_ = false;
  Clock::time_point deadline_;
  Clock::time_point attempt_start_;
  int attempts_ = 0;
  int last_status_ = 0;
  bool reused_ = false;
  bool stale_retry_used_ = false;
  std::optional<milliseconds> retry_after_;
  std::optional<codec::WrittenCounts> written_;
  bool unconfirmed_v2_ = false;
  std::string last_reason_;
};

Client::Client(net::io_context& ioc, ClientConfig config, ClientMetrics* metrics)
    : ioc_(ioc), config_(std::move(config)), metrics_(metrics), rng_(std::random_device{}()) {}

Client::~Client() = default;

void Client::send(std::shared_ptr<const std::string> body, Headers headers, Callback done, SendOptions options) {
  auto d = std::make_shared<Delivery>(*this, std::move(body), std::move(headers), std::move(done), options);
  // A delivery runs on the client's thread only (its wait for the answer is
  // that thread's, see Delivery::read()).
  if (ioc_.get_executor().running_in_this_thread()) d->start(true);
  else net::post(ioc_, [d] { d->start(false); });
}

Headers remoteWriteHeaders(codec::WireProtocol protocol) {
  return {{"Content-Encoding", "snappy"},
          {"Content-Type", std::string(codec::contentType(protocol))},
          {std::string(codec::kVersionHeader), std::string(codec::versionHeaderValue(protocol))}};
}

std::unique_ptr<Connection> Client::takeIdle() {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  while (!idle_.empty()) {
    Idle i = std::move(idle_.back());
    idle_.pop_back();
    if (now - i.since < config_.max_idle_age && i.conn->lowest().socket().is_open()) return std::move(i.conn);
    beast::error_code ignored;
    i.conn->lowest().socket().close(ignored);
  }
  return nullptr;
}

void Client::putIdle(std::unique_ptr<Connection> c) {
  std::lock_guard lock(mu_);
  if (idle_.size() >= config_.max_idle_connections) {
    beast::error_code ignored;
    c->lowest().socket().close(ignored);
    return;
  }
  c->lowest().expires_never();
  idle_.push_back({std::move(c), Clock::now()});
}

double Client::random01() {
  std::lock_guard lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

}  // namespace cardinal::upstream
