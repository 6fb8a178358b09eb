#include "pipeline/cardinality/sketch/windowed_distinct.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/binary_io.h"
#include "core/hash.h"

namespace cardinal::pipeline::cardinality {
namespace {

constexpr uint8_t kMagic = 'W';
constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagDense = 1;

// The improved HyperLogLog estimator of O. Ertl, "New cardinality estimation algorithms for
// HyperLogLog sketches" (2017), from the histogram of register values: no empirical bias tables,
// and it subsumes the linear-counting small-range correction (it agrees with linear counting while
// most registers are 0) without the classic estimator's bias bump where the two are switched
// (around n = 2.5 m). Measured at precision 12, n = 10 000, 20 seeds: mean absolute error 2.5 %
// (1.55 standard errors) with the classic formula, 1.3 % with this one. Redis uses the same.
double sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0, z = x;
  for (;;) {
    x *= x;
    const double before = z;
    z += x * y;
    y += y;
    if (z == before) return z;
  }
}

double tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x;
  for (;;) {
    x = std::sqrt(x);
    const double before = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
    if (z == before) return z / 3.0;
  }
}

// `histogram[k]` = number of registers holding k, for k = 0 .. q + 1 where q = 64 - precision.
double ertlEstimate(const uint32_t* histogram, unsigned q, size_t m) {
  const double md = static_cast<double>(m);
  double z = md * tau(1.0 - histogram[q + 1] / md);
  for (unsigned k = q; k >= 1; --k) z = 0.5 * (z + histogram[k]);
  z += md * sigma(histogram[0] / md);
  return md * md / (2.0 * std::log(2.0)) / z;
}

// dst[i] = max(dst[i], src[i]) for n a multiple of 16. Blocks of 16 go through a local copy so
// the compiler sees no aliasing and vectorizes (pmaxub).
void maxInto(uint8_t* dst, const uint8_t* src, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    uint8_t a[16], b[16];
    std::memcpy(a, dst + i, 16);
    std::memcpy(b, src + i, 16);
    for (size_t k = 0; k < 16; ++k) a[k] = a[k] < b[k] ? b[k] : a[k];
    std::memcpy(dst + i, a, 16);
  }
}

// Little-endian fixed-width fields; the reader fails (and stays failed) on a short input.

WindowConfig clamped(const WindowConfig& c) {
  WindowConfig r = c;
  r.sub_windows = std::clamp<uint32_t>(c.sub_windows, 1, WindowedDistinct::kMaxSubWindows);
  r.sub_window_ms = std::max<int64_t>(c.sub_window_ms, 1);
  r.precision = std::clamp(c.precision, WindowedDistinct::kMinPrecision, WindowedDistinct::kMaxPrecision);
  r.sparse_limit = std::min(c.sparse_limit, WindowedDistinct::kMaxSparseLimit);
  return r;
}

}  // namespace

WindowedDistinct::WindowedDistinct(const WindowConfig& config) : config_(clamped(config)) {}

int64_t WindowedDistinct::epochOf(int64_t now_ms) const {
  return now_ms <= 0 ? 0 : now_ms / config_.sub_window_ms;
}

int64_t WindowedDistinct::queryEpoch(int64_t now_ms) const { return std::max(epochOf(now_ms), current_epoch_); }

size_t WindowedDistinct::claimSlot(int64_t epoch) {
  const size_t slot = static_cast<size_t>(epoch % config_.sub_windows);
  if (slot_epochs_[slot] != epoch) {
    // Epochs inside the window map to distinct slots, so a different tag is an expired epoch.
    assert(slot_epochs_[slot] < epoch && "a ring slot holds a newer epoch than the one being added");
    std::memset(slotRegisters(slot), 0, registerCount());
    slot_epochs_[slot] = epoch;
  }
  return slot;
}

bool WindowedDistinct::addDense(uint64_t hash, int64_t epoch) {
  const uint64_t h = core::mix64(hash);
  const unsigned p = config_.precision;
  const size_t index = static_cast<size_t>(h >> (64 - p));
  const uint64_t rest = h << p;
  const auto rank = static_cast<uint8_t>(rest == 0 ? 64 - p + 1 : std::countl_zero(rest) + 1);
  uint8_t& reg = slotRegisters(claimSlot(epoch))[index];
  if (rank <= reg) return false;
  reg = rank;
  return true;
}

void WindowedDistinct::pruneSparse() {
  const int64_t oldest = current_epoch_ - static_cast<int64_t>(config_.sub_windows) + 1;
  std::erase_if(sparse_, [oldest](const Pair& p) { return p.epoch < oldest; });
}

void WindowedDistinct::goDense() {
  registers_.assign(size_t{config_.sub_windows} * registerCount(), 0);
  slot_epochs_.assign(config_.sub_windows, kNoEpoch);
  dense_ = true;
  const int64_t oldest = current_epoch_ - static_cast<int64_t>(config_.sub_windows) + 1;
  for (const Pair& p : sparse_)
    if (p.epoch >= oldest) addDense(p.hash, p.epoch);
  std::vector<Pair>().swap(sparse_);
}

bool WindowedDistinct::add(uint64_t hash, int64_t now_ms) {
  current_epoch_ = std::max(current_epoch_, epochOf(now_ms));
  const int64_t epoch = current_epoch_;
  if (dense_) return addDense(hash, epoch);

  auto less = [](const Pair& p, uint64_t h) { return p.hash < h; };
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), hash, less);
  if (it != sparse_.end() && it->hash == hash) {
    const bool fresh = it->epoch != epoch;
    it->epoch = epoch;
    return fresh;
  }
  if (sparse_.size() >= config_.sparse_limit) {
    pruneSparse();
    if (sparse_.size() >= config_.sparse_limit) {
      goDense();
      return addDense(hash, epoch);
    }
    it = std::lower_bound(sparse_.begin(), sparse_.end(), hash, less);
  }
  sparse_.insert(it, Pair{hash, epoch});
  return true;
}

double WindowedDistinct::countRecent(uint32_t back, int64_t end_epoch) const {
  back = std::min(back, config_.sub_windows);
  if (back == 0 || current_epoch_ == kNoEpoch) return 0.0;
  const int64_t oldest = end_epoch - static_cast<int64_t>(back) + 1;

  if (!dense_) {
    size_t n = 0;
    for (const Pair& p : sparse_) n += p.epoch >= oldest;
    return static_cast<double>(n);
  }

  std::array<const uint8_t*, kMaxSubWindows> live;
  size_t live_n = 0;
  for (size_t s = 0; s < config_.sub_windows; ++s)
    if (slot_epochs_[s] != kNoEpoch && slot_epochs_[s] >= oldest) live[live_n++] = slotRegisters(s);
  if (live_n == 0) return 0.0;

  // Register-wise max over the live slots, a chunk at a time, into a histogram of register values
  // (four interleaved ones, so consecutive increments of one bucket do not wait on each other).
  const size_t m = registerCount();
  const unsigned q = 64 - config_.precision;
  constexpr size_t kChunk = 1024;  // 2^precision is a multiple of 16
  std::array<uint8_t, kChunk> merged;
  std::array<std::array<uint32_t, 64 + 2>, 4> partial{};
  for (size_t base = 0; base < m; base += kChunk) {
    const size_t len = std::min(kChunk, m - base);
    std::memcpy(merged.data(), live[0] + base, len);
    for (size_t k = 1; k < live_n; ++k) maxInto(merged.data(), live[k] + base, len);
    for (size_t j = 0; j < len; j += 4) {  // registers never exceed q + 1
      ++partial[0][merged[j]];
      ++partial[1][merged[j + 1]];
      ++partial[2][merged[j + 2]];
      ++partial[3][merged[j + 3]];
    }
  }
  std::array<uint32_t, 64 + 2> histogram{};
  for (size_t k = 0; k <= q + 1; ++k) histogram[k] = partial[0][k] + partial[1][k] + partial[2][k] + partial[3][k];
  return ertlEstimate(histogram.data(), q, m);
}

double WindowedDistinct::estimate(int64_t now_ms) const {
  return countRecent(config_.sub_windows, queryEpoch(now_ms));
}

double WindowedDistinct::estimateRecent(uint32_t sub_windows_back, int64_t now_ms) const {
  return countRecent(sub_windows_back, queryEpoch(now_ms));
}

double WindowedDistinct::relativeError() const {
  return dense_ ? 1.04 / std::sqrt(static_cast<double>(registerCount())) : 0.0;
}

size_t WindowedDistinct::memoryBytes() const {
  return sizeof(*this) + sparse_.capacity() * sizeof(Pair) + registers_.capacity() +
         slot_epochs_.capacity() * sizeof(int64_t);
}

// Layout, little-endian: 'W', version, flags (1 = dense), precision, sub_windows (u32),
// sub_window_ms (i64), current epoch (i64), then
//   sparse: count (u32), count x (hash u64, epoch i64), hashes strictly increasing;
//   dense:  count (u32) of slots inside the window, count x (epoch i64, 2^precision registers).
void WindowedDistinct::serialize(std::string& out) const {
  core::BinaryWriter w(out);
  w.put<uint8_t>(kMagic);
  w.put<uint8_t>(kVersion);
  w.put<uint8_t>(dense_ ? kFlagDense : 0);
  w.put<uint8_t>(config_.precision);
  w.put<uint32_t>(config_.sub_windows);
  w.put<uint64_t>(static_cast<uint64_t>(config_.sub_window_ms));
  w.put<uint64_t>(static_cast<uint64_t>(current_epoch_));
  const int64_t oldest = current_epoch_ - static_cast<int64_t>(config_.sub_windows) + 1;
  if (!dense_) {
    const auto live = std::count_if(sparse_.begin(), sparse_.end(), [&](const Pair& p) { return p.epoch >= oldest; });
    w.put<uint32_t>(static_cast<uint32_t>(live));
    for (const Pair& p : sparse_) {
      if (p.epoch < oldest) continue;
      w.put<uint64_t>(p.hash);
      w.put<uint64_t>(static_cast<uint64_t>(p.epoch));
    }
    return;
  }
  uint32_t live = 0;
  for (int64_t e : slot_epochs_) live += e != kNoEpoch && e >= oldest;
  w.put<uint32_t>(live);
  for (size_t s = 0; s < config_.sub_windows; ++s) {
    if (slot_epochs_[s] == kNoEpoch || slot_epochs_[s] < oldest) continue;
    w.put<uint64_t>(static_cast<uint64_t>(slot_epochs_[s]));
    out.append(reinterpret_cast<const char*>(slotRegisters(s)), registerCount());
  }
}

std::optional<WindowedDistinct> WindowedDistinct::deserialize(std::string_view& in, const WindowConfig& config) {
  WindowedDistinct w(config);
  const WindowConfig& c = w.config_;
  core::BinaryReader r(in);
  if (r.take<uint8_t>() != kMagic || r.take<uint8_t>() != kVersion) return std::nullopt;
  const uint8_t flags = r.take<uint8_t>();
  const uint8_t precision = r.take<uint8_t>();
  const uint32_t sub_windows = r.take<uint32_t>();
  const auto sub_window_ms = r.take<int64_t>();
  const int64_t current = r.take<int64_t>();
  if (r.failed() || (flags & ~kFlagDense) != 0 || precision != c.precision || sub_windows != c.sub_windows ||
      sub_window_ms != c.sub_window_ms || current < kNoEpoch)
    return std::nullopt;
  w.current_epoch_ = current;
  // Only epochs inside the window ending at `current` are written.
  const int64_t oldest = current - static_cast<int64_t>(c.sub_windows) + 1;
  auto valid_epoch = [&](int64_t e) { return e >= 0 && e >= oldest && e <= current; };
  const uint32_t count = r.take<uint32_t>();
  if (r.failed()) return std::nullopt;

  if ((flags & kFlagDense) == 0) {
    if (count > c.sparse_limit || count > r.rest().size() / 16) return std::nullopt;
    w.sparse_.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      const uint64_t hash = r.take<uint64_t>();
      const int64_t epoch = r.take<int64_t>();
      if (r.failed() || !valid_epoch(epoch) || (!w.sparse_.empty() && w.sparse_.back().hash >= hash))
        return std::nullopt;
      w.sparse_.push_back(Pair{hash, epoch});
    }
  } else {
    const size_t m = w.registerCount();
    if (count > c.sub_windows || count > r.rest().size() / (8 + m)) return std::nullopt;
    w.dense_ = true;
    w.registers_.assign(size_t{c.sub_windows} * m, 0);
    w.slot_epochs_.assign(c.sub_windows, kNoEpoch);
    const auto max_rank = static_cast<uint8_t>(64 - c.precision + 1);
    for (uint32_t i = 0; i < count; ++i) {
      const int64_t epoch = r.take<int64_t>();
      if (r.failed() || !valid_epoch(epoch) || r.rest().size() < m) return std::nullopt;
      const size_t slot = static_cast<size_t>(epoch % c.sub_windows);
      if (w.slot_epochs_[slot] != kNoEpoch) return std::nullopt;  // two epochs for one slot
      w.slot_epochs_[slot] = epoch;
      uint8_t* regs = w.slotRegisters(slot);
      std::memcpy(regs, r.rest().data(), m);
      r.skip(m);
      for (size_t j = 0; j < m; ++j)
        if (regs[j] > max_rank) return std::nullopt;
    }
  }
  in = r.rest();
  return w;
}

}  // namespace cardinal::pipeline::cardinality
