// libFuzzer target: snappy + remote-write 2.0 decode, then re-encode (2.0, and translated to
// 1.0) and decode again. Asserts: no crash; an accepted request has sorted, unique, non-empty
// label names and __name__, metadata indices and start timestamps consistent with the batch;
// re-encoding what was decoded decodes to the same series, in both protocols.
// The first byte selects the input form: odd = snappy body, even = raw protobuf.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec/decode.h"
#include "codec/decode_v2.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"

using namespace cardinal;

namespace {

void checkInvariants(const codec::SeriesBatch& b) {
  if (b.v2.series_metadata.size() != b.series.size()) abort();
  if (!b.v2.sample_start_timestamps.empty() && b.v2.sample_start_timestamps.size() != b.samples.size()) abort();
  for (size_t i = 0; i < b.series.size(); ++i) {
    auto labels = b.labelsOf(b.series[i]);
    bool has_name = false;
    for (size_t k = 0; k < labels.size(); ++k) {
      if (labels[k].name.empty()) abort();
      if (k > 0 && !(labels[k - 1].name < labels[k].name)) abort();
      has_name |= labels[k].name == "__name__" && !labels[k].value.empty();
    }
    if (!has_name) abort();
    uint32_t m = b.v2.series_metadata[i];
    if (m != codec::V2Parts::kNoMetadata && m >= b.metadata.size()) abort();
  }
}

int64_t startOf(const codec::SeriesBatch& b, size_t sample) {
  return sample < b.v2.sample_start_timestamps.size() ? b.v2.sample_start_timestamps[sample] : 0;
}

// Same series (labels, samples, start timestamps of `a` if `with_start`, counts of the rest).
void checkSame(const codec::SeriesBatch& a, const codec::SeriesBatch& b, bool with_start) {
  if (a.series.size() != b.series.size()) abort();
  for (size_t i = 0; i < a.series.size(); ++i) {
    const auto &sa = a.series[i], &sb = b.series[i];
    auto la = a.labelsOf(sa), lb = b.labelsOf(sb);
    if (la.size() != lb.size() || !std::equal(la.begin(), la.end(), lb.begin())) abort();
    auto pa = a.samplesOf(sa), pb = b.samplesOf(sb);
    if (pa.size() != pb.size() || !std::equal(pa.begin(), pa.end(), pb.begin())) abort();
    if (with_start)
      for (uint32_t k = 0; k < sa.sample_count; ++k)
        if (startOf(a, sa.sample_begin + k) != startOf(b, sb.sample_begin + k)) abort();
    if (sa.histogram_count != sb.histogram_count || sa.exemplar_count != sb.exemplar_count) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  codec::Limits limits;
  limits.max_decompressed_bytes = 1 << 20;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string plain;
  if (size > 0 && (data[0] & 1)) {
    if (!codec::decompress(input.substr(1), limits, plain)) return 0;
  } else {
    plain.assign(input.substr(size > 0 ? 1 : 0));
  }
  codec::SeriesBatch batch;
  if (!codec::decodeRequestV2(plain, limits, batch)) return 0;
  checkInvariants(batch);

  // 2.0 -> 2.0, every series re-encoded: the same series, start timestamps and metadata.
  for (auto& s : batch.series) s.changed = true;
  std::string encoded;
  codec::encodeRequestV2(batch, encoded);
  codec::SeriesBatch again;
  if (!codec::decodeRequestV2(encoded, limits, again)) abort();
  checkInvariants(again);
  checkSame(batch, again, true);
  for (size_t i = 0; i < batch.series.size(); ++i) {
    uint32_t ma = batch.v2.series_metadata[i], mb = again.v2.series_metadata[i];
    if ((ma == codec::V2Parts::kNoMetadata) != (mb == codec::V2Parts::kNoMetadata)) abort();
    if (ma == codec::V2Parts::kNoMetadata) continue;
    const auto &a = batch.metadata[ma], &b = again.metadata[mb];
    if (a.type != b.type || a.help != b.help || a.unit != b.unit || a.family != b.family) abort();
  }

  // 2.0 -> 1.0: the 1.0 decoder accepts it, with the same series.
  codec::encodeWriteRequestFromV2(batch, encoded);
  codec::SeriesBatch v1;
  if (!codec::decodeWriteRequest(encoded, limits, v1)) abort();
  checkSame(batch, v1, false);
  return 0;
}
