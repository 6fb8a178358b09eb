#include "upstream/http_get.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <optional>

namespace cardinal::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

core::Result<HttpGetResponse> httpGet(const Url& base, std::string_view target, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes, const HttpGetOptions& options) {
  const bool tls = base.scheme == "https";
  if (!tls && base.scheme != "http") return core::Error{"only http:// and https:// are supported, not " + base.scheme + "://"};
  if (tls && !options.tls) return core::Error{"https:// needs a TLS context"};
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  // Plain, or TLS over the same kind of stream: the exchange below is written once for both.
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  if (tls) {
    secure.emplace(ioc, *options.tls);
    const std::string name = options.server_name.empty() ? base.host : options.server_name;
    if (auto st = security::prepareClientSession(secure->native_handle(), name, options.verify); !st)
      return core::Error{"TLS: " + st.error()};
  } else {
    plain.emplace(ioc);
  }
  beast::tcp_stream& lowest = tls ? beast::get_lowest_layer(*secure) : *plain;
  http::request<http::empty_body> req{http::verb::get, std::string(target), 11};
  req.set(http::field::host, base.hostHeader());
  req.set(http::field::user_agent, "cardinal-analyze");
  req.set(http::field::accept, "application/json");
  if (!options.authorization.empty()) req.set(http::field::authorization, options.authorization);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body_bytes);
  parser.header_limit(64 * 1024);

  std::string error;
  auto fail = [&](const char* step, beast::error_code ec) {
    if (ec == beast::error::timeout) error = std::string(step) + ": timed out";
    else if (ec == http::error::body_limit)
      error = "the answer is larger than " + std::to_string(max_body_bytes) + " bytes";
    else error = std::string(step) + ": " + ec.message();
  };
  auto exchange = [&](auto& stream) {
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return fail("write", ec);
      http::async_read(stream, buffer, parser, [&](beast::error_code ec2, size_t) {
        if (ec2) return fail("read", ec2);
      });
    });
  };
  lowest.expires_after(timeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  resolver.async_resolve(base.host, base.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail("resolve", ec);
    lowest.expires_at(deadline);
    lowest.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return fail("connect", ec2);
      if (!tls) return exchange(*plain);
      secure->async_handshake(net::ssl::stream_base::client, [&](beast::error_code ec3) {
        if (!ec3) return exchange(*secure);
        const std::string verify = security::verifyError(secure->native_handle());
        if (!verify.empty()) error = "tls handshake: the server's certificate is not trusted: " + verify;
        else fail("tls handshake", ec3);
      });
    });
  });
  // The resolver has no deadline of its own: run_for bounds it.
  ioc.run_for(timeout + std::chrono::milliseconds(100));
  if (!ioc.stopped()) {
    ioc.stop();
    if (error.empty()) error = "resolve: timed out";
  }
  beast::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (!error.empty()) return core::Error{std::string("GET ") + std::string(target) + ": " + error};
  if (!parser.is_done()) return core::Error{std::string("GET ") + std::string(target) + ": no complete answer"};
  auto res = parser.release();
  HttpGetResponse out;
  out.status = static_cast<int>(res.result_int());
  if (auto it = res.find(http::field::content_type); it != res.end()) out.content_type = std::string(it->value());
  out.body = std::move(res.body());
  return out;
}

std::string queryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace cardinal::upstream
