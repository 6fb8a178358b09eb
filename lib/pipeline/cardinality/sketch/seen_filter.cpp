#include "pipeline/cardinality/sketch/seen_filter.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/hash.h"

namespace cardinal::pipeline::cardinality {
namespace {

constexpr uint32_t kMaxHashes = 32;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

struct Probe {
  uint64_t block, h2, h3;
};

Probe probeOf(uint64_t hash) {
  return {core::mix64(hash), core::mix64(hash ^ kGolden), core::mix64(hash ^ ~kGolden) | 1};
}

// Lemire's multiply-shift reduction of a 64-bit value to [0, n).
size_t fastRange(uint64_t x, size_t n) {
  return static_cast<size_t>((static_cast<__uint128_t>(x) * n) >> 64);
}

}  // namespace

SeenFilter::SeenFilter(size_t bits, double target_fp_rate) : words_(std::max<size_t>(1, (bits + 63) / 64)) {
  const double p = std::clamp(std::isnan(target_fp_rate) ? 0.01 : target_fp_rate, 1e-9, 0.5);
  const double ln2 = std::log(2.0);
  k_ = std::clamp<uint32_t>(static_cast<uint32_t>(std::lround(-std::log2(p))), 1, kMaxHashes);
  const double m = static_cast<double>(words_ * 64);
  capacity_ = std::max<uint64_t>(1, static_cast<uint64_t>(m * ln2 * ln2 / -std::log(p)));
  block_words_ = std::bit_floor(std::min<size_t>(8, words_));
  blocks_ = words_ / block_words_;
  for (auto& f : filters_) f = std::make_unique<Block[]>((words_ + 7) / 8);  // value-initialized: zero
}

bool SeenFilter::testAndSetIn(Block* f, uint64_t hash) const {
  const Probe pr = probeOf(hash);
  const size_t base = fastRange(pr.block, blocks_) * block_words_;
  const unsigned shift = 64 - static_cast<unsigned>(std::countr_zero(block_words_ * 64));  // top log2(bits) bits
  bool all = true;
  uint64_t g = pr.h2;
  for (uint32_t i = 0; i < k_; ++i, g += pr.h3) {
    const size_t pos = static_cast<size_t>(g >> shift);
    const uint64_t mask = uint64_t{1} << (pos & 63);
    Word& w = word(f, base + (pos >> 6));
    // Read first: a set bit costs no cache-line write, which matters when threads share words.
    if ((w.load(std::memory_order_relaxed) & mask) == 0) {
      all = false;
      w.fetch_or(mask, std::memory_order_relaxed);
    }
  }
  return all;
}

bool SeenFilter::testIn(const Block* f, uint64_t hash) const {
  const Probe pr = probeOf(hash);
  const size_t base = fastRange(pr.block, blocks_) * block_words_;
  const unsigned shift = 64 - static_cast<unsigned>(std::countr_zero(block_words_ * 64));
  uint64_t g = pr.h2;
  for (uint32_t i = 0; i < k_; ++i, g += pr.h3) {
    const size_t pos = static_cast<size_t>(g >> shift);
    if ((word(f, base + (pos >> 6)).load(std::memory_order_relaxed) & (uint64_t{1} << (pos & 63))) == 0) return false;
  }
  return true;
}

bool SeenFilter::testAndSet(uint64_t hash) {
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  if (testAndSetIn(filters_[gen & 1].get(), hash)) return true;
  if (inserted_.fetch_add(1, std::memory_order_relaxed) + 1 <= capacity_) return false;

  // This insertion passed the capacity: rotate unless another thread is at it, then make sure the
  // series is in whatever filter is current now, so it is not reported new twice.
  {
    std::unique_lock lock(rotate_mu_, std::try_to_lock);
    if (lock.owns_lock() && generation_.load(std::memory_order_relaxed) == gen) rotateLocked();
  }
  const uint64_t now = generation_.load(std::memory_order_acquire);
  if (now != gen && !testAndSetIn(filters_[now & 1].get(), hash))
    inserted_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void SeenFilter::prefetch(uint64_t hash) const {
  const Block* f = filters_[generation_.load(std::memory_order_relaxed) & 1].get();
  __builtin_prefetch(&word(f, fastRange(core::mix64(hash), blocks_) * block_words_));
}

bool SeenFilter::seenInPrevious(uint64_t hash) const {
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  return testIn(filters_[(gen + 1) & 1].get(), hash);
}

void SeenFilter::rotateLocked() {
  const uint64_t gen = generation_.load(std::memory_order_relaxed);
  Block* next = filters_[(gen + 1) & 1].get();
  for (size_t i = 0; i < words_; ++i) word(next, i).store(0, std::memory_order_relaxed);
  inserted_.store(0, std::memory_order_relaxed);
  generation_.store(gen + 1, std::memory_order_release);
}

void SeenFilter::rotate() {
  std::lock_guard lock(rotate_mu_);
  rotateLocked();
}

size_t SeenFilter::memoryBytes() const { return sizeof(*this) + 2 * ((words_ + 7) / 8) * sizeof(Block); }

double SeenFilter::fillRatio() const {
  const Block* f = filters_[generation_.load(std::memory_order_acquire) & 1].get();
  uint64_t set = 0;
  for (size_t i = 0; i < words_; ++i)
    set += static_cast<uint64_t>(std::popcount(word(f, i).load(std::memory_order_relaxed)));
  return static_cast<double>(set) / static_cast<double>(words_ * 64);
}

}  // namespace cardinal::pipeline::cardinality
