#include "upstream/http_get.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace cardinal::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

core::Result<HttpGetResponse> httpGet(const Url& base, std::string_view target, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes) {
  if (base.scheme != "http") return core::Error{"only http:// is supported, not " + base.scheme + "://"};
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::empty_body> req{http::verb::get, std::string(target), 11};
  req.set(http::field::host, base.hostHeader());
  req.set(http::field::user_agent, "cardinal-analyze");
  req.set(http::field::accept, "application/json");
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
  stream.expires_after(timeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  resolver.async_resolve(base.host, base.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail("resolve", ec);
    stream.expires_at(deadline);
    stream.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return fail("connect", ec2);
      http::async_write(stream, req, [&](beast::error_code ec3, size_t) {
        if (ec3) return fail("write", ec3);
        http::async_read(stream, buffer, parser, [&](beast::error_code ec4, size_t) {
          if (ec4) return fail("read", ec4);
        });
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
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
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
