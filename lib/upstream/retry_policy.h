#pragma once
// What to do with an upstream answer, as one pure function, and the backoff
// between attempts. Senders retry 5xx and connection errors but drop data on
// 429 with default settings (Prometheus, the Collector), so everything
// retryable that Cardinal cannot deliver within its budget becomes 503 to the
// sender (see ../shared/PROTOCOL.md and README).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cardinal::upstream {

enum class Verdict {
  kDelivered,  // 2xx: the upstream accepted the request
  kRetry,      // 5xx, 429, connection error or timeout: try again within the budget
  kReject,     // other status: the request will never succeed; pass the answer back
};

struct AttemptResult {
  int status = 0;              // HTTP status, 0 when no response arrived
  bool transport_error = false;  // connect/read/write failure or timeout
  // Remote-write 2.0 requests: elements sent (samples + histograms +
  // exemplars) and the sum of the answer's X-Prometheus-Remote-Write-*-Written
  // headers (a missing header counts 0, as the spec says).
  bool v2_request = false;
  uint64_t sent_elements = 0;
  uint64_t written_elements = 0;
};

Verdict classify(const AttemptResult& r);

// A 2xx to a 2.0 request that confirms nothing although data was sent: the
// receiver read the body as an (empty) 1.0 request, as 1.0 receivers that
// ignore Content-Type do. The spec says to take it as 415 (kReject): the same
// body will never be written there.
bool unconfirmedV2(const AttemptResult& r);

struct BackoffPolicy {
  std::chrono::milliseconds min{50};
  std::chrono::milliseconds max{1000};
};

// Delay before attempt number `attempt` (1 = first retry): exponential from
// min, capped at max, with "equal jitter" (half fixed, half random) driven by
// `random01` in [0, 1). A Retry-After from the upstream, when present, is
// honoured as a lower bound, still capped by what is left of the budget by
// the caller.
std::chrono::milliseconds backoffDelay(const BackoffPolicy& p, int attempt, double random01,
                                       std::optional<std::chrono::milliseconds> retry_after);

// Parses a Retry-After header: delay-seconds or an IMF-fixdate relative to
// `now_unix_seconds`. Returns nullopt for anything else.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value, int64_t now_unix_seconds);

}  // namespace cardinal::upstream
