// The merge engine's absorption, one core: MergeState::addMany of one request's merged series
// (1,600 of them: the 80% of compare.sh's 2,000-series requests that the default rules merge),
// each one counter sample with a new timestamp, into a state that already holds every input
// (steady state: lookups, no inserts). Inputs are spread over 1,000 outputs; a request takes the
// next 1,600 of a fixed random order of the inputs, as a sender's requests cover its series in
// turn.
//   BM_MergeAddMany/<inputs>/<sweep MiB>: the state holds <inputs> inputs (33,000: about what
//   compare.sh's pool leaves; 330,000: ten times that); before each request, untimed,
//   <sweep MiB> of other memory is written in a random line order (0: back to back, the tables
//   as warm as they get; 32: what an I/O thread finds after other work ran on the host, see
//   BM_SeedProcessAfterSweep in pipeline_bench.cpp).
// Counter "per_item": time per absorbed series.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "codec/batch.h"
#include "core/hash.h"
#include "core/labels.h"
#include "pipeline/merge/merge_state.h"

namespace {

using namespace cardinal;
using pipeline::merge::MergeState;

constexpr size_t kOutputs = 1000;
constexpr size_t kPerRequest = 1600;
constexpr int64_t kT0 = 1'764'000'000'000;

struct Population {
  std::vector<std::string> values;                   // the outputs' distinguishing label values
  std::vector<std::vector<core::LabelView>> labels;  // per output, sorted
  std::vector<uint64_t> output_hash;
  std::vector<uint64_t> input_hash;  // per input
  std::vector<uint32_t> order;       // inputs in the order requests take them
  pipeline::merge::Options opts;

  explicit Population(size_t inputs) {
    values.reserve(kOutputs);
    for (size_t o = 0; o < kOutputs; ++o) values.push_back("route-" + std::to_string(o));
    for (size_t o = 0; o < kOutputs; ++o) {
      labels.push_back({{core::kMetricNameLabel, "http_requests_total"}, {"route", values[o]}});
      output_hash.push_back(core::hashLabels(labels.back()));
    }
    std::mt19937_64 rng(7);
    for (size_t i = 0; i < inputs; ++i) input_hash.push_back(rng());
    order.resize(inputs);
    for (size_t i = 0; i < inputs; ++i) order[i] = static_cast<uint32_t>(i);
    std::shuffle(order.begin(), order.end(), rng);
  }
};

void BM_MergeAddMany(benchmark::State& state) {
  const size_t inputs = static_cast<size_t>(state.range(0));
  Population pop(inputs);
  MergeState merge(pipeline::merge::Config{});
  std::vector<codec::Sample> samples(kPerRequest);  // one request's, as in a decoded batch
  std::vector<MergeState::AddItem> items;
  size_t next = 0;
  int64_t ts = kT0;
  // The next request's items, each input with a sample newer than its last.
  auto request = [&] {
    items.clear();
    ts += 1000;
    for (size_t j = 0; j < kPerRequest; ++j, next = (next + 1) % inputs) {
      const uint32_t i = pop.order[next];
      const size_t o = i % kOutputs;
      samples[j] = {ts, static_cast<double>(ts - kT0)};
      items.push_back({pop.input_hash[i], pop.labels[o], pop.output_hash[o], pipeline::merge::Kind::kCounter,
                       &pop.opts, std::span<const codec::Sample>(&samples[j], 1)});
    }
  };
  // Every input attached once before timing.
  for (size_t done = 0; done < inputs; done += kPerRequest) {
    request();
    merge.addMany(items, ts);
  }
  std::vector<char> other(static_cast<size_t>(state.range(1)) << 20, 1);
  const size_t lines = other.empty() ? 0 : std::bit_floor(other.size() / 64);
  size_t accepted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    request();
    for (size_t i = 0, j = 0; i < lines; ++i, j = (j + 0x9e3779b1) & (lines - 1)) ++other[j * 64];
    benchmark::DoNotOptimize(other.data());
    state.ResumeTiming();
    accepted += merge.addMany(items, ts).accepted;
  }
  if (accepted != kPerRequest * static_cast<size_t>(state.iterations())) state.SkipWithError("a sample was not absorbed");
  state.counters["per_item"] = benchmark::Counter(static_cast<double>(kPerRequest),
                                                  benchmark::Counter::kIsIterationInvariantRate |
                                                      benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_MergeAddMany)->Args({33'000, 0})->Args({33'000, 32})->Args({330'000, 0})->Args({330'000, 32})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
