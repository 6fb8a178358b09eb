#include "server/request_split.h"

#include <doctest/doctest.h>
#include <snappy.h>

#include <random>
#include <string>
#include <thread>

#include "codec/decode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "support/builders.h"

using namespace cardinal;
using cardinal::testing::makeSeries;
using cardinal::testing::serialize;

namespace {

prometheus::WriteRequest numbered(int n, int64_t t = 1000) {
  prometheus::WriteRequest req;
  for (int i = 0; i < n; ++i)
    *req.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", std::to_string(i)}}, {{t, 1.0 * i}});
  return req;
}

// The series of a batch as (labels, samples) text, in order.
std::vector<std::string> seriesText(const codec::SeriesBatch& b) {
  std::vector<std::string> out;
  for (const auto& s : b.series) {
    std::string t;
    for (const auto& l : b.labelsOf(s)) t += std::string(l.name) + "=" + std::string(l.value) + ",";
    for (const auto& x : b.samplesOf(s)) t += std::to_string(x.timestamp) + ":" + std::to_string(x.value) + ";";
    out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("splitPoint: a field boundary at or after the middle, both sides whole requests") {
  const std::string raw = serialize(numbered(101));
  const size_t cut = codec::splitPoint(raw);
  REQUIRE(cut > 0);
  CHECK(cut >= raw.size() / 2);
  codec::SeriesBatch whole, a, b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, whole).ok());
  REQUIRE(codec::decodeWriteRequest(std::string_view(raw).substr(0, cut), {}, a).ok());
  REQUIRE(codec::decodeWriteRequest(std::string_view(raw).substr(cut), {}, b).ok());
  CHECK(a.series.size() + b.series.size() == 101);
  auto joined = seriesText(a);
  for (auto& t : seriesText(b)) joined.push_back(t);
  CHECK(joined == seriesText(whole));

  // Nothing to cut: empty, one field, a field running past the middle to the end.
  CHECK(codec::splitPoint("") == 0);
  CHECK(codec::splitPoint(serialize(numbered(1))) == 0);
  prometheus::WriteRequest skewed = numbered(1);
  *skewed.add_timeseries() = makeSeries({{"__name__", "big"}, {"v", std::string(4000, 'x')}});
  CHECK(codec::splitPoint(serialize(skewed)) == 0);
  // Malformed before the middle: not split (the whole decode reports it).
  std::string bad = raw;
  bad[0] = '\x0f';  // field 1, wire type 7: no such wire type
  CHECK(codec::splitPoint(bad) == 0);
}

TEST_CASE("sharesSeries: yes exactly when a label set is in both batches") {
  codec::SeriesBatch a, b;
  REQUIRE(codec::decodeWriteRequest(serialize(numbered(50)), {}, a).ok());
  prometheus::WriteRequest other;
  for (int i = 50; i < 120; ++i)
    *other.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", std::to_string(i)}});
  REQUIRE(codec::decodeWriteRequest(serialize(other), {}, b).ok());
  std::vector<uint64_t> table;
  CHECK_FALSE(server::sharesSeries(a, b, table));
  // The same label set with another sample (a sender catching up).
  *other.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", "7"}}, {{2000, 7.5}});
  REQUIRE(codec::decodeWriteRequest(serialize(other), {}, b).ok());
  CHECK(server::sharesSeries(a, b, table));
  CHECK(server::sharesSeries(b, a, table));
  codec::SeriesBatch empty;
  CHECK_FALSE(server::sharesSeries(a, empty, table));
}

TEST_CASE("joinCompressed: two blocks compressed apart decompress as their concatenation") {
  std::mt19937_64 rng(7);
  auto text = [&](size_t n) {
    std::string s;
    s.reserve(n);
    while (s.size() < n) s += "series_" + std::to_string(rng() % 5000) + "{instance=\"host\"} ";
    s.resize(n);
    return s;
  };
  // Sizes around snappy's 64 KiB fragments and the length header's 1/2/3-byte steps.
  for (auto [na, nb] : std::vector<std::pair<size_t, size_t>>{
           {0, 0}, {0, 100}, {100, 0}, {127, 1}, {100, 200}, {65536, 65536}, {70000, 190000}, {1 << 21, 5}}) {
    const std::string a = text(na), b = text(nb);
    std::string ca, cb, joined;
    codec::compress(a, ca);
    codec::compress(b, cb);
    codec::joinCompressed(ca, cb, joined);
    std::string out;
    REQUIRE_MESSAGE(snappy::Uncompress(joined.data(), joined.size(), &out), na << "+" << nb);
    CHECK(out == a + b);
    std::string via_ours;
    REQUIRE(codec::decompress(joined, {}, via_ours).ok());
    CHECK(via_ours.size() == na + nb);
  }
}

TEST_CASE("SplitHalf: handed to another thread, or done by the caller when none took it") {
  pipeline::TypeTable types;
  pipeline::DecisionCache cache{1000};
  pipeline::WriteState state{types, cache, nullptr, nullptr};
  core::ManualClock clock{1000};
  codec::Limits limits;
  const std::string raw = serialize(numbered(40));
  const size_t cut = codec::splitPoint(raw);
  REQUIRE(cut > 0);
  server::SplitHalf::Job job;
  job.body = std::string_view(raw).substr(cut);
  job.limits = &limits;
  job.state = &state;
  job.clock = &clock;
  job.run_stages = false;  // codec only: decode, learn types, encode

  codec::SeriesBatch expected;
  REQUIRE(codec::decodeWriteRequest(job.body, limits, expected).ok());
  auto check_encoding = [&](server::SplitHalf& half) {
    REQUIRE(half.encoded());
    std::string plain;
    REQUIRE(codec::decompress(half.compressed(), limits, plain).ok());
    codec::SeriesBatch back;
    REQUIRE(codec::decodeWriteRequest(plain, limits, back).ok());
    CHECK(seriesText(back) == seriesText(expected));
  };

  SUBCASE("a helper thread decodes, then processes on release(true)") {
    auto half = server::SplitHalf::acquire();
    half->start(job);
    std::thread helper([half] { half->runAsHelper(); });
    half->awaitDecoded();
    REQUIRE(half->decoded().ok());
    CHECK(seriesText(half->batch()) == seriesText(expected));
    // Whether the helper or the caller decoded it depends on timing; either way
    // release() says who processes it.
    if (!half->release(true)) half->process();
    half->finish();
    check_encoding(*half);
    helper.join();
  }
  SUBCASE("no helper started: the caller claims it, and a late helper leaves it alone") {
    auto half = server::SplitHalf::acquire();
    half->start(job);
    half->awaitDecoded();  // claims: no thread has run runAsHelper()
    CHECK_FALSE(half->release(true));
    half->process();
    half->finish();
    check_encoding(*half);
    half->runAsHelper();  // the posted task, late: a no-op
    check_encoding(*half);
  }
  SUBCASE("the caller stops a helper that decoded (a series in both halves)") {
    auto half = server::SplitHalf::acquire();
    half->start(job);
    std::thread helper([half] { half->runAsHelper(); });
    half->awaitDecoded();
    CHECK_FALSE(half->release(false));
    helper.join();
    CHECK_FALSE(half->encoded());
    half->process();  // the caller's, after its own half
    check_encoding(*half);
  }
  SUBCASE("finish() on a half nobody took: nothing runs") {
    auto half = server::SplitHalf::acquire();
    half->start(job);
    half->finish();
    half->runAsHelper();
    CHECK(half->batch().series.empty());
  }
  SUBCASE("a half still held by a helper's task is not handed out again") {
    auto a = server::SplitHalf::acquire();
    auto task_copy = a;  // as a posted task holds it
    a.reset();
    auto b = server::SplitHalf::acquire();
    CHECK(b.get() != task_copy.get());
    // Free halves are reused, not allocated per request.
    server::SplitHalf* free_one = b.get();
    b.reset();
    CHECK(server::SplitHalf::acquire().get() == free_one);
  }
}
