#pragma once
// Value normalizers: pure functions that reduce a noisy label value to its meaning, so that
// values differing only in an id, a timestamp or a literal become one series. They are the
// building blocks of the `normalize` rule action and of the cardinality engine's value-shape
// profile. No regex, no allocation beyond growing the caller's `out` buffer, no shared state:
// safe to call from any thread.
//
// What must hold, for every normalizer and every input (checked by tests/fuzz/normalize):
//   * normalize() returns true only when `out` differs from `value`; false means "keep the value"
//     and leaves `out` unspecified.
//   * Valid UTF-8 in gives valid UTF-8 out (values are only cut at ASCII characters).
//   * Idempotent: a normalized value normalizes to itself (normalize() returns false on it).
//
// Output forms. Placeholders are `{` + lowercase name + `}` and are left alone when met again.
//   kUuid       8-4-4-4-12 hex (any case)                              -> {uuid}
//   kUlid       26 Crockford base32 chars, first 0-7, with a letter    -> {ulid}
//   kHexId      >= 12 hex chars with a digit and a letter, not mixed-case
//               (a git sha, a trace id), or 0x + hex digits             -> {hex}
//   kNumber     any decimal number: [+-]digits[.digits][e[+-]digits]   -> {num}
//               (explicitly chosen, so pids and small ids go too; kAuto is stricter, see below)
//   kTimestamp  ISO-8601 date-time: 2025-08-12T10:03:42.123456Z, a space instead of T,
//               no seconds, fractions, Z or +hh[:mm] / -hhmm offsets, basic 20250812T100342Z
//                                                                       -> {ts}
//               ISO-8601 date only: 2025-08-12                          -> {date}
//               epoch integers of 10 (s), 13 (ms), 16 (us) or 19 (ns) digits, or 10 digits with
//               a fraction (1691831294.123), within [2000-01-01, 2100-01-01)   -> {ts}
//   kIp         IPv4, IPv6 (RFC 5952 output), optionally with /prefix, :port, [v6]:port, %zone
//               -> the network: 10.1.2.3 -> 10.1.2.0/24, 2001:db8::1 -> 2001:db8::/64
//               (the prefix is the smaller of the value's and the option's; the port and zone are
//               dropped; ::ffff:a.b.c.d is treated as IPv4), or {ip} when !ip_to_network.
//   kEmail      local@domain.tld -> {email}@domain.tld (domain lowercased), or {email} when
//               !email_keep_domain.
//   kUrlPath    query string and fragment removed with everything they carry; scheme://host[:port]
//               kept (user:password@ removed); each path segment, empty ones and a trailing slash
//               kept as they are:
//                 route words kept: letters (any case, camelCase), words joined by - _ . ~ etc.
//                 (order-items), versions (v1, v2, v1beta1, 1.2, 2.0.1), a short list of words
//                 with digits (oauth2, sha256, ipv4, k8s, x509, utf8, ...);
//                 a whole segment that is an id -> {id}: digits, uuid, ulid, hex, email, letters
//                 mixed with digits (abc123), random-looking mixed-case letters (>= 16),
//                 percent-encoded text, a JWT; @user / ~user -> @{id} / ~{id};
//                 a whole date -> {date}, a whole ISO date-time -> {ts}, an IP -> {ip};
//                 ids inside a segment are replaced alone, by kind: item-abc123 -> item-{id},
//                 page-2 -> page-{num}, report-2024-01-02.csv -> report-{date}.csv,
//                 {uuid} {ulid} {hex} {ts} likewise; a segment left with placeholders and
//                 separators only becomes {id}.
//   kFilePath   '/' and '\' separated; conservative, since directory names like lib64 or
//               python3.11 are not ids:
//                 a whole segment: digits -> {id} (or {ts} when an epoch timestamp), uuid, ulid,
//                 hex, email, random-looking tokens -> {id}; dates -> {date}; ISO -> {ts};
//                 inside a segment: uuid, ulid, hex ids, ISO dates and times, epoch timestamps
//                 and numbers of >= 6 digits, random-looking letter/digit mixes are replaced:
//                 session_1691831294000 -> session_{ts}, report-<uuid>.pdf -> report-{uuid}.pdf;
//                 short numbers and words are kept (file-1.txt, app.log.3).
//   kSql        a fingerprint in the spirit of pg_stat_statements: string literals ('..' with ''
//               or backslash escapes, E'', B'', X'', N'', U&'', $tag$..$tag$), numbers (signed,
//               decimal, exponent, 0x..), TRUE and FALSE -> ?; $1, ?1 and :name placeholders kept;
//               IN (?, ?, ?) and ARRAY[?, ?] -> IN (?) and ARRAY[?]; VALUES (..), (..) -> the
//               first tuple; comments removed; whitespace runs -> one space, none inside
//               parentheses or before a comma, one after a comma and around keywords; trailing
//               semicolons dropped; keywords uppercased; identifiers and "quoted" names kept.
//               SELECT * FROM orders WHERE id = 12345 -> SELECT * FROM orders WHERE id = ?
//   kAuto       classify(), then the matching normalizer, except that kAuto leaves alone:
//               integers of < 6 digits (status codes, ports, small counts), floats (le bounds,
//               quantiles), date-only values, words (versions 1.2.3, v2, durations 30s, +Inf,
//               short hex words like cafe or deadbeef) and free text. A path is taken as a file
//               path when it starts with ~/ ./ ../ a drive letter or a well-known root
//               (/tmp, /var, /home, /usr, /etc, /opt, /proc, ...) or holds a backslash, else as
//               a URL path.
//
// The result may be empty: kUrlPath on "?q=1" gives "" (Prometheus then treats the label as
// absent).

#include <optional>
#include <string>
#include <string_view>

namespace cardinal::pipeline::normalize {

enum class Normalizer {
  kUuid, kUlid, kHexId, kNumber, kTimestamp, kIp, kEmail, kUrlPath, kSql, kFilePath, kAuto
};

// "uuid", "ulid", "hex", "number", "timestamp", "ip", "email", "url_path", "sql", "file_path",
// "auto"; anything else gives nullopt.
std::optional<Normalizer> parseNormalizer(std::string_view name);
std::string_view normalizerName(Normalizer n);

struct Options {
  bool ip_to_network = true;  // false: every address becomes {ip}
  int ipv4_prefix = 24;       // clamped to [0, 32]
  int ipv6_prefix = 64;       // clamped to [0, 128]
  bool email_keep_domain = true;
};

// Writes the normalized value into `out` and returns true when the value changes; false leaves
// `out` unspecified and means "keep the value". `out` must not alias `value`.
bool normalize(Normalizer n, std::string_view value, std::string& out, const Options& opts = {});

// The shape of a value, checked in this order (the first match wins):
//   kEmpty, kUuid, kTimestamp (ISO date-time or date, epoch), kNumber (any decimal number),
//   kHex, kUlid, kIp, kSql (starts with a SQL verb: uppercase, or lowercase and followed by a
//   second keyword such as from/into/set/where), kPath (/.., ./, ../, ~/, C:\, scheme://),
//   kEmail, kWord (no whitespace), kFreeText.
enum class Shape {
  kUuid, kUlid, kHex, kNumber, kTimestamp, kEmail, kIp, kPath, kSql, kWord, kFreeText, kEmpty
};
Shape classify(std::string_view value);
std::string_view shapeName(Shape s);

// The detectors behind the normalizers, each on a whole value, for other stages to reuse.
bool isUuid(std::string_view s);
bool isUlid(std::string_view s);
bool isHexId(std::string_view s);
bool isEpochTimestamp(std::string_view s);
bool isIsoTimestamp(std::string_view s, bool allow_date_only);
bool isEmail(std::string_view s);
bool isIp(std::string_view s);  // any form kIp accepts
bool isSql(std::string_view s);  // the kSql shape test used by classify()
bool isFilePath(std::string_view s);  // kAuto takes this path for a file path, not a URL path

}  // namespace cardinal::pipeline::normalize
