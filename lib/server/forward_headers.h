#pragma once
// --upstream.forward-headers and --tenant.header: which request headers are
// copied from a sender's request onto the upstream request that carries its
// series. Names are checked once at start-up; values on every request.

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cardinal::server {

constexpr size_t kMaxForwardedHeaderValueBytes = 1024;

// Splits comma lists, trims, lower-cases and de-duplicates `flags`, and
// refuses names that are not HTTP tokens, hop-by-hop headers, and headers
// Cardinal sets itself (Content-Type, Content-Encoding, Content-Length, Host,
// Authorization, X-Prometheus-Remote-Write-*, ...), with a message naming
// the flag and the header.
core::Result<std::vector<std::string>> parseForwardHeaders(const std::vector<std::string>& flags,
                                                           std::string_view flag_name);

// Empty when `value` may be forwarded, else why not: longer than
// kMaxForwardedHeaderValueBytes, or a control character (CR, LF, NUL, ...;
// HTAB is allowed). The message names the header, never the value.
std::string checkForwardedValue(std::string_view name, std::string_view value);

}  // namespace cardinal::server
