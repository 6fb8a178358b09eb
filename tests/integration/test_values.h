#pragma once
// Realistic label values the integration tests send: random UUIDs and the
// seed document's eight offending families (ids, pids, session paths,
// timestamps, emails, URL paths, SQL), one definition for every test.

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace cardinal::integration {

// A version-4-shaped UUID from `rng`.
inline std::string randomUuid(std::mt19937_64& rng) {
  char buf[40];
  const uint64_t a = rng(), b = rng();
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>(a & 0xffff), static_cast<unsigned>((a >> 16) & 0xfff),
                static_cast<unsigned>(b & 0xfff), static_cast<unsigned long long>((b >> 12) & 0xffffffffffffULL));
  return buf;
}

// The i-th value of one of the seed's labels (user_id, order_id, pid, file_path, timestamp,
// email, path; anything else: SQL text); distinct for distinct i. `email_tag` goes into the
// emails' local part, so runs of one test can keep theirs apart.
inline std::string seedValue(std::string_view label, int i, std::mt19937_64& rng, std::string_view email_tag = "") {
  char buf[160];
  if (label == "user_id" || label == "order_id") return randomUuid(rng);
  if (label == "pid") return std::to_string(20000 + i);
  if (label == "file_path") {
    std::snprintf(buf, sizeof buf, "/tmp/upload/session_%lld/file.txt", 1691831294000LL + i * 1000LL);
    return buf;
  }
  if (label == "timestamp") {
    std::snprintf(buf, sizeof buf, "2025-08-12T%02d:%02d:%02d.%06dZ", 10 + i / 3600, (i / 60) % 60, i % 60, 123456);
    return buf;
  }
  if (label == "email") return "user" + std::to_string(i) + std::string(email_tag) + "@example.com";
  if (label == "path") {
    std::snprintf(buf, sizeof buf, "/users/%c%c%d/orders/%d", 'a' + i % 26, 'a' + (i / 26) % 26, 100 + i, 7 * i + 11);
    return buf;
  }
  return "SELECT * FROM orders WHERE id = " + std::to_string(10000 + 13 * i);
}

}  // namespace cardinal::integration
