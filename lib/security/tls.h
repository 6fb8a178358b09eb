#pragma once
// TLS contexts built from PEM files, for the listener and for the upstream client.
//
// A TlsContextSource owns the current context and rebuilds it from its files on reload(); a
// failed reload (missing file, bad PEM, key not matching the certificate) keeps the previous
// context, logs the error and counts it. Connections take current() when they start and keep
// that context for their lifetime, so a reload never disturbs an open connection. Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "core/result.h"

namespace prometheus {
class Registry;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace cardinal::security {

using SslContext = boost::asio::ssl::context;

struct ServerTlsFiles {
  std::string cert_file;       // PEM chain, leaf first
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA bundle; set: client certificates are required (mTLS)
};

struct ClientTlsFiles {
  std::string ca_file;      // PEM CA bundle; empty: the system store
  std::string cert_file;    // client certificate (optional, with key_file)
  std::string key_file;
  bool insecure_skip_verify = false;
};

// TLS metrics, declared together.
struct TlsMetrics {
  explicit TlsMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& reloads;
  prometheus::Family<prometheus::Counter>& handshakes;
  prometheus::Counter& reload_success;       // cardinal_tls_reloads_total{target,result}
  prometheus::Counter& reload_failure;
  prometheus::Counter& upstream_reload_success;
  prometheus::Counter& upstream_reload_failure;
  prometheus::Counter& handshake_failures;   // cardinal_tls_handshake_failures_total{side="server"}
  prometheus::Counter& upstream_handshake_failures;  // {side="upstream"}
};

// Reloads of the credential files (--web.auth.*-file, --upstream.*-file), after start-up:
// cardinal_credentials_reloads_total{target=ingest|upstream, result}. A failed reload keeps
// the previous credentials (IngestAuth, UpstreamAuth).
struct CredentialMetrics {
  explicit CredentialMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& reloads;
  prometheus::Counter& ingest_success;
  prometheus::Counter& ingest_failure;
  prometheus::Counter& upstream_success;
  prometheus::Counter& upstream_failure;
};

core::Result<std::shared_ptr<SslContext>> makeServerContext(const ServerTlsFiles& files);
core::Result<std::shared_ptr<SslContext>> makeClientContext(const ClientTlsFiles& files);

// Sets SNI (for host names, not IP literals) and, when `verify`, the name or IP address the
// peer certificate must carry (checked by OpenSSL during the handshake).
core::Status prepareClientSession(SSL* ssl, const std::string& server_name, bool verify);

// The verification error of a finished (failed) handshake, "" when there was none.
std::string verifyError(SSL* ssl);

class TlsContextSource {
 public:
  using Builder = std::function<core::Result<std::shared_ptr<SslContext>>()>;
  // `what` names the context in logs ("listener", "upstream").
  TlsContextSource(std::string what, Builder build, prometheus::Counter* success, prometheus::Counter* failure);
  core::Status reload();
  std::shared_ptr<SslContext> current() const;

 private:
  std::string what_;
  Builder build_;
  prometheus::Counter* success_;
  prometheus::Counter* failure_;
  mutable std::mutex mu_;
  std::shared_ptr<SslContext> current_;
};

}  // namespace cardinal::security
