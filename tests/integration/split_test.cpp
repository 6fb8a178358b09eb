// The parallel path for large requests (--web.split-bytes): a request cut in two
// at a series boundary, its halves decoded, run through the default pipeline and
// encoded on two threads, must forward exactly what the whole request would.
#include <map>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

// Seed-like series: ids to merge away, e-mails to redact, paths to normalize,
// well-behaved ones; `repeat` series of the first half again at the end (the
// same label set in both halves, later samples).
prometheus::WriteRequest seedLike(int request, int n, int repeat, int64_t t) {
  prometheus::WriteRequest req;
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::vector<std::pair<Pairs, int64_t>> sent;
  for (int i = 0; i < n; ++i) {
    const std::string id = std::to_string((request * 7919 + i) % 50);
    Pairs labels;
    switch (i % 4) {
      case 0:
        labels = {{"__name__", "it_split_checkout_total"}, {"user_id", "u" + id}, {"job", "shop"}};
        break;
      case 1:
        labels = {{"__name__", "it_split_logins_total"}, {"email", "user" + id + "@example.com"}};
        break;
      case 2:
        labels = {{"__name__", "it_split_http_requests_total"},
                  {"method", "GET"},
                  {"path", "/users/" + id + "/orders/" + std::to_string(i)}};
        break;
      default:
        labels = {{"__name__", "it_split_up"}, {"instance", "host-" + std::to_string(i) + ":9100"}};
    }
    addSeries(req, labels, {{static_cast<double>(request * 10 + 1), t + request * 1000}});
    sent.emplace_back(labels, t + request * 1000);
  }
  for (int i = 0; i < repeat && i < n; ++i)
    addSeries(req, sent[i].first, {{static_cast<double>(request * 10 + 2), sent[i].second + 500}});
  return req;
}

// Every forwarded sample, by label set, in arrival order per series.
std::map<Labels, std::vector<std::pair<int64_t, double>>> received(const FakeUpstream& up) {
  std::map<Labels, std::vector<std::pair<int64_t, double>>> out;
  for (const auto& ts : up.allSeries())
    for (const auto& s : ts.samples()) out[labelsOf(ts)].emplace_back(s.timestamp(), s.value());
  return out;
}

TEST_CASE("split requests forward exactly what whole requests do, merged and redacted series included") {
  TempDir dir;
  const auto key = dir.writeFile("hmac.key", std::string(64, 'a'));  // the same redaction on both
  FakeUpstream whole_up, split_up;
  const std::vector<std::string> common = {"--sanitize.hmac-key-file=" + key.string()};
  auto with = [&](std::string flag) {
    auto flags = common;
    flags.push_back(std::move(flag));
    return flags;
  };
  CardinalServer whole(dir, whole_up.writeUrl(), with("--web.split-bytes=0"), "whole");
  CardinalServer split(dir, split_up.writeUrl(), with("--web.split-bytes=1"), "split");
  INFO(describe(whole.process()));
  INFO(describe(split.process()));

  const int64_t t = nowMs() - 10 * 60 * 1000;
  for (int r = 0; r < 12; ++r) {
    const auto req = seedLike(r, 400, r % 3 == 0 ? 20 : 0, t);
    auto a = postRemoteWrite(whole.writeUrl(), req);
    auto b = postRemoteWrite(split.writeUrl(), req);
    REQUIRE_MESSAGE(a.status == 204, a.summary());
    REQUIRE_MESSAGE(b.status == 204, b.summary());
  }
  // Merged series go out at shutdown at the latest.
  CHECK(split.metric("cardinal_split_requests_total").value_or(0) == 12);
  CHECK(whole.metric("cardinal_split_requests_total").value_or(-1) == 0);
  whole.stop();
  split.stop();

  const auto want = received(whole_up);
  const auto got = received(split_up);
  REQUIRE(!want.empty());
  size_t merged = 0, redacted = 0, normalized = 0;
  for (const auto& [labels, samples] : want) {
    if (!labels.count("user_id") && labels.at("__name__") == "it_split_checkout_total") ++merged;
    if (labels.count("email") && labels.at("email").find("@example.com") == std::string::npos) ++redacted;
    if (labels.count("path") && labels.at("path").find('{') != std::string::npos) ++normalized;
  }
  // The pipeline did its work on this data (otherwise equality proves little).
  CHECK(merged > 0);
  CHECK(redacted > 0);
  CHECK(normalized > 0);
  CHECK(got.size() == want.size());
  for (const auto& [labels, samples] : want) {
    auto it = got.find(labels);
    if (it == got.end()) {
      FAIL_CHECK("not forwarded on the split path: " << labelsToString(labels));
      continue;
    }
    CHECK_MESSAGE(it->second == samples, labelsToString(labels));
  }
}

TEST_CASE("split requests: a malformed request gets the same 400 and message as when whole") {
  TempDir dir;
  FakeUpstream up;
  CardinalServer whole(dir, up.writeUrl(), {"--web.split-bytes=0"}, "whole");
  CardinalServer split(dir, up.writeUrl(), {"--web.split-bytes=1", "--limits.max-series-per-request=300"}, "split");
  CardinalServer whole_limited(dir, up.writeUrl(), {"--web.split-bytes=0", "--limits.max-series-per-request=300"},
                               "whole_limited");
  const int64_t t = nowMs() - 60000;
  // A bad label name in the second half.
  auto bad = seedLike(1, 200, 0, t);
  bad.mutable_timeseries(150)->mutable_labels(0)->set_name("bad name");
  auto a = postRemoteWrite(whole.writeUrl(), bad);
  auto b = postRemoteWrite(split.writeUrl(), bad);
  CHECK(a.status == 400);
  CHECK(b.status == 400);
  CHECK(a.body == b.body);
  // Over the series limit only when both halves are counted.
  auto many = seedLike(2, 301, 0, t);
  auto c = postRemoteWrite(whole_limited.writeUrl(), many);
  auto d = postRemoteWrite(split.writeUrl(), many);
  CHECK(c.status == 400);
  CHECK(d.status == 400);
  CHECK(c.body == d.body);
  CHECK(split.metric("cardinal_split_requests_total").value_or(-1) == 0);
}

}  // namespace
}  // namespace cardinal::integration
