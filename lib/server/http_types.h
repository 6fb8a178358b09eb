#pragma once
// HTTP vocabulary shared by the listener and the routes.

#include <functional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "codec/protocol.h"

namespace cardinal::server {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Completes a request. Must be called exactly once, from any thread.
using Responder = std::function<void(Response)>;

// A plain-text response; `text` gets a trailing newline.
Response textResponse(http::status status, std::string_view text);

// Sets the three X-Prometheus-Remote-Write-*-Written headers (remote-write 2.0).
void setWrittenHeaders(Response& res, const codec::WrittenCounts& written);

}  // namespace cardinal::server
