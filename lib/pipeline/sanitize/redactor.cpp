#include "pipeline/sanitize/redactor.h"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/file_io.h"
#include "core/log.h"

namespace cardinal::pipeline::sanitize {
namespace {

constexpr size_t kMinKeyBytes = 32;
constexpr char kHex[] = "0123456789abcdef";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex text if the whole file (minus whitespace) is hex, else raw bytes.
std::vector<uint8_t> parseKey(const std::string& data) {
  std::string compact;
  for (char c : data)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact += c;
  bool hex = !compact.empty() && compact.size() % 2 == 0;
  for (char c : compact) hex = hex && hexValue(c) >= 0;
  if (!hex) return std::vector<uint8_t>(data.begin(), data.end());
  std::vector<uint8_t> key;
  for (size_t i = 0; i < compact.size(); i += 2)
    key.push_back(static_cast<uint8_t>(hexValue(compact[i]) * 16 + hexValue(compact[i + 1])));
  return key;
}

}  // namespace

core::Result<Redactor> Redactor::fromKeyFile(const std::string& path) {
  auto data = core::readFile(path);
  if (!data) return core::Error{"hmac key: " + data.error()};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    core::logWarn("hmac key file is readable by group or others; chmod 600 it", {{"path", path}});
  auto key = parseKey(*data);
  if (key.size() < kMinKeyBytes)
    return core::Error{"hmac key " + path + " holds " + std::to_string(key.size()) + " bytes; need at least " +
                       std::to_string(kMinKeyBytes)};
  return Redactor(std::move(key));
}

core::Result<Redactor> Redactor::loadOrCreate(const std::string& key_file, const std::string& state_dir) {
  if (!key_file.empty()) return fromKeyFile(key_file);
  std::string path = state_dir + "/hmac.key";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return fromKeyFile(path);
  std::vector<uint8_t> key(kMinKeyBytes);
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) return core::Error{"hmac key: RAND_bytes failed"};
  std::string hex;
  for (uint8_t b : key) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  hex += '\n';
  if (auto s = core::ensureDirectory(state_dir); !s) return core::Error{s.error()};
  if (auto s = core::writeFileAtomic(path, hex, 0600); !s) return core::Error{"hmac key: " + s.error()};
  core::logInfo("generated a new hmac key for redaction", {{"path", path}});
  return Redactor(std::move(key));
}

uint64_t Redactor::mac64(std::string_view value) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(value.data()),
       value.size(), md, &len);
  uint64_t mac = 0;
  for (size_t i = 0; i < 8; ++i) mac = (mac << 8) | md[i];
  return mac;
}

void Redactor::formatToken(uint64_t mac, std::string& out) {
  out.assign(kTokenPrefix);
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(mac >> shift) & 15];
}

void Redactor::token(std::string_view value, std::string& out) const { formatToken(mac64(value), out); }

bool Redactor::isToken(std::string_view v) {
  if (v.size() != kTokenPrefix.size() + kTokenHexDigits || v.substr(0, kTokenPrefix.size()) != kTokenPrefix) return false;
  for (char c : v.substr(kTokenPrefix.size()))
    if (hexValue(c) < 0 || (c >= 'A' && c <= 'F')) return false;
  return true;
}

}  // namespace cardinal::pipeline::sanitize
