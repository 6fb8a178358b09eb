// The promtool-style commands beside `cardinal check rules` (issue 8, part 5):
// `cardinal analyze` against a real Prometheus 2.42 fed the seed's families directly (not
// through Cardinal): the rules it proposes load with `cardinal check rules`, drop user_id,
// order_id, pid, timestamp and email, normalize path (url_path), query (sql) and file_path
// (file_path), group a histogram's parts into its family, leave well-behaved families alone and
// never print a label value; and `cardinal check config` on good and bad settings files.
#include <random>
#include <set>

#include <doctest/doctest.h>

#include "harness.h"
#include "test_values.h"

namespace cardinal::integration {
namespace {



struct Expected {
  const char* family;
  const char* label;
  const char* action;      // drop_label or normalize
  const char* normalizer;  // for normalize
};
const Expected kSeed[] = {
    {"checkout_request_latency_seconds", "user_id", "drop_label", ""},
    {"order_payment_failures_total", "order_id", "drop_label", ""},
    {"process_cpu_percent", "pid", "drop_label", ""},
    {"auth_event_count", "timestamp", "drop_label", ""},
    {"user_login_total", "email", "drop_label", ""},
    {"api_request_count", "path", "normalize", "url_path"},
    {"db_query_duration_seconds", "query", "normalize", "sql"},
    {"temp_file_size_bytes", "file_path", "normalize", "file_path"},
};

// The rules of a proposed file, one block of text per `  - name:` entry.
std::vector<std::string> ruleBlocks(const std::string& yaml) {
  std::vector<std::string> out;
  for (size_t at = yaml.find("\n  - name:"); at != std::string::npos;) {
    const size_t next = yaml.find("\n  - name:", at + 1);
    std::string block = yaml.substr(at, next == std::string::npos ? std::string::npos : next - at);
    // Comments between rules belong to the next one.
    if (auto c = block.find("\n  #"); c != std::string::npos) block = block.substr(0, c);
    out.push_back(block);
    at = next;
  }
  return out;
}

bool listHas(const std::string& block, const std::string& label) {
  const auto at = block.find("labels: [");
  if (at == std::string::npos) return false;
  const std::string list = block.substr(at + 9, block.find(']', at) - at - 9);
  for (size_t s = 0; s <= list.size();) {
    size_t e = list.find(',', s);
    if (e == std::string::npos) e = list.size();
    std::string item = list.substr(s, e - s);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    if (item == label) return true;
    s = e + 1;
  }
  return false;
}

}  // namespace

TEST_CASE("analyze: rules proposed from a Prometheus fed the seed's families load and act on the right labels") {
  TempDir dir("cardinal-it-analyze");
  PrometheusServer prom(dir, PrometheusServer::Options{});
  std::mt19937_64 rng(std::random_device{}());
  std::set<std::string> sent_values;

  // Straight into Prometheus: 300 series per seed family, a histogram whose pods are uuids, and a
  // well-behaved family (40 routes x 5 methods x 2 codes, 400 series).
  const int64_t t = nowMs();
  for (int part = 0; part < 3; ++part) {
    prometheus::WriteRequest req;
    for (const auto& f : kSeed)
      for (int k = 0; k < 100; ++k) {
        const int i = part * 100 + k;
        const std::string v = seedValue(f.label, i, rng);
        sent_values.insert(v);
        addSeries(req, {{"__name__", f.family}, {"env", "prod"}, {"region", "us-east"}, {f.label, v}}, {{1, t}});
      }
    for (int k = 0; k < 50; ++k) {
      const std::string pod = randomUuid(rng);
      sent_values.insert(pod);
      for (const char* le : {"0.1", "1", "+Inf"})
        addSeries(req, {{"__name__", "rpc_duration_seconds_bucket"}, {"le", le}, {"pod_uid", pod}}, {{3, t}});
      addSeries(req, {{"__name__", "rpc_duration_seconds_sum"}, {"pod_uid", pod}}, {{0.7, t}});
      addSeries(req, {{"__name__", "rpc_duration_seconds_count"}, {"pod_uid", pod}}, {{3, t}});
    }
    if (part == 0)
      for (int r = 0; r < 40; ++r)
        for (const char* method : {"GET", "POST", "PUT", "DELETE", "PATCH"})
          for (const char* code : {"200", "500"})
            addSeries(req,
                      {{"__name__", "http_requests_total"},
                       {"route", "/api/v1/resource" + std::to_string(r) + "/list"},
                       {"method", method},
                       {"code", code}},
                      {{5, t}});
    const auto res = postRemoteWrite(prom.writeUrl(), req);
    REQUIRE_MESSAGE(res.status == 204, res.summary());
  }

  const std::string bin = CardinalServer::binary();
  const auto run = runCommand(dir, "analyze", {bin, "analyze", "--prometheus.url=" + prom.baseUrl(), "--top=12"});
  INFO(run.summary());
  REQUIRE(run.status.has_value());
  REQUIRE(run.status->code == 0);
  const std::string& yaml = run.out;
  MESSAGE("proposed rules:\n" << yaml);

  // The proposal is a valid rule file.
  dir.writeFile("proposed.yaml", yaml);
  const auto check = runCommand(dir, "check-proposed", {bin, "check", "rules", "proposed.yaml"}, dir.path());
  INFO(check.summary());
  REQUIRE(check.status.has_value());
  CHECK(check.status->code == 0);
  CHECK(check.out.find("SUCCESS") != std::string::npos);

  // Each seed family: its label in a rule for that family with the right action.
  const auto blocks = ruleBlocks(yaml);
  auto findRule = [&](const std::string& family, const std::string& label, const std::string& action) {
    for (const auto& b : blocks)
      if (b.find("match: {metric: \"" + family + "\"}") != std::string::npos &&
          b.find("action: " + action + "\n") != std::string::npos && listHas(b, label))
        return std::optional<std::string>(b);
    return std::optional<std::string>();
  };
  for (const auto& e : kSeed) {
    CAPTURE(e.family);
    CAPTURE(e.label);
    const auto rule = findRule(e.family, e.label, e.action);
    CHECK_MESSAGE(rule, "no " << e.action << " rule for " << e.family << "{" << e.label << "}");
    if (rule && std::string(e.action) == "normalize")
      CHECK(rule->find(std::string("normalizer: ") + e.normalizer + "\n") != std::string::npos);
    // env and region (one value each) are never named.
    for (const auto& b : blocks)
      if (b.find("\"" + std::string(e.family) + "\"}") != std::string::npos) {
        CHECK_FALSE(listHas(b, "env"));
        CHECK_FALSE(listHas(b, "region"));
      }
  }
  const auto rpc = findRule("rpc_duration_seconds", "pod_uid", "drop_label");
  CHECK_MESSAGE(rpc, "the histogram is one family");
  if (rpc) CHECK(rpc->find("merge:") == std::string::npos);  // its parts are counters
  CHECK(yaml.find("rpc_duration_seconds_bucket\"}") == std::string::npos);
  CHECK(findRule("checkout_request_latency_seconds", "user_id", "drop_label")->find("merge: {gauge: avg}") !=
        std::string::npos);
  CHECK(yaml.find("metric: \"http_requests_total\"") == std::string::npos);
  for (const auto& b : blocks) {
    CHECK_FALSE(listHas(b, "le"));
    CHECK_FALSE(listHas(b, "job"));
  }
  // Never a value.
  for (const auto& v : sent_values) {
    if (v.size() < 6) continue;  // pids: five digits could be any count
    CHECK_MESSAGE(yaml.find(v) == std::string::npos, "a label value is in the output: " << v);
  }
  CHECK(yaml.find("@example.com") == std::string::npos);
  CHECK(yaml.find("SELECT") == std::string::npos);

  // The table for people.
  const auto text = runCommand(dir, "analyze-text",
                               {bin, "analyze", "--prometheus.url=" + prom.baseUrl(), "--format=text", "--top=3"});
  INFO(text.summary());
  REQUIRE(text.status.has_value());
  CHECK(text.status->code == 0);
  CHECK(text.out.find("FAMILY / LABEL") != std::string::npos);
  CHECK(text.out.find("drop_label") != std::string::npos);
  CHECK(text.out.find("Reasons:") != std::string::npos);

  // Errors: no Prometheus there (exit 1), no URL or a bad format (exit 2).
  const auto down = runCommand(dir, "analyze-down",
                               {bin, "analyze", "--prometheus.url=http://127.0.0.1:" + std::to_string(freePort())});
  REQUIRE(down.status.has_value());
  CHECK(down.status->code == 1);
  CHECK(down.err.find("/api/v1/status/tsdb") != std::string::npos);
  const auto no_url = runCommand(dir, "analyze-no-url", {bin, "analyze"});
  REQUIRE(no_url.status.has_value());
  CHECK(no_url.status->code == 2);
  CHECK(no_url.err.find("--prometheus.url is required") != std::string::npos);
  const auto bad_format =
      runCommand(dir, "analyze-format", {bin, "analyze", "--prometheus.url=" + prom.baseUrl(), "--format=json"});
  REQUIRE(bad_format.status.has_value());
  CHECK(bad_format.status->code == 2);
}

TEST_CASE("check config: exit 0 on a good settings file, 1 with file:line for every problem") {
  TempDir dir;
  const std::string bin = CardinalServer::binary();
  dir.writeFile("rules.yaml", "rules:\n  - match: {metric: orders_total}\n    action: drop_label\n    labels: [order_id]\n");
  dir.writeFile("broken-rules.yaml", "rules:\n  - name: broken\n    match: {metric: x}\n    action: explode\n");
  dir.writeFile("good.yaml",
                "upstream.url: http://127.0.0.1:9090/api/v1/write\n"
                "upstream.retry-budget: 4s\n"
                "rules.file: [rules.yaml]\n"
                "cardinality.identifier-limit: 200\n"
                "dry-run: true\n");
  auto good = runCommand(dir, "check-config-good", {bin, "check", "config", "good.yaml"}, dir.path());
  INFO(good.summary());
  REQUIRE(good.status.has_value());
  CHECK(good.status->code == 0);
  CHECK(good.out.find("Checking good.yaml") != std::string::npos);
  CHECK(good.out.find("SUCCESS") != std::string::npos);
  CHECK(good.out.find("1 rules") != std::string::npos);

  dir.writeFile("bad.yaml",
                "upstream.retry-budget: 4 seconds\n"   // 1: bad duration
                "upstream.ur: http://x\n"              // 2: unknown key
                "log.level: verbose\n"                 // 3: refused at start-up
                "web.listen-address: nowhere\n"        // 4: no port
                "rules.file: [broken-rules.yaml]\n"    // 5: the rule file's own error
                "limits.max-body-bytes: [1, 2]\n");    // 6: a list for a single value
  auto bad = runCommand(dir, "check-config-bad", {bin, "check", "config", "bad.yaml"}, dir.path());
  INFO(bad.summary());
  REQUIRE(bad.status.has_value());
  CHECK(bad.status->code == 1);
  CHECK(bad.out.find("FAILED") != std::string::npos);
  for (const char* want : {"bad.yaml:1: --upstream.retry-budget: invalid duration", "bad.yaml:2: unknown setting \"upstream.ur\"",
                           "bad.yaml:3: log.level:", "bad.yaml:4: web.listen-address:",
                           "bad.yaml: upstream.url is required", "broken-rules.yaml:4:",
                           "bad.yaml:6: \"limits.max-body-bytes\" takes one value"})
    CHECK_MESSAGE(bad.out.find(want) != std::string::npos, "expected \"" << want << "\"");

  dir.writeFile("bad-url.yaml", "upstream.url: ftp://x/y\nupstream.protocol: v9\n");
  auto bad_url = runCommand(dir, "check-config-url", {bin, "check", "config", "bad-url.yaml", "good.yaml"}, dir.path());
  INFO(bad_url.summary());
  REQUIRE(bad_url.status.has_value());
  CHECK(bad_url.status->code == 1);
  CHECK(bad_url.out.find("bad-url.yaml:1: upstream.url:") != std::string::npos);
  CHECK(bad_url.out.find("bad-url.yaml:2: upstream.protocol:") != std::string::npos);
  CHECK(bad_url.out.find("SUCCESS") != std::string::npos);  // good.yaml still checked

  // TLS and credential flags: what start-up would refuse, their files loaded as start-up does.
  dir.writeFile("users.txt", "alice wonder-land\n");
  dir.writeFile("sec.yaml",
                "upstream.url: http://127.0.0.1:9090/api/v1/write\n"
                "upstream.tls-ca-file: ca.pem\n"          // 2: needs an https:// upstream
                "web.tls-cert-file: cert.pem\n"           // 3: without a key
                "web.auth.basic-users-file: users.txt\n"  // 4: a broken users file
                "upstream.basic-auth-user: bob\n");       // 5: without a password file
  auto sec = runCommand(dir, "check-config-sec", {bin, "check", "config", "sec.yaml"}, dir.path());
  INFO(sec.summary());
  REQUIRE(sec.status.has_value());
  CHECK(sec.status->code == 1);
  for (const char* want : {"sec.yaml:2: upstream.tls-ca-file: --upstream.tls-* flags need an https://",
                           "sec.yaml:3: web.tls-cert-file: --web.tls-cert-file and --web.tls-key-file go together",
                           "sec.yaml:4: web.auth.basic-users-file: users.txt:1: expected user:password",
                           "sec.yaml:5: upstream.basic-auth-user: "})
    CHECK_MESSAGE(sec.out.find(want) != std::string::npos, "expected \"" << want << "\"");
  CHECK(sec.out.find("wonder-land") == std::string::npos);  // a password is never printed
  dir.writeFile("sec2.yaml",
                "upstream.url: https://127.0.0.1:9090/api/v1/write\n"
                "upstream.tls-ca-file: no-ca.pem\n"
                "web.tls-cert-file: no-cert.pem\n"
                "web.tls-key-file: no-key.pem\n");
  auto sec2 = runCommand(dir, "check-config-sec2", {bin, "check", "config", "sec2.yaml"}, dir.path());
  INFO(sec2.summary());
  REQUIRE(sec2.status.has_value());
  CHECK(sec2.status->code == 1);
  CHECK(sec2.out.find("sec2.yaml:2: upstream.tls-ca-file: ") != std::string::npos);
  CHECK(sec2.out.find("sec2.yaml:3: web.tls-cert-file: ") != std::string::npos);

  dir.writeFile("not-yaml.yaml", "upstream.url: [unclosed\n");
  auto not_yaml = runCommand(dir, "check-config-yaml", {bin, "check", "config", "not-yaml.yaml", "missing.yaml"}, dir.path());
  INFO(not_yaml.summary());
  REQUIRE(not_yaml.status.has_value());
  CHECK(not_yaml.status->code == 1);
  CHECK(not_yaml.out.find("not-yaml.yaml:") != std::string::npos);
  CHECK(not_yaml.out.find("missing.yaml: cannot read the file") != std::string::npos);

  auto usage = runCommand(dir, "check-config-usage", {bin, "check", "config"}, dir.path());
  REQUIRE(usage.status.has_value());
  CHECK(usage.status->code == 2);
}

}  // namespace cardinal::integration
