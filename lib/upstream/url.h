#pragma once
// Upstream URL: http[s]://host[:port]/path.

#include <string>
#include <string_view>

#include "core/result.h"

namespace cardinal::upstream {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  std::string port;    // defaulted from the scheme
  std::string target;  // path and query, at least "/"
  std::string hostHeader() const;
};

core::Result<Url> parseUrl(std::string_view s);

}  // namespace cardinal::upstream
