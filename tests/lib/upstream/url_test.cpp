#include "upstream/url.h"

#include <doctest/doctest.h>

using cardinal::upstream::parseUrl;

TEST_CASE("upstream URLs") {
  auto u = parseUrl("http://127.0.0.1:9090/api/v1/write");
  REQUIRE(u.ok());
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == "9090");
  CHECK(u->target == "/api/v1/write");
  CHECK(u->hostHeader() == "127.0.0.1:9090");

  auto d = parseUrl("HTTP://prom/api/v1/write?tenant=a");
  REQUIRE(d.ok());
  CHECK(d->port == "80");
  CHECK(d->target == "/api/v1/write?tenant=a");
  CHECK(d->hostHeader() == "prom");

  auto v6 = parseUrl("http://[::1]:8428/api/v1/write");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->hostHeader() == "[::1]:8428");

  auto tls = parseUrl("https://prom.example/api/v1/write");
  REQUIRE(tls.ok());
  CHECK(tls->scheme == "https");
  CHECK(tls->port == "443");
  CHECK(tls->hostHeader() == "prom.example");
  CHECK(parseUrl("https://prom.example:8443/").value().hostHeader() == "prom.example:8443");

  CHECK(parseUrl("http://host:9090").value().target == "/");
  CHECK_FALSE(parseUrl("prom:9090/api/v1/write").ok());
  CHECK_FALSE(parseUrl("ftp://x/").ok());
  CHECK_FALSE(parseUrl("http://:9090/").ok());
  CHECK_FALSE(parseUrl("http://h:99999/").ok());
  CHECK_FALSE(parseUrl("http://h:abc/").ok());
  auto creds = parseUrl("http://user:pw@h/");
  REQUIRE_FALSE(creds.ok());
  CHECK(creds.error().find("pw") == std::string::npos);
}
