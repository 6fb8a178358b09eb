#pragma once
// One large remote-write 1.0 request worked on by two threads.
//
// Between its decompression and its compression a 2,000-series request costs
// the proxy about a millisecond of CPU (decode, stages, encode), and the
// sender waits for all of it before its 204. Cut at top-level field
// boundaries (codec::splitPoints), the parts of a 1.0 WriteRequest are
// WriteRequests themselves, the encodings of requests concatenate to the
// encoding of their union (every field of a WriteRequest is repeated), and
// their snappy blocks join likewise (codec::joinCompressed). So the request
// is cut into a few parts that the request's thread and one helper (another
// I/O thread) take one at a time, from opposite ends (the request's thread
// from the first part on, the helper from the last back): each thread decodes
// the next part nobody took, then, once all are decoded, runs the next part
// through the stages and encodes, compresses and counts it. From opposite
// ends, a thread mostly runs the parts it decoded, whose series are in its
// core's cache. Parts rather than halves: series are not equally
// costly (a sender may put its new series last), and with small parts neither
// thread is left waiting long for the other.
//
// Nothing waits for a thread that has not started: when no other thread is
// free, the helper task runs late, finds nothing left to take, and the
// request's thread has done every part itself (no gain, no loss). Whether to
// split at all is helperFree()'s decision, below. The parts
// meet once between decoding and the stages, so that
//   - every type is learned from all parts before any stage runs, as for a
//     whole request (a histogram's `_sum` in one part, its `_bucket`s in
//     another);
//   - when a series is in two parts (a sender catching up sends a series'
//     samples in several entries) the request's thread runs the parts
//     through the stages one after the other, in the request's order, so no
//     sample is taken for out of order;
//   - a part that does not decode, or parts over the series limit together,
//     make the whole request decode again on one thread, so the error names
//     the same series and byte as always.

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/batch.h"
#include "codec/limits.h"
#include "core/clock.h"
#include "core/result.h"
#include "pipeline/assembly.h"
#include "rules/rules_manager.h"

namespace cardinal::server {

// Whether a request may be split, posting its helper task to another I/O
// thread: when no other request is being processed (`others`, counted
// from decompression to the end of a request's processing, before its
// upstream exchange), or when one is and the
// helper's thread was busy less than kHelperBusyBelow of its last window
// (`helper_busy_permille`, thread_load.h). Under full load every thread is
// busier than that and a request runs whole on its own thread: splitting then
// costs CPU (the parts meet, the helper's cache is cold) and gains nothing,
// since no thread is free to help (measured: 18% fewer requests served with
// the load not looked at; BENCHMARKS.md, session 17). At half load a helper
// part waits only for the end of the request on its thread.
inline constexpr int kHelperBusyBelow = 800;
inline bool helperFree(int others, int helper_busy_permille) {
  return others == 0 || (others == 1 && helper_busy_permille < kHelperBusyBelow);
}

// Whether some series of the batches has the label-set hash of a series in
// another one (may say yes for a few that do not; never no for one that
// does). `table` is scratch.
bool sharesSeries(std::span<const codec::SeriesBatch* const> batches, std::vector<uint64_t>& table);

class SplitRequest {
 public:
  static constexpr size_t kMaxParts = 8;
  // Decompressed bytes per part, about: ~420 series of the seed workload, 4
  // parts of its 2,000-series requests. Each part pays the stages' per-batch
  // costs (shard locks, group sorts, a snappy call) and a yield point; 7
  // parts of 48 KiB cost 16-43 us more per request than 4 on one thread
  // (BM_SeedSplitAlone/48 against /80), and at half load 4 parts had the
  // lower p99 (bench/ab_latency.sh; BENCHMARKS.md, session 21).
  static constexpr size_t kPartBytes = 80u << 10;

  // What the request runs on. The request's thread owns all of it and does
  // not return before process() (or abandon()) returned.
  struct Job {
    std::string_view body;  // the whole decompressed request
    const codec::Limits* limits = nullptr;
    const pipeline::Pipeline* pipeline = nullptr;
    const rules::RulesManager::Snapshot* rules = nullptr;
    pipeline::WriteState* state = nullptr;
    const core::Clock* clock = nullptr;
    bool dry_run = false;
    bool run_stages = true;  // false: the codec-only baseline (decode, learn types, encode)
    size_t part_bytes = kPartBytes;  // the proxy's; BM_SeedSplitAlone times others
  };
  // How the parts went through the stages (cardinal_split_requests_total{stages}).
  enum class Shared { kShared, kAlone, kInOrder };

  // An object from this thread's small pool that no helper task holds any more.
  static std::shared_ptr<SplitRequest> acquire();

  // Cuts the job's body into parts; false when it cannot be cut in two (then
  // decode the request whole). On true, post runAsHelper() to another thread.
  bool start(const Job& job);
  // The posted task: takes parts while there are any left.
  void runAsHelper();

  // The request's thread, after start(): every part decoded and its types
  // learned (with the helper, if it came). False when a part did not decode
  // or the parts hold more series than the limit: decode the whole request
  // instead (call abandon() first).
  bool decode();
  // Then: every part through the stages, and encoded and compressed when it
  // changed or the job is codec-only. Returns when every part is done.
  Shared process();
  // Instead of process(), after decode(): leave the parts. It does not wait:
  // decode() already waited for every part, and a helper at (or late to) the
  // gate then leaves without touching the job.
  void abandon();

  size_t parts() const { return parts_; }
  codec::SeriesBatch& batch(size_t i) { return part_[i].batch; }
  const codec::SeriesBatch& batch(size_t i) const { return part_[i].batch; }
  // The part's 1.0 encoding, snappy-compressed (codec::joinCompressed takes
  // them), once process() or encode() made it.
  bool encoded(size_t i) const { return part_[i].encoded_valid; }
  const std::string& compressed(size_t i) const { return part_[i].compressed; }
  // The encoding of a part process() left as it was received.
  void encode(size_t i);
  // What is left of part i after process(): counted by the thread that ran
  // it through the stages (its series are in that core's cache).
  const codec::SeriesBatch::LiveCounts& live(size_t i) const { return part_[i].live; }
  bool changed(size_t i) const { return part_[i].changed; }  // SeriesBatch::anyChanged, likewise
  // Whether the helper ran part i through the stages.
  bool byHelper(size_t i) const { return part_[i].by_helper; }

 private:
  struct Part {
    std::string_view body;
    codec::SeriesBatch batch;
    core::Status decoded = core::Status::Ok();
    std::string encoded, compressed;
    bool encoded_valid = false;
    bool by_helper = false;  // the helper ran it through the stages
    codec::SeriesBatch::LiveCounts live;
    bool changed = false;
  };
  enum Gate : int { kDecoding, kProcessing, kStop };
  void decodePart(size_t i);
  void processPart(size_t i);
  // Claims parts one at a time while there are any, running `run`, counting
  // `done`: the request's thread from the first part on, the helper from the
  // last one back (`claimed`: one flag per part), so each thread runs through
  // the stages mostly the parts it decoded, and the pool's objects keep their
  // parts' buffers on one core from request to request.
  template <typename Run>
  void takeParts(std::array<std::atomic<bool>, kMaxParts>& claimed, std::atomic<size_t>& done, bool from_back,
                 Run run);
  void waitAll(std::atomic<size_t>& done);

  Job job_;
  size_t parts_ = 0;
  std::array<Part, kMaxParts> part_;
  std::array<std::atomic<bool>, kMaxParts> decode_claimed_{}, process_claimed_{};
  std::atomic<size_t> decoded_{0}, processed_{0};
  std::atomic<int> gate_{kDecoding};
  std::vector<uint64_t> shared_table_;
};

}  // namespace cardinal::server
