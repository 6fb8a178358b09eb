#pragma once
// TLS helpers for the security cases: a test PKI made with the openssl CLI, and a synchronous
// HTTPS client (with an overall timeout) that reports the handshake outcome and the server
// certificate it saw.

#include <filesystem>
#include <string>
#include <vector>

#include "harness.h"

namespace cardinal::integration {

// A CA and certificates signed by it, written into a directory as PEM files.
class TestPki {
 public:
  // Creates `ca.crt`/`ca.key` (CN=`ca_name`) in dir.path()/`subdir`.
  TestPki(const TempDir& dir, const std::string& subdir, const std::string& ca_name);
  std::filesystem::path caCert() const { return base_ / "ca.crt"; }
  // Issues `name`.crt/`name`.key: CN=`cn`, the given serial, SAN IP:127.0.0.1 and DNS:localhost,
  // usable for server and client authentication. Returns the certificate path (key: keyOf()).
  std::filesystem::path issue(const std::string& name, const std::string& cn, long serial);
  std::filesystem::path keyOf(const std::string& name) const { return base_ / (name + ".key"); }
  std::filesystem::path certOf(const std::string& name) const { return base_ / (name + ".crt"); }

 private:
  void run(const std::vector<std::string>& argv);
  const TempDir& dir_;
  std::filesystem::path base_;
};

struct TlsOptions {
  std::string ca_file;       // empty: do not verify the server
  std::string cert_file;     // client certificate (optional)
  std::string key_file;
  std::string server_name;   // SNI and name to verify; empty: the host
};

struct TlsResponse {
  HttpResponse http;        // status 0 with error set when the handshake or I/O failed
  bool handshake_ok = false;
  std::string peer_serial;   // hex, e.g. "3E9"
  std::string peer_subject;  // e.g. "/CN=cardinal-a"
};

TlsResponse httpsRequest(const std::string& method, const std::string& host, uint16_t port,
                         const std::string& target, const TlsOptions& tls, const std::string& body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         Millis timeout = Millis(10000));

}  // namespace cardinal::integration
