// deploy/: the files a newcomer copies, run or checked here with the real tools.
//
// - The Grafana dashboard: every panel target, with Grafana's variables made concrete, runs as an
//   instant query on Prometheus 2.42 started with deploy/prometheus/prometheus-receiver.yml
//   (only its two host:port targets replaced). That Prometheus stores what a Cardinal in front of
//   it forwards (seed-like requests from the test, plus a Prometheus agent running
//   prometheus-agent.yml and vmagent running vmagent.yml, both sending through Cardinal) and
//   scrapes Cardinal's /metrics and itself. Every query must succeed and return data.
// - docker-compose.yml: `docker compose config -q` where the plugin exists, else Debian's
//   docker-compose 1.29 (`docker-compose config -q`, the Compose file schema), plus a structural
//   check: the seed's services, pinned images, files mounted from the repo exist, the Collector
//   configs get every address they read, the services point at each other consistently.
// - The Dockerfile (no engine here): the build stage installs the Makefile's BUILD_DEPS, every
//   package exists in Debian 12, the runtime packages cover `ldd` of the proxy, the build stage's
//   COPY set configures with the Dockerfile's own cmake command, and the HEALTHCHECK command
//   passes against a live Cardinal and fails against a closed port.
// - The systemd unit: `systemd-analyze verify` and `security --offline`, its timeouts against the
//   example config file, and that config file (deploy/systemd/cardinal.yaml) starts Cardinal.
//
// Needs (installed by `make test` through PEER_DEPS): prometheus (with promtool), vmagent,
// systemd (systemd-analyze), yq (YAML to JSON), docker-compose when the `docker compose` plugin
// is missing.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"
#include "test_values.h"

namespace cardinal::integration {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path repoPath(std::string_view relative) { return fs::path(CARDINAL_SOURCE_DIR) / relative; }

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Replaces every occurrence of `from` in `s`; returns how many there were.
size_t replaceAll(std::string& s, std::string_view from, std::string_view to) {
  size_t count = 0;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
    ++count;
  }
  return count;
}

std::vector<std::string> splitWords(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::optional<std::string> findInPath(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

bool exitedZero(const CommandResult& r) {
  return r.status && r.status->exited && r.status->code == 0;
}

std::string hostPort(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// YAML -> JSON through yq (Debian's yq 3, a jq wrapper); REQUIREs success.
json yamlToJson(const TempDir& dir, const fs::path& file) {
  auto yq = findInPath("yq");
  REQUIRE_MESSAGE(yq, "yq not found (Debian package `yq`; `make test` installs it)");
  auto r = runCommand(dir, "yq-" + file.filename().string(), {*yq, ".", file.string()});
  REQUIRE_MESSAGE(exitedZero(r), "yq . " << file << "\n" << r.summary());
  return json::parse(r.out);
}

// ---------------------------------------------------------------------------------------------
// The Grafana dashboard

struct PanelQuery {
  std::string panel;
  std::string ref_id;
  std::string expr;      // as in the JSON
  std::string concrete;  // variables replaced
};

void collectQueries(const json& panels, std::vector<PanelQuery>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collectQueries(p["panels"], out);  // rows
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"]) {
      out.push_back({p.value("title", ""), t.value("refId", ""), t.value("expr", ""), ""});
    }
  }
}

// Template variables as the dashboard opens by default: the current value, or the variable's
// allValue when "All" is selected.
std::map<std::string, std::string> defaultVariableValues(const json& dashboard) {
  std::map<std::string, std::string> values;
  for (const auto& v : dashboard.at("templating").at("list")) {
    if (v.value("type", "") == "datasource") continue;  // only in "datasource" fields
    const json& current = v.at("current").at("value");
    std::string value =
        current.is_array() ? current.at(0).get<std::string>() : current.get<std::string>();
    if (value == "$__all") value = v.value("allValue", ".*");
    values[v.at("name").get<std::string>()] = value;
  }
  return values;
}

// Grafana's built-in intervals for a 15 s scrape interval (the receiver config's, and the
// provisioned datasource's timeInterval): $__rate_interval = max(4 x scrape interval,
// $__interval + scrape interval) = 1m.
std::string concreteExpr(std::string expr, const std::map<std::string, std::string>& variables) {
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"__rate_interval", "1m"}, {"__interval", "15s"}, {"__range", "1h"}}) {
    replaceAll(expr, "${" + name + "}", value);
    replaceAll(expr, "$" + name, value);
  }
  std::vector<std::pair<std::string, std::string>> by_length(variables.begin(), variables.end());
  std::sort(by_length.begin(), by_length.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [name, value] : by_length) {
    replaceAll(expr, "${" + name + "}", value);
    replaceAll(expr, "[[" + name + "]]", value);
    replaceAll(expr, "$" + name, value);
  }
  return expr;
}

struct QueryOutcome {
  int http_status = 0;
  std::string status;  // "success" or "error"
  size_t results = 0;
  std::string body;
};

QueryOutcome instantQuery(const std::string& base_url, const std::string& expr) {
  auto r = httpGet(base_url + "/api/v1/query?query=" + urlEncode(expr));
  QueryOutcome out;
  out.http_status = r.status;
  out.body = r.body.size() > 400 ? r.body.substr(0, 400) + "..." : r.body;
  auto doc = json::parse(r.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return out;
  out.status = doc.value("status", "");
  if (out.status == "success") {
    const auto& data = doc["data"];
    const auto& result = data["result"];
    // vector/matrix: an array of series; scalar/string: [time, value].
    out.results = data.value("resultType", "") == "scalar" ? 1 : result.size();
  }
  return out;
}

double scalarOf(const std::string& base_url, const std::string& expr) {
  auto r = httpGet(base_url + "/api/v1/query?query=" + urlEncode(expr));
  auto doc = json::parse(r.body, nullptr, false);
  if (doc.is_discarded() || doc.value("status", "") != "success") return -1;
  const auto& result = doc["data"]["result"];
  if (!result.is_array() || result.empty()) return -1;
  return std::stod(result[0]["value"][1].get<std::string>());
}

// Seed-like remote-write traffic: every family of the seed document with fresh ids and secrets in
// every request (user ids, emails, URL paths with ids, SQL with literals, upload paths), plus
// `device`, an identifier label no default rule names, so that the cardinality engine itself
// decides to drop it after --cardinality.identifier-limit (100) distinct values.
class SeedTraffic {
 public:
  prometheus::WriteRequest next() {
    prometheus::WriteRequest req;
    const int64_t ts = nowMs();
    ++round_;
    const std::vector<std::pair<std::string, std::string>> env = {{"env", "prod"},
                                                                  {"region", "us-east"}};
    auto add = [&](const std::string& name, std::pair<std::string, std::string> label, double v) {
      std::vector<std::pair<std::string, std::string>> labels = {{"__name__", name}, label};
      labels.insert(labels.end(), env.begin(), env.end());
      addSeries(req, labels, {{v, ts}});
    };
    for (int i = 0; i < 5; ++i) {
      add("checkout_request_latency_seconds", {"user_id", randomUuid(rng_)}, 0.1 + 0.01 * i);
      add("order_payment_failures_total", {"order_id", randomUuid(rng_)}, 1);
      add("user_login_total", {"email", "user" + std::to_string(round_ * 10 + i) + "@example.com"},
          round_);
      add("api_request_count",
          {"path", "/users/u" + std::to_string(rng_() % 100000) + "/orders/" + std::to_string(i)},
          3);
      add("db_query_duration_seconds",
          {"query", "SELECT * FROM orders WHERE id = " + std::to_string(rng_() % 100000)}, 0.05);
      add("temp_file_size_bytes",
          {"file_path", "/tmp/upload/session_" + std::to_string(ts + i) + "/file.txt"}, 4096);
    }
    for (int i = 0; i < 30; ++i) add("app_active_sessions", {"device", randomUuid(rng_)}, 1);
    return req;
  }

 private:
  std::mt19937_64 rng_{std::random_device{}()};
  int round_ = 0;
};

TEST_CASE(
    "deploy: every Grafana dashboard query runs on Prometheus 2.42 with prometheus-receiver.yml, "
    "fed through Cardinal by seed-like traffic and the agent and vmagent examples") {
  const json dashboard = json::parse(readText(repoPath("deploy/grafana/cardinal-dashboard.json")));
  REQUIRE(dashboard.value("schemaVersion", 0) >= 36);
  std::vector<PanelQuery> queries;
  collectQueries(dashboard.at("panels"), queries);
  REQUIRE(queries.size() >= 20);
  const auto variables = defaultVariableValues(dashboard);
  REQUIRE(variables.count("job") == 1);
  CHECK(variables.at("job") == "cardinal");  // the job name in prometheus-receiver.yml
  for (auto& q : queries) {
    q.concrete = concreteExpr(q.expr, variables);
    CHECK_MESSAGE(!contains(q.concrete, "$"), q.panel << ": a variable left in " << q.concrete);
  }
  // Panels select their datasource through ${DS_PROMETHEUS}, so the JSON imports and provisions
  // anywhere.
  for (const auto& p : dashboard.at("panels")) {
    if (p.contains("datasource")) CHECK(p["datasource"].value("uid", "") == "${DS_PROMETHEUS}");
  }

  TempDir dir("cardinal-deploy");
  const uint16_t prom_port = freePort();
  CardinalServer cardinal(dir, "http://" + hostPort(prom_port) + "/api/v1/write");
  INFO(describe(cardinal.process()));

  // The receiver: the committed file with only its targets' host:port replaced, started with the
  // flags its header gives.
  std::string receiver_yaml = readText(repoPath("deploy/prometheus/prometheus-receiver.yml"));
  CHECK(contains(receiver_yaml, "--web.enable-remote-write-receiver"));
  CHECK(contains(receiver_yaml, "--enable-feature=native-histograms,exemplar-storage"));
  REQUIRE(replaceAll(receiver_yaml, "'localhost:9090'", "'" + hostPort(prom_port) + "'") == 1);
  REQUIRE(replaceAll(receiver_yaml, "'cardinal:9192'", "'" + hostPort(cardinal.port()) + "'") == 1);
  PrometheusServer::Options ropts;
  ropts.name = "receiver";
  ropts.port = prom_port;
  ropts.features = {"native-histograms", "exemplar-storage"};
  ropts.config_yaml = receiver_yaml;
  PrometheusServer receiver(dir, ropts);
  INFO(describe(receiver.process()));

  // The senders: the agent example (scrapes itself) and the vmagent example (scrapes itself),
  // both remote-writing to Cardinal.
  const uint16_t agent_port = freePort();
  std::string agent_yaml = readText(repoPath("deploy/prometheus/prometheus-agent.yml"));
  CHECK(contains(agent_yaml, "--web.listen-address=:9095"));
  REQUIRE(replaceAll(agent_yaml, "'localhost:9095'", "'" + hostPort(agent_port) + "'") == 1);
  REQUIRE(replaceAll(agent_yaml, "url: http://localhost:9192/api/v1/write",
                     "url: " + cardinal.writeUrl()) == 1);
  PrometheusServer::Options aopts;
  aopts.name = "agent";
  aopts.agent = true;
  aopts.port = agent_port;
  aopts.config_yaml = agent_yaml;
  PrometheusServer agent(dir, aopts);
  INFO(describe(agent.process()));

  const uint16_t vmagent_port = freePort();
  std::string vmagent_yaml = readText(repoPath("deploy/prometheus/vmagent.yml"));
  CHECK(contains(vmagent_yaml, "-remoteWrite.url=http://localhost:9192/api/v1/write"));
  REQUIRE(replaceAll(vmagent_yaml, "'localhost:8429'", "'" + hostPort(vmagent_port) + "'") == 1);
  const auto vmagent_config = dir.writeFile("vmagent.yml", vmagent_yaml);
  REQUIRE_MESSAGE(
      ::access(VmAgent::binary().c_str(), X_OK) == 0,
      "vmagent not found at " << VmAgent::binary() << " (Debian package victoria-metrics)");
  Process vmagent("vmagent",
                  {VmAgent::binary(), "-promscrape.config=" + vmagent_config.string(),
                   "-remoteWrite.url=" + cardinal.writeUrl(),
                   "-remoteWrite.tmpDataPath=" + dir.subdir("vmagent-data").string(),
                   "-httpListenAddr=" + hostPort(vmagent_port)},
                  dir.path() / "vmagent.log");
  waitReady(vmagent, "http://" + hostPort(vmagent_port) + "/health", Millis(30000));
  INFO(describe(vmagent));

  // Requests Cardinal refuses, for the rejected-by-reason panel.
  CHECK(postRemoteWrite(cardinal.writeUrl(), std::string("not a snappy body")).status == 400);
  CHECK(postRemoteWrite(cardinal.writeUrl(), snappyCompress("\x0a\xff\xff\xff garbage")).status ==
        400);

  // The senders' own scrapes, stored by the receiver with each example's external label: they
  // can only have come through Cardinal.
  const std::string agent_up =
      R"(count(up{job="prometheus-agent", sender="prometheus-agent"} == 1))";
  const std::string vmagent_up = R"(count(up{job="vmagent", sender="vmagent"} == 1))";

  // Traffic until the receiver has scraped Cardinal twice with traffic in between (15 s apart),
  // every query returns data and both senders' own series arrived through Cardinal.
  const std::string prom = receiver.baseUrl();
  SeedTraffic traffic;
  std::map<size_t, QueryOutcome> outcomes;
  auto evaluate = [&] {
    bool all = true;
    for (size_t i = 0; i < queries.size(); ++i) {
      outcomes[i] = instantQuery(prom, queries[i].concrete);
      all = all && outcomes[i].status == "success" && outcomes[i].results > 0;
    }
    return all && scalarOf(prom, "sum(rate(cardinal_received_series_total[1m]))") > 0 &&
           scalarOf(prom, agent_up) > 0 && scalarOf(prom, vmagent_up) > 0;
  };
  int sent = 0;
  bool ready = false;
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  while (!ready && Clock::now() < deadline) {
    auto r = postRemoteWrite(cardinal.writeUrl(), traffic.next());
    REQUIRE_MESSAGE(r.status == 204, "seed-like request " << sent << ": " << r.summary());
    ++sent;
    if (sent % 4 == 0) ready = evaluate();
    std::this_thread::sleep_for(Millis(500));
  }
  if (!ready) evaluate();
  INFO(queries.size() << " dashboard queries; " << sent << " seed-like requests sent");

  for (size_t i = 0; i < queries.size(); ++i) {
    const auto& q = queries[i];
    const auto& o = outcomes[i];
    INFO("panel \"" << q.panel << "\" target " << q.ref_id << ":\n  " << q.expr << "\n  ran as "
                    << q.concrete << "\n  -> HTTP " << o.http_status << " " << o.body);
    CHECK(o.http_status == 200);
    CHECK(o.status == "success");
    CHECK(o.results > 0);
  }
  CHECK_MESSAGE(scalarOf(prom, agent_up) > 0,
                "the agent example's own series did not arrive through Cardinal");
  CHECK_MESSAGE(scalarOf(prom, vmagent_up) > 0,
                "the vmagent example's own series did not arrive through Cardinal");

  // The before/after the dashboard exists for: fewer series leave Cardinal than arrive (ids
  // dropped and merged), and the engine dropped `device` on its own.
  const double received = scalarOf(
      prom,
      concreteExpr(R"(sum(rate(cardinal_received_series_total{job=~"$job"}[$__rate_interval])))",
                   variables));
  const double forwarded = scalarOf(
      prom,
      concreteExpr(R"(sum(rate(cardinal_forwarded_series_total{job=~"$job"}[$__rate_interval])))",
                   variables));
  CHECK_MESSAGE(received > forwarded,
                "received " << received << " series/s, forwarded " << forwarded);
  CHECK(scalarOf(prom, R"(sum(cardinal_cardinality_labels{decision="drop"}))") >= 1);
  const double devices_stored = scalarOf(prom, R"(count(count by (device) (app_active_sessions)))");
  INFO("distinct device ids sent: " << 30 * sent << ", stored: " << devices_stored);
  CHECK(devices_stored > 0);
  CHECK(devices_stored <= 150);

  // The template variables' own queries find the defaults.
  for (const auto& v : dashboard.at("templating").at("list")) {
    if (v.value("type", "") != "query") continue;
    const std::string def = concreteExpr(v.value("definition", ""), variables);
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_match(def, m, std::regex(R"(label_values\((.+),\s*(\w+)\))")), def);
    auto r =
        httpGet(prom + "/api/v1/label/" + m[2].str() + "/values?match[]=" + urlEncode(m[1].str()));
    auto doc = json::parse(r.body, nullptr, false);
    INFO("variable " << v.value("name", "") << ": " << def << " -> " << r.summary());
    REQUIRE(r.status == 200);
    const auto& values = doc["data"];
    CHECK(!values.empty());
    const std::string expected = variables.at(v.value("name", ""));
    if (expected != v.value("allValue", "")) {
      CHECK(std::find(values.begin(), values.end(), expected) != values.end());
    }
  }
}

TEST_CASE("deploy: promtool and vmagent accept the Prometheus configs as committed") {
  TempDir dir("cardinal-deploy");
  const std::string promtool = binaryPath("PROMTOOL_BIN", "/usr/bin/promtool");
  REQUIRE_MESSAGE(::access(promtool.c_str(), X_OK) == 0,
                  "promtool not found (Debian package prometheus)");
  auto receiver = runCommand(dir, "promtool-receiver",
                             {promtool, "check", "config",
                              repoPath("deploy/prometheus/prometheus-receiver.yml").string()});
  CHECK_MESSAGE(exitedZero(receiver), receiver.summary());
  auto agent = runCommand(dir, "promtool-agent",
                          {promtool, "check", "config", "--agent",
                           repoPath("deploy/prometheus/prometheus-agent.yml").string()});
  CHECK_MESSAGE(exitedZero(agent), agent.summary());
  auto vmagent =
      runCommand(dir, "vmagent-dry-run",
                 {VmAgent::binary(),
                  "-promscrape.config=" + repoPath("deploy/prometheus/vmagent.yml").string(),
                  "-promscrape.config.dryRun"});
  CHECK_MESSAGE(exitedZero(vmagent), vmagent.summary());
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

std::string scalarString(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::map<std::string, std::string> environmentOf(const json& service) {
  std::map<std::string, std::string> env;
  if (!service.contains("environment")) return env;
  const json& e = service["environment"];
  if (e.is_object()) {
    for (const auto& [k, v] : e.items()) env[k] = scalarString(v);
  } else {
    for (const auto& item : e) {
      std::string s = item.get<std::string>();
      auto eq = s.find('=');
      env[s.substr(0, eq)] = eq == std::string::npos ? "" : s.substr(eq + 1);
    }
  }
  return env;
}

std::string joinedCommand(const json& service) {
  if (!service.contains("command")) return "";
  if (service["command"].is_string()) return service["command"].get<std::string>();
  std::string out;
  for (const auto& a : service["command"]) out += a.get<std::string>() + " ";
  return out;
}

TEST_CASE(
    "deploy: docker-compose.yml passes compose config and wires the seed's stack with Cardinal") {
  TempDir dir("cardinal-deploy");
  const fs::path deploy = repoPath("deploy");
  const fs::path compose = deploy / "docker-compose.yml";

  // The Compose implementation's own validation.
  bool plugin = false;
  if (auto docker = findInPath("docker")) {
    plugin = exitedZero(runCommand(dir, "docker-compose-version", {*docker, "compose", "version"}));
    if (plugin) {
      auto r = runCommand(dir, "docker-compose-config",
                          {*docker, "compose", "-f", compose.string(), "config", "-q"});
      CHECK_MESSAGE(exitedZero(r), "docker compose config -q\n" << r.summary());
      MESSAGE("validated with the docker compose plugin");
    }
  }
  if (!plugin) {
    auto v1 = findInPath("docker-compose");
    REQUIRE_MESSAGE(v1,
                    "neither the `docker compose` plugin nor `docker-compose` (Debian package "
                    "docker-compose; `make test` installs it) is available");
    auto r =
        runCommand(dir, "docker-compose-config", {*v1, "-f", compose.string(), "config", "-q"});
    CHECK_MESSAGE(exitedZero(r), "docker-compose config -q\n" << r.summary());
    MESSAGE("no docker compose plugin here: validated with " << *v1 << " (Compose file schema)");
  }

  const json doc = yamlToJson(dir, compose);
  const json& services = doc.at("services");
  std::set<std::string> names;
  for (const auto& [name, s] : services.items()) names.insert(name);
  CHECK(names == std::set<std::string>{"kafka", "kafka-init", "kafka-ui", "otelcol-producer",
                                       "otelcol-bridge", "cardinal", "prometheus", "grafana"});

  std::map<std::string, std::string> published;  // host port -> service
  for (const auto& [name, s] : services.items()) {
    INFO("service " << name);
    CHECK((s.contains("image") || s.contains("build")));
    if (s.contains("image")) {
      const std::string image = s["image"].get<std::string>();
      const auto colon = image.rfind(':');
      const auto slash = image.rfind('/');
      const bool tagged =
          colon != std::string::npos && (slash == std::string::npos || colon > slash);
      CHECK_MESSAGE(tagged, "image " << image << " has no tag");
      if (tagged)
        CHECK_MESSAGE(image.substr(colon + 1) != "latest", "image " << image << " is not pinned");
    }
    if (s.contains("build")) {
      const fs::path context = deploy / s["build"].at("context").get<std::string>();
      CHECK(fs::exists(context / s["build"].value("dockerfile", "Dockerfile")));
      CHECK(fs::exists(context / "CMakeLists.txt"));  // the repository root
    }
    for (const auto& vol : s.value("volumes", json::array())) {
      const std::string spec = vol.get<std::string>();
      const std::string source = spec.substr(0, spec.find(':'));
      if (source.rfind(".", 0) == 0 || source.rfind("/", 0) == 0) {
        CHECK_MESSAGE(fs::exists(deploy / source), "bind mount source " << source << " missing");
      } else {
        const bool declared = doc.contains("volumes") && doc["volumes"].contains(source);
        CHECK_MESSAGE(declared, "volume " << source << " not declared");
      }
    }
    for (const auto& port : s.value("ports", json::array())) {
      const std::string spec = scalarString(port);
      const std::string host = spec.substr(0, spec.find(':'));
      CHECK_MESSAGE(published.emplace(host, name).second,
                    "host port " << host << " published twice");
    }
    if (s.contains("depends_on")) {
      for (const auto& [dep, cond] : s["depends_on"].items()) CHECK(names.count(dep) == 1);
    }
    CHECK_FALSE(contains(s.dump(), "zookeeper"));
  }

  // Kafka in KRaft mode, reachable as kafka:9092 inside the network.
  auto kafka_env = environmentOf(services.at("kafka"));
  CHECK(contains(kafka_env["KAFKA_PROCESS_ROLES"], "controller"));
  CHECK(contains(kafka_env["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://kafka:9092"));

  // The Collectors run deploy/otelcol files unchanged and get every address those files read.
  int collectors = 0;
  for (const auto& name : {"otelcol-producer", "otelcol-bridge"}) {
    INFO("service " << name);
    const json& s = services.at(name);
    std::string mounted;
    for (const auto& vol : s.at("volumes")) {
      const std::string spec = vol.get<std::string>();
      if (spec.rfind("./otelcol/", 0) == 0) mounted = spec.substr(0, spec.find(':'));
    }
    REQUIRE_MESSAGE(!mounted.empty(), "no deploy/otelcol file mounted");
    const std::string config = readText(deploy / mounted);
    const auto env = environmentOf(s);
    std::regex var(R"(\$\{env:([A-Z0-9_]+))");
    for (auto it = std::sregex_iterator(config.begin(), config.end(), var);
         it != std::sregex_iterator(); ++it) {
      const std::string v = (*it)[1].str();
      if (v == "OTELCOL_TELEMETRY_PORT") continue;  // loopback-only telemetry, default port
      CHECK_MESSAGE(env.count(v) == 1,
                    mounted << " reads ${env:" << v << "}, which the service does not set");
    }
    if (env.count("KAFKA_BROKERS")) CHECK(env.at("KAFKA_BROKERS") == "kafka:9092");
    if (env.count("CARDINAL_WRITE_URL"))
      CHECK(env.at("CARDINAL_WRITE_URL") == "http://cardinal:9192/api/v1/write");
    if (env.count("OTLP_GRPC_ENDPOINT")) CHECK(env.at("OTLP_GRPC_ENDPOINT") == "0.0.0.0:4317");
    ++collectors;
  }
  CHECK(collectors == 2);
  CHECK(contains(services.at("otelcol-producer").dump(), "kafka-producer.yaml"));
  CHECK(contains(services.at("otelcol-bridge").dump(), "kafka-bridge.yaml"));

  // Cardinal listens where the bridge writes and forwards to the prometheus service.
  const std::string cardinal_cmd = joinedCommand(services.at("cardinal"));
  CHECK(contains(cardinal_cmd, "--web.listen-address=0.0.0.0:9192"));
  CHECK(contains(cardinal_cmd, "--upstream.url=http://prometheus:9090/api/v1/write"));
  CHECK(services.at("cardinal").at("build").value("dockerfile", "") == "deploy/Dockerfile");

  // Prometheus: the receiver config as committed, the remote-write receiver on; it scrapes the
  // cardinal service.
  const json& prometheus = services.at("prometheus");
  CHECK(contains(joinedCommand(prometheus), "--web.enable-remote-write-receiver"));
  CHECK(contains(prometheus.at("volumes").dump(),
                 "./prometheus/prometheus-receiver.yml:/etc/prometheus/prometheus.yml"));
  CHECK(contains(readText(deploy / "prometheus/prometheus-receiver.yml"), "'cardinal:9192'"));

  // Grafana: provisioning and the dashboard; the datasource points at the prometheus service.
  const std::string grafana_volumes = services.at("grafana").at("volumes").dump();
  CHECK(contains(grafana_volumes, "./grafana/cardinal-dashboard.json"));
  CHECK(contains(grafana_volumes, "./grafana/provisioning:/etc/grafana/provisioning"));
  const json datasources =
      yamlToJson(dir, deploy / "grafana/provisioning/datasources/prometheus.yml");
  CHECK(datasources.at("datasources").at(0).value("url", "") == "http://prometheus:9090");
  const json providers = yamlToJson(dir, deploy / "grafana/provisioning/dashboards/cardinal.yml");
  CHECK(contains(grafana_volumes,
                 ":" + providers.at("providers").at(0).at("options").value("path", "?") +
                     "/cardinal-dashboard.json"));
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

struct DockerInstruction {
  std::string keyword;  // upper case
  std::string args;
};

// Instructions with continuation lines joined and comments dropped.
std::vector<DockerInstruction> parseDockerfile(const std::string& text) {
  std::vector<DockerInstruction> out;
  std::istringstream in(text);
  std::string line, current;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (!line.empty() && line.back() == '\\') {
      current += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    current += line;
    auto words = splitWords(current);
    const auto space = current.find_first_of(" \t", current.find_first_not_of(" \t"));
    out.push_back({words.at(0), space == std::string::npos ? "" : current.substr(space + 1)});
    current.clear();
  }
  return out;
}

// Package names after `apt-get install` in a RUN, up to the next `&&`.
std::vector<std::string> aptInstalled(const std::string& run) {
  std::vector<std::string> out;
  auto words = splitWords(run);
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] != "apt-get" || words[i + 1] != "install") continue;
    for (size_t j = i + 2; j < words.size() && words[j] != "&&"; ++j) {
      if (words[j].rfind("-", 0) != 0) out.push_back(words[j]);
    }
  }
  return out;
}

std::string debianPackageOf(const TempDir& dir, const std::string& path) {
  std::vector<std::string> candidates = {path};
  std::error_code ec;
  auto canonical = fs::canonical(path, ec);
  if (!ec) candidates.push_back(canonical.string());
  if (path.rfind("/lib/", 0) == 0) candidates.push_back("/usr" + path);
  for (const auto& c : candidates) {
    auto r = runCommand(dir, "dpkg-S", {"dpkg", "-S", c});
    if (exitedZero(r)) {
      auto package = r.out.substr(0, r.out.find(':'));
      return package;
    }
  }
  return "";
}

TEST_CASE(
    "deploy: Dockerfile installs Debian 12 packages that exist, covers the binary's libraries, "
    "its build stage configures, its HEALTHCHECK works") {
  TempDir dir("cardinal-deploy");
  const std::string dockerfile = readText(repoPath("deploy/Dockerfile"));
  const auto instructions = parseDockerfile(dockerfile);

  // Stages: FROM the pinned Debian 12 image (ARG default) twice.
  std::smatch m;
  REQUIRE(
      std::regex_search(dockerfile, m, std::regex(R"(ARG DEBIAN_IMAGE=debian:(12[.\d]*-slim))")));
  std::vector<std::vector<DockerInstruction>> stages;
  for (const auto& ins : instructions) {
    if (ins.keyword == "FROM") stages.emplace_back();
    if (!stages.empty()) stages.back().push_back(ins);
  }
  REQUIRE(stages.size() == 2);
  std::vector<std::string> build_packages, runtime_packages;
  for (const auto& ins : stages[0]) {
    if (ins.keyword == "RUN")
      for (auto& p : aptInstalled(ins.args)) build_packages.push_back(p);
  }
  for (const auto& ins : stages[1]) {
    if (ins.keyword == "RUN")
      for (auto& p : aptInstalled(ins.args)) runtime_packages.push_back(p);
  }

  // The build stage installs the Makefile's BUILD_DEPS (doctest-dev aside: no tests in the image;
  // ccache aside: a one-shot image build has no cache to reuse).
  std::string makefile = readText(repoPath("Makefile"));
  replaceAll(makefile, "\\\n", " ");
  REQUIRE(std::regex_search(makefile, m, std::regex(R"(BUILD_DEPS\s*:=([^\n]*))")));
  for (const auto& dep : splitWords(m[1].str())) {
    if (dep == "doctest-dev" || dep == "ccache") continue;
    CHECK_MESSAGE(
        std::find(build_packages.begin(), build_packages.end(), dep) != build_packages.end(),
        "Makefile BUILD_DEPS has " << dep << ", the Dockerfile's build stage does not install it");
  }

  // Every package exists in Debian 12: installed here, or known to apt.
  std::vector<std::string> all = build_packages;
  all.insert(all.end(), runtime_packages.begin(), runtime_packages.end());
  for (const auto& p : all) {
    auto q = runCommand(dir, "dpkg-query", {"dpkg-query", "-W", "-f=${Status}", p});
    if (exitedZero(q) && contains(q.out, "install ok installed")) continue;
    auto show = runCommand(dir, "apt-cache-show", {"apt-cache", "show", "--no-all-versions", p});
    CHECK_MESSAGE((exitedZero(show) && contains(show.out, "Package: " + p)),
                  "Debian package " << p << " not found (installed or in apt's lists)");
  }

  // The runtime stage's packages cover every shared library of the proxy (the base image has
  // libc6, libgcc-s1 and libstdc++6: apt itself depends on them). Sanitizer runtimes are skipped,
  // for runs against the asan-ubsan build.
  std::set<std::string> provided(runtime_packages.begin(), runtime_packages.end());
  provided.insert({"libc6", "libgcc-s1", "libstdc++6"});
  auto ldd = runCommand(dir, "ldd", {"ldd", CardinalServer::binary()});
  REQUIRE_MESSAGE(exitedZero(ldd), ldd.summary());
  std::istringstream lines(ldd.out);
  int libraries = 0;
  for (std::string line; std::getline(lines, line);) {
    CHECK_MESSAGE(!contains(line, "not found"), line);
    std::smatch lm;
    if (!std::regex_search(line, lm, std::regex(R"(=>\s+(/\S+))"))) continue;
    const std::string package = debianPackageOf(dir, lm[1].str());
    INFO(line << " -> package " << package);
    CHECK(!package.empty());
    if (package.rfind("libasan", 0) == 0 || package.rfind("libubsan", 0) == 0 ||
        package.rfind("libtsan", 0) == 0 || package.rfind("liblsan", 0) == 0) {
      continue;
    }
    CHECK_MESSAGE(provided.count(package) == 1, "the runtime stage does not install " << package);
    ++libraries;
  }
  CHECK(libraries >= 5);

  // The build context holds what the COPY lines need (Dockerfile.dockerignore lets it through),
  // and the build stage's cmake command configures a tree that holds only those files.
  const std::string ignore = readText(repoPath("deploy/Dockerfile.dockerignore"));
  const fs::path tree = dir.subdir("context");
  for (const auto& ins : instructions) {
    if (ins.keyword != "COPY" || contains(ins.args, "--from=")) continue;
    auto words = splitWords(ins.args);
    REQUIRE(words.size() >= 2);
    const std::string dest = words.back();
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      const std::string& src = words[i];
      INFO("COPY " << ins.args);
      CHECK(fs::exists(repoPath(src)));
      const std::string top = src.substr(0, src.find('/'));
      CHECK_MESSAGE(
          (contains(ignore, "\n!" + src + "\n") || contains(ignore, "\n!" + src + "/\n") ||
           contains(ignore, "\n!" + top + "/\n")),
          src << " is not let through by Dockerfile.dockerignore");
      if (!dest.empty() && dest[0] == '/') continue;  // runtime stage: not part of the build
      fs::path target =
          tree / (dest.back() == '/' ? dest + fs::path(src).filename().string() : dest);
      fs::create_directories(target.parent_path());
      fs::copy(repoPath(src), target,
               fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    }
  }
  std::vector<std::string> cmake;
  for (const auto& ins : stages[0]) {
    if (ins.keyword != "RUN" || !contains(ins.args, "cmake -S")) continue;
    auto words = splitWords(ins.args);
    for (const auto& w : words) {
      if (w == "&&") break;
      cmake.push_back(w);
    }
  }
  REQUIRE_MESSAGE(cmake.size() >= 5, "no `RUN cmake -S ...` in the build stage");
  for (size_t i = 0; i + 1 < cmake.size(); ++i) {
    if (cmake[i] == "-S") cmake[i + 1] = tree.string();
    if (cmake[i] == "-B") cmake[i + 1] = (tree / "build").string();
  }
  CHECK(std::find(cmake.begin(), cmake.end(), "-DCARDINAL_TESTS=OFF") != cmake.end());
  CHECK(std::find(cmake.begin(), cmake.end(), "-DCMAKE_BUILD_TYPE=Release") != cmake.end());
  auto configure = runCommand(dir, "cmake-configure", cmake, {}, Millis(120000));
  CHECK_MESSAGE(exitedZero(configure), configure.summary());

  // The runtime image: non-root, the port, the entrypoint.
  auto last = [&](const std::string& keyword) {
    std::string v;
    for (const auto& ins : stages[1])
      if (ins.keyword == keyword) v = ins.args;
    return v;
  };
  CHECK(last("USER").rfind("root", 0) != 0);
  CHECK(!last("USER").empty());
  CHECK(last("EXPOSE") == "9192");
  CHECK(contains(last("ENTRYPOINT"), "cardinal"));

  // HEALTHCHECK: the command as Docker would run it (exec form), against a live Cardinal on its
  // port, then against a port nobody listens on.
  const std::string hc = last("HEALTHCHECK");
  const auto cmd_pos = hc.find("CMD [");
  REQUIRE_MESSAGE(cmd_pos != std::string::npos, "HEALTHCHECK without an exec-form CMD: " << hc);
  const json hc_argv = json::parse(hc.substr(cmd_pos + 4));
  CHECK(contains(hc_argv.dump(), "/-/healthy"));
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl());
  auto run_healthcheck = [&](uint16_t port, const std::string& name) {
    std::vector<std::string> argv;
    for (const auto& a : hc_argv) {
      std::string s = a.get<std::string>();
      replaceAll(s, "/9192", "/" + std::to_string(port));
      argv.push_back(s);
    }
    return runCommand(dir, name, argv, {}, Millis(10000));
  };
  auto healthy = run_healthcheck(cardinal.port(), "healthcheck-live");
  CHECK_MESSAGE(exitedZero(healthy), healthy.summary());
  auto dead = run_healthcheck(freePort(), "healthcheck-dead");
  CHECK_MESSAGE(!exitedZero(dead), dead.summary());
}

// ---------------------------------------------------------------------------------------------
// systemd

std::optional<int64_t> secondsOf(const std::string& duration) {
  std::smatch m;
  if (!std::regex_match(duration, m, std::regex(R"((\d+)\s*(s|min|m)?)"))) return std::nullopt;
  int64_t n = std::stoll(m[1].str());
  return m[2].str() == "min" || m[2].str() == "m" ? n * 60 : n;
}

std::string unitSetting(const std::string& unit, const std::string& key) {
  std::smatch m;
  if (std::regex_search(unit, m, std::regex("(^|\\n)" + key + "=([^\\n]*)"))) return m[2].str();
  return "";
}

TEST_CASE(
    "deploy: the systemd unit passes systemd-analyze verify and its example config file runs") {
  TempDir dir("cardinal-deploy");
  const std::string unit = readText(repoPath("deploy/systemd/cardinal.service"));
  const std::string config = readText(repoPath("deploy/systemd/cardinal.yaml"));

  const std::string exec_start = unitSetting(unit, "ExecStart");
  CHECK(exec_start.rfind("/usr/local/bin/cardinal ", 0) == 0);
  CHECK(contains(exec_start, "--config.file=/etc/cardinal/cardinal.yaml"));
  CHECK(contains(exec_start, "--storage.path=/var/lib/" + unitSetting(unit, "StateDirectory")));
  CHECK(contains(unitSetting(unit, "ExecReload"), "-HUP $MAINPID"));
  CHECK(unitSetting(unit, "Restart") == "on-failure");
  CHECK(unitSetting(unit, "ProtectSystem") == "strict");
  CHECK(unitSetting(unit, "NoNewPrivileges") == "yes");
  std::smatch m;
  REQUIRE(std::regex_search(config, m, std::regex(R"((^|\n)shutdown\.timeout:\s*(\S+))")));
  const auto shutdown = secondsOf(m[2].str());
  const auto stop = secondsOf(unitSetting(unit, "TimeoutStopSec"));
  REQUIRE(shutdown);
  REQUIRE(stop);
  CHECK_MESSAGE(*stop > *shutdown, "TimeoutStopSec "
                                       << *stop << "s is not above --shutdown.timeout " << *shutdown
                                       << "s");

  // systemd-analyze checks that ExecStart exists: the copy under test points at this build.
  auto analyze = findInPath("systemd-analyze");
  REQUIRE_MESSAGE(analyze,
                  "systemd-analyze not found (Debian package systemd; `make test` installs it)");
  std::string copy = unit;
  REQUIRE(replaceAll(copy, "/usr/local/bin/cardinal ", CardinalServer::binary() + " ") == 1);
  const auto unit_copy = dir.writeFile("cardinal.service", copy);
  auto verify = runCommand(dir, "systemd-analyze-verify", {*analyze, "verify", unit_copy.string()});
  CHECK_MESSAGE(exitedZero(verify), verify.summary());
  CHECK_MESSAGE(!contains(verify.out + verify.err, "cardinal.service"), verify.summary());
  auto security =
      runCommand(dir, "systemd-analyze-security",
                 {*analyze, "security", "--offline=true", "--no-pager", unit_copy.string()});
  CHECK_MESSAGE(exitedZero(security), security.summary());
  REQUIRE(std::regex_search(
      security.out, m, std::regex(R"(Overall exposure level for cardinal\.service: ([\d.]+))")));
  const double exposure = std::stod(m[1].str());
  MESSAGE("systemd-analyze security: exposure " << exposure);
  CHECK(exposure <= 2.0);

  // The example config file is valid for this build: every key a flag, every value accepted.
  // Command-line flags win, so the test's listen address, upstream and storage path apply.
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--config.file=" + repoPath("deploy/systemd/cardinal.yaml").string(),
                           "--storage.path=" + dir.subdir("state").string()});
  INFO(describe(cardinal.process()));
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "deploy_probe"}, {"job", "deploy"}}, {{1, nowMs()}});
  auto r = postRemoteWrite(cardinal.writeUrl(), req);
  CHECK_MESSAGE(r.status == 204, r.summary());
  CHECK(upstream.requestCount() == 1);
  CHECK(cardinal.stop().code == 0);
}

}  // namespace
}  // namespace cardinal::integration
