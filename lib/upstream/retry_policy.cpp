#include "upstream/retry_policy.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

namespace cardinal::upstream {

Verdict classify(const AttemptResult& r) {
  if (r.transport_error || r.status == 0) return Verdict::kRetry;
  if (r.status >= 200 && r.status < 300) return unconfirmedV2(r) ? Verdict::kReject : Verdict::kDelivered;
  if (r.status == 429 || r.status >= 500) return Verdict::kRetry;
  // 1xx and 3xx are not valid answers to a remote-write POST and will not
  // change on retry; everything else in 4xx is the sender's problem.
  return Verdict::kReject;
}

bool unconfirmedV2(const AttemptResult& r) {
  return r.v2_request && r.status >= 200 && r.status < 300 && r.sent_elements > 0 && r.written_elements == 0;
}

std::chrono::milliseconds backoffDelay(const BackoffPolicy& p, int attempt, double random01,
                                       std::optional<std::chrono::milliseconds> retry_after) {
  using std::chrono::milliseconds;
  int64_t base = p.min.count();
  for (int i = 1; i < attempt && base < p.max.count(); ++i) base *= 2;
  base = std::min<int64_t>(base, p.max.count());
  random01 = std::clamp(random01, 0.0, 1.0);
  auto delay = milliseconds(base / 2 + static_cast<int64_t>(static_cast<double>(base - base / 2) * random01));
  if (retry_after && *retry_after > delay) delay = *retry_after;
  return delay;
}

std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view v, int64_t now_unix_seconds) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t secs = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
    if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    return std::chrono::milliseconds(std::min<int64_t>(secs, 86400) * 1000);
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  std::tm tm{};
  std::string s(v);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at = static_cast<int64_t>(timegm(&tm));
  return std::chrono::milliseconds(std::max<int64_t>(0, std::min<int64_t>(at - now_unix_seconds, 86400)) * 1000);
}

}  // namespace cardinal::upstream
