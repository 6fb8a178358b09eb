// cardinal: a Prometheus remote-write proxy. This file only wires things
// together: flags, signals, threads. Everything it calls is in lib/ and tested.

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/registry.h>

#include "codec/limits.h"
#include "codec/protocol.h"
#include "core/clock.h"
#include "core/flags.h"
#include "core/log.h"
#include "pipeline/assembly.h"
#include "pipeline/decision_cache.h"
#include "pipeline/pipeline.h"
#include "core/file_io.h"
#include "pipeline/family.h"
#include "pipeline/cardinality/cardinality_stage.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "pipeline/merge/emitter.h"
#include "pipeline/merge/merge_stage.h"
#include "pipeline/merge/merge_state.h"
#include "pipeline/normalize/normalize_stage.h"
#include "pipeline/sanitize/redactor.h"
#include "pipeline/sanitize/sanitize_stage.h"
#include "upstream/ordered_sender.h"
#include "pipeline/relabel/relabel_stage.h"
#include "rules/analyze.h"
#include "rules/file_watcher.h"
#include "rules/loader.h"
#include "rules/rules_manager.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/routes.h"
#include "server/write_handler.h"
#include "server/forward_headers.h"
#include "pipeline/tenants.h"
#include "upstream/client.h"
#include "security/auth.h"
#include "security/tls.h"

namespace net = boost::asio;
using namespace cardinal;
using std::chrono::milliseconds;

namespace {

constexpr const char* kVersion = "0.1.0";

struct Options {
  std::string config_file;
  std::string listen_address = "0.0.0.0:9192";
  size_t io_threads = std::max(1u, std::thread::hardware_concurrency());
  bool io_threads_pin = false;
  bool io_threads_spread = true;
  milliseconds read_timeout{60'000};
  milliseconds write_timeout{30'000};
  size_t max_connections = 1024;
  std::string upstream_url;
  std::string upstream_protocol = "v1";
  milliseconds upstream_timeout{4000};
  milliseconds retry_budget{4000};
  milliseconds backoff_min{50};
  milliseconds backoff_max{1000};
  size_t max_in_flight = 64;
  size_t max_idle_connections = 64;
  milliseconds retry_after{1000};
  codec::Limits limits;
  pipeline::AssemblyOptions pipe;  // cache, merge and cardinality flags, dry-run
  std::vector<std::string> rule_files;
  std::string log_level = "info";
  milliseconds slow_request_log{0};
  milliseconds shutdown_timeout{15'000};
  milliseconds aggregation_interval{15'000};
  std::string storage_path = "data";
  milliseconds snapshot_interval{60'000};
  size_t merge_queue = 1000;
  std::string hmac_key_file;
  bool codec_only = false;
  size_t split_request_bytes = 64u << 10;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::string auth_token_file;
  std::string auth_users_file;
  std::string upstream_ca_file;
  std::string upstream_cert_file;
  std::string upstream_key_file;
  std::string upstream_server_name;
  bool upstream_insecure = false;
  bool upstream_yield_local = true;
  std::string upstream_token_file;
  std::string upstream_basic_user;
  std::string upstream_basic_password_file;
  std::vector<std::string> forward_headers;
  std::string tenant_header;
  std::string tenant_default = "anonymous";
  size_t tenant_max = 100;
  bool version = false;
  bool help = false;
};

void defineFlags(core::FlagSet& f, Options& o) {
  f.addString("config.file", &o.config_file,
              "YAML file of settings keyed by flag name (without --); flags on the command line win");
  f.addString("web.listen-address", &o.listen_address, "Address to listen on for remote-write and the HTTP API");
  f.addCount("web.io-threads", &o.io_threads, "Number of I/O threads (the default is the number of CPUs)");
  f.addBool("web.io-threads-pin", &o.io_threads_pin,
            "Pin I/O thread i to the i-th CPU the process may use (for hosts or cpusets where the proxy's CPUs are "
            "its own: lower latency at low and medium load; a thread cannot leave a CPU another busy process shares)");
  f.addBool("web.io-threads-spread", &o.io_threads_spread,
            "An I/O thread that starts processing a request on the CPU where another I/O thread waits with a request "
            "of its own moves to another CPU (the kernel may queue both on one CPU while another idles); no effect "
            "with --web.io-threads-pin");
  f.addDuration("web.read-timeout", &o.read_timeout, "Time allowed to receive one whole request, keep-alive idle time included");
  f.addDuration("web.write-timeout", &o.write_timeout, "Time allowed to send one response");
  f.addBytes("web.split-request-bytes", &o.split_request_bytes, "Decompressed size from which a remote-write 1.0 request (to a 1.0 upstream) is decoded, processed and encoded in parts (about 80 KiB each, at most 8) by its I/O thread and another one when one is free (no other request processed, or one and the other thread busy less than 80% of late); 0: never");
  f.addCount("web.max-connections", &o.max_connections, "Maximum simultaneous client connections; more are closed at accept");
  f.addString("web.tls-cert-file", &o.tls_cert_file, "PEM certificate chain for TLS on the listener (with --web.tls-key-file); unset: plain HTTP. Re-read on reload and when the file changes");
  f.addString("web.tls-key-file", &o.tls_key_file, "PEM private key of --web.tls-cert-file");
  f.addString("web.tls-client-ca-file", &o.tls_client_ca_file, "PEM CA bundle; set: clients must present a certificate signed by it (mutual TLS)");
  f.addString("web.auth.bearer-token-file", &o.auth_token_file, "File holding the bearer token senders must present (Authorization: Bearer); every path but /-/healthy and /-/ready then needs credentials");
  f.addString("web.auth.basic-users-file", &o.auth_users_file, "File of basic-auth users, one user:password per line (plain text, # comments); may be combined with the bearer token");
  f.addString("upstream.tls-ca-file", &o.upstream_ca_file, "PEM CA bundle to verify an https:// upstream (default: the system store)");
  f.addString("upstream.tls-cert-file", &o.upstream_cert_file, "PEM client certificate presented to the upstream (with --upstream.tls-key-file)");
  f.addString("upstream.tls-key-file", &o.upstream_key_file, "PEM private key of --upstream.tls-cert-file");
  f.addString("upstream.tls-server-name", &o.upstream_server_name, "Name sent as SNI and verified in the upstream's certificate (default: the URL's host)");
  f.addBool("upstream.tls-insecure-skip-verify", &o.upstream_insecure, "Do not verify the upstream's certificate (insecure; for tests only)");
  f.addString("upstream.bearer-token-file", &o.upstream_token_file, "File holding the bearer token sent to the upstream; re-read on reload");
  f.addString("upstream.basic-auth-user", &o.upstream_basic_user, "Basic-auth user name for the upstream (with --upstream.basic-auth-password-file)");
  f.addString("upstream.basic-auth-password-file", &o.upstream_basic_password_file, "File holding the upstream basic-auth password; re-read on reload");
  f.addString("upstream.url", &o.upstream_url, "Remote-write URL of the receiver to forward to (required), e.g. http://prometheus:9090/api/v1/write");
  f.addString("upstream.protocol", &o.upstream_protocol, "Remote-write protocol spoken to the upstream: v1 (prometheus.WriteRequest, every receiver) or v2 (io.prometheus.write.v2.Request: Prometheus >= 2.54 with the 2.0 message accepted, Mimir, recent Collectors); requests are translated when a sender speaks the other");
  f.addDuration("upstream.timeout", &o.upstream_timeout, "Timeout of one attempt to the upstream");
  f.addBool("upstream.yield-to-local", &o.upstream_yield_local,
            "With a plain-HTTP upstream on a loopback address (a receiver on this host, sharing its CPUs): after "
            "writing a request, the I/O thread yields its CPU so the receiver answers at once rather than after this "
            "thread's time slice; no effect when nothing else waits for the CPU, or for other addresses");
  f.addDuration("upstream.retry-budget", &o.retry_budget, "Total time to deliver one request, retries and backoff included, before answering 503; keep it below your senders' timeout");
  f.addDuration("upstream.backoff-min", &o.backoff_min, "First retry backoff (doubles per attempt, with jitter)");
  f.addDuration("upstream.backoff-max", &o.backoff_max, "Maximum retry backoff");
  f.addCount("upstream.max-in-flight", &o.max_in_flight, "Maximum write requests being processed or forwarded at once; more get 503");
  f.addCount("upstream.max-idle-connections", &o.max_idle_connections, "Idle keep-alive connections kept to the upstream");
  f.addDuration("upstream.retry-after", &o.retry_after, "Retry-After sent with 503 when the upstream gave no hint");
  f.addBytes("limits.max-body-bytes", &o.limits.max_body_bytes, "Maximum compressed request body; larger gets 413");
  f.addBytes("limits.max-decompressed-bytes", &o.limits.max_decompressed_bytes, "Maximum decompressed request, checked from the snappy header before allocating");
  f.addCount("limits.max-series-per-request", &o.limits.max_series_per_request, "Maximum series in one request");
  f.addCount("limits.max-labels-per-series", &o.limits.max_labels_per_series, "Maximum labels on one series");
  f.addBytes("limits.max-label-name-length", &o.limits.max_label_name_bytes, "Maximum bytes in a label name");
  f.addBytes("limits.max-label-value-length", &o.limits.max_label_value_bytes, "Maximum bytes in a label value");
  f.addStringList("rules.file", &o.rule_files, "Rule file (YAML); without one, the built-in rules/default.yaml applies");
  f.addString("sanitize.hmac-key-file", &o.hmac_key_file, "Key for hash redaction (32+ bytes, raw or hex); default: generated into --storage.path/hmac.key");
  f.addBool("dry-run", &o.pipe.dry_run, "Decide and report, but forward series unchanged (redaction stays on)");
  f.addString("log.level", &o.log_level, "Log level: debug, info, warn, error");
  f.addDuration("log.slow-requests", &o.slow_request_log, "Log (warn) every remote-write request answered after at least this long, with the time of each step, the CPU time, involuntary context switches and run-queue wait of its I/O thread, how long the upstream's answer waited for that thread, and its size; 0s: never");
  f.addDuration("shutdown.timeout", &o.shutdown_timeout, "On SIGTERM, time allowed for in-flight requests to finish");
  f.addCount("cache.max-series", &o.pipe.cache_series, "Capacity of the per-series decision cache");
  f.addBytes("cache.plan-memory", &o.pipe.cache_plan_bytes, "Memory for remembered label-set plans (what sanitize, normalize and relabel did to a series, replayed when it repeats); 0 turns them off");
  f.addDuration("aggregation.interval", &o.aggregation_interval, "How often merged series are emitted to the upstream");
  f.addString("storage.path", &o.storage_path, "Directory for state snapshots (merge state)");
  f.addDuration("snapshot.interval", &o.snapshot_interval, "How often state is snapshotted (also on SIGTERM); bounds what a crash loses");
  f.addCount("merge.max-inputs", &o.pipe.merge_max_inputs, "Input series the merge engine tracks (live and recently retired); new ones beyond are refused and counted");
  f.addCount("merge.max-outputs", &o.pipe.merge_max_outputs, "Merged output series; new ones beyond are refused and counted");
  f.addDuration("merge.stale-after", &o.pipe.merge_stale_after, "An input without samples for this long is retired (its contribution stays)");
  f.addCount("merge.queue-max-requests", &o.merge_queue, "Merged-series requests queued for the upstream; the oldest is dropped beyond");
  f.addBool("bench.codec-only", &o.codec_only, "Benchmark baseline: decode, validate, re-encode and forward with no pipeline stage (not for production)");
  f.addBool("cardinality.enabled", &o.pipe.cardinality_enabled, "Run the cardinality engine (automatic keep/normalize/drop decisions per family and label)");
  f.addDuration("cardinality.window", &o.pipe.cardinality_window, "Sliding window of the distinct-value and series estimates");
  f.addCount("cardinality.sub-windows", &o.pipe.cardinality_sub_windows, "Sub-windows the window rolls over in (window / sub-windows each)");
  f.addCount("cardinality.identifier-limit", &o.pipe.cardinality_identifier_limit, "Distinct values of an identifier-shaped label (uuid, hex, token, timestamp, email, ip, unique numbers) before it is dropped");
  f.addCount("cardinality.enum-limit", &o.pipe.cardinality_enum_limit, "Distinct values of a word-like label (routes, countries, versions, small numbers) before it is dropped");
  f.addCount("cardinality.max-series", &o.pipe.cardinality_max_series, "Label sets per family before the label with the most distinct values is dropped (repeated while over)");
  f.addCount("cardinality.max-families", &o.pipe.cardinality_max_families, "Metric families tracked; new ones beyond are forwarded untracked and counted");
  f.addCount("cardinality.max-labels-per-family", &o.pipe.cardinality_max_labels, "Label names tracked per family; more are forwarded untracked and counted");
  f.addBytes("cardinality.max-memory", &o.pipe.cardinality_max_memory, "Memory budget of the cardinality state; over it, idle families without decisions are evicted and new ones refused");
  f.addDuration("cardinality.release-hold", &o.pipe.cardinality_release_hold, "A decision is released after its label stayed below half its limit for this long");
  f.addStringList("upstream.forward-headers", &o.forward_headers, "Request header copied from the sender's request onto the upstream request carrying its series (repeatable or a comma list; case-insensitive; hop-by-hop headers and the ones Cardinal sets are refused)");
  f.addString("tenant.header", &o.tenant_header, "Header naming the tenant, e.g. X-Scope-OrgID: cardinality state, decisions and merged series are kept per tenant and the header is forwarded (empty: one tenant)");
  f.addString("tenant.default", &o.tenant_default, "Tenant of requests without --tenant.header (also sent upstream as its value)");
  f.addCount("tenant.max-tenants", &o.tenant_max, "Tenants kept apart, the default one included; requests of new tenants beyond get 503 and are counted");
  f.addBool("version", &o.version, "Print the version and exit");
  f.addBool("help", &o.help, "Show this help and exit");
}

// What start-up refuses about the TLS and credential flags, as (flag, why): their combinations;
// with `load_files` (`check config`), also the certificates, keys, CA bundles and credential
// files, loaded as start-up loads them (run() loads them itself, through the reloading sources).
std::vector<std::pair<std::string, std::string>> securityProblems(const Options& o, bool upstream_https,
                                                                   bool load_files) {
  std::vector<std::pair<std::string, std::string>> problems;
  const bool listener_tls = !o.tls_cert_file.empty() || !o.tls_key_file.empty();
  if (listener_tls && (o.tls_cert_file.empty() || o.tls_key_file.empty()))
    problems.emplace_back(o.tls_cert_file.empty() ? "web.tls-key-file" : "web.tls-cert-file",
                          "--web.tls-cert-file and --web.tls-key-file go together");
  if (!listener_tls && !o.tls_client_ca_file.empty())
    problems.emplace_back("web.tls-client-ca-file", "needs --web.tls-cert-file and --web.tls-key-file");
  if (!upstream_https) {
    for (const auto& [flag, set] : std::initializer_list<std::pair<const char*, bool>>{
             {"upstream.tls-ca-file", !o.upstream_ca_file.empty()},
             {"upstream.tls-cert-file", !o.upstream_cert_file.empty()},
             {"upstream.tls-key-file", !o.upstream_key_file.empty()},
             {"upstream.tls-server-name", !o.upstream_server_name.empty()},
             {"upstream.tls-insecure-skip-verify", o.upstream_insecure}})
      if (set) problems.emplace_back(flag, "--upstream.tls-* flags need an https:// --upstream.url");
  }
  const char* upstream_auth_flag = !o.upstream_token_file.empty() ? "upstream.bearer-token-file"
                                   : !o.upstream_basic_user.empty() ? "upstream.basic-auth-user"
                                                                    : "upstream.basic-auth-password-file";
  security::UpstreamAuth upstream_auth(o.upstream_token_file, o.upstream_basic_user, o.upstream_basic_password_file);
  const core::Status upstream_auth_flags = upstream_auth.validate();
  const bool upstream_auth_valid = static_cast<bool>(upstream_auth_flags);
  if (!upstream_auth_valid) problems.emplace_back(upstream_auth_flag, upstream_auth_flags.error());
  if (!load_files) return problems;
  // Each file set whose flags are consistent, loaded (so a check reports every problem at once).
  if (!o.tls_cert_file.empty() && !o.tls_key_file.empty())
    if (auto ctx = security::makeServerContext({o.tls_cert_file, o.tls_key_file, o.tls_client_ca_file}); !ctx)
      problems.emplace_back("web.tls-cert-file", ctx.error());
  if (upstream_https)
    if (auto ctx = security::makeClientContext(
            {o.upstream_ca_file, o.upstream_cert_file, o.upstream_key_file, o.upstream_insecure});
        !ctx)
      problems.emplace_back("upstream.tls-ca-file", ctx.error());
  security::IngestAuth ingest_auth(o.auth_token_file, o.auth_users_file);
  if (ingest_auth.enabled())
    if (auto st = ingest_auth.reload(); !st)
      problems.emplace_back(o.auth_token_file.empty() ? "web.auth.basic-users-file" : "web.auth.bearer-token-file",
                            st.error());
  if (upstream_auth_valid && upstream_auth.enabled())
    if (auto st = upstream_auth.reload(); !st) problems.emplace_back(upstream_auth_flag, st.error());
  return problems;
}

int run(Options& o) {
  auto url = upstream::parseUrl(o.upstream_url);
  if (!url) {
    core::logError("invalid --upstream.url", {{"error", url.error()}});
    return 2;
  }
  auto upstream_protocol = codec::parseProtocolName(o.upstream_protocol);
  if (!upstream_protocol) {
    core::logError("invalid --upstream.protocol (want v1 or v2)", {{"value", o.upstream_protocol}});
    return 2;
  }
  // Security: TLS contexts and credential files. Flag combinations first, then the first load,
  // which must succeed (later reloads keep what works).
  const bool listener_tls = !o.tls_cert_file.empty() || !o.tls_key_file.empty();
  const bool upstream_tls = url->scheme == "https";
  if (auto problems = securityProblems(o, upstream_tls, false); !problems.empty()) {
    for (const auto& [flag, why] : problems) core::logError("invalid --" + flag, {{"error", why}});
    return 2;
  }
  security::UpstreamAuth upstream_auth(o.upstream_token_file, o.upstream_basic_user, o.upstream_basic_password_file);
  auto forward_headers = server::parseForwardHeaders(o.forward_headers, "upstream.forward-headers");
  if (!forward_headers) {
    core::logError("invalid --upstream.forward-headers", {{"error", forward_headers.error()}});
    return 2;
  }
  std::string tenant_header;
  if (!o.tenant_header.empty()) {
    auto th = server::parseForwardHeaders({o.tenant_header}, "tenant.header");
    if (!th || th->size() != 1) {
      core::logError("invalid --tenant.header", {{"error", th ? "want exactly one header name" : th.error()}});
      return 2;
    }
    tenant_header = (*th)[0];
    std::erase(*forward_headers, tenant_header);  // forwarded with the tenant's id, once
    if (auto why = pipeline::checkTenantId(o.tenant_default); !why.empty()) {
      core::logError("invalid --tenant.default", {{"error", why}});
      return 2;
    }
    if (o.tenant_max < 1) {
      core::logError("invalid --tenant.max-tenants", {{"error", "must be at least 1"}});
      return 2;
    }
  }
  prometheus::Registry registry;
  security::TlsMetrics tls_metrics(registry);
  security::TlsContextSource listener_tls_source(
      "listener",
      [&] { return security::makeServerContext({o.tls_cert_file, o.tls_key_file, o.tls_client_ca_file}); },
      &tls_metrics.reload_success, &tls_metrics.reload_failure);
  security::TlsContextSource upstream_tls_source(
      "upstream",
      [&] {
        return security::makeClientContext(
            {o.upstream_ca_file, o.upstream_cert_file, o.upstream_key_file, o.upstream_insecure});
      },
      &tls_metrics.upstream_reload_success, &tls_metrics.upstream_reload_failure);
  security::IngestAuth ingest_auth(o.auth_token_file, o.auth_users_file);
  if (listener_tls)
    if (auto st = listener_tls_source.reload(); !st) return 2;
  if (upstream_tls)
    if (auto st = upstream_tls_source.reload(); !st) return 2;
  if (ingest_auth.enabled())
    if (auto st = ingest_auth.reload(); !st) {
      core::logError("cannot load ingest credentials", {{"error", st.error()}});
      return 2;
    }
  if (auto st = upstream_auth.reload(); !st) {
    core::logError("cannot load upstream credentials", {{"error", st.error()}});
    return 2;
  }
  if (upstream_tls && o.upstream_insecure)
    core::logWarn("upstream TLS certificate verification is off (--upstream.tls-insecure-skip-verify)");
  security::CredentialMetrics credential_metrics(registry);
  // Re-reads every security file; "" or the errors. What failed keeps its previous state.
  auto reload_security = [&]() -> std::string {
    std::string errors;
    auto add = [&](const core::Status& st) {
      if (!st) errors += (errors.empty() ? "" : "; ") + st.error();
    };
    if (listener_tls) add(listener_tls_source.reload());
    if (upstream_tls) add(upstream_tls_source.reload());
    if (ingest_auth.enabled()) {
      auto st = ingest_auth.reload();
      if (!st) core::logError("ingest credentials reload failed; keeping the previous ones", {{"error", st.error()}});
      (st ? credential_metrics.ingest_success : credential_metrics.ingest_failure).Increment();
      add(st);
    }
    if (upstream_auth.enabled()) {
      auto st = upstream_auth.reload();
      if (!st) core::logError("upstream credentials reload failed; keeping the previous ones", {{"error", st.error()}});
      (st ? credential_metrics.upstream_success : credential_metrics.upstream_failure).Increment();
      add(st);
    }
    return errors;
  };
  server::ProxyMetrics metrics(registry);
  upstream::ClientMetrics client_metrics(registry);
  rules::RulesMetrics rules_metrics(registry);
  pipeline::RelabelMetrics relabel_metrics(registry);
  pipeline::MergeStageMetrics merge_metrics(registry);
  pipeline::SanitizeMetrics sanitize_metrics(registry);
  pipeline::NormalizeMetrics normalize_metrics(registry);
  upstream::OrderedSenderMetrics merged_sender_metrics(registry);

  if (auto st = core::ensureDirectory(o.storage_path); !st) {
    core::logError("cannot use --storage.path", {{"error", st.error()}});
    return 2;
  }
  auto redactor = pipeline::sanitize::Redactor::loadOrCreate(o.hmac_key_file, o.storage_path);
  if (!redactor) {
    core::logError("cannot set up hash redaction", {{"error", redactor.error()}});
    return 2;
  }
  pipeline::CardinalityMetrics cardinality_metrics(registry);
  // Stages, decision cache, type table, merge and cardinality state: built as the
  // pipeline fuzz target builds them (lib/pipeline/assembly.h).
  pipeline::Assembly assembly(o.pipe, {&relabel_metrics, &merge_metrics, &*redactor, &sanitize_metrics,
                                       &normalize_metrics, &cardinality_metrics});
  auto& merge_state = assembly.merge_state;
  auto& cardinality_state = assembly.cardinality_state;

  // Merge state: restored from the last snapshot, if any.
  const std::string snapshot_path = o.storage_path + "/merge.snapshot";
  if (auto data = core::readFile(snapshot_path); data) {
    if (auto st = merge_state.restore(*data); !st) {
      core::logError("merge snapshot not restored; starting empty", {{"path", snapshot_path}, {"error", st.error()}});
    } else {
      auto stats = merge_state.stats();
      core::logInfo("merge state restored", {{"outputs", std::to_string(stats.outputs)}, {"inputs", std::to_string(stats.inputs)}});
    }
  }
  // Cardinality state: sketches and decisions, restored so a restart does not let raw ids through.
  const std::string cardinality_snapshot_path = o.storage_path + "/cardinality.snapshot";
  if (o.pipe.cardinality_enabled) {
    if (auto data = core::readFile(cardinality_snapshot_path); data) {
      if (auto st = cardinality_state.restore(*data); !st)
        core::logError("cardinality snapshot not restored; starting empty",
                       {{"path", cardinality_snapshot_path}, {"error", st.error()}});
      else
        core::logInfo("cardinality state restored", {{"families", std::to_string(cardinality_state.familyCount())}});
    }
  }
  auto& cache = assembly.cache;
  auto& types = assembly.types;
  // Tenants: the default tenant runs on the objects above (and their snapshot
  // files); the others get their own, snapshotted under storage.path/tenants/.
  std::unique_ptr<pipeline::Tenants> tenants;
  if (!tenant_header.empty()) {
    pipeline::TenantsConfig tcfg;
    tcfg.default_name = o.tenant_default;
    tcfg.max_tenants = o.tenant_max;
    tcfg.cardinality_enabled = o.pipe.cardinality_enabled;
    tcfg.cardinality = pipeline::cardinalityConfig(o.pipe);
    tcfg.merge = pipeline::mergeConfig(o.pipe);
    tcfg.cache_series = o.pipe.cache_series;
    tcfg.cache_plan_bytes = o.pipe.cache_plan_bytes;
    pipeline::Tenant def;
    def.cardinality = o.pipe.cardinality_enabled ? &cardinality_state : nullptr;
    def.merge = &merge_state;
    def.cache = &cache;
    def.types = &types;
    tenants = std::make_unique<pipeline::Tenants>(tcfg, std::move(def));
    for (const auto& p : tenants->restoreSnapshots(o.storage_path)) core::logError("tenant snapshot not restored", {{"error", p}});
    core::logInfo("tenants kept apart", {{"header", tenant_header}, {"default", o.tenant_default},
                                         {"restored", std::to_string(tenants->size() - 1)}});
  }
  // Periodic snapshots run on a thread of their own (below); the last one, at
  // shutdown, on an I/O thread: one at a time.
  std::mutex snapshot_mu;
  auto snapshot = [&] {
    std::lock_guard lock(snapshot_mu);
    auto t0 = std::chrono::steady_clock::now();
    core::Status st;
    if (tenants) {
      st = tenants->writeSnapshots(o.storage_path);
    } else {
      st = core::writeFileAtomic(snapshot_path, merge_state.snapshot());
      if (st && o.pipe.cardinality_enabled) st = core::writeFileAtomic(cardinality_snapshot_path, cardinality_state.snapshot());
    }
    if (!st) core::logError("snapshot failed", {{"error", st.error()}});
    else core::logDebug("snapshot written", {{"ms", std::to_string(std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count())}});
  };

  rules::RulesManager rules(o.rule_files, &rules_metrics);  // no files: the built-in default rules
  if (auto st = rules.reload(); !st) {
    core::logError("invalid rule file", {{"error", st.error()}});
    return 2;
  }
  // One io_context per I/O thread (server/io_pool.h); the first also runs the listener,
  // signals, timers and the merged-series sender.
  server::IoPool io_pool(o.io_threads, o.io_threads_pin, o.io_threads_spread);
  net::io_context& ioc = io_pool.main();

  upstream::ClientConfig ccfg;
  ccfg.url = *url;
  ccfg.attempt_timeout = o.upstream_timeout;
  ccfg.retry_budget = o.retry_budget;
  ccfg.backoff = {o.backoff_min, o.backoff_max};
  ccfg.max_idle_connections = o.max_idle_connections;
  ccfg.user_agent = std::string("cardinal/") + kVersion;
  ccfg.answer_timestamps = o.slow_request_log.count() > 0;  // the slow-request log's answer_wait_ms
  ccfg.yield_to_local_upstream = o.upstream_yield_local;
  if (upstream_tls) {
    ccfg.tls_context = [&upstream_tls_source] { return upstream_tls_source.current(); };
    ccfg.tls_server_name = o.upstream_server_name;
    ccfg.tls_verify = !o.upstream_insecure;
    ccfg.tls_handshake_failures = &tls_metrics.upstream_handshake_failures;
  }
  if (upstream_auth.enabled()) ccfg.authorization = [&upstream_auth] { return upstream_auth.header(); };
  upstream::Client client(ioc, ccfg, &client_metrics);
  // Each I/O thread forwards its requests with a client of its own (its own idle connections,
  // on its own context): no hand-over between threads on the way to the upstream.
  std::vector<std::unique_ptr<upstream::Client>> thread_clients;
  std::vector<upstream::Client*> clients{&client};
  for (size_t i = 1; i < io_pool.size(); ++i) {
    thread_clients.push_back(std::make_unique<upstream::Client>(io_pool.context(i), ccfg, &client_metrics));
    clients.push_back(thread_clients.back().get());
  }

  auto& pipeline = assembly.pipeline;
  auto& explain_pipeline = assembly.explain_pipeline;

  server::WriteConfig wcfg;
  wcfg.limits = o.limits;
  wcfg.max_in_flight = o.max_in_flight;
  wcfg.retry_after_hint = std::chrono::ceil<std::chrono::seconds>(o.retry_after);
  wcfg.dry_run = o.pipe.dry_run;
  wcfg.codec_only = o.codec_only;
  wcfg.upstream_protocol = *upstream_protocol;
  wcfg.forward_headers = *forward_headers;
  wcfg.tenant_header = tenant_header;
  wcfg.split_min_bytes = o.split_request_bytes;
  wcfg.slow_request_log = o.slow_request_log;
  server::WriteHandler write(wcfg, pipeline, rules, types, cache, client, metrics, core::SystemClock::instance());
  write.setMergeState(&merge_state);
  if (o.pipe.cardinality_enabled) write.setCardinalityState(&cardinality_state);
  if (tenants) write.setTenants(tenants.get());
  write.setIoPool(&io_pool, clients);
  server::StatsHandler stats({cardinality_state, explain_pipeline, rules, types, cache, &merge_state,
                              core::SystemClock::instance(), o.pipe.dry_run, tenants.get()});
  upstream::OrderedSender merged_sender(ioc, client,
                                        {o.merge_queue, std::chrono::milliseconds(1000), *upstream_protocol},
                                        &merged_sender_metrics);

  // Periodic emits and snapshots run on a thread of their own, at a lower priority: each takes
  // milliseconds and grows with the state (with the seed workload's state here: an emit 4 ms,
  // a snapshot 12 ms, serializing and syncing files), and an I/O thread held that long delays
  // every request it would have served meanwhile. The state is shared with the I/O threads as
  // before (its own locks).
  net::io_context background(1);
  auto background_work = net::make_work_guard(background);
  std::thread background_thread([&background] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);  // this thread only (Linux)
    background.run();
  });
  // Merged outputs -> in-order queue -> upstream; with tenants, each tenant's
  // in its own requests carrying its header (never two tenants in one body).
  // Periodic emits run on the background thread, the last one at shutdown on an I/O thread:
  // one at a time, so merged samples are queued in timestamp order. Each emit writes the
  // snapshot before its bodies are queued: whatever the upstream ever received is at or below
  // the state a crash restarts from, so a merged counter never goes down across a crash (a
  // downstream rate() would read that as a reset and count the whole value again). A failed
  // snapshot is logged and the bodies are sent all the same.
  std::mutex emit_mu;
  auto emitMerged = [&] {
    std::lock_guard lock(emit_mu);
    const int64_t now = core::SystemClock::instance().nowMillis();
    std::vector<std::pair<std::shared_ptr<const std::string>, upstream::Headers>> bodies;
    if (!tenants) {
      for (auto& body : assembly.emitRequests(now, *upstream_protocol)) bodies.emplace_back(std::move(body), upstream::Headers{});
    } else {
      std::vector<pipeline::merge::MergeState::Emitted> emitted;
      for (pipeline::Tenant* t : tenants->all()) {
        emitted.clear();
        t->merge->emit(now, emitted);
        for (auto& body : pipeline::merge::encodeEmitted(emitted, pipeline::kMergedSeriesPerRequest, *upstream_protocol))
          bodies.emplace_back(std::move(body), upstream::Headers{{tenant_header, t->name}});
      }
    }
    if (bodies.empty()) return;
    snapshot();
    for (auto& [body, headers] : bodies) merged_sender.enqueue(std::move(body), std::move(headers));
  };
  // Every aggregation interval: merged outputs -> in-order queue -> upstream.
  net::steady_timer emit_timer(background);
  std::function<void()> schedule_emit = [&] {
    emit_timer.expires_after(o.aggregation_interval);
    emit_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      emitMerged();
      // Size of the merge state (every tenant's), for the soak's flat-or-not reading.
      double outputs = 0, inputs = 0, tombstones = 0, plans = 0, plan_bytes = 0, replayed = 0, missed = 0;
      auto add = [&](const pipeline::merge::MergeState& m, const pipeline::DecisionCache& c) {
        const auto sizes = m.stats();
        outputs += static_cast<double>(sizes.outputs);
        inputs += static_cast<double>(sizes.inputs);
        tombstones += static_cast<double>(sizes.tombstones);
        plans += static_cast<double>(c.plans.size());
        plan_bytes += static_cast<double>(c.plans.bytes());
        replayed += static_cast<double>(c.plans.replays());
        missed += static_cast<double>(c.plans.misses());
      };
      if (tenants) {
        for (pipeline::Tenant* t : tenants->all()) add(*t->merge, *t->cache);
      } else {
        add(merge_state, cache);
      }
      merge_metrics.state_outputs.Set(outputs);
      merge_metrics.state_inputs.Set(inputs);
      merge_metrics.state_tombstones.Set(tombstones);
      metrics.plan_cache_plans.Set(plans);
      metrics.plan_cache_bytes.Set(plan_bytes);
      // The caches and the spread keep running totals; the counters take what was added since.
      auto catchUp = [](prometheus::Counter& counter, double total) {
        if (total > counter.Value()) counter.Increment(total - counter.Value());
      };
      catchUp(metrics.plan_cache_replayed, replayed);
      catchUp(metrics.plan_cache_missed, missed);
      catchUp(metrics.io_thread_moves, static_cast<double>(io_pool.spread().moves()));
      schedule_emit();
    });
  };
  net::post(background, schedule_emit);  // the timer is the background thread's: armed there too
  net::steady_timer snapshot_timer(background);
  std::function<void()> schedule_snapshot = [&] {
    snapshot_timer.expires_after(o.snapshot_interval);
    snapshot_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      snapshot();
      schedule_snapshot();
    });
  };
  // The timer is the background thread's: armed there too.
  net::post(background, schedule_snapshot);
  // On every way out of main, the background thread is done before what it uses goes.
  struct JoinBackground {
    net::io_context& ctx;
    std::thread& thread;
    ~JoinBackground() {
      ctx.stop();
      thread.join();
    }
  } join_background{background, background_thread};
  // Cardinality maintenance: releases (hysteresis), top-K refresh, memory budget; bounded gauges.
  net::steady_timer maintain_timer(ioc);
  std::function<void()> schedule_maintain = [&] {
    maintain_timer.expires_after(std::chrono::seconds(5));
    maintain_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      // Summed over tenants (bounded label sets: no per-tenant series).
      std::vector<pipeline::cardinality::CardinalityState*> states{&cardinality_state};
      if (tenants) {
        states.clear();
        for (pipeline::Tenant* t : tenants->all())
          if (t->cardinality) states.push_back(t->cardinality);
      }
      double families = 0, memory = 0, untracked = 0, evicted = 0, drop = 0, norm = 0, fold = 0;
      for (auto* st : states) {
        st->maintain(core::SystemClock::instance().nowMillis());
        families += static_cast<double>(st->familyCount());
        memory += static_cast<double>(st->memoryBytes());
        untracked += static_cast<double>(st->untrackedFamilies());
        evicted += static_cast<double>(st->evictedFamilies());
        // Counted by maintain() in its pass over every label (no second walk here).
        const auto [d, n, f] = st->labelsByDecision();
        drop += static_cast<double>(d);
        norm += static_cast<double>(n);
        fold += static_cast<double>(f);
      }
      cardinality_metrics.families.Set(families);
      cardinality_metrics.memory_bytes.Set(memory);
      cardinality_metrics.untracked_families.Set(untracked);
      cardinality_metrics.evicted_families.Set(evicted);
      cardinality_metrics.labels_drop.Set(drop);
      cardinality_metrics.labels_normalize.Set(norm);
      cardinality_metrics.labels_fold.Set(fold);
      schedule_maintain();
    });
  };
  if (o.pipe.cardinality_enabled) schedule_maintain();

  std::atomic<bool> ready{false};
  // SIGHUP and POST /-/reload: rule files and every security file (certificates, keys, CA
  // bundles, tokens, users). The watchers reload each kind when its files change.
  auto reload = [&]() -> std::string {
    auto st = rules.reload();
    std::string errors = st ? std::string() : st.error();
    std::string sec = reload_security();
    if (!sec.empty()) errors += (errors.empty() ? "" : "; ") + sec;
    return errors;
  };
  rules::FileWatcher watcher(o.rule_files, [&] { (void)rules.reload(); });
  if (auto st = watcher.start(); !st) core::logWarn("rule files are not watched; use SIGHUP or /-/reload", {{"error", st.error()}});
  std::vector<std::string> security_files;
  for (const std::string* f : {&o.tls_cert_file, &o.tls_key_file, &o.tls_client_ca_file, &o.auth_token_file,
                               &o.auth_users_file, &o.upstream_ca_file, &o.upstream_cert_file, &o.upstream_key_file,
                               &o.upstream_token_file, &o.upstream_basic_password_file})
    if (!f->empty()) security_files.push_back(*f);
  rules::FileWatcher security_watcher(security_files, [&] { (void)reload_security(); });
  if (!security_files.empty())
    if (auto st = security_watcher.start(); !st)
      core::logWarn("security files are not watched; use SIGHUP or /-/reload", {{"error", st.error()}});
  server::Routes routes({write, registry, metrics, [&] { return ready.load(); }, reload, &stats,
                         ingest_auth.enabled() ? &ingest_auth : nullptr});

  server::ServerConfig scfg;
  scfg.listen_address = o.listen_address;
  scfg.read_timeout = o.read_timeout;
  scfg.request_wait = o.slow_request_log.count() > 0;  // the slow-request log's request_wait_ms
  scfg.write_timeout = o.write_timeout;
  scfg.max_body_bytes = o.limits.max_body_bytes;
  scfg.max_connections = o.max_connections;
  if (listener_tls) {
    scfg.tls_context = [&listener_tls_source] { return listener_tls_source.current(); };
    scfg.tls_handshake_failures = &tls_metrics.handshake_failures;
  }
  server::HttpServer http_server(
      io_pool, scfg, [&routes](server::Request&& req, server::Responder r) { routes.handle(std::move(req), std::move(r)); },
      metrics);
  try {
    http_server.start();
  } catch (const std::exception& e) {
    core::logError("cannot listen", {{"address", o.listen_address}, {"error", e.what()}});
    return 1;
  }

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish within the
  // deadline, exit 0. SIGHUP: reload rule files, certificates and credential files.
  net::signal_set signals(ioc, SIGINT, SIGTERM, SIGHUP);
  net::steady_timer drain_timer(ioc);
  std::chrono::steady_clock::time_point drain_deadline;
  // Shutdown in phases: answer every request already read; emit the merged
  // data pending in the merge state and let the in-order queue deliver it;
  // snapshot; stop. The deadline cuts any phase short (what is not delivered
  // stays in the snapshot or, for queued merged requests, is lost: merged
  // counters are cumulative, so only resolution is lost).
  bool final_emit_done = false;
  std::function<void()> poll_drain;
  auto poll_again = [&] {
    drain_timer.expires_after(milliseconds(20));
    drain_timer.async_wait([&](boost::system::error_code) { poll_drain(); });
  };
  poll_drain = [&] {
    bool late = std::chrono::steady_clock::now() >= drain_deadline;
    if (http_server.busy() > 0 && !late) return poll_again();
    if (!final_emit_done) {
      final_emit_done = true;
      net::post(background, [&] { emit_timer.cancel(); });
      emitMerged();
    }
    if (!merged_sender.idle() && !late) return poll_again();
    if (late)
      core::logWarn("shutdown deadline reached", {{"requests_in_flight", std::to_string(http_server.busy())},
                                                  {"merged_requests_queued", std::to_string(merged_sender.queued())}});
    // The snapshot timer belongs to the background thread: cancelled there, and that thread
    // left to finish (a periodic snapshot under way completes before the last one starts).
    net::post(background, [&] { snapshot_timer.cancel(); });
    background_work.reset();
    maintain_timer.cancel();
    snapshot();
    core::logInfo("stopped");
    io_pool.stop();
  };
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
      signals.async_wait(on_signal);
      return;
    }
    core::logInfo("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                    {"in_flight", std::to_string(http_server.busy())}});
    ready = false;
    http_server.stopAccepting();
    write.startDraining();
    drain_deadline = std::chrono::steady_clock::now() + o.shutdown_timeout;
    poll_drain();
  };
  signals.async_wait(on_signal);

  auto ep = http_server.localEndpoint();
  core::logInfo("cardinal started",
                {{"version", kVersion},
                 {"listen", ep.address().to_string() + ":" + std::to_string(ep.port())},
                 {"upstream", url->scheme + "://" + url->hostHeader() + url->target},
                 {"upstream_protocol", std::string(codec::protocolName(*upstream_protocol))},
                 {"io_threads", std::to_string(o.io_threads) + (o.io_threads_pin                   ? " (pinned)"
                                                                : io_pool.spread().enabled() ? " (spread)"
                                                                                             : "")},
                 {"rule_files", std::to_string(o.rule_files.size())},
                 {"rules", std::to_string(rules.current().rules->rules.size())},
                 {"stages", std::to_string(pipeline.size())},
                 {"dry_run", o.pipe.dry_run ? "true" : "false"},
                 {"tls", listener_tls ? (o.tls_client_ca_file.empty() ? "on" : "on, client certificates required") : "off"},
                 {"auth", ingest_auth.enabled() ? std::string(ingest_auth.bearerEnabled() ? "bearer" : "") +
                                                      (ingest_auth.bearerEnabled() && ingest_auth.basicEnabled() ? "+" : "") +
                                                      (ingest_auth.basicEnabled() ? "basic" : "")
                                                : "off"}});
  ready = true;

  io_pool.run();
  watcher.stop();
  security_watcher.stop();
  return 0;
}

// `cardinal check rules FILE...`: validates rule files offline, promtool-style.
int checkRules(const std::vector<std::string>& files) {
  if (files.empty()) {
    std::cerr << "usage: cardinal check rules FILE...\n";
    return 2;
  }
  int failed = 0;
  for (const auto& f : files) {
    std::cout << "Checking " << f << "\n";
    auto r = rules::loadRuleFiles({f});
    if (r) {
      std::cout << "  SUCCESS: " << (*r)->rules.size() << " rules found\n";
    } else {
      std::cout << "  FAILED:\n" << r.error() << "\n";
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

// `cardinal check config FILE...`: a --config.file read as `cardinal --config.file=FILE` reads it
// (the same FlagSet: unknown keys, values a flag refuses), then what start-up would refuse (the
// required upstream.url, URL, protocol, log level, listen address, HMAC key file) and the rule
// files it names. Exit 0 or 1 with `file:line: what` messages, like `check rules`.
int checkConfig(const std::vector<std::string>& files) {
  if (files.empty()) {
    std::cerr << "usage: cardinal check config FILE...\n";
    return 2;
  }
  int failed = 0;
  for (const auto& file : files) {
    std::cout << "Checking " << file << "\n";
    Options o;
    core::FlagSet flags("cardinal");
    defineFlags(flags, o);
    std::vector<std::string> problems;
    (void)flags.applyYamlFile(file, &problems);
    size_t rule_count = 0;
    if (flags.yamlLoaded()) {
      auto at = [&](const std::string& key) {
        int line = flags.yamlLine(key);
        return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + key + ": ";
      };
      core::LogLevel level;
      if (o.upstream_url.empty())
        problems.push_back(file + ": upstream.url is required (e.g. http://prometheus:9090/api/v1/write)");
      else if (auto url = upstream::parseUrl(o.upstream_url); !url)
        problems.push_back(at("upstream.url") + url.error());
      if (!codec::parseProtocolName(o.upstream_protocol))
        problems.push_back(at("upstream.protocol") + "want v1 or v2, not \"" + o.upstream_protocol + "\"");
      if (!core::parseLogLevel(o.log_level, level))
        problems.push_back(at("log.level") + "want debug, info, warn or error, not \"" + o.log_level + "\"");
      if (auto ep = server::parseListenAddress(o.listen_address); !ep)
        problems.push_back(at("web.listen-address") + ep.error());
      if (!o.hmac_key_file.empty())
        if (auto key = pipeline::sanitize::Redactor::fromKeyFile(o.hmac_key_file); !key)
          problems.push_back(at("sanitize.hmac-key-file") + key.error());
      if (auto fh = server::parseForwardHeaders(o.forward_headers, "upstream.forward-headers"); !fh)
        problems.push_back(at("upstream.forward-headers") + fh.error());
      if (!o.tenant_header.empty()) {
        if (auto th = server::parseForwardHeaders({o.tenant_header}, "tenant.header"); !th || th->size() != 1)
          problems.push_back(at("tenant.header") + (th ? std::string("want exactly one header name") : th.error()));
        if (auto why = pipeline::checkTenantId(o.tenant_default); !why.empty())
          problems.push_back(at("tenant.default") + why);
      }
      auto url = upstream::parseUrl(o.upstream_url);
      for (const auto& [flag, why] : securityProblems(o, url && url->scheme == "https", true))
        problems.push_back(at(flag) + why);
      for (const auto& rf : o.rule_files) {
        auto r = rules::loadRuleFiles({rf});
        if (r) rule_count += (*r)->rules.size();
        else problems.push_back(r.error());
      }
    }
    if (problems.empty()) {
      std::cout << "  SUCCESS: upstream " << o.upstream_url << "; "
                << (o.rule_files.empty() ? std::string("the built-in default rules")
                                         : std::to_string(o.rule_files.size()) + " rule file" +
                                               (o.rule_files.size() == 1 ? "" : "s") + ", " +
                                               std::to_string(rule_count) + " rules")
                << "\n";
    } else {
      std::cout << "  FAILED:\n";
      for (const auto& p : problems) std::cout << p << "\n";
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string_view(argv[1]) == "check" && std::string_view(argv[2]) == "rules")
    return checkRules(std::vector<std::string>(argv + 3, argv + argc));
  if (argc >= 3 && std::string_view(argv[1]) == "check" && std::string_view(argv[2]) == "config")
    return checkConfig(std::vector<std::string>(argv + 3, argv + argc));
  if (argc >= 2 && std::string_view(argv[1]) == "analyze")
    return rules::analyze::analyzeCommand(argc, argv, 2, std::cout, std::cerr);
  Options o;
  core::FlagSet flags("cardinal");
  defineFlags(flags, o);
  std::vector<std::string> positional;
  if (auto st = flags.parse(argc, argv, 1, positional); !st) {
    std::cerr << "cardinal: " << st.error() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << "Cardinal: a Prometheus remote-write proxy that keeps label cardinality and sensitive label "
                 "values out of Prometheus.\n\n"
              << flags.usage()
              << "\nCommands:\n  cardinal check rules FILE...            Validate rule files (exit 0 or 1)\n"
              << "  cardinal check config FILE...           Validate --config.file files and the rule files they name\n"
              << "  cardinal analyze --prometheus.url=URL   Propose rules for a Prometheus' largest families (--help)\n";
    return 0;
  }
  if (o.version) {
    std::cout << "cardinal " << kVersion << "\n";
    return 0;
  }
  if (!positional.empty()) {
    std::cerr << "cardinal: unexpected argument \"" << positional[0] << "\" (see --help)\n";
    return 2;
  }
  if (!o.config_file.empty()) {
    if (auto st = flags.applyYamlFile(o.config_file); !st) {
      std::cerr << "cardinal: " << st.error() << "\n";
      return 2;
    }
  }
  core::LogLevel level;
  if (!core::parseLogLevel(o.log_level, level)) {
    std::cerr << "cardinal: invalid --log.level \"" << o.log_level << "\"\n";
    return 2;
  }
  core::setLogLevel(level);
  if (o.upstream_url.empty()) {
    std::cerr << "cardinal: --upstream.url is required (e.g. http://127.0.0.1:9090/api/v1/write)\n";
    return 2;
  }
  if (o.io_threads == 0) o.io_threads = 1;
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(o);
  } catch (const std::exception& e) {
    core::logError("fatal", {{"error", e.what()}});
    return 1;
  }
}
