#pragma once
// Input format of the pipeline fuzz target, shared with its seed generator
// (make_seeds.cpp). An input is a sequence of records, each one write request
// through the proxy's pipeline:
//
//   u8 header, u16 little-endian length, `length` bytes of request body
//
// header bit 0: remote-write 2.0 request (decodeRequestV2), else 1.0
//        bit 1: the body is snappy-compressed (as on the wire), else raw protobuf
//        bit 2: encode the output in 2.0 (--upstream.protocol=v2), else 1.0
//        bits 3-5: clock step before the request, an index into kClockSteps
//        bit 6: flush the merge engine after the request (the aggregation timer)
// A short last record takes what is left. After the last record the target
// advances the clock past merge staleness and flushes twice (stale markers).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cardinal::fuzz {

inline constexpr uint8_t kRecordV2 = 1, kRecordSnappy = 2, kRecordOutV2 = 4, kRecordFlush = 64;
inline constexpr int64_t kClockSteps[8] = {0, 1'000, 5'000, 15'000, 60'000, 300'000, 600'000, 3'600'000};
inline constexpr uint8_t clockStepBits(int index) { return static_cast<uint8_t>((index & 7) << 3); }

inline void appendRecord(std::string& out, uint8_t header, std::string_view body) {
  if (body.size() > 0xffff) body = body.substr(0, 0xffff);
  out.push_back(static_cast<char>(header));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.push_back(static_cast<char>(body.size() >> 8));
  out.append(body);
}

}  // namespace cardinal::fuzz
