#pragma once
// The shape of one label value, and entropy measures, for the cardinality
// engine's per-label profile ("this label holds uuids", "these values are
// spread evenly"). Pure functions: no state, no allocation, no regex; safe
// from any thread.
//
// classifyValue() checks the whole value, in this order (the first match wins):
//   token      a redaction token of the sanitize stage ("h:" + 16 hex digits)
//   uuid       8-4-4-4-12 hex digits, any case, optionally in braces
//   timestamp  ISO-8601 / RFC 3339 date-times and dates (2025-08-12T10:03:42.123456Z,
//              2025-08-12 10:03, 2025-08-12, 20250812T100342Z), times of day
//              (10:03:42, 10:03:42.123), and epoch numbers of 10 (s), 13 (ms),
//              16 (us) or 19 (ns) digits, or 10 digits with a fraction, within
//              [2000-01-01, 2100-01-01)
//   number     [+-]digits[.digits][e[+-]digits] (".5" too), and +Inf, -Inf, Inf, NaN
//   hex        0x + hex digits, or >= 8 hex digits with at least one digit and one letter
//   ip         IPv4 / IPv6 text forms with an optional /prefix, :port, [v6]:port or %zone
//   email      local@domain.tld as the whole value
//   token      a JWT-like value ("eyJ" + three base64url segments), a ULID, or a
//              random-looking base64 / base64url / base62 string of >= 16 characters
//              (mixed character classes, frequent switches between lower case, upper
//              case and digits, >= 3 bits per character; see looksRandom in the .cpp)
//   path       no whitespace, a '/' followed by some other character: at least two
//              '/'-separated segments, counting the empty one before a leading '/'
//              ("/metrics", "/users/abc123/orders/456", "a/b", URLs); not "/" or "a/"
//   word       <= 64 characters of [A-Za-z0-9_.:-] starting with a letter or digit and
//              not random-looking ("GET", "us-east", "v1.2.3", "1.2.3", "30s", "checkout")
//   text       anything else: free text, SQL, values with spaces, the empty value
// uuid, ip and email reuse the whole-value detectors of normalize/normalizers.h
// (the sanitize detectors look for matches inside longer text, which is not a shape).
// Known limits: random strings of one letter case and no digits ("xkqjzmwpvhtbrnly")
// look like words; hex words without digits ("deadbeef") are words.

#include <cstdint>
#include <string_view>
#include <vector>

namespace cardinal::pipeline::cardinality {

enum class ValueShape : uint8_t {
  kUuid, kNumber, kHex, kTimestamp, kEmail, kIp, kPath, kToken, kWord, kText, kCount_
};
inline constexpr size_t kValueShapeCount = static_cast<size_t>(ValueShape::kCount_);

// "uuid", "number", "hex", "timestamp", "email", "ip", "path", "token", "word", "text".
std::string_view shapeName(ValueShape shape);

ValueShape classifyValue(std::string_view value);

// uuid, hex, token, timestamp: values that are identities, not categories
// (numbers are decided by their unique ratio elsewhere).
bool isIdentifierShape(ValueShape shape);

// Shannon entropy of the bytes of `value`, bits per character (0 for empty or
// single-symbol values, at most log2(min(size, 256))).
double charEntropyBits(std::string_view value);

// Entropy in bits of a value distribution known through the counts of its
// heaviest values, the total count and a distinct estimate: exact when the
// counts add up to the total; otherwise the remainder (total - sum) is spread
// evenly over max(1, distinct_estimate - counts.size()) further values (at
// most one per remaining unit of count). 0 for total == 0. Counts summing past
// the total are taken as the whole distribution.
double distributionEntropyBits(const std::vector<uint64_t>& counts, uint64_t total, double distinct_estimate);

}  // namespace cardinal::pipeline::cardinality
