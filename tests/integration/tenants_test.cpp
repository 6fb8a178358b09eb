// Multi-tenant receivers (--tenant.header, --upstream.forward-headers): two real senders scrape
// targets serving the same family (orders_total{order_id}): vmagent with
// -remoteWrite.headers 'X-Scope-OrgID: team-a^^X-Team: a^^X-Private: ...' scrapes order ids that
// churn (ChurnTarget); a Prometheus 2.42 agent scrapes three fixed ids and sends no tenant
// header, so its series belong to the default tenant, "anonymous". (Debian's Prometheus 2.42
// ignores remote_write `headers` altogether, prometheus/prometheus#13030, so it cannot be the
// one that names a tenant.) Through one Cardinal into a recording fake upstream:
//   - every upstream request carries exactly one tenant header, and only that tenant's series
//     (the default tenant's with X-Scope-OrgID: anonymous);
//   - team-a's order_id is dropped and merged (merged series emitted with team-a's header),
//     the default tenant's order_id (few values) is kept exactly;
//   - an allowlisted header is forwarded, one that is not allowlisted is not;
//   - a header value with CR/LF or a control character, or an invalid tenant id, gets 400; a
//     tenant beyond --tenant.max-tenants gets 503 and is counted;
//   - /api/v1/stats?tenant= shows each tenant's own decision, also after a restart (snapshot).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace cardinal::integration {
namespace {

using json = nlohmann::json;

const char* const kFewIds[] = {"3f2a8c1e-5b7d-4e9a-8c21-0d6f4b2e9a17", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                               "9e8d7c6b-5a49-4382-a716-05f4e3d2c1b0"};

// Serves orders_total for three fixed order ids, counting up per scrape.
class FewIdsTarget {
 public:
  FewIdsTarget()
      : server_([this](const HttpRequestRecord&) {
          int n = ++scrapes_;
          std::string body = "# TYPE orders_total counter\n";
          for (const char* id : kFewIds)
            body += std::string("orders_total{order_id=\"") + id + "\",env=\"prod\"} " + std::to_string(n) + "\n";
          HttpReply r = HttpReply::withStatus(200, body);
          r.header("Content-Type", "text/plain; version=0.0.4");
          return r;
        }) {}
  std::string hostPort() const { return server_.hostPort(); }
  int scrapeCount() const { return scrapes_.load(); }

 private:
  std::atomic<int> scrapes_{0};
  HttpServer server_;
};

std::string remoteWriteYaml(const std::string& url) {
  return "remote_write:\n"
         "  - url: " + url + "\n"
         "    queue_config:\n"
         "      min_shards: 1\n"
         "      max_shards: 1\n"
         "      batch_send_deadline: 500ms\n"
         "      min_backoff: 30ms\n"
         "      max_backoff: 500ms\n";
}

size_t countHeader(const HttpHeaders& h, std::string_view name) {
  size_t n = 0;
  for (const auto& [k, v] : h.fields) {
    if (k.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size(); ++i) same = same && std::tolower(k[i]) == std::tolower(name[i]);
    n += same;
  }
  return n;
}

std::optional<std::string> labelValue(const prometheus::TimeSeries& ts, std::string_view name) {
  for (const auto& l : ts.labels())
    if (l.name() == name) return l.value();
  return std::nullopt;
}

// What the upstream received, per tenant header value.
struct Seen {
  size_t requests = 0;
  size_t bad_tenant_header = 0;   // requests without exactly one X-Scope-OrgID
  size_t foreign_series = 0;      // series whose job is not the tenant's
  size_t orders_with_id = 0, orders_merged = 0;
  std::set<std::string> order_ids;
  size_t with_team = 0, wrong_team = 0, with_private = 0;
  std::string problems;
};

std::map<std::string, Seen> inspect(const FakeUpstream& upstream) {
  std::map<std::string, Seen> out;
  for (const auto& r : upstream.requests()) {
    const size_t n = countHeader(r.http.headers, "X-Scope-OrgID");
    const std::string tenant = n == 1 ? *r.http.headers.get("X-Scope-OrgID") : "(none or several)";
    Seen& s = out[tenant];
    ++s.requests;
    if (n != 1) ++s.bad_tenant_header;
    if (countHeader(r.http.headers, "X-Private")) ++s.with_private;
    if (auto team = r.http.headers.get("X-Team")) {
      ++s.with_team;
      if ("team-" + *team != tenant) ++s.wrong_team;
    }
    if (!r.decoded) {
      s.problems += "undecodable request: " + r.decode_error + "\n";
      continue;
    }
    for (const auto& ts : r.decoded->timeseries()) {
      const auto job = labelValue(ts, "job");
      if (!job || "job-" + tenant != *job) {
        ++s.foreign_series;
        s.problems += "series " + labelsToString(labelsOf(ts)) + " in a request of " + tenant + "\n";
      }
      if (labelValue(ts, "__name__") != std::optional<std::string>("orders_total")) continue;
      if (auto id = labelValue(ts, "order_id")) {
        ++s.orders_with_id;
        s.order_ids.insert(*id);
      } else {
        ++s.orders_merged;
      }
    }
  }
  return out;
}

json getJson(const std::string& url) {
  auto res = httpGet(url);
  REQUIRE_MESSAGE(res.status == 200, url << ": " << res.summary());
  return json::parse(res.body);
}

// The decision on orders_total's order_id in one tenant's stats ("" if not there).
std::string orderIdDecision(const json& stats, const std::string& tenant) {
  for (const auto& f : stats.at("data").at("families")) {
    if (f.at("family") != "orders_total") continue;
    CHECK(f.at("tenant") == tenant);
    for (const auto& l : f.at("labels"))
      if (l.at("label") == "order_id") return l.at("decision").get<std::string>();
  }
  return "";
}

}  // namespace

TEST_CASE("tenants: vmagent with X-Scope-OrgID and a Prometheus agent without (default tenant): state, "
          "decisions and merged output kept per tenant; allowlisted headers only; bad header values refused") {
  TempDir dir("cardinal-it-tenants");
  FakeUpstream upstream;
  const auto storage = dir.subdir("cardinal-storage");
  // No rule: the built-in ones name order_id; here only the cardinality engine decides.
  const auto rules = dir.writeFile("rules.yaml", "rules: []\n");
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--rules.file=" + rules.string(), "--tenant.header=X-Scope-OrgID", "--upstream.forward-headers=x-team",
                           "--tenant.max-tenants=3", "--cardinality.identifier-limit=20",
                           "--aggregation.interval=1s", "--storage.path=" + storage.string(),
                           "--snapshot.interval=1m"});
  ChurnTarget churn({20, 4});
  FewIdsTarget few;

  VmAgent vmagent(dir, scrapeConfigYaml("job-team-a", churn.hostPort()), cardinal.writeUrl(),
                  {"-remoteWrite.headers=X-Scope-OrgID: team-a^^X-Team: a^^X-Private: not-for-the-upstream"});
  PrometheusServer::Options b_opts;
  b_opts.name = "agent";
  b_opts.agent = true;
  b_opts.config_yaml = scrapeConfigYaml("job-anonymous", few.hostPort()) + remoteWriteYaml(cardinal.writeUrl());
  PrometheusServer agent(dir, b_opts);
  INFO(describe(vmagent.process()));
  INFO(describe(agent.process()));
  INFO(describe(cardinal.process()));

  // Wait for team-a's merged series (its order_id dropped) and several of the default tenant's scrapes.
  std::map<std::string, Seen> seen;
  const bool arrived = waitUntil(
      [&] {
        seen = inspect(upstream);
        return seen["team-a"].orders_merged >= 3 && seen["anonymous"].orders_with_id >= 3 * 6;
      },
      Millis(40000), Millis(250));
  INFO("upstream requests: " << upstream.requestCount() << "; by tenant header: " << [&] {
    std::string out;
    for (const auto& [t, s] : seen)
      out += "\n  " + t + ": " + std::to_string(s.requests) + " requests, " + std::to_string(s.orders_with_id) +
             " orders with id, " + std::to_string(s.orders_merged) + " merged\n" + s.problems.substr(0, 2000);
    return out;
  }());
  REQUIRE_MESSAGE(arrived, "after " << churn.scrapeCount() << "/" << few.scrapeCount()
                                    << " scrapes: team-a merged orders " << seen["team-a"].orders_merged
                                    << ", anonymous orders " << seen["anonymous"].orders_with_id);
  // Let a few more scrapes pass after the decision.
  const int b_scrapes = few.scrapeCount();
  REQUIRE(waitUntil([&] { return few.scrapeCount() >= b_scrapes + 3; }, Millis(10000)));
  seen = inspect(upstream);
  CHECK_MESSAGE(seen.size() == 2, "tenant header values seen upstream: " << seen.size());
  for (const auto& [tenant, s] : seen) {
    INFO("tenant " << tenant << ":\n" << s.problems);
    CHECK(s.bad_tenant_header == 0);
    CHECK(s.foreign_series == 0);
    CHECK(s.with_private == 0);  // not on the allowlist: never forwarded
    CHECK(s.wrong_team == 0);
    CHECK(s.problems.empty());
  }
  // team-a: many ids arrived before the decision (at 20 distinct), then only merged series.
  const Seen& a = seen["team-a"];
  CHECK(a.orders_merged >= 3);
  CHECK(a.with_team >= 1);  // its forwarded requests carry the allowlisted header
  CHECK_MESSAGE(a.order_ids.size() <= 60, a.order_ids.size() << " raw team-a order ids forwarded");
  // The merged requests are Cardinal's own: they carry the tenant header only, so some team-a
  // requests have no X-Team.
  CHECK(a.with_team < a.requests);
  // The default tenant: the same label with three values is kept, exactly.
  const Seen& b = seen["anonymous"];
  CHECK(b.orders_merged == 0);
  CHECK(b.order_ids == std::set<std::string>(std::begin(kFewIds), std::end(kFewIds)));
  CHECK(b.with_team == 0);  // the agent sent none

  // Stats per tenant.
  const json sa = getJson(cardinal.baseUrl() + "/api/v1/stats?tenant=team-a&family=%5Eorders_total%24");
  const json sb = getJson(cardinal.baseUrl() + "/api/v1/stats?tenant=anonymous&family=%5Eorders_total%24");
  CHECK(orderIdDecision(sa, "team-a") == "drop");
  CHECK(orderIdDecision(sb, "anonymous") == "keep");
  const json all = getJson(cardinal.baseUrl() + "/api/v1/stats?family=%5Eorders_total%24");
  CHECK(all.at("data").at("families").size() == 2);
  CHECK(httpGet(cardinal.baseUrl() + "/api/v1/stats?tenant=team-x").status == 404);

  // Refusals: CR/LF and control characters in a forwarded header, an invalid tenant id, one
  // tenant too many.
  prometheus::WriteRequest req;
  addSeries(req, {{"__name__", "it_tenant_probe"}, {"job", "job-team-b"}}, {{1, nowMs()}});
  const std::string body = encodeWriteRequest(req);
  auto raw_post = [&](const std::string& extra_header_line) {
    std::string bytes = "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                        "X-Prometheus-Remote-Write-Version: 0.1.0\r\nX-Scope-OrgID: team-b\r\n" +
                        extra_header_line + "Content-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
    return rawExchange(cardinal.port(), bytes, false);
  };
  const size_t before = upstream.requestCount();
  for (const std::string& line : {std::string("X-Team: b\rinjected: 1\r\n"), std::string("X-Team: b\x01x\r\n")}) {
    auto r = raw_post(line);
    REQUIRE(r.connected);
    CHECK_MESSAGE(r.received.rfind("HTTP/1.1 400", 0) == 0, r.received.substr(0, 200));
  }
  {
    // Over the length bound (HTTP parses it; Cardinal refuses to forward it).
    auto r = raw_post("X-Team: " + std::string(2000, 'b') + "\r\n");
    CHECK_MESSAGE(r.received.rfind("HTTP/1.1 400", 0) == 0, r.received.substr(0, 200));
    CHECK_MESSAGE(r.received.find("at most 1024") != std::string::npos, r.received.substr(0, 300));
    auto ok = raw_post("X-Team: b\r\n");  // the same request with a clean header goes through
    CHECK_MESSAGE(ok.received.rfind("HTTP/1.1 204", 0) == 0, ok.received.substr(0, 200));
  }
  auto headers = remoteWriteHeaders();
  headers.emplace_back("X-Scope-OrgID", "team/c");
  auto bad_id = httpPost(cardinal.writeUrl(), body, headers);
  CHECK_MESSAGE(bad_id.status == 400, bad_id.summary());
  headers.back().second = "team-c";  // anonymous + team-a + team-b (the probe) = --tenant.max-tenants
  auto too_many = httpPost(cardinal.writeUrl(), body, headers);
  CHECK_MESSAGE(too_many.status == 503, too_many.summary());
  CHECK(too_many.body.find("--tenant.max-tenants") != std::string::npos);
  CHECK(cardinal.metric("cardinal_rejected_requests_total", {{"reason", "tenants"}}).value_or(0) >= 1);
  CHECK(cardinal.metric("cardinal_rejected_requests_total", {{"reason", "header"}}).value_or(0) >= 2);  // long value, bad id
  // Only the clean probe reached the upstream (and the agents' traffic goes on meanwhile).
  size_t probes = 0;
  for (const auto& r : upstream.requests())
    if (r.decoded)
      for (const auto& ts : r.decoded->timeseries()) probes += labelValue(ts, "__name__") == std::optional<std::string>("it_tenant_probe");
  CHECK(probes == 1);
  CHECK(upstream.requestCount() > before);

  // Restart: each tenant's decision comes back from its own snapshot.
  cardinal.stop();
  CHECK(std::filesystem::exists(storage / "tenants" / "team-a" / "cardinality.snapshot"));
  cardinal.restart();
  CHECK(orderIdDecision(getJson(cardinal.baseUrl() + "/api/v1/stats?tenant=team-a&family=%5Eorders_total%24"),
                        "team-a") == "drop");
  CHECK(orderIdDecision(getJson(cardinal.baseUrl() + "/api/v1/stats?tenant=anonymous&family=%5Eorders_total%24"),
                        "anonymous") == "keep");
}

}  // namespace cardinal::integration
