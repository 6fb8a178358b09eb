#pragma once
// Distinct count of 64-bit hashes over a sliding window, one instance per
// (metric family, label) in the cardinality engine. Single-threaded: the
// owner serializes access (the engine holds it under the family's lock).
//
// Time. The window is a ring of `sub_windows` sub-windows of `sub_window_ms`;
// epoch = now_ms / sub_window_ms, and the window at epoch E covers the epochs
// E - sub_windows + 1 .. E (the current sub-window is partial). The structure
// remembers the newest epoch it has seen and never moves back: an add() or an
// estimate() with an older now_ms is treated as happening in that newest
// epoch (late data counts as current; nothing is corrupted, no slot is
// rewritten with an old tag). Negative now_ms is treated as 0. Jumping
// forward by any amount is fine: slots whose epoch fell out of the window are
// ignored by the estimates and cleared lazily when their ring position is
// reused.
//
// Modes.
//   sparse  exact: a vector of (hash, last epoch seen) pairs sorted by hash,
//           16 bytes per distinct hash; pairs whose epoch left the window are
//           pruned when the vector is full. While sparse, every estimate is
//           the exact count of hashes seen within the asked-for sub-windows.
//   dense   once more than `sparse_limit` distinct hashes are live in the
//           window: one HyperLogLog register array (2^precision one-byte
//           registers) per ring slot, each slot tagged with its epoch. The
//           sparse pairs are replayed into the slots of their epochs. The
//           estimate is the HLL estimate of the register-wise max over the
//           slots inside the window, computed with Ertl's improved estimator
//           (2017): it includes the small-range (linear counting) correction
//           and has no bias bump where the classic estimator switches to
//           linear counting (around 2.5 m). Relative standard error
//           1.04 / sqrt(2^precision) (3.25 % at 10, 1.6 % at 12, 0.8 % at 14).
//           A dense instance never goes back to sparse, even when the window
//           empties: a label that was high-cardinality once keeps its
//           memory (S * 2^p bytes) until its owner drops the instance.
//
// Hashes are passed through core::mix64 before they feed registers, so the
// caller may hand in any well-spread 64-bit identity (core::hashBytes of the
// value); sparse mode stores the hash as given.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cardinal::pipeline::cardinality {

struct WindowConfig {
  uint32_t sub_windows = 12;       // ring of sub-windows; the window is sub_windows * sub_window_ms
  int64_t sub_window_ms = 300'000;  // 5 min
  uint8_t precision = 10;          // HLL registers = 2^precision (4..16)
  uint32_t sparse_limit = 128;     // exact mode up to this many distinct hashes, then dense HLL
};

class WindowedDistinct {
 public:
  // Limits the constructor clamps the configuration to (it cannot fail).
  static constexpr uint32_t kMaxSubWindows = 1024;
  static constexpr uint8_t kMinPrecision = 4;
  static constexpr uint8_t kMaxPrecision = 16;
  static constexpr uint32_t kMaxSparseLimit = 1u << 16;

  // Keeps a copy of `config`, clamped: sub_windows to [1, 1024], sub_window_ms
  // to >= 1, precision to [4, 16], sparse_limit to [0, 65536].
  explicit WindowedDistinct(const WindowConfig& config);

  // Returns true if the hash was new to the current sub-window as far as the
  // structure can tell (exact in sparse mode; in dense mode: a register of the
  // current slot changed). Allocation only when the sparse vector grows and,
  // once, when going dense.
  bool add(uint64_t hash, int64_t now_ms);
  // Over the whole window, including the current partial sub-window.
  double estimate(int64_t now_ms) const;
  // Only the last N sub-windows (1 = the current one only; N is clamped to
  // sub_windows; 0 gives 0).
  double estimateRecent(uint32_t sub_windows_back, int64_t now_ms) const;

  bool dense() const { return dense_; }
  // 0 while sparse (exact), 1.04 / sqrt(2^precision) when dense.
  double relativeError() const;
  // sizeof(*this) plus the heap it holds (vector capacities).
  size_t memoryBytes() const;
  const WindowConfig& config() const { return config_; }

  // Appends a versioned little-endian binary form.
  void serialize(std::string& out) const;
  // Consumes one serialized instance from the front of `in`. nullopt (and `in`
  // unchanged) on malformed input or a blob written with another
  // sub_windows / sub_window_ms / precision, or with more sparse pairs than
  // `config.sparse_limit`. Never reads past `in`, never allocates more than
  // the configuration implies (it is fuzzed).
  static std::optional<WindowedDistinct> deserialize(std::string_view& in, const WindowConfig& config);

 private:
  struct Pair {
    uint64_t hash;
    int64_t epoch;  // last epoch the hash was seen in
  };
  static constexpr int64_t kNoEpoch = -1;  // no add yet; an unused slot

  int64_t epochOf(int64_t now_ms) const;
  // The epoch the window ends at for a query at `now_ms`.
  int64_t queryEpoch(int64_t now_ms) const;
  size_t registerCount() const { return size_t{1} << config_.precision; }
  uint8_t* slotRegisters(size_t slot) { return registers_.data() + slot * registerCount(); }
  const uint8_t* slotRegisters(size_t slot) const { return registers_.data() + slot * registerCount(); }
  // Ensures the ring slot of `epoch` is tagged with it (clearing a stale one).
  size_t claimSlot(int64_t epoch);
  // Feeds a hash into the slot of `epoch`; whether a register grew.
  bool addDense(uint64_t hash, int64_t epoch);
  void goDense();
  // Drops sparse pairs that left the window ending at current_epoch_.
  void pruneSparse();
  double countRecent(uint32_t back, int64_t end_epoch) const;

  WindowConfig config_;
  int64_t current_epoch_ = kNoEpoch;
  bool dense_ = false;
  std::vector<Pair> sparse_;        // sorted by hash, unique
  std::vector<uint8_t> registers_;  // dense: sub_windows * 2^precision
  std::vector<int64_t> slot_epochs_;  // dense: the epoch each ring slot holds, or kNoEpoch
};

}  // namespace cardinal::pipeline::cardinality
