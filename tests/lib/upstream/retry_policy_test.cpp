#include "upstream/retry_policy.h"

#include <doctest/doctest.h>

using namespace cardinal::upstream;
using std::chrono::milliseconds;

TEST_CASE("upstream outcome table") {
  struct Row {
    AttemptResult in;
    Verdict want;
  };
  const Row table[] = {
      {{200, false}, Verdict::kDelivered}, {{204, false}, Verdict::kDelivered}, {{299, false}, Verdict::kDelivered},
      {{500, false}, Verdict::kRetry},     {{502, false}, Verdict::kRetry},     {{503, false}, Verdict::kRetry},
      {{504, false}, Verdict::kRetry},     {{429, false}, Verdict::kRetry},     {{0, true}, Verdict::kRetry},
      {{0, false}, Verdict::kRetry},       {{400, false}, Verdict::kReject},    {{401, false}, Verdict::kReject},
      {{403, false}, Verdict::kReject},    {{404, false}, Verdict::kReject},    {{409, false}, Verdict::kReject},
      {{413, false}, Verdict::kReject},    {{415, false}, Verdict::kReject},    {{301, false}, Verdict::kReject},
  };
  for (const auto& row : table) {
    CAPTURE(row.in.status);
    CHECK(classify(row.in) == row.want);
  }
}

TEST_CASE("backoff doubles, is capped, is jittered, honours Retry-After") {
  BackoffPolicy p{milliseconds(50), milliseconds(1000)};
  CHECK(backoffDelay(p, 1, 0.0, std::nullopt) == milliseconds(25));
  CHECK(backoffDelay(p, 1, 1.0, std::nullopt) == milliseconds(50));
  CHECK(backoffDelay(p, 2, 1.0, std::nullopt) == milliseconds(100));
  CHECK(backoffDelay(p, 5, 1.0, std::nullopt) == milliseconds(800));
  CHECK(backoffDelay(p, 6, 1.0, std::nullopt) == milliseconds(1000));
  CHECK(backoffDelay(p, 60, 1.0, std::nullopt) == milliseconds(1000));
  auto mid = backoffDelay(p, 3, 0.5, std::nullopt);
  CHECK(mid >= milliseconds(100));
  CHECK(mid <= milliseconds(200));
  CHECK(backoffDelay(p, 1, 0.5, milliseconds(3000)) == milliseconds(3000));
  CHECK(backoffDelay(p, 6, 1.0, milliseconds(10)) == milliseconds(1000));
}

TEST_CASE("Retry-After parsing") {
  CHECK(parseRetryAfter("5", 0) == milliseconds(5000));
  CHECK(parseRetryAfter(" 0 ", 0) == milliseconds(0));
  CHECK(parseRetryAfter("999999999", 0) == milliseconds(86'400'000));
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
  CHECK(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111770) == milliseconds(7000));
  CHECK(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111800) == milliseconds(0));
  CHECK_FALSE(parseRetryAfter("soon", 0).has_value());
  CHECK_FALSE(parseRetryAfter("", 0).has_value());
  CHECK_FALSE(parseRetryAfter("-3", 0).has_value());
}

TEST_CASE("remote-write 2.0: a 2xx that confirms nothing is the spec's 415") {
  struct Row {
    AttemptResult in;
    Verdict want;
    bool unconfirmed;
  };
  const Row table[] = {
      // status, transport error, v2 request, sent elements, written elements (sum of the headers)
      {{204, false, true, 10, 10}, Verdict::kDelivered, false},
      {{204, false, true, 10, 3}, Verdict::kDelivered, false},   // a partial count is still a 2.0 answer
      {{204, false, true, 10, 0}, Verdict::kReject, true},       // no headers (or all 0): a 1.0 receiver
      {{200, false, true, 1, 0}, Verdict::kReject, true},
      {{204, false, true, 0, 0}, Verdict::kDelivered, false},    // nothing sent, nothing to confirm
      {{204, false, false, 10, 0}, Verdict::kDelivered, false},  // 1.0 requests get no headers
      {{400, false, true, 10, 0}, Verdict::kReject, false},
      {{503, false, true, 10, 0}, Verdict::kRetry, false},
      {{0, true, true, 10, 0}, Verdict::kRetry, false},
  };
  for (const auto& row : table) {
    CAPTURE(row.in.status);
    CAPTURE(row.in.sent_elements);
    CAPTURE(row.in.written_elements);
    CHECK(classify(row.in) == row.want);
    CHECK(unconfirmedV2(row.in) == row.unconfirmed);
  }
}
