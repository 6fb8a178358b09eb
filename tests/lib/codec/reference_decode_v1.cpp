// The 1.0 decoder as it was before its fast path (lib/codec/decode.cpp at
// 072487c), kept verbatim apart from its namespace (and the one call that
// names it, as argument lookup would find codec::parseHistogramView): the oracle of
// decode_reference_test.cpp, which requires the current decoder to accept,
// produce and refuse (with the same message) exactly what this one does.
#include "codec/decode.h"

#include <algorithm>
#include <string>

#include "codec/decode_errors.h"
#include "codec/wire.h"

namespace cardinal::codec::reference_v1 {

using namespace cardinal::codec;  // the batch types; the functions below are this namespace's own

bool parseHistogramView(std::string_view msg, HistogramView& h);
core::Status decodeWriteRequest(std::string_view buf, const Limits& limits, SeriesBatch& out);

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
        if (!reference_v1::parseHistogramView(payload, h)) return fail(at(idx) + "malformed native histogram");
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
  Reader r(buf);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return fail("malformed protobuf at byte " + std::to_string(buf.size() - r.remaining()));
    if (wt == wire::kLen && (f == 1 || f == 3)) {
      std::string_view payload;
      if (!r.bytes(payload))
        return fail("truncated protobuf: field " + std::to_string(f) + " runs past the end of the request");
      if (f == 1) {
        if (out.series.size() >= limits.max_series_per_request)
          return fail("more than " + std::to_string(limits.max_series_per_request) +
                      " series in one request (--limits.max-series-per-request)");
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

}  // namespace cardinal::codec::reference_v1
