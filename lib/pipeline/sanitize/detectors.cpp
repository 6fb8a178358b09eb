#include "pipeline/sanitize/detectors.h"

#include <cctype>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <initializer_list>

namespace cardinal::pipeline::sanitize {
namespace {

// Character classes, one table lookup per byte.
enum : uint16_t {
  kDigit = 1 << 0,
  kLower = 1 << 1,
  kUpper = 1 << 2,
  kHex = 1 << 3,
  kB64Url = 1 << 4,    // base64url alphabet: A-Z a-z 0-9 - _
  kB64 = 1 << 5,       // base64 alphabet without padding: A-Z a-z 0-9 + /
  kLocal = 1 << 6,     // email local part: RFC 5322 atext plus '.'
  kToken68 = 1 << 7,   // RFC 7235 token68 body: A-Z a-z 0-9 - . _ ~ + /
  kTokenRun = 1 << 8,  // candidate high-entropy token: token68 plus = ! # $ % & * ? @ ^ :
  kV6 = 1 << 9,        // IPv6 text: hex digits, ':' and '.'
  kSecretStart = 1 << 10,  // first character of a well-known secret format
};
constexpr uint16_t kAlpha = kLower | kUpper;
constexpr uint16_t kAlnum = kDigit | kAlpha;

constexpr std::array<uint16_t, 256> makeClasses() {
  std::array<uint16_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint16_t m = 0;
    if (c >= '0' && c <= '9') m |= kDigit | kHex;
    if (c >= 'a' && c <= 'z') m |= kLower;
    if (c >= 'A' && c <= 'Z') m |= kUpper;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) m |= kHex;
    if (m & (kDigit | kLower | kUpper)) m |= kB64Url | kB64 | kLocal | kToken68 | kTokenRun;
    if (m & kHex) m |= kV6;
    t[c] = m;
  }
  for (unsigned char c : std::string_view("-_")) t[c] |= kB64Url;
  for (unsigned char c : std::string_view("+/")) t[c] |= kB64;
  for (unsigned char c : std::string_view(".!#$%&'*+/=?^_`{|}~-")) t[c] |= kLocal;
  for (unsigned char c : std::string_view("-._~+/")) t[c] |= kToken68 | kTokenRun;
  for (unsigned char c : std::string_view("=!#$%&*?@^:")) t[c] |= kTokenRun;
  t[':'] |= kV6;
  t['.'] |= kV6;
  for (unsigned char c : std::string_view("AgxsrpBb-")) t[c] |= kSecretStart;
  return t;
}
constexpr std::array<uint16_t, 256> kClasses = makeClasses();

// What the pre-filters need, counted in one pass: one table load and one add
// per byte. Packed fields: digits, dots, colons (16 bits each), '@' and '+'
// (8 bits each); chunks of 255 bytes cannot overflow them.
struct Profile {
  uint32_t digits = 0, dots = 0, colons = 0, at = 0, plus = 0;
};

constexpr std::array<uint64_t, 256> makeProfileTable() {
  std::array<uint64_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = 1;
  t['.'] = uint64_t{1} << 16;
  t[':'] = uint64_t{1} << 32;
  t['@'] = uint64_t{1} << 48;
  t['+'] = uint64_t{1} << 56;
  return t;
}
constexpr std::array<uint64_t, 256> kProfileTable = makeProfileTable();

Profile profile(std::string_view s) {
  Profile p;
  for (size_t i = 0; i < s.size(); i += 255) {
    const size_t end = std::min(s.size(), i + 255);
    uint64_t acc = 0;
    for (size_t k = i; k < end; ++k) acc += kProfileTable[static_cast<unsigned char>(s[k])];
    p.digits += static_cast<uint32_t>(acc & 0xffff);
    p.dots += static_cast<uint32_t>((acc >> 16) & 0xffff);
    p.colons += static_cast<uint32_t>((acc >> 32) & 0xffff);
    p.at += static_cast<uint32_t>((acc >> 48) & 0xff);
    p.plus += static_cast<uint32_t>(acc >> 56);
  }
  return p;
}

inline bool is(char c, uint16_t mask) { return (kClasses[static_cast<unsigned char>(c)] & mask) != 0; }
inline bool isDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }
inline bool isAlnum(char c) { return is(c, kAlnum); }
inline int digitValue(char c) { return c - '0'; }
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool oneOf(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

// Length of the run of `mask` characters starting at `i`.
inline size_t runOf(std::string_view s, size_t i, uint16_t mask) {
  size_t j = i;
  while (j < s.size() && is(s[j], mask)) ++j;
  return j - i;
}

// Whether the number-like match that ended just before `i` stands alone:
// not followed by a letter or digit, nor by a decimal point and digit.
inline bool endsCleanly(std::string_view s, size_t i) {
  if (i >= s.size()) return true;
  if (isAlnum(s[i])) return false;
  return !((s[i] == '.' || s[i] == ',') && i + 1 < s.size() && isDigit(s[i + 1]));
}

bool iequals(std::string_view a, std::string_view lit) {
  if (a.size() != lit.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lit[i]) return false;
  return true;
}

bool istartsWith(std::string_view a, std::string_view lit) {
  return a.size() >= lit.size() && iequals(a.substr(0, lit.size()), lit);
}

// ---- email

bool emailAt(std::string_view s, size_t at) {
  size_t b = at;
  while (b > 0 && is(s[b - 1], kLocal)) --b;
  while (b < at && s[b] == '.') ++b;
  if (b == at || s[at - 1] == '.') return false;

  size_t i = at + 1;
  int labels = 0;
  std::string_view last;
  for (;;) {
    size_t j = i;
    while (j < s.size() && (isAlnum(s[j]) || s[j] == '-')) ++j;
    if (j == i || s[i] == '-' || s[j - 1] == '-') return false;
    ++labels;
    last = s.substr(i, j - i);
    if (j + 1 < s.size() && s[j] == '.' && isAlnum(s[j + 1])) {
      i = j + 1;
      continue;
    }
    break;
  }
  if (labels < 2 || last.size() < 2 || last.size() > 63) return false;
  for (char c : last)
    if (!is(c, kAlpha)) return false;
  return true;
}

bool hasEmail(std::string_view s) {
  for (size_t at = s.find('@'); at != std::string_view::npos; at = s.find('@', at + 1))
    if (at > 0 && emailAt(s, at)) return true;
  return false;
}

// ---- ipv4

// One octet at `i`: 1-3 digits, no leading zero, at most 255.
bool octet(std::string_view s, size_t& i) {
  const size_t start = i;
  unsigned v = 0;
  while (i < s.size() && isDigit(s[i]) && i - start < 4) v = v * 10 + static_cast<unsigned>(digitValue(s[i++]));
  const size_t len = i - start;
  if (len == 0 || len > 3) return false;
  if (len > 1 && s[start] == '0') return false;
  return v <= 255;
}

// A dotted quad starting at `i`; on success `i` is just past it.
bool quad(std::string_view s, size_t& i) {
  for (int k = 0; k < 4; ++k) {
    if (!octet(s, i)) return false;
    if (k < 3) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return true;
}

bool hasIpv4(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (!isDigit(s[i])) {
      ++i;
      continue;
    }
    if (i == 0 || (!isAlnum(s[i - 1]) && s[i - 1] != '.')) {
      size_t j = i;
      if (quad(s, j) && endsCleanly(s, j)) return true;
    }
    while (i < s.size() && isDigit(s[i])) ++i;
  }
  return false;
}

// ---- ipv6

// Whether `a` (hex digits, ':' and '.' only) is an IPv6 address we flag.
bool validIpv6(std::string_view a) {
  const size_t n = a.size();
  if (n < 3) return false;
  size_t i = 0;
  int groups = 0;
  bool compressed = false, has_digit = false, all_two_hex = true;
  if (a[0] == ':') {
    if (a[1] != ':') return false;
    compressed = true;
    i = 2;
  }
  while (i < n) {
    const size_t start = i;
    while (i < n && is(a[i], kHex)) ++i;
    if (i < n && a[i] == '.') {  // trailing dotted quad: the last 32 bits
      size_t j = start;
      if (!quad(a, j) || j != n) return false;
      groups += 2;
      has_digit = true;
      all_two_hex = false;
      break;
    }
    const size_t len = i - start;
    if (len == 0 || len > 4) return false;
    all_two_hex = all_two_hex && len == 2;
    for (size_t k = start; k < i; ++k) has_digit = has_digit || isDigit(a[k]);
    ++groups;
    if (i == n) break;
    ++i;  // a[i] == ':'
    if (i < n && a[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
    } else if (i == n) {
      return false;  // trailing single colon
    }
  }
  if (!has_digit) return false;
  if (compressed) return groups <= 7;
  return groups == 8 && !all_two_hex;
}

bool hasIpv6(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (!is(s[i], kV6)) {
      ++i;
      continue;
    }
    size_t start = i;
    int colons = 0;
    for (; i < n && is(s[i], kV6); ++i) colons += s[i] == ':';
    if (colons < 2) continue;
    size_t end = i;
    // "addr:fe80::1", "fe80::1: up", "fe80::1." lose their punctuation.
    if (s[start] == ':' && start + 1 < end && s[start + 1] != ':') ++start;
    while (end > start && s[end - 1] == '.') --end;
    if (end - start >= 2 && s[end - 1] == ':' && s[end - 2] != ':') --end;
    // Glued to a word ("std::vector", "T10:03:42") is not an address.
    if (start > 0 && (isAlnum(s[start - 1]) || s[start - 1] == '_')) continue;
    if (end < n && (isAlnum(s[end]) || s[end] == '_')) continue;
    if (validIpv6(s.substr(start, end - start))) return true;
  }
  return false;
}

// ---- jwt

constexpr size_t kMinJwtHeader = 15;  // base64url of {"alg":"x"}

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

// Decodes up to `cap` bytes of unpadded base64 / base64url into `out`.
size_t b64Decode(std::string_view in, unsigned char* out, size_t cap) {
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = b64Value(c);
    if (v < 0) break;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == cap) break;
      out[n++] = static_cast<unsigned char>(acc >> bits);
    }
  }
  return n;
}

bool jwtAt(std::string_view s, size_t p) {
  if (p > 0 && (is(s[p - 1], kB64Url) || s[p - 1] == '.')) return false;
  const size_t header_len = runOf(s, p, kB64Url);
  if (header_len < kMinJwtHeader || header_len % 4 == 1) return false;
  size_t i = p + header_len;
  if (i >= s.size() || s[i] != '.') return false;
  const size_t payload_len = runOf(s, ++i, kB64Url);
  if (payload_len == 0 || payload_len % 4 == 1) return false;
  i += payload_len;
  if (i >= s.size() || s[i] != '.') return false;
  const size_t signature_len = runOf(s, ++i, kB64Url);
  if (signature_len % 4 == 1) return false;

  unsigned char buf[384];  // headers are short; "alg" comes early
  const size_t len = b64Decode(s.substr(p, header_len), buf, sizeof buf);
  const std::string_view header(reinterpret_cast<const char*>(buf), len);
  return header.starts_with("{\"") && header.find("\"alg\"") != std::string_view::npos;
}

bool hasJwt(std::string_view s) {
  for (size_t p = s.find("eyJ"); p != std::string_view::npos; p = s.find("eyJ", p + 3))
    if (jwtAt(s, p)) return true;
  return false;
}

// ---- card

bool luhnValid(const uint8_t* d, int len) {
  int sum = 0;
  for (int k = 0; k < len; ++k) {
    int v = d[len - 1 - k];
    if (k % 2 == 1) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
  }
  return sum % 10 == 0;
}

bool knownIin(const uint8_t* d, int len) {
  const int p2 = d[0] * 10 + d[1];
  const int p3 = p2 * 10 + d[2];
  const int p4 = p3 * 10 + d[3];
  auto between = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  switch (d[0]) {
    case 2:
      return len == 16 && (between(p4, 2221, 2720) || between(p4, 2200, 2204));  // Mastercard, Mir
    case 3:
      if (len == 15 && (p2 == 34 || p2 == 37)) return true;                          // Amex
      if (len >= 14 && (between(p3, 300, 305) || p2 == 36 || p2 == 38 || p2 == 39)) return true;  // Diners
      return len >= 16 && between(p4, 3528, 3589);                                   // JCB
    case 4:
      return len == 13 || len == 16 || len == 19;  // Visa
    case 5:
      if (len == 16 && between(p2, 51, 55)) return true;               // Mastercard
      return p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893;     // Maestro
    case 6:
      if (len >= 16 && (p4 == 6011 || between(p3, 644, 649) || p2 == 65)) return true;  // Discover
      if (len >= 16 && p2 == 62) return true;                                           // UnionPay
      return p4 == 6304 || p4 == 6759 || between(p4, 6761, 6763);                       // Maestro
    default:
      return false;
  }
}

bool cardNumber(const uint8_t* d, int len) {
  return len >= 13 && len <= 19 && knownIin(d, len) && luhnValid(d, len);
}

bool contiguousCard(std::string_view digits) {
  uint8_t d[19];
  const int len = static_cast<int>(digits.size());
  for (int k = 0; k < len; ++k) d[k] = static_cast<uint8_t>(digitValue(digits[k]));
  return cardNumber(d, len);
}

inline bool isCardSeparator(char c) { return c == ' ' || c == '-'; }

// A separator and then a digit at `i`: the digit group goes on.
inline bool groupFollows(std::string_view s, size_t i) {
  return i + 1 < s.size() && isCardSeparator(s[i]) && isDigit(s[i + 1]);
}

// A grouped number starting with the 4-digit group at `i`: "4111 1111 1111 1111",
// "3782-822463-10005". Further groups have 3-6 digits.
bool groupedCard(std::string_view s, size_t i) {
  uint8_t d[19];
  int total = 0;
  for (int group = 0;; ++group) {
    const size_t start = i;
    for (; i < s.size() && isDigit(s[i]); ++i, ++total) {
      if (total == 19) return false;
      d[total] = static_cast<uint8_t>(digitValue(s[i]));
    }
    const size_t len = i - start;
    if (group > 0 && (len < 3 || len > 6)) return false;
    if (!groupFollows(s, i)) break;
    ++i;
  }
  return endsCleanly(s, i) && cardNumber(d, total);
}

bool hasCard(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (!isDigit(s[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < n && isDigit(s[i])) ++i;
    const size_t len = i - start;
    if (start > 0 && isAlnum(s[start - 1])) continue;  // glued to a word
    // Any single group may be a card on its own ("order 2024-4111111111111111").
    if (len >= 13 && len <= 19 && (groupFollows(s, i) || endsCleanly(s, i)) && contiguousCard(s.substr(start, len)))
      return true;
    // A grouped number begins a chain of groups: not after "12 " or "12-".
    const bool chain_start = start < 2 || !isCardSeparator(s[start - 1]) || !isDigit(s[start - 2]);
    if (len == 4 && chain_start && groupFollows(s, i) && groupedCard(s, start)) return true;
  }
  return false;
}

// ---- phone

bool isPhoneSeparator(char c) { return c == ' ' || c == '-' || c == '(' || c == ')'; }

bool phoneAt(std::string_view s, size_t plus) {
  if (plus > 0 && (isAlnum(s[plus - 1]) || s[plus - 1] == '.')) return false;
  size_t i = plus + 1;
  if (i >= s.size() || !isDigit(s[i]) || s[i] == '0') return false;
  int digits = 0;
  for (;;) {
    for (; i < s.size() && isDigit(s[i]); ++i) ++digits;
    size_t j = i;
    while (j < s.size() && j - i < 2 && isPhoneSeparator(s[j])) ++j;
    if (j == i || j >= s.size() || !isDigit(s[j])) break;
    i = j;
  }
  return digits >= 8 && digits <= 15 && endsCleanly(s, i);
}

bool hasPhone(std::string_view s) {
  for (size_t p = s.find('+'); p != std::string_view::npos; p = s.find('+', p + 1))
    if (phoneAt(s, p)) return true;
  return false;
}

// ---- secret: well-known formats

constexpr size_t kMinKnownSecret = 14;  // "Basic " + 8

bool bearerAt(std::string_view s, size_t i) {  // s[i..] starts with "bearer" (any case)
  i += 6;
  if (i >= s.size() || s[i] != ' ') return false;
  while (i < s.size() && s[i] == ' ') ++i;
  const size_t body = runOf(s, i, kToken68);
  size_t j = i + body;
  while (j < s.size() && s[j] == '=') ++j;
  if (body < 16 || (j < s.size() && is(s[j], kToken68))) return false;
  bool digit = false, alpha = false;
  for (size_t k = i; k < i + body; ++k) {
    digit = digit || isDigit(s[k]);
    alpha = alpha || is(s[k], kAlpha);
  }
  return digit && alpha;
}

bool basicAt(std::string_view s, size_t i) {  // s[i..] starts with "basic" (any case)
  i += 5;
  if (i >= s.size() || s[i] != ' ') return false;
  while (i < s.size() && s[i] == ' ') ++i;
  const size_t body = runOf(s, i, kB64);
  size_t pad = 0;
  while (i + body + pad < s.size() && s[i + body + pad] == '=' && pad < 2) ++pad;
  const size_t end = i + body + pad;
  if (body + pad < 8 || (body + pad) % 4 != 0 || (end < s.size() && (is(s[end], kToken68) || s[end] == '=')))
    return false;
  unsigned char buf[192];
  const size_t len = b64Decode(s.substr(i, body), buf, sizeof buf);
  bool colon = false;
  for (size_t k = 0; k < len; ++k) {
    if (buf[k] < 0x20 || buf[k] == 0x7f) return false;  // credentials are text
    colon = colon || buf[k] == ':';
  }
  return colon && buf[0] != ':';
}

bool privateKeyAt(std::string_view s, size_t i) {  // s[i..] starts with "-----BEGIN "
  i += 11;
  size_t j = i;
  while (j < s.size() && j - i < 48 && (is(s[j], kUpper | kDigit) || s[j] == ' ')) ++j;
  return s.substr(i, j - i).ends_with("PRIVATE KEY");
}

// Well-known formats beginning at `i`, a token start.
bool knownSecretAt(std::string_view s, size_t i) {
  const std::string_view t = s.substr(i);
  switch (t[0]) {
    case 'A':
      if ((t.starts_with("AKIA") || t.starts_with("ASIA")) && runOf(s, i + 4, kUpper | kDigit) == 16 &&
          !(i + 20 < s.size() && isAlnum(s[i + 20])))
        return true;
      return t.starts_with("AIza") && runOf(s, i + 4, kB64Url) == 35;
    case 'g':
      if (t.size() >= 40 && t[1] == 'h' && t[3] == '_' && oneOf(t[2], "pousr"))  // ghp_ gho_ ghu_ ghs_ ghr_
        return runOf(s, i + 4, kAlnum) >= 36;
      if (t.starts_with("github_pat_")) return runOf(s, i + 11, kB64Url) >= 22;
      return t.starts_with("glpat-") && runOf(s, i + 6, kB64Url) >= 20;
    case 'x':
      return t.size() >= 15 && t.starts_with("xox") && oneOf(t[3], "bpaers") &&
             t[4] == '-' && runOf(s, i + 5, kAlnum | kB64Url) >= 10;
    case 's':
    case 'r':
    case 'p':
      return t.size() >= 24 && t[1] == 'k' && t.substr(2).starts_with("_live_") && runOf(s, i + 8, kAlnum) >= 16;
    case 'B':
    case 'b':
      if (istartsWith(t, "bearer")) return bearerAt(s, i);
      return istartsWith(t, "basic") && basicAt(s, i);
    default:
      return false;
  }
}

bool hasKnownSecret(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!is(c, kSecretStart)) continue;
    if (c == '-') {
      if (i + 1 < s.size() && s[i + 1] == '-' && s.substr(i).starts_with("-----BEGIN ") && privateKeyAt(s, i))
        return true;
      continue;
    }
    if (i > 0 && isAlnum(s[i - 1])) continue;
    if (knownSecretAt(s, i)) return true;
  }
  return false;
}

// ---- secret: high-entropy tokens in key-like labels

constexpr size_t kMinEntropyToken = 20;

// "config/prod-2024/api-keys.yaml", "/etc/app/v2": some '/' segment is a
// lower-case word. Base64 secrets contain '/' too, but hardly ever a word.
bool looksLikePath(std::string_view t) {
  if (t[0] == '.' || t[0] == '~' || t.find("://") != std::string_view::npos) return true;
  if (t.find('/') == std::string_view::npos) return false;
  size_t seg = 0;
  for (size_t i = 0; i <= t.size(); ++i) {
    if (i < t.size() && t[i] != '/') continue;
    std::string_view part = t.substr(seg, i - seg);
    int letters = 0;
    bool word = true;
    for (char c : part) {
      if (is(c, kLower)) ++letters;
      else if (c != '-' && c != '_' && c != '.') word = false;
    }
    if (word && letters >= 3) return true;
    seg = i + 1;
  }
  return false;
}

// "internal_server_error_v2", "SamlAuthenticationProvider": every segment
// between symbols switches between letters and digits at most once.
bool looksLikeWords(std::string_view t) {
  int switches = 0;
  for (size_t i = 1; i < t.size(); ++i) {
    const bool a = isAlnum(t[i - 1]), b = isAlnum(t[i]);
    if (!a || !b) {
      if (!b) switches = 0;
      continue;
    }
    if (isDigit(t[i - 1]) != isDigit(t[i]) && ++switches > 1) return false;
  }
  return true;
}

bool tokenLike(std::string_view t) {
  if (looksLikePath(t)) return false;
  int lower_n = 0, upper_n = 0, digit_n = 0;
  bool all_hex = true;
  for (char c : t) {
    lower_n += is(c, kLower);
    upper_n += is(c, kUpper);
    digit_n += isDigit(c);
    all_hex = all_hex && (is(c, kHex) || c == '-');  // uuids too
  }
  // Letters count from three on: the "T" and "Z" of an ISO timestamp do not make it mixed.
  const int classes = (lower_n >= 3) + (upper_n >= 3) + (digit_n >= 2);
  if (classes < 2 || looksLikeWords(t)) return false;
  return shannonEntropyBitsPerChar(t) >= (all_hex ? 3.0 : 3.5);
}

bool hasHighEntropyToken(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t len = runOf(s, i, kTokenRun);
    if (len >= kMinEntropyToken && tokenLike(s.substr(i, len))) return true;
    i += len + 1;
  }
  return false;
}

bool anyOf(std::string_view w, std::initializer_list<std::string_view> words) {
  for (std::string_view k : words)
    if (w == k) return true;
  return false;
}

bool endsWithAnyOf(std::string_view w, std::initializer_list<std::string_view> suffixes) {
  for (std::string_view k : suffixes)
    if (w.ends_with(k)) return true;
  return false;
}

// One word of a label name: the listed words, or a word ending like a secret.
bool keyLikeWord(std::string_view word) {
  if (word.size() < 3) return false;
  char buf[32];
  const bool whole = word.size() <= sizeof buf;  // longer words can only match a suffix
  if (!whole) word = word.substr(word.size() - sizeof buf);
  for (size_t i = 0; i < word.size(); ++i) buf[i] = lower(word[i]);
  const std::string_view w(buf, word.size());
  if (whole) {
    bool exact = false;
    switch (w[0]) {
      case 'a': exact = anyOf(w, {"auth", "authorization", "apikey"}); break;
      case 'b': exact = w == "bearer"; break;
      case 'c': exact = anyOf(w, {"credential", "credentials", "creds", "cookie", "cookies", "csrf"}); break;
      case 'h': exact = w == "hmac"; break;
      case 'j': exact = w == "jwt"; break;
      case 'k': exact = anyOf(w, {"key", "keys"}); break;
      case 'n': exact = w == "nonce"; break;
      case 'p': exact = anyOf(w, {"password", "passwd", "pwd", "passphrase"}); break;
      case 's': exact = anyOf(w, {"secret", "secrets", "session", "sessionid", "signature", "sig"}); break;
      case 't': exact = anyOf(w, {"token", "tokens"}); break;
      case 'x': exact = w == "xsrf"; break;
      default: break;
    }
    if (exact) return true;
  }
  switch (w.back()) {
    case 'n': return w.ends_with("token");
    case 't': return w.ends_with("secret");
    case 'd': return endsWithAnyOf(w, {"password", "passwd"});
    case 'y': return endsWithAnyOf(w, {"apikey", "accesskey", "secretkey", "privatekey"});
    default: return false;
  }
}

}  // namespace

std::optional<Detector> parseDetector(std::string_view name) {
  for (int k = 0; k < kDetectorCount; ++k) {
    const auto d = static_cast<Detector>(k);
    if (detectorName(d) == name) return d;
  }
  return std::nullopt;
}

std::string_view detectorName(Detector d) {
  switch (d) {
    case Detector::kEmail: return "email";
    case Detector::kIpv4: return "ipv4";
    case Detector::kIpv6: return "ipv6";
    case Detector::kCard: return "card";
    case Detector::kJwt: return "jwt";
    case Detector::kSecret: return "secret";
    case Detector::kPhone: return "phone";
  }
  return "unknown";
}

bool isKeyLikeLabelName(std::string_view name) {
  size_t start = 0;
  for (size_t i = 1; i <= name.size(); ++i) {
    bool split = i == name.size();
    if (!split) {
      const char c = name[i];
      split = c == '_' || c == '-' || c == '.' || c == ':' ||
              (is(c, kUpper) && is(name[i - 1], kLower | kDigit));
    }
    if (!split) continue;
    std::string_view word = name.substr(start, i - start);
    while (!word.empty() && !isAlnum(word.front())) word.remove_prefix(1);
    if (!word.empty() && keyLikeWord(word)) return true;
    start = i;
  }
  return false;
}

double shannonEntropyBitsPerChar(std::string_view s) {
  if (s.size() < 2) return 0.0;
  std::array<uint32_t, 256> counts{};
  for (unsigned char c : s) ++counts[c];
  const double n = static_cast<double>(s.size());
  double h = 0.0;
  for (uint32_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

bool isSecretValuedLabelName(std::string_view name) {
  // The last word of the name, lowercased: db_password, api-token, clientSecret -> "secret".
  size_t end = name.size();
  size_t start = end;
  while (start > 0) {
    char c = name[start - 1];
    if (c == '_' || c == '-' || c == '.') break;
    if (start < end && c >= 'a' && c <= 'z' && name[start] >= 'A' && name[start] <= 'Z') break;  // camelCase
    --start;
  }
  std::string_view last = name.substr(start, end - start);
  if (last.size() > 16) return false;
  char buf[16];
  for (size_t i = 0; i < last.size(); ++i) buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(last[i])));
  std::string_view w(buf, last.size());
  for (std::string_view k : {"password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "credential",
                             "credentials", "privatekey"})
    if (w == k) return true;
  return false;
}

std::optional<Detector> detect(std::string_view label_name, std::string_view value, DetectorMask enabled) {
  const size_t n = value.size();
  if (n < 3 || enabled == 0) return std::nullopt;  // the shortest match is "::1"
  // A label named like a password or token holds a secret whatever it looks like.
  if ((enabled & detectorBit(Detector::kSecret)) && isSecretValuedLabelName(label_name)) return Detector::kSecret;

  const Profile p = profile(value);  // one pass for every pre-filter
  auto on = [enabled](Detector d) { return (enabled & detectorBit(d)) != 0; };

  if (p.at > 0 && p.dots > 0 && on(Detector::kEmail) && hasEmail(value)) return Detector::kEmail;
  if (p.dots >= 3 && p.digits >= 4 && on(Detector::kIpv4) && hasIpv4(value)) return Detector::kIpv4;
  if (p.colons >= 2 && on(Detector::kIpv6) && hasIpv6(value)) return Detector::kIpv6;
  if (p.dots >= 2 && n >= kMinJwtHeader + 2 && on(Detector::kJwt) && hasJwt(value)) return Detector::kJwt;
  if (p.digits >= 13 && on(Detector::kCard) && hasCard(value)) return Detector::kCard;
  if (p.plus > 0 && p.digits >= 8 && on(Detector::kPhone) && hasPhone(value)) return Detector::kPhone;
  if (n >= kMinKnownSecret && on(Detector::kSecret)) {
    if (hasKnownSecret(value)) return Detector::kSecret;
    if (n >= kMinEntropyToken && isKeyLikeLabelName(label_name) && hasHighEntropyToken(value))
      return Detector::kSecret;
  }
  return std::nullopt;
}

}  // namespace cardinal::pipeline::sanitize
