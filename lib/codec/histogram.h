#pragma once
// Native (sparse) histograms on cold paths: the merge engine decodes a
// HistogramView's raw prometheus.Histogram bytes into a NativeHistogram with
// absolute bucket counts, does bucket-wise arithmetic on it and encodes the
// result. The forwarding hot path never expands buckets.
//
// Bucket model (Prometheus, model/histogram): with an exponential schema s in
// [-4, 8], positive bucket i holds observations in (b^(i-1), b^i] with
// b = 2^(2^-s); negative bucket i the mirror image [-b^i, -b^(i-1)); the zero
// bucket [-zero_threshold, zero_threshold] holds the rest. Each step down in
// schema merges pairs of buckets. Schema -53 ("custom buckets", NHCB) has
// explicit upper bounds: bucket i is (custom_values[i-1], custom_values[i]],
// bucket len(custom_values) ends at +Inf; it has no negative or zero buckets.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/batch.h"
#include "core/result.h"

namespace cardinal::codec {

inline constexpr int32_t kCustomBucketsSchema = -53;
inline constexpr int32_t kMinExponentialSchema = -4;
inline constexpr int32_t kMaxExponentialSchema = 8;

// prometheus.Histogram.ResetHint.
enum ResetHint : int32_t { kResetUnknown = 0, kResetYes = 1, kResetNo = 2, kResetGauge = 3 };

// (bucket index, absolute count), sorted by index, indices unique.
using HistogramBuckets = std::vector<std::pair<int32_t, double>>;

struct NativeHistogram {
  int32_t schema = 0;
  double zero_threshold = 0;
  double zero_count = 0;
  double count = 0;
  double sum = 0;
  int32_t reset_hint = kResetUnknown;
  HistogramBuckets positive;
  HistogramBuckets negative;
  std::vector<double> custom_values;  // schema -53 only

  bool customBuckets() const { return schema == kCustomBucketsSchema; }
  bool operator==(const NativeHistogram&) const = default;
};

// Decodes a prometheus.Histogram message: integer histograms (count_int,
// spans + deltas) and float histograms (count_float, spans + counts), chosen
// by which member of the `count` oneof is set, as Prometheus does. Validates
// what the arithmetic below relies on: schema in [-4, 8] or -53, spans
// matching the bucket counts, counts finite and not negative, a finite
// non-negative zero threshold, bucket indices in int32, and for -53 strictly
// increasing finite bounds covering every bucket, no zero or negative
// buckets. The timestamp (field 15) is not part of NativeHistogram.
core::Result<NativeHistogram> decodeHistogram(std::string_view raw);
core::Result<NativeHistogram> decodeHistogram(const HistogramView& view);

enum class HistogramEncoding {
  kFloat,            // count_float, zero_count_float, spans + absolute counts
  kIntegerIfExact,   // count_int, zero_count_int, spans + deltas when every count is an
                     // integer in [0, 2^53]; otherwise as kFloat
};

// Appends the fields of a prometheus.Histogram message (everything but the
// timestamp, field 15, which the caller appends) to `out`. Buckets are written
// as given, zero-count ones included; adjacent indices share a span.
void encodeHistogram(const NativeHistogram& h, std::string& out,
                     HistogramEncoding encoding = HistogramEncoding::kFloat);

// Whether encoding kIntegerIfExact writes an integer histogram.
bool hasIntegerCounts(const NativeHistogram& h);

// ---- bucket arithmetic (exponential schemas unless said otherwise) ----------

// The index at schema `to` (<= `from`) of the bucket holding bucket `idx` of
// schema `from`: ceil(idx / 2^(from - to)), written as Prometheus' targetIdx()
// (model/histogram/float_histogram.go): ((idx - 1) >> (from - to)) + 1, an
// arithmetic shift, i.e. floor division, also for negative indices.
int32_t reducedBucketIndex(int32_t idx, int32_t from, int32_t to);

// Upper bound of positive bucket `idx` at exponential schema `schema`
// (Prometheus' getBoundExponential(), including its math.MaxFloat64 case).
double bucketUpperBound(int32_t idx, int32_t schema);

// Merges the buckets down to `target_schema` (<= h.schema; no-op if equal).
void reduceResolution(NativeHistogram& h, int32_t target_schema);

// Widens the zero bucket to at least `threshold` (no-op unless larger than
// h.zero_threshold): buckets whose lower bound is below it are folded into the
// zero count; if the threshold cuts through a populated bucket, it is raised
// to that bucket's upper bound, as Prometheus' zeroCountForLargerThreshold()
// and trimBucketsInZeroBucket() do. Returns the zero threshold now in h.
double widenZeroBucket(NativeHistogram& h, double threshold);

// The counter increase from `prev` to `cur` of one series, or nullopt if
// `cur` is a counter reset. Reset detection follows Prometheus'
// FloatHistogram.DetectReset(): reset_hint YES; count decreased; a change
// between exponential and custom buckets or of the custom bounds; a finer
// schema; a smaller zero threshold; a larger zero threshold that cuts through
// a populated bucket of `prev`; a smaller zero count or a smaller (or missing)
// bucket once `prev` is brought to cur's schema and zero threshold (in that
// order: Prometheus widens the zero bucket at prev's own schema first, which
// only differs for a threshold that is no bucket boundary of cur's schema). Unlike
// Prometheus a NO hint is not trusted: a decrease is a reset regardless, as a
// negative increase would break a merged counter. The increase has cur's
// layout; its sum is cur.sum - prev.sum (it may be negative).
std::optional<NativeHistogram> counterIncrease(const NativeHistogram& cur, const NativeHistogram& prev);

// acc += h bucket-wise. Exponential: both are brought to the smaller schema
// and the larger zero threshold first (Prometheus' FloatHistogram.Add()), so
// acc's schema only goes down and its zero threshold only up. Custom buckets:
// the caller guarantees equal custom_values. Count, zero count and sum add up.
void addHistogram(NativeHistogram& acc, NativeHistogram h);

}  // namespace cardinal::codec
