#include "pipeline/normalize/normalizers.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

namespace cardinal::pipeline::normalize {
namespace {

using sv = std::string_view;

constexpr bool isDigit(char c) { return c >= '0' && c <= '9'; }
constexpr bool isLower(char c) { return c >= 'a' && c <= 'z'; }
constexpr bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }
constexpr bool isAlpha(char c) { return isLower(c) || isUpper(c); }
constexpr bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }
constexpr bool isHigh(char c) { return static_cast<unsigned char>(c) >= 0x80; }
// A byte of a word: ASCII letter or digit, or any byte of a non-ASCII UTF-8 sequence. Values are
// only ever cut between word and non-word bytes, so valid UTF-8 stays valid.
constexpr bool isWordByte(char c) { return isAlnum(c) || isHigh(c); }
constexpr bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr char toLower(char c) { return isUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr char toUpper(char c) { return isLower(c) ? static_cast<char>(c - 'a' + 'A') : c; }

bool allDigits(sv s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!isDigit(c)) return false;
  return true;
}

bool hasSpace(sv s) {
  for (char c : s)
    if (isSpace(c)) return true;
  return false;
}

bool equalsIgnoreCase(sv a, sv b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (toLower(a[i]) != toLower(b[i])) return false;
  return true;
}

bool startsWith(sv s, sv prefix) { return s.substr(0, prefix.size()) == prefix; }

// Length of a placeholder `{name}` (1-16 lowercase letters) at s[i], 0 if there is none.
size_t placeholderAt(sv s, size_t i) {
  if (i >= s.size() || s[i] != '{') return 0;
  size_t j = i + 1;
  while (j < s.size() && j - i <= 16 && isLower(s[j])) ++j;
  if (j == i + 1 || j >= s.size() || s[j] != '}') return 0;
  return j + 1 - i;
}

bool isPlaceholder(sv s) { return !s.empty() && placeholderAt(s, 0) == s.size(); }

// True when a match of length i ends s or is followed by a non-word byte. A separator followed
// by a placeholder does not end a match either: "2025-08-12T10:03:{num}" must not become
// "{ts}:{num}" on a second pass, since the first one saw a malformed time there and kept it.
bool boundaryAt(sv s, size_t i) {
  return i >= s.size() || (!isWordByte(s[i]) && !(i + 1 < s.size() && s[i + 1] == '{'));
}

// ---- numbers and timestamps ----------------------------------------------------------------

// [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
bool isDecimalNumber(sv s) {
  size_t i = 0, n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < n && isDigit(s[i])) ++i, ++digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && isDigit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp = 0;
    while (i < n && isDigit(s[i])) ++i, ++exp;
    if (exp == 0) return false;
  }
  return i == n;
}

// Digits of an optionally signed integer, 0 when s is not one.
size_t integerDigits(sv s) {
  size_t i = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  return allDigits(s.substr(i)) ? s.size() - i : 0;
}

constexpr uint64_t kEpoch2000 = 946684800;   // 2000-01-01T00:00:00Z
constexpr uint64_t kEpoch2100 = 4102444800;  // 2100-01-01T00:00:00Z

int twoDigits(sv s, size_t i) {
  if (i + 1 >= s.size() || !isDigit(s[i]) || !isDigit(s[i + 1])) return -1;
  return (s[i] - '0') * 10 + (s[i + 1] - '0');
}

int daysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// A separator commits to the component after it when a digit or a placeholder follows: the
// component must then be valid, or there is no timestamp at all. Matches never fall back to a
// shorter form because of what follows them, which is what keeps path templating idempotent:
// a second pass sees placeholders where the first saw digits, and must decide the same way.
bool commits(sv s, size_t i) { return i < s.size() && (isDigit(s[i]) || s[i] == '{'); }

// Length of the time of day (and zone) starting at s[i]: hh:mm[:ss[.frac]][Z|+hh[:mm]]
// (extended) or hhmm[ss[.frac]][Z|+hh[mm]] (basic); 0 if there is none.
size_t timeLength(sv s, size_t i, bool extended) {
  const size_t start = i, n = s.size();
  int h = twoDigits(s, i);
  if (h < 0 || h > 23) return 0;
  i += 2;
  if (extended) {
    if (i >= n || s[i] != ':') return 0;
    ++i;
  }
  int m = twoDigits(s, i);
  if (m < 0 || m > 59) return 0;
  i += 2;
  bool seconds = false;
  if (extended ? i < n && s[i] == ':' && commits(s, i + 1) : commits(s, i)) {
    size_t at = extended ? i + 1 : i;
    int sec = twoDigits(s, at);
    if (sec < 0 || sec > 60) return 0;
    i = at + 2;
    seconds = true;
  }
  if (seconds && i < n && (s[i] == '.' || s[i] == ',') && commits(s, i + 1)) {
    if (!isDigit(s[i + 1])) return 0;
    ++i;
    while (i < n && isDigit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < n && (s[i] == '+' || s[i] == '-') && commits(s, i + 1)) {
    int oh = twoDigits(s, i + 1);
    if (oh < 0 || oh > 23) return 0;
    i += 3;
    if (i < n && s[i] == ':' && commits(s, i + 1)) {
      int om = twoDigits(s, i + 1);
      if (om < 0 || om > 59) return 0;
      i += 3;
    } else if (commits(s, i)) {
      int om = twoDigits(s, i);
      if (om < 0 || om > 59) return 0;
      i += 2;
    }
  }
  return i - start;
}

// Length of the ISO-8601 date (yyyy-mm-dd) or date-time that starts s, 0 if none. A basic-format
// date (yyyymmdd) only counts with a time after it: alone it is a number.
size_t isoLength(sv s, bool* has_time) {
  *has_time = false;
  const size_t n = s.size();
  if (n < 8) return 0;
  for (size_t i = 0; i < 4; ++i)
    if (!isDigit(s[i])) return 0;
  int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  const bool extended = s[4] == '-';
  int month = 0, day = 0;
  size_t i = 0;
  if (extended) {
    if (n < 10 || s[7] != '-') return 0;
    month = twoDigits(s, 5);
    day = twoDigits(s, 8);
    i = 10;
  } else {
    month = twoDigits(s, 4);
    day = twoDigits(s, 6);
    i = 8;
  }
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return 0;
  if (i < n && (s[i] == 'T' || s[i] == 't' || (extended && s[i] == ' ' && commits(s, i + 1)))) {
    size_t t = timeLength(s, i + 1, extended);
    if (t == 0) return 0;
    *has_time = true;
    return i + 1 + t;
  }
  return extended ? i : 0;
}

// ---- identifiers ---------------------------------------------------------------------------

bool isCrockford(char c) {
  c = toUpper(c);
  return isDigit(c) || (isUpper(c) && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}

// Letters and digits that look generated rather than written: several letter/digit alternations
// (k3j4h5l6), a long letter+digit mix, or a long run of letters in random case.
bool looksRandom(sv t) {
  size_t digits = 0, upper = 0, lower = 0, digit_switches = 0, case_switches = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (!isAlnum(c)) return false;
    digits += isDigit(c);
    upper += isUpper(c);
    lower += isLower(c);
    if (i > 0) {
      digit_switches += isDigit(c) != isDigit(t[i - 1]);
      case_switches += isAlpha(c) && isAlpha(t[i - 1]) && isUpper(c) != isUpper(t[i - 1]);
    }
  }
  size_t letters = upper + lower;
  if (digits > 0 && letters > 0) return digit_switches >= 3 || t.size() >= 16;
  if (digits == 0 && t.size() >= 16)
    return upper * 4 >= letters && lower * 4 >= letters && case_switches * 3 >= letters;
  return false;
}

// v1, v2, v10, v1beta1, v2alpha, v3rc1.
bool isVersionToken(sv t) {
  if (t.size() < 2 || (t[0] != 'v' && t[0] != 'V')) return false;
  size_t i = 1;
  while (i < t.size() && isDigit(t[i]) && i <= 4) ++i;
  if (i == 1) return false;
  if (i == t.size()) return true;
  sv rest = t.substr(i);
  for (sv tag : {sv("alpha"), sv("beta"), sv("rc")}) {
    if (!startsWith(rest, tag)) continue;
    sv number = rest.substr(tag.size());
    if (number.empty() || (number.size() <= 4 && allDigits(number))) return true;
  }
  return false;
}

// 1.2, 2.0.1, v1.2.3: 2-4 dot-separated parts of 1-4 digits, optionally v-prefixed.
bool isDottedVersion(sv s) {
  size_t i = !s.empty() && (s[0] == 'v' || s[0] == 'V') ? 1 : 0;
  int parts = 0;
  while (true) {
    size_t start = i;
    while (i < s.size() && isDigit(s[i])) ++i;
    if (i == start || i - start > 4) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.') return false;
    ++i;
  }
  return parts >= 2 && parts <= 4;
}

// Route words that contain digits but are not ids. Sorted, lowercase.
constexpr sv kRouteWordsWithDigits[] = {
    "1080p", "2fa",  "3d",    "4k",   "720p", "amd64", "arm64", "b2b",  "b2c",    "base32",
    "base64", "e2e", "ec2",   "h2",   "h3",   "http2", "http3", "i18n", "ipv4",   "ipv6",
    "k8s",   "l10n", "md5",   "mp3",  "mp4",  "oauth1", "oauth2", "p2p", "s3",    "sha1",
    "sha256", "sha512", "utf16", "utf8", "w3c", "win32", "win64", "x509", "x64",  "x86",
};
static_assert(std::is_sorted(std::begin(kRouteWordsWithDigits), std::end(kRouteWordsWithDigits)));

bool isRouteWordWithDigits(sv t) {
  char buf[8];
  if (t.size() > sizeof(buf)) return false;
  for (size_t i = 0; i < t.size(); ++i) buf[i] = toLower(t[i]);
  return std::binary_search(std::begin(kRouteWordsWithDigits), std::end(kRouteWordsWithDigits),
                            sv(buf, t.size()));
}

bool hasPercentEscape(sv s) {
  for (size_t i = 0; i + 2 < s.size(); ++i)
    if (s[i] == '%' && isHexDigit(s[i + 1]) && isHexDigit(s[i + 2])) return true;
  return false;
}

// A JWT: base64url parts joined by dots, the first one an encoded '{"'.
bool isJwtLike(sv s) {
  if (s.size() < 16 || !startsWith(s, "eyJ") || s.find('.') == sv::npos) return false;
  for (char c : s)
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '=') return false;
  return true;
}

// ---- IP addresses --------------------------------------------------------------------------

struct IpAddress {
  bool v6 = false;
  uint8_t bytes[16] = {};
  int prefix = -1;  // -1: none given
};

bool parseV4(sv s, uint8_t* out) {
  size_t i = 0;
  for (int k = 0; k < 4; ++k) {
    if (k > 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
    size_t start = i;
    int v = 0;
    while (i < s.size() && isDigit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
    if (i == start || v > 255 || (i - start > 1 && s[start] == '0')) return false;
    out[k] = static_cast<uint8_t>(v);
  }
  return i == s.size();
}

bool parseV6(sv s, uint8_t* out) {
  char buf[64];
  if (s.size() < 2 || s.size() >= sizeof(buf) || s.find(':') == sv::npos) return false;
  for (char c : s)
    if (!isHexDigit(c) && c != ':' && c != '.') return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return inet_pton(AF_INET6, buf, out) == 1;
}

// Drops a %zone suffix (fe80::1%eth0).
bool stripZone(sv& s) {
  size_t pct = s.find('%');
  if (pct == sv::npos) return true;
  sv zone = s.substr(pct + 1);
  if (zone.empty()) return false;
  for (char c : zone)
    if (!isAlnum(c) && c != '.' && c != '_' && c != '-') return false;
  s = s.substr(0, pct);
  return true;
}

bool parseNumberMax(sv s, int max, int& out) {
  if (s.empty() || s.size() > 5 || !allDigits(s)) return false;
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  if (v > max) return false;
  out = v;
  return true;
}

bool parseIp(sv s, IpAddress& ip) {
  if (s.size() < 2 || s.size() > 80) return false;
  int unused = 0;
  if (s[0] == '[') {  // [v6] or [v6]:port
    size_t close = s.find(']');
    if (close == sv::npos) return false;
    sv inner = s.substr(1, close - 1), rest = s.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !parseNumberMax(rest.substr(1), 65535, unused)))
      return false;
    if (!stripZone(inner) || !parseV6(inner, ip.bytes)) return false;
    ip.v6 = true;
  } else {
    sv addr = s;
    size_t slash = s.find('/');
    if (slash != sv::npos) {
      addr = s.substr(0, slash);
      if (!parseNumberMax(s.substr(slash + 1), 128, ip.prefix)) return false;
    }
    size_t colon = addr.find(':');
    if (colon == sv::npos) {
      if (!parseV4(addr, ip.bytes)) return false;
    } else if (addr.find(':', colon + 1) == sv::npos) {  // a.b.c.d:port
      if (slash != sv::npos || !parseV4(addr.substr(0, colon), ip.bytes) ||
          !parseNumberMax(addr.substr(colon + 1), 65535, unused))
        return false;
    } else {
      if (!stripZone(addr) || !parseV6(addr, ip.bytes)) return false;
      ip.v6 = true;
    }
    if (!ip.v6 && ip.prefix > 32) return false;
  }
  // ::ffff:a.b.c.d is an IPv4 address.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.v6 && std::memcmp(ip.bytes, kMapped, 12) == 0 && (ip.prefix < 0 || ip.prefix >= 96)) {
    std::memmove(ip.bytes, ip.bytes + 12, 4);
    std::memset(ip.bytes + 4, 0, 12);
    ip.v6 = false;
    if (ip.prefix >= 0) ip.prefix -= 96;
  }
  return true;
}

void appendUint(std::string& out, unsigned v) {
  char buf[12];
  size_t n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}

void appendNetwork(const IpAddress& ip, const Options& opts, std::string& out) {
  const int max = ip.v6 ? 128 : 32;
  int prefix = std::clamp(ip.v6 ? opts.ipv6_prefix : opts.ipv4_prefix, 0, max);
  if (ip.prefix >= 0) prefix = std::min(prefix, ip.prefix);
  uint8_t b[16];
  std::memcpy(b, ip.bytes, sizeof(b));
  for (int k = 0; k < 16; ++k) {
    int bits = prefix - 8 * k;
    if (bits <= 0) {
      b[k] = 0;
    } else if (bits < 8) {
      b[k] = static_cast<uint8_t>(b[k] & (0xff << (8 - bits)));
    }
  }
  if (ip.v6) {
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, b, buf, sizeof(buf)) == nullptr) buf[0] = '\0';
    out.append(buf);
  } else {
    for (int k = 0; k < 4; ++k) {
      if (k > 0) out.push_back('.');
      appendUint(out, b[k]);
    }
  }
  out.push_back('/');
  appendUint(out, static_cast<unsigned>(prefix));
}

// ---- email ---------------------------------------------------------------------------------

bool isAtext(char c) {
  static constexpr sv kPunct = "!#$%&'*+/=?^_`{|}~-.";
  return isAlnum(c) || isHigh(c) || kPunct.find(c) != sv::npos;
}

bool splitEmail(sv s, sv& local, sv& domain) {
  size_t at = s.find('@');
  if (at == sv::npos || at == 0) return false;  // no length limit: paths rely on it
  local = s.substr(0, at);
  domain = s.substr(at + 1);
  if (local.front() == '.' || local.back() == '.') return false;
  for (char c : local)
    if (!isAtext(c)) return false;
  if (domain.empty() || domain.size() > 253) return false;
  size_t labels = 0, start = 0;
  sv label;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    if (dot == sv::npos) dot = domain.size();
    label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!isWordByte(c) && c != '-') return false;
    ++labels;
    start = dot + 1;
  }
  // The top-level label: two or more characters, starting with a letter.
  return labels >= 2 && label.size() >= 2 && (isAlpha(label[0]) || isHigh(label[0]));
}

// ---- paths ---------------------------------------------------------------------------------

enum class PathKind { kUrl, kFile };

// The placeholder for one word (a maximal run of word bytes) inside a path segment, or an empty
// view to keep it.
sv tokenPlaceholder(sv t, PathKind kind) {
  if (isUlid(t)) return "{ulid}";
  if (isHexId(t)) return "{hex}";
  if (allDigits(t)) {
    if (isEpochTimestamp(t)) return "{ts}";
    return kind == PathKind::kUrl || t.size() >= 6 ? sv("{num}") : sv();
  }
  if (kind == PathKind::kFile) return looksRandom(t) ? sv("{id}") : sv();
  if (isVersionToken(t) || isRouteWordWithDigits(t)) return {};
  bool digit = false, letter = false;
  for (char c : t) {
    digit |= isDigit(c);
    letter |= isAlpha(c) || isHigh(c);
  }
  if (digit && letter) return "{id}";
  return looksRandom(t) ? sv("{id}") : sv();
}

// Appends the normalized form of one path segment (the text between separators).
void appendSegment(sv seg, PathKind kind, std::string& out) {
  if (seg.empty() || seg == "." || seg == ".." || isPlaceholder(seg)) {
    out.append(seg);
    return;
  }
  bool has_time = false;
  if (isoLength(seg, &has_time) == seg.size()) {
    out.append(has_time ? "{ts}" : "{date}");
    return;
  }
  if (allDigits(seg)) {
    out.append(kind == PathKind::kFile && isEpochTimestamp(seg) ? "{ts}" : "{id}");
    return;
  }
  // An email whose local part holds no braces: "{ts}@host.com" is what a first pass left.
  if (isUuid(seg) || isUlid(seg) || isHexId(seg) || (isEmail(seg) && seg.find('{') == sv::npos)) {
    out.append("{id}");
    return;
  }
  uint8_t bytes[16];
  if (parseV4(seg, bytes) || parseV6(seg, bytes)) {
    out.append("{ip}");
    return;
  }
  if (kind == PathKind::kUrl) {
    if ((seg[0] == '@' || seg[0] == '~') && seg.size() > 1) {  // @user, ~user
      out.push_back(seg[0]);
      out.append("{id}");
      return;
    }
    if (hasPercentEscape(seg) || isJwtLike(seg)) {  // encoded text, a token
      out.append("{id}");
      return;
    }
    if (isDottedVersion(seg)) {
      out.append(seg);
      return;
    }
  }
  // Replace the ids inside the segment, one word at a time; uuids and ISO dates span separators.
  const size_t start = out.size();
  bool kept_word = false;
  size_t placeholders = 0;
  size_t i = 0;
  while (i < seg.size()) {
    char c = seg[i];
    if (size_t p = placeholderAt(seg, i)) {
      out.append(seg.substr(i, p));
      i += p;
      ++placeholders;
      continue;
    }
    if (!isWordByte(c)) {
      out.push_back(c);
      ++i;
      continue;
    }
    sv rest = seg.substr(i);
    if (rest.size() >= 36 && isUuid(rest.substr(0, 36)) && boundaryAt(rest, 36)) {
      out.append("{uuid}");
      i += 36;
      ++placeholders;
      continue;
    }
    if (size_t len = isoLength(rest, &has_time); len > 0 && boundaryAt(rest, len)) {
      out.append(has_time ? "{ts}" : "{date}");
      i += len;
      ++placeholders;
      continue;
    }
    size_t j = i;
    while (j < seg.size() && isWordByte(seg[j])) ++j;
    sv word = seg.substr(i, j - i);
    sv placeholder = tokenPlaceholder(word, kind);
    if (placeholder.empty()) {
      out.append(word);
      kept_word = true;
    } else {
      out.append(placeholder);
      ++placeholders;
    }
    i = j;
  }
  // A URL segment made of ids and separators only (123-456, {uuid}=) is one id.
  if (kind == PathKind::kUrl && !kept_word && placeholders > 0 &&
      !isPlaceholder(sv(out).substr(start))) {
    out.resize(start);
    out.append("{id}");
  }
}

// Index just after "scheme://", 0 when s does not start with one.
size_t schemeLength(sv s) {
  if (s.empty() || !isAlpha(s[0])) return 0;
  size_t i = 1;
  while (i < s.size() && i < 32 && (isAlnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
    ++i;
  return s.substr(i, 3) == "://" ? i + 3 : 0;
}

bool isDriveLetterPath(sv s) {  // C:\ or C:/
  return s.size() >= 3 && isAlpha(s[0]) && s[1] == ':' && (s[2] == '\\' || s[2] == '/');
}

bool isPathLike(sv s) {
  return s[0] == '/' || startsWith(s, "./") || startsWith(s, "../") || startsWith(s, "~/") ||
         isDriveLetterPath(s) || schemeLength(s) > 0;
}

// Whether kAuto takes a path for a file path rather than a URL path.
bool isFilePathLike(sv s) {
  if (s.find('\\') != sv::npos || startsWith(s, "./") || startsWith(s, "../") ||
      startsWith(s, "~/") || isDriveLetterPath(s))
    return true;
  if (s.empty() || s[0] != '/') return false;
  static constexpr sv kRoots[] = {"Users", "Volumes", "bin",  "boot", "dev", "etc", "home", "lib",
                                  "lib64", "media",   "mnt",  "nix",  "opt", "private", "proc",
                                  "root",  "run",     "sbin", "snap", "srv", "sys", "tmp",  "usr",
                                  "var"};
  size_t slash = s.find('/', 1);
  sv first = s.substr(1, slash == sv::npos ? sv::npos : slash - 1);
  for (sv root : kRoots)
    if (first == root) return true;
  return false;
}

void normalizeUrlPath(sv v, std::string& out) {
  size_t i = 0;
  if (size_t scheme = schemeLength(v)) {
    out.append(v.substr(0, scheme));
    size_t end = v.find_first_of("/?#", scheme);
    if (end == sv::npos) end = v.size();
    sv authority = v.substr(scheme, end - scheme);
    size_t at = authority.rfind('@');  // user:password@
    if (at != sv::npos) authority = authority.substr(at + 1);
    out.append(authority);
    i = end;
  }
  size_t end = v.find_first_of("?#", i);
  sv path = v.substr(i, end == sv::npos ? sv::npos : end - i);
  if (path.empty()) return;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    sv segment = path.substr(start, slash == sv::npos ? sv::npos : slash - start);
    appendSegment(segment, PathKind::kUrl, out);
    if (slash == sv::npos) break;
    out.push_back('/');
    start = slash + 1;
  }
}

void normalizeFilePath(sv v, std::string& out) {
  size_t start = 0;
  while (true) {
    size_t sep = v.find_first_of("/\\", start);
    appendSegment(v.substr(start, sep == sv::npos ? sv::npos : sep - start), PathKind::kFile, out);
    if (sep == sv::npos) break;
    out.push_back(v[sep]);
    start = sep + 1;
  }
}

// ---- SQL -----------------------------------------------------------------------------------

// Keywords uppercased by the fingerprint. Sorted.
constexpr sv kSqlKeywords[] = {
    "ALL", "ALTER", "AND", "ANY", "ARRAY", "AS", "ASC", "BEGIN", "BETWEEN", "BY", "CALL", "CASE",
    "CAST", "COMMIT", "CONFLICT", "CREATE", "CROSS", "DELETE", "DESC", "DISTINCT", "DO", "DROP",
    "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "EXPLAIN", "FETCH", "FOR", "FROM", "FULL", "GROUP",
    "HAVING", "ILIKE", "IN", "INNER", "INSERT", "INTERSECT", "INTERVAL", "INTO", "IS", "JOIN",
    "LATERAL", "LEFT", "LIKE", "LIMIT", "LOCKED", "MERGE", "NATURAL", "NOT", "NOTHING", "NOWAIT",
    "NULL", "NULLS", "OFFSET", "ON", "OR", "ORDER", "OUTER", "OVER", "PARTITION", "RECURSIVE",
    "RETURNING", "RIGHT", "ROLLBACK", "SELECT", "SET", "SIMILAR", "SOME", "TABLE", "THEN",
    "TRUNCATE", "UNION", "UPDATE", "UPSERT", "USING", "VALUES", "WHEN", "WHERE", "WINDOW", "WITH",
};
static_assert(std::is_sorted(std::begin(kSqlKeywords), std::end(kSqlKeywords)));

// Statement verbs that make a value SQL for classify(). Sorted.
constexpr sv kSqlVerbs[] = {"ALTER",  "CALL",   "CREATE", "DELETE",   "DROP",   "EXPLAIN", "INSERT",
                            "MERGE",  "REPLACE", "SELECT", "TRUNCATE", "UPDATE", "UPSERT",  "WITH"};
static_assert(std::is_sorted(std::begin(kSqlVerbs), std::end(kSqlVerbs)));

// The keyword `word` spells (case-insensitively), as an entry of `table`; empty if none.
template <size_t N>
sv findKeyword(const sv (&table)[N], sv word) {
  char buf[12];
  if (word.size() < 2 || word.size() > sizeof(buf)) return {};
  for (size_t i = 0; i < word.size(); ++i) {
    if (!isAlpha(word[i])) return {};
    buf[i] = toUpper(word[i]);
  }
  sv key(buf, word.size());
  auto it = std::lower_bound(std::begin(table), std::end(table), key);
  return it != std::end(table) && *it == key ? *it : sv();
}

constexpr bool isIdentStart(char c) { return isAlpha(c) || c == '_' || isHigh(c); }
constexpr bool isIdentChar(char c) { return isAlnum(c) || c == '_' || c == '$' || isHigh(c); }
constexpr bool isOpChar(char c) {
  switch (c) {
    case '+': case '-': case '*': case '/': case '<': case '>': case '=': case '~': case '!':
    case '@': case '#': case '%': case '^': case '&': case '|': case ':': case '$': case '\\':
      return true;
    default:
      return false;
  }
}

size_t skipBlockComment(sv s, size_t i) {  // s[i..] starts with "/*"; comments nest as in Postgres
  int level = 0;
  while (i + 1 < s.size()) {
    if (s[i] == '/' && s[i + 1] == '*') {
      ++level;
      i += 2;
    } else if (s[i] == '*' && s[i + 1] == '/') {
      i += 2;
      if (--level == 0) return i;
    } else {
      ++i;
    }
  }
  return s.size();
}

// s[i] is the opening quote of a string literal. Both '' and backslash escapes are honoured: a
// literal is never cut short, so no part of it can leak into the fingerprint.
size_t skipString(sv s, size_t i) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == '\'') {
      if (j + 1 < s.size() && s[j + 1] == '\'') {
        ++j;
      } else {
        return j + 1;
      }
    }
  }
  return s.size();
}

size_t skipQuoted(sv s, size_t i, char q) {  // "identifier" or `identifier`, doubled quote escapes
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == q) {
      if (j + 1 < s.size() && s[j + 1] == q) {
        ++j;
      } else {
        return j + 1;
      }
    }
  }
  return s.size();
}

size_t skipNumber(sv s, size_t i) {
  const size_t n = s.size();
  if (s[i] == '0' && i + 2 < n && (s[i + 1] == 'x' || s[i + 1] == 'X') && isHexDigit(s[i + 2])) {
    i += 2;
    while (i < n && (isHexDigit(s[i]) || s[i] == '_')) ++i;
    return i;
  }
  while (i < n && (isDigit(s[i]) || s[i] == '_')) ++i;
  if (i < n && s[i] == '.' && !(i + 1 < n && s[i + 1] == '.')) {
    ++i;
    while (i < n && (isDigit(s[i]) || s[i] == '_')) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < n && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < n && isDigit(s[j])) {
      while (j < n && isDigit(s[j])) ++j;
      i = j;
    }
  }
  return i;
}

// Index after the opening $tag$ of a dollar-quoted string at s[i], 0 if there is none. Tags are
// at most 63 bytes, as in Postgres, which also bounds the search for the closing tag.
size_t dollarTagEnd(sv s, size_t i) {
  size_t j = i + 1;
  if (j < s.size() && (isAlpha(s[j]) || s[j] == '_')) {
    while (j < s.size() && j - i <= 63 && (isAlnum(s[j]) || s[j] == '_')) ++j;
  }
  return j < s.size() && s[j] == '$' ? j + 1 : 0;
}

class SqlFingerprint {
 public:
  explicit SqlFingerprint(std::string& out) : out_(out) {}

  void run(sv s) {
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
      const char c = s[i];
      const char c1 = i + 1 < n ? s[i + 1] : '\0';
      if (isSpace(c)) {
        ws_ = true;
        ++i;
      } else if (c == '-' && c1 == '-') {
        i = std::min(s.find('\n', i), n);
        ws_ = true;
      } else if (c == '/' && c1 == '*') {
        i = skipBlockComment(s, i);
        ws_ = true;
      } else if (c == '\'') {
        i = skipString(s, i);
        emit(Tok::kLiteral, "?");
      } else if (c == '"' || c == '`') {
        size_t j = skipQuoted(s, i, c);
        emit(Tok::kWord, s.substr(i, j - i));
        i = j;
      } else if (c == '$' && isDigit(c1)) {  // $1
        i = emitRun(s, i, 1, isDigit, Tok::kParam);
      } else if (size_t tag_end = c == '$' ? dollarTagEnd(s, i) : 0) {  // $$..$$, $tag$..$tag$
        size_t close = s.find(s.substr(i, tag_end - i), tag_end);
        i = close == sv::npos ? n : close + (tag_end - i);
        emit(Tok::kLiteral, "?");
      } else if (c == '?') {  // ? or ?1
        i = emitRun(s, i, 1, isDigit, isDigit(c1) ? Tok::kParam : Tok::kLiteral);
      } else if (c == ':' && isIdentStart(c1) && (i == 0 || s[i - 1] != ':')) {  // :name
        i = emitRun(s, i, 1, isIdentChar, Tok::kParam);
      } else if (isDigit(c) || (c == '.' && isDigit(c1) && !isOperand(prev_))) {
        i = skipNumber(s, i);
        emit(Tok::kLiteral, "?");
      } else if ((c == '-' || c == '+') && !isOperand(prev_) &&
                 (isDigit(c1) || (c1 == '.' && i + 2 < n && isDigit(s[i + 2])))) {
        // -5 after an operator or a keyword: one literal
        i = skipNumber(s, i + 1);
        emit(Tok::kLiteral, "?");
      } else if (isIdentStart(c)) {
        i = word(s, i);
      } else if (c == '(' || c == '[') {
        emit(Tok::kOpen, s.substr(i++, 1));
      } else if (c == ')' || c == ']') {
        emit(Tok::kClose, s.substr(i++, 1));
      } else if (c == ',') {
        emit(Tok::kComma, s.substr(i++, 1));
      } else if (c == '.') {
        emit(Tok::kDot, s.substr(i++, 1));
      } else if (c == ';') {
        emit(Tok::kSemi, s.substr(i++, 1));
      } else {
        size_t j = i + 1;
        if (isOpChar(c)) {
          while (j < n && isOpChar(s[j])) {
            const char d1 = j + 1 < n ? s[j + 1] : '\0';
            if ((s[j] == '-' && d1 == '-') || (s[j] == '/' && d1 == '*')) break;
            if ((s[j] == '-' || s[j] == '+') && (isDigit(d1) || d1 == '.')) break;
            ++j;
          }
        }
        emit(Tok::kOp, s.substr(i, j - i));
        i = j;
      }
    }
    while (!out_.empty() && (out_.back() == ';' || out_.back() == ' ')) out_.pop_back();
  }

 private:
  enum class Tok : uint8_t {
    kNone, kWord, kKeyword, kLiteral, kParam, kOpen, kClose, kComma, kDot, kOp, kSemi
  };
  enum class Values : uint8_t { kNone, kExpectTuple, kInFirst, kAfterTuple, kAfterComma, kInLater };
  // An open parenthesis or bracket. `list`: it follows IN or ARRAY, so a list of literals in it
  // collapses to its first item.
  struct Frame {
    size_t first_end = 0;  // where the first item ends in out_
    uint32_t items = 0;
    bool list = false;
    bool ok = true;  // only literals and parameters separated by commas so far
    bool expect_item = true;
  };
  static constexpr int kMaxFrames = 32;

  static bool isOperand(Tok t) {
    return t == Tok::kWord || t == Tok::kLiteral || t == Tok::kParam || t == Tok::kClose;
  }

  template <typename Pred>
  size_t emitRun(sv s, size_t i, size_t skip, Pred pred, Tok t) {
    size_t j = i + skip;
    while (j < s.size() && pred(s[j])) ++j;
    emit(t, s.substr(i, j - i));
    return j;
  }

  size_t word(sv s, size_t i) {
    size_t j = i + 1;
    while (j < s.size() && isIdentChar(s[j])) ++j;
    sv w = s.substr(i, j - i);
    if (j < s.size() && w.size() == 1 && s[j] == '\'' && sv("eEbBxXnN").find(w[0]) != sv::npos) {
      emit(Tok::kLiteral, "?");  // E'..', B'..', X'..', N'..'
      return skipString(s, j);
    }
    if (j + 1 < s.size() && (w == "u" || w == "U") && s[j] == '&' && s[j + 1] == '\'') {
      emit(Tok::kLiteral, "?");  // U&'..'
      return skipString(s, j + 1);
    }
    if (equalsIgnoreCase(w, "true") || equalsIgnoreCase(w, "false")) {
      emit(Tok::kLiteral, "?");
    } else if (sv kw = findKeyword(kSqlKeywords, w); !kw.empty()) {
      emit(Tok::kKeyword, kw);
    } else {
      emit(Tok::kWord, w);
    }
    return j;
  }

  void emit(Tok t, sv text) {
    if (prev_ != Tok::kNone && prev_ != Tok::kOpen && t != Tok::kClose && t != Tok::kComma) {
      bool around_keyword = (prev_ == Tok::kKeyword || t == Tok::kKeyword) && prev_ != Tok::kDot &&
                            t != Tok::kDot && !(t == Tok::kOpen && text == "[");
      if (ws_ || prev_ == Tok::kComma || around_keyword) out_.push_back(' ');
    }
    ws_ = false;

    if (values_ != Values::kNone && depth_ == values_depth_) {
      switch (values_) {
        case Values::kExpectTuple:
          values_ = t == Tok::kOpen ? Values::kInFirst : Values::kNone;
          break;
        case Values::kAfterTuple:
          if (t == Tok::kComma) {
            comma_pos_ = out_.size();
            values_ = Values::kAfterComma;
          } else {
            values_ = Values::kNone;
          }
          break;
        case Values::kAfterComma:
          values_ = t == Tok::kOpen ? Values::kInLater : Values::kNone;
          break;
        default: break;
      }
    }

    if (t == Tok::kClose) {
      closeFrame();
      out_.append(text);
      if (depth_ < values_depth_) {
        values_ = Values::kNone;
      } else if (depth_ == values_depth_ &&
                 (values_ == Values::kInFirst || values_ == Values::kInLater)) {
        if (values_ == Values::kInLater) out_.resize(comma_pos_);  // drop ", (..)"
        values_ = Values::kAfterTuple;
      }
      prev_ = t;
      prev_keyword_ = {};
      return;
    }

    if (depth_ > 0 && depth_ <= kMaxFrames) {
      Frame& f = frames_[depth_ - 1];
      if (t == Tok::kLiteral || t == Tok::kParam) {
        if (f.expect_item) {
          f.expect_item = false;
          if (++f.items == 1) f.first_end = out_.size() + text.size();
        } else {
          f.ok = false;
        }
      } else if (t == Tok::kComma && !f.expect_item) {
        f.expect_item = true;
      } else {
        f.ok = false;
      }
    }
    out_.append(text);
    if (t == Tok::kOpen) {
      if (depth_ < kMaxFrames) {
        frames_[depth_] = Frame{};
        frames_[depth_].list = (text == "(" && prev_keyword_ == "IN") ||
                               (text == "[" && prev_keyword_ == "ARRAY");
      }
      ++depth_;
    }
    if (t == Tok::kKeyword && text == "VALUES" && values_ == Values::kNone) {
      values_ = Values::kExpectTuple;
      values_depth_ = depth_;
    }
    prev_ = t;
    prev_keyword_ = t == Tok::kKeyword ? text : sv();
  }

  void closeFrame() {
    if (depth_ == 0) return;  // unbalanced: kept as written
    if (depth_ <= kMaxFrames) {
      const Frame& f = frames_[depth_ - 1];
      if (f.list && f.ok && !f.expect_item && f.items >= 2) out_.resize(f.first_end);
    }
    --depth_;
  }

  std::string& out_;
  Tok prev_ = Tok::kNone;
  sv prev_keyword_;  // points into kSqlKeywords
  bool ws_ = false;  // whitespace or a comment since the previous token
  Frame frames_[kMaxFrames];
  int depth_ = 0;
  Values values_ = Values::kNone;
  int values_depth_ = 0;
  size_t comma_pos_ = 0;  // where ", (" of a later VALUES tuple starts
};

// ---- dispatch ------------------------------------------------------------------------------

bool normalizeIp(sv v, std::string& out, const Options& opts) {
  IpAddress ip;
  if (!parseIp(v, ip)) return false;
  if (opts.ip_to_network) {
    appendNetwork(ip, opts, out);
  } else {
    out.append("{ip}");
  }
  return true;
}

bool normalizeEmail(sv v, std::string& out, const Options& opts) {
  sv local, domain;
  if (!splitEmail(v, local, domain)) return false;
  out.append("{email}");
  if (opts.email_keep_domain) {
    out.push_back('@');
    for (char c : domain) out.push_back(toLower(c));
  }
  return true;
}

bool normalizeTimestamp(sv v, std::string& out, bool allow_date_only) {
  bool has_time = false;
  if (!v.empty() && isoLength(v, &has_time) == v.size()) {
    if (!has_time && !allow_date_only) return false;
    out.append(has_time ? "{ts}" : "{date}");
    return true;
  }
  if (!isEpochTimestamp(v)) return false;
  out.append("{ts}");
  return true;
}

bool put(std::string& out, sv placeholder) {
  out.append(placeholder);
  return true;
}

// Writes a candidate into `out` (cleared); false when the value is kept.
bool dispatch(Normalizer n, sv v, std::string& out, const Options& opts) {
  switch (n) {
    case Normalizer::kUuid: return isUuid(v) && put(out, "{uuid}");
    case Normalizer::kUlid: return isUlid(v) && put(out, "{ulid}");
    case Normalizer::kHexId: return isHexId(v) && put(out, "{hex}");
    case Normalizer::kNumber: return isDecimalNumber(v) && put(out, "{num}");
    case Normalizer::kTimestamp: return normalizeTimestamp(v, out, true);
    case Normalizer::kIp: return normalizeIp(v, out, opts);
    case Normalizer::kEmail: return normalizeEmail(v, out, opts);
    case Normalizer::kUrlPath: normalizeUrlPath(v, out); return true;
    case Normalizer::kFilePath: normalizeFilePath(v, out); return true;
    case Normalizer::kSql: SqlFingerprint(out).run(v); return true;
    case Normalizer::kAuto: break;
  }
  switch (classify(v)) {
    case Shape::kUuid: return put(out, "{uuid}");
    case Shape::kUlid: return put(out, "{ulid}");
    case Shape::kHex: return put(out, "{hex}");
    case Shape::kNumber: return integerDigits(v) >= 6 && put(out, "{num}");
    case Shape::kTimestamp: return normalizeTimestamp(v, out, false);
    case Shape::kIp: return normalizeIp(v, out, opts);
    case Shape::kEmail: return normalizeEmail(v, out, opts);
    case Shape::kSql: SqlFingerprint(out).run(v); return true;
    case Shape::kPath:
      if (isFilePathLike(v)) {
        normalizeFilePath(v, out);
      } else {
        normalizeUrlPath(v, out);
      }
      return true;
    case Shape::kWord:
    case Shape::kFreeText:
    case Shape::kEmpty: return false;
  }
  return false;
}

constexpr sv kNormalizerNames[] = {"uuid", "ulid", "hex", "number", "timestamp", "ip",
                                   "email", "url_path", "sql", "file_path", "auto"};
constexpr sv kShapeNames[] = {"uuid", "ulid", "hex", "number", "timestamp", "email",
                              "ip",   "path", "sql", "word",   "free_text", "empty"};

}  // namespace

std::optional<Normalizer> parseNormalizer(std::string_view name) {
  for (size_t i = 0; i < std::size(kNormalizerNames); ++i)
    if (kNormalizerNames[i] == name) return static_cast<Normalizer>(i);
  return std::nullopt;
}

std::string_view normalizerName(Normalizer n) {
  auto i = static_cast<size_t>(n);
  return i < std::size(kNormalizerNames) ? kNormalizerNames[i] : sv("unknown");
}

std::string_view shapeName(Shape s) {
  auto i = static_cast<size_t>(s);
  return i < std::size(kShapeNames) ? kShapeNames[i] : sv("unknown");
}

bool normalize(Normalizer n, std::string_view value, std::string& out, const Options& opts) {
  out.clear();
  return dispatch(n, value, out, opts) && out != value;
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHexDigit(s[i])) return false;
  }
  return true;
}

bool isUlid(std::string_view s) {
  if (s.size() != 26 || s[0] < '0' || s[0] > '7') return false;
  bool lower = false, upper = false;
  for (char c : s) {
    if (!isCrockford(c)) return false;
    lower |= isLower(c);
    upper |= isUpper(c);
  }
  return lower != upper;  // has a letter, in one case
}

bool isHexId(std::string_view s) {
  if (s.size() >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    for (char c : s.substr(2))
      if (!isHexDigit(c)) return false;
    return true;
  }
  if (s.size() < 12) return false;
  bool digit = false, lower = false, upper = false;
  for (char c : s) {
    if (isDigit(c)) {
      digit = true;
    } else if (c >= 'a' && c <= 'f') {
      lower = true;
    } else if (c >= 'A' && c <= 'F') {
      upper = true;
    } else {
      return false;
    }
  }
  return digit && lower != upper;
}

bool isEpochTimestamp(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && isDigit(s[digits])) ++digits;
  if (digits < s.size()) {  // seconds with a fraction: 1691831294.123
    sv frac = s.substr(digits + 1);
    if (digits != 10 || s[digits] != '.' || frac.size() > 9 || !allDigits(frac)) return false;
  }
  uint64_t scale = 0;
  switch (digits) {
    case 10: scale = 1; break;
    case 13: scale = 1000; break;
    case 16: scale = 1000000; break;
    case 19: scale = 1000000000; break;
    default: return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < digits; ++i) v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  uint64_t seconds = v / scale;
  return seconds >= kEpoch2000 && seconds < kEpoch2100;
}

bool isIsoTimestamp(std::string_view s, bool allow_date_only) {
  bool has_time = false;
  return !s.empty() && isoLength(s, &has_time) == s.size() && (has_time || allow_date_only);
}

bool isEmail(std::string_view s) {
  sv local, domain;
  return splitEmail(s, local, domain);
}

bool isIp(std::string_view s) {
  IpAddress ip;
  return parseIp(s, ip);
}

bool isSql(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {  // leading whitespace, comments and parentheses
    if (isSpace(s[i]) || s[i] == '(') {
      ++i;
    } else if (s[i] == '-' && i + 1 < n && s[i + 1] == '-') {
      i = std::min(s.find('\n', i), n);
    } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
      i = skipBlockComment(s, i);
    } else {
      break;
    }
  }
  size_t j = i;
  while (j < n && isAlpha(s[j])) ++j;
  sv verb = s.substr(i, j - i);
  if (findKeyword(kSqlVerbs, verb).empty()) return false;
  if (j == n || !(isSpace(s[j]) || s[j] == '(' || s[j] == '*')) return false;
  sv rest = s.substr(j);
  auto filler = [](char c) { return isSpace(c) || c == '(' || c == '*'; };
  if (std::all_of(rest.begin(), rest.end(), filler)) return false;
  bool upper = std::all_of(verb.begin(), verb.end(), isUpper);
  if (upper) return true;
  if (!std::all_of(verb.begin(), verb.end(), isLower)) return false;  // "Select a plan" is prose
  // A lowercase verb needs a second keyword: "select id from t", "delete from cart".
  static constexpr sv kSecond[] = {"as",  "by",    "from",   "index", "into", "join",
                                   "set", "table", "values", "view",  "where"};
  for (size_t k = 0; k < rest.size();) {
    if (!isAlpha(rest[k])) {
      ++k;
      continue;
    }
    size_t e = k;
    while (e < rest.size() && isAlnum(rest[e])) ++e;
    sv w = rest.substr(k, e - k);
    bool starts_word = k == 0 || !isIdentChar(rest[k - 1]);
    if (starts_word && std::find(std::begin(kSecond), std::end(kSecond), w) != std::end(kSecond))
      return true;
    k = e;
  }
  return false;
}

bool isFilePath(std::string_view s) { return isFilePathLike(s); }

Shape classify(std::string_view v) {
  if (v.empty()) return Shape::kEmpty;
  if (isUuid(v)) return Shape::kUuid;
  if (isIsoTimestamp(v, true) || isEpochTimestamp(v)) return Shape::kTimestamp;
  if (isDecimalNumber(v)) return Shape::kNumber;
  if (isHexId(v)) return Shape::kHex;
  if (isUlid(v)) return Shape::kUlid;
  if (isIp(v)) return Shape::kIp;
  if (isSql(v)) return Shape::kSql;
  // Paths before emails: "/x/{ts}@host.com" is what kUrlPath left of a path, not an address.
  if (isPathLike(v)) return Shape::kPath;
  if (isEmail(v)) return Shape::kEmail;
  return hasSpace(v) ? Shape::kFreeText : Shape::kWord;
}

}  // namespace cardinal::pipeline::normalize
