#include "codec/protocol.h"

#include <algorithm>
#include <cctype>

namespace cardinal::codec {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Header values are quoted back in error texts: cut short, control bytes escaped.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f || c == '"') ? '?' : c;
  }
  if (s.size() > 100) out += "...";
  return out;
}

}  // namespace

std::string_view protocolName(WireProtocol p) { return p == WireProtocol::kV2 ? "v2" : "v1"; }

std::optional<WireProtocol> parseProtocolName(std::string_view name) {
  std::string n = lower(trim(name));
  if (n == "v1" || n == "1.0" || n == "prometheus.writerequest") return WireProtocol::kV1;
  if (n == "v2" || n == "2.0" || n == "io.prometheus.write.v2.request") return WireProtocol::kV2;
  return std::nullopt;
}

ContentTypeCheck checkContentType(std::string_view value) {
  ContentTypeCheck out;
  std::string_view rest = value;
  size_t semi = rest.find(';');
  std::string media = lower(trim(rest.substr(0, semi)));
  if (trim(value).empty()) return out;  // absent: 1.0
  if (media != "application/x-protobuf") {
    out.error = "unsupported Content-Type \"" + printable(media) + "\": expected application/x-protobuf";
    return out;
  }
  while (semi != std::string_view::npos) {
    rest.remove_prefix(semi + 1);
    semi = rest.find(';');
    std::string_view param = trim(rest.substr(0, semi));
    size_t eq = param.find('=');
    if (param.empty()) continue;
    if (eq == std::string_view::npos) {
      out.error = "malformed Content-Type parameter \"" + printable(param) + "\": expected name=value";
      return out;
    }
    if (lower(trim(param.substr(0, eq))) != "proto") continue;  // e.g. charset: not ours to judge
    std::string_view proto = trim(param.substr(eq + 1));
    if (proto.size() >= 2 && proto.front() == '"' && proto.back() == '"') proto = proto.substr(1, proto.size() - 2);
    std::string p = lower(proto);
    if (p == "prometheus.writerequest") {
      out.protocol = WireProtocol::kV1;
    } else if (p == "io.prometheus.write.v2.request") {
      out.protocol = WireProtocol::kV2;
    } else {
      out.error = "unsupported remote-write message \"" + printable(proto) +
                  "\": this receiver accepts prometheus.WriteRequest (remote-write 1.0) and "
                  "io.prometheus.write.v2.Request (2.0)";
      return out;
    }
  }
  return out;
}

std::string checkContentEncoding(std::string_view value) {
  std::string enc = lower(trim(value));
  if (enc.empty() || enc == "snappy") return "";
  return "unsupported Content-Encoding \"" + printable(enc) + "\": remote-write bodies are snappy block-compressed";
}

}  // namespace cardinal::codec
