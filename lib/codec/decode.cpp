#include "codec/decode.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "codec/decode_errors.h"
#include "codec/wire.h"

namespace cardinal::codec {
namespace {

using wire::Reader;

using detail::at;
using detail::fail;
using detail::quoted;

bool parseLabel(std::string_view msg, LabelView& out) {
  // The form every sender writes: name (tag 0x0a) then value (tag 0x12), each
  // shorter than 128 bytes (one-byte lengths), nothing else.
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  const size_t n = msg.size();
  if (n >= 4 && p[0] == 0x0a && p[1] < 0x80) {
    const size_t name_len = p[1];
    const size_t v = 2 + name_len;  // where the value's tag sits
    if (v + 2 <= n && p[v] == 0x12 && p[v + 1] < 0x80 && v + 2 + p[v + 1] == n) {
      out.name = msg.substr(2, name_len);
      out.value = msg.substr(v + 2);
      return true;
    }
  }
  Reader r(msg);
  out = {};
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    if (f == 1 && wt == wire::kLen) {
      if (!r.bytes(out.name)) return false;
    } else if (f == 2 && wt == wire::kLen) {
      if (!r.bytes(out.value)) return false;
    } else if (!r.skip(f, wt)) {
      return false;
    }
  }
  return true;
}

bool parseSample(std::string_view msg, Sample& out) {
  Reader r(msg);
  out = {};
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    if (f == 1 && wt == wire::kI64) {
      if (!r.f64(out.value)) return false;
    } else if (f == 2 && wt == wire::kVarint) {
      uint64_t v = 0;
      if (!r.varint(v)) return false;
      out.timestamp = static_cast<int64_t>(v);
    } else if (!r.skip(f, wt)) {
      return false;
    }
  }
  return true;
}

// Checks a repeated scalar field, packed or not, without expanding it.
bool checkPackedVarints(std::string_view payload) {
  Reader r(payload);
  uint64_t v = 0;
  while (!r.done())
    if (!r.varint(v)) return false;
  return true;
}

bool checkSpan(std::string_view msg) {
  Reader r(msg);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt) || !r.skip(f, wt)) return false;
  }
  return true;
}

bool parseMetadata(std::string_view msg, MetadataView& m) {
  Reader r(msg);
  m = {};
  m.raw = msg;
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    bool ok;
    if (f == 1 && wt == wire::kVarint) {
      uint64_t v = 0;
      ok = r.varint(v);
      m.type = static_cast<MetricType>(static_cast<int32_t>(v));
    } else if (f == 2 && wt == wire::kLen) {
      ok = r.bytes(m.family);
    } else if (f == 4 && wt == wire::kLen) {
      ok = r.bytes(m.help);
    } else if (f == 5 && wt == wire::kLen) {
      ok = r.bytes(m.unit);
    } else {
      ok = r.skip(f, wt);
    }
    if (!ok) return false;
  }
  return wire::validUtf8(m.family) && wire::validUtf8(m.help) && wire::validUtf8(m.unit);
}

// `raw`: the label's encoded message; when it is all ASCII (tags and one-byte
// lengths are), name and value are valid UTF-8 in one pass over both.
core::Status checkLabel(size_t idx, const LabelView& l, const Limits& limits, std::string_view raw = {}) {
  if (auto st = detail::checkLabelLimits(idx, l, limits); !st) return st;
  if (!raw.empty() && wire::isAscii(raw)) return core::Status::Ok();
  if (!wire::validUtf8(l.name)) return fail(at(idx) + "label name is not valid UTF-8");
  if (!wire::validUtf8(l.value)) return fail(at(idx) + "value of label " + quoted(l.name) + " is not valid UTF-8");
  return core::Status::Ok();
}

core::Status parseSeries(size_t idx, std::string_view msg, const Limits& limits, SeriesBatch& b) {
  Series s;
  s.raw = msg;
  s.label_begin = static_cast<uint32_t>(b.labels.size());
  s.sample_begin = static_cast<uint32_t>(b.samples.size());
  s.histogram_begin = static_cast<uint32_t>(b.histograms.size());
  s.exemplar_begin = static_cast<uint32_t>(b.exemplars.size());
  Reader r(msg);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return fail(at(idx) + "malformed protobuf");
    std::string_view payload;
    if (wt != wire::kLen || f < 1 || f > 4) {
      if (!r.skip(f, wt)) return fail(at(idx) + "malformed protobuf");
      continue;
    }
    if (!r.bytes(payload)) return fail(at(idx) + "truncated protobuf field");
    switch (f) {
      case 1: {
        LabelView l;
        if (!parseLabel(payload, l)) return fail(at(idx) + "malformed label");
        if (++s.label_count > limits.max_labels_per_series)
          return fail(at(idx) + "more than " + std::to_string(limits.max_labels_per_series) +
                      " labels (--limits.max-labels-per-series)");
        if (auto st = checkLabel(idx, l, limits, payload); !st) return st;
        b.labels.push_back(l);
        break;
      }
      case 2: {
        Sample smp;
        if (!parseSample(payload, smp)) return fail(at(idx) + "malformed sample");
        b.samples.push_back(smp);
        ++s.sample_count;
        break;
      }
      case 3: {
        ExemplarView e;
        e.label_begin = static_cast<uint32_t>(b.exemplar_labels.size());
        Reader er(payload);
        while (!er.done()) {
          uint32_t ef, ewt;
          if (!er.tag(ef, ewt)) return fail(at(idx) + "malformed exemplar");
          bool ok;
          if (ef == 1 && ewt == wire::kLen) {
            std::string_view lp;
            LabelView l;
            ok = er.bytes(lp) && parseLabel(lp, l) && wire::validUtf8(l.name) && wire::validUtf8(l.value);
            if (ok) {
              b.exemplar_labels.push_back(l);
              ++e.label_count;
            }
          } else if (ef == 2 && ewt == wire::kI64) {
            ok = er.f64(e.value);
          } else if (ef == 3 && ewt == wire::kVarint) {
            uint64_t v = 0;
            ok = er.varint(v);
            e.timestamp = static_cast<int64_t>(v);
          } else {
            ok = er.skip(ef, ewt);
          }
          if (!ok) return fail(at(idx) + "malformed exemplar");
        }
        b.exemplars.push_back(e);
        ++s.exemplar_count;
        break;
      }
      case 4: {
        HistogramView h;
        if (!parseHistogramView(payload, h)) return fail(at(idx) + "malformed native histogram");
        b.histograms.push_back(h);
        ++s.histogram_count;
        break;
      }
    }
  }

  if (auto st = detail::checkSeries(idx, s, b); !st) return st;
  b.series.push_back(s);
  return core::Status::Ok();
}

// The limits fastSeries needs, read once per request (kept in registers: the
// batch's stores could alias a Limits the decoder only has by reference).
struct FastLimits {
  size_t max_labels;
  size_t max_name;
  size_t max_value;
  bool short_ok;  // no one-byte length exceeds the name and value limits
  const core::HashKey& key;  // for Series::wire_check
  explicit FastLimits(const Limits& l)
      : max_labels(l.max_labels_per_series),
        max_name(l.max_label_name_bytes),
        max_value(l.max_label_value_bytes),
        short_ok(max_name >= 127 && max_value >= 127),
        key(core::HashKey::random()) {}
};

// The fast path for a series as every sender writes it: only labels (field 1)
// and samples (field 2), each shorter than 128 bytes; labels as name (0x0a)
// then value (0x12) with one-byte lengths, all ASCII, sorted, unique, within
// the limits and with a non-empty __name__; samples as value (0x09) then
// timestamp (0x10), in timestamp order. Labels, limits, sortedness, __name__
// and the hash are done in one pass over the bytes. Appends the series' labels
// and samples to `b` and fills `s` exactly as parseSeries would; returns
// false for anything else, with `b` possibly holding partial labels and
// samples of the series (the caller truncates them and runs parseSeries, which
// then accepts or explains the refusal exactly as before).
bool fastSeries(std::string_view msg, const FastLimits limits, SeriesBatch& b, Series& s) {
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  const auto* const end = p + msg.size();
  const size_t max_name = limits.max_name;
  const size_t max_value = limits.max_value;
  const bool short_ok = limits.short_ok;
  uint64_t bits = 0;  // every name and value byte ORed: ASCII iff no bit 7 is set
  uint64_t h = core::kLabelsHashSeed;
  uint32_t label_count = 0;
  bool has_name = false;
  const char* prev_name = nullptr;
  size_t prev_len = 0;
  int64_t last_ts = INT64_MIN;
  const char* label_end = msg.data();  // the end of the last label field
  while (p < end) {
    if (end - p < 2 || p[1] >= 0x80) return false;
    const size_t len = p[1];
    const uint8_t* q = p + 2;
    if (static_cast<size_t>(end - q) < len) return false;
    if (p[0] == 0x0a) {
      // Label: 0x0a nl name 0x12 vl value, exactly `len` bytes.
      // As len < 128 and nl + vl + 4 == len, both lengths are one byte.
      if (len < 4 || q[0] != 0x0a) return false;
      const size_t nl = q[1];
      if (nl + 4 > len || q[2 + nl] != 0x12) return false;
      const size_t vl = q[3 + nl];
      if (nl + vl + 4 != len || nl == 0) return false;
      if (!short_ok && (nl > max_name || vl > max_value)) return false;
      ++label_count;
      const char* name = reinterpret_cast<const char*>(q + 2);
      const char* value = reinterpret_cast<const char*>(q + 4 + nl);
      // Sorted and unique: most neighbours differ in their first byte.
      if (prev_name != nullptr) {
        const auto a = static_cast<uint8_t>(prev_name[0]), c = static_cast<uint8_t>(name[0]);
        if (a >= c) {
          if (a > c) return false;  // unsorted: parseSeries sorts it
          const int cmp = std::string_view(prev_name, prev_len).compare(std::string_view(name, nl));
          if (cmp >= 0) return false;  // unsorted or a duplicate
        }
      }
      prev_name = name;
      prev_len = nl;
      if (nl == core::kMetricNameLabel.size() && std::memcmp(name, core::kMetricNameLabel.data(), nl) == 0) {
        has_name = vl != 0;
        s.name = std::string_view(value, vl);
      } else if (nl == 2 && name[0] == 'l' && name[1] == 'e') {
        s.has_le = true;
      } else if (nl == 8 && std::memcmp(name, "quantile", 8) == 0) {
        s.has_quantile = true;
      }
      // The hash reads every byte of name and value: it also collects them for
      // the ASCII check (tags and one-byte lengths are ASCII).
      h = core::hashBytesOr(std::string_view(value, vl), core::hashBytesOr(std::string_view(name, nl), h, bits), bits);
      b.labels.push_back({std::string_view(name, nl), std::string_view(value, vl)});
      label_end = value + vl;
    } else if (p[0] == 0x12) {
      // Sample: 0x09 double 0x10 varint, exactly `len` bytes.
      if (len < 11 || q[0] != 0x09 || q[9] != 0x10) return false;
      Sample smp;
      std::memcpy(&smp.value, q + 1, 8);
      // The timestamp varint fills the rest: k bytes, all but the last with
      // bit 7 set (what Reader::varint then done() accept).
      const size_t k = len - 10;
      uint64_t ts;
      if (k <= 8) {  // one word: the sample's last 8 bytes (len >= 11, so inside it)
        uint64_t w;
        std::memcpy(&w, q + len - 8, 8);
        const uint64_t x = w >> (64 - 8 * k);  // the k bytes, the first one lowest
        const uint64_t cont = 0x8080808080808080ULL >> (64 - 8 * k);
        if ((x & cont) != (cont >> 8)) return false;
        ts = (x & 0x7f) | ((x >> 1) & (0x7fULL << 7)) | ((x >> 2) & (0x7fULL << 14)) | ((x >> 3) & (0x7fULL << 21)) |
             ((x >> 4) & (0x7fULL << 28)) | ((x >> 5) & (0x7fULL << 35)) | ((x >> 6) & (0x7fULL << 42)) |
             ((x >> 7) & (0x7fULL << 49));
      } else {
        wire::Reader r(std::string_view(reinterpret_cast<const char*>(q + 10), k));
        if (!r.varint(ts) || !r.done()) return false;
      }
      smp.timestamp = static_cast<int64_t>(ts);
      if (smp.timestamp < last_ts) return false;
      last_ts = smp.timestamp;
      b.samples.push_back(smp);
      ++s.sample_count;
    } else {
      return false;
    }
    p = q + len;
  }
  if (!has_name || label_count > limits.max_labels) return false;
  if ((bits & 0x8080808080808080ULL) != 0) return false;  // not all ASCII: parseSeries checks UTF-8
  s.label_count = label_count;
  s.hash = core::finishLabelsHash(h, label_count);
  s.input_hash = s.hash;
  s.canonical = true;
  s.wire_check = core::labelWireCheck(msg.substr(0, static_cast<size_t>(label_end - msg.data())), limits.key);
  s.shaped = true;
  return true;
}

}  // namespace

bool parseHistogramView(std::string_view msg, HistogramView& h) {
  Reader r(msg);
  h = {};
  h.raw = msg;
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    uint64_t v = 0;
    std::string_view payload;
    bool ok = true;
    switch (f) {
      case 1:
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(h.count_int);
        h.count_is_float = false;
        break;
      case 2:
        if (wt != wire::kI64) goto unknown;
        ok = r.f64(h.count_float);
        h.count_is_float = true;
        break;
      case 3:
        if (wt != wire::kI64) goto unknown;
        ok = r.f64(h.sum);
        break;
      case 4:
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(v);
        h.schema = wire::zigzagDecode32(v);
        break;
      case 5:
        if (wt != wire::kI64) goto unknown;
        ok = r.f64(h.zero_threshold);
        break;
      case 6:
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(h.zero_count_int);
        h.zero_count_is_float = false;
        break;
      case 7:
        if (wt != wire::kI64) goto unknown;
        ok = r.f64(h.zero_count_float);
        h.zero_count_is_float = true;
        break;
      case 8:
      case 11:  // bucket spans
        if (wt != wire::kLen) goto unknown;
        ok = r.bytes(payload) && checkSpan(payload);
        break;
      case 9:
      case 12:  // sint64 deltas, packed or not
        if (wt == wire::kLen) ok = r.bytes(payload) && checkPackedVarints(payload);
        else if (wt == wire::kVarint) ok = r.varint(v);
        else goto unknown;
        break;
      case 10:
      case 13:
      case 16:  // doubles, packed or not
        if (wt == wire::kLen) ok = r.bytes(payload) && payload.size() % 8 == 0;
        else if (wt == wire::kI64) ok = r.skip(f, wt);
        else goto unknown;
        break;
      case 14:
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(v);
        h.reset_hint = static_cast<int32_t>(v);
        break;
      case 15:
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(v);
        h.timestamp = static_cast<int64_t>(v);
        break;
      case 17:  // start_timestamp (remote-write 2.0)
        if (wt != wire::kVarint) goto unknown;
        ok = r.varint(v);
        h.start_timestamp = static_cast<int64_t>(v);
        break;
      default:
      unknown:
        ok = r.skip(f, wt);
    }
    if (!ok) return false;
  }
  return true;
}

core::Status decodeWriteRequest(std::string_view buf, const Limits& limits, SeriesBatch& out) {
  out.clear();
  const FastLimits fast_limits(limits);
  const size_t max_series = limits.max_series_per_request;
  Reader r(buf);
  while (!r.done()) {
    uint32_t f, wt;
    if (*r.p == 0x0a) {  // a series (field 1, length-delimited): the common case
      ++r.p;
      f = 1;
      wt = wire::kLen;
    } else if (!r.tag(f, wt)) {
      return fail("malformed protobuf at byte " + std::to_string(buf.size() - r.remaining()));
    }
    if (wt == wire::kLen && (f == 1 || f == 3)) {
      std::string_view payload;
      if (!r.bytes(payload))
        return fail("truncated protobuf: field " + std::to_string(f) + " runs past the end of the request");
      if (f == 1) {
        if (out.series.size() >= max_series)
          return fail("more than " + std::to_string(limits.max_series_per_request) +
                      " series in one request (--limits.max-series-per-request)");
        // Built in place; taken back if the fast path declines.
        Series& s = out.series.emplace_back();
        s.raw = payload;
        s.label_begin = static_cast<uint32_t>(out.labels.size());
        s.sample_begin = static_cast<uint32_t>(out.samples.size());
        s.histogram_begin = static_cast<uint32_t>(out.histograms.size());
        s.exemplar_begin = static_cast<uint32_t>(out.exemplars.size());
        if (fastSeries(payload, fast_limits, out, s)) continue;
        out.labels.resize(s.label_begin);
        out.samples.resize(s.sample_begin);
        out.series.pop_back();  // (with whatever shape the fast path had noted)
        if (auto st = parseSeries(out.series.size(), payload, limits, out); !st) return st;
      } else {
        MetadataView m;
        if (!parseMetadata(payload, m))
          return fail("metadata " + std::to_string(out.metadata.size()) + ": malformed");
        out.metadata.push_back(m);
      }
    } else if (!r.skip(f, wt)) {
      return fail("malformed protobuf at byte " + std::to_string(buf.size() - r.remaining()));
    }
  }
  return core::Status::Ok();
}

std::vector<size_t> splitPoints(std::string_view buf, size_t parts) {
  std::vector<size_t> cuts;
  if (parts < 2) return cuts;
  Reader r(buf);
  size_t k = 1;
  while (!r.done() && k < parts) {
    const size_t at = buf.size() - r.remaining();
    if (at > 0 && at >= buf.size() * k / parts && (cuts.empty() || at > cuts.back())) {
      cuts.push_back(at);
      while (k < parts && buf.size() * k / parts <= at) ++k;  // a long field may pass several marks
      continue;
    }
    uint32_t field, wire_type;
    if (!r.tag(field, wire_type) || !r.skip(field, wire_type)) return {};
  }
  return cuts;
}

}  // namespace cardinal::codec
