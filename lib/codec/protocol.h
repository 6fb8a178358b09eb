#pragma once
// The two remote-write protocols on the wire, and the content negotiation of
// the 2.0 specification:
//
//   1.0: Content-Type: application/x-protobuf            (or ;proto=prometheus.WriteRequest)
//        X-Prometheus-Remote-Write-Version: 0.1.0
//   2.0: Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request
//        X-Prometheus-Remote-Write-Version: 2.0.0
//
// Both are snappy block-compressed (Content-Encoding: snappy). Receivers answer
// 415 to any other media type, message or encoding. A 2.0 receiver answers
// every 2.0 request (2xx and 4xx) with the X-Prometheus-Remote-Write-*-Written
// headers.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cardinal::codec {

enum class WireProtocol : uint8_t {
  kV1,  // prometheus.WriteRequest
  kV2,  // io.prometheus.write.v2.Request
};

// "v1" / "v2", as in --upstream.protocol.
std::string_view protocolName(WireProtocol p);
std::optional<WireProtocol> parseProtocolName(std::string_view name);

// What senders send. No space before `proto=`: Prometheus does not trim
// parameters and would take a 2.0 body for a 1.0 one.
inline constexpr std::string_view kContentTypeV1 = "application/x-protobuf";
inline constexpr std::string_view kContentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
inline constexpr std::string_view kVersionHeader = "X-Prometheus-Remote-Write-Version";
inline constexpr std::string_view kVersionV1 = "0.1.0";
inline constexpr std::string_view kVersionV2 = "2.0.0";
inline constexpr std::string_view kSamplesWrittenHeader = "X-Prometheus-Remote-Write-Samples-Written";
inline constexpr std::string_view kHistogramsWrittenHeader = "X-Prometheus-Remote-Write-Histograms-Written";
inline constexpr std::string_view kExemplarsWrittenHeader = "X-Prometheus-Remote-Write-Exemplars-Written";

inline std::string_view contentType(WireProtocol p) { return p == WireProtocol::kV2 ? kContentTypeV2 : kContentTypeV1; }
inline std::string_view versionHeaderValue(WireProtocol p) { return p == WireProtocol::kV2 ? kVersionV2 : kVersionV1; }

// The outcome of reading a request's Content-Type (RFC 9110: media type and
// parameter names case-insensitive, optional whitespace around `;`, quoted
// parameter values): the message it announces, or why it is not supported
// (the text of a 415; it quotes the header, which never holds label data).
// A missing Content-Type (empty `value`) means 1.0, as the spec says.
struct ContentTypeCheck {
  WireProtocol protocol = WireProtocol::kV1;
  std::string error;  // empty: supported
};
ContentTypeCheck checkContentType(std::string_view value);

// The Content-Encoding check: "" (absent) and "snappy" are accepted; anything
// else is the text of a 415.
std::string checkContentEncoding(std::string_view value);

// Written counts of one 2.0 request, as sent in or read from the headers above.
struct WrittenCounts {
  uint64_t samples = 0;
  uint64_t histograms = 0;
  uint64_t exemplars = 0;
  uint64_t total() const { return samples + histograms + exemplars; }
  bool operator==(const WrittenCounts&) const = default;
};

}  // namespace cardinal::codec
