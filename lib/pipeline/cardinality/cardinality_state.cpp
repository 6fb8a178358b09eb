#include "pipeline/cardinality/cardinality_state.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <unordered_set>

#include "core/binary_io.h"
#include "core/hash.h"
#include "core/log.h"

namespace cardinal::pipeline::cardinality {

namespace {

constexpr char kMagic[8] = {'C', 'R', 'D', 'C', 'A', 'R', 'D', 'N'};
constexpr uint32_t kVersion = 1;
constexpr size_t kShapeCount = static_cast<size_t>(ValueShape::kCount_);

bool untracked(std::string_view name) { return name == "__name__" || name == "le" || name == "quantile"; }

double shapeOf(const LabelState& l, ValueShape s) { return l.shapes[static_cast<size_t>(s)]; }

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 || v == std::floor(v) ? "%.0f" : "%.2f", v);
  return buf;
}

// Identifies the hash functions behind a snapshot's keys: kept values are
// core::hashBytes of the value; the windows' label-set keys are a plain
// series' core::hashLabels (codec::Series::hash), other series'
// hashBytes/hashCombine (CardinalityStage's labelSetKey). Keys made by other
// functions would count every label set twice in the window after a restart,
// so a snapshot that has them is refused. The label-set functions enter as the
// difference of a probe from its value when they were added to the
// fingerprint (zero with the same functions), so snapshots written before that
// still load.
uint64_t hashFingerprint() {
  constexpr uint64_t kLabelSetProbe = 0x93ec950b1ceb3990ULL;
  const core::LabelView probe[] = {{"__name__", "cardinal_cardinality_probe"}, {"job", "probe"}};
  const uint64_t label_sets = core::hashCombine(core::hashLabels(probe), 0x5eed) ^ kLabelSetProbe;
  return core::hashBytes("cardinal-cardinality-probe") ^ label_sets;
}

// A template made of placeholders and separators only ("{id}", "{uuid}-{num}")
// carries no information: the label is an identifier.
bool placeholdersOnly(std::string_view t) {
  bool in_placeholder = false;
  for (char c : t) {
    if (c == '{') in_placeholder = true;
    else if (c == '}') in_placeholder = false;
    else if (!in_placeholder && std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string_view decisionName(DecisionKind k) {
  switch (k) {
    case DecisionKind::kKeep: return "keep";
    case DecisionKind::kNormalize: return "normalize";
    case DecisionKind::kDrop: return "drop";
    case DecisionKind::kFold: return "fold";
  }
  return "keep";
}

std::string_view shapeClassName(ShapeClass c) {
  switch (c) {
    case ShapeClass::kIdentifier: return "identifier";
    case ShapeClass::kEnumerated: return "enumerated";
    case ShapeClass::kTemplatable: return "templatable";
  }
  return "enumerated";
}

std::string formatTime(int64_t ms) {
  if (ms <= 0) return "";
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// ---- LabelState ------------------------------------------------------------

ValueShape LabelState::dominantShape(double* share) const {
  double total = 0, best = -1;
  size_t best_i = static_cast<size_t>(ValueShape::kWord);
  for (size_t i = 0; i < kShapeCount; ++i) {
    total += shapes[i];
    if (shapes[i] > best) best = shapes[i], best_i = i;
  }
  if (share) *share = total > 0 ? best / total : 0;
  return static_cast<ValueShape>(best_i);
}

// Identifier shapes (uuid, hex, tokens, timestamps, emails, IPs, and numbers of
// more than 4 digits when most label sets bring a new value) get the identifier
// limit; paths and free text are tried as templates first; the rest (words,
// small numbers, versions) are enumerated values.
ShapeClass LabelState::shapeClass() const {
  double total = 0;
  for (double v : shapes) total += v;
  if (total <= 0) return ShapeClass::kEnumerated;
  double id = shapeOf(*this, ValueShape::kUuid) + shapeOf(*this, ValueShape::kHex) + shapeOf(*this, ValueShape::kToken) +
              shapeOf(*this, ValueShape::kTimestamp) + shapeOf(*this, ValueShape::kEmail) +
              shapeOf(*this, ValueShape::kIp);
  const double big_numbers = std::max(0.0, shapeOf(*this, ValueShape::kNumber) - small_numbers);
  if (uniqueRatio() > 0.5) id += big_numbers;
  if (id >= 0.5 * total) return ShapeClass::kIdentifier;
  if (shapeOf(*this, ValueShape::kPath) + shapeOf(*this, ValueShape::kText) >= 0.5 * total)
    return ShapeClass::kTemplatable;
  return ShapeClass::kEnumerated;
}

uint64_t LabelState::limit(const Config& cfg) const {
  if (settings.limit) return *settings.limit;
  return shapeClass() == ShapeClass::kIdentifier ? cfg.identifier_limit : cfg.enum_limit;
}

LabelState* FamilyState::findLabel(std::string_view label) {
  for (auto& l : labels)
    if (l->name == label) return l.get();
  return nullptr;
}

// ---- CardinalityState --------------------------------------------------------

namespace {
std::atomic<uint64_t> g_instances{0};
}  // namespace

CardinalityState::CardinalityState(Config cfg)
    : cfg_(cfg), seen_(cfg.seen_filter_bits), instance_(g_instances.fetch_add(1, std::memory_order_relaxed) + 1) {}

CardinalityState::Shard& CardinalityState::shardFor(std::string_view name) {
  return shards_[core::hashBytes(name) % kShards];
}

std::shared_ptr<FamilyState> CardinalityState::family(std::string_view name, int64_t now_ms) {
  Shard& sh = shardFor(name);
  std::lock_guard lock(sh.mu);
  if (auto it = sh.map.find(name); it != sh.map.end()) return it->second;
  if (family_count_.load(std::memory_order_relaxed) >= cfg_.max_families ||
      memory_bytes_.load(std::memory_order_relaxed) >= cfg_.max_memory_bytes) {
    untracked_families_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto f = std::make_shared<FamilyState>(std::string(name), cfg_, now_ms);
  f->epoch = now_ms / cfg_.window.sub_window_ms;
  sh.map.emplace(f->name, f);
  family_count_.fetch_add(1, std::memory_order_relaxed);
  // Counted now, corrected by maintain(): a burst of new families cannot outrun the budget.
  memory_bytes_.fetch_add(familyMemory(*f), std::memory_order_relaxed);
  return f;
}

std::shared_ptr<FamilyState> CardinalityState::find(std::string_view name) const {
  const Shard& sh = shards_[core::hashBytes(name) % kShards];
  std::lock_guard lock(sh.mu);
  auto it = sh.map.find(name);
  return it == sh.map.end() ? nullptr : it->second;
}

void CardinalityState::rotateSeen(int64_t now_ms) {
  const int64_t epoch = now_ms / cfg_.window.sub_window_ms;
  int64_t prev = seen_epoch_.load(std::memory_order_relaxed);
  if (epoch > prev && seen_epoch_.compare_exchange_strong(prev, epoch)) seen_.rotate();
}

uint64_t CardinalityState::seenEpoch(int64_t now_ms) {
  rotateSeen(now_ms);
  // 24 bits of instance, 40 of generation (a rotation a millisecond would take 34 years to wrap).
  return (instance_ << 40) | (seen_.rotations() & ((uint64_t{1} << 40) - 1));
}

bool CardinalityState::seen(uint64_t label_set_key, int64_t now_ms) {
  rotateSeen(now_ms);  // each sub-window observes every label set once more
  return seen_.testAndSet(label_set_key);
}

void CardinalityState::rollOver(FamilyState& f, int64_t now_ms) {
  const int64_t epoch = now_ms / cfg_.window.sub_window_ms;
  if (epoch <= f.epoch) return;  // same sub-window, or the clock went back: nothing decays
  const int64_t steps = std::min<int64_t>(epoch - f.epoch, 16);
  const double factor = std::ldexp(1.0, -static_cast<int>(steps));
  for (auto& l : f.labels) {
    for (double& v : l->shapes) v *= factor;
    l->small_numbers *= factor;
    l->observations *= factor;
    l->new_values *= factor;
    l->char_entropy_sum *= factor;
    for (int64_t i = 0; i < steps; ++i) l->top.decay();
  }
  f.epoch = epoch;
}

void CardinalityState::refreshLabelSettings(FamilyState& f, LabelState& l, const SettingsSource& settings) {
  l.settings = settings.label(l.name);
  l.settings_generation = settings.generation();
  if (!l.settings.managed && l.decision.kind != DecisionKind::kKeep) {
    Decision d;
    d.reason = "a rule names this label (explicit rules win)";
    decide(f, l, std::move(d), f.last_seen_ms);
  }
}

void CardinalityState::observe(FamilyState& f, std::span<const core::LabelView> labels, uint64_t label_set_key,
                               const SettingsSource& settings, int64_t now_ms) {
  rollOver(f, now_ms);
  f.last_seen_ms = std::max(f.last_seen_ms, now_ms);
  if (f.settings_generation != settings.generation()) {
    f.settings = settings.family();
    f.settings_generation = settings.generation();
    for (auto& l : f.labels) refreshLabelSettings(f, *l, settings);
    rebuildApplied(f);  // the mode may have changed
  }
  if (f.settings.mode == rules::CardinalityMode::kOff) return;
  f.series.add(label_set_key, now_ms);
  std::string normalized;
  for (const auto& lv : labels) {
    if (untracked(lv.name)) continue;
    LabelState* l = f.findLabel(lv.name);
    if (!l) {
      if (f.labels.size() >= cfg_.max_labels_per_family) {
        ++f.untracked_labels;
        continue;
      }
      f.labels.push_back(std::make_unique<LabelState>(std::string(lv.name), cfg_.window, cfg_.top_values * 4));
      l = f.labels.back().get();
    }
    if (l->settings_generation != settings.generation()) refreshLabelSettings(f, *l, settings);
    const uint64_t vh = core::hashBytes(lv.value);
    const bool is_new = l->values.add(vh, now_ms);
    l->observations += 1;
    l->top.add(vh, lv.value);
    if (!is_new) continue;
    l->new_values += 1;
    const ValueShape shape = classifyValue(lv.value);
    l->shapes[static_cast<size_t>(shape)] += 1;
    if (shape == ValueShape::kNumber && lv.value.size() <= 4) l->small_numbers += 1;
    l->char_entropy_sum += charEntropyBits(lv.value);
    if (l->decision.kind == DecisionKind::kNormalize && l->normalized) {
      const bool changed = normalize::normalize(l->decision.normalizer, lv.value, normalized);
      l->normalized->add(core::hashBytes(changed ? std::string_view(normalized) : lv.value), now_ms);
    }
    // The estimate is refreshed when the new values since the last one could
    // have moved it by ~3%: dense estimates cost a pass over the registers.
    if (++l->pending >= std::max<uint32_t>(1, static_cast<uint32_t>(l->estimate / 32))) {
      l->estimate = l->values.estimate(now_ms);
      l->pending = 0;
      if (l->settings.managed) evaluate(f, *l, now_ms);
    }
  }
}

bool CardinalityState::tryTemplating(LabelState& l, Decision& out) const {
  auto sample = l.top.top(l.top.total() > 0 ? cfg_.top_values * 4 : 0);
  if (sample.size() < 16) return false;
  using normalize::Normalizer;
  static constexpr Normalizer kCandidates[] = {Normalizer::kAuto, Normalizer::kUrlPath, Normalizer::kFilePath,
                                               Normalizer::kSql};
  std::string buf;
  size_t best_templates = sample.size() + 1;
  Normalizer best = Normalizer::kAuto;
  bool best_placeholders_only = false;
  for (Normalizer n : kCandidates) {
    std::unordered_set<std::string> templates;
    size_t changed = 0;
    bool placeholders = true;
    for (const auto& hh : sample) {
      if (normalize::normalize(n, hh.value, buf)) {
        ++changed;
        placeholders = placeholders && placeholdersOnly(buf);
        templates.insert(buf);
      } else {
        placeholders = false;
        templates.insert(hh.value);
      }
    }
    if (changed * 2 < sample.size()) continue;  // this normalizer does not apply to these values
    if (templates.size() < best_templates) {
      best_templates = templates.size();
      best = n;
      best_placeholders_only = placeholders;
    }
  }
  if (best_templates > cfg_.template_ratio * static_cast<double>(sample.size())) return false;
  const std::string seen = fmt(l.estimate) + " distinct values in the window; a sample of " +
                           std::to_string(sample.size()) + " collapses to " + std::to_string(best_templates) +
                           " template" + (best_templates == 1 ? "" : "s") + " with normalizer " +
                           std::string(normalize::normalizerName(best));
  if (best_placeholders_only) {
    out.kind = DecisionKind::kDrop;
    out.reason = seen + " made of placeholders only: the values are identifiers";
  } else {
    out.kind = DecisionKind::kNormalize;
    out.normalizer = best;
    out.reason = seen;
  }
  return true;
}

void CardinalityState::evaluate(FamilyState& f, LabelState& l, int64_t now_ms) {
  if (f.settings.mode == rules::CardinalityMode::kOff) return;
  const double est = l.estimate;
  const uint64_t limit = l.limit(cfg_);
  const ShapeClass cls = l.shapeClass();
  double share = 0;
  const ValueShape shape = l.dominantShape(&share);
  auto profile = [&] {
    return "(mostly " + std::string(shapeName(shape)) + " " + fmt(share * 100) + "%, unique ratio " +
           fmt(l.uniqueRatio()) + ")";
  };
  switch (l.decision.kind) {
    case DecisionKind::kKeep: {
      if (l.settings.top_k && est > *l.settings.top_k) {
        Decision d;
        d.kind = DecisionKind::kFold;
        d.threshold = *l.settings.top_k;
        for (const auto& hh : l.top.top(*l.settings.top_k)) d.kept.push_back(core::hashBytes(hh.value));
        std::sort(d.kept.begin(), d.kept.end());
        d.reason = fmt(est) + " distinct values > top_k " + std::to_string(*l.settings.top_k) +
                   ": the heaviest are kept, the rest folded into __other__";
        return decide(f, l, std::move(d), now_ms);
      }
      // Templating first: paths and free text as soon as they pass the
      // identifier limit, any other non-identifier label before it is dropped.
      // A template of placeholders only ("{id}") keeps nothing: not a reason
      // to normalize, and no reason to drop a label still under its limit.
      const uint64_t template_at = cls == ShapeClass::kTemplatable ? std::min(limit, cfg_.identifier_limit) : limit;
      if (cls != ShapeClass::kIdentifier && est > static_cast<double>(template_at) &&
          est >= static_cast<double>(l.next_template_check)) {
        l.next_template_check = static_cast<uint64_t>(est * 2);
        Decision d;
        d.threshold = template_at;
        if (tryTemplating(l, d) && (d.kind == DecisionKind::kNormalize || est > static_cast<double>(limit))) {
          if (d.kind == DecisionKind::kDrop) d.threshold = limit;  // a normalize releases below the template level
          return decide(f, l, std::move(d), now_ms);
        }
      }
      if (est > static_cast<double>(limit)) {
        Decision d;
        d.kind = DecisionKind::kDrop;
        d.threshold = limit;
        d.reason = fmt(est) + " distinct values in the window " + profile() + " > " +
                   (l.settings.limit ? "the rule's limit " : std::string(shapeClassName(cls)) + " limit ") +
                   std::to_string(limit);
        return decide(f, l, std::move(d), now_ms);
      }
      return;
    }
    case DecisionKind::kNormalize: {
      if (!l.normalized) return;
      const double n = l.normalized->estimate(now_ms);
      const uint64_t nlimit = l.settings.limit.value_or(cfg_.enum_limit);
      if (n > static_cast<double>(nlimit)) {
        Decision d;
        d.kind = DecisionKind::kDrop;
        d.threshold = l.decision.threshold;
        d.reason = "normalized with " + std::string(normalize::normalizerName(l.decision.normalizer)) + ", still " +
                   fmt(n) + " distinct values > limit " + std::to_string(nlimit);
        return decide(f, l, std::move(d), now_ms);
      }
      return;
    }
    case DecisionKind::kDrop:
    case DecisionKind::kFold: return;
  }
}

void CardinalityState::decide(FamilyState& f, LabelState& l, Decision d, int64_t now_ms) {
  d.since_ms = now_ms;
  const bool was_keep = l.decision.kind == DecisionKind::kKeep;
  if (d.kind == DecisionKind::kNormalize) l.normalized.emplace(cfg_.window);
  else l.normalized.reset();
  l.decision = std::move(d);
  if (l.decision.kind == DecisionKind::kKeep) l.next_template_check = 0;
  rebuildApplied(f);
  f.output_since = WindowedDistinct(cfg_.window);
  f.output_estimate = 0;
  f.output_pending = 0;
  f.series_limit_unresolved = false;
  decisions_changed_.fetch_add(1, std::memory_order_relaxed);
  if (was_keep && l.decision.kind == DecisionKind::kKeep) return;
  const bool enforced = f.applied->enforce;
  core::logInfo("cardinality decision", {{"family", f.name},
                                         {"label", l.name},
                                         {"decision", std::string(decisionName(l.decision.kind))},
                                         {"enforced", enforced ? "true" : "false"},
                                         {"reason", l.decision.reason}});
}

void CardinalityState::rebuildApplied(FamilyState& f) {
  auto a = std::make_shared<Applied>();
  a->enforce = !cfg_.dry_run && f.settings.mode == rules::CardinalityMode::kEnforce;
  for (const auto& l : f.labels) {
    if (l->decision.kind == DecisionKind::kKeep) continue;
    a->labels.push_back({l->name, l->decision.kind, l->decision.normalizer, l->decision.kept});
  }
  std::sort(a->labels.begin(), a->labels.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  f.active.store(static_cast<uint32_t>(a->labels.size()), std::memory_order_relaxed);
  f.applied = std::move(a);
}

void CardinalityState::observeOutput(FamilyState& f, uint64_t output_key, const SettingsSource& settings,
                                     int64_t now_ms) {
  (void)settings;
  if (f.settings.mode == rules::CardinalityMode::kOff) return;
  if (!f.output_since.add(output_key, now_ms)) return;
  if (++f.output_pending < std::max<uint32_t>(1, static_cast<uint32_t>(f.output_estimate / 32))) return;
  f.output_pending = 0;
  f.output_estimate = f.output_since.estimate(now_ms);
  const uint64_t limit = f.settings.max_series.value_or(cfg_.max_series);
  if (f.output_estimate <= static_cast<double>(limit)) return;
  // Over the family's series limit: drop the label contributing most, then
  // count again from zero (the next label goes only if still over).
  LabelState* worst = nullptr;
  for (auto& l : f.labels) {
    if (!l->settings.managed || l->decision.kind != DecisionKind::kKeep) continue;
    l->estimate = l->values.estimate(now_ms);
    l->pending = 0;
    if (l->estimate > 1 && (!worst || l->estimate > worst->estimate)) worst = l.get();
  }
  if (!worst) {
    if (!f.series_limit_unresolved)
      core::logWarn("cardinality: family over its series limit with no label left to drop",
                    {{"family", f.name}, {"limit", std::to_string(limit)}});
    f.series_limit_unresolved = true;
    return;
  }
  Decision d;
  d.kind = DecisionKind::kDrop;
  d.threshold = limit;
  d.by_series_limit = true;
  d.reason = "family over its series limit: " + fmt(f.output_estimate) + " label sets > " + std::to_string(limit) +
             "; this label has the most distinct values (" + fmt(worst->estimate) + ")";
  decide(f, *worst, std::move(d), now_ms);
}

size_t CardinalityState::familyMemory(const FamilyState& f) {
  size_t bytes = sizeof(FamilyState) + f.name.capacity() + f.series.memoryBytes() + f.output_since.memoryBytes() +
                 f.labels.capacity() * sizeof(void*) + sizeof(Applied) + f.applied->labels.size() * sizeof(AppliedLabel);
  for (const auto& l : f.labels) {
    bytes += sizeof(LabelState) + l->name.capacity() + l->values.memoryBytes() + l->top.memoryBytes() +
             l->decision.reason.capacity() + l->decision.kept.capacity() * sizeof(uint64_t);
    if (l->normalized) bytes += l->normalized->memoryBytes();
  }
  return bytes;
}

void CardinalityState::maintain(int64_t now_ms) {
  rotateSeen(now_ms);  // at a sub-window boundary even without traffic
  const int64_t window_ms = cfg_.window.sub_window_ms * static_cast<int64_t>(cfg_.window.sub_windows);
  struct Candidate {
    int64_t last_seen;
    size_t bytes;
    std::string name;
    bool idle;
  };
  std::vector<Candidate> evictable;
  size_t total = seen_.memoryBytes();
  size_t drop = 0, normalize = 0, fold = 0;
  for (auto& sh : shards_) {
    std::vector<std::shared_ptr<FamilyState>> fams;
    {
      std::lock_guard lock(sh.mu);
      for (auto& [name, f] : sh.map) fams.push_back(f);
    }
    for (auto& fp : fams) {
      FamilyState& f = *fp;
      std::lock_guard lock(f.mu);
      rollOver(f, now_ms);
      const double family_series = f.series.estimate(now_ms);
      for (auto& lp : f.labels) {
        LabelState& l = *lp;
        l.estimate = l.values.estimate(now_ms);
        l.pending = 0;
        if (l.decision.kind == DecisionKind::kKeep) continue;
        const double level = l.decision.by_series_limit ? family_series : l.estimate;
        const double release_at = cfg_.release_ratio * static_cast<double>(l.decision.threshold);
        // After a compaction the sketch only covers the time since: trust it after a whole window.
        const bool trusted = l.decision.compacted_ms == 0 || now_ms - l.decision.compacted_ms >= window_ms;
        if (level < release_at && trusted) {
          if (l.decision.below_since_ms == 0) l.decision.below_since_ms = now_ms;
          else if (now_ms - l.decision.below_since_ms >= cfg_.release_hold_ms) {
            Decision d;
            d.reason = "released: " + fmt(level) + (l.decision.by_series_limit ? " label sets" : " distinct values") +
                       " < " + fmt(release_at) + " for " + std::to_string(cfg_.release_hold_ms / 1000) + "s (was " +
                       std::string(decisionName(l.decision.kind)) + ")";
            decide(f, l, std::move(d), now_ms);
            continue;
          }
        } else {
          l.decision.below_since_ms = 0;
        }
        if (l.decision.kind == DecisionKind::kFold && l.settings.top_k) {
          // Hysteresis on the kept set too: a kept value stays while it is in
          // the top 2K; free places go to the heaviest values.
          const uint32_t k = *l.settings.top_k;
          auto ranked = l.top.top(2 * k);
          std::vector<uint64_t> kept;
          for (const auto& hh : ranked) {
            const uint64_t h = core::hashBytes(hh.value);
            if (std::binary_search(l.decision.kept.begin(), l.decision.kept.end(), h)) kept.push_back(h);
          }
          for (const auto& hh : ranked) {
            if (kept.size() >= k) break;
            const uint64_t h = core::hashBytes(hh.value);
            if (std::find(kept.begin(), kept.end(), h) == kept.end()) kept.push_back(h);
          }
          std::sort(kept.begin(), kept.end());
          if (kept != l.decision.kept) {
            l.decision.kept = std::move(kept);
            rebuildApplied(f);
          }
        }
      }
      for (const auto& lp : f.labels) {
        drop += lp->decision.kind == DecisionKind::kDrop;
        normalize += lp->decision.kind == DecisionKind::kNormalize;
        fold += lp->decision.kind == DecisionKind::kFold;
      }
      const size_t bytes = familyMemory(f);
      total += bytes;
      if (f.active.load(std::memory_order_relaxed) == 0)
        evictable.push_back({f.last_seen_ms, bytes, f.name, now_ms - f.last_seen_ms > window_ms});
    }
  }
  // Idle families (nothing in a whole window, no decision) go first; then, over
  // the budget, the least recently seen families without decisions. Families
  // with decisions are kept: forgetting them would let raw ids through again.
  std::sort(evictable.begin(), evictable.end(), [](const auto& a, const auto& b) { return a.last_seen < b.last_seen; });
  for (const auto& c : evictable) {
    if (!c.idle && total <= cfg_.max_memory_bytes) break;
    Shard& sh = shardFor(c.name);
    std::lock_guard lock(sh.mu);
    if (sh.map.erase(c.name)) {
      family_count_.fetch_sub(1, std::memory_order_relaxed);
      evicted_families_.fetch_add(1, std::memory_order_relaxed);
      total -= std::min(total, c.bytes);
    }
  }
  // Still over: compact families with decisions, least recently seen first.
  // Their decisions stay (pinned for a window); their dense sketches start over.
  if (total > cfg_.max_memory_bytes) {
    auto fams = families();
    std::sort(fams.begin(), fams.end(), [](const auto& a, const auto& b) { return a->last_seen_ms < b->last_seen_ms; });
    for (auto& fp : fams) {
      if (total <= cfg_.max_memory_bytes) break;
      std::lock_guard lock(fp->mu);
      total -= std::min(total, compact(*fp, now_ms));
    }
  }
  memory_bytes_.store(total, std::memory_order_relaxed);
  labels_drop_.store(drop, std::memory_order_relaxed);
  labels_normalize_.store(normalize, std::memory_order_relaxed);
  labels_fold_.store(fold, std::memory_order_relaxed);
}

size_t CardinalityState::compact(FamilyState& f, int64_t now_ms) {
  const size_t before = familyMemory(f);
  bool any = false;
  auto reset = [&](WindowedDistinct& w) {
    if (!w.dense()) return;
    w = WindowedDistinct(cfg_.window);
    any = true;
  };
  reset(f.series);
  reset(f.output_since);
  f.output_estimate = 0;
  for (auto& l : f.labels) {
    if (l->decision.kind == DecisionKind::kKeep) continue;
    const bool was_dense = l->values.dense() || (l->normalized && l->normalized->dense());
    reset(l->values);
    if (l->normalized) reset(*l->normalized);
    if (was_dense) l->decision.compacted_ms = now_ms;
    l->estimate = 0;
  }
  if (any) compacted_families_.fetch_add(1, std::memory_order_relaxed);
  const size_t after = familyMemory(f);
  return before > after ? before - after : 0;
}

std::vector<std::shared_ptr<FamilyState>> CardinalityState::families() const {
  std::vector<std::shared_ptr<FamilyState>> out;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    for (const auto& [name, f] : sh.map) out.push_back(f);
  }
  return out;
}

size_t CardinalityState::familyCount() const { return family_count_.load(std::memory_order_relaxed); }

// ---- snapshot ------------------------------------------------------------------

std::string CardinalityState::snapshot() const {
  std::string buf;
  core::BinaryWriter w(buf);
  buf.append(kMagic, sizeof kMagic);
  w.put<uint32_t>(kVersion);
  w.put<uint64_t>(hashFingerprint());
  auto fams = families();
  w.put<uint64_t>(fams.size());
  for (const auto& fp : fams) {
    const FamilyState& f = *fp;
    std::lock_guard lock(f.mu);
    w.str(f.name);
    w.put<int64_t>(f.first_seen_ms);
    w.put<int64_t>(f.last_seen_ms);
    w.put<int64_t>(f.epoch);
    w.put<uint64_t>(f.untracked_labels);
    w.put<uint64_t>(f.samples_in.load());
    w.put<uint64_t>(f.samples_rewritten.load());
    w.put<uint64_t>(f.series_rewritten.load());
    f.series.serialize(buf);
    w.put<uint32_t>(static_cast<uint32_t>(f.labels.size()));
    for (const auto& lp : f.labels) {
      const LabelState& l = *lp;
      w.str(l.name);
      l.values.serialize(buf);
      w.put<uint8_t>(l.normalized ? 1 : 0);
      if (l.normalized) l.normalized->serialize(buf);
      w.put<uint32_t>(static_cast<uint32_t>(kShapeCount));
      for (double v : l.shapes) w.put<double>(v);
      w.put<double>(l.small_numbers);
      w.put<double>(l.observations);
      w.put<double>(l.new_values);
      w.put<double>(l.char_entropy_sum);
      l.top.serialize(buf);
      w.put<uint64_t>(l.next_template_check);
      const Decision& d = l.decision;
      w.put<uint8_t>(static_cast<uint8_t>(d.kind));
      w.put<uint8_t>(static_cast<uint8_t>(d.normalizer));
      w.str(d.reason);
      w.put<int64_t>(d.since_ms);
      w.put<uint64_t>(d.threshold);
      w.put<int64_t>(d.below_since_ms);
      w.put<int64_t>(d.compacted_ms);
      w.put<uint8_t>(d.by_series_limit ? 1 : 0);
      w.put<uint32_t>(static_cast<uint32_t>(d.kept.size()));
      for (uint64_t h : d.kept) w.put<uint64_t>(h);
    }
  }
  w.put<uint32_t>(core::crc32(buf));
  return buf;
}

namespace {
core::Error snapshotError(std::string what) { return core::Error{"cardinality snapshot: " + std::move(what)}; }

// Reads a nested sketch with its own deserializer, advancing the reader.
template <typename Sketch, typename... Args>
std::optional<Sketch> readSketch(core::BinaryReader& r, Args&&... args) {
  std::string_view rest = r.rest();
  const size_t before = rest.size();
  auto s = Sketch::deserialize(rest, std::forward<Args>(args)...);
  if (!s) {
    r.fail();
    return std::nullopt;
  }
  r.skip(before - rest.size());
  return s;
}
}  // namespace

core::Status CardinalityState::restore(std::string_view data) {
  constexpr size_t kHeader = sizeof kMagic + 4 + 8;
  if (data.size() < kHeader + 4) return snapshotError("too short (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) return snapshotError("not a cardinality snapshot (bad magic)");
  uint32_t crc;
  std::memcpy(&crc, data.data() + data.size() - 4, 4);
  if (core::crc32(data.substr(0, data.size() - 4)) != crc) return snapshotError("checksum mismatch (truncated or corrupt)");
  core::BinaryReader r(data.substr(sizeof kMagic, data.size() - sizeof kMagic - 4), sizeof kMagic);
  uint32_t version = 0;
  uint64_t fingerprint = 0, n_families = 0;
  r.get(version);
  if (version != kVersion) return snapshotError("unsupported version " + std::to_string(version));
  r.get(fingerprint);
  if (fingerprint != hashFingerprint()) return snapshotError("written by a binary that hashes values or label sets differently");
  if (!r.count(n_families, 64)) return snapshotError("bad family count");
  std::vector<std::shared_ptr<FamilyState>> restored;
  for (uint64_t i = 0; i < n_families && !r.failed(); ++i) {
    std::string name;
    int64_t first = 0, last = 0, epoch = 0;
    r.str(name);
    r.get(first);
    r.get(last);
    r.get(epoch);
    auto f = std::make_shared<FamilyState>(name, cfg_, first);
    f->last_seen_ms = last;
    f->epoch = epoch;
    uint64_t untracked_labels = 0, in = 0, rewritten = 0, series_rewritten = 0;
    r.get(untracked_labels);
    r.get(in);
    r.get(rewritten);
    r.get(series_rewritten);
    f->untracked_labels = untracked_labels;
    f->samples_in = in;
    f->samples_rewritten = rewritten;
    f->series_rewritten = series_rewritten;
    auto series = readSketch<WindowedDistinct>(r, cfg_.window);
    if (!series) break;
    f->series = std::move(*series);
    uint32_t n_labels = 0;
    if (!r.get(n_labels) || !r.fits(n_labels, 32)) break;
    for (uint32_t j = 0; j < n_labels && !r.failed(); ++j) {
      std::string lname;
      r.str(lname);
      auto values = readSketch<WindowedDistinct>(r, cfg_.window);
      if (!values) break;
      auto l = std::make_unique<LabelState>(lname, cfg_.window, cfg_.top_values * 4);
      l->values = std::move(*values);
      uint8_t has_normalized = 0;
      r.get(has_normalized);
      if (has_normalized) {
        auto n = readSketch<WindowedDistinct>(r, cfg_.window);
        if (!n) break;
        l->normalized = std::move(*n);
      }
      uint32_t shapes = 0;
      r.get(shapes);
      if (shapes != kShapeCount) {
        r.fail();
        break;
      }
      for (double& v : l->shapes) r.get(v);
      r.get(l->small_numbers);
      r.get(l->observations);
      r.get(l->new_values);
      r.get(l->char_entropy_sum);
      auto top = readSketch<SpaceSaving>(r);
      if (!top) break;
      l->top = std::move(*top);
      r.get(l->next_template_check);
      Decision& d = l->decision;
      uint8_t kind = 0, norm = 0, by_limit = 0;
      r.get(kind);
      r.get(norm);
      if (kind > static_cast<uint8_t>(DecisionKind::kFold) ||
          norm > static_cast<uint8_t>(normalize::Normalizer::kAuto)) {
        r.fail();
        break;
      }
      d.kind = static_cast<DecisionKind>(kind);
      d.normalizer = static_cast<normalize::Normalizer>(norm);
      r.str(d.reason);
      r.get(d.since_ms);
      r.get(d.threshold);
      r.get(d.below_since_ms);
      r.get(d.compacted_ms);
      r.get(by_limit);
      d.by_series_limit = by_limit != 0;
      uint32_t n_kept = 0;
      if (!r.get(n_kept) || !r.fits(n_kept, 8)) break;
      d.kept.resize(n_kept);
      for (uint64_t& h : d.kept) r.get(h);
      if (d.kind == DecisionKind::kNormalize && !l->normalized) l->normalized.emplace(cfg_.window);
      l->estimate = 0;
      f->labels.push_back(std::move(l));
    }
    if (r.failed()) break;
    rebuildApplied(*f);
    restored.push_back(std::move(f));
  }
  if (r.failed() || !r.done()) return snapshotError("malformed at byte " + std::to_string(r.offset()));
  size_t count = 0;
  for (auto& f : restored) {
    if (count >= cfg_.max_families) break;
    Shard& sh = shardFor(f->name);
    std::lock_guard lock(sh.mu);
    if (sh.map.emplace(f->name, f).second) ++count;
  }
  family_count_.store(familyCount() + count, std::memory_order_relaxed);
  return core::Status::Ok();
}

}  // namespace cardinal::pipeline::cardinality
