#pragma once
// A blocking HTTP/1.1 GET for command-line tools (`cardinal analyze` reading a Prometheus' API):
// one connection per call, one deadline for resolve + connect + write + read, and a cap on the
// body read, so a huge answer is refused instead of filling memory. Not for the proxy's data path
// (that is client.h: pooled, asynchronous, with retries).

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.h"
#include "upstream/url.h"

namespace cardinal::upstream {

struct HttpGetResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// GET `target` (path and query, e.g. "/api/v1/status/tsdb") from the scheme, host and port of
// `base`. Errors name the step ("connect", "read", ...) and the cause; a body over
// `max_body_bytes` is an error too.
core::Result<HttpGetResponse> httpGet(const Url& base, std::string_view target, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters are kept).
std::string queryEscape(std::string_view s);

}  // namespace cardinal::upstream
