#pragma once
// Shared by the 1.0 and 2.0 decoders: how a rejected request is explained
// (400 bodies name the series and the label, escaped and cut short, never a
// label value), and the label length limits both enforce.

#include <cstddef>
#include <string>
#include <string_view>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/result.h"

namespace cardinal::codec::detail {

inline core::Error fail(std::string msg) { return core::Error{std::move(msg)}; }

// A label name as shown in an error: quoted, control bytes escaped, at most 64 bytes.
inline std::string quoted(std::string_view s) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : s) {
    if (++n > 64) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

inline std::string at(size_t series) { return "series " + std::to_string(series) + ": "; }

// Empty names and the --limits.max-label-* lengths.
inline core::Status checkLabelLimits(size_t idx, const LabelView& l, const Limits& limits) {
  if (l.name.empty()) return fail(at(idx) + "empty label name");
  if (l.name.size() > limits.max_label_name_bytes)
    return fail(at(idx) + "label name " + quoted(l.name) + " is " + std::to_string(l.name.size()) +
                " bytes, more than the limit of " + std::to_string(limits.max_label_name_bytes) +
                " (--limits.max-label-name-length)");
  if (l.value.size() > limits.max_label_value_bytes)
    return fail(at(idx) + "value of label " + quoted(l.name) + " is " + std::to_string(l.value.size()) +
                " bytes, more than the limit of " + std::to_string(limits.max_label_value_bytes) +
                " (--limits.max-label-value-length)");
  return core::Status::Ok();
}

}  // namespace cardinal::codec::detail
