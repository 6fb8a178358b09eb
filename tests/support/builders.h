#pragma once
// Tiny builders for tests: remote-write requests from generated classes,
// serialized and snappy-compressed like a sender would.

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "remote_write_v1.pb.h"

namespace cardinal::testing {

using LabelList = std::vector<std::pair<std::string, std::string>>;
using SampleList = std::vector<std::pair<int64_t, double>>;  // (timestamp ms, value)

prometheus::TimeSeries makeSeries(const LabelList& labels, const SampleList& samples = {{1000, 1.0}});
prometheus::WriteRequest makeRequest(std::initializer_list<prometheus::TimeSeries> series);
std::string serialize(const prometheus::WriteRequest& req);
std::string snappyCompress(const std::string& raw);
// Equal messages, with doubles compared bit for bit (NaN stale markers included).
bool sameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b);

}  // namespace cardinal::testing
