// Rule-file reload (issue 3, "Hot reload"): a broken file changes nothing but the reload
// metrics; the inotify watcher, SIGHUP and POST /-/reload pick up good files; the offline
// checker; and reloads every 100 ms while four senders keep writing (run against the TSan build
// in CI).
#include <signal.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

const char* const kRulesA = R"(rules:
  - name: drop a
    match: {metric_regex: "it_reload_a_.*"}
    action: drop
)";

const char* const kRulesB = R"(rules:
  - name: drop b
    match: {metric_regex: "it_reload_b_.*"}
    action: drop
  - name: merge ids
    match: {metric: it_reload_merged_total}
    action: drop_label
    labels: [id]
)";

// Rules A with an unknown action on line 4.
const char* const kRulesBroken = R"(rules:
  - name: drop a
    match: {metric_regex: "it_reload_a_.*"}
    action: explode
)";
constexpr int kBrokenLine = 4;

// Sends it_reload_{a,b,c}_probe{probe="<n>"} and returns the names of those the upstream got
// (the forward is synchronous: after the 204 the upstream has it).
std::set<std::string> probe(const CardinalServer& cardinal, const FakeUpstream& upstream) {
  static int n = 0;
  const std::string id = std::to_string(++n);
  prometheus::WriteRequest req;
  const int64_t t = nowMs();
  for (const char* name : {"it_reload_a_probe", "it_reload_b_probe", "it_reload_c_probe"}) {
    addSeries(req, {{"__name__", name}, {"job", "it"}, {"probe", id}}, {{1, t}});
  }
  auto res = postRemoteWrite(cardinal.writeUrl(), req);
  REQUIRE_MESSAGE(res.status == 204, "probe " << id << ": " << res.summary());
  std::set<std::string> names;
  for (const auto& ts : upstream.allSeries()) {
    Labels l = labelsOf(ts);
    if (l["probe"] == id) names.insert(l["__name__"]);
  }
  return names;
}

const std::set<std::string> kRulesAApplied = {"it_reload_b_probe", "it_reload_c_probe"};
const std::set<std::string> kRulesBApplied = {"it_reload_a_probe", "it_reload_c_probe"};

std::string namesToString(const std::set<std::string>& names) {
  std::string s = "{";
  for (const auto& n : names) s += (s.size() > 1 ? ", " : "") + n;
  return s + "}";
}

void expectForwarded(const std::set<std::string>& got, const std::set<std::string>& want, const std::string& when) {
  CHECK_MESSAGE(got == want, when << ": the upstream got " << namesToString(got) << ", expected "
                                  << namesToString(want));
}

TEST_CASE("reload: a broken file changes nothing but the metric; inotify, SIGHUP and /-/reload "
          "apply good files") {
  TempDir dir;
  FakeUpstream upstream;
  const auto rules_dir = dir.subdir("rules");
  const auto rules = dir.writeFile("rules/rules.yaml", kRulesA);
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--rules.file=" + rules.string(), "--aggregation.interval=1s"});
  INFO(describe(cardinal.process()));

  REQUIRE(cardinal.metric("cardinal_config_last_reload_successful") == 1.0);
  CHECK(cardinal.metric("cardinal_rules_loaded") == 1.0);
  const double ts_start = cardinal.metric("cardinal_config_last_reload_success_timestamp_seconds").value_or(0);
  CHECK(ts_start > 0);
  expectForwarded(probe(cardinal, upstream), kRulesAApplied, "rules A at start-up");

  // Broken file: /-/reload answers 500 naming file:line; nothing else changes.
  dir.writeFile("rules/rules.yaml", kRulesBroken);
  auto res = cardinal.reload();
  CHECK_MESSAGE(res.status == 500, res.summary());
  const std::string where = rules.string() + ":" + std::to_string(kBrokenLine) + ":";
  CHECK_MESSAGE(res.body.find(where) != std::string::npos, "expected \"" << where << "\" in " << res.summary());
  CHECK_MESSAGE(res.body.find("explode") != std::string::npos, res.summary());
  CHECK(cardinal.metric("cardinal_config_last_reload_successful") == 0.0);
  CHECK(cardinal.metric("cardinal_config_last_reload_success_timestamp_seconds") == ts_start);
  CHECK(cardinal.metric("cardinal_rules_loaded") == 1.0);
  expectForwarded(probe(cardinal, upstream), kRulesAApplied, "old rules must stay after a failed reload");
  // The watcher sees the broken write too (after its 200 ms debounce): still nothing changes.
  std::this_thread::sleep_for(Millis(600));
  CHECK(cardinal.metric("cardinal_config_last_reload_successful") == 0.0);
  CHECK(cardinal.metric("cardinal_config_last_reload_success_timestamp_seconds") == ts_start);
  expectForwarded(probe(cardinal, upstream), kRulesAApplied, "old rules must stay after a failed reload");
  CHECK(cardinal.process().running());

  // Fixed in place (like `cat > rules.yaml`), no signal, no POST: the watcher reloads.
  const auto fixed_at = Clock::now();
  dir.writeFile("rules/rules.yaml", kRulesB);
  const bool reloaded = waitUntil(
      [&] { return cardinal.metric("cardinal_config_last_reload_successful") == 1.0; }, Millis(2500), Millis(20));
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - fixed_at);
  REQUIRE_MESSAGE(reloaded, "the inotify watcher did not reload the fixed file within 2.5 s");
  MESSAGE("the watcher reloaded the fixed file after " << took.count() << " ms");
  const double ts_fixed = cardinal.metric("cardinal_config_last_reload_success_timestamp_seconds").value_or(0);
  CHECK(ts_fixed > ts_start);
  CHECK(cardinal.metric("cardinal_rules_loaded") == 2.0);
  expectForwarded(probe(cardinal, upstream), kRulesBApplied, "rules B after the watcher's reload");

  // The new drop_label rule merges: five inputs -> one output, the sum of their values.
  {
    prometheus::WriteRequest req;
    const int64_t t = nowMs();
    for (int id = 1; id <= 5; ++id) {
      addSeries(req, {{"__name__", "it_reload_merged_total"}, {"id", std::to_string(id)}, {"job", "it"}},
                {{10, t}});
    }
    auto r = postRemoteWrite(cardinal.writeUrl(), req);
    REQUIRE_MESSAGE(r.status == 204, r.summary());
    std::vector<std::string> seen;
    bool merged = waitUntil(
        [&] {
          seen.clear();
          for (const auto& ts : upstream.allSeries()) {
            if (labelsOf(ts)["__name__"] != "it_reload_merged_total") continue;
            seen.push_back(labelsToString(labelsOf(ts)) + " " +
                           (ts.samples_size() ? formatDouble(ts.samples(0).value()) : "-"));
          }
          return !seen.empty();
        },
        Millis(5000));
    REQUIRE_MESSAGE(merged, "no merged it_reload_merged_total reached the upstream within 5 s");
    CHECK_MESSAGE(seen.size() == 1, seen.size() << " it_reload_merged_total series forwarded");
    CHECK_MESSAGE(seen.front() == R"({__name__="it_reload_merged_total", job="it"} 50)", seen.front());
  }

  // SIGHUP reloads (same content: the success timestamp moves).
  ::kill(cardinal.process().pid(), SIGHUP);
  CHECK_MESSAGE(waitUntil(
                    [&] {
                      return cardinal.metric("cardinal_config_last_reload_success_timestamp_seconds").value_or(0) >
                             ts_fixed;
                    },
                    Millis(3000), Millis(20)),
                "SIGHUP did not reload within 3 s");
  CHECK(cardinal.metric("cardinal_config_last_reload_successful") == 1.0);

  // Replaced by rename (as editors and config tools do): the watcher reloads too.
  dir.writeFileAtomic("rules/rules.yaml", kRulesA);
  CHECK_MESSAGE(waitUntil([&] { return cardinal.metric("cardinal_rules_loaded") == 1.0; }, Millis(2500), Millis(20)),
                "the inotify watcher did not reload a file replaced by rename within 2.5 s");
  expectForwarded(probe(cardinal, upstream), kRulesAApplied, "rules A after the file was replaced by rename");

  // POST /-/reload of a good file: 200, rules swapped.
  dir.writeFile("rules/rules.yaml", kRulesB);
  res = cardinal.reload();
  CHECK_MESSAGE(res.status == 200, res.summary());
  CHECK(cardinal.metric("cardinal_rules_loaded") == 2.0);
  expectForwarded(probe(cardinal, upstream), kRulesBApplied, "rules B after POST /-/reload");
  CHECK(httpGet(cardinal.baseUrl() + "/-/healthy").status == 200);
}

TEST_CASE("reload: `cardinal check rules` exits 0 on good files, 1 with file:line on bad ones") {
  TempDir dir;
  dir.writeFile("good.yaml", kRulesB);
  dir.writeFile("bad.yaml", kRulesBroken);
  const std::string bin = CardinalServer::binary();

  auto good = runCommand(dir, "check-good", {bin, "check", "rules", "good.yaml"}, dir.path());
  INFO(good.summary());
  REQUIRE(good.status.has_value());
  CHECK(good.status->exited);
  CHECK(good.status->code == 0);
  CHECK(good.out.find("SUCCESS") != std::string::npos);

  auto bad = runCommand(dir, "check-bad", {bin, "check", "rules", "bad.yaml"}, dir.path());
  INFO(bad.summary());
  REQUIRE(bad.status.has_value());
  CHECK(bad.status->exited);
  CHECK(bad.status->code == 1);
  const std::string where = "bad.yaml:" + std::to_string(kBrokenLine) + ":";
  CHECK_MESSAGE(bad.out.find(where) != std::string::npos, "expected \"" << where << "\" on stdout");

  auto both = runCommand(dir, "check-both", {bin, "check", "rules", "good.yaml", "bad.yaml"}, dir.path());
  INFO(both.summary());
  REQUIRE(both.status.has_value());
  CHECK(both.status->code == 1);
  CHECK(both.out.find("SUCCESS") != std::string::npos);
  CHECK(both.out.find(where) != std::string::npos);

  auto missing = runCommand(dir, "check-missing", {bin, "check", "rules", "missing.yaml"}, dir.path());
  INFO(missing.summary());
  REQUIRE(missing.status.has_value());
  CHECK(missing.status->code == 1);
  CHECK(missing.out.find("missing.yaml") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Reload under load

const char* const kLoadRules1 = R"(rules:
  - name: merge by id
    match: {metric: it_load_requests_total}
    action: drop_label
    labels: [id]
  - match: {metric_regex: "it_load_a_.*"}
    action: drop
)";

const char* const kLoadRules2 = R"(protected_labels: [sender]
rules:
  - name: merge by series
    match: {metric: it_load_requests_total}
    action: drop_label
    label_regex: "series|id"
  - name: rooms to floors
    match: {metric: it_load_temperature}
    action: replace
    source_label: room
    regex: "room-(\\d)\\d*"
    replacement: "floor-$1"
    merge: {gauge: avg, quantiles: [0.5, 0.9]}
  - match: {metric_regex: "it_load_b_.*"}
    action: drop
)";

const char* const kLoadRulesBroken = R"(rules:
  - name: merge by id
    match: {metric: it_load_requests_total}
    action: drop_label
    label_regex: "(unclosed"
)";

// The upstream of the load test: classifies every request as it arrives (tens of thousands, so
// nothing is kept). Each write request must be handled under one rule set from start to end:
// under set 1 it_load_a is dropped and it_load_temperature passes unchanged; under set 2
// it_load_b is dropped and it_load_temperature is merged. A forwarded request mixing the two
// saw a half-swapped rule set. it_load_requests_total is merged under both, so it never
// arrives with its `id`; merged requests (Cardinal's own) carry no it_load_plain_total.
class ClassifyingUpstream {
 public:
  ClassifyingUpstream() : server_([this](const HttpRequestRecord& r) { return handle(r); }) {}
  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }

  struct Counts {
    size_t writes_under_set1 = 0, writes_under_set2 = 0, merged_requests = 0, merged_load_series = 0;
    size_t undecodable = 0;
    std::vector<std::string> mixed;  // the first few
  };
  Counts counts() const {
    std::lock_guard lock(mu_);
    return counts_;
  }

 private:
  HttpReply handle(const HttpRequestRecord& req) {
    auto decoded = decodeWriteRequest(req.body);
    std::lock_guard lock(mu_);
    if (!decoded) {
      ++counts_.undecodable;
      return HttpReply::withStatus(400, "undecodable");
    }
    bool plain = false, a = false, b = false, temperature = false, raw_ids = false, merged = false;
    for (const auto& ts : decoded->timeseries()) {
      Labels l = labelsOf(ts);
      const std::string& name = l["__name__"];
      plain |= name == "it_load_plain_total";
      a |= name == "it_load_a_total";
      b |= name == "it_load_b_total";
      temperature |= name == "it_load_temperature" && l["room"].rfind("room-", 0) == 0;
      raw_ids |= name == "it_load_requests_total" && l.count("id") > 0;
      if (name == "it_load_requests_total" && !l.count("id")) {
        merged = true;
        ++counts_.merged_load_series;
      }
    }
    if (!plain) {
      counts_.merged_requests += merged;
      return HttpReply::withStatus(204);
    }
    const bool set1 = b && temperature && !a;
    const bool set2 = a && !b && !temperature;
    counts_.writes_under_set1 += set1;
    counts_.writes_under_set2 += set2;
    if (((!set1 && !set2) || raw_ids) && counts_.mixed.size() < 10) {
      counts_.mixed.push_back(std::string("it_load_a ") + (a ? "present" : "absent") + ", it_load_b " +
                              (b ? "present" : "absent") + ", unmerged it_load_temperature " +
                              (temperature ? "present" : "absent") + ", it_load_requests_total with id " +
                              (raw_ids ? "present" : "absent"));
    }
    return HttpReply::withStatus(204);
  }

  mutable std::mutex mu_;
  Counts counts_;
  HttpServer server_;  // last: destroyed first
};

TEST_CASE("reload under load: reloads every 100 ms while 4 senders write; every request 204") {
  constexpr int kSenders = 4;
  constexpr auto kLoadFor = Millis(10000);
  constexpr auto kReloadEvery = Millis(100);

  TempDir dir;
  ClassifyingUpstream upstream;
  dir.subdir("rules");
  const auto rules = dir.writeFile("rules/rules.yaml", kLoadRules1);
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--rules.file=" + rules.string(), "--aggregation.interval=1s",
                           "--storage.path=" + dir.subdir("storage").string()});
  INFO(describe(cardinal.process()));

  std::atomic<bool> stop{false};
  const auto started = Clock::now();
  std::vector<std::future<std::pair<int, std::vector<std::string>>>> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.push_back(std::async(std::launch::async, [&, s] {
      std::vector<std::string> failures;
      int sent = 0;
      int64_t last_ts = 0;
      while (!stop.load()) {
        const int64_t t = std::max(nowMs(), last_ts + 1);
        last_ts = t;
        prometheus::WriteRequest req;
        const std::string sender = std::to_string(s);
        for (int k = 0; k < 8; ++k) {
          addSeries(req,
                    {{"__name__", "it_load_requests_total"},
                     {"id", std::to_string((sent + k) % 7)},
                     {"job", "load"},
                     {"sender", sender},
                     {"series", std::to_string(k)}},
                    {{static_cast<double>(sent), t}});
          addSeries(req,
                    {{"__name__", "it_load_temperature"},
                     {"job", "load"},
                     {"room", "room-" + std::to_string(k * 7)},
                     {"sender", sender}},
                    {{20.0 + k + (sent % 5), t}});
        }
        addSeries(req, {{"__name__", "it_load_a_total"}, {"job", "load"}, {"sender", sender}},
                  {{static_cast<double>(sent), t}});
        addSeries(req, {{"__name__", "it_load_b_total"}, {"job", "load"}, {"sender", sender}},
                  {{static_cast<double>(sent), t}});
        addSeries(req, {{"__name__", "it_load_plain_total"}, {"job", "load"}, {"sender", sender}},
                  {{static_cast<double>(sent), t}});
        auto res = postRemoteWrite(cardinal.writeUrl(), req, Millis(10000));
        ++sent;
        if (res.status != 204 && failures.size() < 20) {
          failures.push_back("sender " + sender + " request " + std::to_string(sent) + ": " + res.summary());
        }
      }
      return std::make_pair(sent, failures);
    }));
  }

  // The reloader: rewrite (atomically, as editors do) and POST /-/reload every 100 ms,
  // alternating two valid rule sets, every fifth time a broken one; health and /metrics too.
  int reloads = 0, broken = 0;
  std::vector<std::string> reload_failures;
  auto deadline = started + kLoadFor;
  for (int i = 0; Clock::now() < deadline; ++i) {
    const auto iteration_start = Clock::now();
    const bool bad = i % 5 == 4;
    dir.writeFileAtomic("rules/rules.yaml", bad ? kLoadRulesBroken : (i % 2 ? kLoadRules2 : kLoadRules1));
    auto res = cardinal.reload();
    ++reloads;
    broken += bad;
    if (res.status != (bad ? 500 : 200) && reload_failures.size() < 20) {
      reload_failures.push_back("reload " + std::to_string(i) + (bad ? " (broken file)" : "") + ": " +
                                res.summary());
    }
    auto health = httpGet(cardinal.baseUrl() + "/-/healthy", Millis(5000));
    if (health.status != 200 && reload_failures.size() < 20) {
      reload_failures.push_back("healthy after reload " + std::to_string(i) + ": " + health.summary());
    }
    if (i % 3 == 0 && cardinal.metricsText().empty() && reload_failures.size() < 20) {
      reload_failures.push_back("GET /metrics failed after reload " + std::to_string(i));
    }
    std::this_thread::sleep_until(iteration_start + kReloadEvery);
  }
  stop = true;
  int requests = 0;
  std::string failures;
  for (auto& f : senders) {
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    auto [sent, fails] = f.get();
    requests += sent;
    for (const auto& line : fails) failures += line + "\n";
  }
  const auto load_ms = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
  MESSAGE(requests << " write requests from " << kSenders << " senders and " << reloads << " reloads ("
                   << broken << " of broken files) in " << load_ms << " ms");

  CHECK_MESSAGE(failures.empty(), failures);
  std::string rf;
  for (const auto& line : reload_failures) rf += line + "\n";
  CHECK_MESSAGE(reload_failures.empty(), rf);
  CHECK_MESSAGE(reloads >= 50, "only " << reloads << " reloads in " << load_ms << " ms");
  CHECK_MESSAGE(requests >= 100, "only " << requests << " write requests in " << load_ms << " ms");
  CHECK(cardinal.process().running());
  CHECK_MESSAGE(cardinal.sanitizerReport().empty(), cardinal.sanitizerReport());

  // Settles on a good set; merged output reached the upstream and none was refused.
  dir.writeFileAtomic("rules/rules.yaml", kLoadRules1);
  auto res = cardinal.reload();
  CHECK_MESSAGE(res.status == 200, res.summary());
  CHECK(cardinal.metric("cardinal_config_last_reload_successful") == 1.0);
  CHECK(httpGet(cardinal.baseUrl() + "/-/healthy").status == 200);
  CHECK_MESSAGE(waitUntil([&] { return cardinal.metric("cardinal_merged_requests_total", {{"outcome", "delivered"}}).value_or(0) > 0; },
                          Millis(5000)),
                "no merged request delivered");
  CHECK(cardinal.metric("cardinal_merged_requests_total", {{"outcome", "rejected"}}).value_or(0) == 0);
  CHECK_MESSAGE(waitUntil([&] { return upstream.counts().merged_requests > 0; }, Millis(5000)),
                "no merged it_load_requests_total reached the upstream");
  const auto c = upstream.counts();
  std::string m;
  for (const auto& line : c.mixed) m += "  " + line + "\n";
  CHECK_MESSAGE(c.mixed.empty(), "forwarded write requests not handled under one rule set:\n" << m);
  CHECK(c.undecodable == 0);
  CHECK(c.writes_under_set1 > 0);
  CHECK(c.writes_under_set2 > 0);
  MESSAGE("upstream: " << c.writes_under_set1 << " writes under rule set 1, " << c.writes_under_set2
                       << " under set 2, " << c.merged_requests << " merged requests ("
                       << c.merged_load_series << " merged it_load_requests_total series)");

  // A clean exit: under TSan a report at exit would make the exit code 66.
  const ExitStatus st = cardinal.stop();
  CHECK_MESSAGE(st.exited, st.toString());
  CHECK_MESSAGE(st.code == 0, st.toString());
  CHECK_MESSAGE(cardinal.sanitizerReport().empty(), cardinal.sanitizerReport());
}

}  // namespace
}  // namespace cardinal::integration
