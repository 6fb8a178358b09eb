// The cardinality engine end to end (issue 5's "Done when"): with no rule written for them,
// the seed's eight families sent with 1000 fresh ids each store at most 150 series in a real
// Prometheus, well-behaved labels (a few hundred routes, 200 countries, versions, shard
// numbers) are stored exactly as sent, GET /api/v1/stats says what was decided, why and since
// when (and matches docs/stats.schema.json), explain tells one series' story, decisions
// survive a restart, and --dry-run reports the same decisions without acting on them.
#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"
#include "test_values.h"

namespace cardinal::integration {
namespace {

using nlohmann::json;

// A small JSON Schema subset (type, enum, required, properties, additionalProperties: false,
// items, minimum): enough for docs/stats.schema.json. Returns the first problems found.
void validate(const json& schema, const json& v, const std::string& path, std::vector<std::string>& problems) {
  if (problems.size() > 20) return;
  auto typeOk = [&](const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
    if (t == "number") return v.is_number();
    if (t == "null") return v.is_null();
    return false;
  };
  if (schema.contains("type") && !typeOk(schema["type"].get<std::string>())) {
    problems.push_back(path + ": want " + schema["type"].get<std::string>() + ", got " + v.dump().substr(0, 80));
    return;
  }
  if (schema.contains("enum") &&
      std::find(schema["enum"].begin(), schema["enum"].end(), v) == schema["enum"].end())
    problems.push_back(path + ": " + v.dump() + " not in " + schema["enum"].dump());
  if (schema.contains("minimum") && v.is_number() && v.get<double>() < schema["minimum"].get<double>())
    problems.push_back(path + ": " + v.dump() + " below minimum");
  if (v.is_object()) {
    for (const auto& r : schema.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) problems.push_back(path + ": missing " + r.get<std::string>());
    const json props = schema.value("properties", json::object());
    for (const auto& [k, item] : v.items()) {
      if (props.contains(k)) validate(props[k], item, path + "." + k, problems);
      else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false)
        problems.push_back(path + ": unexpected key " + k);
    }
  }
  if (v.is_array() && schema.contains("items"))
    for (size_t i = 0; i < v.size(); ++i) validate(schema["items"], v[i], path + "[" + std::to_string(i) + "]", problems);
}

json statsSchema() {
  std::ifstream in(std::string(CARDINAL_SOURCE_DIR) + "/docs/stats.schema.json");
  REQUIRE_MESSAGE(in, "docs/stats.schema.json not found");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}


struct SeedFamily {
  std::string name;
  std::string label;
  std::string expected;  // decision
  bool counter;
};
const std::vector<SeedFamily>& seedFamilies() {
  static const std::vector<SeedFamily> k = {
      {"checkout_request_latency_seconds", "user_id", "drop", false},
      {"order_payment_failures_total", "order_id", "drop", true},
      {"process_cpu_percent", "pid", "drop", false},
      {"temp_file_size_bytes", "file_path", "normalize", false},
      {"auth_event_count", "timestamp", "drop", false},
      {"user_login_total", "email", "drop", true},
      {"api_request_count", "path", "normalize", false},
      {"db_query_duration_seconds", "query", "normalize", false},
  };
  return k;
}

// Fresh, realistic values for the seed's labels: the i-th value of a run never repeats.
class SeedValues {
 public:
  explicit SeedValues(uint64_t seed) : rng_(seed), tag_(".r" + std::to_string(seed % 100000)) {}
  std::string value(const std::string& label, int i) { return seedValue(label, i, rng_, tag_); }

 private:
  std::mt19937_64 rng_;
  std::string tag_;
};

// The well-behaved population: 1200 series of http_requests_total over 300 routes, 200
// countries, versions and shard numbers, sent in every request with growing counters.
std::vector<Labels> wellBehaved() {
  const char* nouns[] = {"users", "orders", "carts", "items", "payments", "invoices", "sessions", "products",
                         "reviews", "coupons", "shipments", "returns", "accounts", "addresses", "wishlists"};
  const char* verbs[] = {"list", "get", "create", "update", "delete", "search", "export", "import", "archive",
                         "restore", "approve", "reject", "summary", "history", "status", "preview", "validate",
                         "sync", "count", "batch"};
  std::vector<std::string> routes;
  for (auto* n : nouns)
    for (auto* v : verbs) routes.push_back(std::string("/api/v1/") + n + "/" + v);
  std::vector<std::string> countries;
  for (char a = 'A'; a <= 'Z' && countries.size() < 200; ++a)
    for (char b = 'A'; b <= 'Z' && countries.size() < 200; ++b) countries.push_back(std::string{a, b});
  std::set<Labels> out;
  for (size_t i = 0; out.size() < 1200; ++i)
    out.insert({{"__name__", "http_requests_total"},
                {"country", countries[(i * 7) % countries.size()]},
                {"route", routes[(i * 13) % routes.size()]},
                {"shard", std::to_string(i % 128)},
                {"version", "v2." + std::to_string(i % 9) + "." + std::to_string(i % 4)}});
  return {out.begin(), out.end()};
}

Labels labelsFromJson(const json& obj) {
  Labels l;
  for (const auto& [k, v] : obj.items()) l[k] = v.get<std::string>();
  return l;
}

std::vector<std::pair<std::string, std::string>> pairs(const Labels& l) { return {l.begin(), l.end()}; }

size_t storedSeries(const PromApi& api, const std::string& name, int64_t start) {
  return api.series("{__name__=\"" + name + "\"}", start - 60'000, nowMs() + 60'000).at("data").size();
}

json getJson(const std::string& url) {
  auto res = httpGet(url);
  REQUIRE_MESSAGE(res.status == 200, url << ": " << res.summary());
  return json::parse(res.body);
}

}  // namespace

TEST_CASE("cardinality: no rule written: the seed's families are cut by >= 85% in Prometheus, "
          "well-behaved labels are stored exactly, stats explain why and since when") {
  TempDir dir("cardinal-it-cardinality");
  PrometheusServer prom(dir, PrometheusServer::Options{});
  // An empty rule file: the engine alone (plus the built-in detectors, always on).
  const auto rules = dir.writeFile("no-rules.yaml", "rules: []\n");
  CardinalServer cardinal(dir, prom.writeUrl(), {"--rules.file=" + rules.string(), "--aggregation.interval=1s"});
  // Default settings, no rule file: the engine catches what the built-in rules do not name.
  CardinalServer defaults(dir, prom.writeUrl(), {"--aggregation.interval=1s"}, "cardinal-defaults");
  INFO(describe(cardinal.process()));
  const PromApi api = prom.api();
  const auto population = wellBehaved();
  std::random_device rd;
  const uint64_t seed = (static_cast<uint64_t>(rd()) << 32) | rd();
  INFO("random seed " << seed);
  SeedValues values(seed);
  std::mt19937_64 rng(seed);

  constexpr int kRequests = 10, kFreshPerRequest = 100;
  const int64_t start = nowMs();
  int64_t last_t = 0;
  auto send = [&](CardinalServer& to, int request, int fresh, bool with_population) {
    prometheus::WriteRequest req;
    const int64_t t = std::max(nowMs(), last_t + 1);
    last_t = t;
    for (const auto& f : seedFamilies())
      for (int k = 0; k < fresh; ++k) {
        const int i = request * fresh + k;
        addSeries(req, {{"__name__", f.name}, {"env", "prod"}, {"region", "us-east"}, {f.label, values.value(f.label, i)}},
                  {{f.counter ? 1.0 : 0.25 + (i % 10) / 10.0, t}});
      }
    if (with_population)
      for (size_t k = 0; k < population.size(); ++k)
        addSeries(req, pairs(population[k]), {{static_cast<double>(request * 10 + k % 7), t}});
    auto res = postRemoteWrite(to.writeUrl(), req);
    REQUIRE_MESSAGE(res.status == 204, "request " << request << ": " << res.summary());
  };
  for (int r = 0; r < kRequests; ++r) {
    send(cardinal, r, kFreshPerRequest, true);
    prometheus::WriteRequest req;  // the default-settings proxy: a label no built-in rule names
    for (int k = 0; k < kFreshPerRequest; ++k)
      addSeries(req, {{"__name__", "support_ticket_events_total"}, {"env", "prod"}, {"ticket_ref", randomUuid(rng)}},
                {{1.0, last_t}});
    REQUIRE(postRemoteWrite(defaults.writeUrl(), req).status == 204);
    std::this_thread::sleep_for(Millis(200));
  }

  // Merged outputs are emitted every second with the newest input's timestamp.
  bool emitted = waitUntil(
      [&] {
        for (const auto& f : seedFamilies()) {
          bool found = false;
          for (const auto& [labels, samples] : api.rawSamples(f.name, "5m"))
            for (const auto& s : samples) found = found || s.timestamp_ms == last_t;
          if (!found) return false;
        }
        return true;
      },
      Millis(20000), Millis(300));
  CHECK_MESSAGE(emitted, "merged outputs did not reach Prometheus within 20 s");

  // 1. Each seed family: 1000 fresh ids sent, at most 150 series stored.
  const int sent = kRequests * kFreshPerRequest;
  for (const auto& f : seedFamilies()) {
    CAPTURE(f.name);
    const size_t stored = storedSeries(api, f.name, start);
    MESSAGE(f.name << ": " << sent << " series sent, " << stored << " stored");
    CHECK(stored >= 1);
    CHECK(stored <= 150);
  }
  CHECK(storedSeries(api, "support_ticket_events_total", start) <= 150);

  // 2. Well-behaved series: stored exactly as sent, no more, no fewer.
  {
    std::set<Labels> stored;
    const json found = api.series("{__name__=\"http_requests_total\"}", start - 60'000, nowMs() + 60'000);
    for (const auto& s : found.at("data")) stored.insert(labelsFromJson(s));
    const std::set<Labels> want(population.begin(), population.end());
    std::string diff;
    for (const auto& l : want)
      if (!stored.count(l) && diff.size() < 2000) diff += "missing " + labelsToString(l) + "\n";
    for (const auto& l : stored)
      if (!want.count(l) && diff.size() < 4000) diff += "unexpected " + labelsToString(l) + "\n";
    CHECK_MESSAGE(stored == want, stored.size() << " stored, " << want.size() << " sent\n" << diff);
    const auto samples = api.rawSamples("http_requests_total", "5m");
    size_t complete = 0;
    for (const auto& [l, s] : samples) complete += s.size() == static_cast<size_t>(kRequests);
    CHECK(complete == population.size());
  }

  // 3. Stats: schema, decisions, reasons, since; nothing sensitive in it.
  const auto stats_res = httpGet(cardinal.baseUrl() + "/api/v1/stats?limit=100&labels=8&top=5");
  REQUIRE(stats_res.status == 200);
  CHECK(stats_res.headers.get("Content-Type").value_or("") == "application/json");
  const json stats = json::parse(stats_res.body);
  {
    std::vector<std::string> problems;
    validate(statsSchema(), stats, "$", problems);
    CHECK_MESSAGE(problems.empty(), "stats JSON does not match docs/stats.schema.json:\n" << [&] {
      std::string s;
      for (const auto& p : problems) s += p + "\n";
      return s;
    }());
  }
  CHECK(stats_res.body.find("@example.com") == std::string::npos);
  std::map<std::string, json> by_family;
  for (const auto& f : stats["data"]["families"]) by_family[f["family"].get<std::string>()] = f;
  for (const auto& f : seedFamilies()) {
    CAPTURE(f.name);
    REQUIRE(by_family.count(f.name));
    const json& fam = by_family[f.name];
    CHECK(fam["samples_in"].get<uint64_t>() >= static_cast<uint64_t>(sent));
    CHECK(fam["samples_rewritten"].get<uint64_t>() > 0);
    bool found = false;
    for (const auto& l : fam["labels"]) {
      const std::string name = l["label"];
      if (name == "env" || name == "region") {
        CHECK(l["decision"] == "keep");
        continue;
      }
      if (name != f.label) continue;
      found = true;
      CHECK(l["decision"] == f.expected);
      CHECK(l["enforced"] == true);
      CHECK_FALSE(l["reason"].get<std::string>().empty());
      CHECK(l["since"].get<std::string>().size() == 24);  // 2026-11-26T16:00:00.000Z
      CHECK(l["distinct_estimate"].get<double>() >= 0.9 * sent);
      MESSAGE(f.name << "{" << name << "}: " << l["decision"].get<std::string>() << " since "
                     << l["since"].get<std::string>() << ": " << l["reason"].get<std::string>());
    }
    CHECK_MESSAGE(found, f.label << " not in the stats");
  }
  CHECK(by_family.count("http_requests_total"));
  for (const auto& l : by_family["http_requests_total"]["labels"]) CHECK(l["decision"] == "keep");
  // Filters and bounds.
  {
    const json only = getJson(cardinal.baseUrl() + "/api/v1/stats?decision=normalize&sort=family");
    std::vector<std::string> names;
    for (const auto& f : only["data"]["families"]) names.push_back(f["family"]);
    CHECK(names == std::vector<std::string>{"api_request_count", "db_query_duration_seconds", "temp_file_size_bytes"});
    const json one = getJson(cardinal.baseUrl() + "/api/v1/stats?limit=1");
    CHECK(one["data"]["families"].size() == 1);
    CHECK(one["data"]["truncated"] == true);
    // Totals are over every family, whatever the filters.
    const json all = getJson(cardinal.baseUrl() + "/api/v1/stats");
    const json filtered = getJson(cardinal.baseUrl() + "/api/v1/stats?family=^user_login_total$");
    CHECK(filtered["data"]["families"].size() == 1);
    CHECK(filtered["data"]["totals"]["labels_by_decision"] == all["data"]["totals"]["labels_by_decision"]);
    CHECK(all["data"]["totals"]["labels_by_decision"]["drop"].get<uint64_t>() >= 5);
    CHECK(httpGet(cardinal.baseUrl() + "/api/v1/stats?sort=nope").status == 400);
    CHECK(httpGet(cardinal.baseUrl() + "/api/v1/stats?family=(").status == 400);
  }

  // 4. Explain one series.
  {
    const std::string sel = "checkout_request_latency_seconds{env=\"prod\",region=\"us-east\",user_id=\"" + randomUuid(rng) + "\"}";
    const json ex = getJson(cardinal.baseUrl() + "/api/v1/stats/explain?series=" + urlEncode(sel));
    const json& out = ex["data"]["output"];
    CHECK_FALSE(out.contains("user_id"));
    CHECK(out["env"] == "prod");
    bool user_id_dropped = false;
    for (const auto& l : ex["data"]["cardinality"]["labels"])
      if (l["label"] == "user_id") user_id_dropped = l["decision"] == "drop" && !l["reason"].get<std::string>().empty();
    CHECK(user_id_dropped);
    CHECK(httpGet(cardinal.baseUrl() + "/api/v1/stats/explain?series=" + urlEncode("x{a=")).status == 400);
  }

  // 5. /metrics stays bounded: no label per user metric name.
  {
    const std::string metrics = cardinal.metricsText();
    CHECK(metrics.find("checkout_request_latency_seconds") == std::string::npos);
    CHECK(cardinal.metric("cardinal_cardinality_labels", {{"decision", "drop"}}).value_or(0) >= 0);
  }

  // 6. A restart keeps the decisions (snapshot on SIGTERM): fresh ids do not get through.
  const size_t before = storedSeries(api, "checkout_request_latency_seconds", start);
  cardinal.stop();
  cardinal.restart();
  send(cardinal, kRequests, 50, false);
  std::this_thread::sleep_for(Millis(2500));
  const size_t after = storedSeries(api, "checkout_request_latency_seconds", start);
  CHECK_MESSAGE(after <= before + 1, "after a restart " << after - before << " new checkout series were stored");
}

TEST_CASE("cardinality: --dry-run reports the same decisions and forwards every series unchanged") {
  TempDir dir("cardinal-it-cardinality-dry");
  PrometheusServer prom(dir, PrometheusServer::Options{});
  const auto rules = dir.writeFile("no-rules.yaml", "rules: []\n");
  CardinalServer cardinal(dir, prom.writeUrl(), {"--rules.file=" + rules.string(), "--dry-run"});
  const PromApi api = prom.api();
  std::mt19937_64 rng(11);
  const int64_t start = nowMs();
  for (int r = 0; r < 3; ++r) {
    prometheus::WriteRequest req;
    for (int k = 0; k < 100; ++k)
      addSeries(req, {{"__name__", "checkout_request_latency_seconds"}, {"env", "prod"}, {"user_id", randomUuid(rng)}},
                {{0.3, nowMs()}});
    REQUIRE(postRemoteWrite(cardinal.writeUrl(), req).status == 204);
  }
  CHECK(waitUntil([&] { return storedSeries(api, "checkout_request_latency_seconds", start) == 300; }, Millis(10000)));
  const json stats = getJson(cardinal.baseUrl() + "/api/v1/stats");
  CHECK(stats["data"]["dry_run"] == true);
  bool would_drop = false;
  for (const auto& f : stats["data"]["families"])
    for (const auto& l : f["labels"])
      if (l["label"] == "user_id") would_drop = l["decision"] == "drop" && l["enforced"] == false && f["mode"] == "dry-run";
  CHECK(would_drop);
  CHECK(cardinal.metric("cardinal_cardinality_series_total", {{"result", "would_rewrite"}}).value_or(0) > 0);
  CHECK(cardinal.metric("cardinal_cardinality_series_total", {{"result", "rewritten"}}).value_or(0) == 0);
}

}  // namespace cardinal::integration
