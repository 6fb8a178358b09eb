// cardinal_sink: a remote-write 1.0 receiver for the benchmark kit. It answers
// POST /api/v1/write with a fixed status (204 by default, optionally after a
// delay) and counts what it received: every body is decompressed and decoded
// with Cardinal's own hot-path decoder (lib/codec), so a malformed request is
// a 400 and is not counted (--decode=scan counts by protobuf tags instead,
// for a cheaper sink that checks only the structure). GET /stats returns the counts as JSON, GET
// /metrics as Prometheus text. The chosen port is written to --port-file once
// listening; SIGTERM/SIGINT stop it and print the final counts as one JSON
// line on stdout (and to --stats-file).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "codec/batch.h"
#include "codec/decode.h"
#include "codec/limits.h"
#include "codec/snappy_codec.h"
#include "codec/wire.h"
#include "core/flags.h"
#include "server/body_buffer.h"

namespace {

using namespace cardinal;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Options {
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  milliseconds delay{0};
  size_t status = 204;
  std::string stats_file;
  size_t threads = 1;
  size_t max_body = 64u << 20;
  milliseconds idle_timeout{120'000};
  std::string decode = "full";
  bool help = false;
};

struct WriteCounts {
  uint64_t series = 0, samples = 0, histograms = 0, exemplars = 0;
};

// --decode=scan: walks WriteRequest.timeseries and counts samples, histograms
// and exemplars by their tags, skipping labels unread. Checks the structure
// only (no label rules, no UTF-8): for when the sink's own CPU matters more
// than catching a malformed forward.
bool scanWriteRequest(std::string_view buf, WriteCounts& out) {
  namespace wire = codec::wire;
  wire::Reader r(buf);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    if (f != 1 || wt != wire::kLen) {
      if (!r.skip(f, wt)) return false;
      continue;
    }
    std::string_view ts;
    if (!r.bytes(ts)) return false;
    ++out.series;
    wire::Reader s(ts);
    while (!s.done()) {
      uint32_t sf, swt;
      if (!s.tag(sf, swt) || !s.skip(sf, swt)) return false;
      if (swt != wire::kLen) continue;
      out.samples += sf == 2;
      out.exemplars += sf == 3;
      out.histograms += sf == 4;
    }
  }
  return true;
}

// Written by every session, read by /stats and at exit: relaxed atomics.
struct Counters {
  std::atomic<uint64_t> requests{0};  // POST /api/v1/write, decoded or not
  std::atomic<uint64_t> decode_errors{0};
  std::atomic<uint64_t> series{0};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> histograms{0};
  std::atomic<uint64_t> exemplars{0};
  std::atomic<uint64_t> bytes{0};  // compressed bodies
  std::atomic<uint64_t> decompressed_bytes{0};
  std::atomic<uint64_t> other_requests{0};  // anything but a write
};

struct Sink {
  Options options;
  bool full_decode = true;
  codec::Limits limits;
  Counters counters;
  SteadyClock::time_point started = SteadyClock::now();

  nlohmann::ordered_json statsJson() const {
    auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    nlohmann::ordered_json j;
    j["requests"] = get(counters.requests);
    j["series"] = get(counters.series);
    j["samples"] = get(counters.samples);
    j["histograms"] = get(counters.histograms);
    j["exemplars"] = get(counters.exemplars);
    j["bytes"] = get(counters.bytes);
    j["decompressed_bytes"] = get(counters.decompressed_bytes);
    j["decode_errors"] = get(counters.decode_errors);
    j["other_requests"] = get(counters.other_requests);
    j["uptime_s"] = std::round(std::chrono::duration<double>(SteadyClock::now() - started).count() * 1000) / 1000;
    j["status"] = options.status;
    j["delay_ms"] = options.delay.count();
    j["decode"] = options.decode;
    return j;
  }

  std::string metricsText() const {
    std::string out;
    auto add = [&](const char* name, const char* help, const std::atomic<uint64_t>& v) {
      out += "# HELP ";
      out += name;
      out += ' ';
      out += help;
      out += "\n# TYPE ";
      out += name;
      out += " counter\n";
      out += name;
      out += ' ';
      out += std::to_string(v.load(std::memory_order_relaxed));
      out += '\n';
    };
    add("cardinal_sink_write_requests_total", "Remote-write requests received.", counters.requests);
    add("cardinal_sink_decode_errors_total", "Remote-write requests that failed to decompress or decode.",
        counters.decode_errors);
    add("cardinal_sink_series_total", "Series in decoded requests.", counters.series);
    add("cardinal_sink_samples_total", "Float samples in decoded requests.", counters.samples);
    add("cardinal_sink_histograms_total", "Native histogram samples in decoded requests.", counters.histograms);
    add("cardinal_sink_exemplars_total", "Exemplars in decoded requests.", counters.exemplars);
    add("cardinal_sink_received_bytes_total", "Compressed request body bytes received.", counters.bytes);
    return out;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Sink& sink) : stream_(std::move(socket)), sink_(sink), timer_(stream_.get_executor()) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(sink_.options.max_body);
    stream_.expires_after(sink_.options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->onRead(ec);
      server::sizeBufferForBody(*self->parser_, self->buffer_);
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code ec2, size_t) { self->onRead(ec2); });
    });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return respond(http::status::payload_too_large, "request body exceeds --max-body\n", "text/plain", false);
    if (ec) return close();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target == "/api/v1/write") {
      if (req.method() != http::verb::post)
        return respond(http::status::method_not_allowed, "use POST\n", "text/plain", keep_alive_);
      return handleWrite(req.body());
    }
    sink_.counters.other_requests.fetch_add(1, std::memory_order_relaxed);
    if (req.method() == http::verb::get && target == "/stats")
      return respond(http::status::ok, sink_.statsJson().dump() + "\n", "application/json", keep_alive_);
    if (req.method() == http::verb::get && target == "/metrics")
      return respond(http::status::ok, sink_.metricsText(), "text/plain; version=0.0.4", keep_alive_);
    respond(http::status::not_found, "not found\n", "text/plain", keep_alive_);
  }

  void handleWrite(const std::string& body) {
    auto& c = sink_.counters;
    c.requests.fetch_add(1, std::memory_order_relaxed);
    c.bytes.fetch_add(body.size(), std::memory_order_relaxed);
    if (auto st = codec::decompress(body, sink_.limits, raw_); !st) return decodeError(st.error());
    WriteCounts n;
    if (sink_.full_decode) {
      if (auto st = codec::decodeWriteRequest(raw_, sink_.limits, batch_); !st) return decodeError(st.error());
      n = {batch_.series.size(), batch_.samples.size(), batch_.histograms.size(), batch_.exemplars.size()};
    } else if (!scanWriteRequest(raw_, n)) {
      return decodeError("malformed WriteRequest");
    }
    c.decompressed_bytes.fetch_add(raw_.size(), std::memory_order_relaxed);
    c.series.fetch_add(n.series, std::memory_order_relaxed);
    c.samples.fetch_add(n.samples, std::memory_order_relaxed);
    c.histograms.fetch_add(n.histograms, std::memory_order_relaxed);
    c.exemplars.fetch_add(n.exemplars, std::memory_order_relaxed);
    auto status = static_cast<http::status>(sink_.options.status);
    if (sink_.options.delay.count() == 0) return respond(status, "", "", keep_alive_);
    timer_.expires_after(sink_.options.delay);
    timer_.async_wait([self = shared_from_this(), status](beast::error_code) {
      self->respond(status, "", "", self->keep_alive_);
    });
  }

  void decodeError(const std::string& message) {
    sink_.counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
    respond(http::status::bad_request, message + "\n", "text/plain", keep_alive_);
  }

  void respond(http::status status, std::string body, const char* content_type, bool keep_alive) {
    res_ = {};
    res_.result(status);
    res_.version(11);
    res_.set(http::field::server, "cardinal-sink");
    if (*content_type) res_.set(http::field::content_type, content_type);
    // 204 and 304 must not carry a body.
    if (status != http::status::no_content && status != http::status::not_modified) res_.body() = std::move(body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    stream_.expires_after(sink_.options.idle_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Sink& sink_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool keep_alive_ = true;
  // Reused across the connection's requests: no per-sample allocation.
  std::string raw_;
  codec::SeriesBatch batch_;
};

class Listener {
 public:
  Listener(net::io_context& ioc, Sink& sink) : ioc_(ioc), sink_(sink), acceptor_(net::make_strand(ioc)) {}

  void listen(const tcp::endpoint& ep) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
    accept();
  }
  tcp::endpoint localEndpoint() const { return acceptor_.local_endpoint(); }
  void stop() {
    net::dispatch(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        std::cerr << "cardinal_sink: accept failed: " << ec.message() << "\n";
        return accept();
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), sink_)->run();
      accept();
    });
  }

  net::io_context& ioc_;
  Sink& sink_;
  tcp::acceptor acceptor_;
};

std::optional<tcp::endpoint> parseListen(const std::string& s, std::string& error) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    error = "listen address \"" + s + "\" has no port (host:port)";
    return std::nullopt;
  }
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || p > 65535) {
    error = "listen address \"" + s + "\" has an invalid port";
    return std::nullopt;
  }
  beast::error_code aec;
  auto addr = net::ip::make_address(host, aec);
  if (aec) {
    error = "listen address \"" + s + "\": host must be an IP address or localhost";
    return std::nullopt;
  }
  return tcp::endpoint(addr, static_cast<unsigned short>(p));
}

// Writes via a temporary file and a rename, so a script polling for the file
// never reads it half-written.
bool writeFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!(f << content)) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

int runMain(int argc, char** argv) {
  Options o;
  core::FlagSet f("cardinal_sink");
  f.addString("listen", &o.listen, "Address to listen on (port 0 picks a free port)");
  f.addString("port-file", &o.port_file, "Write the chosen port here once listening");
  f.addDuration("delay", &o.delay, "Wait this long before answering each write");
  f.addCount("status", &o.status, "HTTP status to answer writes with");
  f.addString("stats-file", &o.stats_file, "Write the final counts (JSON) here at exit");
  f.addCount("threads", &o.threads, "I/O threads");
  f.addBytes("max-body", &o.max_body, "Largest request body accepted (413 beyond)");
  f.addDuration("idle-timeout", &o.idle_timeout, "Close a connection idle for this long");
  f.addString("decode", &o.decode,
              "full: Cardinal's decoder, validating every label (400 on error); scan: count by tags only, cheaper");
  f.addBool("help", &o.help, "Show this help");
  if (auto stop = bench::parseToolFlags(f, argc, argv, o.help, "cardinal_sink")) return *stop;
  if (o.status < 200 || o.status > 599) {
    std::cerr << "cardinal_sink: --status must be between 200 and 599\n";
    return 2;
  }
  if (o.decode != "full" && o.decode != "scan") {
    std::cerr << "cardinal_sink: --decode must be full or scan\n";
    return 2;
  }
  if (o.threads == 0) {
    std::cerr << "cardinal_sink: --threads must be at least 1\n";
    return 2;
  }
  std::string error;
  auto ep = parseListen(o.listen, error);
  if (!ep) {
    std::cerr << "cardinal_sink: " << error << "\n";
    return 2;
  }

  net::io_context ioc(static_cast<int>(o.threads));
  Sink sink;
  sink.options = o;
  sink.full_decode = o.decode == "full";
  sink.limits.max_body_bytes = o.max_body;
  sink.limits.max_decompressed_bytes = std::max(sink.limits.max_decompressed_bytes, 4 * o.max_body);
  Listener listener(ioc, sink);
  try {
    listener.listen(*ep);
  } catch (const std::exception& e) {
    std::cerr << "cardinal_sink: cannot listen on " << o.listen << ": " << e.what() << "\n";
    return 1;
  }
  auto local = listener.localEndpoint();
  if (!o.port_file.empty() && !writeFileAtomically(o.port_file, std::to_string(local.port()) + "\n")) {
    std::cerr << "cardinal_sink: cannot write " << o.port_file << "\n";
    return 1;
  }
  std::cerr << "cardinal_sink: listening on " << local.address().to_string() << ":" << local.port() << ", answering "
            << o.status << (o.delay.count() ? " after " + core::formatDuration(o.delay) : std::string()) << ", "
            << o.threads << " thread(s), " << o.decode << " decode\n";

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code ec, int) {
    if (ec) return;
    listener.stop();
    ioc.stop();
  });
  std::vector<std::thread> threads;
  for (size_t i = 1; i < o.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  std::string final_json = sink.statsJson().dump();
  std::cout << final_json << std::endl;
  if (!o.stats_file.empty() && !writeFileAtomically(o.stats_file, final_json + "\n")) {
    std::cerr << "cardinal_sink: cannot write " << o.stats_file << "\n";
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
    std::cerr << "cardinal_sink: " << e.what() << "\n";
    return 2;
  }
}
