#pragma once
// Keyed, stable pseudonyms for sensitive values: HMAC-SHA256(key, value),
// truncated to 64 bits and written as "h:" + 16 hex digits. The same value
// always maps to the same token under one key, so joins and counts keep
// working without revealing the value; without the key, tokens cannot be
// reversed or tested against guesses.
//
// The key comes from a file (--sanitize.hmac-key-file, 32+ bytes, raw or
// hex); when none is configured, a random key is generated into the state
// directory (mode 0600) and reused across restarts. A key never ships in the
// repository and is never logged.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cardinal::pipeline::sanitize {

class Redactor {
 public:
  static constexpr std::string_view kTokenPrefix = "h:";
  static constexpr size_t kTokenHexDigits = 16;

  explicit Redactor(std::vector<uint8_t> key) : key_(std::move(key)) {}
  // Reads a key file: raw bytes, or hex text (whitespace ignored); at least 32 bytes of key.
  static core::Result<Redactor> fromKeyFile(const std::string& path);
  // The configured file if `key_file` is set, else `state_dir`/hmac.key, created if missing.
  static core::Result<Redactor> loadOrCreate(const std::string& key_file, const std::string& state_dir);

  // Writes the token for `value` into `out` (replacing its content).
  void token(std::string_view value, std::string& out) const;
  // The token's 64 bits (the truncated HMAC), and its text form.
  uint64_t mac64(std::string_view value) const;
  static void formatToken(uint64_t mac, std::string& out);
  static bool isToken(std::string_view v);

 private:
  std::vector<uint8_t> key_;
};

}  // namespace cardinal::pipeline::sanitize
