#pragma once
// The cardinality engine's state: per metric family and label, sliding-window
// sketches (distinct values, label sets), the value-shape profile, unique ratio,
// heavy hitters, and the decisions taken from them (keep | normalize | drop |
// fold into __other__) with their reason, since-timestamp and hysteresis.
//
// Observation happens once per label set and sub-window (a SeenFilter answers
// "seen already" lock-free), so a series repeating every scrape costs one
// filter probe, not sketch updates. Decisions are taken inline, the moment a
// label crosses its limit, so an explosion is cut within the request that
// causes it; releases (hysteresis) run in maintain().
//
// Thread-safety: the family map is sharded (one mutex per shard); each family
// has its own mutex for its sketches and decisions. `active` is read without
// the lock, so families without decisions cost no lock on the hot path.
//
// Memory is bounded: max families, max labels per family, sketches of fixed
// size (docs/cardinality.md gives the bytes), and a byte budget enforced by
// maintain() (idle families without decisions go first).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/labels.h"
#include "core/result.h"
#include "pipeline/cardinality/sketch/seen_filter.h"
#include "pipeline/cardinality/sketch/space_saving.h"
#include "pipeline/cardinality/sketch/value_shape.h"
#include "pipeline/cardinality/sketch/windowed_distinct.h"
#include "pipeline/normalize/normalizers.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline::cardinality {

struct Config {
  WindowConfig window;                // 12 x 5 min = 1 h
  uint64_t identifier_limit = 100;    // distinct values of an identifier-shaped label (uuid, hex, token, ...)
  uint64_t enum_limit = 2000;         // distinct values of word-like labels (routes, countries, versions, ...)
  uint64_t max_series = 50'000;       // label sets per family before the adaptive label drop
  double template_ratio = 0.5;        // normalize when templating keeps <= this share of sampled values
  double release_ratio = 0.5;         // release a decision below release_ratio * the limit it crossed...
  int64_t release_hold_ms = 600'000;  // ...held for this long
  size_t max_families = 20'000;
  size_t max_labels_per_family = 32;
  size_t max_memory_bytes = size_t{512} << 20;
  size_t seen_filter_bits = size_t{1} << 24;  // per filter (two are kept): 2 MiB each
  uint32_t top_values = 10;                   // heavy hitters reported; Space-Saving keeps 4x
  bool dry_run = false;                       // decide and report, never act
};

enum class DecisionKind : uint8_t { kKeep, kNormalize, kDrop, kFold };
std::string_view decisionName(DecisionKind k);

// Shape classes for limits.
enum class ShapeClass : uint8_t { kIdentifier, kEnumerated, kTemplatable };
std::string_view shapeClassName(ShapeClass c);

// What the rules say for one family and one label (computed by the stage from the RuleSet).
struct LabelSettings {
  bool managed = true;  // false: protected or named by an explicit rule (explicit rules win)
  std::optional<uint64_t> limit;
  std::optional<uint32_t> top_k;
};
struct FamilySettings {
  rules::CardinalityMode mode = rules::CardinalityMode::kEnforce;
  std::optional<uint64_t> max_series;
};
class SettingsSource {
 public:
  virtual ~SettingsSource() = default;
  virtual uint64_t generation() const = 0;
  virtual FamilySettings family() const = 0;
  virtual LabelSettings label(std::string_view name) const = 0;
};

struct Decision {
  DecisionKind kind = DecisionKind::kKeep;
  normalize::Normalizer normalizer = normalize::Normalizer::kAuto;
  std::string reason;          // why, in words; values never appear in it
  int64_t since_ms = 0;        // wall clock of the last change (0: never decided)
  uint64_t threshold = 0;      // the limit it crossed; released below release_ratio * threshold
  int64_t below_since_ms = 0;  // hysteresis: below the release level since
  int64_t compacted_ms = 0;    // sketches freed over the memory budget: no release for a window after
  bool by_series_limit = false;
  std::vector<uint64_t> kept;  // fold: hashes of the values kept (sorted)
};

struct LabelState {
  LabelState(std::string n, const WindowConfig& w, uint32_t top_capacity)
      : name(std::move(n)), values(w), top(top_capacity) {}
  std::string name;
  WindowedDistinct values;                     // distinct raw values in the window
  std::optional<WindowedDistinct> normalized;  // distinct values after the decision's normalizer
  // Shape profile over new values, decayed by half at each sub-window roll-over.
  std::array<double, static_cast<size_t>(ValueShape::kCount_)> shapes{};
  double small_numbers = 0;  // numbers of <= 4 digits (status codes, shard numbers): enumerated
  double observations = 0;   // label-set observations carrying this label
  double new_values = 0;     // ... of which brought a value new to the sub-window
  double char_entropy_sum = 0;
  SpaceSaving top;           // heaviest values by label sets carrying them (also the templating sample)
  double estimate = 0;       // cached distinct estimate
  uint32_t pending = 0;      // new values since `estimate` was computed
  uint64_t next_template_check = 0;
  uint64_t settings_generation = ~uint64_t{0};
  LabelSettings settings;
  Decision decision;

  double uniqueRatio() const { return observations > 0 ? new_values / observations : 0; }
  ShapeClass shapeClass() const;
  ValueShape dominantShape(double* share = nullptr) const;
  uint64_t limit(const Config& cfg) const;
};

// Decisions as the stage applies them: copied out under the family lock.
struct AppliedLabel {
  std::string name;
  DecisionKind kind = DecisionKind::kKeep;
  normalize::Normalizer normalizer = normalize::Normalizer::kAuto;
  std::vector<uint64_t> kept;
};
struct Applied {
  std::vector<AppliedLabel> labels;  // sorted by name; kind != kKeep
  bool enforce = true;               // false: observe mode or --dry-run (count, do not change)
};

struct FamilyState {
  FamilyState(std::string n, const Config& cfg, int64_t now_ms)
      : name(std::move(n)), series(cfg.window), output_since(cfg.window), first_seen_ms(now_ms), last_seen_ms(now_ms) {}
  std::string name;
  mutable std::mutex mu;
  WindowedDistinct series;        // label sets (without le/quantile) in the window
  WindowedDistinct output_since;  // label sets after decisions, since the last decision change
  std::vector<std::unique_ptr<LabelState>> labels;
  uint64_t untracked_labels = 0;  // label names beyond max_labels_per_family
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  int64_t epoch = 0;  // sub-window of the last decay
  uint32_t output_pending = 0;
  double output_estimate = 0;
  FamilySettings settings;
  uint64_t settings_generation = ~uint64_t{0};
  bool series_limit_unresolved = false;  // over max_series with no label left to drop
  std::shared_ptr<const Applied> applied = std::make_shared<Applied>();
  std::atomic<uint32_t> active{0};  // labels with a decision other than keep (read lock-free)
  std::atomic<uint64_t> samples_in{0};
  std::atomic<uint64_t> samples_rewritten{0};  // routed to the merge engine by a decision
  std::atomic<uint64_t> series_rewritten{0};

  LabelState* findLabel(std::string_view label);
};

class CardinalityState {
 public:
  static constexpr size_t kShards = 32;
  explicit CardinalityState(Config cfg);

  const Config& config() const { return cfg_; }

  // Finds or creates the state of a family; null when the caps refuse a new one.
  std::shared_ptr<FamilyState> family(std::string_view name, int64_t now_ms);
  // Finds a family without creating it (stats, explain); null if untracked.
  std::shared_ptr<FamilyState> find(std::string_view name) const;
  // True if this label set was (probably) observed already in the current sub-window.
  bool seen(uint64_t label_set_key, int64_t now_ms);
  // Starts fetching what seen(label_set_key) will read.
  void prefetchSeen(uint64_t label_set_key) const { seen_.prefetch(label_set_key); }
  // Names the seen filter's current generation (after starting a new sub-window
  // if `now_ms` is in one), unique to this state object, never 0. A caller that
  // remembers, per label set, the epoch in which it called seen() for it (the
  // label-set plans do: codec::Series::seen) may skip seen() while the epoch
  // is the same: the filter has the label set. Any rotation (a new sub-window,
  // or the filter at capacity) makes a new epoch.
  uint64_t seenEpoch(int64_t now_ms);

  // Observes one label set of `f` (labels sorted; `__name__`, `le`, `quantile`
  // are not tracked) and re-evaluates the labels it carries. Caller holds f.mu.
  void observe(FamilyState& f, std::span<const core::LabelView> labels, uint64_t label_set_key,
               const SettingsSource& settings, int64_t now_ms);
  // Records the label set as it leaves the stage (after decisions, enforced or
  // not) and applies the family's series limit. Caller holds f.mu.
  void observeOutput(FamilyState& f, uint64_t output_key, const SettingsSource& settings, int64_t now_ms);

  // Periodic: releases decisions (hysteresis), refreshes top-K sets, decays,
  // enforces the memory budget. Called by a timer (and by tests).
  void maintain(int64_t now_ms);

  // For stats: a consistent copy of every family's pointer.
  std::vector<std::shared_ptr<FamilyState>> families() const;
  size_t familyCount() const;
  size_t memoryBytes() const { return memory_bytes_.load(std::memory_order_relaxed); }
  uint64_t untrackedFamilies() const { return untracked_families_.load(std::memory_order_relaxed); }
  uint64_t evictedFamilies() const { return evicted_families_.load(std::memory_order_relaxed); }
  uint64_t compactedFamilies() const { return compacted_families_.load(std::memory_order_relaxed); }
  // Labels by decision (drop, normalize, fold) as of the last maintain() pass.
  std::array<size_t, 3> labelsByDecision() const {
    return {labels_drop_.load(std::memory_order_relaxed), labels_normalize_.load(std::memory_order_relaxed),
            labels_fold_.load(std::memory_order_relaxed)};
  }
  uint64_t decisionsChanged() const { return decisions_changed_.load(std::memory_order_relaxed); }

  // Snapshot of sketches and decisions (restored at start, so a restart does not let raw ids through).
  std::string snapshot() const;
  core::Status restore(std::string_view data);

  static size_t familyMemory(const FamilyState& f);

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  struct Shard {
    mutable std::mutex mu;
    // Heterogeneous lookup: a string_view finds without building a std::string.
    std::unordered_map<std::string, std::shared_ptr<FamilyState>, NameHash, std::equal_to<>> map;
  };
  Shard& shardFor(std::string_view name);
  void rollOver(FamilyState& f, int64_t now_ms);
  void rotateSeen(int64_t now_ms);
  void refreshLabelSettings(FamilyState& f, LabelState& l, const SettingsSource& settings);
  void evaluate(FamilyState& f, LabelState& l, int64_t now_ms);
  void decide(FamilyState& f, LabelState& l, Decision d, int64_t now_ms);
  void rebuildApplied(FamilyState& f);
  bool tryTemplating(LabelState& l, Decision& out) const;
  size_t compact(FamilyState& f, int64_t now_ms);

  Config cfg_;
  std::array<Shard, kShards> shards_;
  SeenFilter seen_;
  std::atomic<int64_t> seen_epoch_{0};
  const uint64_t instance_;  // seenEpoch's high bits: a plan's mark is void for another state
  std::atomic<size_t> family_count_{0};
  std::atomic<size_t> memory_bytes_{0};
  std::atomic<uint64_t> untracked_families_{0};
  std::atomic<uint64_t> evicted_families_{0};
  std::atomic<uint64_t> compacted_families_{0};
  std::atomic<size_t> labels_drop_{0}, labels_normalize_{0}, labels_fold_{0};
  std::atomic<uint64_t> decisions_changed_{0};
};

// Wall-clock milliseconds as RFC 3339 (UTC), for stats and logs.
std::string formatTime(int64_t ms);

}  // namespace cardinal::pipeline::cardinality
