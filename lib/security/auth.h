#pragma once
// Credentials read from files: ingest authentication (bearer token and/or basic-auth users) and
// the upstream's Authorization header. Only file paths are ever flags; the secrets live in
// memory here and are never logged, exported or echoed. Ingest secrets are kept as SHA-256
// digests and compared with CRYPTO_memcmp over the equal-length digests, so neither the
// content nor the length of a secret leaks through timing.
//
// reload() re-reads the files and swaps the whole credential set atomically; a failed reload
// keeps the previous set. Thread-safe.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"

namespace cardinal::security {

using Digest = std::array<uint8_t, 32>;  // SHA-256
Digest sha256(std::string_view data);

// Equal iff a == b; time independent of where they differ and of their lengths (both are hashed
// first, then the digests compared with CRYPTO_memcmp).
bool constantTimeEquals(std::string_view a, std::string_view b);

// A basic-auth users file: one `user:password` per line, plain text (everything after the first
// ':' is the password, so it may contain ':'); blank lines and lines starting with '#' are
// skipped; a trailing '\r' is dropped. Errors name `path:line` and never the password.
// Fills `users` with user -> SHA-256(password).
using BasicUsers = std::unordered_map<std::string, Digest>;
core::Status parseBasicUsers(std::string_view text, const std::string& path, BasicUsers& users);

// A token file: the whole file with surrounding whitespace (a trailing newline) removed; an
// empty token is an error.
core::Result<std::string> parseTokenFile(std::string_view text, const std::string& path);

// The credentials an ingest request must carry.
class IngestAuth {
 public:
  enum class Verdict { kAllowed, kMissing, kWrong };
  IngestAuth(std::string bearer_token_file, std::string basic_users_file);
  bool enabled() const { return !token_file_.empty() || !users_file_.empty(); }
  bool bearerEnabled() const { return !token_file_.empty(); }
  bool basicEnabled() const { return !users_file_.empty(); }
  // Reads both files; on error the old credentials stay (the first load's error fails start-up).
  core::Status reload();
  // `authorization` is the request's Authorization header ("" when absent).
  Verdict check(std::string_view authorization) const;

 private:
  struct Set {
    bool has_token = false;
    Digest token{};
    std::unordered_map<std::string, Digest> users;
  };
  std::string token_file_;
  std::string users_file_;
  mutable std::mutex mu_;
  std::shared_ptr<const Set> current_;
};

// The Authorization header sent to the upstream: `Bearer <token file>` or
// `Basic base64(user:<password file>)`, or none.
class UpstreamAuth {
 public:
  UpstreamAuth(std::string bearer_token_file, std::string basic_user, std::string basic_password_file);
  bool enabled() const { return !token_file_.empty() || !password_file_.empty(); }
  // Validates the combination of flags (start-up).
  core::Status validate() const;
  core::Status reload();
  // The header value; nullptr when disabled.
  std::shared_ptr<const std::string> header() const;

 private:
  std::string token_file_;
  std::string user_;
  std::string password_file_;
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> header_;
};

std::string base64Encode(std::string_view in);
// Decodes standard base64 (with padding); nullopt-like failure as false.
bool base64Decode(std::string_view in, std::string& out);

}  // namespace cardinal::security
