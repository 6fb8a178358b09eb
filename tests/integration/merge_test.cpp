// The merge engine through a real chain (issue 3, "integration through real peers"): a target
// whose orders_total{order_id} series are all new on every scrape and whose histogram's pod
// label keeps changing; a Prometheus agent scrapes it and remote-writes both through Cardinal
// (rules drop order_id and pod) into receiver A and directly into receiver B (the raw stream).
// A must hold one merged series per remaining label set whose values are exactly what the
// raw stream in B adds up to, without resets, also across a SIGTERM + restart of Cardinal.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

constexpr int kIdsPerScrape = 20;
constexpr int kScrapesPerPod = 4;
constexpr int64_t kScrapeIntervalMs = 1000;      // scrapeConfigYaml()
constexpr int64_t kAggregationMs = 2000;         // --aggregation.interval
constexpr int64_t kIncreaseWindowMs = 30 * 1000;  // the issue's increase(orders_total[30s])
// "Within one aggregation interval's worth" of ids.
constexpr double kIncreaseTolerance = kIdsPerScrape * (kAggregationMs / kScrapeIntervalMs);

const char* const kRules = R"(rules:
  - name: order ids
    match: {metric: orders_total}
    action: drop_label
    labels: [order_id]
  - name: pods
    match: {metric: rpc_seconds}
    action: drop_label
    labels: [pod]
)";

// The merged families: metric name -> the label the rule drops.
const std::vector<std::pair<std::string, std::string>> kMergedMetrics = {
    {"orders_total", "order_id"},
    {"rpc_seconds_bucket", "pod"},
    {"rpc_seconds_sum", "pod"},
    {"rpc_seconds_count", "pod"},
};

std::vector<StoredSample> sortedByTime(std::vector<StoredSample> s) {
  std::sort(s.begin(), s.end(),
            [](const StoredSample& a, const StoredSample& b) { return a.timestamp_ms < b.timestamp_ms; });
  return s;
}

// What one input series contributes to its merged counter by time t (DESIGN.md semantics):
// its first value in full, then every increase, a decrease being a reset (the increase is the
// new value). Samples with timestamp < t, or <= t with `inclusive`.
double contribution(const std::vector<StoredSample>& sorted, int64_t t, bool inclusive) {
  double total = 0;
  bool first = true;
  double prev = 0;
  for (const auto& s : sorted) {
    if (s.timestamp_ms > t || (!inclusive && s.timestamp_ms == t)) break;
    const double v = s.number();
    if (first) {
      total += std::max(v, 0.0);
      first = false;
    } else {
      total += v >= prev ? v - prev : std::max(v, 0.0);
    }
    prev = v;
  }
  return total;
}

int decreases(const std::vector<StoredSample>& sorted) {
  int n = 0;
  for (size_t i = 1; i < sorted.size(); ++i) n += sorted[i].number() < sorted[i - 1].number();
  return n;
}

std::string samplesToString(const std::vector<StoredSample>& s, size_t max = 60) {
  std::ostringstream out;
  for (size_t i = 0; i < s.size() && i < max; ++i) out << " " << s[i].value << "@" << s[i].timestamp_ms;
  if (s.size() > max) out << " ...";
  return out.str();
}

// Everything both receivers hold of the merged families, over the whole test.
struct ChainData {
  StoredSeries merged;  // receiver A, by output labels
  StoredSeries raw;     // receiver B, by input labels
  // B receives in scrape order through a single queue: every raw sample older than the newest
  // one it holds has arrived. Merged samples up to here can be checked against it.
  int64_t raw_complete_before = 0;
};

ChainData fetchChain(const PromApi& a, const PromApi& b, int64_t since_ms) {
  const std::string window = std::to_string((nowMs() - since_ms) / 1000 + 30) + "s";
  ChainData d;
  for (const auto& [name, dropped] : kMergedMetrics) {
    for (auto& [labels, samples] : a.rawSamples(name, window)) d.merged[labels] = sortedByTime(samples);
    for (auto& [labels, samples] : b.rawSamples(name, window)) {
      auto sorted = sortedByTime(samples);
      if (!sorted.empty()) d.raw_complete_before = std::max(d.raw_complete_before, sorted.back().timestamp_ms);
      d.raw[labels] = std::move(sorted);
    }
  }
  return d;
}

// Per merged series: every sample (T, v) of A must satisfy C(<T) <= v <= C(<=T), C being the
// sum of the contributions of its raw inputs in B. Cardinal absorbs a prefix of the in-order
// stream before each emission and stamps the output with the newest input timestamp T, so all
// inputs older than T are in v, and nothing newer; v == C(<=T) unless the emission fell in the
// middle of a request. Also: one merged series per output label set, never a decrease.
struct ChainReport {
  std::vector<std::string> problems;
  size_t merged_samples_checked = 0;
  size_t merged_samples_exact = 0;
  size_t raw_series = 0;
  size_t raw_samples = 0;
};

ChainReport checkChain(const ChainData& d) {
  ChainReport r;
  std::map<Labels, std::vector<const std::vector<StoredSample>*>> inputs_of;
  for (const auto& [labels, samples] : d.raw) {
    Labels out = labels;
    for (const auto& [name, dropped] : kMergedMetrics) {
      if (out.at("__name__") == name) out.erase(dropped);
    }
    inputs_of[out].push_back(&samples);
    ++r.raw_series;
    r.raw_samples += samples.size();
  }
  for (const auto& [labels, samples] : d.merged) {
    for (const auto& [name, dropped] : kMergedMetrics) {
      if (labels.at("__name__") == name && labels.count(dropped)) {
        r.problems.push_back("A holds an unmerged series " + labelsToString(labels));
      }
    }
    auto it = inputs_of.find(labels);
    if (it == inputs_of.end()) {
      r.problems.push_back("merged series " + labelsToString(labels) + " has no raw inputs in B");
      continue;
    }
    if (decreases(samples) > 0) {
      r.problems.push_back("merged series " + labelsToString(labels) + " decreases:" +
                           samplesToString(samples));
    }
    for (const auto& s : samples) {
      if (s.timestamp_ms >= d.raw_complete_before) continue;
      double lo = 0, hi = 0;
      for (const auto* in : it->second) {
        lo += contribution(*in, s.timestamp_ms, false);
        hi += contribution(*in, s.timestamp_ms, true);
      }
      ++r.merged_samples_checked;
      const double v = s.number();
      if (v == hi) ++r.merged_samples_exact;
      if (!(lo <= v && v <= hi)) {
        std::ostringstream m;
        m << labelsToString(labels) << " @" << s.timestamp_ms << " = " << s.value
          << ", but the raw inputs in B add up to " << formatDouble(lo) << " before and "
          << formatDouble(hi) << " up to that timestamp";
        r.problems.push_back(m.str());
      }
    }
  }
  for (const auto& [labels, ins] : inputs_of) {
    if (!d.merged.count(labels)) {
      r.problems.push_back("no merged series in A for " + labelsToString(labels) + " (" +
                           std::to_string(ins.size()) + " raw inputs in B)");
    }
  }
  return r;
}

std::string reportProblems(const ChainReport& r, size_t max = 20) {
  std::string out;
  for (size_t i = 0; i < r.problems.size() && i < max; ++i) out += "  " + r.problems[i] + "\n";
  if (r.problems.size() > max) out += "  ... (" + std::to_string(r.problems.size()) + " in all)\n";
  return out;
}

// The merged series A must hold: one per output label set, for the fixture job.
std::set<Labels> expectedOutputs(const Labels& target) {
  std::set<Labels> out;
  Labels orders = target;
  orders["__name__"] = "orders_total";
  orders["env"] = "prod";
  out.insert(orders);
  for (const char* le : ChurnTarget::kBucketBounds) {
    Labels b = target;
    b["__name__"] = "rpc_seconds_bucket";
    b["le"] = le;
    out.insert(b);
  }
  for (const char* name : {"rpc_seconds_sum", "rpc_seconds_count"}) {
    Labels l = target;
    l["__name__"] = name;
    out.insert(l);
  }
  return out;
}

void checkMergedMetrics(const CardinalServer& cardinal, const std::string& when) {
  const std::string m = cardinal.metricsText();
  INFO("Cardinal /metrics " << when);
  const double delivered = metricValue(m, "cardinal_merged_requests_total", {{"outcome", "delivered"}}).value_or(0);
  const double rejected = metricValue(m, "cardinal_merged_requests_total", {{"outcome", "rejected"}}).value_or(0);
  const double dropped =
      metricValue(m, "cardinal_merged_requests_total", {{"outcome", "dropped_queue_full"}}).value_or(0);
  CHECK_MESSAGE(delivered > 0, "no merged request delivered " << when);
  CHECK_MESSAGE(rejected == 0, rejected << " merged requests rejected by receiver A " << when);
  CHECK_MESSAGE(dropped == 0, dropped << " merged requests dropped (queue full) " << when);
  const double all_writes =
      metricValue(m, "cardinal_http_requests_total", {{"handler", "/api/v1/write"}}).value_or(0);
  const double ok_writes =
      metricValue(m, "cardinal_http_requests_total", {{"handler", "/api/v1/write"}, {"code", "204"}})
          .value_or(0);
  CHECK_MESSAGE(ok_writes > 0, "no write request answered 204 " << when);
  CHECK_MESSAGE(all_writes == ok_writes, (all_writes - ok_writes)
                                             << " of the agent's write requests not answered 204 " << when);
  for (const char* result : {"out_of_order", "over_cap", "native_histogram_dropped", "refused"}) {
    const double n = metricValue(m, "cardinal_merge_samples_total", {{"result", result}}).value_or(0);
    CHECK_MESSAGE(n == 0, "cardinal_merge_samples_total{result=\"" << std::string(result) << "\"} = " << n << " " << when);
  }
  MESSAGE("Cardinal " << when << ": merged requests delivered " << delivered << ", write requests "
                      << ok_writes << " (all 204), merge samples absorbed "
                      << metricValue(m, "cardinal_merge_samples_total", {{"result", "absorbed"}}).value_or(0)
                      << ", duplicates "
                      << metricValue(m, "cardinal_merge_samples_total", {{"result", "duplicate"}}).value_or(0)
                      << ", series routed to merge "
                      << metricValue(m, "cardinal_relabel_series_total", {{"action", "merge"}}).value_or(0));
}

// PromQL on A: resets() of every merged counter over the whole test must be 0.
void checkNoResets(const PromApi& a, int64_t since_ms) {
  const std::string window = std::to_string((nowMs() - since_ms) / 1000 + 30) + "s";
  for (const char* expr : {"resets(orders_total[W])", "resets(rpc_seconds_bucket[W])",
                           "resets(rpc_seconds_sum[W])", "resets(rpc_seconds_count[W])"}) {
    std::string q = expr;
    q.replace(q.find('W'), 1, window);
    auto values = a.instantValues(q);
    CHECK_MESSAGE(!values.empty(), q << " on A returned nothing");
    for (const auto& [labels, v] : values) CHECK_MESSAGE(v == 0, q << " on A: " << labelsToString(labels) << " = " << v);
  }
}

// Per timestamp where every bucket of the merged histogram has a sample: counts grow with le.
void checkBucketsMonotonicInLe(const StoredSeries& merged) {
  std::map<int64_t, std::vector<std::pair<double, double>>> by_ts;  // ts -> (le, count)
  for (const auto& [labels, samples] : merged) {
    if (labels.at("__name__") != "rpc_seconds_bucket") continue;
    const double le = std::strtod(labels.at("le").c_str(), nullptr);  // "+Inf" parses as inf
    for (const auto& s : samples) by_ts[s.timestamp_ms].emplace_back(le, s.number());
  }
  size_t complete = 0;
  for (auto& [ts, buckets] : by_ts) {
    if (buckets.size() != std::size(ChurnTarget::kBucketBounds)) continue;
    ++complete;
    std::sort(buckets.begin(), buckets.end());
    for (size_t i = 1; i < buckets.size(); ++i) {
      CHECK_MESSAGE(buckets[i - 1].second <= buckets[i].second,
                    "merged rpc_seconds_bucket @" << ts << ": le=" << buckets[i - 1].first << " has "
                                                  << buckets[i - 1].second << " > le=" << buckets[i].first
                                                  << " with " << buckets[i].second);
    }
  }
  CHECK_MESSAGE(complete > 0, "no timestamp with all merged buckets");
}

TEST_CASE("merge: churning order ids and pods through agent -> Cardinal -> Prometheus, "
          "exact against the raw stream, across SIGTERM + restart") {
  const auto test_start = Clock::now();
  TempDir dir;
  PrometheusServer::Options a_opts;
  a_opts.name = "receiver-a";
  PrometheusServer receiver_a(dir, a_opts);
  PrometheusServer::Options b_opts;
  b_opts.name = "receiver-b-raw";
  PrometheusServer receiver_b(dir, b_opts);

  const auto rules = dir.writeFile("rules.yaml", kRules);
  const auto storage = dir.subdir("cardinal-storage");
  const auto snapshot_file = storage / "merge.snapshot";
  CardinalServer cardinal(dir, receiver_a.writeUrl(),
                          {"--rules.file=" + rules.string(), "--aggregation.interval=2s",
                           "--storage.path=" + storage.string(), "--snapshot.interval=1m"});
  ChurnTarget target({kIdsPerScrape, kScrapesPerPod});

  PrometheusServer::Options agent_opts;
  agent_opts.name = "agent";
  agent_opts.agent = true;
  agent_opts.config_yaml = scrapeConfigYaml("churn", target.hostPort()) +
                           orderedRemoteWriteYaml({cardinal.writeUrl(), receiver_b.writeUrl()});
  const int64_t since_ms = nowMs();
  PrometheusServer agent(dir, agent_opts);
  INFO(describe(agent.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(receiver_a.process()));
  INFO(describe(receiver_b.process()));
  INFO("last body served:\n" << target.lastBody());

  const PromApi a = receiver_a.api();
  const PromApi b = receiver_b.api();
  const Labels target_labels = {{"job", "churn"}, {"instance", target.hostPort()}};
  auto merged_orders = [&] {
    auto s = a.rawSamples("orders_total", "5m");
    return s.empty() ? std::vector<StoredSample>() : sortedByTime(s.begin()->second);
  };

  // ---- Phase 1: about 10 s of scrapes.
  REQUIRE_MESSAGE(waitUntil([&] { return merged_orders().size() >= 5; }, Millis(30000), Millis(250)),
                  "receiver A has " << merged_orders().size() << " merged orders_total samples after "
                                    << target.scrapeCount() << " scrapes");
  {
    ChainData d = fetchChain(a, b, since_ms);
    std::set<Labels> outputs;
    for (const auto& [labels, samples] : d.merged) outputs.insert(labels);
    CHECK_MESSAGE(outputs == expectedOutputs(target_labels),
                  "series in A: " << [&] {
                    std::string s;
                    for (const auto& l : outputs) s += "\n  " + labelsToString(l);
                    return s;
                  }());
    ChainReport r = checkChain(d);
    CHECK_MESSAGE(r.problems.empty(), "before the restart:\n" << reportProblems(r));
    CHECK_MESSAGE(r.merged_samples_checked >= 4, r.merged_samples_checked << " merged samples checked");
    MESSAGE("before the restart: " << target.scrapeCount() << " scrapes; B holds " << r.raw_series
                                   << " raw series; A " << d.merged.size() << " merged series, "
                                   << r.merged_samples_checked << " samples checked, "
                                   << r.merged_samples_exact << " exactly C(<=T)");
    checkMergedMetrics(cardinal, "before SIGTERM");
  }

  // ---- SIGTERM: drains, emits what is pending, snapshots, exits 0.
  const auto before_stop = merged_orders();
  const int64_t stop_ms = nowMs();
  const ExitStatus st = cardinal.stop();
  CHECK_MESSAGE(st.exited, st.toString());
  CHECK_MESSAGE(st.code == 0, st.toString());
  CHECK_MESSAGE(std::filesystem::exists(snapshot_file), snapshot_file << " not written on SIGTERM");
  if (std::filesystem::exists(snapshot_file)) CHECK(std::filesystem::file_size(snapshot_file) > 0);
  const int scrapes_at_stop = target.scrapeCount();
  // Stay down for a few scrapes: the agent has to queue and retry.
  std::this_thread::sleep_for(Millis(2500));
  cardinal.restart();
  const int64_t restart_ms = nowMs();
  CHECK_MESSAGE(cardinal.process().logContents().find("merge state restored") != std::string::npos,
                "the restarted Cardinal did not log that it restored the merge state");

  // ---- Phase 2: until A's merged counter spans more than the 30 s increase() window, with
  // enough samples after the restart.
  auto enough = [&] {
    auto s = merged_orders();
    if (s.size() < 2) return false;
    const auto after = std::count_if(s.begin(), s.end(), [&](const StoredSample& x) { return x.timestamp_ms > restart_ms; });
    return after >= 5 && s.back().timestamp_ms - s.front().timestamp_ms > kIncreaseWindowMs + 2 * kAggregationMs;
  };
  REQUIRE_MESSAGE(waitUntil(enough, Millis(45000), Millis(250)),
                  "A's merged orders_total after the restart:" << samplesToString(merged_orders()));

  ChainData d = fetchChain(a, b, since_ms);
  {
    std::set<Labels> outputs;
    for (const auto& [labels, samples] : d.merged) outputs.insert(labels);
    CHECK_MESSAGE(outputs == expectedOutputs(target_labels), "A holds " << outputs.size() << " merged series");
    ChainReport r = checkChain(d);
    CHECK_MESSAGE(r.problems.empty(), "over the whole test, across the restart:\n" << reportProblems(r));
    MESSAGE("whole test: " << target.scrapeCount() << " scrapes (" << scrapes_at_stop
                           << " before SIGTERM); B holds " << r.raw_series << " raw series, "
                           << r.raw_samples << " samples; A " << d.merged.size() << " merged series, "
                           << r.merged_samples_checked << " samples checked, " << r.merged_samples_exact
                           << " exactly C(<=T)");
    // B really got the raw high-cardinality stream: every id served in the scrapes it holds.
    size_t raw_orders = 0;
    for (const auto& [labels, samples] : d.raw) raw_orders += labels.at("__name__") == "orders_total";
    CHECK_MESSAGE(raw_orders >= static_cast<size_t>(kIdsPerScrape) * 20,
                  "B holds only " << raw_orders << " orders_total series");
  }

  // The counter continued from its level: nothing after the restart below what was there.
  const auto all_orders = merged_orders();
  REQUIRE_FALSE(before_stop.empty());
  double max_before = 0;
  for (const auto& s : all_orders) {
    if (s.timestamp_ms <= stop_ms) max_before = std::max(max_before, s.number());
  }
  for (const auto& s : all_orders) {
    if (s.timestamp_ms > restart_ms) {
      CHECK_MESSAGE(s.number() >= max_before, "after the restart orders_total @" << s.timestamp_ms << " = " << s.value
                                                                                  << " < " << max_before
                                                                                  << " before SIGTERM");
    }
  }
  MESSAGE("merged orders_total:" << samplesToString(all_orders));

  checkNoResets(a, since_ms);
  checkBucketsMonotonicInLe(d.merged);
  // The fixture's pods really restart (raw resets exist), so reset detection was exercised.
  {
    const std::string window = std::to_string((nowMs() - since_ms) / 1000 + 30) + "s";
    double raw_resets = 0;
    for (const auto& [labels, v] : b.instantValues("resets(rpc_seconds_count[" + window + "])")) raw_resets += v;
    CHECK_MESSAGE(raw_resets > 0, "the raw pods in B never reset; the test does not exercise reset detection");
  }

  // The issue's increase(orders_total[30s]) == ids per scrape x scrapes in that window, within
  // one aggregation interval's worth; the window ends at A's newest checkable sample. The ids
  // counted are those served in (t - 30 s, t]: a sample at exactly t - 30 s is the base the
  // increase is measured from.
  int64_t t_eval = 0;
  double v_eval = 0;
  for (const auto& s : all_orders) {
    if (s.timestamp_ms < d.raw_complete_before) {
      t_eval = s.timestamp_ms;
      v_eval = s.number();
    }
  }
  REQUIRE(t_eval > 0);
  size_t served_in_window = 0;
  for (const auto& [labels, samples] : d.raw) {
    if (labels.at("__name__") != "orders_total") continue;
    for (const auto& s : samples) served_in_window += s.timestamp_ms > t_eval - kIncreaseWindowMs && s.timestamp_ms <= t_eval;
  }
  auto inc = a.instantValues("increase(orders_total[30s])", t_eval);
  REQUIRE_MESSAGE(inc.size() == 1, "increase(orders_total[30s]) on A: " << inc.size() << " series");
  const double increase = inc.begin()->second;
  CHECK_MESSAGE(std::abs(increase - static_cast<double>(served_in_window)) <= kIncreaseTolerance,
                "increase(orders_total[30s]) @" << t_eval << " on A = " << increase << ", but B holds "
                                                << served_in_window << " order ids served in that window");
  // Without PromQL's extrapolation: last minus first merged value inside the window.
  double v_first = -1;
  int64_t t_first = 0;
  for (const auto& s : all_orders) {
    if (s.timestamp_ms >= t_eval - kIncreaseWindowMs) {
      v_first = s.number();
      t_first = s.timestamp_ms;
      break;
    }
  }
  size_t served_between = 0;
  for (const auto& [labels, samples] : d.raw) {
    if (labels.at("__name__") != "orders_total") continue;
    for (const auto& s : samples) served_between += s.timestamp_ms > t_first && s.timestamp_ms <= t_eval;
  }
  CHECK_MESSAGE(std::abs(v_eval - v_first - static_cast<double>(served_between)) <= kIdsPerScrape,
                "merged orders_total rose by " << v_eval - v_first << " from @" << t_first << " to @" << t_eval
                                               << ", B holds " << served_between << " ids served in between");
  MESSAGE("increase(orders_total[30s]) on A = " << increase << " vs " << served_in_window
                                                << " ids served in the window (B); last - first = "
                                                << v_eval - v_first << " vs " << served_between
                                                << "; window spans the restart: "
                                                << std::string(t_eval - kIncreaseWindowMs < stop_ms ? "yes" : "no"));
  CHECK_MESSAGE(t_eval - kIncreaseWindowMs < stop_ms, "the 30 s window does not span the restart");

  checkMergedMetrics(cardinal, "after the restart");
  // The restarted process shuts down cleanly too (under TSan a report at exit means code 66).
  const ExitStatus st2 = cardinal.stop();
  CHECK_MESSAGE(st2.exited, st2.toString());
  CHECK_MESSAGE(st2.code == 0, st2.toString());
  MESSAGE("merge case took "
          << std::chrono::duration_cast<Millis>(Clock::now() - test_start).count() << " ms");
}

}  // namespace
}  // namespace cardinal::integration
