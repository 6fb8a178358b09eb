#include "support/builders.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <snappy.h>

namespace cardinal::testing {

prometheus::TimeSeries makeSeries(const LabelList& labels, const SampleList& samples) {
  prometheus::TimeSeries ts;
  for (const auto& [n, v] : labels) {
    auto* l = ts.add_labels();
    l->set_name(n);
    l->set_value(v);
  }
  for (const auto& [t, v] : samples) {
    auto* s = ts.add_samples();
    s->set_timestamp(t);
    s->set_value(v);
  }
  return ts;
}

prometheus::WriteRequest makeRequest(std::initializer_list<prometheus::TimeSeries> series) {
  prometheus::WriteRequest req;
  for (const auto& s : series) *req.add_timeseries() = s;
  return req;
}

std::string serialize(const prometheus::WriteRequest& req) {
  std::string out;
  req.SerializeToString(&out);
  return out;
}

std::string snappyCompress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

namespace {
std::string deterministic(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}
}  // namespace

bool sameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return a.GetDescriptor() == b.GetDescriptor() && deterministic(a) == deterministic(b);
}

}  // namespace cardinal::testing
