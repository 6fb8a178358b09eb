#include "pipeline/cardinality/sketch/value_shape.h"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace cardinal::pipeline::cardinality;

namespace {

std::string shapeOf(std::string_view v) { return std::string(shapeName(classifyValue(v))); }

void checkTable(const std::vector<std::pair<std::string, std::string>>& table) {
  for (const auto& row : table) {
    INFO("value: \"", row.first, "\"");
    CHECK(shapeOf(row.first) == row.second);
  }
}

std::string randomString(std::mt19937_64& rng, std::string_view alphabet, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

}  // namespace

TEST_SUITE("cardinality value shape") {

TEST_CASE("shape names") {
  const std::vector<std::string> names = {"uuid", "number", "hex",   "timestamp", "email",
                                          "ip",   "path",   "token", "word",      "text"};
  REQUIRE(names.size() == kValueShapeCount);
  for (size_t i = 0; i < kValueShapeCount; ++i) CHECK(shapeName(static_cast<ValueShape>(i)) == names[i]);
  CHECK(shapeName(ValueShape::kCount_) == "unknown");
}

TEST_CASE("the seed's values") {
  checkTable({
      {"550e8400-e29b-41d4-a716-446655440000", "uuid"},
      {"48291", "number"},
      {"/tmp/upload/session_1691831294000/file.txt", "path"},
      {"2025-08-12T10:03:42.123456Z", "timestamp"},
      {"1691831294000", "timestamp"},
      {"joao.silva@example.com", "email"},
      {"/users/abc123/orders/456", "path"},
      {"SELECT * FROM orders WHERE id = 12345", "text"},
      {"h:0123456789abcdef", "token"},
      {"deadbeef01", "hex"},
      {"10.1.2.3", "ip"},
      {"2001:db8::1", "ip"},
      {"GET", "word"},
      {"us-east", "word"},
      {"v1.2.3", "word"},
      {"checkout", "word"},
      {"BR", "word"},
      {"200", "number"},
  });
}

TEST_CASE("each shape, positives and near misses") {
  checkTable({
      // uuid
      {"550E8400-E29B-41D4-A716-446655440000", "uuid"},
      {"{550e8400-e29b-41d4-a716-446655440000}", "uuid"},
      // number
      {"-17", "number"},
      {"+3.25", "number"},
      {"0.005", "number"},
      {".5", "number"},
      {"1e-9", "number"},
      {"+Inf", "number"},
      {"NaN", "number"},
      {"1.2.3", "word"},
      {"12e", "word"},
      {"-", "text"},
      // timestamp
      {"2025-08-12", "timestamp"},
      {"2025-08-12 10:03:42", "timestamp"},
      {"2025-08-12T10:03:42+05:30", "timestamp"},
      {"20250812T100342Z", "timestamp"},
      {"10:03:42", "timestamp"},
      {"10:03:42.123", "timestamp"},
      {"1691831294", "timestamp"},
      {"1691831294.123", "timestamp"},
      {"1691831294000000", "timestamp"},
      {"1691831294000000000", "timestamp"},
      {"9999999999", "number"},     // 2286: out of range
      {"1691831294000", "timestamp"},
      {"169183129400", "number"},   // 12 digits: not an epoch length
      {"2025-13-12", "word"},       // no month 13
      {"25:03:42", "word"},
      // hex
      {"0x1F", "hex"},
      {"0XFF", "hex"},
      {"4bf92f3577b34da6a3ce929d0e0e4736", "hex"},
      {"DEADBEEF01", "hex"},
      {"deadbeef", "word"},  // no digit
      {"abc123", "word"},    // too short
      // ip
      {"10.0.0.0/8", "ip"},
      {"10.0.0.7:8080", "ip"},
      {"[2001:db8::1]:443", "ip"},
      {"::ffff:10.0.0.1", "ip"},
      {"256.1.1.1", "word"},
      // email
      {"user+tag@mail.example.org", "email"},
      {"user@localhost", "text"},
      // token
      {"h:0000000000000000", "token"},
      {"h:0123", "word"},
      {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk", "token"},
      {"01ARZ3NDEKTSV4RRFFQ69G5FAV", "token"},  // ULID
      {"Zx9Qe2LmP4vR7tYw1KsD3fGh", "token"},
      {"dXNlcjpwYXNzd29yZDEyMzQ1Ng==", "token"},
      {"k3j9x2m4p8q1w7z5", "token"},  // base36
      {"SamlAuthenticationProvider", "word"},
      {"HTTPServerError500", "word"},
      {"internal_server_error_v2", "word"},
      {"kube-apiserver-ip-10-0-1-23", "word"},
      // path
      {"/metrics", "path"},
      {"https://example.com/api/v1/users?id=7", "path"},
      {"a/b", "path"},
      {"text/html", "path"},
      {"/", "text"},
      {"a/", "text"},
      {"/tmp/my file.txt", "text"},
      // word and text
      {"us-east-1", "word"},
      {"checkout_service", "word"},
      {"30s", "word"},
      {"my.metric:rate5m", "word"},
      {"hello world", "text"},
      {"", "text"},
      {std::string(65, 'a'), "text"},
      {"café", "text"},
  });
}

TEST_CASE("random strings are tokens, long identifiers are not") {
  std::mt19937_64 rng(11);
  const std::string base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const std::string base36 = "abcdefghijklmnopqrstuvwxyz0123456789";
  const std::string base64 = base62 + "+/";
  int tokens62 = 0, tokens36 = 0, tokens64 = 0;
  constexpr int kTrials = 1000;
  for (int i = 0; i < kTrials; ++i) {
    tokens62 += classifyValue(randomString(rng, base62, 20)) == ValueShape::kToken;
    tokens36 += classifyValue(randomString(rng, base36, 24)) == ValueShape::kToken;
    tokens64 += classifyValue(randomString(rng, base64, 32)) == ValueShape::kToken;
  }
  MESSAGE("random strings classified token: base62x20 ", tokens62 / 10.0, "%, base36x24 ", tokens36 / 10.0,
          "%, base64x32 ", tokens64 / 10.0, "%");
  CHECK(tokens62 >= 950);
  CHECK(tokens36 >= 970);
  CHECK(tokens64 >= 930);

  for (const char* ident : {"SamlAuthenticationProvider", "checkoutServiceLatencyBucket", "OrderCreatedEventV2",
                            "api_request_duration_seconds", "ProcessPaymentRequest", "getUserOrdersById",
                            "prometheus-k8s-0", "HTTPServerError500", "ip-10-0-1-23.ec2.internal",
                            "X-Request-ID", "AKIAIOSFODNN7EXAMPLE"}) {
    INFO(std::string(ident));
    CHECK(classifyValue(ident) != ValueShape::kToken);
  }
}

TEST_CASE("identifier shapes") {
  CHECK(isIdentifierShape(ValueShape::kUuid));
  CHECK(isIdentifierShape(ValueShape::kHex));
  CHECK(isIdentifierShape(ValueShape::kToken));
  CHECK(isIdentifierShape(ValueShape::kTimestamp));
  for (ValueShape s : {ValueShape::kNumber, ValueShape::kEmail, ValueShape::kIp, ValueShape::kPath, ValueShape::kWord,
                       ValueShape::kText})
    CHECK_FALSE(isIdentifierShape(s));
}

TEST_CASE("charEntropyBits") {
  CHECK(charEntropyBits("") == 0.0);
  CHECK(charEntropyBits("a") == 0.0);
  CHECK(charEntropyBits("aaaa") == 0.0);
  CHECK(charEntropyBits("ab") == doctest::Approx(1.0));
  CHECK(charEntropyBits("abcd") == doctest::Approx(2.0));
  CHECK(charEntropyBits("abcdefgh") == doctest::Approx(3.0));
  CHECK(charEntropyBits("aab") == doctest::Approx(0.918296).epsilon(1e-5));
  CHECK(charEntropyBits("550e8400-e29b-41d4-a716-446655440000") < charEntropyBits("Zx9Qe2LmP4vR7tYw1KsD3fGh"));
}

TEST_CASE("distributionEntropyBits") {
  CHECK(distributionEntropyBits({}, 0, 0) == 0.0);
  CHECK(distributionEntropyBits({5}, 0, 1) == 0.0);
  CHECK(distributionEntropyBits({10, 10, 10, 10, 10, 10, 10, 10}, 80, 8) == doctest::Approx(3.0));
  CHECK(distributionEntropyBits({100}, 100, 1) == doctest::Approx(0.0));
  CHECK(distributionEntropyBits({50, 50}, 100, 40) == doctest::Approx(1.0));  // counts cover all: exact
  // Remainder spreading: the two heaviest of 64 equal values known, 62 more estimated -> log2(64).
  CHECK(distributionEntropyBits({10, 10}, 640, 64) == doctest::Approx(6.0));
  // Half in one value, the other half spread over 1024 values: 0.5 * 1 + 0.5 * 11.
  CHECK(distributionEntropyBits({1024}, 2048, 1025) == doctest::Approx(6.0));
  // A distinct estimate no larger than the known values still leaves one value for the remainder.
  CHECK(distributionEntropyBits({50}, 100, 1) == doctest::Approx(1.0));
  // At most one value per unit of remaining count: 2 left over cannot be 100 values.
  CHECK(distributionEntropyBits({2}, 4, 100) == doctest::Approx(1.5));
  CHECK(distributionEntropyBits({2}, 4, std::nan("")) == doctest::Approx(1.0));
  // Counts past the total (a decayed total) are the whole distribution.
  CHECK(distributionEntropyBits({30, 30}, 40, 2) == doctest::Approx(1.0));
}

}  // TEST_SUITE
