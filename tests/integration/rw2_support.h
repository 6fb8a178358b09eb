#pragma once

// Remote-write 2.0 for the integration suites (issue 9): building and posting
// io.prometheus.write.v2.Request bodies (with the generated classes of proto/remote_write_v2.proto),
// reading the X-Prometheus-Remote-Write-*-Written headers, a fake upstream that speaks both
// protocols, and a recording proxy that checks every answer's Written headers against what the
// request carried. Objects own their servers (stopped in their destructors), like harness.h.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness.h"
#include "remote_write_v2.pb.h"

namespace cardinal::integration {

namespace v2 = io::prometheus::write::v2;

// What 2.0 senders send (no space before proto=).
inline constexpr const char* kV2ContentType = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

// A 2.0 request with interned symbols (symbols[0] = ""), labels in the order given.
class V2RequestBuilder {
 public:
  V2RequestBuilder();
  uint32_t sym(const std::string& s);
  v2::TimeSeries* series(const std::vector<std::pair<std::string, std::string>>& labels);
  void sample(v2::TimeSeries* ts, int64_t timestamp_ms, double value, int64_t start_ms = 0);
  void metadata(v2::TimeSeries* ts, v2::Metadata::MetricType type, const std::string& help,
                const std::string& unit);
  void exemplar(v2::TimeSeries* ts, const std::vector<std::pair<std::string, std::string>>& labels,
                double value, int64_t timestamp_ms);
  v2::Request req;

 private:
  std::map<std::string, uint32_t> index_;
};

std::vector<std::pair<std::string, std::string>> remoteWriteV2Headers();
std::string encodeV2(const v2::Request& req);  // serialized, snappy block-compressed
std::optional<v2::Request> decodeV2(std::string_view body, std::string* error = nullptr);
HttpResponse postRemoteWriteV2(std::string_view url, const v2::Request& req,
                               Millis timeout = Millis(10000));

// Samples, histogram samples and exemplars: what a request carries, or what an answer's
// Written headers say was written.
struct ElementCounts {
  uint64_t samples = 0;
  uint64_t histograms = 0;
  uint64_t exemplars = 0;
  bool operator==(const ElementCounts&) const = default;
  ElementCounts& operator+=(const ElementCounts& o);
  std::string toString() const;  // "samples 3, histograms 1, exemplars 0"
};
ElementCounts countsOf(const v2::Request& req);
ElementCounts countsOf(const prometheus::WriteRequest& req);
// The three Written headers; nullopt unless all three are present and numeric.
std::optional<ElementCounts> writtenHeaders(const HttpHeaders& headers);

// The labels (resolved, sorted) of a 2.0 series, and the float samples of a request.
Labels labelsOf(const v2::Request& req, const v2::TimeSeries& ts);
ExpectedSamples expectedFrom(const v2::Request& req);

// A remote-write receiver for both protocols: records each request, decodes it by its
// Content-Type, and answers 204 (a 2.0 request with Written headers equal to what it carried)
// unless told to answer like a 1.0 receiver that ignores Content-Type (204, no headers).
class FakeUpstreamV2 {
 public:
  struct Received {
    HttpRequestRecord http;
    bool v2 = false;
    std::optional<v2::Request> v2req;
    std::optional<prometheus::WriteRequest> v1req;
  };
  FakeUpstreamV2();
  void answerLikeV1Receiver(bool yes);
  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }
  size_t requestCount() const;
  std::vector<Received> requests() const;
  bool waitForRequests(size_t n, Millis timeout) const;

 private:
  HttpReply handle(const HttpRequestRecord& req);
  mutable std::mutex mu_;
  std::vector<Received> received_;
  bool like_v1_ = false;
  HttpServer server_;  // last: destroyed first
};

// A hop between a sender and a receiver: forwards every request as it is (body and the
// remote-write headers) to `target_url`, passes the answer back with its Written headers, and
// records per request what the body carried and what the answer said was written.
class WrittenRecorder {
 public:
  struct Exchange {
    bool v2 = false;
    int status = 0;
    ElementCounts sent;
    std::optional<ElementCounts> written;
    std::string content_type;
  };
  explicit WrittenRecorder(std::string target_url);
  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }
  std::vector<Exchange> exchanges() const;
  // Lines describing every exchange whose Written headers differ from what was sent (2.0
  // requests answered 2xx), or that were not answered 2xx.
  std::vector<std::string> mismatches() const;
  ElementCounts sentTotal() const;  // over 2xx-answered 2.0 requests

 private:
  HttpReply handle(const HttpRequestRecord& req);
  std::string target_;
  mutable std::mutex mu_;
  std::vector<Exchange> exchanges_;
  HttpServer server_;  // last: destroyed first
};

}  // namespace cardinal::integration
