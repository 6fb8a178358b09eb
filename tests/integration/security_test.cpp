// Security: TLS on the listener (reload, mutual TLS) and to the upstream (verification on by
// default, CA bundle, server name, insecure opt-out), ingest authentication (bearer token and
// basic users from files), upstream credentials from files, and no secret in logs, /metrics or
// stats. Certificates are made by the tests with the openssl CLI; bcrypt hashes for Prometheus'
// web config with htpasswd (Debian's apache2-utils).
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "harness.h"
#include "security/auth.h"
#include "tls_support.h"

namespace cardinal::integration {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> readFileText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string randomSecret(const std::string& prefix) {
  std::random_device rd;
  std::string s = prefix;
  const char* alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  for (int i = 0; i < 24; ++i) s += alphabet[rd() % 57];
  return s;
}

std::string basicHeader(const std::string& user, const std::string& password) {
  return "Basic " + security::base64Encode(user + ":" + password);
}

// `user:$2y$...` from htpasswd (bcrypt, cost 5: fast enough for a test, still bcrypt).
std::string bcryptHash(const TempDir& dir, const std::string& user, const std::string& password) {
  auto r = runCommand(dir, "htpasswd", {"htpasswd", "-nbB", "-C", "5", user, password});
  REQUIRE_MESSAGE((r.status && r.status->exited && r.status->code == 0),
                  "htpasswd (Debian package apache2-utils) failed: " << r.summary());
  std::string line = r.out.substr(0, r.out.find('\n'));
  REQUIRE(line.rfind(user + ":$2", 0) == 0);
  return line.substr(user.size() + 1);
}

// A Prometheus 2.42 remote-write receiver serving HTTPS (and basic auth when `users` is set)
// through --web.config.file.
struct TlsReceiver {
  uint16_t port = freePort();
  std::unique_ptr<Process> process;
  TlsOptions client;                 // how the tests reach it
  std::vector<std::pair<std::string, std::string>> auth;  // Authorization header for queries

  TlsReceiver(const TempDir& dir, const TestPki& pki, const std::string& cert_name, const std::string& user = {},
              const std::string& bcrypt = {}, const std::string& password = {}) {
    std::string web = "tls_server_config:\n  cert_file: " + pki.certOf(cert_name).string() +
                      "\n  key_file: " + pki.keyOf(cert_name).string() + "\n";
    if (!user.empty()) {
      web += "basic_auth_users:\n  " + user + ": '" + bcrypt + "'\n";
      auth = {{"Authorization", basicHeader(user, password)}};
    }
    auto web_file = dir.writeFile("receiver-web.yml", web);
    auto config = dir.writeFile("receiver.yml", "global: {}\n");
    process = std::make_unique<Process>(
        "receiver",
        std::vector<std::string>{PrometheusServer::binary(), "--config.file=" + config.string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                 "--storage.tsdb.path=" + dir.subdir("receiver-data").string(),
                                 "--web.enable-remote-write-receiver", "--web.config.file=" + web_file.string()},
        dir.path() / "receiver.log", dir.subdir("receiver"));
    client.ca_file = pki.caCert().string();
    bool ready = waitUntil([&] { return get("/-/ready").http.status == 200; }, Millis(30000), Millis(200));
    INFO(describe(*process));
    REQUIRE_MESSAGE(ready, "the TLS receiver did not become ready");
  }
  std::string writeUrl() const { return "https://127.0.0.1:" + std::to_string(port) + "/api/v1/write"; }
  TlsResponse get(const std::string& target) const { return httpsRequest("GET", "127.0.0.1", port, target, client, {}, auth); }

  // `selector[15m]` as an instant query, like PromApi::rawSamples.
  StoredSeries rawSamples(const std::string& selector) const {
    auto r = get("/api/v1/query?query=" + urlEncode(selector + "[15m]") + "&time=" + std::to_string(nowMs() / 1000.0));
    REQUIRE_MESSAGE(r.http.status == 200, r.http.summary());
    auto doc = nlohmann::json::parse(r.http.body);
    StoredSeries out;
    for (const auto& s : doc.at("data").at("result")) {
      Labels labels;
      for (const auto& [k, v] : s.at("metric").items()) labels[k] = v.get<std::string>();
      auto& samples = out[labels];
      for (const auto& v : s.at("values")) samples.push_back({promTimestampToMs(v.at(0)), v.at(1).get<std::string>()});
    }
    return out;
  }
};

// Cardinal with a TLS listener: started directly (the harness' CardinalServer polls plain
// HTTP), ready when GET /-/ready answers 200 over TLS.
struct TlsCardinal {
  uint16_t port = freePort();
  std::unique_ptr<Process> process;
  TlsOptions client;

  TlsCardinal(const TempDir& dir, const std::string& name, const std::string& upstream_url,
              std::vector<std::string> flags, TlsOptions client_options)
      : client(std::move(client_options)) {
    std::vector<std::string> argv = {CardinalServer::binary(), "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                     "--upstream.url=" + upstream_url};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process = std::make_unique<Process>(name, argv, dir.path() / (name + ".log"), dir.subdir(name));
    bool ready = waitUntil([&] { return request("GET", "/-/ready").http.status == 200; }, Millis(15000), Millis(100));
    INFO(describe(*process));
    REQUIRE_MESSAGE(ready, name << " did not become ready over TLS");
  }
  TlsResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) const {
    return httpsRequest(method, "127.0.0.1", port, target, client, body, headers);
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
};

prometheus::WriteRequest oneSample(const std::string& name, double value, int64_t ts) {
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", name}, {"job", "security"}}, {{value, ts}});
  return req;
}

std::vector<std::pair<std::string, std::string>> withHeaders(std::vector<std::pair<std::string, std::string>> extra) {
  auto h = remoteWriteHeaders();
  h.insert(h.end(), extra.begin(), extra.end());
  return h;
}

std::string remoteWriteTo(const std::string& url, const std::string& ca_file, const std::string& auth_yaml) {
  return "remote_write:\n"
         "  - url: " + url + "\n"
         "    tls_config:\n"
         "      ca_file: " + ca_file + "\n" + auth_yaml +
         "    queue_config:\n"
         "      max_shards: 1\n"
         "      batch_send_deadline: 500ms\n"
         "      min_backoff: 30ms\n"
         "      max_backoff: 500ms\n";
}

}  // namespace

TEST_CASE("security: Prometheus agents -> TLS + bearer/basic -> Cardinal -> TLS + basic -> Prometheus; no secret leaks") {
  TempDir dir("cardinal-it-sec");
  TestPki pki(dir, "pki", "Cardinal Test CA");
  pki.issue("cardinal", "cardinal-a", 1001);
  pki.issue("receiver", "receiver", 2001);
  const std::string ingest_token = randomSecret("ingest-tok-");
  const std::string sender_password = randomSecret("sender-pw-");
  const std::string upstream_password = randomSecret("upstream-pw-");
  const std::string wrong_token = randomSecret("wrong-tok-");
  auto token_file = dir.writeFile("ingest.token", ingest_token + "\n");
  auto users_file = dir.writeFile("ingest.users", "# senders\nagent-basic:" + sender_password + "\n");
  auto upstream_pw_file = dir.writeFile("upstream.password", upstream_password + "\n");
  auto sender_pw_file = dir.writeFile("sender.password", sender_password + "\n");

  TlsReceiver receiver(dir, pki, "receiver", "cardinal", bcryptHash(dir, "cardinal", upstream_password),
                       upstream_password);
  INFO(describe(*receiver.process));
  TlsCardinal cardinal(dir, "cardinal", receiver.writeUrl(),
                       {"--web.tls-cert-file=" + pki.certOf("cardinal").string(),
                        "--web.tls-key-file=" + pki.keyOf("cardinal").string(),
                        "--web.auth.bearer-token-file=" + token_file.string(),
                        "--web.auth.basic-users-file=" + users_file.string(),
                        "--upstream.tls-ca-file=" + pki.caCert().string(),
                        "--upstream.basic-auth-user=cardinal",
                        "--upstream.basic-auth-password-file=" + upstream_pw_file.string(), "--log.level=debug"},
                       TlsOptions{pki.caCert().string(), "", "", ""});
  INFO(describe(*cardinal.process));
  const auto bearer = std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + ingest_token}};

  ScrapeTarget target;
  PrometheusServer::Options a;
  a.name = "agent-bearer";
  a.agent = true;
  a.config_yaml = scrapeConfigYaml("via-bearer", target.hostPort()) +
                  remoteWriteTo(cardinal.url() + "/api/v1/write", pki.caCert().string(),
                                "    authorization:\n      credentials_file: " + token_file.string() + "\n");
  PrometheusServer agent_bearer(dir, a);
  INFO(describe(agent_bearer.process()));
  PrometheusServer::Options b = a;
  b.name = "agent-basic";
  b.config_yaml = scrapeConfigYaml("via-basic", target.hostPort()) +
                  remoteWriteTo(cardinal.url() + "/api/v1/write", pki.caCert().string(),
                                "    basic_auth:\n      username: agent-basic\n      password_file: " +
                                    sender_pw_file.string() + "\n");
  PrometheusServer agent_basic(dir, b);
  INFO(describe(agent_basic.process()));

  // A request with a wrong token is refused (and must not show up in the log either).
  auto refused = cardinal.request("POST", "/api/v1/write", encodeWriteRequest(oneSample("sec_refused", 1, nowMs())),
                                  withHeaders({{"Authorization", "Bearer " + wrong_token}}));
  CHECK_MESSAGE(refused.http.status == 401, refused.http.summary());

  // Both agents' data arrives at the receiver, and every stored sample is one the target served.
  std::map<std::string, size_t> per_job;
  StoredSeries stored;
  bool arrived = waitUntil(
      [&] {
        stored = receiver.rawSamples(R"({__name__=~"fixture_.*"})");
        per_job.clear();
        for (const auto& [labels, samples] : stored) per_job[labels.at("job")] += samples.size();
        return per_job["via-bearer"] >= 20 && per_job["via-basic"] >= 20;
      },
      Millis(40000), Millis(500));
  CHECK_MESSAGE(arrived, "stored samples: via-bearer " << per_job["via-bearer"] << ", via-basic " << per_job["via-basic"]);
  ExpectedSamples served;
  for (const auto& s : target.served())
    for (const char* job : {"via-bearer", "via-basic"}) {
      Labels l = s.labels;
      l["job"] = job;
      l["instance"] = target.hostPort();
      served[l][s.timestamp_ms] = s.value;
    }
  auto diff = diffStored({}, served, stored);
  CHECK_MESSAGE(diff.unexpected.empty(), diff.report());
  CHECK_MESSAGE(diff.wrong.empty(), diff.report());
  CHECK(receiver.rawSamples(R"({__name__="sec_refused"})").empty());

  // No secret in /metrics, /api/v1/stats or the debug log.
  auto metrics = cardinal.request("GET", "/metrics", {}, bearer);
  REQUIRE(metrics.http.status == 200);
  auto stats = cardinal.request("GET", "/api/v1/stats", {}, bearer);
  REQUIRE(stats.http.status == 200);
  CHECK(metricValue(metrics.http.body, "cardinal_rejected_requests_total", {{"reason", "auth_wrong"}}).value_or(0) >= 1);
  std::string log = cardinal.process->logContents();
  REQUIRE(log.find("level=debug") != std::string::npos);  // the debug level was really on
  for (const std::string& secret :
       {ingest_token, sender_password, upstream_password, wrong_token,
        security::base64Encode("agent-basic:" + sender_password), security::base64Encode("cardinal:" + upstream_password)}) {
    CHECK_MESSAGE(log.find(secret) == std::string::npos, "a secret is in Cardinal's log");
    CHECK_MESSAGE(metrics.http.body.find(secret) == std::string::npos, "a secret is in /metrics");
    CHECK_MESSAGE(stats.http.body.find(secret) == std::string::npos, "a secret is in /api/v1/stats");
  }
  auto help = runCommand(dir, "cardinal-help", {CardinalServer::binary(), "--help"});
  for (const char* flag : {"--web.tls-cert-file", "--web.auth.bearer-token-file", "--upstream.tls-ca-file",
                                  "--upstream.basic-auth-password-file", "--upstream.tls-insecure-skip-verify"})
    CHECK_MESSAGE(help.out.find(flag) != std::string::npos, flag << " missing from --help");
}

TEST_CASE("security: ingest auth answers 401 with WWW-Authenticate, forwards nothing, re-reads files on reload") {
  TempDir dir("cardinal-it-sec");
  FakeUpstream upstream;
  auto token_file = dir.writeFile("ingest.token", "tok-one\n");
  auto users_file = dir.writeFile("ingest.users", "alice:wonder-land\n");
  auto upstream_token = dir.writeFile("upstream.token", "up-tok-one\n");
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--web.auth.bearer-token-file=" + token_file.string(),
                           "--web.auth.basic-users-file=" + users_file.string(),
                           "--upstream.bearer-token-file=" + upstream_token.string()});
  INFO(describe(cardinal.process()));
  const std::string body = encodeWriteRequest(oneSample("sec_auth", 1, nowMs()));
  auto post = [&](std::vector<std::pair<std::string, std::string>> auth) {
    return httpPost(cardinal.writeUrl(), body, withHeaders(std::move(auth)));
  };

  auto missing = post({});
  CHECK(missing.status == 401);
  CHECK(missing.body.find("requires credentials") != std::string::npos);
  auto challenge = std::string();
  for (const auto& [k, v] : missing.headers.fields)
    if (k == "WWW-Authenticate") challenge += v + ";";
  CHECK(challenge.find("Bearer realm=\"cardinal\"") != std::string::npos);
  CHECK(challenge.find("Basic realm=\"cardinal\"") != std::string::npos);
  auto wrong = post({{"Authorization", "Bearer tok-onE"}});
  CHECK(wrong.status == 401);
  CHECK(wrong.body.find("not valid") != std::string::npos);
  CHECK(post({{"Authorization", "Bearer tok-one-and-more"}}).status == 401);
  CHECK(post({{"Authorization", basicHeader("alice", "wonder-lanD")}}).status == 401);
  CHECK(post({{"Authorization", basicHeader("mallory", "wonder-land")}}).status == 401);
  CHECK(upstream.requestCount() == 0);

  // Which paths need credentials: all but liveness and readiness.
  for (const char* path : {"/metrics", "/api/v1/stats", "/"})
    CHECK_MESSAGE(httpGet(cardinal.baseUrl() + path).status == 401, path);
  CHECK(httpPost(cardinal.baseUrl() + "/-/reload", "").status == 401);
  CHECK(httpGet(cardinal.baseUrl() + "/-/healthy").status == 200);
  CHECK(httpGet(cardinal.baseUrl() + "/-/ready").status == 200);

  auto ok = post({{"Authorization", "Bearer tok-one"}});
  CHECK_MESSAGE(ok.status == 204, ok.summary());
  CHECK(post({{"Authorization", basicHeader("alice", "wonder-land")}}).status == 204);
  REQUIRE(upstream.requestCount() == 2);
  CHECK(upstream.requests()[0].http.headers.get("Authorization").value_or("") == "Bearer up-tok-one");

  // New files take effect on reload; the old token stops working.
  dir.writeFileAtomic("ingest.token", "tok-two\n");
  dir.writeFileAtomic("upstream.token", "up-tok-two\n");
  auto reload = httpPost(cardinal.baseUrl() + "/-/reload", "", {{"Authorization", "Bearer tok-one"}});
  CHECK_MESSAGE(reload.status == 200, reload.summary());
  CHECK(post({{"Authorization", "Bearer tok-one"}}).status == 401);
  CHECK(post({{"Authorization", "Bearer tok-two"}}).status == 204);
  REQUIRE(upstream.requestCount() == 3);
  CHECK(upstream.requests()[2].http.headers.get("Authorization").value_or("") == "Bearer up-tok-two");
  // Reloads are counted (the file watcher may have re-read the files too: at least once).
  auto reloads = [&](const char* target, const char* result) {
    auto m = httpRequest("GET", cardinal.baseUrl() + "/metrics", {}, {{"Authorization", "Bearer tok-two"}});
    REQUIRE(m.status == 200);
    return metricValue(m.body, "cardinal_credentials_reloads_total", {{"target", target}, {"result", result}})
        .value_or(-1);
  };
  CHECK(reloads("ingest", "success") >= 1);
  CHECK(reloads("upstream", "success") >= 1);
  CHECK(reloads("ingest", "failure") == 0);
  CHECK(reloads("upstream", "failure") == 0);

  // A broken users file: the reload fails with file:line and the previous users stay.
  dir.writeFileAtomic("ingest.users", "alice wonder-land\n");
  auto bad = httpPost(cardinal.baseUrl() + "/-/reload", "", {{"Authorization", "Bearer tok-two"}});
  CHECK(bad.status == 500);
  CHECK_MESSAGE(bad.body.find(users_file.string() + ":1: expected user:password") != std::string::npos, bad.summary());
  CHECK(post({{"Authorization", basicHeader("alice", "wonder-land")}}).status == 204);
  CHECK(reloads("ingest", "failure") >= 1);  // something to alert on
  CHECK(reloads("upstream", "failure") == 0);
  CHECK(cardinal.process().logContents().find("wonder-land") == std::string::npos);
}

TEST_CASE("security: upstream TLS verifies the certificate and the name; wrong CA -> 503; insecure-skip-verify works") {
  TempDir dir("cardinal-it-sec");
  TestPki pki(dir, "pki", "Cardinal Test CA");
  pki.issue("receiver", "receiver", 3001);
  TestPki other(dir, "other-pki", "Some Other CA");
  TlsReceiver receiver(dir, pki, "receiver");
  INFO(describe(*receiver.process));
  const int64_t ts = nowMs();

  CardinalServer trusted(dir, receiver.writeUrl(), {"--upstream.tls-ca-file=" + pki.caCert().string()}, "trusted");
  auto ok = postRemoteWrite(trusted.writeUrl(), oneSample("sec_tls_trusted", 1, ts));
  CHECK_MESSAGE(ok.status == 204, ok.summary());

  CardinalServer wrong_ca(dir, receiver.writeUrl(), {"--upstream.tls-ca-file=" + other.caCert().string()}, "wrong-ca");
  INFO(describe(wrong_ca.process()));
  auto refused = postRemoteWrite(wrong_ca.writeUrl(), oneSample("sec_tls_wrong_ca", 1, ts));
  CHECK_MESSAGE(refused.status == 503, refused.summary());
  CHECK(refused.body.find("certificate verification failed") != std::string::npos);
  CHECK(wrong_ca.process().logContents().find("certificate verify failed") != std::string::npos);
  CHECK(wrong_ca.metric("cardinal_tls_handshake_failures_total", {{"side", "upstream"}}).value_or(0) >= 1);

  CardinalServer wrong_name(dir, receiver.writeUrl(),
                            {"--upstream.tls-ca-file=" + pki.caCert().string(), "--upstream.tls-server-name=prom.example"},
                            "wrong-name");
  auto mismatch = postRemoteWrite(wrong_name.writeUrl(), oneSample("sec_tls_wrong_name", 1, ts));
  CHECK_MESSAGE(mismatch.status == 503, mismatch.summary());
  CHECK(wrong_name.process().logContents().find("hostname mismatch") != std::string::npos);

  CardinalServer insecure(dir, receiver.writeUrl(),
                          {"--upstream.tls-ca-file=" + other.caCert().string(), "--upstream.tls-insecure-skip-verify"},
                          "insecure");
  auto skipped = postRemoteWrite(insecure.writeUrl(), oneSample("sec_tls_insecure", 2, ts));
  CHECK_MESSAGE(skipped.status == 204, skipped.summary());

  CHECK(receiver.rawSamples(R"({__name__="sec_tls_trusted"})").size() == 1);
  CHECK(receiver.rawSamples(R"({__name__="sec_tls_insecure"})").size() == 1);
  CHECK(receiver.rawSamples(R"({__name__=~"sec_tls_wrong.*"})").empty());
}

TEST_CASE("security: mutual TLS on the listener; certificate reload on /-/reload, SIGHUP and file change; a bad file keeps the old one") {
  TempDir dir("cardinal-it-sec");
  TestPki pki(dir, "pki", "Cardinal Test CA");
  pki.issue("server-a", "cardinal-a", 1001);
  pki.issue("server-b", "cardinal-b", 1002);
  pki.issue("client", "sender", 4001);
  TestPki other(dir, "other-pki", "Some Other CA");
  other.issue("client", "intruder", 5001);
  // Cardinal reads live/tls.{crt,key}, symlinks into a store directory (the Kubernetes Secret
  // layout). Rewriting a store file is invisible to the file watcher (it watches live/), so
  // only /-/reload or SIGHUP can pick it up; re-pointing the symlinks is what the watcher sees.
  auto fill = [&](const std::string& store, const std::string& name) {
    dir.writeFileAtomic(store + "/tls.key", *readFileText(pki.keyOf(name)));
    dir.writeFileAtomic(store + "/tls.crt", *readFileText(pki.certOf(name)));
  };
  auto point = [&](const std::string& store) {
    for (const char* f : {"tls.crt", "tls.key"}) {
      fs::path tmp = dir.subdir("live") / (std::string(f) + ".tmp");
      fs::remove(tmp);
      fs::create_symlink(dir.path() / store / f, tmp);
      fs::rename(tmp, dir.path() / "live" / f);
    }
  };
  dir.subdir("store1");
  dir.subdir("store2");
  fill("store1", "server-a");
  point("store1");
  fs::path cert = dir.path() / "live" / "tls.crt", key = dir.path() / "live" / "tls.key";
  FakeUpstream upstream;
  TlsOptions with_cert{pki.caCert().string(), pki.certOf("client").string(), pki.keyOf("client").string(), ""};
  TlsCardinal cardinal(dir, "cardinal", upstream.writeUrl(),
                       {"--web.tls-cert-file=" + cert.string(), "--web.tls-key-file=" + key.string(),
                        "--web.tls-client-ca-file=" + pki.caCert().string()},
                       with_cert);
  INFO(describe(*cardinal.process));
  auto serialNow = [&] { return cardinal.request("GET", "/-/healthy").peer_serial; };

  auto first = cardinal.request("POST", "/api/v1/write", encodeWriteRequest(oneSample("sec_mtls", 1, nowMs())),
                                remoteWriteHeaders());
  CHECK_MESSAGE(first.http.status == 204, first.http.summary());
  CHECK(first.peer_serial == "03E9");
  CHECK(first.peer_subject == "/CN=cardinal-a");

  // Without a client certificate, or with one from another CA: no HTTP exchange happens.
  TlsOptions no_cert{pki.caCert().string(), "", "", ""};
  auto anonymous = httpsRequest("GET", "127.0.0.1", cardinal.port, "/-/healthy", no_cert);
  CHECK_MESSAGE(anonymous.http.status == 0, anonymous.http.summary());
  TlsOptions foreign{pki.caCert().string(), other.certOf("client").string(), other.keyOf("client").string(), ""};
  auto intruder = httpsRequest("GET", "127.0.0.1", cardinal.port, "/-/healthy", foreign);
  CHECK_MESSAGE(intruder.http.status == 0, intruder.http.summary());
  // Plain HTTP on the TLS port gets no HTTP answer either.
  auto plain = httpGet("http://127.0.0.1:" + std::to_string(cardinal.port) + "/-/healthy", Millis(3000));
  CHECK(plain.status == 0);
  CHECK(upstream.requestCount() == 1);

  // Certificate B behind the same paths; nothing happens until a reload.
  fill("store1", "server-b");
  std::this_thread::sleep_for(Millis(500));  // longer than the watcher's debounce: it saw nothing
  CHECK(serialNow() == "03E9");
  auto reload = cardinal.request("POST", "/-/reload");
  CHECK_MESSAGE(reload.http.status == 200, reload.http.summary());
  auto after = cardinal.request("GET", "/-/healthy");
  CHECK(after.http.status == 200);
  CHECK(after.peer_serial == "03EA");
  CHECK(after.peer_subject == "/CN=cardinal-b");

  // Back to A with SIGHUP.
  fill("store1", "server-a");
  cardinal.process->signal(SIGHUP);
  CHECK(waitUntil([&] { return serialNow() == "03E9"; }, Millis(5000)));

  // The file watcher: re-pointing the symlinks (as a Secret update does) loads B by itself.
  fill("store2", "server-b");
  point("store2");
  CHECK(waitUntil([&] { return serialNow() == "03EA"; }, Millis(5000)));

  // A broken certificate file: the reload fails, is counted, and B is still served.
  dir.writeFileAtomic("store2/tls.crt", "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
  auto bad = cardinal.request("POST", "/-/reload");
  CHECK(bad.http.status == 500);
  CHECK_MESSAGE(bad.http.body.find("tls (listener)") != std::string::npos, bad.http.summary());
  auto still = cardinal.request("GET", "/metrics");
  CHECK(still.http.status == 200);
  CHECK(still.peer_serial == "03EA");
  CHECK(metricValue(still.http.body, "cardinal_tls_reloads_total", {{"target", "listener"}, {"result", "failure"}})
            .value_or(0) >= 1);
  CHECK(metricValue(still.http.body, "cardinal_tls_handshake_failures_total", {{"side", "server"}}).value_or(0) >= 2);
  CHECK(cardinal.process->logContents().find("TLS reload failed; keeping the previous certificate") != std::string::npos);
  CHECK(cardinal.process->running());
}

TEST_CASE("security: cardinal analyze reads an https:// Prometheus with basic auth; untrusted or unauthenticated fails clearly") {
  TempDir dir("cardinal-it-sec");
  TestPki pki(dir, "pki", "Cardinal Test CA");
  pki.issue("receiver", "receiver", 4001);
  TestPki other(dir, "other-pki", "Some Other CA");
  const std::string password = randomSecret("prom-pw-");
  auto password_file = dir.writeFile("prom.password", password + "\n");
  TlsReceiver prom(dir, pki, "receiver", "analyst", bcryptHash(dir, "analyst", password), password);
  INFO(describe(*prom.process));
  // Something to analyze: 300 series whose order_id is an identifier.
  prometheus::WriteRequest req;
  const int64_t ts = nowMs();
  for (int i = 0; i < 300; ++i)
    addSeries(req, {{"__name__", "shop_orders_total"}, {"job", "shop"}, {"order_id", "ord-" + std::to_string(100000 + i * 7919)}},
              {{1.0, ts}});
  auto headers = withHeaders(prom.auth);
  auto written = httpsRequest("POST", "127.0.0.1", prom.port, "/api/v1/write", prom.client, encodeWriteRequest(req), headers);
  REQUIRE_MESSAGE(written.http.status == 204, written.http.summary());

  const std::string bin = CardinalServer::binary();
  const std::string url = "--prometheus.url=https://127.0.0.1:" + std::to_string(prom.port);
  const std::string user = "--prometheus.basic-auth-user=analyst";
  const std::string pw = "--prometheus.basic-auth-password-file=" + password_file.string();
  auto ok = runCommand(dir, "analyze-https",
                       {bin, "analyze", url, "--prometheus.tls-ca-file=" + pki.caCert().string(), user, pw, "--format=text"});
  INFO(ok.summary());
  REQUIRE(ok.status.has_value());
  CHECK(ok.status->code == 0);
  CHECK(ok.out.find("shop_orders_total") != std::string::npos);
  CHECK(ok.out.find("order_id") != std::string::npos);
  CHECK(ok.out.find(password) == std::string::npos);
  CHECK(ok.err.find(password) == std::string::npos);

  // A certificate from another CA: refused at the handshake, with the reason.
  auto untrusted = runCommand(dir, "analyze-untrusted",
                              {bin, "analyze", url, "--prometheus.tls-ca-file=" + other.caCert().string(), user, pw});
  INFO(untrusted.summary());
  REQUIRE(untrusted.status.has_value());
  CHECK(untrusted.status->code == 1);
  CHECK(untrusted.err.find("certificate is not trusted") != std::string::npos);
  // No credentials: Prometheus' 401, passed on.
  auto anonymous = runCommand(dir, "analyze-anonymous",
                              {bin, "analyze", url, "--prometheus.tls-ca-file=" + pki.caCert().string()});
  INFO(anonymous.summary());
  REQUIRE(anonymous.status.has_value());
  CHECK(anonymous.status->code == 1);
  CHECK(anonymous.err.find("HTTP 401") != std::string::npos);
  // TLS flags with an http:// URL, and a user without a password file: usage errors.
  auto mixed = runCommand(dir, "analyze-mixed",
                          {bin, "analyze", "--prometheus.url=http://127.0.0.1:1", "--prometheus.tls-ca-file=x.pem"});
  REQUIRE(mixed.status.has_value());
  CHECK(mixed.status->code == 2);
  CHECK(mixed.err.find("need an https://") != std::string::npos);
  auto half = runCommand(dir, "analyze-half", {bin, "analyze", url, user});
  REQUIRE(half.status.has_value());
  CHECK(half.status->code == 2);
}

}  // namespace cardinal::integration
