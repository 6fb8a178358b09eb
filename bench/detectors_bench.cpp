// Sensitive-value detectors, one core: detect() over seed-like label values.
// The sanitize stage calls it once per unprotected label of each new series
// (results are cached per series), so well-behaved values must cost little.
// Reports time per value (the "per_value" counter).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/sanitize/detectors.h"

namespace {

using cardinal::pipeline::sanitize::detect;
using Values = std::vector<std::pair<std::string, std::string>>;  // label name, value

std::string uuid(std::mt19937_64& rng) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 36; ++i) s += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rng() % 16];
  return s;
}

// What most labels carry: the well-behaved labels.
Values wellBehaved() {
  return {{"method", "GET"},      {"method", "POST"},         {"status", "200"},
          {"status", "404"},      {"code", "503"},            {"handler", "/api/v1/users"},
          {"route", "/api/v1/orders/{id}"}, {"le", "0.005"},  {"le", "0.25"},
          {"le", "+Inf"},         {"job", "checkout"},        {"env", "prod"},
          {"region", "us-east"},  {"version", "1.2.3"},       {"quantile", "0.99"},
          {"__name__", "http_server_request_duration_seconds_bucket"}};
}

// The seed's eight families: uuids, pids, paths with epoch ms, ISO timestamps,
// emails, id-laden paths, SQL; plus env/region/job on every series.
Values seedMix(int n) {
  std::mt19937_64 rng(7);
  Values v;
  for (int i = 0; i < n; ++i) {
    switch (i % 8) {
      case 0: v.emplace_back("user_id", uuid(rng)); break;
      case 1: v.emplace_back("order_id", uuid(rng)); break;
      case 2: v.emplace_back("pid", std::to_string(40000 + rng() % 20000)); break;
      case 3:
        v.emplace_back("file_path", "/tmp/upload/session_" + std::to_string(1691831294000 + i) + "/file.txt");
        break;
      case 4: v.emplace_back("timestamp", "2025-08-12T10:03:" + std::to_string(10 + i % 50) + ".123456Z"); break;
      case 5: v.emplace_back("email", "user" + std::to_string(rng() % 100000) + "@example.com"); break;
      case 6:
        v.emplace_back("path", "/users/u" + std::to_string(rng() % 100000) + "/orders/" + std::to_string(rng() % 1000));
        break;
      default: v.emplace_back("query", "SELECT * FROM orders WHERE id = " + std::to_string(rng() % 100000)); break;
    }
    v.emplace_back("env", "prod");
    v.emplace_back("region", "us-east");
    v.emplace_back("job", "checkout");
  }
  return v;
}

// One of each kind the detectors flag.
Values sensitive() {
  return {{"email", "joao.silva@example.com"},
          {"client", "client 10.1.2.3 connected"},
          {"peer", "[2001:db8::1]:443"},
          {"card", "4111 1111 1111 1111"},
          {"authorization",
           "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
           ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"},
          {"key", "AKIA" "IOSFODNN7EXAMPLE"},
          {"api_key", "Zx9Qe2LmP4vR7tYw1KsD3fGh"},
          {"phone", "+5511987654321"}};
}

void run(benchmark::State& state, const Values& values) {
  size_t flagged = 0;
  for (auto _ : state) {
    for (const auto& [name, value] : values) flagged += detect(name, value).has_value();
    benchmark::DoNotOptimize(flagged);
  }
  state.counters["per_value"] = benchmark::Counter(static_cast<double>(values.size()),
                                                   benchmark::Counter::kIsIterationInvariantRate |
                                                       benchmark::Counter::kInvert);
  state.counters["flagged_share"] =
      static_cast<double>(flagged) / static_cast<double>(values.size() * state.iterations());
}

void BM_DetectWellBehaved(benchmark::State& state) { run(state, wellBehaved()); }
void BM_DetectSeedMix(benchmark::State& state) { run(state, seedMix(2000)); }
void BM_DetectSensitive(benchmark::State& state) { run(state, sensitive()); }

}  // namespace

BENCHMARK(BM_DetectWellBehaved);
BENCHMARK(BM_DetectSeedMix);
BENCHMARK(BM_DetectSensitive);
BENCHMARK_MAIN();
