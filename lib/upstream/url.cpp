#include "upstream/url.h"

#include <algorithm>

namespace cardinal::upstream {

std::string Url::hostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!(scheme == "http" && port == "80") && !(scheme == "https" && port == "443")) h += ":" + port;
  return h;
}

core::Result<Url> parseUrl(std::string_view s) {
  Url u;
  auto sep = s.find("://");
  if (sep == std::string_view::npos) return core::Error{"url has no scheme (expected http://host:port/path)"};
  u.scheme = std::string(s.substr(0, sep));
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (u.scheme != "http" && u.scheme != "https")
    return core::Error{"url scheme \"" + u.scheme + "\" is not supported (http or https)"};
  s.remove_prefix(sep + 3);
  auto slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    return core::Error{"url must not carry credentials; use the credential file flags"};
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return core::Error{"url has an unterminated IPv6 address"};
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return core::Error{"url has garbage after the IPv6 address"};
      u.port = std::string(authority.substr(1));
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return core::Error{"url has no host"};
  if (u.port.empty()) u.port = u.scheme == "https" ? "443" : "80";
  if (!std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }) || u.port.size() > 5 ||
      std::stoi(u.port) == 0 || std::stoi(u.port) > 65535)
    return core::Error{"url has an invalid port \"" + u.port + "\""};
  return u;
}

}  // namespace cardinal::upstream
