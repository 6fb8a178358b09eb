#include "pipeline/sanitize/detectors.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace cardinal::pipeline::sanitize;

namespace {

// Whether detector `d` alone flags the value.
bool flags(Detector d, std::string_view value, std::string_view label = "value") {
  return detect(label, value, detectorBit(d)) == d;
}

std::string flaggedBy(std::string_view label, std::string_view value) {
  auto d = detect(label, value);
  return d ? std::string(detectorName(*d)) : std::string("nothing");
}

// Each positive is flagged by `d` on its own; each negative by no detector at all.
void checkTable(Detector d, const std::vector<std::string>& positives, const std::vector<std::string>& negatives) {
  for (const auto& v : positives) {
    INFO("positive: \"", v, "\"");
    CHECK(flags(d, v));
  }
  for (const auto& v : negatives) {
    INFO("negative: \"", v, "\" flagged by ", flaggedBy("value", v));
    CHECK_FALSE(detect("value", v).has_value());
  }
}

}  // namespace

TEST_CASE("detector names parse and round trip") {
  for (int k = 0; k < kDetectorCount; ++k) {
    const auto d = static_cast<Detector>(k);
    CHECK(parseDetector(detectorName(d)) == d);
    CHECK((kAllDetectors & detectorBit(d)) != 0);
  }
  CHECK(parseDetector("email") == Detector::kEmail);
  CHECK(parseDetector("phone") == Detector::kPhone);
  CHECK_FALSE(parseDetector("Email").has_value());
  CHECK_FALSE(parseDetector("ip").has_value());
  CHECK_FALSE(parseDetector("").has_value());
  CHECK(kAllDetectors == 0x7fu);
}

TEST_CASE("detect honours the mask and reports the first detector in order") {
  CHECK(detect("email", "joao.silva@example.com") == Detector::kEmail);
  CHECK_FALSE(detect("email", "joao.silva@example.com", kAllDetectors & ~detectorBit(Detector::kEmail)).has_value());
  CHECK_FALSE(detect("email", "joao.silva@example.com", 0).has_value());
  // A bearer JWT is a jwt first, a secret when jwt is off.
  const std::string bearer_jwt =
      "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
      ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
      ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  CHECK(detect("authorization", bearer_jwt) == Detector::kJwt);
  CHECK(detect("authorization", bearer_jwt, kAllDetectors & ~detectorBit(Detector::kJwt)) == Detector::kSecret);
  // IPv4-mapped IPv6 carries a dotted quad: ipv4 comes first.
  CHECK(detect("peer", "::ffff:192.0.2.1") == Detector::kIpv4);
  CHECK(detect("peer", "::ffff:192.0.2.1", detectorBit(Detector::kIpv6)) == Detector::kIpv6);
}

TEST_CASE("detectors: email") {
  checkTable(Detector::kEmail,
             {"joao.silva@example.com", "user=joao.silva@example.com", "<maria.oliveira@example.com>",
              "first.last+tag@sub.example.co.uk", "JOAO@EXAMPLE.COM", "o'brien@example.ie",
              "login failed for ana.paula@example.com: bad password", "mailto:carlos.santos@example.com",
              "git@github.com:org/repo.git"},
             {"@timestamp", "a@b", "v1.2@latest", "user@localhost", "lodash@4.17.21", "@scope/pkg@1.0.0",
              "nginx@sha256:9f86d081884c7d65", "joao@example.c", "joao@-example.com", "joao@example-.com",
              "@example.com", "foo@.com", "joao.@example.com", "a @ b.com", "joao@example.c0m"});
}

TEST_CASE("detectors: ipv4") {
  checkTable(Detector::kIpv4,
             {"10.0.0.7", "client 10.1.2.3 connected", "10.0.0.7:8080", "192.168.1.1/24", "connected to 10.0.0.7.",
              "xff=203.0.113.9,10.0.0.1", "255.255.255.255", "0.0.0.0", "127.0.0.1", "host_10.0.0.1", "joao@10.0.0.1",
              "::ffff:192.0.2.1"},
             {"1.2.3", "1.2.3.4.5", "256.1.1.1", "10.0.0.300", "01.02.03.04", "10.0.0.07", "0.005", "0.25", "2.5",
              "+Inf", "2025.08.12", "v1.2.3.4", "1.2.3.4a", "x.1.2.3.4.5", "10.0.0", "10..0.0.1"});
  // `instance` is protected by the caller, not by the detector: it must still see the address.
  CHECK(detect("instance", "10.0.0.7:8080") == Detector::kIpv4);
}

TEST_CASE("detectors: ipv6") {
  checkTable(Detector::kIpv6,
             {"::1", "fe80::1%eth0", "[2001:db8::1]:443", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8::",
              "2001:DB8::8A2E:370:7334", "addr=2001:db8::1/64", "peer fe80::1: up", "addr:fe80::1", "1::",
              "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1", "64:ff9b::192.0.2.33"},
             {"::", ":::", "12:30:45", "12:30:45.123", "a:b", "00:1a:2b:3c:4d:5e", "00:1a:2b:ff:fe:3c:4d:5e",
              "std::vector<int>", "crate::module::fn", "x10::1", "int16::", "dead::beef", "db::add",
              "2025-08-12T10:03:42.123456Z",
              "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "2001:db8:::1", "1::2::3", "12345::1", "2001:db8::1g",
              "::ffff:192.0.2", "::ffff:192.0.2.1.5", "ratio 1:2:3"});
}

TEST_CASE("detectors: card") {
  checkTable(Detector::kCard,
             {"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "4012888888881881",
              "4222222222222",     // Visa, 13 digits
              "5555555555554444", "5105105105105100", "2223003122003222", "2200000000000004",
              "378282246310005", "3782 822463 10005", "371449635398431", "6011111111111117", "6011000990139424",
              "30569309025904", "38520000023237", "3530111333300000", "3566002020360505", "6200000000000005",
              "6759649826438453", "6304000000000000", "4111111111111111110", "card=4111111111111111;",
              "paid with 4111 1111 1111 1111 today", "order 2024-4111111111111111"},
             {"4111111111111112",       // Luhn-invalid
              "1691831294009",          // epoch ms, Luhn-valid, no card starts with 1
              "1764000000000004",       // epoch us, Luhn-valid
              "1691831294000",          // epoch ms
              "9876543210123452",       // Luhn-valid order id, no card prefix
              "7000123456789002",       // Luhn-valid order id, no card prefix
              "411111111111116",        // Luhn-valid, starts with 4, but 15 digits is no Visa length
              "5500000000000000004",    // Mastercard prefix, Luhn-valid, but 19 digits
              "41111111111111111115",   // 20 digits
              "4111111111111111111111", // 22 digits
              "id4111111111111111", "4111111111111111x", "4111111111111111.5", "41 11 11 11 11 11 11 11",
              "4111  1111 1111 1111", "411 1111 1111 1111 1",
              "12 4111 1111 1111 1111",    // grouped numbers start with a 4-digit group
              "4111 1111 1111 1111 1105",  // 20 digits, the first 19 Luhn-valid
              "4111 1111 1111 1111x", "4111-1111-1111-1111.5", "/tmp/upload/session_1691831294000/file.txt",
              "12345678-1234-1234-1234-123456789012"});
}

TEST_CASE("detectors: jwt") {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
      ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  checkTable(Detector::kJwt,
             {jwt, "token=" + jwt, "Bearer " + jwt,
              "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",  // alg none: empty signature
              "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2IiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0.c2ln"},  // alg not first
             {"a.b.c", "eyJ", "eyJ.eyJ.eyJ", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
              "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..c2ln",    // no payload
              "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",       // header without "alg"
              "xeyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2ln",     // glued to a word
              "eyJhbGciOiJub25lIn0xy.eyJzdWIiOiIxIn0.c2ln",     // bad base64url length
              "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2lnX"});  // bad signature length
}

TEST_CASE("detectors: secret, well-known formats in any label") {
  // Split literals so repository secret scanners do not trip on the fixtures.
  checkTable(Detector::kSecret,
             {"AKIA" "IOSFODNN7EXAMPLE", "key=ASIA" "Y34FZKBOKMUTVV7A,", "ghp_" "Ik2zwEQHfwcepYyNGfB51YbmwxAscRuzOl8G",
              "gho_" "Ik2zwEQHfwcepYyNGfB51YbmwxAscRuzOl8G",
              "github_pat_" "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
              "glpat-" "xY9zA8bC7dE6fG5hI4jK", "xoxb-" "123456789012-1234567890123-AbCdEfGhIjKlMnOp",
              "xoxp-" "1234567890-abcdef", "sk_live_" "aqLXj4sxrvXFcqgGxKh1ZXfu", "rk_live_" "aqLXj4sxrvXFcqgGxKh1",
              "pk_live_" "aqLXj4sxrvXFcqgGxKh1", "AIza" "oDCDBwb2Dc4_dsdc6lC1MXlPq2Ymk_yE9fz",
              "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543", "bearer abcDEF1234567890xyz==",
              "Basic dXNlcjpwYXNzd29yZA==", "basic am9hbzpzM2NyZXQh", "Basic dXNlcjpw",  // "user:p" "-----BEGIN RSA PRIVATE KEY-----",
              "-----BEGIN PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEA",
              "-----BEGIN ENCRYPTED PRIVATE KEY-----"},
             {"AKIA", "AKIA" "IOSFODNN7EXAMPL", "AKIA" "IOSFODNN7EXAMPLEX", "xAKIA" "IOSFODNN7EXAMPLE",
              "akia" "iosfodnn7example", "ghp_short", "ghx_" "Ik2zwEQHfwcepYyNGfB51YbmwxAscRuzOl8G", "xoxb-123",
              "sk_test_" "aqLXj4sxrvXFcqgGxKh1ZXfu", "sk_live_short", "AIza" "Sy-too-short",
              "Bearer", "Bearer token", "Bearer invalid_token_provided",
              "Bearer realm=\"api\", error=\"invalid_token\"",
              "Bearer abcdefghijklmnopqrstuvwxyz", "Basic auth", "Basic realm=\"x\"", "Basic authentication",
              "Basic dXNlcnBhc3N3b3Jk",  // "userpassword": no colon
              "-----BEGIN PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----", "-----BEGIN"});
}

TEST_CASE("detectors: secret, high-entropy tokens only in key-like labels") {
  struct Case {
    const char* label;
    const char* value;
    bool flagged;
  };
  const Case cases[] = {
      {"token", "8f14e45fceea167a5a36dedd4bea2543", true},  // hex
      {"api_key", "Zx9Qe2LmP4vR7tYw1KsD3fGh", true},
      {"x-api-key", "Zx9Qe2LmP4vR7tYw1KsD3fGh", true},
      {"accessToken", "Zx9Qe2LmP4vR7tYw1KsD3fGh", true},
      {"password", "Tr0ub4dor&3xK9#mQ2vL8pZ", true},
      {"aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true},
      {"session_id", "550e8400-e29b-41d4-a716-446655440000", true},  // session ids are secrets
      {"cookie", "sid=Zx9Qe2LmP4vR7tYw1KsD3fGh; Path=/", true},
      {"signature", "ZmFrZS1zaWduYXR1cmUtMTIzNDU2Nzg5MA", true},
      {"otp_secret", "QWERTZUIOPASDF7GHJKL2", true},  // base32-like: upper case and two digits
      // Same values, labels that do not announce a secret.
      {"request_id", "550e8400-e29b-41d4-a716-446655440000", false},
      {"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", false},
      {"span_id", "00f067aa0ba902b7", false},
      {"user_id", "c2f8b7a2-4b9e-4f7a-a98b-7e2f7b2f38c4", false},
      {"value", "Zx9Qe2LmP4vR7tYw1KsD3fGh", false},
      {"monkey", "Zx9Qe2LmP4vR7tYw1KsD3fGh", false},
      // Key-like labels, values that are no tokens.
      {"session", "Zx9Qe2LmP4vR7tYw1KsD", true},  // 20 characters: the shortest flagged
      {"session", "Zx9Qe2LmP4vR7tYw1Ks", false},  // 19
      {"token_status", "not_configured_for_this_service", false},
      {"token_status", "internal_server_error_v2_retry_3", false},
      {"auth_method", "SamlAuthenticationProvider", false},
      {"session_start", "2025-08-19T17:36:58.946271Z", false},  // 3.8 bits, but only digits and "T", "Z"
      {"cache_key", "user:12345:profile:v2", false},
      {"auth_provider", "supercalifragilisticexpialidocious", false},
      {"secret_path", "/etc/secrets/v2/db-password-2024.txt", false},
      {"key_file", "config/prod-2024/api-keys.yaml", false},
      {"auth_url", "https://auth.example.org/oauth2/v1/authorize", false},
      {"key_file", "/etc/ssl/private/k8s1a2b3c4d5.pem", false},
      {"key", "00000000000000000000000000000000", false},  // no entropy
      {"session", "g1H2i3J4k5g1H2i3J4k5g1H2", false},          // ten symbols repeated: 3.3 bits
      {"key", "12345678901234567890123", false},          // digits only
      {"session", "short", false},
  };
  for (const auto& c : cases) {
    const std::string what = std::string(c.label) + "=\"" + c.value + "\"";
    INFO(what);
    CHECK(flags(Detector::kSecret, c.value, c.label) == c.flagged);
  }
}

TEST_CASE("detectors: isKeyLikeLabelName") {
  for (const char* name : {"token", "api_key", "apikey", "APIKey", "x-api-key", "accessToken", "AUTH", "password",
                           "db_password", "client_secret", "clientSecret", "session_id", "cookie", "signature", "sig",
                           "authorization", "private_key", "aws_secret_access_key", "githubToken", "passwd", "jwt",
                           "csrf_token", "creds",
                           "session_count"})  // a word match: only high-entropy values are flagged there
    CHECK_MESSAGE(isKeyLikeLabelName(name), name);
  for (const char* name : {"monkey", "keyspace", "keyboard", "hotkey", "request_id", "trace_id", "path", "signal",
                           "author", "passport", "", "_", "user_id", "email", "tokenizer"})
    CHECK_MESSAGE(!isKeyLikeLabelName(name), name);
}

TEST_CASE("detectors: phone") {
  checkTable(Detector::kPhone,
             {"+5511987654321", "+1 (415) 555-2671", "+44 20 7946 0958", "+44 (0)20 7946 0958",
              "call +49-30-1234567 now", "+683 12345",  // 8 digits: the shortest
              "+351 912 345 678", "tel:+14155552671", "(+5511987654321)", "+123456789012345"},
             {"+Inf", "-Inf", "+1", "+123", "+1.2.3", "1.0.0+20130313144700", "2025-08-12T10:03:42+05:30", "1e+10",
              "+0123456789", "+1234567", "+1234567890123456", "+12345678.5", "a+12345678901", "+1 2", "c++17",
              "+1-800-FLOWERS"});
}

TEST_CASE("detectors: shannonEntropyBitsPerChar") {
  CHECK(shannonEntropyBitsPerChar("") == 0.0);
  CHECK(shannonEntropyBitsPerChar("a") == 0.0);
  CHECK(shannonEntropyBitsPerChar("aaaaaaaa") == 0.0);
  CHECK(shannonEntropyBitsPerChar("ab") == doctest::Approx(1.0));
  CHECK(shannonEntropyBitsPerChar("abcd") == doctest::Approx(2.0));
  CHECK(shannonEntropyBitsPerChar("aab") == doctest::Approx(0.918296));
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  CHECK(shannonEntropyBitsPerChar(all) == doctest::Approx(8.0));
  CHECK(shannonEntropyBitsPerChar("0123456789abcdef") == doctest::Approx(4.0));
}

// The seed document's values and the well-behaved labels: only the emails
// (and `instance`, which the caller protects) are sensitive to these detectors.
TEST_CASE("detectors on seed values: emails flagged; uuids, paths, SQL, pids and well-behaved values are not") {
  for (const char* email : {"joao.silva@example.com", "maria.oliveira@example.com", "carlos.santos@example.com",
                            "ana.paula@example.com", "pedro.almeida@example.com"})
    CHECK_MESSAGE(detect("email", email) == Detector::kEmail, email);

  struct Value {
    const char* label;
    const char* value;
  };
  const Value clean[] = {
      {"user_id", "550e8400-e29b-41d4-a716-446655440000"},
      {"user_id", "c2f8b7a2-4b9e-4f7a-a98b-7e2f7b2f38c4"},
      {"order_id", "a3f5d12c-0b2a-4dc7-83e5-9f72c3a421df"},
      {"order_id", "6dfb91b2-39b1-47ab-a0ad-0a8b1b4e94c8"},
      {"pid", "48291"},
      {"file_path", "/tmp/upload/session_1691831294000/file.txt"},
      {"timestamp", "2025-08-12T10:03:42.123456Z"},
      {"path", "/users/abc123/orders/456"},
      {"path", "/reports/2024-01-15/summary"},
      {"query", "SELECT * FROM orders WHERE id = 12345"},
      {"query", "SELECT * FROM users WHERE email = ? AND created_at > ?"},
      {"__name__", "checkout_request_latency_seconds"},
      {"env", "prod"},
      {"region", "us-east"},
      {"method", "GET"},
      {"status", "404"},
      {"code", "200"},
      {"handler", "/api/v1/users"},
      {"route", "/api/v1/users/{id}"},
      {"job", "checkout"},
      {"version", "1.2.3"},
      {"version", "v2.41.0-rc.1+build.20240115"},
      {"duration", "30s"},
      {"hex", "deadbeef"},
      {"hex", "cafe"},
      {"le", "0.005"},
      {"le", "0.25"},
      {"le", "2.5"},
      {"le", "10"},
      {"le", "+Inf"},
      {"quantile", "0.99"},
      {"date", "2025-08-12"},
      {"time", "10:03:42"},
      {"image", "nginx@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
      {"user_agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"},
  };
  for (const auto& v : clean) {
    const std::string what = std::string(v.label) + "=\"" + v.value + "\" flagged by " + flaggedBy(v.label, v.value);
    INFO(what);
    CHECK_FALSE(detect(v.label, v.value).has_value());
  }
  CHECK(detect("instance", "10.0.0.7:8080") == Detector::kIpv4);
}

TEST_CASE("detect: labels named like passwords and tokens hold secrets whatever the value") {
  using namespace cardinal::pipeline::sanitize;
  CHECK(detect("password", "hunter2hunter2") == Detector::kSecret);
  CHECK(detect("db_password", "Tr0ub4dor&3xyzzyQ9") == Detector::kSecret);
  CHECK(detect("clientSecret", "abc") == Detector::kSecret);
  CHECK(detect("api-token", "plain words") == Detector::kSecret);
  CHECK_FALSE(detect("password_reset", "true").has_value());
  CHECK_FALSE(detect("token_type", "bearer").has_value());
  CHECK_FALSE(detect("passwords_total", "7").has_value());
  CHECK_FALSE(detect("password", "ab").has_value());  // shorter than any secret
  CHECK_FALSE(detect("password", "hunter2", kAllDetectors & ~detectorBit(Detector::kSecret)).has_value());
}
