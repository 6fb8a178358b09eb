#include "pipeline/merge/merge_state.h"

#include "core/binary_io.h"
#include "core/sharded.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace cardinal::pipeline::merge {

static_assert(MergeState::kShards == 16, "shardFor() takes the top 4 bits of the mixed hash");

bool isStaleMarker(double v) { return std::bit_cast<uint64_t>(v) == kStaleMarkerBits; }
double staleMarker() { return std::bit_cast<double>(kStaleMarkerBits); }

namespace {

// ---- snapshot encoding -------------------------------------------------------

constexpr char kMagic[8] = {'C', 'R', 'D', 'M', 'E', 'R', 'G', 'E'};
constexpr uint32_t kVersion = 2;     // written; version 1 (no histograms) is read too
constexpr uint32_t kMinVersion = 1;
constexpr size_t kHeaderBytes = sizeof kMagic + 4 + 8;  // magic, version, hash fingerprint
constexpr size_t kTrailerBytes = 4;                     // CRC-32 of everything before it
constexpr uint8_t kOutDirty = 1, kOutEmitted = 2, kOutHistogram = 4;
constexpr uint8_t kInHasValue = 1, kInHasTs = 2, kInRetired = 4, kInHistogram = 8;

// Identifies the label hash function: a snapshot's output hashes are only
// meaningful to a binary that hashes label sets the same way.
uint64_t hashFingerprint() {
  const core::LabelView probe[] = {{"__name__", "cardinal_merge_probe"}, {"le", "0.25"}};
  return core::hashLabels(probe);
}

using Writer = core::BinaryWriter;
using Reader = core::BinaryReader;
using core::crc32;

core::Error snapshotError(std::string what) { return core::Error{"merge snapshot: " + std::move(what)}; }

// hist = i32 schema, i32 reset_hint, f64 zero_threshold, f64 zero_count, f64 count, f64 sum,
//        u32 n, (i32 index, f64 count) x n positive, the same negative, u32 n, f64 x n custom bounds
void writeHistogram(Writer& w, const codec::NativeHistogram& h) {
  w.put<int32_t>(h.schema);
  w.put<int32_t>(h.reset_hint);
  w.put<double>(h.zero_threshold);
  w.put<double>(h.zero_count);
  w.put<double>(h.count);
  w.put<double>(h.sum);
  for (const auto* side : {&h.positive, &h.negative}) {
    w.put<uint32_t>(static_cast<uint32_t>(side->size()));
    for (const auto& [i, c] : *side) {
      w.put<int32_t>(i);
      w.put<double>(c);
    }
  }
  w.put<uint32_t>(static_cast<uint32_t>(h.custom_values.size()));
  for (double b : h.custom_values) w.put<double>(b);
}

bool readHistogram(Reader& r, codec::NativeHistogram& h) {
  if (!r.get(h.schema) || !r.get(h.reset_hint) || !r.get(h.zero_threshold) || !r.get(h.zero_count) ||
      !r.get(h.count) || !r.get(h.sum))
    return false;
  for (auto* side : {&h.positive, &h.negative}) {
    uint64_t n = 0;
    uint32_t n32;
    if (!r.get(n32)) return false;
    n = n32;
    if (!r.fits(n, 12)) return false;
    side->resize(n);
    for (auto& [i, c] : *side)
      if (!r.get(i) || !r.get(c)) return false;
    for (size_t k = 1; k < side->size(); ++k)
      if (!((*side)[k - 1].first < (*side)[k].first)) return false;
  }
  uint32_t nc;
  if (!r.get(nc) || !r.fits(nc, 8)) return false;
  h.custom_values.resize(nc);
  for (double& b : h.custom_values)
    if (!r.get(b)) return false;
  return h.schema == codec::kCustomBucketsSchema ||
         (h.schema >= codec::kMinExponentialSchema && h.schema <= codec::kMaxExponentialSchema);
}

// ---- gauge functions ---------------------------------------------------------

std::string formatQuantile(double q) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, q);
  assert(ec == std::errc() && "a double fits in 32 chars");
  return std::string(buf, end);
}

// PromQL quantile(): linear interpolation between the closest ranks.
double quantileOf(std::vector<double>& sorted_values, double q) {
  if (std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  size_t n = sorted_values.size();
  double rank = q * static_cast<double>(n - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, n - 1);
  double w = rank - static_cast<double>(lo);
  return sorted_values[lo] * (1 - w) + sorted_values[hi] * w;
}

std::vector<std::pair<std::string, std::string>> withQuantile(
    const std::vector<std::pair<std::string, std::string>>& labels, const std::string& q) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(labels.size() + 1);
  bool placed = false;
  for (const auto& l : labels) {
    if (!placed && l.first > "quantile") {
      out.emplace_back("quantile", q);
      placed = true;
    }
    out.push_back(l);
  }
  if (!placed) out.emplace_back("quantile", q);
  return out;
}

}  // namespace

MergeState::MergeState(Config cfg) : cfg_(cfg) {}

bool MergeState::sameLabels(const Output& out, std::span<const core::LabelView> labels) {
  if (out.labels.size() != labels.size()) return false;
  for (size_t i = 0; i < labels.size(); ++i)
    if (out.labels[i].first != labels[i].name || out.labels[i].second != labels[i].value) return false;
  return true;
}

// Reserves one input entry under max_inputs, evicting the oldest tombstone
// (own shard first, then any shard not busy right now) if the cap is reached.
// Called with `sh` locked; other shards are only try-locked, so two adders
// can never wait on each other.
bool MergeState::admitInput(Shard& sh) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (entries_.fetch_add(1, std::memory_order_relaxed) < cfg_.max_inputs) return true;
    entries_.fetch_sub(1, std::memory_order_relaxed);
    if (attempt == 1) break;
    bool freed = evictOneTombstone(sh);
    for (auto& other : shards_) {
      if (freed) break;
      if (&other == &sh) continue;
      std::unique_lock lock(other.mu, std::try_to_lock);
      if (lock.owns_lock()) freed = evictOneTombstone(other);
    }
    if (!freed) return false;
  }
  return false;
}

bool MergeState::evictOneTombstone(Shard& sh) {
  while (!sh.tomb_fifo.empty()) {
    TombRef t = sh.tomb_fifo.front();
    sh.tomb_fifo.pop_front();
    Input* in = sh.inputs.find(t.key);
    if (!in) continue;  // swept or evicted already
    const Output* out = sh.outputs.find(t.key.output);
    bool orphan = !out || out->epoch != in->epoch;
    if (!orphan && !(in->retired && in->seen_ms == t.retired_ms)) continue;  // revived since, or retired again later
    eraseInput(sh, t.key);
    --sh.tombs;
    entries_.fetch_sub(1, std::memory_order_relaxed);
    if (!orphan) ++sh.evicted;
    return true;
  }
  return false;
}

void MergeState::retire(Shard& sh, const InputKey& key, Input& in, Output& out, int64_t now_ms) {
  assert(!in.retired && "retiring a retired input");
  in.retired = true;
  in.seen_ms = now_ms;
  --sh.live;
  ++sh.tombs;
  --out.live_inputs;
  sh.tomb_fifo.push_back({key, now_ms});
}

void MergeState::eraseInput(Shard& sh, const InputKey& key) {
  sh.inputs.erase(key);
  sh.hists.erase(key);
}

MergeState::Input* MergeState::attachInput(Shard& sh, Output*& out, Input* in, const InputKey& key,
                                           std::span<const core::LabelView> output_labels, Kind kind,
                                           const Options& opts, bool histogram) {
  if (!out) {
    if (outputs_.fetch_add(1, std::memory_order_relaxed) >= cfg_.max_outputs) {
      outputs_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    if (!admitInput(sh)) {
      outputs_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    out = sh.outputs.tryEmplace(key.output).first;
    out->epoch = sh.next_epoch++;
    out->kind = kind;
    out->fn = opts.gauge;
    out->labels.reserve(output_labels.size());
    bool has_quantile_label = false;
    for (const auto& l : output_labels) {
      out->labels.emplace_back(std::string(l.name), std::string(l.value));
      has_quantile_label |= l.name == "quantile";
    }
    if (histogram)
      out->hist = std::make_unique<HistogramOutput>();
    else if (!has_quantile_label)
      out->quantiles = opts.quantiles;
    auto [slot, inserted] = sh.inputs.tryEmplace(key);
    if (!inserted) {  // an orphan under this key: reuse its entry, give back the reservation
      entries_.fetch_sub(1, std::memory_order_relaxed);
      --sh.tombs;
    }
    in = slot;
  } else if (!in) {
    if (!admitInput(sh)) return nullptr;
    in = sh.inputs.tryEmplace(key).first;
  } else {
    --sh.tombs;  // orphan reused
  }
  *in = Input{};
  sh.hists.erase(key);  // an orphan's last histogram
  in->epoch = out->epoch;
  ++sh.live;
  ++out->live_inputs;
  return in;
}

AddResult MergeState::add(uint64_t input_hash, std::span<const core::LabelView> output_labels,
                          uint64_t output_hash, Kind kind, const Options& opts,
                          std::span<const codec::Sample> samples, int64_t now_ms) {
  Shard& sh = shardFor(output_hash);
  std::lock_guard lock(sh.mu);
  return addLocked(sh, {input_hash, output_labels, output_hash, kind, &opts, samples}, now_ms);
}

AddResult& AddResult::operator+=(const AddResult& o) {
  accepted += o.accepted;
  duplicates += o.duplicates;
  out_of_order += o.out_of_order;
  over_cap += o.over_cap;
  stale_markers += o.stale_markers;
  nan += o.nan;
  refused += o.refused;
  return *this;
}

AddResult MergeState::addMany(std::span<const AddItem> items, int64_t now_ms) {
  AddResult total;
  // Items grouped by shard, in their order within each shard (a counting sort:
  // two items of one input, hence of one output, keep their order).
  thread_local core::ShardGroups<kShards> groups;
  groups.build(items.size(), [&](size_t i) { return shardIndex(items[i].output_hash); });
  const auto& start = groups.start;
  const auto& order = groups.order;
  // One lock per shard; the tables' slots of the item four ahead are fetched
  // while this one is absorbed (the lookups are cache misses: the tables are big).
  constexpr size_t kAhead = 4;
  groups.forEachLocked(shards_, [&](size_t k) {
    Shard& sh = shards_[k];
    for (uint32_t j = start[k]; j < start[k + 1]; ++j) {
      if (j + kAhead < start[k + 1]) {
        const AddItem& ahead = items[order[j + kAhead]];
        sh.outputs.prefetch(ahead.output_hash);
        sh.inputs.prefetch({ahead.input_hash, ahead.output_hash});
      }
      total += addLocked(sh, items[order[j]], now_ms);
    }
  });
  return total;
}

AddResult MergeState::addLocked(Shard& sh, const AddItem& item, int64_t now_ms) {
  const uint64_t input_hash = item.input_hash;
  const auto output_labels = item.output_labels;
  const uint64_t output_hash = item.output_hash;
  const Kind kind = item.kind;
  const Options& opts = *item.opts;
  const auto samples = item.samples;
  assert(core::labelsSorted(output_labels) && "output labels must be sorted by name");
  AddResult r;
  if (samples.empty()) return r;

  auto refuse = [&](bool collision) {
    r.over_cap = samples.size();
    sh.over_cap += samples.size();
    if (collision) ++sh.collisions;
    return r;
  };

  Output* out = sh.outputs.find(output_hash);
  const InputKey key{input_hash, output_hash};
  Input* in = out ? sh.inputs.find(key) : nullptr;
  const bool known = in && in->epoch == out->epoch;
  // An input of this output was compared with the output's labels when it was
  // attached: the pair of 64-bit hashes identifies it from then on (a
  // different label set would need both hashes to collide at once), so the
  // label comparison, a tenth of the merge stage's time, is for new inputs.
  if (out && !known && !sameLabels(*out, output_labels)) return refuse(true);
  if (out && out->hist) {  // a native histogram output takes no float samples
    r.refused = samples.size();
    sh.refused += samples.size();
    return r;
  }

  if (!known) {
    // A new input (or the leftover of a freed output under the same key).
    // Stale markers alone do not create state.
    bool any_value = std::any_of(samples.begin(), samples.end(),
                                 [](const codec::Sample& s) { return !isStaleMarker(s.value); });
    if (!any_value) {
      r.stale_markers = samples.size();
      return r;
    }
    in = attachInput(sh, out, in, key, output_labels, kind, opts, false);
    if (!in) return refuse(false);
    in->seen_ms = now_ms;
  }

  for (const auto& s : samples) {
    if (in->has_ts && s.timestamp <= in->last_ts) {
      if (s.timestamp == in->last_ts)
        ++r.duplicates;
      else
        ++r.out_of_order;
      continue;
    }
    in->last_ts = s.timestamp;
    in->has_ts = true;
    out->max_seen_ts = std::max(out->max_seen_ts, s.timestamp);
    const double v = s.value;
    if (isStaleMarker(v)) {
      ++r.stale_markers;
      if (!in->retired) retire(sh, key, *in, *out, now_ms);
      continue;
    }
    if (out->kind == Kind::kCounter && !std::isfinite(v)) {
      ++r.nan;
      if (!in->retired) in->seen_ms = now_ms;
      continue;
    }
    if (in->retired) {  // back within its tombstone time: continues from the tombstone
      in->retired = false;
      --sh.tombs;
      ++sh.live;
      ++out->live_inputs;
    }
    if (out->kind == Kind::kCounter) {
      double inc;
      if (!in->has_value) {
        inc = std::max(v, 0.0);
      } else if (v >= in->last_value) {
        inc = v - in->last_value;
      } else {
        inc = std::max(v, 0.0);
        ++sh.resets;
      }
      out->value += inc;
      in->has_value = true;
      ++r.accepted;
    } else if (std::isnan(v)) {
      ++r.nan;  // the input has no value until its next number
    } else {
      ++r.accepted;
    }
    in->last_value = v;
    in->seen_ms = now_ms;
    out->pending_ts = out->dirty ? std::max(out->pending_ts, s.timestamp) : s.timestamp;
    out->dirty = true;
  }
  sh.duplicates += r.duplicates;
  sh.out_of_order += r.out_of_order;
  sh.nan += r.nan;
  return r;
}

AddResult MergeState::addHistograms(uint64_t input_hash, std::span<const core::LabelView> output_labels,
                                    uint64_t output_hash, std::span<const codec::HistogramView> histograms,
                                    int64_t now_ms) {
  assert(core::labelsSorted(output_labels) && "output labels must be sorted by name");
  AddResult r;
  if (histograms.empty()) return r;

  // Decode outside the lock. A stale marker is a histogram whose sum is the
  // stale NaN; its other fields do not matter.
  struct Item {
    bool stale = false;
    bool ok = false;
    codec::NativeHistogram h;
  };
  std::vector<Item> items(histograms.size());
  for (size_t k = 0; k < histograms.size(); ++k) {
    Item& it = items[k];
    it.stale = isStaleMarker(histograms[k].sum);
    if (it.stale) continue;
    auto d = codec::decodeHistogram(histograms[k]);
    if (!d.ok()) continue;
    it.ok = true;
    it.h = std::move(d.value());
  }
  // Custom buckets merge only with the very same bounds; exponential schemas
  // with each other (reduced to the coarser one).
  auto fits = [](const codec::NativeHistogram& layout, const codec::NativeHistogram& h) {
    return h.customBuckets() == layout.customBuckets() && (!h.customBuckets() || h.custom_values == layout.custom_values);
  };

  Shard& sh = shardFor(output_hash);
  std::lock_guard lock(sh.mu);
  auto refuse = [&](bool collision) {
    r.over_cap = histograms.size();
    sh.over_cap += histograms.size();
    if (collision) ++sh.collisions;
    return r;
  };

  Output* out = sh.outputs.find(output_hash);
  if (out && !sameLabels(*out, output_labels)) return refuse(true);
  if (out && !out->hist) {  // a float output takes no histograms
    r.refused = histograms.size();
    sh.refused += histograms.size();
    return r;
  }
  const InputKey key{input_hash, output_hash};
  Input* in = out ? sh.inputs.find(key) : nullptr;

  if (!in || in->epoch != out->epoch) {
    // A new input. Stale markers and histograms that would be refused alone
    // create no state.
    const Item* first_value = nullptr;
    for (const auto& it : items)
      if (it.ok && (!out || fits(out->hist->acc, it.h))) {
        first_value = &it;
        break;
      }
    if (!first_value) {
      for (const auto& it : items) ++(it.stale ? r.stale_markers : r.refused);
      sh.refused += r.refused;
      return r;
    }
    const bool creates = !out;
    const Kind kind = first_value->h.reset_hint == codec::kResetGauge ? Kind::kGauge : Kind::kCounter;
    in = attachInput(sh, out, in, key, output_labels, kind, Options{}, true);
    if (!in) return refuse(false);
    in->seen_ms = now_ms;
    if (creates) {  // the output's bucket layout: that of the histogram creating it
      codec::NativeHistogram& acc = out->hist->acc;
      acc.schema = first_value->h.customBuckets() ? codec::kCustomBucketsSchema : codec::kMaxExponentialSchema;
      acc.custom_values = first_value->h.custom_values;
      out->hist->scratch = acc;
    }
  }

  HistogramOutput& ho = *out->hist;
  for (size_t k = 0; k < items.size(); ++k) {
    Item& it = items[k];
    const int64_t ts = histograms[k].timestamp;
    if (in->has_ts && ts <= in->last_ts) {
      if (ts == in->last_ts)
        ++r.duplicates;
      else
        ++r.out_of_order;
      continue;
    }
    in->last_ts = ts;
    in->has_ts = true;
    out->max_seen_ts = std::max(out->max_seen_ts, ts);
    if (it.stale) {
      ++r.stale_markers;
      if (!in->retired) retire(sh, key, *in, *out, now_ms);
      continue;
    }
    if (!it.ok || !fits(ho.acc, it.h)) {
      ++r.refused;
      if (!in->retired) in->seen_ms = now_ms;
      continue;
    }
    if (in->retired) {  // back within its tombstone time: continues from the tombstone
      in->retired = false;
      --sh.tombs;
      ++sh.live;
      ++out->live_inputs;
    }
    codec::NativeHistogram* last = in->has_value ? sh.hists.find(key) : nullptr;
    if (out->kind == Kind::kCounter) {
      std::optional<codec::NativeHistogram> inc;
      if (last) {
        inc = codec::counterIncrease(it.h, *last);
        if (!inc) ++sh.resets;  // the increase is the new histogram
      }
      if (inc)
        codec::addHistogram(ho.acc, std::move(*inc));
      else
        codec::addHistogram(ho.acc, it.h);
    }
    if (!last) last = sh.hists.tryEmplace(key).first;
    *last = std::move(it.h);
    in->has_value = true;
    ++r.accepted;
    in->seen_ms = now_ms;
    out->pending_ts = out->dirty ? std::max(out->pending_ts, ts) : ts;
    out->dirty = true;
  }
  sh.duplicates += r.duplicates;
  sh.out_of_order += r.out_of_order;
  sh.refused += r.refused;
  return r;
}

namespace {

// Prometheus' stale marker for native histograms: sum = the stale NaN.
std::string staleHistogram() {
  codec::NativeHistogram h;
  h.sum = staleMarker();
  std::string out;
  codec::encodeHistogram(h, out, codec::HistogramEncoding::kIntegerIfExact);
  return out;
}

codec::NativeHistogram emptyLike(const codec::NativeHistogram& layout) {
  codec::NativeHistogram h;
  h.schema = layout.schema;
  h.custom_values = layout.custom_values;
  return h;
}

}  // namespace

void MergeState::emitOutput(Output& o, std::vector<Emitted>& emitted) {
  int64_t ts = o.pending_ts;
  if (o.emitted_any && ts <= o.last_emitted_ts) ts = o.last_emitted_ts + 1;
  bool have = true;
  double v = 0;
  if (o.kind == Kind::kCounter) {
    v = o.value;
  } else if (o.scratch.n == 0) {
    have = false;  // no live input holds a value: PromQL would return nothing either
  } else {
    const GaugeScratch& g = o.scratch;
    switch (o.fn) {
      case GaugeFn::kSum: v = g.sum; break;
      case GaugeFn::kAvg: v = g.sum / static_cast<double>(g.n); break;
      case GaugeFn::kMin: v = g.min; break;
      case GaugeFn::kMax: v = g.max; break;
      case GaugeFn::kCount: v = static_cast<double>(g.n); break;
      case GaugeFn::kLast: v = g.last; break;
    }
  }
  if (o.hist) {
    HistogramOutput& ho = *o.hist;
    codec::NativeHistogram* h = nullptr;
    if (o.kind == Kind::kCounter) {
      h = &ho.acc;
      // The first histogram of an output may follow an older incarnation's
      // higher values (after a stale marker): let the receiver check.
      h->reset_hint = o.emitted_any ? codec::kResetNo : codec::kResetUnknown;
    } else if (ho.scratch_n > 0) {
      h = &ho.scratch;
      h->reset_hint = codec::kResetGauge;
    }
    if (h) {
      std::string enc;
      codec::encodeHistogram(*h, enc, codec::HistogramEncoding::kIntegerIfExact);
      emitted.push_back({o.labels, {ts, h->count}, std::move(enc)});
      o.last_emitted_ts = ts;
      o.emitted_any = true;
    }
    o.dirty = false;
    if (ho.scratch_n > 0) {
      ho.scratch = emptyLike(ho.acc);
      ho.scratch_n = 0;
    }
    return;
  }
  if (have) {
    emitted.push_back({o.labels, {ts, v}, std::nullopt});
    if (o.kind == Kind::kGauge && !o.quantiles.empty()) {
      std::sort(o.values.begin(), o.values.end());
      for (double q : o.quantiles)
        emitted.push_back({withQuantile(o.labels, formatQuantile(q)), {ts, quantileOf(o.values, q)}, std::nullopt});
    }
    o.last_emitted_ts = ts;
    o.emitted_any = true;
  }
  o.dirty = false;
  o.scratch = GaugeScratch{};
  o.values.clear();
}

void MergeState::emit(int64_t now_ms, std::vector<Emitted>& out) {
  std::vector<InputKey> sweep;
  std::vector<uint64_t> freed;
  for (auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    sweep.clear();
    freed.clear();

    // Inputs: restore grace, staleness, tombstone expiry, orphans, gauge values.
    sh.inputs.forEach([&](const InputKey& key, Input& in) {
      Output* o = sh.outputs.find(key.output);
      if (!o || o->epoch != in.epoch) {
        sweep.push_back(key);  // left over from a freed output: already counted as a tombstone
        return;
      }
      if (!in.retired) {
        if (sh.restore_grace) in.seen_ms = std::max(in.seen_ms, now_ms);
        if (now_ms - in.seen_ms >= cfg_.stale_after_ms) retire(sh, key, in, *o, now_ms);
      }
      if (in.retired) {
        if (now_ms - in.seen_ms >= cfg_.tombstone_ms) sweep.push_back(key);
        return;
      }
      if (o->hist) {  // gauge histograms: the sum of the live inputs' last histograms
        if (o->kind != Kind::kGauge || !o->dirty || !in.has_value) return;
        if (const codec::NativeHistogram* h = sh.hists.find(key)) {
          codec::addHistogram(o->hist->scratch, *h);
          ++o->hist->scratch_n;
        }
        return;
      }
      if (o->kind != Kind::kGauge || !o->dirty || std::isnan(in.last_value)) return;
      GaugeScratch& g = o->scratch;
      double v = in.last_value;
      if (g.n == 0) {
        g.min = g.max = v;
      } else {
        g.min = std::min(g.min, v);
        g.max = std::max(g.max, v);
      }
      g.sum += v;
      if (g.n == 0 || in.last_ts > g.last_ts || (in.last_ts == g.last_ts && key.input > g.last_input)) {
        g.last = v;
        g.last_ts = in.last_ts;
        g.last_input = key.input;
      }
      ++g.n;
      if (!o->quantiles.empty()) o->values.push_back(v);
    });
    sh.restore_grace = false;
    for (const auto& key : sweep) {
      eraseInput(sh, key);
      --sh.tombs;
    }
    entries_.fetch_sub(sweep.size(), std::memory_order_relaxed);
    // Entries older than the tombstone time point at swept or revived inputs.
    while (!sh.tomb_fifo.empty() && now_ms - sh.tomb_fifo.front().retired_ms >= cfg_.tombstone_ms)
      sh.tomb_fifo.pop_front();

    // Outputs: data, then the stale marker of those whose inputs are all gone.
    sh.outputs.forEach([&](const uint64_t& hash, Output& o) {
      if (o.dirty) emitOutput(o, out);
      if (o.live_inputs > 0) return;
      if (o.emitted_any) {
        int64_t ts = std::max(o.last_emitted_ts + 1, o.max_seen_ts);
        if (o.hist)
          out.push_back({o.labels, {ts, staleMarker()}, staleHistogram()});
        else
          out.push_back({o.labels, {ts, staleMarker()}, std::nullopt});
        for (double q : o.quantiles)
          out.push_back({withQuantile(o.labels, formatQuantile(q)), {ts, staleMarker()}, std::nullopt});
        ++sh.stale_emitted;
      }
      freed.push_back(hash);
    });
    for (uint64_t h : freed) sh.outputs.erase(h);
    outputs_.fetch_sub(freed.size(), std::memory_order_relaxed);
  }
}

MergeState::Stats MergeState::stats() const {
  Stats st;
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    st.outputs += sh.outputs.size();
    st.inputs += sh.live;
    st.tombstones += sh.tombs;
    st.duplicates += sh.duplicates;
    st.out_of_order += sh.out_of_order;
    st.over_cap += sh.over_cap;
    st.resets_detected += sh.resets;
    st.nan += sh.nan;
    st.hash_collisions += sh.collisions;
    st.tombstones_evicted += sh.evicted;
    st.stale_markers_emitted += sh.stale_emitted;
    st.refused += sh.refused;
  }
  return st;
}

// Format, version 2 (all little-endian):
//   "CRDMERGE" u32 version u64 hash-fingerprint
//   u32 shard_count, then per shard:
//     u64 n_outputs, n x { u64 hash, u8 kind, u8 gauge_fn, u8 flags(dirty|emitted|histogram), f64 value,
//                          i64 pending_ts, i64 last_emitted_ts, i64 max_seen_ts,
//                          u32 n_quantiles, f64 x n, u32 n_labels, (str name, str value) x n,
//                          [hist accumulator (layout only for gauges), if flags has histogram] }
//     u64 n_inputs,  n x { u64 input_hash, u64 output_hash, f64 last_value, i64 last_ts,
//                          i64 seen_ms, u8 flags(has_value|has_ts|retired|histogram),
//                          [hist last histogram, if flags has histogram] }
//   u32 CRC-32 of all the bytes before it.   (str = u32 length + bytes; hist: see writeHistogram())
// Version 1 is version 2 without histograms (the flag bits are never set):
// it is read as is, so an upgrade keeps the merge state.
// Shards are locked one at a time: each shard's part is consistent, and
// shards share nothing. Inputs of freed outputs are left out.
std::string MergeState::snapshot() const {
  std::string buf;
  Writer w(buf);
  buf.append(kMagic, sizeof kMagic);
  w.put<uint32_t>(kVersion);
  w.put<uint64_t>(hashFingerprint());
  w.put<uint32_t>(static_cast<uint32_t>(kShards));
  for (const auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    w.put<uint64_t>(sh.outputs.size());
    sh.outputs.forEach([&](const uint64_t& hash, const Output& o) {
      w.put<uint64_t>(hash);
      w.put<uint8_t>(static_cast<uint8_t>(o.kind));
      w.put<uint8_t>(static_cast<uint8_t>(o.fn));
      w.put<uint8_t>(static_cast<uint8_t>((o.dirty ? kOutDirty : 0) | (o.emitted_any ? kOutEmitted : 0) |
                                          (o.hist ? kOutHistogram : 0)));
      w.put<double>(o.value);
      w.put<int64_t>(o.pending_ts);
      w.put<int64_t>(o.last_emitted_ts);
      w.put<int64_t>(o.max_seen_ts);
      w.put<uint32_t>(static_cast<uint32_t>(o.quantiles.size()));
      for (double q : o.quantiles) w.put<double>(q);
      w.put<uint32_t>(static_cast<uint32_t>(o.labels.size()));
      for (const auto& [name, value] : o.labels) {
        w.str(name);
        w.str(value);
      }
      if (o.hist) writeHistogram(w, o.hist->acc);
    });
    auto attached = [&](const InputKey& key, const Input& in) {
      const Output* o = sh.outputs.find(key.output);
      return o && o->epoch == in.epoch;
    };
    uint64_t n_inputs = 0;
    sh.inputs.forEach([&](const InputKey& key, const Input& in) { n_inputs += attached(key, in); });
    w.put<uint64_t>(n_inputs);
    sh.inputs.forEach([&](const InputKey& key, const Input& in) {
      if (!attached(key, in)) return;
      w.put<uint64_t>(key.input);
      w.put<uint64_t>(key.output);
      w.put<double>(in.last_value);
      w.put<int64_t>(in.last_ts);
      w.put<int64_t>(in.seen_ms);
      const codec::NativeHistogram* h = sh.hists.find(key);
      w.put<uint8_t>(static_cast<uint8_t>((in.has_value ? kInHasValue : 0) | (in.has_ts ? kInHasTs : 0) |
                                          (in.retired ? kInRetired : 0) | (h ? kInHistogram : 0)));
      if (h) writeHistogram(w, *h);
    });
  }
  w.put<uint32_t>(crc32(buf));
  return buf;
}

core::Status MergeState::restore(std::string_view data) {
  if (data.size() < kHeaderBytes + kTrailerBytes)
    return snapshotError("too short (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    return snapshotError("not a merge state snapshot (bad magic)");
  uint32_t version;
  std::memcpy(&version, data.data() + sizeof kMagic, 4);
  if (version < kMinVersion || version > kVersion)
    return snapshotError("version " + std::to_string(version) + " not supported (this build reads versions " +
                         std::to_string(kMinVersion) + " to " + std::to_string(kVersion) + ")");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, data.data() + data.size() - kTrailerBytes, 4);
  if (crc32(data.substr(0, data.size() - kTrailerBytes)) != stored_crc)
    return snapshotError("checksum mismatch (corrupt or truncated)");
  uint64_t fingerprint;
  std::memcpy(&fingerprint, data.data() + sizeof kMagic + 4, 8);
  if (fingerprint != hashFingerprint())
    return snapshotError("written by a build with another label hash function; its output hashes would not match");

  // Parse everything before touching the state: a refused snapshot changes nothing.
  struct ParsedOutput {
    uint64_t hash;
    Output out;
  };
  struct ParsedInput {
    InputKey key;
    Input in;
    std::optional<codec::NativeHistogram> hist;
  };
  std::vector<ParsedOutput> outputs;
  std::vector<ParsedInput> inputs;
  Reader r(data.substr(kHeaderBytes, data.size() - kHeaderBytes - kTrailerBytes), kHeaderBytes);
  auto truncated = [&] { return snapshotError("malformed at byte " + std::to_string(r.offset())); };
  uint32_t shard_count;
  if (!r.get(shard_count)) return truncated();
  constexpr size_t kMinOutputBytes = 8 + 3 + 8 * 4 + 4 + 4;
  constexpr size_t kMinInputBytes = 8 * 5 + 1;
  for (uint32_t s = 0; s < shard_count; ++s) {
    uint64_t n;
    if (!r.count(n, kMinOutputBytes)) return truncated();
    for (uint64_t i = 0; i < n; ++i) {
      ParsedOutput p{};
      Output& o = p.out;
      uint8_t kind, fn, flags;
      uint32_t nq, nl;
      if (!r.get(p.hash) || !r.get(kind) || !r.get(fn) || !r.get(flags) || !r.get(o.value) || !r.get(o.pending_ts) ||
          !r.get(o.last_emitted_ts) || !r.get(o.max_seen_ts) || !r.get(nq))
        return truncated();
      if (kind > static_cast<uint8_t>(Kind::kGauge) || fn > static_cast<uint8_t>(GaugeFn::kLast))
        return snapshotError("bad kind or gauge function at byte " + std::to_string(r.offset()));
      o.kind = static_cast<Kind>(kind);
      o.fn = static_cast<GaugeFn>(fn);
      o.dirty = flags & kOutDirty;
      o.emitted_any = flags & kOutEmitted;
      if (nq > (data.size() / 8)) return truncated();
      o.quantiles.resize(nq);
      for (auto& q : o.quantiles)
        if (!r.get(q)) return truncated();
      if (!r.get(nl) || nl > data.size() / 8) return truncated();
      o.labels.resize(nl);
      for (auto& [name, value] : o.labels)
        if (!r.str(name) || !r.str(value)) return truncated();
      for (size_t k = 1; k < o.labels.size(); ++k)
        if (!(o.labels[k - 1].first < o.labels[k].first))
          return snapshotError("output labels not sorted and unique before byte " + std::to_string(r.offset()));
      if (flags & kOutHistogram) {
        o.hist = std::make_unique<HistogramOutput>();
        if (!readHistogram(r, o.hist->acc))
          return snapshotError("bad histogram before byte " + std::to_string(r.offset()));
        o.hist->scratch = emptyLike(o.hist->acc);
      }
      outputs.push_back(std::move(p));
    }
    if (!r.count(n, kMinInputBytes)) return truncated();
    for (uint64_t i = 0; i < n; ++i) {
      ParsedInput p{};
      uint8_t flags;
      if (!r.get(p.key.input) || !r.get(p.key.output) || !r.get(p.in.last_value) || !r.get(p.in.last_ts) ||
          !r.get(p.in.seen_ms) || !r.get(flags))
        return truncated();
      p.in.has_value = flags & kInHasValue;
      p.in.has_ts = flags & kInHasTs;
      p.in.retired = flags & kInRetired;
      if (flags & kInHistogram) {
        p.hist.emplace();
        if (!readHistogram(r, *p.hist))
          return snapshotError("bad histogram before byte " + std::to_string(r.offset()));
      }
      inputs.push_back(std::move(p));
    }
  }
  if (!r.done()) return snapshotError("trailing bytes at byte " + std::to_string(r.offset()));

  std::array<std::unique_lock<std::mutex>, kShards> locks;
  for (size_t i = 0; i < kShards; ++i) locks[i] = std::unique_lock(shards_[i].mu);
  for (const auto& sh : shards_)
    if (!sh.outputs.empty() || !sh.inputs.empty())
      return core::Error{"merge snapshot: restore needs an empty merge state"};

  auto rollback = [&](std::string why) {
    for (auto& sh : shards_) {
      sh.outputs.clear();
      sh.inputs.clear();
      sh.hists.clear();
      sh.tomb_fifo.clear();
      sh.live = sh.tombs = 0;
    }
    return snapshotError(std::move(why));
  };
  for (auto& p : outputs) {
    Shard& sh = shardFor(p.hash);
    auto [o, inserted] = sh.outputs.tryEmplace(p.hash);
    if (!inserted) return rollback("output " + std::to_string(p.hash) + " appears twice");
    *o = std::move(p.out);
    o->epoch = sh.next_epoch++;
    o->live_inputs = 0;
  }
  std::sort(inputs.begin(), inputs.end(), [](const ParsedInput& a, const ParsedInput& b) {
    return a.in.seen_ms < b.in.seen_ms;  // so each shard's tombstone queue is in retire order
  });
  for (auto& p : inputs) {
    Shard& sh = shardFor(p.key.output);
    Output* o = sh.outputs.find(p.key.output);
    if (!o) return rollback("an input refers to output " + std::to_string(p.key.output) + ", which is not in it");
    if (p.hist.has_value() != (o->hist && p.in.has_value))
      return rollback("input " + std::to_string(p.key.input) + " does not match its output's sample type");
    auto [in, inserted] = sh.inputs.tryEmplace(p.key);
    if (!inserted) return rollback("input " + std::to_string(p.key.input) + " appears twice");
    *in = p.in;
    in->epoch = o->epoch;
    if (p.hist) *sh.hists.tryEmplace(p.key).first = std::move(*p.hist);
    if (in->retired) {
      ++sh.tombs;
      sh.tomb_fifo.push_back({p.key, in->seen_ms});
    } else {
      ++sh.live;
      ++o->live_inputs;
    }
  }
  size_t n_outputs = 0, n_entries = 0;
  for (auto& sh : shards_) {
    sh.restore_grace = true;
    n_outputs += sh.outputs.size();
    n_entries += sh.inputs.size();
  }
  outputs_.store(n_outputs, std::memory_order_relaxed);
  entries_.store(n_entries, std::memory_order_relaxed);
  return core::Status::Ok();
}

}  // namespace cardinal::pipeline::merge
