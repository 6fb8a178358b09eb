#include "ecosystem_peers.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace cardinal::integration {

#ifndef CARDINAL_SOURCE_DIR
#define CARDINAL_SOURCE_DIR "."
#endif

std::string requiredPeerPath(const char* env_var, bool directory, const std::string& hint) {
  const char* v = std::getenv(env_var);
  REQUIRE_MESSAGE((v != nullptr && *v != '\0'), std::string(env_var)
                                                    << " is not set: the ecosystem suite needs it ("
                                                    << hint << ")");
  std::error_code ec;
  const bool ok = directory ? std::filesystem::is_directory(v, ec)
                            : (std::filesystem::is_regular_file(v, ec) && ::access(v, X_OK) == 0);
  REQUIRE_MESSAGE(ok, std::string(env_var)
                          << "=" << v << " is not " << (directory ? "a directory" : "an executable")
                          << " (" << hint << ")");
  return v;
}

std::filesystem::path otelcolConfig(const std::string& name) {
  const char* dir = std::getenv("CARDINAL_OTELCOL_CONFIG_DIR");
  std::filesystem::path p = (dir != nullptr && *dir != '\0')
                                ? std::filesystem::path(dir)
                                : std::filesystem::path(CARDINAL_SOURCE_DIR) / "deploy" / "otelcol";
  p /= name;
  REQUIRE_MESSAGE(std::filesystem::is_regular_file(p),
                  "Collector config not found: " << p.string());
  return p;
}

void waitForLog(Process& process, const std::string& needle, Millis timeout) {
  const bool seen = waitUntil(
      [&] { return !process.running() || process.logContents().find(needle) != std::string::npos; },
      timeout, Millis(100));
  INFO(describe(process));
  REQUIRE_MESSAGE(process.running(), process.name() << " exited during start-up");
  REQUIRE_MESSAGE(seen, process.name() << " did not log \"" << needle << "\" within "
                                       << timeout.count() << " ms");
}

// ---------------------------------------------------------------------------------------------
// OtelCollector

std::string OtelCollector::binary() {
  return requiredPeerPath("CARDINAL_OTELCOL_BIN", false,
                          "the Collector built by tests/peers/otelcol.sh, which prints its path");
}

OtelCollector::OtelCollector(const TempDir& dir, std::string name, const std::string& config_file,
                             std::map<std::string, std::string> env, std::vector<std::string> extra_args)
    : telemetry_port_(freePort()) {
  const std::string bin = binary();
  env["OTELCOL_TELEMETRY_PORT"] = std::to_string(telemetry_port_);
  // env(1) sets the variables the config file reads; it execs the Collector in place, so the
  // pid (and the parent-death signal) are the Collector's.
  std::vector<std::string> argv = {"/usr/bin/env"};
  for (const auto& [k, v] : env) argv.push_back(k + "=" + v);
  argv.push_back(bin);
  argv.push_back("--config=" + config_file);
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(name, argv, dir.path() / (name + ".log"), dir.subdir(name));
  waitForLog(*process_, "Everything is ready", Millis(30000));
}

std::string OtelCollector::telemetryText() const {
  auto r =
      httpGet("http://127.0.0.1:" + std::to_string(telemetry_port_) + "/metrics", Millis(3000));
  return r.status == 200 ? r.body : std::string();
}

std::optional<double> OtelCollector::telemetry(std::string_view name, const Labels& match) const {
  return metricValue(telemetryText(), name, match);
}

// ---------------------------------------------------------------------------------------------
// KafkaBroker

namespace {

std::string javaBinary() { return binaryPath("CARDINAL_JAVA", "java"); }

std::string kafkaClasspath() { return KafkaBroker::home() + "/libs/*"; }

std::string randomClusterId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  for (;;) {
    std::array<uint8_t, 16> bytes{};
    for (auto& b : bytes) b = static_cast<uint8_t>(rd());
    std::string out;
    uint32_t buf = 0;
    int bits = 0;
    for (uint8_t c : bytes) {
      buf = (buf << 8) | c;
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        out += kAlphabet[(buf >> bits) & 0x3f];
      }
    }
    if (bits > 0) out += kAlphabet[(buf << (6 - bits)) & 0x3f];
    if (out[0] != '-') return out;
  }
}

}  // namespace

std::string KafkaBroker::home() {
  const std::string h = requiredPeerPath(
      "CARDINAL_KAFKA_HOME", true, "the directory tests/peers/kafka.sh prints, holding libs/*.jar");
  std::error_code ec;
  bool has_jars = false;
  for (const auto& e : std::filesystem::directory_iterator(h + "/libs", ec)) {
    if (e.path().filename().string().rfind("kafka_2.13-", 0) == 0) has_jars = true;
  }
  REQUIRE_MESSAGE(has_jars, "no libs/kafka_2.13-*.jar under CARDINAL_KAFKA_HOME=" << h);
  return h;
}

KafkaBroker::KafkaBroker(const TempDir& dir)
    : dir_(dir), port_(freePort()), controller_port_(freePort()) {
  const std::string cp = kafkaClasspath();
  const auto data = dir.subdir("kafka-data");
  const std::string listener = "127.0.0.1:" + std::to_string(port_);
  const std::string controller = "127.0.0.1:" + std::to_string(controller_port_);
  const auto props = dir.writeFile(
      "kafka-server.properties",
      "process.roles=broker,controller\n"
      "node.id=1\n"
      "controller.quorum.voters=1@" +
          controller +
          "\n"
          "listeners=PLAINTEXT://" +
          listener + ",CONTROLLER://" + controller +
          "\n"
          "advertised.listeners=PLAINTEXT://" +
          listener +
          "\n"
          "controller.listener.names=CONTROLLER\n"
          "inter.broker.listener.name=PLAINTEXT\n"
          "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
          "log.dirs=" +
          data.string() +
          "\n"
          "num.partitions=1\n"
          // Topics are created by the test (explicitly, before producers and consumers start).
          "auto.create.topics.enable=false\n"
          "offsets.topic.replication.factor=1\n"
          "offsets.topic.num.partitions=1\n"
          "transaction.state.log.replication.factor=1\n"
          "transaction.state.log.min.isr=1\n"
          "share.coordinator.state.topic.replication.factor=1\n"
          "share.coordinator.state.topic.min.isr=1\n"
          // A consumer group's first member gets its partitions at once, not after 3 s.
          "group.initial.rebalance.delay.ms=0\n");
  log4j_config_ = dir.writeFile("kafka-log4j2.properties",
                                "status = warn\n"
                                "appender.out.type = Console\n"
                                "appender.out.name = out\n"
                                "appender.out.layout.type = PatternLayout\n"
                                "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
                                "rootLogger.level = info\n"
                                "rootLogger.appenderRef.out.ref = out\n"
                                "logger.kafka.name = kafka\n"
                                "logger.kafka.level = info\n"
                                "logger.clients.name = org.apache.kafka\n"
                                "logger.clients.level = warn\n");
  // kafka-storage format with a fresh cluster id: like kafka-storage random-uuid, 16 random
  // bytes in unpadded base64url, not starting with '-' (saves a JVM start).
  const std::string cluster_id = randomClusterId();
  auto fmt = tool("kafka-storage-format", "kafka.tools.StorageTool",
                  {"format", "--cluster-id", cluster_id, "--config", props.string()});
  REQUIRE_MESSAGE((fmt.status && fmt.status->exited && fmt.status->code == 0),
                  "kafka-storage format: " << fmt.summary());

  // A small heap and the C1 compiler only: the broker is up in about 3 s instead of 5, and
  // carries a few records.
  std::vector<std::string> argv = {javaBinary(),
                                   "-Xms128m",
                                   "-Xmx512m",
                                   "-XX:+UseSerialGC",
                                   "-XX:TieredStopAtLevel=1",
                                   "-Djava.awt.headless=true",
                                   "-Dlog4j2.configurationFile=" + log4j_config_.string(),
                                   "-cp",
                                   cp,
                                   "kafka.Kafka",
                                   props.string()};
  process_ =
      std::make_unique<Process>("kafka", argv, dir.path() / "kafka.log", dir.subdir("kafka"));
  waitForLog(*process_, "Kafka Server started", Millis(60000));
}

CommandResult KafkaBroker::tool(const std::string& name, const std::string& main_class,
                                const std::vector<std::string>& args) {
  // Short-lived JVMs: the C1 compiler only, which halves their start-up time.
  std::vector<std::string> argv = {javaBinary(),
                                   "-Xmx256m",
                                   "-XX:TieredStopAtLevel=1",
                                   "-XX:+UseSerialGC",
                                   "-Dlog4j2.configurationFile=" + log4j_config_.string(),
                                   "-cp",
                                   kafkaClasspath(),
                                   main_class};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(dir_, name + "-" + std::to_string(++tool_runs_), argv, {}, Millis(60000));
}

void KafkaBroker::createTopic(const std::string& topic, int partitions) {
  auto r = tool("kafka-topics", "org.apache.kafka.tools.TopicCommand",
                {"--bootstrap-server", bootstrap(), "--create", "--topic", topic, "--partitions",
                 std::to_string(partitions), "--replication-factor", "1"});
  INFO(describe(*process_));
  REQUIRE_MESSAGE((r.status && r.status->exited && r.status->code == 0),
                  "kafka-topics --create " << topic << ": " << r.summary());
}

std::optional<int64_t> KafkaBroker::recordsIn(const std::string& topic) {
  // kafka-get-offsets prints "topic:partition:offset" per partition (latest offsets).
  auto r = tool("kafka-get-offsets", "org.apache.kafka.tools.GetOffsetShell",
                {"--bootstrap-server", bootstrap(), "--topic", topic});
  if (!r.status || !r.status->exited || r.status->code != 0) return std::nullopt;
  int64_t total = 0;
  bool any = false;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto last = line.rfind(':');
    if (last == std::string::npos || line.rfind(topic + ":", 0) != 0) continue;
    try {
      total += std::stoll(line.substr(last + 1));
      any = true;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return any ? std::optional<int64_t>(total) : std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The OTLP sender

std::string otelSenderBinary() {
  return requiredPeerPath("CARDINAL_OTEL_SENDER_BIN", false,
                          "built by tests/peers/otel-sender.sh, which prints its path");
}

std::set<std::string> SenderReport::distinctValues(const std::string& family_label) const {
  auto it = sensitive.find(family_label);
  if (it == sensitive.end()) return {};
  return {it->second.begin(), it->second.end()};
}

SenderReport runOtelSender(const TempDir& dir, const SenderOptions& o) {
  const std::string bin = otelSenderBinary();
  const auto report_path = dir.path() / "otel-sender-report.json";
  std::vector<std::string> argv = {bin,
                                   "--endpoint=" + o.endpoint,
                                   "--rounds=" + std::to_string(o.rounds),
                                   "--interval=" + std::to_string(o.interval.count()) + "ms",
                                   "--service-name=" + o.service_name,
                                   "--service-instance-id=" + o.instance_id,
                                   "--per-round=" + std::to_string(o.per_round),
                                   "--extra-families=" + std::to_string(o.extra_families),
                                   "--timeout=20s",
                                   "--report=" + report_path.string()};
  const Millis budget = o.interval * o.rounds + Millis(60000);
  auto r = runCommand(dir, "otel-sender", argv, {}, budget);
  REQUIRE_MESSAGE((r.status && r.status->exited && r.status->code == 0),
                  "otel-sender: " << r.summary());
  std::ifstream in(report_path);
  REQUIRE_MESSAGE(in.good(), "otel-sender wrote no report at " << report_path.string());
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    FAIL("otel-sender report is not JSON: " << e.what());
  }
  SenderReport rep;
  rep.service_name = j.at("service_name").get<std::string>();
  rep.instance_id = j.at("service_instance_id").get<std::string>();
  rep.rounds = j.at("rounds").get<int>();
  rep.families = j.at("families").get<std::vector<std::string>>();
  if (j.contains("extra_families") && !j.at("extra_families").is_null())
    rep.extra_families = j.at("extra_families").get<std::vector<std::string>>();
  for (const auto& [k, v] : j.at("sensitive").items())
    rep.sensitive[k] = v.get<std::vector<std::string>>();
  const auto& h = j.at("histogram");
  rep.histogram_count = h.at("count").get<uint64_t>();
  rep.histogram_sum = h.at("sum").get<double>();
  rep.histogram_bounds = h.at("bounds").get<std::vector<double>>();
  REQUIRE_MESSAGE(rep.rounds == o.rounds, "otel-sender exported " << rep.rounds << " of "
                                                                  << o.rounds
                                                                  << " rounds: " << r.summary());
  return rep;
}

// ---------------------------------------------------------------------------------------------
// RecordingForwarder

RecordingForwarder::RecordingForwarder(std::string upstream_write_url, std::shared_ptr<FirstWriteGate> gate)
    : upstream_(std::move(upstream_write_url)),
      gate_(std::move(gate)),
      server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

HttpReply RecordingForwarder::handle(const HttpRequestRecord& req) {
  std::set<std::string> names;
  if (auto decoded = decodeWriteRequest(req.body)) {
    for (const auto& ts : decoded->timeseries()) {
      for (const auto& l : ts.labels()) {
        if (l.name() == "__name__") names.insert(l.value());
      }
    }
  }
  // Forwarding blocks this server's one thread for a loopback round trip: one request at a
  // time, which a single Cardinal per forwarder never exceeds by much.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const char* h :
       {"Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version", "User-Agent"}) {
    if (auto v = req.headers.get(h)) headers.emplace_back(h, *v);
  }
  HttpResponse res;
  if (gate_ && !gate_->done.load()) {
    std::lock_guard first(gate_->mu);
    res = httpPost(upstream_, req.body, headers, Millis(10000));
    gate_->done = true;
  } else {
    res = httpPost(upstream_, req.body, headers, Millis(10000));
  }
  std::lock_guard lock(mu_);
  ++requests_;
  names_.insert(names.begin(), names.end());
  if (res.status / 100 != 2) {
    // What was refused: the request's series and sample timestamps (a receiver's "out of
    // bounds" or "out of order" names one sample, not the one that set the bound).
    std::string what = res.summary();
    if (auto decoded = decodeWriteRequest(req.body)) {
      int64_t lo = INT64_MAX, hi = INT64_MIN;
      std::string newest, listing;
      int listed = 0;
      for (const auto& ts : decoded->timeseries()) {
        std::string name;
        for (const auto& l : ts.labels())
          if (l.name() == "__name__") name = l.value();
        for (const auto& smp : ts.samples()) {
          lo = std::min<int64_t>(lo, smp.timestamp());
          if (smp.timestamp() > hi) {
            hi = smp.timestamp();
            newest = name;
          }
          if (listed++ < 40) listing += "\n  " + name + " @" + std::to_string(smp.timestamp());
        }
        for (const auto& h : ts.histograms()) {
          if (listed++ < 40) listing += "\n  " + name + " (native histogram) @" + std::to_string(h.timestamp());
        }
      }
      what += "\nrequest: " + std::to_string(decoded->timeseries_size()) + " series, sample timestamps " +
              std::to_string(lo) + " .. " + std::to_string(hi) + " (newest: " + newest + "), forwarded at " +
              std::to_string(nowMs()) + listing;
    }
    failures_.push_back(what);
  }
  if (res.status == 0) return HttpReply::withStatus(503, "forwarder: " + res.error);
  return HttpReply::withStatus(res.status, res.body);
}

std::set<std::string> RecordingForwarder::metricNames() const {
  std::lock_guard lock(mu_);
  return names_;
}

size_t RecordingForwarder::requestCount() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<std::string> RecordingForwarder::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

}  // namespace cardinal::integration
