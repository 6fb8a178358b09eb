#pragma once
// One large remote-write 1.0 request worked on by two threads.
//
// Between its decompression and its compression a 2,000-series request costs
// the proxy about a millisecond of CPU (decode, stages, encode), and the
// sender waits for all of it before its 204. Cut at a top-level field
// boundary (codec::splitPoint), both parts of a 1.0 WriteRequest are
// WriteRequests themselves,
// and the encodings of two requests concatenate to the encoding of their
// union (every field of a WriteRequest is repeated); their snappy blocks join
// likewise (codec::joinCompressed). So the second half is decoded, run
// through the stages, encoded and compressed by another I/O thread while the
// request's own thread does the first half.
//
// Nothing waits for a thread that has not started: the request's thread
// claims the second half for itself when no other thread took it by the time
// the first half is decoded (every I/O thread busy: no gain, no loss). The
// halves meet once between decoding and the stages, so that
//   - every type is learned from both halves before any stage runs, as for a
//     whole request (a histogram's `_sum` in one half, its `_bucket`s in the
//     other);
//   - a series present in both halves (a sender catching up sends a series'
//     samples in several entries) has its halves run through the stages one
//     after the other, in the request's order, so no sample is taken for out
//     of order;
//   - a half that does not decode makes the whole request decode again on
//     one thread, so the error names the same series and byte as always.

#include <atomic>
#include <cstddef>
#include <memory>
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

// Whether a series of `a` has the label-set hash of one of `b` (may say yes
// for a few that do not; never no for one that does). `table` is scratch.
bool sharesSeries(const codec::SeriesBatch& a, const codec::SeriesBatch& b, std::vector<uint64_t>& table);

// The second half of a request: its inputs, its thread handoff, its results.
class SplitHalf {
 public:
  // What the half runs on. The request's thread owns all of it and does not
  // return before the half is finished with it (finish()).
  struct Job {
    std::string_view body;  // the second half's bytes
    const codec::Limits* limits = nullptr;
    const pipeline::Pipeline* pipeline = nullptr;
    const rules::RulesManager::Snapshot* rules = nullptr;
    pipeline::WriteState* state = nullptr;
    const core::Clock* clock = nullptr;
    bool dry_run = false;
    bool run_stages = true;  // false: the codec-only baseline (decode, learn types, encode)
  };

  // A half from this thread's small pool: one no other thread holds any more.
  static std::shared_ptr<SplitHalf> acquire();

  // Arms the half for `job`; then post runAsHelper() to another thread.
  void start(const Job& job);
  // The posted task: does nothing if the request's thread claimed the half.
  void runAsHelper();

  // The request's thread, once its own half is decoded and its types
  // learned: returns with this half decoded and its types learned, by the
  // helper or (when none had taken the half yet) here.
  void awaitDecoded();
  // Then: whether the helper runs the stages and the encoding of this half
  // (it does when it decoded the half and `helper_continues`); when not, the
  // request's thread calls process() itself.
  bool release(bool helper_continues);
  // Waits for the helper's process() after release(true); a no-op otherwise.
  // Safe to call on any path, any number of times (the request's thread must
  // call it before it lets go of what the Job points to).
  void finish();

  // Stages (unless the job says not to), then the encoding and its snappy
  // compression when this half changed or the job is codec-only.
  void process();
  // The same encoding for a half process() left as it was received.
  void encode();

  const core::Status& decoded() const { return decoded_; }
  codec::SeriesBatch& batch() { return batch_; }
  // The half's 1.0 encoding, snappy-compressed (codec::joinCompressed
  // takes it), once process() or encode() made it.
  bool encoded() const { return encoded_valid_; }
  const std::string& compressed() const { return compressed_; }
  pipeline::Outcome outcome() const { return outcome_; }

 private:
  enum Phase : int {
    kIdle,
    kPosted,           // waiting for a helper
    kHelperDecoding,   // a helper took it
    kDecoded,          // decoded (and types learned) by the helper
    kContinue,         // the helper may process it
    kStop,             // the helper must leave it
    kProcessed,        // the helper processed it
    kCallerOwns,       // the request's thread does everything itself
  };
  void decode();
  int waitWhile(int phase);

  Job job_;
  std::atomic<int> phase_{kIdle};
  core::Status decoded_ = core::Status::Ok();
  codec::SeriesBatch batch_;
  std::string encoded_, compressed_;
  bool encoded_valid_ = false;
  pipeline::Outcome outcome_ = pipeline::Outcome::kUnchanged;
};

}  // namespace cardinal::server
