// libFuzzer target: snappy + remote-write decode, then re-encode and decode
// again. Asserts: no crash; an accepted request has sorted, unique, non-empty
// label names and __name__; encoding what was decoded decodes to the same;
// cut at codec::splitPoints, the parts decode to the series of the whole in
// order, and their snappy blocks joined decompress to the whole.
#include <cassert>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/snappy_codec.h"

using namespace cardinal;

namespace {

// The same labels and samples.
bool sameSeries(const codec::SeriesBatch& a, const codec::Series& sa, const codec::SeriesBatch& b,
                const codec::Series& sb) {
  auto la = a.labelsOf(sa), lb = b.labelsOf(sb);
  auto xa = a.samplesOf(sa), xb = b.samplesOf(sb);
  return la.size() == lb.size() && std::equal(la.begin(), la.end(), lb.begin()) && xa.size() == xb.size() &&
         std::equal(xa.begin(), xa.end(), xb.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  codec::Limits limits;
  limits.max_decompressed_bytes = 1 << 20;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Half the inputs are taken as snappy bodies, half as raw protobuf.
  std::string plain;
  if (size > 0 && (data[0] & 1)) {
    if (!codec::decompress(input.substr(1), limits, plain)) return 0;
  } else {
    plain.assign(input.substr(size > 0 ? 1 : 0));
  }
  codec::SeriesBatch batch;
  if (!codec::decodeWriteRequest(plain, limits, batch)) return 0;
  for (const auto& s : batch.series) {
    auto labels = batch.labelsOf(s);
    bool has_name = false;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i].name.empty()) abort();
      if (i > 0 && !(labels[i - 1].name < labels[i].name)) abort();
      has_name |= labels[i].name == "__name__";
    }
    if (!has_name) abort();
  }
  // A request cut into parts for two threads (server/request_split.h).
  if (const auto cuts = codec::splitPoints(plain, 2 + (size & 3)); !cuts.empty()) {
    const std::string_view whole(plain);
    size_t at = 0, begin = 0;
    std::vector<std::string> compressed;
    for (size_t k = 0; k <= cuts.size(); ++k) {
      const size_t end = k == cuts.size() ? whole.size() : cuts[k];
      if (end <= begin) abort();
      const std::string_view piece = whole.substr(begin, end - begin);
      codec::SeriesBatch part;
      if (!codec::decodeWriteRequest(piece, limits, part)) abort();
      for (const auto& s : part.series) {
        if (at >= batch.series.size() || !sameSeries(batch, batch.series[at], part, s)) abort();
        ++at;
      }
      codec::compress(piece, compressed.emplace_back());
      begin = end;
    }
    if (at != batch.series.size()) abort();
    std::vector<std::string_view> views(compressed.begin(), compressed.end());
    std::string joined, back;
    codec::joinCompressed(views, joined);
    if (!codec::decompress(joined, limits, back) || back != plain) abort();
  }
  // Re-encode with every series marked changed, and decode again: same series.
  for (auto& s : batch.series) s.changed = true;
  std::string encoded;
  codec::encodeWriteRequest(batch, encoded);
  codec::SeriesBatch again;
  if (!codec::decodeWriteRequest(encoded, limits, again)) abort();
  if (again.series.size() != batch.series.size()) abort();
  for (size_t i = 0; i < batch.series.size(); ++i)
    if (!sameSeries(batch, batch.series[i], again, again.series[i])) abort();
  return 0;
}
