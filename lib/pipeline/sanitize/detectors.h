#pragma once
// Built-in sensitive-value detectors for the sanitize stage: pure functions
// over one label value (and, for the secret detector, its label name). No
// regex, no allocation, no exceptions; each detector sits behind a cheap
// pre-filter computed in a single pass over the value ('@' for email, dots
// and digits for IPv4, two colons for IPv6, digit counts for cards and phone
// numbers, "eyJ" for JWTs), so a well-behaved value such as "200", "GET" or
// "/api/v1/users" costs one short scan. The caller owns protection (labels
// such as `instance` never reach these functions) and caches results per
// series; these functions keep no state and are safe from any thread.
//
// Every detector looks for a match anywhere in the value, not only for a
// value that is entirely the sensitive thing ("user=joao@example.com" is
// flagged). A match must stand on its own: it may not be glued to letters or
// digits on either side, so "v1.2.3.4" or "std::vector" are not matches.
//
// What each detector flags (positives / deliberate negatives):
//
// email  local@domain.tld: a non-empty local part (RFC 5322 atext and dots),
//        a domain of at least two dot-separated labels of letters, digits and
//        inner dashes, and an alphabetic top-level label of 2-63 letters.
//        Not: "@timestamp" (empty local part), "a@b" and "user@localhost" (no
//        dot), "v1.2@latest", "lodash@4.17.21" (numeric tld: package
//        versions), "nginx@sha256:...". Flagged although not personal:
//        "git@github.com:org/repo" (it has the shape of an address).
// ipv4   a dotted quad, each octet 0-255 written without leading zeros
//        ("10.0.0.7", "client 10.1.2.3 connected", "10.0.0.7:8080").
//        Every quad counts, 0.0.0.0 and 127.0.0.1 included. Not: "1.2.3"
//        (versions), "1.2.3.4.5" (more than four parts), "256.1.1.1",
//        "01.02.03.04", "0.005" and other `le` values. Four-part versions
//        ("1.2.3.4") are indistinguishable from addresses and are flagged.
// ipv6   RFC 4291 text forms, full and compressed, with an optional trailing
//        dotted quad (IPv4-mapped "::ffff:10.0.0.1"), bracketed
//        ("[2001:db8::1]:443"), with a zone ("fe80::1%eth0") or a prefix
//        length. Must contain at least one decimal digit. Not: "::" alone
//        (unspecified), "12:30:45" (times), "a:b", MAC addresses
//        ("00:1a:2b:3c:4d:5e": six groups are not IPv6; eight groups of
//        exactly two hex digits, the EUI-64 spelling, are not flagged
//        either), all-letter forms like "dead::beef" or "db::add" (C++/Rust
//        paths, ratios), and anything glued to a letter ("std::vector").
// card   13-19 digits, contiguous or in groups separated by single spaces or
//        dashes (first group 4 digits, others 3-6: "4111 1111 1111 1111",
//        "3782-822463-10005"), Luhn-valid, with a known IIN prefix and a
//        length valid for it: Visa 4 (13/16/19), Mastercard 51-55 and
//        2221-2720 (16), Amex 34/37 (15), Discover 6011/644-649/65 (16-19),
//        Diners 300-305/36/38/39 (14-19), JCB 3528-3589 (16-19), UnionPay 62
//        (16-19), Mir 2200-2204 (16), Maestro 5018/5020/5038/5893/6304/6759/
//        6761-6763 (13-19). Not: Luhn-invalid numbers, epoch timestamps in
//        s/ms/us/ns (they start with 1), Luhn-valid ids without a card
//        prefix, runs of 20 or more digits, digits glued to letters.
// jwt    three base64url segments separated by '.', the first starting with
//        "eyJ" and decoding to a JSON object that has an "alg" member; the
//        signature may be empty (alg "none"). Not: "a.b.c", "eyJ" alone, a
//        header without a payload, a header without "alg".
// secret well-known key formats anywhere in any label: AWS access key ids
//        (AKIA/ASIA + 16 upper-case letters or digits), GitHub tokens
//        (ghp_/gho_/ghu_/ghs_/ghr_ + 36 or more alphanumerics, github_pat_ +
//        22 or more), GitLab personal tokens (glpat- + 20 or more), Slack
//        tokens (xoxb-/xoxp-/xoxa-/xoxr-/xoxs-/xoxe- + 10 or more), Stripe
//        live keys (sk_live_/rk_live_/pk_live_ + 16 or more), Google API keys
//        (AIza + 35), "Bearer <token>" (case-insensitive scheme; a token68 of
//        16 or more characters with letters and digits), "Basic <base64>"
//        (valid padding, decodes to "user:password"), and PEM private key
//        headers ("-----BEGIN ... PRIVATE KEY"). In key-like label names only
//        (see isKeyLikeLabelName), also long high-entropy tokens: a run of
//        20 or more characters of [A-Za-z0-9] and -._~+/=!#$%&*?@^: with
//        Shannon entropy of at least 3.5 bits per character (3.0 when it is
//        all hex digits and dashes: hex ids, uuids), mixed classes (two of:
//        3+ lower-case, 3+ upper-case, 2+ digits), some alphanumeric segment
//        switching between letters and digits at least twice ("x9Qe2L"; not
//        "internal_error_v2" or "SamlAuthProvider"), and not path-like (a
//        '/' segment that is a lower-case word, "://", a leading '.' or '~').
//        Random 20-character base62/base64/hex tokens are caught 93-97% of
//        the time, 32-character ones 98-100%. Uuids in key-like labels such
//        as "session_id" are flagged. Not: uuids in "request_id" or hex trace
//        ids in "trace_id" (not key-like), long words, paths, ISO timestamps,
//        "Bearer" without a token, "Basic auth".
// phone  E.164-style: '+', a country code not starting with 0, 8 to 15
//        digits in all, with single spaces, dashes or parentheses between
//        groups ("+5511987654321", "+1 (415) 555-2671", "+44 20 7946 0958").
//        Not: "+Inf", "+1", "+123", "+1.2.3", semver build metadata
//        ("1.0.0+20130313144700"), UTC offsets ("10:03:42+05:30"), exponents
//        ("1e+10"), national numbers without '+' (too ambiguous).
//
// detect() tries the enabled detectors in this order and reports the first
// that flags: email, ipv4, ipv6, jwt, card, phone, secret. The order only
// matters for values that several detectors flag ("Bearer eyJ..." is a jwt).

#include <cstdint>
#include <optional>
#include <string_view>

namespace cardinal::pipeline::sanitize {

enum class Detector : uint8_t { kEmail, kIpv4, kIpv6, kCard, kJwt, kSecret, kPhone };
inline constexpr int kDetectorCount = 7;

using DetectorMask = uint32_t;  // bit per Detector
constexpr DetectorMask detectorBit(Detector d) { return DetectorMask{1} << static_cast<unsigned>(d); }
inline constexpr DetectorMask kAllDetectors = (DetectorMask{1} << kDetectorCount) - 1;

// "email", "ipv4", "ipv6", "card", "jwt", "secret", "phone" (exact, lower case).
std::optional<Detector> parseDetector(std::string_view name);
std::string_view detectorName(Detector d);

// The first enabled detector that flags `value` (order in the comment above),
// or nullopt. `label_name` only matters for the secret detector's entropy rule.
std::optional<Detector> detect(std::string_view label_name, std::string_view value,
                               DetectorMask enabled = kAllDetectors);

// Whether a label name announces a secret: split into words at '_', '-', '.'
// and lower-to-upper case changes, some word (case-insensitive) is one of
// token(s), secret(s), key(s), apikey, password, passwd, pwd, passphrase,
// auth, authorization, credential(s), creds, session, sessionid, cookie(s),
// signature, sig, jwt, bearer, csrf, xsrf, hmac, nonce, or ends with token/
// secret/password/passwd/apikey/accesskey/secretkey/privatekey ("x_api_key",
// "accessToken", "APIKey", "AUTH", "db_password"). "monkey", "keyspace",
// "tokenizer", "author", "request_id", "trace_id" are not key-like.
bool isKeyLikeLabelName(std::string_view label_name);

// Label names whose last word is password, passwd, pwd, passphrase, secret,
// token, apikey, credential(s) or privatekey (db_password, api_token,
// clientSecret): any value of 3+ characters in them is treated as a secret.
bool isSecretValuedLabelName(std::string_view label_name);

// Shannon entropy of the byte distribution of `s`, in bits per character
// (0 for empty or single-symbol strings, at most log2(min(|s|, 256))).
double shannonEntropyBitsPerChar(std::string_view s);

}  // namespace cardinal::pipeline::sanitize
