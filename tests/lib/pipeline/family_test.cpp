#include "pipeline/family.h"

#include <doctest/doctest.h>

#include "codec/decode.h"
#include "support/builders.h"

using namespace cardinal;
using namespace cardinal::pipeline;
using codec::MetricType;

TEST_CASE("name conventions without metadata") {
  TypeTable t;
  auto r = t.resolve("http_requests_total", false, false);
  CHECK(r.family == "http_requests_total");
  CHECK(r.role == Role::kCounter);
  CHECK(r.source == TypeSource::kConvention);

  r = t.resolve("rpc_seconds_bucket", true, false);
  CHECK(r.family == "rpc_seconds");
  CHECK(r.role == Role::kCounter);

  // The seed's plain metrics: _count without a histogram or summary sibling.
  r = t.resolve("api_request_count", false, false);
  CHECK(r.family == "api_request_count");
  CHECK(r.role == Role::kGauge);
  CHECK(r.source == TypeSource::kDefault);
  r = t.resolve("auth_event_count", false, false);
  CHECK(r.family == "auth_event_count");
  CHECK(r.role == Role::kGauge);

  // A rule's type is the last resort.
  r = t.resolve("api_request_count", false, false, 1);
  CHECK(r.role == Role::kCounter);
  CHECK(r.source == TypeSource::kRule);

  r = t.resolve("rpc_latency", false, true);
  CHECK(r.role == Role::kSummaryQuantile);
}

TEST_CASE("siblings and metadata make _sum/_count parts of their family") {
  TypeTable t;
  auto req = testing::makeRequest({testing::makeSeries({{"__name__", "rpc_seconds_bucket"}, {"le", "0.1"}}),
                                   testing::makeSeries({{"__name__", "lat"}, {"quantile", "0.9"}})});
  std::string raw = testing::serialize(req);
  codec::SeriesBatch b;
  REQUIRE(codec::decodeWriteRequest(raw, {}, b).ok());
  uint64_t v0 = t.version();
  t.observe(b);
  CHECK(t.version() > v0);
  auto r = t.resolve("rpc_seconds_count", false, false);
  CHECK(r.family == "rpc_seconds");
  CHECK(r.type == MetricType::kHistogram);
  CHECK(r.role == Role::kCounter);
  r = t.resolve("lat_sum", false, false);
  CHECK(r.family == "lat");
  CHECK(r.type == MetricType::kSummary);
  CHECK(r.role == Role::kCounter);
  // Observing the same again changes nothing.
  uint64_t v1 = t.version();
  t.observe(b);
  CHECK(t.version() == v1);

  t.setType("api_request", MetricType::kSummary);
  CHECK(t.resolve("api_request_count", false, false).family == "api_request");
  t.setType("jobs", MetricType::kGauge);
  CHECK(t.resolve("jobs_count", false, false).family == "jobs_count");  // a gauge has no parts
  t.setType("temp", MetricType::kCounter);
  CHECK(t.resolve("temp", false, false).role == Role::kCounter);
  CHECK(t.resolve("temp", false, false).source == TypeSource::kMetadata);
  t.setType("queue_total", MetricType::kGauge);  // metadata beats the _total convention
  CHECK(t.resolve("queue_total", false, false).role == Role::kGauge);
  t.setType("om", MetricType::kCounter);  // OpenMetrics names the counter family without _total
  CHECK(t.resolve("om_total", false, false).family == "om");
  CHECK(t.resolve("om_total", false, false).role == Role::kCounter);
  t.setType("gh", MetricType::kGaugeHistogram);
  CHECK(t.resolve("gh_bucket", true, false).role == Role::kGauge);
}

TEST_CASE("the table is bounded") {
  TypeTable t(2);
  t.setType("a", MetricType::kCounter);
  t.setType("b", MetricType::kCounter);
  t.setType("c", MetricType::kCounter);
  CHECK(t.size() == 2);
  CHECK(t.overflow() == 1);
}
