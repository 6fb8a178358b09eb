#include "security/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <boost/asio/ip/address.hpp>

#include "core/log.h"

namespace cardinal::security {

namespace ssl = boost::asio::ssl;

namespace {
prometheus::Family<prometheus::Counter>& reloadsFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("cardinal_tls_reloads_total")
      .Help("Reloads of TLS certificate and key files, by context (listener, upstream) and result; a failed reload "
            "keeps the previous certificate.")
      .Register(r);
}
prometheus::Family<prometheus::Counter>& handshakesFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("cardinal_tls_handshake_failures_total")
      .Help("TLS handshakes that failed, by side (server: clients of the listener; upstream).")
      .Register(r);
}
}  // namespace

TlsMetrics::TlsMetrics(prometheus::Registry& r)
    : reloads(reloadsFamily(r)),
      handshakes(handshakesFamily(r)),
      reload_success(reloads.Add({{"target", "listener"}, {"result", "success"}})),
      reload_failure(reloads.Add({{"target", "listener"}, {"result", "failure"}})),
      upstream_reload_success(reloads.Add({{"target", "upstream"}, {"result", "success"}})),
      upstream_reload_failure(reloads.Add({{"target", "upstream"}, {"result", "failure"}})),
      handshake_failures(handshakes.Add({{"side", "server"}})),
      upstream_handshake_failures(handshakes.Add({{"side", "upstream"}})) {}

namespace {
prometheus::Family<prometheus::Counter>& credentialReloadsFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("cardinal_credentials_reloads_total")
      .Help("Reloads of the credential files (ingest: --web.auth.*-file; upstream: --upstream.*-file) after "
            "start-up, by result; a failed reload keeps the previous credentials.")
      .Register(r);
}
}  // namespace

CredentialMetrics::CredentialMetrics(prometheus::Registry& r)
    : reloads(credentialReloadsFamily(r)),
      ingest_success(reloads.Add({{"target", "ingest"}, {"result", "success"}})),
      ingest_failure(reloads.Add({{"target", "ingest"}, {"result", "failure"}})),
      upstream_success(reloads.Add({{"target", "upstream"}, {"result", "success"}})),
      upstream_failure(reloads.Add({{"target", "upstream"}, {"result", "failure"}})) {}

namespace {

std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string describe(const std::string& what, const std::string& path, const boost::system::error_code& ec) {
  std::string extra = sslErrors();
  return what + " " + path + ": " + ec.message() + (extra.empty() ? "" : " (" + extra + ")");
}

constexpr auto kOptions = ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                          ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

}  // namespace

core::Result<std::shared_ptr<SslContext>> makeServerContext(const ServerTlsFiles& files) {
  ERR_clear_error();
  auto ctx = std::make_shared<SslContext>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(kOptions, ec);
  if (ctx->use_certificate_chain_file(files.cert_file, ec); ec)
    return core::Error{describe("certificate file", files.cert_file, ec)};
  if (ctx->use_private_key_file(files.key_file, ssl::context::pem, ec); ec)
    return core::Error{describe("key file", files.key_file, ec)};
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return core::Error{"key file " + files.key_file + " does not match certificate " + files.cert_file};
  if (!files.client_ca_file.empty()) {
    if (ctx->load_verify_file(files.client_ca_file, ec); ec)
      return core::Error{describe("client CA file", files.client_ca_file, ec)};
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (!names) return core::Error{"client CA file " + files.client_ca_file + ": no certificate in it"};
    SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  }
  ERR_clear_error();
  return ctx;
}

core::Result<std::shared_ptr<SslContext>> makeClientContext(const ClientTlsFiles& files) {
  ERR_clear_error();
  auto ctx = std::make_shared<SslContext>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(kOptions, ec);
  if (!files.ca_file.empty()) {
    if (ctx->load_verify_file(files.ca_file, ec); ec) return core::Error{describe("CA file", files.ca_file, ec)};
  } else if (ctx->set_default_verify_paths(ec); ec) {
    return core::Error{"system CA store: " + ec.message()};
  }
  if (files.cert_file.empty() != files.key_file.empty())
    return core::Error{"a client certificate needs both --upstream.tls-cert-file and --upstream.tls-key-file"};
  if (!files.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(files.cert_file, ec); ec)
      return core::Error{describe("client certificate file", files.cert_file, ec)};
    if (ctx->use_private_key_file(files.key_file, ssl::context::pem, ec); ec)
      return core::Error{describe("client key file", files.key_file, ec)};
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      return core::Error{"client key file " + files.key_file + " does not match certificate " + files.cert_file};
  }
  ctx->set_verify_mode(files.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer, ec);
  ERR_clear_error();
  return ctx;
}

core::Status prepareClientSession(SSL* ssl, const std::string& server_name, bool verify) {
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(server_name, ec);
  bool is_ip = !ec;
  if (!is_ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1)
    return core::Error{"cannot set TLS server name indication"};
  if (!verify) return {};
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.to_string().c_str()) != 1)
      return core::Error{"cannot set the IP address to verify"};
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, server_name.c_str()) != 1) return core::Error{"cannot set the host name to verify"};
  }
  return {};
}

std::string verifyError(SSL* ssl) {
  long r = SSL_get_verify_result(ssl);
  if (r == X509_V_OK) return {};
  return X509_verify_cert_error_string(r);
}

TlsContextSource::TlsContextSource(std::string what, Builder build, prometheus::Counter* success,
                                   prometheus::Counter* failure)
    : what_(std::move(what)), build_(std::move(build)), success_(success), failure_(failure) {}

core::Status TlsContextSource::reload() {
  auto next = build_();
  if (!next) {
    if (failure_) failure_->Increment();
    bool have_old = current() != nullptr;
    core::logError(have_old ? "TLS reload failed; keeping the previous certificate" : "TLS setup failed",
                   {{"context", what_}, {"error", next.error()}});
    return core::Error{"tls (" + what_ + "): " + next.error()};
  }
  {
    std::lock_guard lock(mu_);
    current_ = std::move(*next);
  }
  if (success_) success_->Increment();
  core::logInfo("TLS certificates loaded", {{"context", what_}});
  return {};
}

std::shared_ptr<SslContext> TlsContextSource::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace cardinal::security
