#include "pipeline/normalize/normalizers.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "codec/wire.h"

using namespace cardinal::pipeline::normalize;
using cardinal::codec::wire::validUtf8;

namespace {

// One table row: `want` is the normalized value, or the input itself for "kept as is".
struct Row {
  std::string_view in;
  std::string_view want;
};

Row keep(std::string_view v) { return {v, v}; }

// Every row: the expected result, UTF-8 preserved, and idempotence (the result is kept).
void checkTable(Normalizer n, const std::vector<Row>& rows, const Options& opts = {}) {
  for (const auto& r : rows) {
    INFO(normalizerName(n), ": \"", std::string(r.in), "\"");
    std::string out;
    const bool changed = normalize(n, r.in, out, opts);
    CHECK((changed ? out : std::string(r.in)) == r.want);  // kept rows: nothing changed
    if (!changed) continue;
    CHECK(out != r.in);
    CHECK(validUtf8(out));
    std::string again;
    const bool changed_again = normalize(n, out, again, opts);
    INFO("second pass: \"", again, "\"");
    CHECK_FALSE(changed_again);
  }
}

const std::vector<std::string_view> kSeedUuids = {
    // checkout_request_latency_seconds{user_id=...}
    "550e8400-e29b-41d4-a716-446655440000",
    "c2f8b7a2-4b9e-4f7a-a98b-7e2f7b2f38c4",
    "d1a2e84b-8cf5-4d9d-a18d-4cfa65ad7f91",
    "aa6f8a92-bf24-4f7f-89c7-c71e93ef3d91",
    "f7c26b1d-0198-46e4-a923-7de28a57b4a5",
    // order_payment_failures_total{order_id=...}
    "a3f5d12c-0b2a-4dc7-83e5-9f72c3a421df",
    "91df21e1-1870-4d94-bd07-7fa6d6c7f1df",
    "77a8d92c-b302-4d6b-80e7-2f42b920dd24",
    "4a9b0d2a-50f2-4c64-9398-1a5e842f82b2",
    "6dfb91b2-39b1-47ab-a0ad-0a8b1b4e94c8",
};

}  // namespace

TEST_CASE("normalizer names parse and round trip") {
  for (int k = 0; k <= static_cast<int>(Normalizer::kAuto); ++k) {
    const auto n = static_cast<Normalizer>(k);
    CHECK(parseNormalizer(normalizerName(n)) == n);
  }
  CHECK(parseNormalizer("hex") == Normalizer::kHexId);
  CHECK(parseNormalizer("url_path") == Normalizer::kUrlPath);
  CHECK_FALSE(parseNormalizer("UUID").has_value());
  CHECK_FALSE(parseNormalizer("").has_value());
  CHECK_FALSE(parseNormalizer("path").has_value());
}

TEST_CASE("normalize uuid") {
  std::vector<Row> rows = {
      {"550E8400-E29B-41D4-A716-446655440000", "{uuid}"},
      keep("550e8400e29b41d4a716446655440000"),        // no dashes: a hex id, not a uuid
      keep("550e8400-e29b-41d4-a716-44665544000"),     // 35 chars
      keep("550e8400-e29b-41d4-a716-44665544000g"),    // not hex
      keep("550e8400-e29b41d4-a716-4466554400000"),    // dash misplaced
      keep("{550e8400-e29b-41d4-a716-446655440000}"),  // braced
      keep(" 550e8400-e29b-41d4-a716-446655440000"),
      keep("{uuid}"),
      keep(""),
  };
  for (auto u : kSeedUuids) rows.push_back({u, "{uuid}"});
  checkTable(Normalizer::kUuid, rows);
}

TEST_CASE("normalize ulid") {
  checkTable(Normalizer::kUlid,
             {
                 {"01ARZ3NDEKTSV4RRFFQ69G5FAV", "{ulid}"},
                 {"01arz3ndektsv4rrffq69g5fav", "{ulid}"},
                 {"7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "{ulid}"},
                 keep("81ARZ3NDEKTSV4RRFFQ69G5FAV"),  // first char > 7: overflows 48 bits
                 keep("01ARZ3NDEKTSV4RRFFQ69G5FA"),   // 25 chars
                 keep("01ARZ3NDEKTSV4RRFFQ69G5FAI"),  // I is not Crockford
                 keep("01ARz3NDEKTSV4RRFFQ69G5FAV"),  // mixed case
                 keep("01234567890123456789012345"),  // a number
                 keep("{ulid}"),
             });
}

TEST_CASE("normalize hex ids") {
  checkTable(Normalizer::kHexId,
             {
                 {"5f2b8e1c9a7d", "{hex}"},
                 {"da39a3ee5e6b4b0d3255bfef95601890afd80709", "{hex}"},  // git sha
                 {"4BF92F3577B34DA6A3CE929D0E0E4736", "{hex}"},          // trace id
                 {"0x7f3a", "{hex}"},
                 {"0XFF", "{hex}"},
                 keep("deadbeef"),      // short hex word
                 keep("cafe"),
                 keep("beef"),
                 keep("deadbeefcafe"),  // letters only
                 keep("123456789012"),  // digits only: a number
                 keep("5f2b8e1c9a7"),   // 11 chars
                 keep("5f2B8e1c9a7d"),  // mixed case
                 keep("g5f2b8e1c9a7d"),
                 keep("0x"),
                 keep("0xg1"),
                 keep("{hex}"),
             });
}

TEST_CASE("normalize numbers: any decimal number when chosen explicitly") {
  checkTable(Normalizer::kNumber,
             {
                 // process_cpu_percent{pid=...}
                 {"48291", "{num}"},
                 {"48292", "{num}"},
                 {"48293", "{num}"},
                 {"48294", "{num}"},
                 {"48295", "{num}"},
                 {"0", "{num}"},
                 {"-17", "{num}"},
                 {"3.14", "{num}"},
                 {".5", "{num}"},
                 {"1e9", "{num}"},
                 {"1691831294000", "{num}"},
                 keep("+Inf"),
                 keep("NaN"),
                 keep("1.2.3"),
                 keep("12a"),
                 keep("1,000"),
                 keep(" 42"),
                 keep("1e"),
                 keep("-"),
                 keep(""),
                 keep("{num}"),
             });
}

TEST_CASE("normalize timestamps: ISO-8601 and epoch within 2000-2100") {
  checkTable(Normalizer::kTimestamp,
             {
                 // auth_event_count{timestamp=...}
                 {"2025-08-12T10:03:42.123456Z", "{ts}"},
                 {"2025-08-12T10:03:43.123456Z", "{ts}"},
                 {"2025-08-12T10:03:44.123456Z", "{ts}"},
                 {"2025-08-12T10:03:45.123456Z", "{ts}"},
                 {"2025-08-12T10:03:46.123456Z", "{ts}"},
                 {"2025-08-12T10:03:42+02:00", "{ts}"},
                 {"2025-08-12T10:03:42-0530", "{ts}"},
                 {"2025-08-12T10:03:42,5Z", "{ts}"},
                 {"2025-08-12 10:03:42", "{ts}"},
                 {"2025-08-12T10:03", "{ts}"},
                 {"20250812T100342Z", "{ts}"},
                 {"2024-02-29", "{date}"},
                 {"2025-08-12", "{date}"},
                 {"1691831294", "{ts}"},           // s
                 {"1691831294000", "{ts}"},        // ms
                 {"1691831294000000", "{ts}"},     // us
                 {"1691831294000000000", "{ts}"},  // ns
                 {"1691831294.123", "{ts}"},
                 {"4102444799", "{ts}"},
                 keep("4102444800"),   // 2100-01-01
                 keep("0000000000"),   // 1970
                 keep("999999999"),    // 9 digits
                 keep("12345678901"),  // 11 digits
                 keep("1691831294."),
                 keep("2025-13-12"),
                 keep("2025-02-30"),
                 keep("2023-02-29"),  // not a leap year
                 keep("2025-08-12T25:00:00Z"),
                 keep("2025-08-12T10:03:42.123456Z "),
                 keep("20250812"),  // a basic date alone is a number
                 keep("10:03:42"),
                 keep("2025/08/12"),
                 keep("{ts}"),
             });
}

TEST_CASE("normalize ip addresses to their network") {
  checkTable(Normalizer::kIp,
             {
                 {"10.0.0.7", "10.0.0.0/24"},
                 {"192.168.1.200", "192.168.1.0/24"},
                 {"10.0.0.7:8080", "10.0.0.0/24"},
                 {"10.1.2.3/16", "10.1.0.0/16"},
                 {"10.1.2.0/28", "10.1.2.0/24"},
                 {"2001:db8::1", "2001:db8::/64"},
                 {"2001:DB8:0:0:1::1", "2001:db8::/64"},
                 {"[2001:db8::1]:443", "2001:db8::/64"},
                 {"fe80::1%eth0", "fe80::/64"},
                 {"::ffff:10.0.0.7", "10.0.0.0/24"},
                 {"::1", "::/64"},
                 {"2001:db8:1234:5678:9abc::1/48", "2001:db8:1234::/48"},
                 keep("10.1.2.0/24"),
                 keep("10.0.0.0/8"),
                 keep("2001:db8::/64"),
                 keep("256.0.0.1"),
                 keep("10.0.0"),
                 keep("10.0.0.1.2"),
                 keep("010.0.0.1"),
                 keep("10.0.0.1:99999"),
                 keep("10.0.0.1/33"),
                 keep("1.2.3"),
                 keep("12:30"),
                 keep("cafe"),
                 keep("2001:db8::g"),
                 keep("localhost"),
                 keep("{ip}"),
             });
  Options placeholder;
  placeholder.ip_to_network = false;
  checkTable(Normalizer::kIp,
             {{"10.0.0.7", "{ip}"}, {"2001:db8::1", "{ip}"}, keep("{ip}"), keep("1.2.3")},
             placeholder);
  Options wide;
  wide.ipv4_prefix = 16;
  wide.ipv6_prefix = 32;
  checkTable(Normalizer::kIp, {{"10.1.2.3", "10.1.0.0/16"}, {"2001:db8:1::1", "2001:db8::/32"}},
             wide);
  Options exact;
  exact.ipv4_prefix = 99;  // clamped
  exact.ipv6_prefix = 128;
  checkTable(Normalizer::kIp, {{"10.1.2.3", "10.1.2.3/32"}, {"2001:db8::1", "2001:db8::1/128"}},
             exact);
}

TEST_CASE("normalize emails") {
  checkTable(Normalizer::kEmail,
             {
                 // user_login_total{email=...}
                 {"joao.silva@example.com", "{email}@example.com"},
                 {"maria.oliveira@example.com", "{email}@example.com"},
                 {"carlos.santos@example.com", "{email}@example.com"},
                 {"ana.paula@example.com", "{email}@example.com"},
                 {"pedro.almeida@example.com", "{email}@example.com"},
                 {"Joao.Silva@Example.COM", "{email}@example.com"},
                 {"a+tag@mail.co.uk", "{email}@mail.co.uk"},
                 {"jo\xc3\xa3o@exemplo.com.br", "{email}@exemplo.com.br"},
                 keep("{email}@example.com"),
                 keep("joao"),
                 keep("@example.com"),
                 keep("joao@"),
                 keep("joao@localhost"),
                 keep("joao@example"),
                 keep("joao@example.c"),
                 keep("joao@@example.com"),
                 keep("jo ao@example.com"),
                 keep("joao@-example.com"),
                 keep("joao@example.com."),
                 keep(".joao@example.com"),
                 keep("joao@example.123"),
             });
  Options no_domain;
  no_domain.email_keep_domain = false;
  checkTable(Normalizer::kEmail, {{"joao.silva@example.com", "{email}"}, keep("{email}")},
             no_domain);
}

TEST_CASE("normalize url paths: keep route words, template ids, strip queries") {
  checkTable(
      Normalizer::kUrlPath,
      {
          // api_request_count{path=...}
          {"/users/abc123/orders/456", "/users/{id}/orders/{id}"},
          {"/users/xyz789/orders/789", "/users/{id}/orders/{id}"},
          {"/users/def456/orders/123", "/users/{id}/orders/{id}"},
          {"/users/ghi321/orders/654", "/users/{id}/orders/{id}"},
          {"/users/jkl654/orders/321", "/users/{id}/orders/{id}"},
          {"/api/v1/users/550e8400-e29b-41d4-a716-446655440000", "/api/v1/users/{id}"},
          {"/api/v2/order-items/42", "/api/v2/order-items/{id}"},
          {"/a?token=x", "/a"},
          {"/users/123/?page=2#top", "/users/{id}/"},
          {"/docs#section-2", "/docs"},
          {"?q=1", ""},
          {"https://shop.example.com:8080/users/1", "https://shop.example.com:8080/users/{id}"},
          {"https://user:secret@host.example/x?y=1", "https://host.example/x"},
          {"/reports/2024-01-02", "/reports/{date}"},
          {"/reports/2024-01-02.csv", "/reports/{date}.csv"},
          {"/events/2025-08-12T10:03:42Z", "/events/{ts}"},
          {"/items/item-abc123", "/items/item-{id}"},
          {"/page-2", "/page-{num}"},
          {"/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commits/{id}"},
          {"/ids/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/ids/{id}"},
          {"/users/joao.silva@example.com/profile", "/users/{id}/profile"},
          {"/@joao/posts", "/@{id}/posts"},
          {"/~joao/", "/~{id}/"},
          {"/search/hello%20world", "/search/{id}"},
          {"/tokens/aZbYcXdWeVfUgThS", "/tokens/{id}"},
          {"/auth/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "/auth/{id}"},
          {"/hosts/10.0.0.7/metrics", "/hosts/{ip}/metrics"},
          {"/files/report-550e8400-e29b-41d4-a716-446655440000.pdf", "/files/report-{uuid}.pdf"},
          {"/sessions/123-456", "/sessions/{id}"},
          {"/S\xc3\xa3o_Paulo/123", "/S\xc3\xa3o_Paulo/{id}"},
          {"users/123", "users/{id}"},
          // Found by the fuzzer: a second pass must keep what the first one left.
          {"/x/2025-08-12T10:03:42Z@mail.example.com", "/x/{ts}@mail.example.com"},
          {"/x/eyJ@e|a8p..0co", "/x/eyJ@e|{id}..{id}"},
          {"/a/2025-08-12T10:03:42+05abc", "/a/{id}"},
          {"/a/{{id}}", "/a/{id}"},
          keep("/users/{id}/orders/{id}"),
          keep("/users/"),
          keep("/"),
          keep("//double//slash"),
          keep("/health"),
          keep("/api/users"),
          keep("/static/app.min.js"),
          keep("/oauth2/callback"),
          keep("/apis/apps/v1beta1/deployments"),
          keep("/v1.2/status"),
          keep("/releases/1.2.3"),
          keep("/getUserById"),
          keep("/users:batchGet"),
          keep("/reports/monthly_summary"),
          keep("https://shop.example.com"),
          keep(""),
      });
}

TEST_CASE("normalize sql: a fingerprint with literals replaced") {
  checkTable(
      Normalizer::kSql,
      {
          // db_query_duration_seconds{query=...}
          {"SELECT * FROM orders WHERE id = 12345", "SELECT * FROM orders WHERE id = ?"},
          {"SELECT * FROM orders WHERE id = 67890", "SELECT * FROM orders WHERE id = ?"},
          {"SELECT * FROM orders WHERE id = 24680", "SELECT * FROM orders WHERE id = ?"},
          {"SELECT * FROM orders WHERE id = 13579", "SELECT * FROM orders WHERE id = ?"},
          {"SELECT * FROM orders WHERE id = 11223", "SELECT * FROM orders WHERE id = ?"},
          {"select * from Orders where Name = 'O''Brien' and age > 30",
           "SELECT * FROM Orders WHERE Name = ? AND age > ?"},
          {"SELECT id FROM t WHERE id IN (1, 2, 3)", "SELECT id FROM t WHERE id IN (?)"},
          {"SELECT id FROM t WHERE s in ('a','b')", "SELECT id FROM t WHERE s IN (?)"},
          {"SELECT id FROM t WHERE id NOT IN(1,2) AND x IN ($1, $2)",
           "SELECT id FROM t WHERE id NOT IN (?) AND x IN ($1)"},
          {"SELECT id FROM t WHERE id IN (SELECT id FROM u WHERE n = 5)",
           "SELECT id FROM t WHERE id IN (SELECT id FROM u WHERE n = ?)"},
          {"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
           "INSERT INTO t (a, b) VALUES (?, ?)"},
          {"INSERT INTO t VALUES (1) ON CONFLICT (a) DO NOTHING",
           "INSERT INTO t VALUES (?) ON CONFLICT (a) DO NOTHING"},
          {"SELECT  *\n  FROM   t  -- comment\n WHERE x = 1 /* c /* nested */ */ ;",
           "SELECT * FROM t WHERE x = ?"},
          {"SELECT * FROM t WHERE a = -5 AND b = 1.5e3 AND c = 0xFF AND d = TRUE AND e IS NULL",
           "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e IS NULL"},
          {"SELECT x-1, y - -2 FROM t", "SELECT x-?, y - ? FROM t"},
          {"SELECT \"Weird Col\" FROM \"T\" WHERE t1.c2 = 'v'",
           "SELECT \"Weird Col\" FROM \"T\" WHERE t1.c2 = ?"},
          {"SELECT $body$ it's $body$, E'a\\'b', $$x$$, x FROM t", "SELECT ?, ?, ?, x FROM t"},
          {"SELECT * FROM t WHERE d > DATE '2024-01-01' AND i < interval '1 day'",
           "SELECT * FROM t WHERE d > DATE ? AND i < INTERVAL ?"},
          {"select a from t where b = ANY(ARRAY[1,2,3])",
           "SELECT a FROM t WHERE b = ANY (ARRAY[?])"},
          {"SELECT * FROM t WHERE name = 'unterminated", "SELECT * FROM t WHERE name = ?"},
          {"DELETE FROM sessions WHERE expires_at < '2025-08-12T10:03:42Z'",
           "DELETE FROM sessions WHERE expires_at < ?"},
          {"SELECT 'a' || 'b'", "SELECT ? || ?"},
          {"SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT ? OFFSET ?"},
          {"WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT ?) SELECT * FROM x"},
          {"SELECT count(*) FROM t GROUP BY a HAVING count(*) > 5",
           "SELECT count(*) FROM t GROUP BY a HAVING count(*) > ?"},
          {"select c::int from t where j->>'k' = 'v'", "SELECT c::int FROM t WHERE j->>? = ?"},
          {"SELECT * FROM t WHERE s = 'S\xc3\xa3o Paulo' AND \xc3\xa9 = 1",
           "SELECT * FROM t WHERE s = ? AND \xc3\xa9 = ?"},
          {"-- only a comment", ""},
          keep("SELECT * FROM orders WHERE id = ?"),
          keep("UPDATE users SET name = $1, updated_at = now() WHERE id = $2"),
          keep("SELECT * FROM t WHERE id = ? AND name = :name"),
          keep("SELECT a FROM t1 JOIN t2 ON t1.id = t2.id"),
      });
}

TEST_CASE("normalize file paths: ids and timestamps templated, names kept") {
  checkTable(Normalizer::kFilePath,
             {
                 // temp_file_size_bytes{file_path=...}
                 {"/tmp/upload/session_1691831294000/file.txt",
                  "/tmp/upload/session_{ts}/file.txt"},
                 {"/tmp/upload/session_1691831295000/file.txt",
                  "/tmp/upload/session_{ts}/file.txt"},
                 {"/tmp/upload/session_1691831296000/file.txt",
                  "/tmp/upload/session_{ts}/file.txt"},
                 {"/tmp/upload/session_1691831297000/file.txt",
                  "/tmp/upload/session_{ts}/file.txt"},
                 {"/tmp/upload/session_1691831298000/file.txt",
                  "/tmp/upload/session_{ts}/file.txt"},
                 {"/var/data/report-550e8400-e29b-41d4-a716-446655440000.pdf",
                  "/var/data/report-{uuid}.pdf"},
                 {"/proc/48291/status", "/proc/{id}/status"},
                 {"/backups/db-2024-01-02.sql.gz", "/backups/db-{date}.sql.gz"},
                 {"/backups/2024-01-02", "/backups/{date}"},
                 {"/var/log/app-2025-08-12T10:03:42Z.log", "/var/log/app-{ts}.log"},
                 {"/srv/cache/da39a3ee5e6b4b0d3255bfef95601890afd80709/blob",
                  "/srv/cache/{id}/blob"},
                 {"/srv/cache/obj_da39a3ee5e6b.bin", "/srv/cache/obj_{hex}.bin"},
                 {"/tmp/tmpk3j4h5l6", "/tmp/{id}"},
                 {"/var/spool/job-123456.lock", "/var/spool/job-{num}.lock"},
                 {"/home/joao.silva@example.com/x", "/home/{id}/x"},
                 {"C:\\temp\\1691831294\\out.txt", "C:\\temp\\{ts}\\out.txt"},
                 {"/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/out", "/runs/{id}/out"},
                 // Found by the fuzzer: a malformed time is not cut short to a valid one.
                 {"2025-08-12T10:03:000004", "2025-08-12T10:03:{num}"},
                 {"/logs/2025-08-12 10:0825-08-12 10:08-12", "/logs/2025-08-12 10:{ts}"},
                 keep("/tmp/upload/session_{ts}/file.txt"),
                 keep("/var/log/app/app.log.3"),
                 keep("/var/spool/job-12.lock"),
                 keep("/usr/lib64/python3.11/site-packages"),
                 keep("/usr/lib/x86_64-linux-gnu/libssl.so.3"),
                 keep("/usr/bin/sha256sum"),
                 keep("/opt/ubuntu2204/readme"),
                 keep("relative/path/file.txt"),
                 keep("/"),
                 keep(""),
             });
}

TEST_CASE("normalize: classify value shapes") {
  struct ShapeRow {
    std::string_view in;
    Shape want;
  };
  const ShapeRow rows[] = {
      {"", Shape::kEmpty},
      {"550e8400-e29b-41d4-a716-446655440000", Shape::kUuid},
      {"01ARZ3NDEKTSV4RRFFQ69G5FAV", Shape::kUlid},
      {"da39a3ee5e6b4b0d3255bfef95601890afd80709", Shape::kHex},
      {"0x1f", Shape::kHex},
      {"404", Shape::kNumber},
      {"0.005", Shape::kNumber},
      {"-12", Shape::kNumber},
      {"2025-08-12T10:03:42.123456Z", Shape::kTimestamp},
      {"2025-08-12", Shape::kTimestamp},
      {"1691831294000", Shape::kTimestamp},
      {"joao.silva@example.com", Shape::kEmail},
      {"10.0.0.7", Shape::kIp},
      {"10.0.0.7:8080", Shape::kIp},
      {"::1", Shape::kIp},
      {"/users/1", Shape::kPath},
      {"https://example.com/x", Shape::kPath},
      {"C:\\temp", Shape::kPath},
      {"/x/{ts}@mail.example.com", Shape::kPath},
      {"SELECT 1", Shape::kSql},
      {"select id from t", Shape::kSql},
      {"  (SELECT a FROM b) UNION (SELECT c FROM d)", Shape::kSql},
      {"/* app */ UPDATE t SET a = 1", Shape::kSql},
      {"GET", Shape::kWord},
      {"1.2.3", Shape::kWord},
      {"v2", Shape::kWord},
      {"30s", Shape::kWord},
      {"+Inf", Shape::kWord},
      {"deadbeef", Shape::kWord},
      {"application/json", Shape::kWord},
      {"SELECT", Shape::kWord},
      {"select", Shape::kWord},
      {"{uuid}", Shape::kWord},
      {"Update available", Shape::kFreeText},
      {"select a plan", Shape::kFreeText},
      {"Select * from t", Shape::kFreeText},
      {"hello world", Shape::kFreeText},
  };
  for (const auto& r : rows) {
    INFO("\"", std::string(r.in), "\" -> ", shapeName(classify(r.in)));
    CHECK(classify(r.in) == r.want);
  }
}

TEST_CASE("auto normalizes ids, leaves well-behaved values alone") {
  std::vector<Row> rows = {
      {"2025-08-12T10:03:42.123456Z", "{ts}"},
      {"/tmp/upload/session_1691831294000/file.txt", "/tmp/upload/session_{ts}/file.txt"},
      {"joao.silva@example.com", "{email}@example.com"},
      {"/users/abc123/orders/456", "/users/{id}/orders/{id}"},
      {"SELECT * FROM orders WHERE id = 12345", "SELECT * FROM orders WHERE id = ?"},
      {"select id from users where email = 'x@y.com'", "SELECT id FROM users WHERE email = ?"},
      {"123456", "{num}"},
      {"-1234567", "{num}"},
      {"1691831294", "{ts}"},
      {"10.0.0.7", "10.0.0.0/24"},
      {"10.0.0.7:8080", "10.0.0.0/24"},  // an `instance` is protected by the rules, not here
      {"da39a3ee5e6b4b0d3255bfef95601890afd80709", "{hex}"},
      {"0xdeadbeef", "{hex}"},
      {"01ARZ3NDEKTSV4RRFFQ69G5FAV", "{ulid}"},
      {"https://api.example.com/v1/users/42?x=1", "https://api.example.com/v1/users/{id}"},
      {"/x/2025-08-12T10:03:42Z@mail.example.com", "/x/{ts}@mail.example.com"},  // found by fuzzing
      {"C:\\Users\\joao\\AppData\\Local\\Temp\\tmp4f3a9b2c1d8e.tmp",
       "C:\\Users\\joao\\AppData\\Local\\Temp\\{id}.tmp"},
      // Well-behaved values: versions, status codes, durations, le bounds, short hex words, dates.
      keep("1.2.3"),
      keep("v2"),
      keep("404"),
      keep("200"),
      keep("48291"),
      keep("30s"),
      keep("1m"),
      keep("0.005"),
      keep("0.25"),
      keep("+Inf"),
      keep("1e+06"),
      keep("cafe"),
      keep("beef"),
      keep("deadbeef"),
      keep("2025-08-12"),
      keep("GET"),
      keep("prod"),
      keep("us-east"),
      keep("checkout"),
      keep("true"),
      keep("application/json"),
      keep("Update available"),
      keep("select a plan"),
      keep("/api/users"),
      keep("{uuid}"),
      keep("{email}@example.com"),
      keep("10.0.0.0/24"),
      keep(""),
  };
  for (auto u : kSeedUuids) rows.push_back({u, "{uuid}"});
  checkTable(Normalizer::kAuto, rows);
}

TEST_CASE("normalizers keep values they do not recognize") {
  const std::string_view values[] = {"", "prod", "hello world", "\xc3\xa9t\xc3\xa9", "{id}", "a/b"};
  for (int k = 0; k <= static_cast<int>(Normalizer::kAuto); ++k) {
    const auto n = static_cast<Normalizer>(k);
    for (auto v : values) {
      INFO(normalizerName(n), ": \"", std::string(v), "\"");
      std::string out;
      CHECK_FALSE(normalize(n, v, out));
    }
  }
}
