#pragma once

// Peers of the ecosystem suite (cardinal_ecosystem_tests): the OpenTelemetry Collector built by
// tests/peers/otelcol.sh, a single-node Kafka in KRaft mode from the jars tests/peers/kafka.sh
// fetched, and the OTLP sender built by tests/peers/otel-sender.sh. Like the peers in
// harness.h, each object owns the process it starts (SIGKILLed in its destructor if still
// running), uses free loopback ports chosen at run time and its own files under the test's
// TempDir, and REQUIREs its own start-up.
//
// The binaries are found through environment variables only (CARDINAL_OTELCOL_BIN,
// CARDINAL_KAFKA_HOME, CARDINAL_OTEL_SENDER_BIN): a missing one fails the case, it never
// skips it. The Collector runs the configuration files of deploy/otelcol/ as they are, with
// ports and endpoints passed through the environment (${env:VAR} in those files).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace cardinal::integration {

// The value of `env_var`, which must name an existing file (or directory, if `directory`);
// REQUIREs it, with `hint` (how to produce it) in the failure message.
std::string requiredPeerPath(const char* env_var, bool directory, const std::string& hint);

// deploy/otelcol/<name>: $CARDINAL_OTELCOL_CONFIG_DIR/<name> if set, else the source tree's
// (compiled in). REQUIREs that the file exists.
std::filesystem::path otelcolConfig(const std::string& name);

// Polls the process's log for `needle` until `timeout`; REQUIREs that it appeared and that the
// process is still running.
void waitForLog(Process& process, const std::string& needle, Millis timeout);

// An OpenTelemetry Collector running one deploy/otelcol/ file. `env` sets the variables the
// file reads (OTLP_GRPC_ENDPOINT, CARDINAL_WRITE_URL, ...); OTELCOL_TELEMETRY_PORT is added
// here (a free port: the Collector's own /metrics). Ready when the log says "Everything is
// ready" (receivers listening, pipelines built).
class OtelCollector {
 public:
  // `extra_args` follow --config (e.g. --feature-gates=...).
  OtelCollector(const TempDir& dir, std::string name, const std::string& config_file,
                std::map<std::string, std::string> env, std::vector<std::string> extra_args = {});
  static std::string binary();  // $CARDINAL_OTELCOL_BIN, REQUIREd

  Process& process() { return *process_; }
  // The Collector's own metrics (otelcol_receiver_accepted_metric_points, ...), "" on error.
  std::string telemetryText() const;
  std::optional<double> telemetry(std::string_view name, const Labels& match = {}) const;

 private:
  uint16_t telemetry_port_ = 0;
  std::unique_ptr<Process> process_;
};

// A single-node Kafka (combined broker and controller, KRaft) on two free loopback ports, with
// its log directory under the TempDir: storage formatted with a fresh cluster id, then
// kafka.Kafka started with a generated server.properties; ready when the log says "Kafka Server
// started". The JVM gets a small heap (the machine is shared).
class KafkaBroker {
 public:
  explicit KafkaBroker(const TempDir& dir);
  static std::string home();  // $CARDINAL_KAFKA_HOME (holding libs/*.jar), REQUIREd

  Process& process() { return *process_; }
  std::string bootstrap() const { return "127.0.0.1:" + std::to_string(port_); }
  // kafka-topics --create; REQUIREs success.
  void createTopic(const std::string& topic, int partitions);
  // Sum over partitions of the topic's end offsets (records ever written), via
  // kafka-get-offsets; nullopt if the tool failed.
  std::optional<int64_t> recordsIn(const std::string& topic);

 private:
  // A Kafka command-line tool (main class) against this broker, to completion.
  CommandResult tool(const std::string& name, const std::string& main_class,
                     const std::vector<std::string>& args);

  const TempDir& dir_;
  uint16_t port_ = 0;
  uint16_t controller_port_ = 0;
  std::filesystem::path log4j_config_;
  int tool_runs_ = 0;
  std::unique_ptr<Process> process_;
};

// What tests/peers/otel-sender sent (its --report file).
struct SenderReport {
  std::string service_name;
  std::string instance_id;
  int rounds = 0;
  std::vector<std::string> families;                          // the seed's eight metric families
  std::vector<std::string> extra_families;                    // app_queue_depth_<i>
  std::map<std::string, std::vector<std::string>> sensitive;  // "family/label" -> raw values
  uint64_t histogram_count = 0;
  double histogram_sum = 0;
  std::vector<double> histogram_bounds;
  std::set<std::string> distinctValues(const std::string& family_label) const;
};

struct SenderOptions {
  std::string endpoint;  // OTLP/gRPC host:port
  std::string service_name = "checkout";
  std::string instance_id = "checkout-1";
  int rounds = 4;
  Millis interval{1000};
  int per_round = 3;
  int extra_families = 0;
};

// Runs the sender to completion (REQUIREs exit 0 within rounds x interval + 60 s) and returns
// its report.
SenderReport runOtelSender(const TempDir& dir, const SenderOptions& options);
std::string otelSenderBinary();  // $CARDINAL_OTEL_SENDER_BIN, REQUIREd

// Forwarders that write to one fresh Prometheus share one: the first request any of them
// forwards goes alone, the others wait until Prometheus answered it. Prometheus 2.42 sets its
// head's time range from the first sample written to it, and a second write arriving at that
// moment can see the range half set (minimum set, maximum not yet) and have every sample refused
// as "out of bounds" (tsdb Head.initTime, then appendableMinValidTime: the unset maximum,
// math.MinInt64, less half a chunk range wraps around); seen once in CI with two Cardinals
// writing their first requests together.
struct FirstWriteGate {
  std::mutex mu;
  std::atomic<bool> done{false};
};

// A remote-write hop between a Cardinal and Prometheus that records which metric names passed
// through it, then forwards each request unchanged (body and remote-write headers) and passes
// Prometheus's answer back. One per Cardinal shows which replica handled which family.
class RecordingForwarder {
 public:
  explicit RecordingForwarder(std::string upstream_write_url, std::shared_ptr<FirstWriteGate> gate = nullptr);
  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }
  std::set<std::string> metricNames() const;
  size_t requestCount() const;
  std::vector<std::string> failures() const;  // forwarded requests not answered 2xx

 private:
  HttpReply handle(const HttpRequestRecord& req);

  std::string upstream_;
  std::shared_ptr<FirstWriteGate> gate_;
  mutable std::mutex mu_;
  std::set<std::string> names_;
  size_t requests_ = 0;
  std::vector<std::string> failures_;
  HttpServer server_;  // last: destroyed first
};

}  // namespace cardinal::integration
