// Codec steps, one core, on a seed-like request: 2000 series with one sample
// each, labels shaped like the seed document's examples (uuids, emails, paths,
// SQL, plus env/region/job/instance). Reports items (samples) per second.
#include <benchmark/benchmark.h>

#include <random>
#include <snappy.h>

#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/snappy_codec.h"
#include "remote_write_v1.pb.h"

namespace {

using namespace cardinal;

std::string uuid(std::mt19937_64& rng) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 36; ++i) s += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rng() % 16];
  return s;
}

std::string seedLikeRequest(int series) {
  std::mt19937_64 rng(7);
  prometheus::WriteRequest req;
  const char* families[] = {"checkout_request_latency_seconds", "order_payment_failures_total", "process_cpu_percent",
                            "temp_file_size_bytes", "auth_event_count", "user_login_total", "api_request_count",
                            "db_query_duration_seconds"};
  for (int i = 0; i < series; ++i) {
    auto* ts = req.add_timeseries();
    auto add = [&](const std::string& n, const std::string& v) {
      auto* l = ts->add_labels();
      l->set_name(n);
      l->set_value(v);
    };
    int f = i % 8;
    add("__name__", families[f]);
    switch (f) {
      case 0: add("env", "prod"); add("instance", "10.0.0.7:8080"); add("job", "checkout"); add("region", "us-east"); add("user_id", uuid(rng)); break;
      case 1: add("env", "prod"); add("instance", "10.0.0.8:8080"); add("job", "payments"); add("order_id", uuid(rng)); add("region", "us-east"); break;
      case 2: add("env", "prod"); add("instance", "10.0.0.9:9100"); add("job", "node"); add("pid", std::to_string(40000 + rng() % 20000)); add("region", "us-east"); break;
      case 3: add("env", "prod"); add("file_path", "/tmp/upload/session_" + std::to_string(1691831294000 + i) + "/file.txt"); add("job", "uploader"); add("region", "us-east"); break;
      case 4: add("env", "prod"); add("job", "auth"); add("region", "us-east"); add("timestamp", "2025-08-12T10:03:" + std::to_string(10 + i % 50) + ".123456Z"); break;
      case 5: add("email", "user" + std::to_string(rng() % 100000) + "@example.com"); add("env", "prod"); add("job", "auth"); add("region", "us-east"); break;
      case 6: add("env", "prod"); add("job", "api"); add("path", "/users/u" + std::to_string(rng() % 100000) + "/orders/" + std::to_string(rng() % 1000)); add("region", "us-east"); break;
      default: add("env", "prod"); add("job", "db"); add("query", "SELECT * FROM orders WHERE id = " + std::to_string(rng() % 100000)); add("region", "us-east"); break;
    }
    auto* s = ts->add_samples();
    s->set_value(static_cast<double>(rng() % 1000) / 7.0);
    s->set_timestamp(1'764'000'000'000 + i);
  }
  std::string raw;
  req.SerializeToString(&raw);
  return raw;
}

constexpr int kSeries = 2000;

void BM_SnappyDecompress(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), body, out;
  snappy::Compress(raw.data(), raw.size(), &body);
  for (auto _ : state) {
    auto st = codec::decompress(body, {}, out);
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

// libsnappy's own decompression of the same body (codec::decompress is ours
// since session 24; this keeps the comparison in the same run).
void BM_LibsnappyDecompress(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), body, out;
  snappy::Compress(raw.data(), raw.size(), &body);
  for (auto _ : state) {
    size_t n = 0;
    snappy::GetUncompressedLength(body.data(), body.size(), &n);
    out.resize(n);
    bool ok = snappy::RawUncompress(body.data(), body.size(), out.data());
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

void BM_GeneratedParse(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries);
  for (auto _ : state) {
    prometheus::WriteRequest req;
    benchmark::DoNotOptimize(req.ParseFromString(raw));
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

void BM_WireDecode(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries);
  codec::SeriesBatch batch;
  for (auto _ : state) {
    auto st = codec::decodeWriteRequest(raw, {}, batch);
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

void BM_EncodeUnchanged(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), out;
  codec::SeriesBatch batch;
  (void)codec::decodeWriteRequest(raw, {}, batch);
  for (auto _ : state) {
    codec::encodeWriteRequest(batch, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

void BM_EncodeAllChanged(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), out;
  codec::SeriesBatch batch;
  (void)codec::decodeWriteRequest(raw, {}, batch);
  for (auto& s : batch.series) s.changed = true;
  for (auto _ : state) {
    codec::encodeWriteRequest(batch, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

// What the proxy does per request when a stage changed something:
// decompress, decode + validate, encode (copying unchanged series), compress.
void BM_RoundTripWire(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), body, plain, encoded, out;
  snappy::Compress(raw.data(), raw.size(), &body);
  codec::SeriesBatch batch;
  for (auto _ : state) {
    (void)codec::decompress(body, {}, plain);
    (void)codec::decodeWriteRequest(plain, {}, batch);
    codec::encodeWriteRequest(batch, encoded);
    codec::compress(encoded, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

// The same with generated classes, for comparison.
void BM_RoundTripGenerated(benchmark::State& state) {
  std::string raw = seedLikeRequest(kSeries), body, plain, encoded, out;
  snappy::Compress(raw.data(), raw.size(), &body);
  for (auto _ : state) {
    snappy::Uncompress(body.data(), body.size(), &plain);
    prometheus::WriteRequest req;
    req.ParseFromString(plain);
    req.SerializeToString(&encoded);
    snappy::Compress(encoded.data(), encoded.size(), &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}

}  // namespace

BENCHMARK(BM_SnappyDecompress);
BENCHMARK(BM_LibsnappyDecompress);
BENCHMARK(BM_GeneratedParse);
BENCHMARK(BM_WireDecode);
BENCHMARK(BM_EncodeUnchanged);
BENCHMARK(BM_EncodeAllChanged);
BENCHMARK(BM_RoundTripWire);
BENCHMARK(BM_RoundTripGenerated);
BENCHMARK_MAIN();
