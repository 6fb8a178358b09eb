#include "security/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/file_io.h"

namespace cardinal::security {

Digest sha256(std::string_view data) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  Digest da = sha256(a), db = sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

core::Result<std::string> readSecretFile(const std::string& path) {
  auto data = core::readFile(path);
  if (!data) return core::Error{data.error()};
  return std::move(*data);
}
}  // namespace

core::Status parseBasicUsers(std::string_view text, const std::string& path, BasicUsers& users) {
  users.clear();
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    auto where = path + ":" + std::to_string(line_no) + ": ";
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return core::Error{where + "expected user:password"};
    std::string_view user = trim(line.substr(0, colon));
    std::string_view password = line.substr(colon + 1);
    if (user.empty()) return core::Error{where + "empty user name"};
    if (password.empty()) return core::Error{where + "empty password for user \"" + std::string(user) + "\""};
    if (!users.emplace(std::string(user), sha256(password)).second)
      return core::Error{where + "user \"" + std::string(user) + "\" listed twice"};
  }
  if (users.empty()) return core::Error{path + ": no users (one user:password per line)"};
  return {};
}

core::Result<std::string> parseTokenFile(std::string_view text, const std::string& path) {
  std::string_view t = trim(text);
  if (t.empty()) return core::Error{path + ": the token file is empty"};
  if (t.find('\n') != std::string_view::npos) return core::Error{path + ": the token file has more than one line"};
  return std::string(t);
}

IngestAuth::IngestAuth(std::string bearer_token_file, std::string basic_users_file)
    : token_file_(std::move(bearer_token_file)), users_file_(std::move(basic_users_file)) {}

core::Status IngestAuth::reload() {
  auto next = std::make_shared<Set>();
  if (!token_file_.empty()) {
    auto data = readSecretFile(token_file_);
    if (!data) return core::Error{"--web.auth.bearer-token-file: " + data.error()};
    auto token = parseTokenFile(*data, token_file_);
    if (!token) return core::Error{token.error()};
    next->has_token = true;
    next->token = sha256(*token);
  }
  if (!users_file_.empty()) {
    auto data = readSecretFile(users_file_);
    if (!data) return core::Error{"--web.auth.basic-users-file: " + data.error()};
    if (auto st = parseBasicUsers(*data, users_file_, next->users); !st) return st;
  }
  std::lock_guard lock(mu_);
  current_ = std::move(next);
  return {};
}

namespace {
bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}
bool digestEquals(const Digest& a, const Digest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }
}  // namespace

IngestAuth::Verdict IngestAuth::check(std::string_view authorization) const {
  std::shared_ptr<const Set> set;
  {
    std::lock_guard lock(mu_);
    set = current_;
  }
  if (!set) return Verdict::kWrong;
  authorization = trim(authorization);
  if (authorization.empty()) return Verdict::kMissing;
  if (startsWithNoCase(authorization, "bearer ")) {
    if (!set->has_token) return Verdict::kWrong;
    return digestEquals(sha256(trim(authorization.substr(7))), set->token) ? Verdict::kAllowed : Verdict::kWrong;
  }
  if (startsWithNoCase(authorization, "basic ")) {
    if (set->users.empty()) return Verdict::kWrong;
    std::string decoded;
    if (!base64Decode(trim(authorization.substr(6)), decoded)) return Verdict::kWrong;
    auto colon = decoded.find(':');
    if (colon == std::string::npos) return Verdict::kWrong;
    Digest given = sha256(std::string_view(decoded).substr(colon + 1));
    auto it = set->users.find(decoded.substr(0, colon));
    // An unknown user costs the same digest compare as a known one.
    static const Digest kNobody = sha256("\x01" "cardinal-no-such-user");
    bool ok = digestEquals(given, it == set->users.end() ? kNobody : it->second);
    return ok && it != set->users.end() ? Verdict::kAllowed : Verdict::kWrong;
  }
  return Verdict::kWrong;
}

UpstreamAuth::UpstreamAuth(std::string bearer_token_file, std::string basic_user, std::string basic_password_file)
    : token_file_(std::move(bearer_token_file)), user_(std::move(basic_user)), password_file_(std::move(basic_password_file)) {}

core::Status UpstreamAuth::validate() const {
  if (!token_file_.empty() && (!user_.empty() || !password_file_.empty()))
    return core::Error{"--upstream.bearer-token-file and --upstream.basic-auth-* are exclusive"};
  if (user_.empty() != password_file_.empty())
    return core::Error{"--upstream.basic-auth-user and --upstream.basic-auth-password-file go together"};
  if (user_.find(':') != std::string::npos) return core::Error{"--upstream.basic-auth-user must not contain ':'"};
  return {};
}

core::Status UpstreamAuth::reload() {
  if (!enabled()) return {};
  std::shared_ptr<const std::string> next;
  if (!token_file_.empty()) {
    auto data = readSecretFile(token_file_);
    if (!data) return core::Error{"--upstream.bearer-token-file: " + data.error()};
    auto token = parseTokenFile(*data, token_file_);
    if (!token) return core::Error{token.error()};
    next = std::make_shared<const std::string>("Bearer " + *token);
  } else {
    auto data = readSecretFile(password_file_);
    if (!data) return core::Error{"--upstream.basic-auth-password-file: " + data.error()};
    auto password = parseTokenFile(*data, password_file_);
    if (!password) return core::Error{password.error()};
    next = std::make_shared<const std::string>("Basic " + base64Encode(user_ + ":" + *password));
  }
  std::lock_guard lock(mu_);
  header_ = std::move(next);
  return {};
}

std::shared_ptr<const std::string> UpstreamAuth::header() const {
  std::lock_guard lock(mu_);
  return header_;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool base64Decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad) return false;
      v[k] = val(c);
      if (v[k] < 0) return false;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += char(n >> 16);
    if (pad < 2) out += char((n >> 8) & 0xff);
    if (pad < 1) out += char(n & 0xff);
  }
  return true;
}

}  // namespace cardinal::security
