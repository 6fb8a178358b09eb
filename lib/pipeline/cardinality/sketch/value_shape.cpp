#include "pipeline/cardinality/sketch/value_shape.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>

#include "pipeline/normalize/normalizers.h"
#include "pipeline/sanitize/detectors.h"
#include "pipeline/sanitize/redactor.h"

namespace cardinal::pipeline::cardinality {
namespace {

enum : uint8_t {
  kDigit = 1 << 0,
  kLower = 1 << 1,
  kUpper = 1 << 2,
  kHex = 1 << 3,
  kSpace = 1 << 4,
  kWordChar = 1 << 5,  // [A-Za-z0-9_.:-]
  kB64Char = 1 << 6,   // base64 and base64url alphabets: [A-Za-z0-9+/_-]
};
constexpr uint8_t kAlnum = kDigit | kLower | kUpper;

constexpr std::array<uint8_t, 256> makeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t m = 0;
    if (c >= '0' && c <= '9') m |= kDigit | kHex;
    if (c >= 'a' && c <= 'z') m |= kLower;
    if (c >= 'A' && c <= 'Z') m |= kUpper;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) m |= kHex;
    if (m & kAlnum) m |= kWordChar | kB64Char;
    t[c] = m;
  }
  for (unsigned char c : std::string_view("_.:-")) t[c] |= kWordChar;
  for (unsigned char c : std::string_view("+/_-")) t[c] |= kB64Char;
  for (unsigned char c : std::string_view(" \t\n\r\v\f")) t[c] |= kSpace;
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = makeClasses();

inline uint8_t classOf(char c) { return kClasses[static_cast<unsigned char>(c)]; }
inline bool is(char c, uint8_t mask) { return (classOf(c) & mask) != 0; }
inline bool isDigit(char c) { return is(c, kDigit); }

bool allOf(std::string_view s, uint8_t mask) {
  for (char c : s)
    if (!is(c, mask)) return false;
  return true;
}

size_t digitRun(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && isDigit(s[j])) ++j;
  return j - i;
}

bool isNumber(std::string_view s) {
  if (s == "NaN" || s == "Inf" || s == "+Inf" || s == "-Inf") return true;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = digitRun(s, i);
  i += digits;
  if (i < s.size() && s[i] == '.') {
    const size_t frac = digitRun(s, ++i);
    i += frac;
    digits += frac;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t exp = digitRun(s, i);
    if (exp == 0) return false;
    i += exp;
  }
  return i == s.size();
}

bool isHex(std::string_view s) {
  if (s.size() >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return allOf(s.substr(2), kHex);
  if (s.size() < 8 || !allOf(s, kHex)) return false;
  bool digit = false, letter = false;
  for (char c : s) {
    digit = digit || isDigit(c);
    letter = letter || !isDigit(c);
  }
  return digit && letter;
}

int twoDigits(std::string_view s, size_t i) { return (s[i] - '0') * 10 + (s[i + 1] - '0'); }

// HH:MM:SS with an optional fraction and an optional Z: "10:03:42", "23:59:60.5Z".
bool isTimeOfDay(std::string_view s) {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return false;
  for (size_t i : {0, 1, 3, 4, 6, 7})
    if (!isDigit(s[i])) return false;
  if (twoDigits(s, 0) > 23 || twoDigits(s, 3) > 59 || twoDigits(s, 6) > 60) return false;
  std::string_view rest = s.substr(8);
  if (!rest.empty() && rest[0] == '.') {
    const size_t frac = digitRun(rest, 1);
    if (frac == 0) return false;
    rest.remove_prefix(1 + frac);
  }
  return rest.empty() || rest == "Z" || rest == "z";
}

bool isUuid(std::string_view s) {
  if (s.size() == 38 && s.front() == '{' && s.back() == '}') s = s.substr(1, 36);
  return normalize::isUuid(s);
}

// "eyJ" + header.payload.signature in base64url (the signature may be empty: alg none).
bool isJwtLike(std::string_view s) {
  if (s.size() < 17 || !s.starts_with("eyJ")) return false;
  int dots = 0;
  size_t segment = 0;
  for (char c : s) {
    if (c == '.') {
      if (segment == 0 || ++dots > 2) return false;
      segment = 0;
    } else if ((is(c, kAlnum) || c == '-' || c == '_' || c == '=')) {
      ++segment;
    } else {
      return false;
    }
  }
  return dots == 2;
}

// A '/'-separated segment that is a lower-case word ("users", "orders", "file.txt").
bool hasWordSegment(std::string_view s) {
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '/') continue;
    size_t letters = 0;
    bool word = true;
    for (char c : s.substr(start, i - start)) {
      if (is(c, kLower)) ++letters;
      else if (c != '-' && c != '_' && c != '.') word = false;
    }
    if (word && letters >= 3) return true;
    start = i + 1;
  }
  return false;
}

// A generated-looking base64 / base64url / base62 string: >= 16 characters of those alphabets
// (padding '=' at the end only), >= 3 bits of entropy per character, not a path (no leading '/',
// no '/'-segment that is a lower-case word), and either
//   * letters and digits switching at least 3 times (k3j9x2m4..., base36 and base62 ids), or
//   * both cases at >= 25 % of the letters each, switching case at least every third letter
//     (random base62 / base64 with few digits).
// Identifiers built from words are not: camelCase has < 25 % capitals ("getUserOrdersById",
// "SamlAuthenticationProvider"), and rarely more than two letter/digit switches
// ("OrderCreatedEventV2", "HTTPServerError500", "internal_server_error_v2").
bool looksRandom(std::string_view s) {
  constexpr size_t kMinRandomLength = 16;
  size_t end = s.size();
  while (end > 0 && s[end - 1] == '=' && s.size() - end < 2) --end;
  const std::string_view body = s.substr(0, end);
  if (body.size() < kMinRandomLength || body[0] == '/' || !allOf(body, kB64Char)) return false;
  size_t lower = 0, upper = 0, digits = 0, digit_switches = 0, case_switches = 0;
  uint8_t prev = 0;
  for (char c : body) {
    const uint8_t cls = classOf(c) & kAlnum;  // one of 0, kDigit, kLower, kUpper
    lower += cls == kLower;
    upper += cls == kUpper;
    digits += cls == kDigit;
    if (cls != 0 && prev != 0) {
      digit_switches += (cls == kDigit) != (prev == kDigit);
      case_switches += cls != kDigit && prev != kDigit && cls != prev;
    }
    prev = cls;
  }
  const size_t letters = lower + upper;
  const bool mixed_digits = digits > 0 && letters > 0 && digit_switches >= 3;
  const bool mixed_case = upper * 4 >= letters && lower * 4 >= letters && case_switches * 3 >= letters;
  if (!mixed_digits && !mixed_case) return false;
  if (body.find('/') != std::string_view::npos && hasWordSegment(body)) return false;
  return sanitize::shannonEntropyBitsPerChar(body) >= 3.0;
}

bool isPath(std::string_view s) {
  for (char c : s)
    if (is(c, kSpace)) return false;
  for (size_t i = s.find('/'); i != std::string_view::npos; i = s.find('/', i + 1))
    if (i + 1 < s.size() && s[i + 1] != '/') return true;
  return false;
}

bool isWord(std::string_view s) {
  constexpr size_t kMaxWordLength = 64;
  return !s.empty() && s.size() <= kMaxWordLength && is(s[0], kAlnum) && allOf(s, kWordChar);
}

constexpr std::string_view kShapeNames[] = {"uuid", "number", "hex",   "timestamp", "email",
                                            "ip",   "path",   "token", "word",      "text"};
static_assert(std::size(kShapeNames) == kValueShapeCount);

}  // namespace

std::string_view shapeName(ValueShape shape) {
  const auto i = static_cast<size_t>(shape);
  return i < kValueShapeCount ? kShapeNames[i] : std::string_view("unknown");
}

ValueShape classifyValue(std::string_view v) {
  if (v.empty()) return ValueShape::kText;
  if (sanitize::Redactor::isToken(v)) return ValueShape::kToken;
  if (isUuid(v)) return ValueShape::kUuid;
  if (normalize::isIsoTimestamp(v, true) || normalize::isEpochTimestamp(v) || isTimeOfDay(v))
    return ValueShape::kTimestamp;
  if (isNumber(v)) return ValueShape::kNumber;
  if (isHex(v)) return ValueShape::kHex;
  if (normalize::isIp(v)) return ValueShape::kIp;
  if (normalize::isEmail(v)) return ValueShape::kEmail;
  if (isJwtLike(v) || normalize::isUlid(v) || looksRandom(v)) return ValueShape::kToken;
  if (isPath(v)) return ValueShape::kPath;
  if (isWord(v)) return ValueShape::kWord;
  return ValueShape::kText;
}

bool isIdentifierShape(ValueShape shape) {
  switch (shape) {
    case ValueShape::kUuid:
    case ValueShape::kHex:
    case ValueShape::kToken:
    case ValueShape::kTimestamp: return true;
    default: return false;
  }
}

double charEntropyBits(std::string_view value) { return sanitize::shannonEntropyBitsPerChar(value); }

double distributionEntropyBits(const std::vector<uint64_t>& counts, uint64_t total, double distinct_estimate) {
  if (total == 0) return 0.0;
  uint64_t covered = 0;
  for (uint64_t c : counts) covered = c > UINT64_MAX - covered ? UINT64_MAX : covered + c;
  // Counts that cover (or overshoot) the total are the whole distribution.
  const double denom = static_cast<double>(std::max(covered, total));
  double h = 0.0;
  for (uint64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / denom;
    h -= p * std::log2(p);
  }
  if (covered >= total) return h;
  const double rest = static_cast<double>(total - covered);
  double others = std::isfinite(distinct_estimate) ? distinct_estimate - static_cast<double>(counts.size()) : 1.0;
  others = std::clamp(others, 1.0, rest);  // at least one more value, at most one per unit of count
  const double p = rest / denom / others;
  return h - rest / denom * std::log2(p);
}

}  // namespace cardinal::pipeline::cardinality
