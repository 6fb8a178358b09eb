#include "codec/histogram.h"

#include "codec/decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "codec/wire.h"

namespace cardinal::codec {
namespace {

using wire::Reader;

core::Error fail(std::string msg) { return core::Error{"native histogram: " + std::move(msg)}; }

struct Span {
  int32_t offset = 0;
  uint32_t length = 0;
};

bool parseSpan(std::string_view msg, Span& s) {
  Reader r(msg);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return false;
    uint64_t v = 0;
    if (f == 1 && wt == wire::kVarint) {
      if (!r.varint(v)) return false;
      s.offset = wire::zigzagDecode32(v);
    } else if (f == 2 && wt == wire::kVarint) {
      if (!r.varint(v) || v > 0xffffffffu) return false;
      s.length = static_cast<uint32_t>(v);
    } else if (!r.skip(f, wt)) {
      return false;
    }
  }
  return true;
}

// A repeated sint64 field, packed (kLen) or one element (kVarint).
bool readSint64s(Reader& r, uint32_t wt, std::vector<int64_t>& out) {
  uint64_t v = 0;
  if (wt == wire::kVarint) {
    if (!r.varint(v)) return false;
    out.push_back(wire::zigzagDecode64(v));
    return true;
  }
  std::string_view payload;
  if (wt != wire::kLen || !r.bytes(payload)) return false;
  Reader p(payload);
  while (!p.done()) {
    if (!p.varint(v)) return false;
    out.push_back(wire::zigzagDecode64(v));
  }
  return true;
}

// A repeated double field, packed (kLen) or one element (kI64).
bool readDoubles(Reader& r, uint32_t wt, std::vector<double>& out) {
  double d;
  if (wt == wire::kI64) {
    if (!r.f64(d)) return false;
    out.push_back(d);
    return true;
  }
  std::string_view payload;
  if (wt != wire::kLen || !r.bytes(payload) || payload.size() % 8 != 0) return false;
  for (size_t i = 0; i < payload.size(); i += 8) {
    std::memcpy(&d, payload.data() + i, 8);
    out.push_back(d);
  }
  return true;
}

// Expands spans + (deltas or absolute counts) into sorted (index, count).
core::Status expand(const char* side, const std::vector<Span>& spans, const std::vector<int64_t>* deltas,
                    const std::vector<double>* counts, HistogramBuckets& out) {
  const size_t n = deltas ? deltas->size() : counts->size();
  uint64_t want = 0;
  for (size_t k = 0; k < spans.size(); ++k) {
    if (k > 0 && spans[k].offset < 0)
      return fail(std::string(side) + " span " + std::to_string(k + 1) + " has a negative offset");
    want += spans[k].length;
  }
  if (want != n)
    return fail(std::string(side) + " spans need " + std::to_string(want) + " buckets, the message has " +
                std::to_string(n));
  out.clear();
  out.reserve(n);
  int64_t idx = 0, abs = 0;
  size_t b = 0;
  for (size_t k = 0; k < spans.size(); ++k) {
    idx += spans[k].offset;
    for (uint32_t j = 0; j < spans[k].length; ++j, ++idx, ++b) {
      if (idx < std::numeric_limits<int32_t>::min() || idx > std::numeric_limits<int32_t>::max())
        return fail(std::string(side) + " bucket index out of range");
      double c;
      if (deltas) {
        if (__builtin_add_overflow(abs, (*deltas)[b], &abs) || abs < 0)
          return fail(std::string(side) + " bucket " + std::to_string(b + 1) + " has a negative count");
        c = static_cast<double>(abs);
      } else {
        c = (*counts)[b];
        if (!(c >= 0) || std::isinf(c))
          return fail(std::string(side) + " bucket " + std::to_string(b + 1) + " has a negative or non-finite count");
      }
      out.emplace_back(static_cast<int32_t>(idx), c);
    }
  }
  return core::Status::Ok();
}

// ---- encoding ----------------------------------------------------------------

void putVarintField(std::string& out, uint32_t field, uint64_t v) {
  wire::putTag(out, field, wire::kVarint);
  wire::putVarint(out, v);
}

void putSpans(std::string& out, uint32_t field, const HistogramBuckets& b) {
  std::string span;
  size_t k = 0;
  int64_t next = 0;  // index after the previous span
  while (k < b.size()) {
    size_t end = k + 1;
    while (end < b.size() && static_cast<int64_t>(b[end].first) == static_cast<int64_t>(b[end - 1].first) + 1) ++end;
    const int64_t offset = k == 0 ? b[k].first : static_cast<int64_t>(b[k].first) - next;
    span.clear();
    if (offset != 0) putVarintField(span, 1, wire::zigzagEncode64(offset));
    putVarintField(span, 2, end - k);
    wire::putLen(out, field, span);
    next = static_cast<int64_t>(b[end - 1].first) + 1;
    k = end;
  }
}

void putPackedDoubles(std::string& out, uint32_t field, const HistogramBuckets& b) {
  if (b.empty()) return;
  wire::putTag(out, field, wire::kLen);
  wire::putVarint(out, b.size() * 8);
  for (const auto& [i, c] : b) {
    char buf[8];
    std::memcpy(buf, &c, 8);
    out.append(buf, 8);
  }
}

void putPackedDeltas(std::string& out, uint32_t field, const HistogramBuckets& b) {
  if (b.empty()) return;
  std::string packed;
  int64_t prev = 0;
  for (const auto& [i, c] : b) {
    const auto v = static_cast<int64_t>(c);
    wire::putVarint(packed, wire::zigzagEncode64(v - prev));
    prev = v;
  }
  wire::putLen(out, field, packed);
}

bool exactCount(double c) { return c >= 0 && c <= 9007199254740992.0 && std::floor(c) == c; }

bool isZeroBits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  return bits == 0;
}

// ---- arithmetic --------------------------------------------------------------

double lowerBound(int32_t idx, int32_t schema) {
  return idx == std::numeric_limits<int32_t>::min() ? 0 : bucketUpperBound(idx - 1, schema);
}

HistogramBuckets reduceBuckets(const HistogramBuckets& in, int32_t from, int32_t to) {
  HistogramBuckets out;
  out.reserve(in.size());
  for (const auto& [i, c] : in) {
    const int32_t t = reducedBucketIndex(i, from, to);
    if (!out.empty() && out.back().first == t)
      out.back().second += c;
    else
      out.emplace_back(t, c);
  }
  return out;
}

// Zero count of h with the larger `threshold`, raised past a populated bucket
// it cuts through (Prometheus: FloatHistogram.zeroCountForLargerThreshold()).
double zeroCountForLargerThreshold(const NativeHistogram& h, double& threshold) {
  if (threshold == h.zero_threshold) return h.zero_count;
  for (;;) {
    double count = h.zero_count;
    for (const auto& [i, c] : h.positive) {
      if (lowerBound(i, h.schema) >= threshold) break;
      count += c;
      const double upper = bucketUpperBound(i, h.schema);
      if (upper > threshold) {
        if (c != 0) threshold = upper;
        break;
      }
    }
    bool again = false;
    for (const auto& [i, c] : h.negative) {  // ascending index: ascending absolute value
      if (lowerBound(i, h.schema) >= threshold) break;
      count += c;
      const double upper = bucketUpperBound(i, h.schema);
      if (upper > threshold) {
        if (c != 0) {
          threshold = upper;
          again = true;  // the positive side has to be looked at again
        }
        break;
      }
    }
    if (!again) return count;
  }
}

void trimBelow(HistogramBuckets& b, int32_t schema, double threshold) {
  auto keep = std::find_if(b.begin(), b.end(), [&](const auto& x) { return lowerBound(x.first, schema) >= threshold; });
  b.erase(b.begin(), keep);
}

// a += b over sorted bucket lists (b's sign is applied by the caller).
void mergeAdd(HistogramBuckets& a, const HistogramBuckets& b) {
  if (b.empty()) return;
  HistogramBuckets out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].first < a[i].first) {
      out.push_back(b[j++]);
    } else {
      out.emplace_back(a[i].first, a[i].second + b[j].second);
      ++i;
      ++j;
    }
  }
  a.swap(out);
}

double countAt(const HistogramBuckets& b, int32_t idx) {
  auto it = std::lower_bound(b.begin(), b.end(), idx, [](const auto& x, int32_t v) { return x.first < v; });
  return it != b.end() && it->first == idx ? it->second : 0.0;
}

// cur - prev bucket-wise, or nullopt if some bucket of prev is larger.
std::optional<HistogramBuckets> bucketIncrease(const HistogramBuckets& cur, const HistogramBuckets& prev) {
  for (const auto& [i, c] : prev)
    if (c != 0 && countAt(cur, i) < c) return std::nullopt;
  HistogramBuckets out = cur;
  for (auto& [i, c] : out) c = std::max(0.0, c - countAt(prev, i));
  return out;
}

}  // namespace

core::Result<NativeHistogram> decodeHistogram(std::string_view raw) {
  HistogramView view;
  if (!parseHistogramView(raw, view)) return fail("malformed protobuf");
  return decodeHistogram(view);
}

// The scalar fields come from the view (parsed once, by the hot-path
// reader); only the bucket fields are read here.
core::Result<NativeHistogram> decodeHistogram(const HistogramView& view) {
  NativeHistogram h;
  h.schema = view.schema;
  h.zero_threshold = view.zero_threshold;
  h.sum = view.sum;
  h.reset_hint = view.reset_hint;
  const bool count_float = view.count_is_float;
  const bool zero_count_float = view.zero_count_is_float;
  const uint64_t count_int = view.count_int, zero_count_int = view.zero_count_int;
  const double count_f = view.count_float, zero_count_f = view.zero_count_float;
  std::vector<Span> spans[2];            // [0] negative, [1] positive
  std::vector<int64_t> deltas[2];
  std::vector<double> counts[2];
  Reader r(view.raw);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.tag(f, wt)) return fail("malformed protobuf");
    bool ok = true;
    switch (f) {
      case 8:
      case 11: {
        if (wt != wire::kLen) goto unknown;
        std::string_view payload;
        Span s;
        ok = r.bytes(payload) && parseSpan(payload, s);
        if (ok) spans[f == 11].push_back(s);
        break;
      }
      case 9:
      case 12:
        if (wt != wire::kLen && wt != wire::kVarint) goto unknown;
        ok = readSint64s(r, wt, deltas[f == 12]);
        break;
      case 10:
      case 13:
        if (wt != wire::kLen && wt != wire::kI64) goto unknown;
        ok = readDoubles(r, wt, counts[f == 13]);
        break;
      case 16:
        if (wt != wire::kLen && wt != wire::kI64) goto unknown;
        ok = readDoubles(r, wt, h.custom_values);
        break;
      default:
      unknown:
        ok = r.skip(f, wt);
    }
    if (!ok) return fail("malformed protobuf in field " + std::to_string(f));
  }

  const bool custom = h.schema == kCustomBucketsSchema;
  if (!custom && (h.schema < kMinExponentialSchema || h.schema > kMaxExponentialSchema))
    return fail("unsupported schema " + std::to_string(h.schema));
  // The count oneof decides, as Prometheus' IsFloatHistogram(); the zero count follows it.
  if (count_float) {
    if (!(count_f >= 0) || std::isinf(count_f)) return fail("negative or non-finite count");
    h.count = count_f;
    h.zero_count = zero_count_float ? zero_count_f : static_cast<double>(zero_count_int);
  } else {
    h.count = static_cast<double>(count_int);
    h.zero_count = zero_count_float ? zero_count_f : static_cast<double>(zero_count_int);
  }
  if (!(h.zero_count >= 0) || std::isinf(h.zero_count)) return fail("negative or non-finite zero count");
  if (!(h.zero_threshold >= 0) || std::isinf(h.zero_threshold)) return fail("negative or non-finite zero threshold");
  for (int side = 0; side < 2; ++side) {
    const char* name = side ? "positive" : "negative";
    auto st = count_float ? expand(name, spans[side], nullptr, &counts[side], side ? h.positive : h.negative)
                          : expand(name, spans[side], &deltas[side], nullptr, side ? h.positive : h.negative);
    if (!st) return core::Error{st.error()};
  }
  if (custom) {
    if (!h.negative.empty()) return fail("custom buckets with negative buckets");
    if (h.zero_count != 0 || h.zero_threshold != 0) return fail("custom buckets with a zero bucket");
    for (size_t k = 0; k < h.custom_values.size(); ++k) {
      const double b = h.custom_values[k];
      if (std::isnan(b) || std::isinf(b)) return fail("custom bound " + std::to_string(k + 1) + " is not finite");
      if (k > 0 && !(b > h.custom_values[k - 1])) return fail("custom bounds not strictly increasing");
    }
    if (!h.positive.empty() &&
        (h.positive.front().first < 0 || static_cast<size_t>(h.positive.back().first) > h.custom_values.size()))
      return fail("bucket index outside the custom bounds");
  } else if (!h.custom_values.empty()) {
    return fail("custom bounds with exponential schema " + std::to_string(h.schema));
  }
  return h;
}

bool hasIntegerCounts(const NativeHistogram& h) {
  if (!exactCount(h.count) || !exactCount(h.zero_count)) return false;
  for (const auto* side : {&h.positive, &h.negative})
    for (const auto& [i, c] : *side)
      if (!exactCount(c)) return false;
  return true;
}

void encodeHistogram(const NativeHistogram& h, std::string& out, HistogramEncoding encoding) {
  const bool integer = encoding == HistogramEncoding::kIntegerIfExact && hasIntegerCounts(h);
  // The oneof members are written even when zero: they say integer or float.
  if (integer)
    putVarintField(out, 1, static_cast<uint64_t>(h.count));
  else
    wire::putDouble(out, 2, h.count);
  if (!isZeroBits(h.sum)) wire::putDouble(out, 3, h.sum);
  if (h.schema != 0) putVarintField(out, 4, wire::zigzagEncode64(h.schema));
  if (!isZeroBits(h.zero_threshold)) wire::putDouble(out, 5, h.zero_threshold);
  if (integer)
    putVarintField(out, 6, static_cast<uint64_t>(h.zero_count));
  else
    wire::putDouble(out, 7, h.zero_count);
  putSpans(out, 8, h.negative);
  if (integer)
    putPackedDeltas(out, 9, h.negative);
  else
    putPackedDoubles(out, 10, h.negative);
  putSpans(out, 11, h.positive);
  if (integer)
    putPackedDeltas(out, 12, h.positive);
  else
    putPackedDoubles(out, 13, h.positive);
  if (h.reset_hint != 0) putVarintField(out, 14, static_cast<uint64_t>(static_cast<uint32_t>(h.reset_hint)));
  if (!h.custom_values.empty()) {
    wire::putTag(out, 16, wire::kLen);
    wire::putVarint(out, h.custom_values.size() * 8);
    for (double b : h.custom_values) {
      char buf[8];
      std::memcpy(buf, &b, 8);
      out.append(buf, 8);
    }
  }
}

int32_t reducedBucketIndex(int32_t idx, int32_t from, int32_t to) {
  // C++20 defines >> on negative values as an arithmetic shift. int64 keeps
  // idx - 1 from overflowing at INT32_MIN.
  return static_cast<int32_t>(((static_cast<int64_t>(idx) - 1) >> (from - to)) + 1);
}

double bucketUpperBound(int32_t idx, int32_t schema) {
  if (schema < 0) {
    const int64_t exp = static_cast<int64_t>(idx) * (int64_t{1} << -schema);
    if (exp == 1024) return std::numeric_limits<double>::max();  // the last finite bucket
    return std::ldexp(1.0, static_cast<int>(std::clamp<int64_t>(exp, -4000, 4000)));
  }
  const int32_t frac_idx = idx & ((1 << schema) - 1);
  const int64_t exp = (static_cast<int64_t>(idx) >> schema) + 1;
  if (frac_idx == 0 && exp == 1025) return std::numeric_limits<double>::max();
  // Prometheus tabulates frac = 2^(frac_idx / 2^schema) / 2 in [0.5, 1).
  const double frac = std::exp2(static_cast<double>(frac_idx) / static_cast<double>(1 << schema)) / 2;
  return std::ldexp(frac, static_cast<int>(std::clamp<int64_t>(exp, -4000, 4000)));
}

void reduceResolution(NativeHistogram& h, int32_t target_schema) {
  if (h.customBuckets() || target_schema >= h.schema) return;
  h.positive = reduceBuckets(h.positive, h.schema, target_schema);
  h.negative = reduceBuckets(h.negative, h.schema, target_schema);
  h.schema = target_schema;
}

double widenZeroBucket(NativeHistogram& h, double threshold) {
  if (h.customBuckets() || !(threshold > h.zero_threshold)) return h.zero_threshold;
  double t = threshold;
  h.zero_count = zeroCountForLargerThreshold(h, t);
  h.zero_threshold = t;
  trimBelow(h.positive, h.schema, t);
  trimBelow(h.negative, h.schema, t);
  return t;
}

std::optional<NativeHistogram> counterIncrease(const NativeHistogram& cur, const NativeHistogram& prev) {
  if (cur.reset_hint == kResetYes) return std::nullopt;
  if (cur.count < prev.count) return std::nullopt;
  if (cur.customBuckets() != prev.customBuckets()) return std::nullopt;
  if (cur.customBuckets() && cur.custom_values != prev.custom_values) return std::nullopt;
  if (cur.schema > prev.schema) return std::nullopt;
  if (cur.zero_threshold < prev.zero_threshold) return std::nullopt;

  NativeHistogram p = prev;  // brought to cur's schema and zero threshold
  reduceResolution(p, cur.schema);
  if (cur.zero_threshold > p.zero_threshold && widenZeroBucket(p, cur.zero_threshold) != cur.zero_threshold)
    return std::nullopt;  // cur's threshold cuts through a populated bucket of prev
  if (cur.zero_count < p.zero_count) return std::nullopt;
  auto pos = bucketIncrease(cur.positive, p.positive);
  if (!pos) return std::nullopt;
  auto neg = bucketIncrease(cur.negative, p.negative);
  if (!neg) return std::nullopt;

  NativeHistogram inc;
  inc.schema = cur.schema;
  inc.zero_threshold = cur.zero_threshold;
  inc.custom_values = cur.custom_values;
  inc.reset_hint = cur.reset_hint;
  inc.count = cur.count - p.count;
  inc.zero_count = cur.zero_count - p.zero_count;
  inc.sum = cur.sum - p.sum;
  inc.positive = std::move(*pos);
  inc.negative = std::move(*neg);
  return inc;
}

void addHistogram(NativeHistogram& acc, NativeHistogram h) {
  if (!acc.customBuckets()) {
    if (h.schema < acc.schema) reduceResolution(acc, h.schema);
    else if (h.schema > acc.schema) reduceResolution(h, acc.schema);
    // Prometheus' reconcileZeroBuckets(): widen either side until they agree.
    while (acc.zero_threshold != h.zero_threshold) {
      if (acc.zero_threshold > h.zero_threshold) widenZeroBucket(h, acc.zero_threshold);
      if (h.zero_threshold > acc.zero_threshold) widenZeroBucket(acc, h.zero_threshold);
    }
    acc.zero_count += h.zero_count;
    mergeAdd(acc.negative, h.negative);
  }
  acc.count += h.count;
  acc.sum += h.sum;
  mergeAdd(acc.positive, h.positive);
}

}  // namespace cardinal::codec
