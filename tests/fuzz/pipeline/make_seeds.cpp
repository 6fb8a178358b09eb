// Writes the seed corpus of pipeline_fuzz (format: pipeline_fuzz.h):
//  - seed-mix inputs: a few consecutive requests of bench/tools' Workload
//    (the seed document's eight families and well-behaved series, repeating
//    and fresh ids, counters advancing), 15 s apart, some snappy-compressed,
//    some translated to remote-write 2.0, some encoded for a 2.0 upstream,
//    with merge flushes in between;
//  - the decode and decode_v2 corpora, each file wrapped as one record
//    (a deterministic sample of at most `per_corpus` files each).
// Usage: make_seeds OUT_DIR DECODE_CORPUS DECODE_V2_CORPUS [per_corpus]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "codec/decode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "pipeline_fuzz.h"
#include "workload.h"

namespace fs = std::filesystem;
using namespace cardinal;

namespace {

void writeFile(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A 1.0 request translated to 2.0 (every series re-encoded).
std::string toV2(const std::string& v1) {
  codec::Limits limits;
  codec::SeriesBatch batch;
  if (!codec::decodeWriteRequest(v1, limits, batch)) return {};
  for (auto& s : batch.series) s.changed = true;
  std::string out;
  codec::encodeForProtocol(batch, codec::WireProtocol::kV2, out);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR DECODE_CORPUS DECODE_V2_CORPUS [per_corpus]\n");
    return 2;
  }
  const fs::path out_dir = argv[1];
  const size_t per_corpus = argc > 4 ? std::stoul(argv[4]) : 100;
  fs::create_directories(out_dir);
  size_t written = 0;

  // Seed-mix sequences.
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    bench::WorkloadConfig cfg;
    cfg.series_per_request = 12 + (seed % 4) * 6;
    cfg.fresh_ratio = seed % 3 == 0 ? 0.5 : 0.2;
    cfg.population = cfg.series_per_request * 2;
    cfg.seed = seed;
    auto w = bench::Workload::create(cfg);
    if (!w) {
      std::fprintf(stderr, "make_seeds: %s\n", w.error().c_str());
      return 1;
    }
    std::string input, raw, body;
    const int requests = 3 + static_cast<int>(seed % 3);
    for (int r = 0; r < requests; ++r) {
      w->build(0, static_cast<uint64_t>(r), 1'700'000'000'000 + r * 15'000, raw);
      uint8_t header = fuzz::clockStepBits(3);  // 15 s
      std::string request = raw;
      if (seed % 4 == 1) {
        request = toV2(raw);
        header |= fuzz::kRecordV2;
      }
      if (seed % 2 == 0) header |= fuzz::kRecordOutV2;
      if (r % 2 == 1 || r == requests - 1) header |= fuzz::kRecordFlush;
      if (seed % 5 != 0) {
        codec::compress(request, body);
        header |= fuzz::kRecordSnappy;
      } else {
        body = request;
      }
      fuzz::appendRecord(input, header, body);
    }
    writeFile(out_dir / ("seed-mix-" + std::to_string(seed)), input);
    ++written;
  }

  // The decode corpora: first byte odd = snappy body, the rest is the request.
  for (int v2 = 0; v2 < 2; ++v2) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(argv[2 + v2]))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    const size_t step = std::max<size_t>(1, files.size() / per_corpus);
    for (size_t i = 0; i < files.size(); i += step) {
      std::string data = readFile(files[i]);
      if (data.empty() || data.size() > 8192) continue;
      uint8_t header = static_cast<uint8_t>((v2 ? fuzz::kRecordV2 : 0) | ((data[0] & 1) ? fuzz::kRecordSnappy : 0) |
                                            fuzz::kRecordFlush);
      std::string input;
      fuzz::appendRecord(input, header, std::string_view(data).substr(1));
      writeFile(out_dir / ((v2 ? "decode-v2-" : "decode-") + files[i].filename().string()), input);
      ++written;
    }
  }
  std::printf("%zu seed files in %s\n", written, out_dir.c_str());
  return 0;
}
