// Cutting a 1.0 request in two (splitPointV1) and telling whether two halves
// share a series (sharesSeries): what the write handler's parallel path relies on.
#include <doctest/doctest.h>

#include <string>

#include "codec/batch.h"
#include "codec/decode.h"
#include "codec/encode.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::testing;

namespace {

prometheus::WriteRequest manySeries(int n, int first = 0) {
  prometheus::WriteRequest req;
  for (int i = first; i < first + n; ++i)
    *req.add_timeseries() = makeSeries({{"__name__", "split_total"}, {"id", std::to_string(i)}}, {{1000 + i, 1.0 * i}});
  return req;
}

}  // namespace

TEST_CASE("splitPointV1: a field boundary past the middle; both sides decode to the whole request") {
  for (int n : {2, 3, 10, 257}) {
    auto req = manySeries(n);
    auto* md = req.add_metadata();  // a metadata field at the end
    md->set_metric_family_name("split_total");
    md->set_type(prometheus::MetricMetadata::COUNTER);
    const std::string wire = req.SerializeAsString();
    const size_t at = codec::splitPointV1(wire);
    INFO("n=" << n);
    REQUIRE(at > 0);
    CHECK(at >= wire.size() / 2);
    CHECK(at < wire.size());
    codec::Limits limits;
    codec::SeriesBatch whole, a, b;
    REQUIRE(codec::decodeWriteRequest(wire, limits, whole));
    REQUIRE(codec::decodeWriteRequest(std::string_view(wire).substr(0, at), limits, a));
    REQUIRE(codec::decodeWriteRequest(std::string_view(wire).substr(at), limits, b));
    REQUIRE(a.series.size() + b.series.size() == whole.series.size());
    CHECK(a.metadata.size() + b.metadata.size() == 1);
    for (size_t i = 0; i < whole.series.size(); ++i) {
      const auto& s = i < a.series.size() ? a.series[i] : b.series[i - a.series.size()];
      CHECK(s.raw == whole.series[i].raw);
      CHECK(s.hash == whole.series[i].hash);
    }
    // The halves' encodings, concatenated, are the request's encoding.
    std::string ea, eb, ew;
    codec::encodeWriteRequest(a, ea);
    codec::encodeWriteRequest(b, eb);
    codec::encodeWriteRequest(whole, ew);
    CHECK(ea + eb == ew);
  }
}

TEST_CASE("splitPointV1: nothing to cut in one field, an empty or a malformed request") {
  CHECK(codec::splitPointV1("") == 0);
  CHECK(codec::splitPointV1(manySeries(1).SerializeAsString()) == 0);
  const std::string wire = manySeries(4).SerializeAsString();
  CHECK(codec::splitPointV1(wire.substr(0, 5)) == 0);  // the first field runs past the end
  // A malformed tail is found by decoding the half it is in.
  const std::string cut = wire.substr(0, wire.size() - 3);
  const size_t at = codec::splitPointV1(cut);
  REQUIRE(at > 0);
  codec::SeriesBatch b;
  CHECK_FALSE(codec::decodeWriteRequest(std::string_view(cut).substr(at), codec::Limits{}, b));
  CHECK(codec::splitPointV1(std::string("\xff\xff\xff", 3)) == 0);
}

TEST_CASE("sharesSeries: by label set, not by position") {
  codec::Limits limits;
  const std::string w1 = manySeries(100).SerializeAsString();
  const std::string w2 = manySeries(100, 100).SerializeAsString();
  const std::string w3 = manySeries(1, 57).SerializeAsString();
  codec::SeriesBatch a, b, c;
  REQUIRE(codec::decodeWriteRequest(w1, limits, a));
  REQUIRE(codec::decodeWriteRequest(w2, limits, b));
  REQUIRE(codec::decodeWriteRequest(w3, limits, c));
  CHECK_FALSE(codec::sharesSeries(a, b));
  CHECK_FALSE(codec::sharesSeries(b, a));
  CHECK(codec::sharesSeries(a, c));
  CHECK(codec::sharesSeries(c, a));
  CHECK_FALSE(codec::sharesSeries(codec::SeriesBatch{}, a));
}
