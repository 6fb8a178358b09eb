#include "tls_support.h"

#include <future>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <doctest/doctest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace cardinal::integration {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;

TestPki::TestPki(const TempDir& dir, const std::string& subdir, const std::string& ca_name)
    : dir_(dir), base_(dir.subdir(subdir)) {
  dir_.writeFile(subdir + "/ca.cnf",
                 "[req]\ndistinguished_name=dn\nx509_extensions=v3_ca\nprompt=no\n[dn]\nCN=" + ca_name +
                     "\n[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                     "subjectKeyIdentifier=hash\n");
  dir_.writeFile(subdir + "/leaf.cnf",
                 "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                 "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                 "authorityKeyIdentifier=keyid\n");
  run({"openssl", "req", "-x509", "-config", (base_ / "ca.cnf").string(), "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", (base_ / "ca.key").string(), "-out",
       caCert().string(), "-days", "2"});
}

std::filesystem::path TestPki::issue(const std::string& name, const std::string& cn, long serial) {
  auto csr = base_ / (name + ".csr");
  run({"openssl", "req", "-new", "-config", (base_ / "ca.cnf").string(), "-subj", "/CN=" + cn, "-newkey", "ec",
       "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyOf(name).string(), "-out", csr.string()});
  run({"openssl", "x509", "-req", "-in", csr.string(), "-CA", caCert().string(), "-CAkey", (base_ / "ca.key").string(),
       "-set_serial", std::to_string(serial), "-days", "2", "-extfile", (base_ / "leaf.cnf").string(), "-out",
       certOf(name).string()});
  return certOf(name);
}

void TestPki::run(const std::vector<std::string>& argv) {
  auto r = runCommand(dir_, "openssl", argv);
  REQUIRE_MESSAGE((r.status && r.status->exited && r.status->code == 0), "openssl failed: " << r.summary());
}

namespace {
template <typename F>
bool waitFor(std::future<F>& f, Clock::time_point deadline) {
  return f.wait_until(deadline) == std::future_status::ready;
}
}  // namespace

TlsResponse httpsRequest(const std::string& method, const std::string& host, uint16_t port, const std::string& target,
                         const TlsOptions& tls, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers, Millis timeout) {
  TlsResponse out;
  auto deadline = Clock::now() + timeout;
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread runner([&ioc] { ioc.run(); });
  ssl::context ctx(ssl::context::tls_client);
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  auto fail = [&](std::string what) {
    out.http.status = 0;
    out.http.error = std::move(what);
  };
  try {
    if (!tls.ca_file.empty()) {
      ctx.load_verify_file(tls.ca_file);
      ctx.set_verify_mode(ssl::verify_peer);
    } else {
      ctx.set_verify_mode(ssl::verify_none);
    }
    if (!tls.cert_file.empty()) {
      ctx.use_certificate_chain_file(tls.cert_file);
      ctx.use_private_key_file(tls.key_file, ssl::context::pem);
    }
    stream.emplace(ioc, ctx);
    std::string name = tls.server_name.empty() ? host : tls.server_name;
    boost::system::error_code ec;
    net::ip::make_address(name, ec);
    bool is_ip = !ec;
    if (!is_ip) SSL_set_tlsext_host_name(stream->native_handle(), name.c_str());
    if (!tls.ca_file.empty()) {
      if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream->native_handle()), name.c_str());
      else SSL_set1_host(stream->native_handle(), name.c_str());
    }
    net::ip::tcp::endpoint ep(net::ip::make_address(host == "localhost" ? "127.0.0.1" : host), port);
    auto fc = beast::get_lowest_layer(*stream).async_connect(ep, net::use_future);
    if (!waitFor(fc, deadline)) throw std::runtime_error("connect timeout");
    fc.get();
    auto fh = stream->async_handshake(ssl::stream_base::client, net::use_future);
    if (!waitFor(fh, deadline)) throw std::runtime_error("handshake timeout");
    try {
      fh.get();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("handshake: ") + e.what());
    }
    out.handshake_ok = true;
    if (X509* cert = SSL_get_peer_certificate(stream->native_handle())) {
      BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
      char* hex = BN_bn2hex(bn);
      out.peer_serial = hex;
      OPENSSL_free(hex);
      BN_free(bn);
      char buf[256];
      X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
      out.peer_subject = buf;
      X509_free(cert);
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host + ":" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(false);
    req.prepare_payload();
    auto fw = http::async_write(*stream, req, net::use_future);
    if (!waitFor(fw, deadline)) throw std::runtime_error("write timeout");
    fw.get();
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    auto fr = http::async_read(*stream, buffer, res, net::use_future);
    if (!waitFor(fr, deadline)) throw std::runtime_error("read timeout");
    fr.get();
    out.http.status = static_cast<int>(res.result_int());
    for (const auto& f : res) out.http.headers.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.http.body = res.body();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (stream) {
    net::post(ioc, [&] { beast::get_lowest_layer(*stream).close(); });
  }
  work.reset();
  ioc.stop();
  runner.join();
  return out;
}

}  // namespace cardinal::integration
