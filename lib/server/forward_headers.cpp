#include "server/forward_headers.h"

#include <algorithm>

namespace cardinal::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isToken(std::string_view s) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    kSpecials.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Hop-by-hop headers (RFC 9110 7.6.1) and the ones Cardinal sets or answers itself.
bool isReserved(const std::string& n) {
  static const char* const kReserved[] = {
      "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
      "expect", "host", "content-type", "content-encoding", "content-length", "authorization",
      "proxy-authorization", "proxy-authenticate", "www-authenticate", "cookie", "user-agent",
      "retry-attempt", "accept-encoding"};
  for (const char* r : kReserved)
    if (n == r) return true;
  return n.rfind("x-prometheus-remote-write-", 0) == 0;
}

}  // namespace

core::Result<std::vector<std::string>> parseForwardHeaders(const std::vector<std::string>& flags,
                                                           std::string_view flag_name) {
  std::vector<std::string> out;
  for (const auto& flag : flags) {
    std::string_view rest = flag;
    while (true) {
      const size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      if (!item.empty()) {
        if (!isToken(item))
          return core::Error{"--" + std::string(flag_name) + ": \"" + std::string(item) +
                             "\" is not a valid HTTP header name"};
        std::string name = lower(item);
        if (isReserved(name))
          return core::Error{"--" + std::string(flag_name) + ": header \"" + std::string(item) +
                             "\" cannot be forwarded (hop-by-hop, or set by Cardinal itself)"};
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::string checkForwardedValue(std::string_view name, std::string_view value) {
  if (value.size() > kMaxForwardedHeaderValueBytes)
    return "header " + std::string(name) + " is " + std::to_string(value.size()) + " bytes long; at most " +
           std::to_string(kMaxForwardedHeaderValueBytes) + " are forwarded";
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return "header " + std::string(name) + " has a control character (CR, LF, NUL, ...) at byte " +
             std::to_string(i);
  }
  return {};
}

}  // namespace cardinal::server
