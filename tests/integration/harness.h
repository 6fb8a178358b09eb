#pragma once

// Harness for Cardinal's integration tests: real peers (Cardinal, Prometheus, vmagent, later
// the Collector and Kafka) run as child processes on loopback, each on its own free port with
// its own temporary data directory; fakes (a scriptable upstream, a scrape target) run
// in-process on their own Asio thread.
//
// Ownership: every object here owns what it starts and stops it in its destructor (children
// are SIGKILLed if still running, servers are joined), so a failing REQUIRE never leaks a
// process or a port. Children spawned from the main thread also get PR_SET_PDEATHSIG through
// setpriv(1), so even a crashed test binary leaves nothing behind.
//
// Failure output: put INFO(describe(process)) after starting a peer; doctest evaluates it (and
// reads the log tail) only when an assertion in that scope fails.
//
// Assertions: peer constructors, waitReady() and PromApi REQUIRE success themselves; call them
// on the test case's own thread (a REQUIRE on another thread throws there, not in the test).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "remote_write_v1.pb.h"

namespace cardinal::integration {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using Labels = std::map<std::string, std::string>;  // sorted by name, as Prometheus stores them

// Milliseconds since the epoch, the unit of remote-write timestamps.
int64_t nowMs();

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed), and never
// returned before by this process (so two peers started together do not get the same one).
uint16_t freePort();

// Polls `predicate` every `interval` until it returns true or `timeout` passes.
bool waitUntil(const std::function<bool()>& predicate, Millis timeout,
               Millis interval = Millis(50));

// Path of a peer binary: the environment variable `env_var` if set, else `fallback`.
std::string binaryPath(const char* env_var, const std::string& fallback);

// ---------------------------------------------------------------------------------------------
// Temporary directories and child processes

// A fresh directory under $TMPDIR (default /tmp), removed with its contents on destruction
// unless CARDINAL_IT_KEEP_TMP is set (then its path is printed).
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "cardinal-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Creates (if needed) and returns path()/name.
  std::filesystem::path subdir(std::string_view name) const;
  // Writes `content` to path()/name and returns the full path.
  std::filesystem::path writeFile(std::string_view name, std::string_view content) const;
  // Same, but writes a temporary file next to it and renames it over path()/name, as editors
  // and config-management tools do: a reader never sees a partly written file.
  std::filesystem::path writeFileAtomic(std::string_view name, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

struct ExitStatus {
  bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
  int code = -1;
  int signal = 0;
  std::string toString() const;
};

// A child process with stdout and stderr appended to one log file. Not thread-safe.
class Process {
 public:
  // Spawns argv[0] with argv; throws std::runtime_error if the spawn fails.
  Process(std::string name, std::vector<std::string> argv, std::filesystem::path log_file,
          std::filesystem::path working_dir = {});
  ~Process();  // SIGKILL + reap if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  const std::string& name() const { return name_; }
  int pid() const { return pid_; }
  const std::filesystem::path& logFile() const { return log_file_; }
  const std::vector<std::string>& argv() const { return argv_; }

  bool running();                                      // reaps if it has exited
  void signal(int sig);                                // no-op if already reaped
  bool signalled() const { return signalled_; }        // signal()/terminate() was called
  void terminate() { signal(15); }                     // SIGTERM
  std::optional<ExitStatus> waitExit(Millis timeout);  // nullopt on timeout
  ExitStatus kill();                                   // SIGKILL and reap
  std::optional<ExitStatus> exitStatus() const { return status_; }

  std::string logTail(size_t max_lines = 40) const;
  std::string logContents() const;

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::filesystem::path log_file_;
  int pid_ = -1;
  bool signalled_ = false;
  std::optional<ExitStatus> status_;
};

// "name (pid N, exited/running): argv\n--- log tail ---\n..." for failure messages.
std::string describe(Process& process, size_t max_lines = 40);

// Kills every live child on SIGINT/SIGTERM/SIGHUP sent to the test binary, then re-raises.
void installChildReaperSignalHandlers();

// Runs a command to completion (for CLIs such as `cardinal check rules`), with stdout and
// stderr captured separately (into files in `dir`, named after `name`). `status` is nullopt if
// it did not finish within `timeout` (it is then killed).
struct CommandResult {
  std::optional<ExitStatus> status;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string summary() const;  // "exit code 1\n--- stdout ---\n...--- stderr ---\n..."
};
CommandResult runCommand(const TempDir& dir, const std::string& name,
                         const std::vector<std::string>& argv,
                         const std::filesystem::path& working_dir = {},
                         Millis timeout = Millis(30000));

// ---------------------------------------------------------------------------------------------
// HTTP client (synchronous, one connection per request, with an overall timeout)

struct HttpHeaders {
  std::vector<std::pair<std::string, std::string>> fields;
  // Case-insensitive lookup of the first field named `name`.
  std::optional<std::string> get(std::string_view name) const;
};

struct HttpResponse {
  int status = 0;     // 0: transport error, see `error`
  std::string error;  // connect/read/write/timeout error text when status == 0
  HttpHeaders headers;
  std::string body;
  std::string summary(size_t max_body = 300) const;  // "HTTP 400: series 0: ..." for messages
};

struct Url {
  std::string host;
  uint16_t port = 0;
  std::string target = "/";
  static Url parse(std::string_view url);  // http://host:port/target only
};

HttpResponse httpRequest(std::string_view method, std::string_view url, std::string_view body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         Millis timeout = Millis(10000));
inline HttpResponse httpGet(std::string_view url, Millis timeout = Millis(10000)) {
  return httpRequest("GET", url, {}, {}, timeout);
}
inline HttpResponse httpPost(std::string_view url, std::string_view body,
                             const std::vector<std::pair<std::string, std::string>>& headers = {},
                             Millis timeout = Millis(10000)) {
  return httpRequest("POST", url, body, headers, timeout);
}

// Sends `bytes` as they are on a fresh connection to 127.0.0.1:port, optionally half-closes,
// and returns everything read until the peer closes or `timeout` passes. For HTTP-level
// malformations (chunked bodies, truncated requests, garbage) that httpRequest cannot produce.
struct RawExchange {
  bool connected = false;
  std::string received;
  std::string error;
};
RawExchange rawExchange(uint16_t port, std::string_view bytes, bool half_close,
                        Millis timeout = Millis(3000));
// The same, writing `pieces` one after the other with `pause` between them (a slow sender).
RawExchange rawExchange(uint16_t port, const std::vector<std::string>& pieces, Millis pause,
                        bool half_close, Millis timeout = Millis(3000));

// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view s);

// ---------------------------------------------------------------------------------------------
// Remote-write requests

prometheus::Label* addLabel(prometheus::TimeSeries& ts, std::string name, std::string value);
// Adds a series with labels in the given order (not sorted: tests decide) and samples.
prometheus::TimeSeries* addSeries(prometheus::WriteRequest& req,
                                  const std::vector<std::pair<std::string, std::string>>& labels,
                                  const std::vector<std::pair<double, int64_t>>& samples = {});
// A loopback TCP connection to `port` (blocking), or -1.
int connectTo(uint16_t port);

// A keep-alive remote-write client on one connection: POST, read one response.
class KeepAliveClient {
 public:
  // `timeout_s`: how long to wait for an answer.
  explicit KeepAliveClient(uint16_t port, int timeout_s = 5);
  ~KeepAliveClient();
  KeepAliveClient(const KeepAliveClient&) = delete;
  KeepAliveClient& operator=(const KeepAliveClient&) = delete;
  // Status of the answer, 0 on a transport error.
  int post(const prometheus::WriteRequest& req);
  // The same with the body already encoded (snappy-compressed WriteRequest).
  int postBody(const std::string& body);

 private:
  uint16_t port_;
  int fd_;
};

// Serialized protobuf, snappy block-compressed.
std::string encodeWriteRequest(const prometheus::WriteRequest& req);
std::string snappyCompress(std::string_view raw);
std::optional<std::string> snappyUncompress(std::string_view compressed);
// Parses a snappy-compressed body; nullopt and `error` set if it is not a valid WriteRequest.
std::optional<prometheus::WriteRequest> decodeWriteRequest(std::string_view body,
                                                           std::string* error = nullptr);
// Headers every remote-write 1.0 sender sends.
std::vector<std::pair<std::string, std::string>> remoteWriteHeaders();
HttpResponse postRemoteWrite(std::string_view url, std::string_view compressed_body,
                             Millis timeout = Millis(10000));
HttpResponse postRemoteWrite(std::string_view url, const prometheus::WriteRequest& req,
                             Millis timeout = Millis(10000));

Labels labelsOf(const prometheus::TimeSeries& ts);
// Label pairs in wire order (labelsOf() sorts and merges duplicates).
std::vector<std::pair<std::string, std::string>> labelPairsOf(const prometheus::TimeSeries& ts);
bool labelsSorted(const prometheus::TimeSeries& ts);  // strictly increasing names
std::string pairsToString(const std::vector<std::pair<std::string, std::string>>& pairs);
std::string formatDouble(double v);                   // shortest round-trip form
std::string labelsToString(const Labels& labels);  // {a="b", c="d"}

// ---------------------------------------------------------------------------------------------
// Prometheus HTTP API (works for any Prometheus-compatible query endpoint)

// One stored float sample as the query API returns it.
struct StoredSample {
  int64_t timestamp_ms = 0;
  std::string value;  // as formatted by the server ("1.5", "NaN", "+Inf")
  double number() const;
};
using StoredSeries = std::map<Labels, std::vector<StoredSample>>;

class PromApi {
 public:
  explicit PromApi(std::string base_url) : base_(std::move(base_url)) {}
  const std::string& baseUrl() const { return base_; }

  // Each returns the whole response document; REQUIREs HTTP 200 and "status":"success".
  nlohmann::json query(std::string_view expr, std::optional<int64_t> time_ms = std::nullopt) const;
  nlohmann::json series(std::string_view match, int64_t start_ms, int64_t end_ms) const;
  nlohmann::json queryExemplars(std::string_view expr, int64_t start_ms, int64_t end_ms) const;
  // Raw float samples of `selector` over the last `window` (e.g. "15m") ending at `time_ms`
  // (default now): runs the range selector `selector[window]` as an instant query.
  StoredSeries rawSamples(std::string_view selector, std::string_view window = "15m",
                          std::optional<int64_t> time_ms = std::nullopt) const;
  // Result of an instant query whose result is a vector (e.g. `resets(x[5m])`), by labels.
  std::map<Labels, double> instantValues(std::string_view expr,
                                         std::optional<int64_t> time_ms = std::nullopt) const;

 private:
  nlohmann::json get(const std::string& path_and_query) const;
  std::string base_;
};

int64_t promTimestampToMs(const nlohmann::json& ts);  // 1700000000.123 -> 1700000000123

// Float samples a test expects, by series: labels -> timestamp_ms -> value.
using ExpectedSamples = std::map<Labels, std::map<int64_t, double>>;
ExpectedSamples expectedFrom(const prometheus::WriteRequest& req);

// Differences between what a test sent and what a server stored. Values are compared exactly
// (same double, or both NaN).
struct StoredDiff {
  std::vector<std::string> missing;     // expected, not stored
  std::vector<std::string> wrong;       // stored with another value
  std::vector<std::string> unexpected;  // stored, never sent
  bool empty() const { return missing.empty() && wrong.empty() && unexpected.empty(); }
  std::string report(size_t max_lines_each = 15) const;
};
// Every sample of `must_have` must be stored with its value; every stored sample must be in
// `may_have` (pass the same map for an exact comparison) with its value.
StoredDiff diffStored(const ExpectedSamples& must_have, const ExpectedSamples& may_have,
                      const StoredSeries& stored);
bool sameValue(double a, double b);

// Cardinal's log: the lines of `process` with msg="<msg>", those with msg="slow write request"
// (--log.slow-requests), and the value of `key=` in a log line ("" if absent).
std::vector<std::string> logLines(const Process& process, std::string_view msg);
std::vector<std::string> slowRequestLines(const Process& process);
std::string logField(const std::string& line, const std::string& key);

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition (parsing Cardinal's own /metrics)

struct ExpositionSample {
  std::string name;
  Labels labels;
  double value = 0;
};
std::vector<ExpositionSample> parseExposition(std::string_view text);
// Sum of the samples named `name` whose labels include all of `match`; nullopt if none.
std::optional<double> metricValue(std::string_view exposition, std::string_view name,
                                  const Labels& match = {});

// ---------------------------------------------------------------------------------------------
// In-process HTTP server on 127.0.0.1:0 with its own Asio thread

struct HttpRequestRecord {
  std::string method;
  std::string target;
  HttpHeaders headers;
  std::string body;
  Clock::time_point received_at;
};

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Millis delay{0};  // answer only after this long (other connections are served meanwhile)
  // Close the connection right after the response although it says keep-alive, like a server
  // whose idle timeout fires just then: the client's next request on it fails.
  bool close_after_write = false;
  static HttpReply withStatus(int status, std::string body = {});
  HttpReply& header(std::string name, std::string value);
  HttpReply& after(Millis d) {
    delay = d;
    return *this;
  }
  HttpReply& thenClose() {
    close_after_write = true;
    return *this;
  }
};

class HttpServer {
 public:
  // Called on the server thread, one request at a time; must not block (use HttpReply::delay).
  using Handler = std::function<HttpReply(const HttpRequestRecord&)>;
  explicit HttpServer(Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  std::string hostPort() const;  // 127.0.0.1:PORT
  std::string baseUrl() const;   // http://127.0.0.1:PORT
  void stop();                   // idempotent; closes the listener and all connections

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A remote-write receiver whose answers are scripted. Every request is recorded (and decoded)
// when it arrives, before any scripted delay.
class FakeUpstream {
 public:
  struct Received {
    HttpRequestRecord http;
    std::optional<prometheus::WriteRequest> decoded;
    std::string decode_error;
  };

  FakeUpstream();  // answers 204 to everything until scripted
  // The first replies.size() requests from now get replies[i]; later ones get `then`.
  void script(std::vector<HttpReply> replies, HttpReply then = HttpReply::withStatus(204));

  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }
  uint16_t port() const { return server_.port(); }
  size_t requestCount() const;
  std::vector<Received> requests() const;
  bool waitForRequests(size_t n, Millis timeout) const;
  // All series of all decoded requests so far, in arrival order.
  std::vector<prometheus::TimeSeries> allSeries() const;
  void stop() { server_.stop(); }

 private:
  HttpReply handle(const HttpRequestRecord& req);

  mutable std::mutex mu_;
  std::vector<Received> received_;
  std::vector<HttpReply> script_;
  size_t script_pos_ = 0;
  HttpReply then_ = HttpReply::withStatus(204);
  HttpServer server_;  // last: destroyed first, so handle() never sees dead members
};

// A scrape target serving Prometheus text exposition at /metrics: counters, gauges, a classic
// histogram and an unlabelled gauge, every sample with an explicit millisecond timestamp.
// Values and timestamps advance with every scrape, label names are deliberately not in sorted
// order and one label value needs escaping. Records exactly what it served.
class ScrapeTarget {
 public:
  struct Served {
    Labels labels;  // including __name__
    double value = 0;
    int64_t timestamp_ms = 0;
    int scrape = 0;  // 1-based
  };

  ScrapeTarget();
  std::string hostPort() const { return server_.hostPort(); }
  std::string metricsUrl() const { return server_.baseUrl() + "/metrics"; }
  int scrapeCount() const;
  std::vector<Served> served() const;
  std::string lastBody() const;
  void stop() { server_.stop(); }

  static constexpr std::string_view kMetricPrefix = "fixture_";

 private:
  HttpReply handle(const HttpRequestRecord& req);

  mutable std::mutex mu_;
  int scrapes_ = 0;
  int64_t last_ts_ = 0;
  std::vector<Served> served_;
  std::string last_body_;
  HttpServer server_;
};

// ---------------------------------------------------------------------------------------------
// Peers as child processes. Each start() waits until the peer answers its readiness endpoint
// and REQUIREs that it did (with the log tail in the failure message).

// Starts `process` and waits until GET `ready_url` answers 200; REQUIREs it.
void waitReady(Process& process, const std::string& ready_url, Millis timeout);

class CardinalServer {
 public:
  // Extra flags are appended after --web.listen-address and --upstream.url.
  CardinalServer(const TempDir& dir, std::string upstream_url,
                 std::vector<std::string> extra_flags = {}, std::string name = "cardinal");
  // Fails the test (without throwing) if the proxy died without being signalled or its log
  // holds a sanitizer report, e.g. under the asan-ubsan build.
  ~CardinalServer();
  CardinalServer(const CardinalServer&) = delete;
  CardinalServer& operator=(const CardinalServer&) = delete;
  static std::string binary();  // $CARDINAL_BIN or the path CMake compiled in

  Process& process() { return *process_; }
  uint16_t port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string writeUrl() const { return baseUrl() + "/api/v1/write"; }
  std::string metricsText() const;  // GET /metrics body ("" on error)
  // metricValue() of the current /metrics.
  std::optional<double> metric(std::string_view name, const Labels& match = {}) const;
  HttpResponse reload() const;  // POST /-/reload

  // SIGTERM, then waits for the exit; REQUIREs that it exited within `timeout`.
  ExitStatus stop(Millis timeout = Millis(20000));
  // Starts the proxy again after stop() (or a crash): same flags, same port (so senders
  // configured with writeUrl() reconnect by themselves), same log file (appended). REQUIREs
  // readiness like the constructor.
  void restart();
  // The first sanitizer report in the log (ASan, LSan, UBSan, TSan), with the lines after
  // it; "" if there is none. The destructor fails the test on one; call it to check earlier.
  std::string sanitizerReport() const;

 private:
  void spawn();
  uint16_t port_ = 0;
  std::string name_;
  std::vector<std::string> argv_;
  std::filesystem::path log_file_;
  std::filesystem::path working_dir_;
  std::unique_ptr<Process> process_;
};

class PrometheusServer {
 public:
  struct Options {
    bool agent = false;                   // --enable-feature=agent with --storage.agent.path
    bool remote_write_receiver = true;    // --web.enable-remote-write-receiver (not for agents)
    std::vector<std::string> features;    // e.g. native-histograms, exemplar-storage
    std::string config_yaml = "global: {}\n";
    uint16_t port = 0;                    // 0: a free port
    std::string name = "prometheus";
    std::vector<std::string> extra_flags;
  };
  PrometheusServer(const TempDir& dir, Options options);
  static std::string binary();  // $PROMETHEUS_BIN or /usr/bin/prometheus

  Process& process() { return *process_; }
  uint16_t port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string writeUrl() const { return baseUrl() + "/api/v1/write"; }
  PromApi api() const { return PromApi(baseUrl()); }

 private:
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

class VmAgent {
 public:
  VmAgent(const TempDir& dir, std::string scrape_config_yaml, std::string remote_write_url,
          std::vector<std::string> extra_flags = {});
  static std::string binary();  // $VMAGENT_BIN or /usr/bin/vmagent

  Process& process() { return *process_; }
  uint16_t port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

// Scrape config (Prometheus and vmagent syntax) for one static target every 1s, honouring the
// target's timestamps.
std::string scrapeConfigYaml(const std::string& job, const std::string& target_host_port);

// `remote_write:` section of a Prometheus (agent) config sending to every URL in `urls`, each
// queue with one shard (max_shards: 1), so that each destination receives the samples strictly
// in the order they were scraped, one request at a time, and with short batch deadlines and
// backoffs (500 ms, 30 ms .. 500 ms) so tests do not wait long.
// `extra`: more lines for each entry, e.g. "protobuf_message: io.prometheus.write.v2.Request"
// (Prometheus 3 sending remote-write 2.0).
std::string orderedRemoteWriteYaml(const std::vector<std::string>& urls, const std::string& extra = "");

// A scrape target whose series churn, the case label-dropping rules exist for:
//   orders_total{order_id="<fresh UUIDv4>", env="prod"} 1   x ids_per_scrape, new on every
//     scrape and never served again (each order is counted once, then gone);
//   rpc_seconds, a classic histogram (HELP/TYPE lines; _bucket{le} for 0.1, 0.5, 1, +Inf,
//     _sum, _count) per pod: two pods at a time, pod-K and pod-(K+1) with
//     K = (scrape-1) / scrapes_per_pod, so every scrapes_per_pod scrapes one pod goes away and
//     a new one appears. The j-th time a pod is served its counts are j, 2j, 3j, 4j per bucket,
//     _count 4j and _sum 0.5j; after scrapes_per_pod appearances a pod "restarts": j starts
//     again at 1 (a counter reset the merge engine must detect per input).
// No explicit timestamps: the scraper stamps the samples and, since they go away, writes
// staleness markers for them. Records what it served.
class ChurnTarget {
 public:
  struct Options {
    int ids_per_scrape = 20;
    int scrapes_per_pod = 4;
  };
  struct Scrape {
    int number = 0;  // 1-based
    Clock::time_point at;
    std::vector<std::string> order_ids;
    std::vector<std::string> pods;
  };

  ChurnTarget() : ChurnTarget(Options{}) {}
  explicit ChurnTarget(Options options);
  std::string hostPort() const { return server_.hostPort(); }
  const Options& options() const { return options_; }
  int scrapeCount() const;
  std::vector<Scrape> scrapes() const;
  std::string lastBody() const;
  void stop() { server_.stop(); }

  static constexpr const char* kBucketBounds[] = {"0.1", "0.5", "1", "+Inf"};

 private:
  HttpReply handle(const HttpRequestRecord& req);

  Options options_;
  mutable std::mutex mu_;
  std::vector<Scrape> scrapes_;
  std::string last_body_;
  uint64_t rng_state_;
  HttpServer server_;
};

}  // namespace cardinal::integration
