#pragma once
// Shared by the 1.0 and 2.0 decoders: how a rejected request is explained
// (400 bodies name the series and the label, escaped and cut short, never a
// label value), the label length limits and the per-series rules both enforce.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/hash.h"
#include "core/labels.h"
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

// A decoded series' labels and samples: labels sorted by name (an unsorted
// series is sorted and marked changed, to forward the sorted form), names
// unique, a non-empty __name__, samples and histograms in timestamp order.
// Sets the series' hash. One comparison per neighbour pair tells sorted (<)
// and duplicate (==); only an unsorted series is sorted and checked again.
inline core::Status checkSeries(size_t idx, Series& s, SeriesBatch& b) {
  auto labels = b.labelsOf(s);
  bool sorted = true, has_name = false;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) {
      const int c = labels[i - 1].name.compare(labels[i].name);
      if (c == 0) return fail(at(idx) + "duplicate label name " + quoted(labels[i].name));
      if (c > 0) sorted = false;
    }
    if (labels[i].name == core::kMetricNameLabel) {
      has_name = !labels[i].value.empty();
      s.name = labels[i].value;
    } else if (labels[i].name == "le") {
      s.has_le = true;
    } else if (labels[i].name == "quantile") {
      s.has_quantile = true;
    }
  }
  if (!sorted) {
    std::sort(labels.begin(), labels.end(), [](const LabelView& a, const LabelView& c) { return a.name < c.name; });
    s.changed = true;
    for (size_t i = 1; i < labels.size(); ++i)
      if (labels[i].name == labels[i - 1].name) return fail(at(idx) + "duplicate label name " + quoted(labels[i].name));
  }
  if (!has_name) return fail(at(idx) + "no __name__ label (or an empty one)");
  auto samples = b.samplesOf(s);
  for (size_t i = 1; i < samples.size(); ++i)
    if (samples[i].timestamp < samples[i - 1].timestamp)
      return fail(at(idx) + "samples out of timestamp order at sample " + std::to_string(i));
  auto hs = b.histogramsOf(s);
  for (size_t i = 1; i < hs.size(); ++i)
    if (hs[i].timestamp < hs[i - 1].timestamp)
      return fail(at(idx) + "histograms out of timestamp order at histogram " + std::to_string(i));
  s.hash = core::hashLabels(labels);
  s.input_hash = s.hash;
  s.shaped = true;
  return core::Status::Ok();
}

}  // namespace cardinal::codec::detail
