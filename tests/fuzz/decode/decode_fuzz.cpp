// libFuzzer target: snappy + remote-write decode, then re-encode and decode
// again. Asserts: no crash; an accepted request has sorted, unique, non-empty
// label names and __name__; encoding what was decoded decodes to the same;
// cut at codec::splitPoint, the two halves decode to the series of the whole
// in order, and their snappy blocks joined decompress to the whole.
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec/decode.h"
#include "codec/encode.h"
#include "codec/snappy_codec.h"

using namespace cardinal;

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
  // A request split between two threads (server/request_split.h).
  if (const size_t cut = codec::splitPoint(plain); cut > 0) {
    const std::string_view whole(plain);
    codec::SeriesBatch a, b;
    if (!codec::decodeWriteRequest(whole.substr(0, cut), limits, a)) abort();
    if (!codec::decodeWriteRequest(whole.substr(cut), limits, b)) abort();
    if (a.series.size() + b.series.size() != batch.series.size()) abort();
    for (size_t i = 0; i < batch.series.size(); ++i) {
      const bool first = i < a.series.size();
      const codec::SeriesBatch& h = first ? a : b;
      const codec::Series& s = h.series[first ? i : i - a.series.size()];
      auto x = batch.labelsOf(batch.series[i]);
      auto y = h.labelsOf(s);
      if (x.size() != y.size() || !std::equal(x.begin(), x.end(), y.begin())) abort();
      auto sx = batch.samplesOf(batch.series[i]);
      auto sy = h.samplesOf(s);
      if (sx.size() != sy.size() || !std::equal(sx.begin(), sx.end(), sy.begin())) abort();
    }
    std::string ca, cb, joined, back;
    codec::compress(whole.substr(0, cut), ca);
    codec::compress(whole.substr(cut), cb);
    codec::joinCompressed(ca, cb, joined);
    if (!codec::decompress(joined, limits, back) || back != plain) abort();
  }
  // Re-encode with every series marked changed, and decode again: same series.
  for (auto& s : batch.series) s.changed = true;
  std::string encoded;
  codec::encodeWriteRequest(batch, encoded);
  codec::SeriesBatch again;
  if (!codec::decodeWriteRequest(encoded, limits, again)) abort();
  if (again.series.size() != batch.series.size()) abort();
  for (size_t i = 0; i < batch.series.size(); ++i) {
    auto a = batch.labelsOf(batch.series[i]);
    auto b = again.labelsOf(again.series[i]);
    if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin())) abort();
    auto sa = batch.samplesOf(batch.series[i]);
    auto sb = again.samplesOf(again.series[i]);
    if (sa.size() != sb.size() || !std::equal(sa.begin(), sa.end(), sb.begin())) abort();
  }
  return 0;
}
