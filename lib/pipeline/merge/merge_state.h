#pragma once
// The merge engine: when a rule drops or rewrites labels, several input series
// map to one output series. MergeState keeps per-input and per-output state
// and turns the inputs' samples into type-correct output samples. Pure state
// and logic: no I/O, no threads, no clock of its own (every call takes the
// caller's `now_ms`, wall milliseconds). Thread-safe: add() runs concurrently
// on I/O threads, emit()/snapshot() on a timer; state is sharded by output
// hash with one mutex per shard.
//
// Identity. An output is its hash (the caller hashes the sorted output label
// set with core::hashLabels). An input is the pair (input hash, output hash),
// so a series that a new rule set sends to another output starts afresh
// there. Two label sets with one hash are detected on add() and the second is
// refused (Stats::hash_collisions).
//
// What must hold (DESIGN.md, "Semantics that must hold"):
//
// Counters (also histogram _bucket/_sum/_count and summary _sum/_count; the
// caller decides the kind). Each input contributes its first value plus the
// sum of its later increases, with per-input reset detection (v < last: the
// increase is v, not v - last). The output value is the sum of the
// contributions of every input ever attached to it. So the inputs present
// when an output is created set its starting level, an input that appears
// later counts in full from its first sample (a churning id series that
// appears once with 1 adds exactly 1), and the output never decreases.
// Negative counter values contribute 0. NaN and +-Inf are not counter values:
// they are skipped and counted (the input's timestamp still advances).
//
// Stale inputs. An incoming stale marker (NaN with bits 0x7ff0000000000002),
// or no accepted sample for Config::stale_after_ms of the caller's clock
// (checked in emit()), retires the input: its contribution stays in the
// output, and only a tombstone {last value, last timestamp} is kept for
// Config::tombstone_ms. If the input returns in that time, only its increase
// since the tombstone counts (reset detection included) and retried samples
// are still recognised. After the tombstone is gone (expired, or evicted at
// the input cap, see below) a returning input counts as new, in full: its
// level from before it left is then counted a second time. That is the one
// over-count, bounded by choosing tombstone_ms longer than a series is
// normally absent (the default, 1 h, is 12 x Prometheus' 5 min staleness).
//
// Gauges. The output is Options::gauge (sum, avg, min, max, count, last) over
// the last values of the live (not retired) inputs; `last` takes the input
// with the newest sample timestamp. A NaN gauge sample means "no value": that
// input is left out of the function until its next number. Options::quantiles
// add one gauge output per quantile, same labels plus quantile="<q>" (q in
// shortest round-trip form: 0.5, 0.9, 0.99), computed exactly over the same
// values with linear interpolation between closest ranks, as PromQL's
// quantile(). They are skipped if the output labels already hold `quantile`.
// With no live input holding a value, a gauge output emits nothing. A change
// of the live set alone (an input retired) does not trigger an emission; the
// next sample does.
//
// Native histograms (addHistograms()). An output holds either float samples
// or native histograms, never both: the first add()/addHistograms() that
// creates it decides, and samples of the other type are refused
// (AddResult::refused). Its kind comes from the histogram that creates it:
// reset_hint GAUGE makes a gauge histogram output, any other hint a counter
// one (the caller's family type is not used: a native histogram says itself).
// Each input histogram is decoded into absolute buckets (codec/histogram.h);
// an invalid one is refused, like a float NaN it still advances the input's
// timestamp. Bucket layouts: exponential schemas (-4..8) merge with each
// other, reduced to the coarsest schema seen (bucket i at schema s is bucket
// ceil(i / 2^(s - t)) at schema t < s, as Prometheus' targetIdx()), with the
// largest zero threshold, buckets below it folded into the zero count (as
// Prometheus' FloatHistogram.Add(); a threshold through a populated bucket is
// raised to that bucket's upper bound). An output's schema therefore only goes
// down and its zero threshold only up. Custom-bucket histograms (schema -53)
// merge only with the exact custom_values of the histogram that created the
// output; others (and exponential ones) are refused, and an exponential
// output refuses custom-bucket histograms.
//   Counter histograms follow the counter rules above bucket-wise: the output
// is the sum of the inputs' contributions, each input contributing its first
// histogram plus its later increases. An increase is new - last bucket-wise
// (last brought to the new schema and zero threshold first), or the new
// histogram in full on a reset, detected like Prometheus' DetectReset():
// reset_hint YES, count down, a bucket or the zero count down (or a populated
// bucket missing), a finer schema, a smaller zero threshold or a larger one
// that cuts through a populated bucket, custom bounds changed. A NO hint is
// not trusted (a decrease is a reset regardless). The sum of observations is
// carried along as new - last (it may go down: observations may be
// negative). Retries, out-of-order, staleness, tombstones (they keep the last
// histogram) and caps are as for float counters; a histogram input is one
// entry toward Config::max_inputs although it holds its last histogram. The output is written as an
// integer histogram while every count is an integer (always, for integer
// inputs; Prometheus 2.42 reads only integer histograms from remote write),
// else as a float histogram, with reset_hint UNKNOWN on an output's first
// emission (it may follow an earlier incarnation after a stale marker) and NO
// after that.
//   Gauge histograms: the output is the bucket-wise sum of the live inputs'
// last histograms (reset_hint GAUGE), emitted when a sample arrived, nothing
// when no live input holds one.
//   A histogram whose sum has the stale NaN bits is a stale marker: it
// retires the input. An output whose inputs are all retired emits a stale
// histogram (sum = stale NaN, schema 0, no buckets) as Prometheus does.
//
// Options and kind belong to an output: the first add() that creates it fixes
// them; later adds with other values are absorbed under the output's own.
//
// Emission. emit() appends one sample for every output that absorbed new data
// since its last emission; outputs without new data emit nothing. The
// timestamp is the largest input timestamp absorbed since the last emission,
// raised to last emitted + 1 if needed: timestamps per output strictly
// increase, so the receiver never sees a duplicate or out-of-order sample.
// An output whose inputs are all retired emits a stale marker (after its last
// data sample, timestamp max(last emitted + 1, newest input timestamp seen),
// for its quantile outputs too; none if it never emitted a sample) and its
// state is freed, tombstones included (swept by the next emit()):
// inputs that come back later make a new output with a new starting level,
// like a counter after a target restart.
//
// Retries. Per input, a sample with a timestamp <= the input's last one is
// ignored: == counts as a duplicate (a sender retry), < as out of order.
//
// Caps. Live inputs are never forgotten to save memory. Config::max_inputs
// counts input entries (live and tombstones); Config::max_outputs counts
// outputs. At the input cap the oldest tombstone (own shard first, then any
// other shard that is not busy) is evicted to make room; with none to evict, a
// NEW input is refused, and at the output cap a NEW output is refused: their
// samples are not absorbed and count in over_cap. The output under-counts
// what it refused and never double counts; a refused input admitted later
// counts in full from its first absorbed sample, like any late input.
// Evicting a tombstone early has the effect of its expiry (above), only
// sooner; Stats::tombstones_evicted counts it.
//
// Snapshot. snapshot() writes every output (labels, kind, options, counter
// total or histogram sum, pending data, last emitted timestamp), every input
// and tombstone (with its last histogram), in a versioned binary format
// (version 2; version 1, from before histograms, is still read) with a
// CRC-32 trailer and a fingerprint of
// core::hashLabels (hashes from another hash function would orphan the state,
// so such a snapshot is refused). restore() into a fresh MergeState gives the
// same outputs as if never restarted. Downtime does not count toward input
// staleness: the first emit() after restore() restarts the stale_after_ms
// timer of every restored live input. Stats counters are process counters and
// are not part of the snapshot.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/batch.h"
#include "codec/histogram.h"
#include "core/hash.h"
#include "core/labels.h"
#include "core/result.h"
#include "pipeline/merge/flat_hash_map.h"
#include "pipeline/merge/options.h"

namespace cardinal::pipeline::merge {

// Prometheus' stale marker: a NaN with this exact bit pattern.
inline constexpr uint64_t kStaleMarkerBits = 0x7ff0000000000002ULL;
bool isStaleMarker(double v);
double staleMarker();


struct Config {
  size_t max_outputs = 1'000'000;
  size_t max_inputs = 5'000'000;  // live inputs + tombstones
  int64_t stale_after_ms = 5 * 60'000;
  int64_t tombstone_ms = 60 * 60'000;
};

struct AddResult {
  size_t accepted = 0;       // samples absorbed as values
  size_t duplicates = 0;     // timestamp == the input's last (sender retry)
  size_t out_of_order = 0;   // timestamp < the input's last
  size_t over_cap = 0;       // refused: new input or output at the cap, or a hash collision
  size_t stale_markers = 0;  // incoming stale markers (input retired)
  size_t nan = 0;            // other NaNs (and +-Inf for counters): not values
  size_t refused = 0;        // refused: the output holds the other sample type (float vs native
                             // histogram), custom bucket bounds differ from the output's, or the
                             // native histogram is invalid
  AddResult& operator+=(const AddResult& o);
};

class MergeState {
 public:
  static constexpr size_t kShards = 16;

  struct Emitted {
    std::vector<std::pair<std::string, std::string>> labels;  // sorted by name
    // Float outputs: the sample. Native histogram outputs: its timestamp, and
    // as value the histogram's count (the stale marker for a stale one).
    codec::Sample sample;
    // Native histogram outputs: the encoded prometheus.Histogram fields
    // without the timestamp (field 15), which is sample.timestamp.
    std::optional<std::string> histogram;
  };

  struct Stats {
    size_t outputs = 0;
    size_t inputs = 0;      // live
    size_t tombstones = 0;  // retired inputs still remembered (incl. those of freed outputs until swept)
    uint64_t duplicates = 0;
    uint64_t out_of_order = 0;
    uint64_t over_cap = 0;
    uint64_t resets_detected = 0;
    uint64_t nan = 0;
    uint64_t hash_collisions = 0;
    uint64_t tombstones_evicted = 0;
    uint64_t stale_markers_emitted = 0;
    uint64_t refused = 0;
  };

  explicit MergeState(Config cfg);
  MergeState(const MergeState&) = delete;
  MergeState& operator=(const MergeState&) = delete;

  // Absorbs one input series' samples (timestamp order). `output_labels` are
  // sorted and unique; `output_hash` is core::hashLabels(output_labels).
  // Never allocates for an existing input of an existing output (a stale
  // marker may grow the tombstone queue).
  AddResult add(uint64_t input_hash, std::span<const core::LabelView> output_labels, uint64_t output_hash,
                Kind kind, const Options& opts, std::span<const codec::Sample> samples, int64_t now_ms);

  // add() for many input series (one request's): returns the sum of their
  // results (what callers count; a result per item would be 56 bytes written
  // and read back per series, cache lines the merge tables need).
  // Each shard's lock is taken once, and the table lookups of the next items
  // are overlapped with the current one. Items of one output keep their order.
  struct AddItem {
    uint64_t input_hash = 0;
    std::span<const core::LabelView> output_labels;
    uint64_t output_hash = 0;
    Kind kind = Kind::kCounter;
    const Options* opts = nullptr;
    std::span<const codec::Sample> samples;
  };
  AddResult addMany(std::span<const AddItem> items, int64_t now_ms);

  // Absorbs one input series' native histograms (timestamp order), with the
  // identity, retry, out-of-order, cap and tombstone rules of add(). The
  // output's kind comes from the histograms themselves: reset_hint GAUGE on
  // the histogram that creates it makes a gauge histogram output, anything
  // else a counter one. Allocates (decoding expands the buckets).
  AddResult addHistograms(uint64_t input_hash, std::span<const core::LabelView> output_labels,
                          uint64_t output_hash, std::span<const codec::HistogramView> histograms, int64_t now_ms);

  // Retires stale inputs, then appends the due output samples and stale
  // markers to `out` (in no particular order across outputs; per output in
  // timestamp order) and frees the outputs that are gone.
  void emit(int64_t now_ms, std::vector<Emitted>& out);

  std::string snapshot() const;
  // Restores a snapshot into a MergeState that has no state yet.
  core::Status restore(std::string_view data);

  Stats stats() const;

 private:
  struct InputKey {
    uint64_t input = 0;
    uint64_t output = 0;
    bool operator==(const InputKey&) const = default;
  };
  struct InputKeyHash {
    uint64_t operator()(const InputKey& k) const { return core::hashCombine(k.input, k.output); }
  };
  struct OutputKeyHash {
    uint64_t operator()(uint64_t h) const { return core::mix64(h ^ 0x5bd1e9955bd1e995ULL); }
  };

  struct Input {
    double last_value = 0;   // counters: last finite value; gauges: last value (NaN = none)
    int64_t last_ts = 0;     // last timestamp taken (values, NaNs, stale markers)
    int64_t seen_ms = 0;     // live: now_ms of the last accepted sample; retired: retired at
    uint32_t epoch = 0;      // the epoch of the output it belongs to; another epoch = orphan
    bool has_value = false;  // counters: a finite value was seen
    bool has_ts = false;
    bool retired = false;
  };
  static_assert(sizeof(Input) == 32, "5M inputs: keep the entry small");

  struct GaugeScratch {
    double sum = 0, min = 0, max = 0, last = 0;
    int64_t last_ts = 0;
    uint64_t last_input = 0;
    size_t n = 0;
  };

  struct HistogramOutput {
    // Counters: the sum of all contributions. Gauges: only its layout
    // (custom bounds or exponential) is used.
    codec::NativeHistogram acc;
    codec::NativeHistogram scratch;  // gauges, emit() only: sum of the live inputs' last histograms
    uint32_t scratch_n = 0;
  };

  struct Output {
    uint32_t epoch = 0;        // tells its inputs from those of a freed output with the same hash
    Kind kind = Kind::kCounter;
    GaugeFn fn = GaugeFn::kSum;
    bool dirty = false;                // absorbed data since the last emission
    uint32_t live_inputs = 0;
    double value = 0;                  // counters: sum of all contributions (retired ones included)
    int64_t pending_ts = 0;            // largest timestamp absorbed since the last emission
    int64_t last_emitted_ts = 0;
    bool emitted_any = false;
    int64_t max_seen_ts = 0;           // largest timestamp ever taken, stale markers included
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<double> quantiles;
    GaugeScratch scratch;              // emit() only
    std::vector<double> values;        // emit() only, for quantiles
    std::unique_ptr<HistogramOutput> hist;  // set: a native histogram output (never float samples)
  };

  struct TombRef {
    InputKey key;
    int64_t retired_ms;
  };

  struct Shard {
    mutable std::mutex mu;
    FlatHashMap<uint64_t, Output, OutputKeyHash> outputs;
    FlatHashMap<InputKey, Input, InputKeyHash> inputs;
    // Last histogram of each input of a histogram output that has one (live
    // or tombstone); erased together with the input entry.
    FlatHashMap<InputKey, codec::NativeHistogram, InputKeyHash> hists;
    std::deque<TombRef> tomb_fifo;  // retire order; entries may be stale (revived, swept)
    uint32_t next_epoch = 1;
    size_t live = 0;
    size_t tombs = 0;
    bool restore_grace = false;
    uint64_t duplicates = 0, out_of_order = 0, over_cap = 0, resets = 0, nan = 0, collisions = 0,
             evicted = 0, stale_emitted = 0, refused = 0;
  };

  static size_t shardIndex(uint64_t output_hash) { return core::mix64(output_hash) >> 60; }
  Shard& shardFor(uint64_t output_hash) { return shards_[shardIndex(output_hash)]; }
  AddResult addLocked(Shard& sh, const AddItem& item, int64_t now_ms);  // with sh locked

  bool admitInput(Shard& sh);
  // With sh locked: attaches a new input (or reuses the orphan entry `in`
  // under `key`), creating the output if `out` is null. nullptr: refused at
  // a cap.
  Input* attachInput(Shard& sh, Output*& out, Input* in, const InputKey& key,
                     std::span<const core::LabelView> output_labels, Kind kind, const Options& opts, bool histogram);
  static void eraseInput(Shard& sh, const InputKey& key);
  bool evictOneTombstone(Shard& sh);
  void retire(Shard& sh, const InputKey& key, Input& in, Output& out, int64_t now_ms);
  static void emitOutput(Output& out, std::vector<Emitted>& emitted);
  static bool sameLabels(const Output& out, std::span<const core::LabelView> labels);

  Config cfg_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> entries_{0};  // input entries (live + tombstones) over all shards
  std::atomic<size_t> outputs_{0};
};

}  // namespace cardinal::pipeline::merge
