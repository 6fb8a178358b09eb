// The write path's steps on the workload of bench/compare.sh, one core: the load generator's
// seed mix (bench/tools/workload.h: 2000 series per request, 20% fresh ids, a pool of 64 bodies
// replayed in turn, timestamps repeating on replay) through the default pipeline as the proxy
// assembles it (pipeline::Assembly, built-in default rules), in steady state: the pool is passed
// through once before timing, as compare.sh's latency phase does. Reports series per second;
// the time per request is the iteration time.
//   BM_SeedDecompress  snappy decompression of a pool body (compressed as the load generator does)
//   BM_SeedDecode    decodeWriteRequest of a pool body (uncompressed); its counters say what a
//                    request is: body_bytes, compressed_bytes (pool means), labels_per_series
//   BM_SeedProcess   processBatch: the label stages (plans cached), cardinality, merge
//   BM_SeedProcessAfterSleep  BM_SeedProcess, the thread having slept (arg: us) before each
//                    request, as an I/O thread does between requests below full load
//   BM_SeedProcessAfterSweep  BM_SeedProcess, other memory (arg: MiB) written in a random line
//                    order before each request: what evicting the caches alone costs, for contrast
//   BM_SeedEncode    encodeForProtocol + snappy of what processBatch left
//   BM_SeedSplitAlone  the three above for a request cut in parts, on one thread (arg: the
//                    part size in KiB; the proxy's is SplitRequest::kPartBytes)
// No metrics are attached to the stages (the proxy's prometheus-cpp counters are not counted).
#include <benchmark/benchmark.h>

#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "codec/decode.h"
#include "codec/encode_v2.h"
#include "codec/limits.h"
#include "codec/snappy_codec.h"
#include "core/clock.h"
#include "core/log.h"
#include "pipeline/assembly.h"
#include "pipeline/sanitize/redactor.h"
#include "rules/rules_manager.h"
#include "server/request_split.h"
#include "workload.h"

namespace {

using namespace cardinal;

constexpr size_t kPool = 64;
constexpr size_t kSeries = 2000;
constexpr int64_t kStartMs = 1'764'000'000'000;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "pipeline_bench: %s\n", why.c_str());
  std::exit(1);
}

// One proxy's processing state, warmed up on the pool.
struct Proxy {
  rules::RulesManager rules{{}, nullptr};
  pipeline::sanitize::Redactor redactor{std::vector<uint8_t>(32, 0x5a)};
  rules::RulesManager::Snapshot snapshot;
  core::ManualClock clock{kStartMs + static_cast<int64_t>(kPool) * 1000};
  codec::Limits limits;
  std::vector<std::string> pool;  // uncompressed 1.0 bodies
  std::vector<std::string> compressed_pool;  // the same, snappy-compressed (as the load generator sends them)
  std::unique_ptr<pipeline::Assembly> assembly;
  codec::SeriesBatch batch;
  std::string encoded, compressed;

  Proxy() {
    core::setLogLevel(core::LogLevel::kError);
    if (!rules.reload()) die("the built-in default rules do not load");
    snapshot = rules.current();
    bench::WorkloadConfig cfg;
    cfg.series_per_request = kSeries;
    auto w = bench::Workload::create(cfg);
    if (!w) die(w.error());
    pool.resize(kPool);
    for (size_t k = 0; k < kPool; ++k) w->build(0, k, kStartMs + static_cast<int64_t>(k) * 1000, pool[k]);
    compressed_pool.resize(kPool);
    for (size_t k = 0; k < kPool; ++k) codec::compress(pool[k], compressed_pool[k]);
    assembly = std::make_unique<pipeline::Assembly>(pipeline::AssemblyOptions{},
                                                    pipeline::PipelineConfig{nullptr, nullptr, &redactor});
    for (size_t k = 0; k < kPool; ++k) {
      decode(k);
      process();
    }
  }
  void decode(size_t k) {
    if (auto st = codec::decodeWriteRequest(pool[k % kPool], limits, batch); !st) die(st.error());
  }
  void process() {
    auto state = assembly->writeState();
    pipeline::processBatch(assembly->pipeline, batch, snapshot, state, clock, false);
  }
  void encode() {
    codec::encodeForProtocol(batch, codec::WireProtocol::kV1, encoded);
    codec::compress(encoded, compressed);
  }
};

Proxy& proxy() {
  static Proxy p;
  return p;
}

void BM_SeedDecompress(benchmark::State& state) {
  Proxy& p = proxy();
  std::string out;
  size_t k = 0;
  for (auto _ : state) {
    if (auto st = codec::decompress(p.compressed_pool[k++ % kPool], p.limits, out); !st) die(st.error());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
}

void BM_SeedDecode(benchmark::State& state) {
  Proxy& p = proxy();
  size_t k = 0;
  for (auto _ : state) {
    p.decode(k++);
    benchmark::DoNotOptimize(p.batch.series.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
  size_t body = 0, zbody = 0;
  for (size_t i = 0; i < kPool; ++i) body += p.pool[i].size(), zbody += p.compressed_pool[i].size();
  state.counters["body_bytes"] = static_cast<double>(body) / kPool;
  state.counters["compressed_bytes"] = static_cast<double>(zbody) / kPool;
  state.counters["labels_per_series"] = static_cast<double>(p.batch.labels.size()) / p.batch.series.size();
}

// The stages on the pool's next request, timed; untimed before it: `before`,
// then decoding the request (as the proxy decodes right before the stages).
template <typename Before>
void timeProcess(benchmark::State& state, Before before) {
  Proxy& p = proxy();
  size_t k = 0;
  for (auto _ : state) {
    state.PauseTiming();
    before();
    p.decode(k++);
    state.ResumeTiming();
    p.process();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
}

void BM_SeedProcess(benchmark::State& state) {
  timeProcess(state, [] {});
}

// Below full load an I/O thread sleeps between requests, and on a shared host
// other work runs meanwhile, on that core and through the shared cache: the
// figure is the stages' time on the request that follows.
void BM_SeedProcessAfterSleep(benchmark::State& state) {
  const auto pause = std::chrono::microseconds(state.range(0));
  timeProcess(state, [&] { std::this_thread::sleep_for(pause); });
}

void BM_SeedProcessAfterSweep(benchmark::State& state) {
  std::vector<char> other(static_cast<size_t>(state.range(0)) << 20, 1);
  // Lines in a random order (a linear sweep is what caches are built to keep
  // out of their way): each line once, by an odd stride modulo a power-of-two
  // line count.
  const size_t lines = std::bit_floor(other.size() / 64);
  timeProcess(state, [&] {
    for (size_t i = 0, j = 0; i < lines; ++i, j = (j + 0x9e3779b1) & (lines - 1)) ++other[j * 64];
    benchmark::DoNotOptimize(other.data());
  });
}

void BM_SeedEncode(benchmark::State& state) {
  Proxy& p = proxy();
  size_t k = 0;
  for (auto _ : state) {
    state.PauseTiming();
    p.decode(k++);
    p.process();
    state.ResumeTiming();
    p.encode();
    benchmark::DoNotOptimize(p.compressed.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
}

// A request cut in parts (server::SplitRequest, as --web.split-request-bytes does) and all of
// them decoded, run through the stages, encoded and compressed on this one thread (no helper):
// against BM_SeedDecode + BM_SeedProcess + BM_SeedEncode, what cutting a request costs.
void BM_SeedSplitAlone(benchmark::State& state) {
  Proxy& p = proxy();
  auto ws = p.assembly->writeState();
  std::string body;
  size_t k = 0, parts = 0;
  for (auto _ : state) {
    // In the proxy the body was just decompressed: in cache, as here.
    state.PauseTiming();
    body = p.pool[k++ % kPool];
    state.ResumeTiming();
    auto r = server::SplitRequest::acquire();
    server::SplitRequest::Job job;
    job.body = body;
    job.limits = &p.limits;
    job.pipeline = &p.assembly->pipeline;
    job.rules = &p.snapshot;
    job.state = &ws;
    job.clock = &p.clock;
    job.part_bytes = static_cast<size_t>(state.range(0)) << 10;
    if (!r->start(job) || !r->decode()) die("the request was not split");
    benchmark::DoNotOptimize(r->process());
    for (size_t i = 0; i < r->parts(); ++i)
      if (!r->encoded(i)) r->encode(i);
    parts = r->parts();
  }
  state.counters["parts"] = static_cast<double>(parts);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
}

// Two threads, each with its own batch, on the one shared state (as the
// proxy's two I/O threads run requests): the cost of sharing.
void BM_SeedProcessShared(benchmark::State& state) {
  Proxy& p = proxy();
  codec::SeriesBatch batch;
  size_t k = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    state.PauseTiming();
    if (auto st = codec::decodeWriteRequest(p.pool[k % kPool], p.limits, batch); !st) die(st.error());
    k += static_cast<size_t>(state.threads());
    state.ResumeTiming();
    auto ws = p.assembly->writeState();
    pipeline::processBatch(p.assembly->pipeline, batch, p.snapshot, ws, p.clock, false);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSeries));
}

}  // namespace

BENCHMARK(BM_SeedProcessShared)->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_SeedDecompress)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedDecode)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedProcess)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedProcessAfterSleep)->Arg(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedProcessAfterSweep)->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedEncode)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SeedSplitAlone)->Arg(48)->Arg(80)->Arg(96)->Arg(192)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
