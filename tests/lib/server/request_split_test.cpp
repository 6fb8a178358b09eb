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
#include "server/thread_load.h"
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

TEST_CASE("splitPoints: field boundaries past each mark, every part a whole request") {
  const std::string raw = serialize(numbered(101));
  codec::SeriesBatch whole;
  REQUIRE(codec::decodeWriteRequest(raw, {}, whole).ok());
  for (size_t parts : {2, 3, 8}) {
    CAPTURE(parts);
    const auto cuts = codec::splitPoints(raw, parts);
    REQUIRE(cuts.size() == parts - 1);
    std::vector<std::string> joined;
    size_t begin = 0;
    for (size_t k = 0; k <= cuts.size(); ++k) {
      const size_t end = k == cuts.size() ? raw.size() : cuts[k];
      if (k < cuts.size()) {
        CHECK(end >= raw.size() * (k + 1) / parts);
        CHECK(end > begin);
      }
      codec::SeriesBatch part;
      REQUIRE(codec::decodeWriteRequest(std::string_view(raw).substr(begin, end - begin), {}, part).ok());
      CHECK_FALSE(part.series.empty());
      for (auto& t : seriesText(part)) joined.push_back(t);
      begin = end;
    }
    CHECK(joined == seriesText(whole));
  }

  // Nothing to cut: one part, empty, one field, a field running past the middle to the end.
  CHECK(codec::splitPoints(raw, 1).empty());
  CHECK(codec::splitPoints("", 2).empty());
  CHECK(codec::splitPoints(serialize(numbered(1)), 2).empty());
  prometheus::WriteRequest skewed = numbered(1);
  *skewed.add_timeseries() = makeSeries({{"__name__", "big"}, {"v", std::string(4000, 'x')}});
  CHECK(codec::splitPoints(serialize(skewed), 2).empty());
  // A long field passes several marks: fewer, still ascending cuts.
  prometheus::WriteRequest lumpy = numbered(3);
  *lumpy.add_timeseries() = makeSeries({{"__name__", "big"}, {"v", std::string(4000, 'x')}});
  const auto tail = numbered(3);
  for (const auto& ts : tail.timeseries()) *lumpy.add_timeseries() = ts;
  const auto lumpy_cuts = codec::splitPoints(serialize(lumpy), 8);
  REQUIRE(lumpy_cuts.size() == 1);
  // Malformed before a mark: not split (the whole decode reports it).
  std::string bad = raw;
  bad[0] = '\x0f';  // field 1, wire type 7: no such wire type
  CHECK(codec::splitPoints(bad, 2).empty());
}

TEST_CASE("sharesSeries: yes exactly when a label set is in two batches") {
  codec::SeriesBatch a, b, c;
  REQUIRE(codec::decodeWriteRequest(serialize(numbered(50)), {}, a).ok());
  prometheus::WriteRequest other;
  for (int i = 50; i < 120; ++i)
    *other.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", std::to_string(i)}});
  REQUIRE(codec::decodeWriteRequest(serialize(other), {}, b).ok());
  // Twice in one batch: no matter (a part runs its series in order).
  *other.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", "60"}}, {{2000, 6.5}});
  REQUIRE(codec::decodeWriteRequest(serialize(other), {}, c).ok());
  std::vector<uint64_t> table;
  auto shares = [&](std::vector<const codec::SeriesBatch*> v) { return server::sharesSeries(v, table); };
  CHECK_FALSE(shares({&a, &b}));
  CHECK_FALSE(shares({&a, &c}));
  CHECK_FALSE(shares({&a}));
  // The same label set in two batches, with another sample (a sender catching up).
  prometheus::WriteRequest again;
  *again.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", "7"}}, {{2000, 7.5}});
  codec::SeriesBatch d;
  REQUIRE(codec::decodeWriteRequest(serialize(again), {}, d).ok());
  CHECK(shares({&a, &b, &d}));
  CHECK(shares({&d, &b, &a}));
  CHECK_FALSE(shares({&b, &d}));
  codec::SeriesBatch empty;
  CHECK_FALSE(shares({&a, &empty}));
}

TEST_CASE("joinCompressed: blocks compressed apart decompress as their concatenation") {
  std::mt19937_64 rng(7);
  auto text = [&](size_t n) {
    std::string s;
    s.reserve(n);
    while (s.size() < n) s += "series_" + std::to_string(rng() % 5000) + "{instance=\"host\"} ";
    s.resize(n);
    return s;
  };
  // Sizes around snappy's 64 KiB fragments and the length header's 1/2/3/4-byte steps.
  const std::vector<std::vector<size_t>> cases{{0, 0},         {0, 100},          {100, 0},
                                               {127, 1},       {100, 200, 300},   {65536, 65536},
                                               {70000, 190000}, {1 << 21, 5},     {20000, 30000, 40000, 50000, 60000, 70000, 80000, 90000}};
  for (const auto& sizes : cases) {
    std::string all;
    std::vector<std::string> compressed(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      const std::string part = text(sizes[i]);
      codec::compress(part, compressed[i]);
      all += part;
    }
    std::vector<std::string_view> views(compressed.begin(), compressed.end());
    std::string joined;
    codec::joinCompressed(views, joined);
    std::string out;
    REQUIRE_MESSAGE(snappy::Uncompress(joined.data(), joined.size(), &out), sizes.size() << " parts");
    CHECK(out == all);
    std::string via_ours;
    REQUIRE(codec::decompress(joined, {}, via_ours).ok());
    CHECK(via_ours == all);
  }
}

TEST_CASE("SplitRequest: parts taken by two threads, or all by the caller when no helper came") {
  pipeline::TypeTable types;
  pipeline::DecisionCache cache{1000};
  pipeline::WriteState state{types, cache, nullptr, nullptr};
  core::ManualClock clock{1000};
  codec::Limits limits;
  // About 5 parts' worth (SplitRequest::kPartBytes each).
  const std::string raw = serialize(numbered(8000));
  REQUIRE(raw.size() > 3 * server::SplitRequest::kPartBytes);
  server::SplitRequest::Job job;
  job.body = raw;
  job.limits = &limits;
  job.state = &state;
  job.clock = &clock;
  job.run_stages = false;  // codec only: decode, learn types, encode

  codec::SeriesBatch expected;
  REQUIRE(codec::decodeWriteRequest(raw, limits, expected).ok());
  // The parts' series in order, and their joined encoding, are the whole request's.
  auto check = [&](server::SplitRequest& r) {
    std::vector<std::string> joined;
    std::vector<std::string_view> blocks;
    for (size_t i = 0; i < r.parts(); ++i) {
      for (auto& t : seriesText(r.batch(i))) joined.push_back(t);
      if (!r.encoded(i)) r.encode(i);
      blocks.push_back(r.compressed(i));
    }
    CHECK(joined == seriesText(expected));
    // The counts the parts' threads took add up to the whole's.
    codec::SeriesBatch::LiveCounts live;
    for (size_t i = 0; i < r.parts(); ++i) {
      live.series += r.live(i).series;
      live.samples += r.live(i).samples;
      CHECK(r.changed(i) == r.batch(i).anyChanged());
    }
    CHECK(live.series == expected.liveCounts().series);
    CHECK(live.samples == expected.liveCounts().samples);
    std::string body, plain;
    codec::joinCompressed(blocks, body);
    REQUIRE(codec::decompress(body, limits, plain).ok());
    CHECK(plain == raw);
  };

  // The caller claims parts from the first on, the helper from the last
  // back: the parts the helper ran through the stages, if any, are the last ones.
  auto helperTookTheLast = [](const server::SplitRequest& r) {
    size_t first = r.parts();
    for (size_t i = 0; i < r.parts() && first == r.parts(); ++i)
      if (r.byHelper(i)) first = i;
    for (size_t i = first; i < r.parts(); ++i) CHECK(r.byHelper(i));
  };

  SUBCASE("with a helper thread") {
    auto r = server::SplitRequest::acquire();
    REQUIRE(r->start(job));
    CHECK(r->parts() >= 3);
    std::thread helper([r] { r->runAsHelper(); });
    REQUIRE(r->decode());
    const auto who = r->process();
    CHECK(who != server::SplitRequest::Shared::kInOrder);
    check(*r);
    helper.join();
    helperTookTheLast(*r);
  }
  SUBCASE("no helper came: the caller took every part; a late helper touches nothing") {
    auto r = server::SplitRequest::acquire();
    REQUIRE(r->start(job));
    REQUIRE(r->decode());
    CHECK(r->process() == server::SplitRequest::Shared::kAlone);
    check(*r);
    r->runAsHelper();  // the posted task, late: nothing left to take
    check(*r);
  }
  SUBCASE("a series in two parts: the caller runs the parts in order, the helper leaves") {
    prometheus::WriteRequest req = numbered(8000);
    *req.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"n", "0"}}, {{2000, 9.0}});
    const std::string twice = serialize(req);
    auto j = job;
    j.body = twice;
    auto r = server::SplitRequest::acquire();
    REQUIRE(r->start(j));
    std::thread helper([r] { r->runAsHelper(); });
    REQUIRE(r->decode());
    CHECK(r->process() == server::SplitRequest::Shared::kInOrder);
    helper.join();
    for (size_t i = 0; i < r->parts(); ++i) CHECK(r->encoded(i));
  }
  SUBCASE("over the series limit only together: decode() says decode it whole") {
    codec::Limits tight;
    tight.max_series_per_request = 7999;
    auto j = job;
    j.limits = &tight;
    auto r = server::SplitRequest::acquire();
    REQUIRE(r->start(j));
    std::thread helper([r] { r->runAsHelper(); });
    CHECK_FALSE(r->decode());
    r->abandon();
    helper.join();
  }
  SUBCASE("the part size sets the number of parts, between 2 and kMaxParts") {
    auto j = job;
    j.part_bytes = raw.size() / 3;
    auto r = server::SplitRequest::acquire();
    REQUIRE(r->start(j));
    CHECK(r->parts() == 3);
    r->abandon();
    j.part_bytes = raw.size() * 2;  // under one part's worth: still two
    REQUIRE(r->start(j));
    CHECK(r->parts() == 2);
    r->abandon();
    j.part_bytes = 1;
    REQUIRE(r->start(j));
    CHECK(r->parts() == server::SplitRequest::kMaxParts);
    r->abandon();
    j.part_bytes = server::SplitRequest::kPartBytes;  // the proxy's: this body is 5 parts' worth
    REQUIRE(r->start(j));
    CHECK(r->parts() == raw.size() / server::SplitRequest::kPartBytes);
    r->abandon();
  }
  SUBCASE("too small to cut: start() says no") {
    auto j = job;
    const std::string one = serialize(numbered(1));
    j.body = one;
    CHECK_FALSE(server::SplitRequest::acquire()->start(j));
  }
  SUBCASE("an object still held by a helper's task is not handed out again") {
    auto a = server::SplitRequest::acquire();
    auto task_copy = a;  // as a posted task holds it
    a.reset();
    auto b = server::SplitRequest::acquire();
    CHECK(b.get() != task_copy.get());
    // Free ones are reused, not allocated per request.
    server::SplitRequest* free_one = b.get();
    b.reset();
    CHECK(server::SplitRequest::acquire().get() == free_one);
  }
}

TEST_CASE("helperFree: split when no other request is processed, or one is and the helper's thread has time") {
  CHECK(server::helperFree(0, 0));
  CHECK(server::helperFree(0, 1000));  // nothing else processed: whatever its last window was
  CHECK(server::helperFree(1, 0));
  CHECK(server::helperFree(1, server::kHelperBusyBelow - 1));
  CHECK_FALSE(server::helperFree(1, server::kHelperBusyBelow));
  CHECK_FALSE(server::helperFree(1, server::ThreadLoad::kUnknown));  // not measured yet: busy
  CHECK_FALSE(server::helperFree(2, 0));
}
