#include "server/web_ui.h"

#include "server/web_assets.h"

namespace cardinal::server {

namespace {

constexpr std::string_view kCsp =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

struct Asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};

constexpr Asset kAssets[] = {
    {"/", "text/html; charset=utf-8", web::kIndexHtml},
    {"/index.html", "text/html; charset=utf-8", web::kIndexHtml},
    {"/static/app.js", "text/javascript; charset=utf-8", web::kAppJs},
    {"/static/app.css", "text/css; charset=utf-8", web::kAppCss},
    {"/static/favicon.svg", "image/svg+xml", web::kFaviconSvg},
};

void secure(Response& res) {
  res.set(http::field::cache_control, "no-store");
  res.set("Content-Security-Policy", std::string(kCsp));
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
}

}  // namespace

bool isWebPath(std::string_view path) {
  return path == "/" || path == "/index.html" || path.substr(0, 8) == "/static/";
}

Response webResponse(std::string_view path) {
  for (const auto& a : kAssets) {
    if (a.path != path) continue;
    Response res{http::status::ok, 11};
    res.set(http::field::server, "cardinal");
    res.set(http::field::content_type, std::string(a.content_type));
    secure(res);
    res.body() = std::string(a.body);
    res.prepare_payload();
    return res;
  }
  Response res = textResponse(http::status::not_found, "404 page not found");
  secure(res);
  return res;
}

}  // namespace cardinal::server
