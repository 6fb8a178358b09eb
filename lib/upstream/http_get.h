#pragma once
// A blocking HTTP/1.1 GET for command-line tools (`cardinal analyze` reading a Prometheus' API):
// one connection per call, one deadline for resolve + connect + write + read, and a cap on the
// body read, so a huge answer is refused instead of filling memory. Not for the proxy's data path
// (that is client.h: pooled, asynchronous, with retries).

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "security/tls.h"
#include "upstream/url.h"

namespace cardinal::upstream {

struct HttpGetResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

struct HttpGetOptions {
  // https:// needs a context (security::makeClientContext); the server's certificate is verified
  // against `server_name` (empty: the URL's host) unless `verify` is off.
  std::shared_ptr<security::SslContext> tls;
  std::string server_name;
  bool verify = true;
  std::string authorization;  // an Authorization header value, sent when set
};

// GET `target` (path and query, e.g. "/api/v1/status/tsdb") from the scheme, host and port of
// `base`, over http:// or https://. Errors name the step ("connect", "tls handshake", "read",
// ...) and the cause (for TLS, why the certificate was not trusted); a body over
// `max_body_bytes` is an error too.
core::Result<HttpGetResponse> httpGet(const Url& base, std::string_view target, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes, const HttpGetOptions& options = {});

// Percent-encodes a query parameter value (RFC 3986 unreserved characters are kept).
std::string queryEscape(std::string_view s);

}  // namespace cardinal::upstream
