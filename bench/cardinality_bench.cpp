// Sketches of the cardinality engine, one core: what one label value costs on the way in
// (WindowedDistinct::add sparse and dense, SeenFilter::testAndSet, classifyValue,
// SpaceSaving::add) and what a decision costs (WindowedDistinct::estimate, dense).
// Counters: "per_op" is the time per operation.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/hash.h"
#include "pipeline/cardinality/sketch/seen_filter.h"
#include "pipeline/cardinality/sketch/space_saving.h"
#include "pipeline/cardinality/sketch/value_shape.h"
#include "pipeline/cardinality/sketch/windowed_distinct.h"

namespace {

using namespace cardinal::pipeline::cardinality;
using cardinal::core::hashBytes;

constexpr int64_t kT0 = 1'700'000'000'000;

std::vector<uint64_t> hashes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> v(n);
  for (auto& h : v) h = rng();
  return v;
}

void perOp(benchmark::State& state, size_t ops_per_iteration) {
  state.counters["per_op"] = benchmark::Counter(static_cast<double>(ops_per_iteration),
                                                benchmark::Counter::kIsIterationInvariantRate |
                                                    benchmark::Counter::kInvert);
}

// A label with 100 live values (below the sparse limit): every add is a binary search.
void BM_WindowedDistinctAddSparse(benchmark::State& state) {
  const auto hs = hashes(100, 1);
  WindowedDistinct w{WindowConfig{}};
  int64_t now = kT0;
  for (auto _ : state) {
    for (uint64_t h : hs) benchmark::DoNotOptimize(w.add(h, now));
    now += 1000;  // a sub-window roll-over every 300 iterations
  }
  perOp(state, hs.size());
}

// A high-cardinality label, dense: mix64, one register, a slot check.
void BM_WindowedDistinctAddDense(benchmark::State& state) {
  const auto hs = hashes(1 << 16, 2);
  WindowedDistinct w{WindowConfig{}};
  int64_t now = kT0;
  for (auto _ : state) {
    for (uint64_t h : hs) benchmark::DoNotOptimize(w.add(h, now));
    now += 30'000;
  }
  perOp(state, hs.size());
}

// The estimate over a full window of 12 dense sub-windows at precision Arg.
void BM_WindowedDistinctEstimateDense(benchmark::State& state) {
  WindowConfig cfg;
  cfg.precision = static_cast<uint8_t>(state.range(0));
  WindowedDistinct w(cfg);
  const auto hs = hashes(1 << 17, 3);
  for (size_t i = 0; i < hs.size(); ++i) w.add(hs[i], kT0 + static_cast<int64_t>(i % 12) * cfg.sub_window_ms);
  const int64_t now = kT0 + 11 * cfg.sub_window_ms;
  for (auto _ : state) benchmark::DoNotOptimize(w.estimate(now));
  state.counters["memory_bytes"] = static_cast<double>(w.memoryBytes());
}

// New-series check on 1 Mbit filters (capacity ~109k series): a stream where 90 % of the series
// repeat (6000 of them) and 10 % are new in every iteration, so the filters fill up and rotate by
// themselves every ~17 iterations, as under churn.
void BM_SeenFilterTestAndSet(benchmark::State& state) {
  static SeenFilter* filter = nullptr;
  if (state.thread_index() == 0) filter = new SeenFilter(1 << 20);
  const auto hs = hashes(1 << 16, 4 + static_cast<uint64_t>(state.thread_index()));
  std::vector<uint64_t> stream;
  std::vector<uint64_t> salt_mask;  // all ones for the new series, which change every iteration
  for (size_t i = 0; i < hs.size(); ++i) {
    const bool fresh = i % 10 == 0;
    stream.push_back(fresh ? hs[i] : hs[i % 6000]);
    salt_mask.push_back(fresh ? ~uint64_t{0} : 0);
  }
  size_t seen = 0;
  uint64_t salt = 0;
  for (auto _ : state) {
    salt += 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < stream.size(); ++i) seen += filter->testAndSet(stream[i] ^ (salt & salt_mask[i]));
  }
  perOp(state, stream.size());
  state.counters["seen_share"] = benchmark::Counter(static_cast<double>(seen) / static_cast<double>(stream.size()),
                                                    benchmark::Counter::kAvgIterations);
  if (state.thread_index() == 0) {
    state.counters["rotations"] = static_cast<double>(filter->rotations());
    delete filter;
  }
}

// The seed's values and the well-behaved ones, as the engine sees them per new value.
void BM_ClassifySeedValues(benchmark::State& state) {
  const std::vector<std::string> values = {"550e8400-e29b-41d4-a716-446655440000",
                                           "48291",
                                           "/tmp/upload/session_1691831294000/file.txt",
                                           "2025-08-12T10:03:42.123456Z",
                                           "1691831294000",
                                           "joao.silva@example.com",
                                           "/users/abc123/orders/456",
                                           "SELECT * FROM orders WHERE id = 12345",
                                           "h:0123456789abcdef",
                                           "deadbeef01",
                                           "10.1.2.3",
                                           "2001:db8::1",
                                           "GET",
                                           "us-east",
                                           "v1.2.3",
                                           "checkout",
                                           "BR",
                                           "200",
                                           "Zx9Qe2LmP4vR7tYw1KsD3fGh"};
  size_t identifiers = 0;
  for (auto _ : state)
    for (const auto& v : values) identifiers += isIdentifierShape(classifyValue(v));
  benchmark::DoNotOptimize(identifiers);
  perOp(state, values.size());
}

// Heavy hitters of a Zipf-like label (2000 values, capacity 64): mostly increments, some takeovers.
void BM_SpaceSavingAdd(benchmark::State& state) {
  std::mt19937_64 rng(6);
  std::vector<double> weights;
  for (int r = 1; r <= 2000; ++r) weights.push_back(1.0 / std::pow(r, 1.1));
  std::discrete_distribution<int> zipf(weights.begin(), weights.end());
  std::vector<std::pair<uint64_t, std::string>> stream;
  for (int i = 0; i < 1 << 14; ++i) {
    std::string v = "/api/v1/items/" + std::to_string(zipf(rng));
    stream.emplace_back(hashBytes(v), std::move(v));
  }
  SpaceSaving ss(64);
  for (auto _ : state)
    for (const auto& [h, v] : stream) ss.add(h, v);
  benchmark::DoNotOptimize(ss.total());
  perOp(state, stream.size());
}

}  // namespace

BENCHMARK(BM_WindowedDistinctAddSparse);
BENCHMARK(BM_WindowedDistinctAddDense);
BENCHMARK(BM_WindowedDistinctEstimateDense)->Arg(10)->Arg(12)->Arg(14);
BENCHMARK(BM_SeenFilterTestAndSet)->Threads(1)->Threads(2);
BENCHMARK(BM_ClassifySeedValues);
BENCHMARK(BM_SpaceSavingAdd);
BENCHMARK_MAIN();
