#include "server/web_ui.h"

#include <doctest/doctest.h>

using namespace cardinal::server;

TEST_CASE("web: the status page and its files, with a strict CSP; 404 for anything else") {
  CHECK(isWebPath("/"));
  CHECK(isWebPath("/index.html"));
  CHECK(isWebPath("/static/app.js"));
  CHECK(isWebPath("/static/nope"));
  CHECK_FALSE(isWebPath("/api/v1/stats"));
  CHECK_FALSE(isWebPath("/metrics"));
  CHECK_FALSE(isWebPath("/index.htm"));

  struct Want {
    const char* path;
    const char* type;
    const char* holds;
  };
  for (const Want& w : {Want{"/", "text/html; charset=utf-8", "<table id=\"families\">"},
                        Want{"/index.html", "text/html; charset=utf-8", "/static/app.js"},
                        Want{"/static/app.js", "text/javascript; charset=utf-8", "/api/v1/stats"},
                        Want{"/static/app.css", "text/css; charset=utf-8", ".badge"},
                        Want{"/static/favicon.svg", "image/svg+xml", "<svg"}}) {
    CAPTURE(w.path);
    Response res = webResponse(w.path);
    CHECK(res.result() == http::status::ok);
    CHECK(res[http::field::content_type] == w.type);
    CHECK(res[http::field::cache_control] == "no-store");
    CHECK(res["Content-Security-Policy"].starts_with("default-src 'self';"));
    CHECK(res["X-Content-Type-Options"] == "nosniff");
    CHECK(res.body().find(w.holds) != std::string::npos);
    CHECK(res[http::field::content_length] == std::to_string(res.body().size()));
  }
  Response missing = webResponse("/static/missing.js");
  CHECK(missing.result() == http::status::not_found);
  CHECK(missing[http::field::cache_control] == "no-store");
}
