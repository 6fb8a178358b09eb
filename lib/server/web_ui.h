#pragma once
// The status page: GET / (and /index.html) serves lib/server/web/index.html, which loads
// /static/app.js, /static/app.css and /static/favicon.svg; the script reads /api/v1/stats and
// /metrics itself. The files are compiled into the binary (CMake embeds them into
// generated/server/web_assets.h), so there is no state here and nothing to install.
//
// Every answer carries `Cache-Control: no-store`, `X-Content-Type-Options: nosniff` and a
// Content-Security-Policy of `default-src 'self'` (no inline script or style, no other origin,
// no framing): the page shows user data (metric and label names, redacted values) and must
// never run any of it.

#include <string_view>

#include "server/http_types.h"

namespace cardinal::server {

// "/", "/index.html" and anything under "/static/".
bool isWebPath(std::string_view path);

// 200 with the file for a known path, 404 otherwise.
Response webResponse(std::string_view path);

}  // namespace cardinal::server
