#pragma once
// Request generation for the benchmark kit (cardinal_loadgen): remote-write 1.0
// WriteRequests shaped like the seed document's metrics.
//
// Series identity is a number. Ids [0, population) are the repeating
// population: it is split into `streams` disjoint slices and each request of a
// stream takes its repeating series from its slice in rotation, so a series
// recurs every slice / repeating-per-request requests of that stream, like a
// scrape target seen on every scrape, with its counter advanced. Ids from
// `population` upwards are fresh: request (stream, seq) uses a block of them
// that no other (stream, seq) uses, so within one run they never repeat.
// Every family turns its id into its label values injectively (uuid, pid,
// e-mail, path, SQL text, ...), so two ids never give the same label set.
//
// In live mode each sender connection is one stream, so a series is only ever
// sent by one connection, one request at a time: its samples arrive in
// timestamp order, which Prometheus requires (Prometheus' own shards hash
// series the same way).
//
// A Workload owns its scratch buffers: use one per thread. Building is
// deterministic for a given config, stream, seq and timestamp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/labels.h"
#include "core/result.h"

namespace cardinal::bench {

enum class Mix {
  kSeed,         // ~80% the seed's eight high-cardinality/sensitive families, ~20% well-behaved
  kWellBehaved,  // only well-behaved http_requests_total series
};

std::optional<Mix> parseMix(std::string_view s);
const char* mixName(Mix m);

struct WorkloadConfig {
  Mix mix = Mix::kSeed;
  size_t series_per_request = 2000;
  double fresh_ratio = 0.2;  // share of each request's series with never-sent ids
  // Repeating series in total; 0 = 10 x the repeating series per request per stream.
  size_t population = 0;
  size_t streams = 1;  // disjoint slices of the population (live mode: one per connection)
  uint64_t seed = 1;
};

struct RequestCounts {
  size_t series = 0;
  size_t samples = 0;
};

class Workload {
 public:
  static core::Result<Workload> create(const WorkloadConfig& config);

  // Replaces `raw` with the uncompressed WriteRequest for request `seq` of
  // `stream`; every sample carries `timestamp_ms`.
  RequestCounts build(size_t stream, uint64_t seq, int64_t timestamp_ms, std::string& raw);

  const WorkloadConfig& config() const { return config_; }
  size_t freshPerRequest() const { return fresh_; }
  size_t repeatingPerRequest() const { return repeating_; }
  size_t population() const { return slice_ * config_.streams; }
  size_t sliceSize() const { return slice_; }

  // For tests of the generator itself: the labels of series `id` as it is
  // sent for the `cycle`-th time, and its sample value then. Views stay valid
  // until the next call on this Workload.
  std::vector<core::LabelView> labelsOf(uint64_t id);
  double valueOf(uint64_t id, uint64_t cycle);

 private:
  explicit Workload(const WorkloadConfig& config);
  void appendSeries(uint64_t id, uint64_t cycle, int64_t timestamp_ms, std::string& raw);
  size_t fillLabels(uint64_t id);  // into labels_, sorted; returns the count
  int familyOf(uint64_t id) const;

  WorkloadConfig config_;
  size_t fresh_ = 0;
  size_t repeating_ = 0;
  size_t slice_ = 0;
  uint64_t salt_ = 0;
  // Scratch: label values are written here, labels_ views them.
  std::string values_[4];
  core::LabelView labels_[16];
};

}  // namespace cardinal::bench
