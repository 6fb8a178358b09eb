#include "codec/decode_v2.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "codec/decode.h"
#include "codec/decode_errors.h"
#include "codec/wire.h"

namespace cardinal::codec {
namespace {

using wire::Reader;

using detail::at;
using detail::fail;
using detail::quoted;
std::string num(uint64_t v) { return std::to_string(v); }

// Per-thread scratch, reused across requests (no allocation in steady state).
struct Scratch {
  std::vector<std::string_view> symbols;
  std::vector<uint32_t> refs;
  std::vector<uint32_t> exemplar_refs;
  std::unordered_map<std::string_view, uint32_t> family_index;  // family -> latest metadata entry
};
thread_local Scratch t_scratch;

// One labels_refs occurrence, packed (the proto3 default) or a single varint.
// Values beyond 32 bits are truncated, as protobuf does for uint32 fields.
bool readRefs(Reader& r, uint32_t wire_type, std::vector<uint32_t>& out) {
  uint64_t v = 0;
  if (wire_type == wire::kVarint) {
    if (!r.varint(v)) return false;
    out.push_back(static_cast<uint32_t>(v));
    return true;
  }
  std::string_view payload;
  if (!r.bytes(payload)) return false;
  Reader p(payload);
  while (!p.done()) {
    if (!p.varint(v)) return false;
    out.push_back(static_cast<uint32_t>(v));
  }
  return true;
}

bool isRefs(uint32_t f, uint32_t wt) { return f == 1 && (wt == wire::kVarint || wt == wire::kLen); }

struct SampleV2 {
  Sample sample;
  int64_t start_timestamp = 0;
};

bool parseSample(std::string_view msg, SampleV2& out) {
  Reader r(msg);
  out = {};
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    uint64_t v = 0;
    if (f == 1 && wt == wire::kI64) {
      if (!r.f64(out.sample.value)) return false;
    } else if (f == 2 && wt == wire::kVarint) {
      if (!r.varint(v)) return false;
      out.sample.timestamp = static_cast<int64_t>(v);
    } else if (f == 3 && wt == wire::kVarint) {
      if (!r.varint(v)) return false;
      out.start_timestamp = static_cast<int64_t>(v);
    } else if (!r.skip(f, wt)) {
      return false;
    }
  }
  return true;
}

// Metadata fields; occurrences of the message merge field by field, as protobuf does.
struct MetadataRefs {
  bool present = false;
  int32_t type = 0;
  uint32_t help_ref = 0;
  uint32_t unit_ref = 0;
};

bool parseMetadata(std::string_view msg, MetadataRefs& m) {
  Reader r(msg);
  m.present = true;
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    uint64_t v = 0;
    if (wt == wire::kVarint && (f == 1 || f == 3 || f == 4)) {
      if (!r.varint(v)) return false;
      if (f == 1) m.type = static_cast<int32_t>(v);
      else if (f == 3) m.help_ref = static_cast<uint32_t>(v);
      else m.unit_ref = static_cast<uint32_t>(v);
    } else if (!r.skip(f, wt)) {
      return false;
    }
  }
  return true;
}

std::string outOfRange(std::string_view what, size_t pos, uint32_t ref, size_t symbols) {
  return std::string(what) + "[" + num(pos) + "] = " + num(ref) + " is out of range (the request has " +
         num(symbols) + " symbols)";
}

uint32_t addMetadata(SeriesBatch& b, Scratch& sc, MetadataView m) {
  auto same = [&](const MetadataView& o) {
    return o.type == m.type && o.family == m.family && o.help == m.help && o.unit == m.unit;
  };
  // Consecutive series of one family (buckets, _sum, _count) share the entry.
  if (!b.metadata.empty() && same(b.metadata.back())) return static_cast<uint32_t>(b.metadata.size() - 1);
  auto it = sc.family_index.find(m.family);
  if (it != sc.family_index.end() && same(b.metadata[it->second])) return it->second;
  auto index = static_cast<uint32_t>(b.metadata.size());
  b.metadata.push_back(m);
  sc.family_index[m.family] = index;
  return index;
}

core::Status parseSeries(size_t idx, std::string_view msg, const Limits& limits, Scratch& sc, SeriesBatch& b) {
  const auto& symbols = sc.symbols;
  Series s;
  s.raw = msg;
  s.sample_begin = static_cast<uint32_t>(b.samples.size());
  s.histogram_begin = static_cast<uint32_t>(b.histograms.size());
  s.exemplar_begin = static_cast<uint32_t>(b.exemplars.size());
  sc.refs.clear();
  MetadataRefs meta;
  auto& starts = b.v2.sample_start_timestamps;
  Reader r(msg);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return fail(at(idx) + "malformed protobuf");
    if (isRefs(f, wt)) {
      if (!readRefs(r, wt, sc.refs)) return fail(at(idx) + "malformed labels_refs");
      continue;
    }
    std::string_view payload;
    if (wt != wire::kLen || f < 2 || f > 5) {  // created_timestamp (6) and unknown fields
      if (!r.skip(f, wt)) return fail(at(idx) + "malformed protobuf");
      continue;
    }
    if (!r.bytes(payload)) return fail(at(idx) + "truncated protobuf field");
    switch (f) {
      case 2: {
        SampleV2 smp;
        if (!parseSample(payload, smp)) return fail(at(idx) + "malformed sample");
        size_t i = b.samples.size();
        b.samples.push_back(smp.sample);
        if (smp.start_timestamp != 0 || !starts.empty()) {
          starts.resize(i, 0);
          starts.push_back(smp.start_timestamp);
        }
        ++s.sample_count;
        break;
      }
      case 3: {
        HistogramView h;
        if (!parseHistogramView(payload, h)) return fail(at(idx) + "malformed native histogram");
        b.histograms.push_back(h);
        ++s.histogram_count;
        break;
      }
      case 4: {
        ExemplarView e;
        e.label_begin = static_cast<uint32_t>(b.exemplar_labels.size());
        sc.exemplar_refs.clear();
        Reader er(payload);
        while (!er.done()) {
          uint32_t ef, ewt;
          if (!er.tag(ef, ewt)) return fail(at(idx) + "malformed exemplar");
          bool ok;
          uint64_t v = 0;
          if (isRefs(ef, ewt)) {
            ok = readRefs(er, ewt, sc.exemplar_refs);
          } else if (ef == 2 && ewt == wire::kI64) {
            ok = er.f64(e.value);
          } else if (ef == 3 && ewt == wire::kVarint) {
            ok = er.varint(v);
            e.timestamp = static_cast<int64_t>(v);
          } else {
            ok = er.skip(ef, ewt);
          }
          if (!ok) return fail(at(idx) + "malformed exemplar");
        }
        const std::string where = "exemplar " + num(s.exemplar_count) + ": labels_refs";
        if (sc.exemplar_refs.size() % 2 != 0)
          return fail(at(idx) + where + " has odd length " + num(sc.exemplar_refs.size()));
        for (size_t i = 0; i < sc.exemplar_refs.size(); ++i)
          if (sc.exemplar_refs[i] >= symbols.size())
            return fail(at(idx) + outOfRange(where, i, sc.exemplar_refs[i], symbols.size()));
        for (size_t i = 0; i < sc.exemplar_refs.size(); i += 2)
          b.exemplar_labels.push_back({symbols[sc.exemplar_refs[i]], symbols[sc.exemplar_refs[i + 1]]});
        e.label_count = static_cast<uint32_t>(sc.exemplar_refs.size() / 2);
        b.exemplars.push_back(e);
        ++s.exemplar_count;
        break;
      }
      case 5:
        if (!parseMetadata(payload, meta)) return fail(at(idx) + "malformed metadata");
        break;
    }
  }

  // Labels: resolved through the symbols table, then the 1.0 rules.
  if (sc.refs.size() % 2 != 0) return fail(at(idx) + "labels_refs has odd length " + num(sc.refs.size()));
  if (sc.refs.size() / 2 > limits.max_labels_per_series)
    return fail(at(idx) + "more than " + num(limits.max_labels_per_series) +
                " labels (--limits.max-labels-per-series)");
  for (size_t i = 0; i < sc.refs.size(); ++i)
    if (sc.refs[i] >= symbols.size()) return fail(at(idx) + outOfRange("labels_refs", i, sc.refs[i], symbols.size()));
  s.label_begin = static_cast<uint32_t>(b.labels.size());
  s.label_count = static_cast<uint32_t>(sc.refs.size() / 2);
  for (size_t i = 0; i < sc.refs.size(); i += 2) {
    LabelView l{symbols[sc.refs[i]], symbols[sc.refs[i + 1]]};
    if (auto st = detail::checkLabelLimits(idx, l, limits); !st) return st;
    b.labels.push_back(l);
  }
  if (auto st = detail::checkSeries(idx, s, b); !st) return st;
  auto labels = b.labelsOf(s);

  uint32_t meta_index = V2Parts::kNoMetadata;
  if (meta.present) {
    if (meta.help_ref >= symbols.size())
      return fail(at(idx) + "metadata help_ref = " + num(meta.help_ref) + " is out of range (the request has " +
                  num(symbols.size()) + " symbols)");
    if (meta.unit_ref >= symbols.size())
      return fail(at(idx) + "metadata unit_ref = " + num(meta.unit_ref) + " is out of range (the request has " +
                  num(symbols.size()) + " symbols)");
    MetadataView m;
    m.type = static_cast<MetricType>(meta.type);
    m.help = symbols[meta.help_ref];
    m.unit = symbols[meta.unit_ref];
    if (m.type != MetricType::kUnknown) m.family = metadataFamily(core::metricName(labels), m.type);
    if (m.type != MetricType::kUnknown || !m.help.empty() || !m.unit.empty()) meta_index = addMetadata(b, sc, m);
  }
  b.series.push_back(s);
  b.v2.series_metadata.push_back(meta_index);
  return core::Status::Ok();
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view metadataFamily(std::string_view name, MetricType type) {
  auto strip = [&](std::initializer_list<std::string_view> suffixes) {
    for (auto suffix : suffixes)
      if (endsWith(name, suffix)) return name.substr(0, name.size() - suffix.size());
    return name;
  };
  switch (type) {
    case MetricType::kHistogram:
    case MetricType::kGaugeHistogram:
      return strip({"_bucket", "_sum", "_count"});
    case MetricType::kSummary:
      return strip({"_sum", "_count"});
    default:
      return name;
  }
}

core::Status decodeRequestV2(std::string_view buf, const Limits& limits, SeriesBatch& out) {
  out.clear();
  out.protocol = WireProtocol::kV2;
  Scratch& sc = t_scratch;
  sc.symbols.clear();
  sc.family_index.clear();

  // Pass 1: the symbols table (its position in the request is up to the sender).
  size_t series = 0;
  Reader r(buf);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return fail("malformed protobuf at byte " + num(buf.size() - r.remaining()));
    if (wt == wire::kLen && (f == 4 || f == 5)) {
      std::string_view payload;
      if (!r.bytes(payload))
        return fail("truncated protobuf: field " + num(f) + " runs past the end of the request");
      if (f == 5) {
        ++series;
        continue;
      }
      if (!wire::validUtf8(payload)) return fail("symbols[" + num(sc.symbols.size()) + "] is not valid UTF-8");
      sc.symbols.push_back(payload);
    } else if (!r.skip(f, wt)) {
      return fail("malformed protobuf at byte " + num(buf.size() - r.remaining()));
    }
  }
  if (!sc.symbols.empty() && !sc.symbols[0].empty())
    return fail("symbols[0] must be the empty string (remote-write 2.0), it has " + num(sc.symbols[0].size()) +
                " bytes");
  if (series > limits.max_series_per_request)
    return fail("more than " + num(limits.max_series_per_request) +
                " series in one request (--limits.max-series-per-request)");

  // Pass 2: the series, resolved against the complete table.
  Reader r2(buf);
  while (!r2.done()) {
    uint32_t f, wt;
    if (!r2.tag(f, wt)) return fail("malformed protobuf");  // unreachable: pass 1 read the same bytes
    if (wt == wire::kLen && f == 5) {
      std::string_view payload;
      if (!r2.bytes(payload)) return fail("truncated protobuf");
      if (auto st = parseSeries(out.series.size(), payload, limits, sc, out); !st) return st;
    } else if (!r2.skip(f, wt)) {
      return fail("malformed protobuf");
    }
  }
  return core::Status::Ok();
}

}  // namespace cardinal::codec
