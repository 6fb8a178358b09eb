#include "codec/histogram.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "remote_write_v1.pb.h"

using namespace cardinal;
using codec::HistogramBuckets;
using codec::NativeHistogram;

namespace {

void addSpan(google::protobuf::RepeatedPtrField<prometheus::BucketSpan>* spans, int32_t offset, uint32_t length) {
  auto* s = spans->Add();
  s->set_offset(offset);
  s->set_length(length);
}

NativeHistogram decodeOk(const std::string& raw) {
  auto r = codec::decodeHistogram(raw);
  REQUIRE_MESSAGE(r.ok(), r.error());
  return std::move(r).value();
}

std::string encode(const NativeHistogram& h, codec::HistogramEncoding enc = codec::HistogramEncoding::kFloat) {
  std::string out;
  codec::encodeHistogram(h, out, enc);
  return out;
}

prometheus::Histogram parse(const std::string& raw) {
  prometheus::Histogram p;
  REQUIRE(p.ParseFromString(raw));
  return p;
}

// An integer histogram as Prometheus' client libraries send it: schema 1,
// positive buckets 0,1 | gap 2 | 4,5,6; negative bucket -1,0; zero bucket.
prometheus::Histogram integerProto() {
  prometheus::Histogram p;
  p.set_count_int(31);
  p.set_sum(42.5);
  p.set_schema(1);
  p.set_zero_threshold(std::ldexp(1.0, -128));
  p.set_zero_count_int(2);
  addSpan(p.mutable_positive_spans(), 0, 2);
  addSpan(p.mutable_positive_spans(), 2, 3);
  for (int64_t d : {3, 2, -4, 10, -6}) p.add_positive_deltas(d);  // 3 5 1 11 5
  addSpan(p.mutable_negative_spans(), -1, 2);
  for (int64_t d : {1, 1}) p.add_negative_deltas(d);  // 1 2
  p.set_reset_hint(prometheus::Histogram::NO);
  p.set_timestamp(1234);
  return p;
}

}  // namespace

TEST_CASE("histogram codec: an integer histogram decodes into absolute buckets by index") {
  NativeHistogram h = decodeOk(integerProto().SerializeAsString());
  CHECK(h.schema == 1);
  CHECK(h.count == 31);
  CHECK(h.sum == 42.5);
  CHECK(h.zero_threshold == std::ldexp(1.0, -128));
  CHECK(h.zero_count == 2);
  CHECK(h.reset_hint == codec::kResetNo);
  CHECK(h.positive == HistogramBuckets{{0, 3}, {1, 5}, {4, 1}, {5, 11}, {6, 5}});
  CHECK(h.negative == HistogramBuckets{{-1, 1}, {0, 2}});
  CHECK(h.custom_values.empty());
}

TEST_CASE("histogram codec: encode writes a float histogram that the generated classes read back") {
  NativeHistogram h = decodeOk(integerProto().SerializeAsString());
  prometheus::Histogram p = parse(encode(h));
  CHECK(p.count_case() == prometheus::Histogram::kCountFloat);
  CHECK(p.zero_count_case() == prometheus::Histogram::kZeroCountFloat);
  CHECK(p.count_float() == 31);
  CHECK(p.zero_count_float() == 2);
  CHECK(p.sum() == 42.5);
  CHECK(p.schema() == 1);
  CHECK(p.zero_threshold() == std::ldexp(1.0, -128));
  CHECK(p.reset_hint() == prometheus::Histogram::NO);
  CHECK(p.positive_deltas_size() == 0);
  REQUIRE(p.positive_spans_size() == 2);
  CHECK(p.positive_spans(0).offset() == 0);
  CHECK(p.positive_spans(0).length() == 2);
  CHECK(p.positive_spans(1).offset() == 2);
  CHECK(p.positive_spans(1).length() == 3);
  CHECK(std::vector<double>(p.positive_counts().begin(), p.positive_counts().end()) ==
        std::vector<double>{3, 5, 1, 11, 5});
  REQUIRE(p.negative_spans_size() == 1);
  CHECK(p.negative_spans(0).offset() == -1);
  CHECK(p.negative_spans(0).length() == 2);
  CHECK(std::vector<double>(p.negative_counts().begin(), p.negative_counts().end()) == std::vector<double>{1, 2});
  CHECK(p.timestamp() == 0);  // the caller appends field 15
  // And the float form decodes to the same histogram.
  CHECK(decodeOk(encode(h)) == h);
}

TEST_CASE("histogram codec: integer encoding when every count is exact, float otherwise") {
  NativeHistogram h = decodeOk(integerProto().SerializeAsString());
  prometheus::Histogram p = parse(encode(h, codec::HistogramEncoding::kIntegerIfExact));
  CHECK(p.count_case() == prometheus::Histogram::kCountInt);
  CHECK(p.count_int() == 31);
  CHECK(p.zero_count_int() == 2);
  CHECK(std::vector<int64_t>(p.positive_deltas().begin(), p.positive_deltas().end()) ==
        std::vector<int64_t>{3, 2, -4, 10, -6});
  CHECK(std::vector<int64_t>(p.negative_deltas().begin(), p.negative_deltas().end()) == std::vector<int64_t>{1, 1});
  CHECK(p.positive_counts_size() == 0);
  CHECK(decodeOk(encode(h, codec::HistogramEncoding::kIntegerIfExact)) == h);

  h.positive[1].second = 5.5;
  CHECK_FALSE(codec::hasIntegerCounts(h));
  CHECK(parse(encode(h, codec::HistogramEncoding::kIntegerIfExact)).count_case() ==
        prometheus::Histogram::kCountFloat);
  // A float histogram with count 0 is still a float histogram.
  NativeHistogram empty;
  CHECK(parse(encode(empty)).count_case() == prometheus::Histogram::kCountFloat);
}

TEST_CASE("histogram codec: float and custom-bucket histograms, packed or not") {
  prometheus::Histogram p;
  p.set_count_float(7.5);
  p.set_zero_count_float(0);
  p.set_schema(-53);
  for (double b : {0.1, 0.5, 1.0}) p.add_custom_values(b);
  addSpan(p.mutable_positive_spans(), 0, 2);
  addSpan(p.mutable_positive_spans(), 1, 1);
  for (double c : {1.5, 2.0, 4.0}) p.add_positive_counts(c);
  NativeHistogram h = decodeOk(p.SerializeAsString());
  CHECK(h.customBuckets());
  CHECK(h.count == 7.5);
  CHECK(h.custom_values == std::vector<double>{0.1, 0.5, 1.0});
  CHECK(h.positive == HistogramBuckets{{0, 1.5}, {1, 2}, {3, 4}});
  prometheus::Histogram back = parse(encode(h));
  CHECK(std::vector<double>(back.custom_values().begin(), back.custom_values().end()) ==
        std::vector<double>{0.1, 0.5, 1.0});
  CHECK(decodeOk(encode(h)) == h);

  // Unpacked repeated fields (allowed by the wire format) decode the same.
  std::string raw;
  auto tag = [&](uint32_t f, uint32_t wt) { raw.push_back(static_cast<char>(f << 3 | wt)); };
  auto dbl = [&](double d) { raw.append(reinterpret_cast<const char*>(&d), 8); };
  tag(2, 1);
  dbl(3);
  raw += std::string("\x5a\x02\x10\x02", 4);  // positive span {offset 0, length 2}
  tag(13, 1);
  dbl(1);
  tag(13, 1);
  dbl(2);
  NativeHistogram u = decodeOk(raw);
  CHECK(u.positive == HistogramBuckets{{0, 1}, {1, 2}});
}

TEST_CASE("histogram codec: invalid histograms are refused with a reason") {
  auto error = [](const prometheus::Histogram& p) {
    auto r = codec::decodeHistogram(p.SerializeAsString());
    REQUIRE_FALSE(r.ok());
    return r.error();
  };
  prometheus::Histogram p = integerProto();
  p.add_positive_deltas(1);
  CHECK(error(p).find("positive spans need 5 buckets, the message has 6") != std::string::npos);
  p = integerProto();
  p.set_positive_deltas(0, -1);
  CHECK(error(p).find("negative count") != std::string::npos);
  p = integerProto();
  p.set_schema(9);
  CHECK(error(p).find("unsupported schema 9") != std::string::npos);
  p = integerProto();
  p.mutable_positive_spans(1)->set_offset(-3);
  CHECK(error(p).find("negative offset") != std::string::npos);
  p = integerProto();
  p.add_custom_values(1);
  CHECK(error(p).find("custom bounds with exponential schema") != std::string::npos);
  prometheus::Histogram c;
  c.set_schema(-53);
  c.add_custom_values(1);
  c.add_custom_values(1);
  CHECK(error(c).find("strictly increasing") != std::string::npos);
  c.set_custom_values(1, 2);
  addSpan(c.mutable_positive_spans(), 0, 4);
  for (int k = 0; k < 4; ++k) c.add_positive_deltas(0);
  CHECK(error(c).find("outside the custom bounds") != std::string::npos);
  prometheus::Histogram f;
  f.set_count_float(INFINITY);
  CHECK(error(f).find("non-finite count") != std::string::npos);
  f.set_count_float(1);
  addSpan(f.mutable_positive_spans(), 0, 1);
  f.add_positive_counts(-1);
  CHECK(error(f).find("positive bucket 1 has a negative or non-finite count") != std::string::npos);
  CHECK_FALSE(codec::decodeHistogram(std::string("\x0a\x05", 2)).ok());  // truncated
}

TEST_CASE("histogram math: reducing the schema maps index i to ceil(i / 2^d), as Prometheus' targetIdx") {
  for (int32_t from = codec::kMinExponentialSchema; from <= codec::kMaxExponentialSchema; ++from)
    for (int32_t to = codec::kMinExponentialSchema; to <= from; ++to)
      for (int32_t i = -300; i <= 300; ++i) {
        const int32_t t = codec::reducedBucketIndex(i, from, to);
        CHECK(t == static_cast<int32_t>(std::ceil(std::ldexp(static_cast<double>(i), -(from - to)))));
        if (from - to > 6 || std::abs(i) > 100) continue;
        // The coarse bucket contains the fine one: (upper(t-1), upper(t)] covers (upper(i-1), upper(i)].
        CHECK(codec::bucketUpperBound(t, to) >= codec::bucketUpperBound(i, from));
        CHECK(codec::bucketUpperBound(t - 1, to) <= codec::bucketUpperBound(i - 1, from));
      }
  CHECK(codec::bucketUpperBound(1, 0) == 2);
  CHECK(codec::bucketUpperBound(0, 3) == 1);
  CHECK(codec::bucketUpperBound(1, 1) == doctest::Approx(std::sqrt(2.0)));
  CHECK(codec::bucketUpperBound(-1, -2) == 1.0 / 16);

  NativeHistogram h;
  h.schema = 2;
  h.positive = {{-3, 1}, {0, 1}, {1, 2}, {4, 3}, {5, 4}, {9, 5}};
  h.negative = {{2, 7}};
  codec::reduceResolution(h, 0);
  CHECK(h.schema == 0);
  CHECK(h.positive == HistogramBuckets{{0, 2}, {1, 5}, {2, 4}, {3, 5}});
  CHECK(h.negative == HistogramBuckets{{1, 7}});
}

TEST_CASE("histogram math: a wider zero bucket folds the buckets inside it") {
  NativeHistogram h;
  h.schema = 0;  // bucket i: (2^(i-1), 2^i]
  h.zero_threshold = 0.25;
  h.zero_count = 1;
  h.positive = {{-1, 2}, {0, 3}, {1, 4}};
  h.negative = {{0, 5}, {2, 6}};
  CHECK(codec::widenZeroBucket(h, 1.0) == 1.0);  // (0.25,0.5] and (0.5,1] fold
  CHECK(h.zero_count == 1 + 2 + 3 + 5);
  CHECK(h.positive == HistogramBuckets{{1, 4}});
  CHECK(h.negative == HistogramBuckets{{2, 6}});
  // A threshold through a populated bucket is raised to its upper bound.
  CHECK(codec::widenZeroBucket(h, 1.5) == 2.0);
  CHECK(h.zero_count == 15);
  CHECK(h.positive.empty());
}

TEST_CASE("histogram math: counter increase, resets, and sums over schemas") {
  NativeHistogram a;
  a.schema = 1;
  a.count = 10;
  a.zero_count = 1;
  a.positive = {{1, 4}, {2, 5}};
  NativeHistogram b = a;
  b.count = 14;
  b.positive = {{1, 6}, {2, 5}, {3, 2}};
  auto inc = codec::counterIncrease(b, a);
  REQUIRE(inc);
  CHECK(inc->count == 4);
  CHECK(inc->zero_count == 0);
  CHECK(inc->positive == HistogramBuckets{{1, 2}, {2, 0}, {3, 2}});

  SUBCASE("a coarser schema is not a reset: the previous one is reduced first") {
    NativeHistogram c = b;
    codec::reduceResolution(c, 0);  // {1: 11, 2: 2}
    c.positive[0].second += 1;
    c.count += 1;
    inc = codec::counterIncrease(c, a);  // a at schema 0: {1: 9}
    REQUIRE(inc);
    CHECK(inc->schema == 0);
    CHECK(inc->positive == HistogramBuckets{{1, 3}, {2, 2}});
  }
  SUBCASE("resets") {
    NativeHistogram c = b;
    c.positive[0].second = 3;  // one bucket went down
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.positive.erase(c.positive.begin());  // a populated bucket vanished
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.count = 9;
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.zero_count = 0;
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.schema = 2;
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.reset_hint = codec::kResetYes;
    CHECK_FALSE(codec::counterIncrease(c, a));
    c = b;
    c.zero_threshold = 1.2;  // cuts through populated bucket 1 of a: (1, 1.41]
    CHECK_FALSE(codec::counterIncrease(c, a));
  }
  SUBCASE("a sum takes the coarser schema and the wider zero bucket") {
    NativeHistogram acc;
    acc.schema = 8;
    codec::addHistogram(acc, a);
    CHECK(acc == a);
    NativeHistogram d;
    d.schema = -1;  // bucket i: (4^(i-1), 4^i]
    d.zero_threshold = 1;
    d.zero_count = 2;
    d.count = 5;
    d.positive = {{1, 3}};
    codec::addHistogram(acc, d);
    CHECK(acc.schema == -1);
    CHECK(acc.zero_threshold == 1);
    CHECK(acc.count == 15);
    CHECK(acc.zero_count == 3);  // a's bucket 1 at schema -1 is (1, 4]: above the threshold
    CHECK(acc.positive == HistogramBuckets{{1, 12}});
  }
}
