#pragma once
// "Have I seen this series in the current period?": a cheap, lock-free,
// bounded new-series check shared by all workers.
//
// Two Bloom filters of `bits` bits each (atomic 64-bit words); the current
// one answers and is set, the other holds the previous period. Blocked: all k
// bits of a hash lie in one 512-bit block (one cache line), so a query costs
// one cache miss instead of k (with k spread over megabytes, the misses were
// the proxy's third-hottest symbol under perf). From the one 64-bit hash:
//   block = fastrange(mix64(hash), blocks), bit_i = top 9 bits of (h2 + i * h3)
//   with h2 = mix64(hash ^ golden), h3 = mix64(hash ^ ~golden) | 1.
// Blocking costs a little false-positive rate at the same size (uneven block
// loads): about 1.3 % instead of 1 % at capacity for the default 1 % target.
// Sizing, for m bits and target false-positive rate p:
//   k        = max(1, round(log2(1 / p)))          (7 for 1 %)
//   capacity = floor(m * ln(2)^2 / ln(1 / p))      (0.104 m for 1 %: 9.6 bits per series)
// At `capacity` insertions the false-positive rate is about p; testAndSet()
// rotates by itself on the insertion that passes it, so the rate stays bounded
// however many series arrive between the caller's rotations.
//
// Threads. testAndSet() and seenInPrevious() are lock-free and may run from
// any number of threads; rotate() may run concurrently with them (rotators
// are serialized by a mutex that testAndSet never waits on). rotate() clears
// the previous filter and then publishes it as the new current one by
// bumping an atomic generation (release; readers acquire). A thread that
// loaded the generation just before a rotation may finish its query on the
// old filter: near a rotation a series can be reported "not seen" twice, or
// leave stray bits in a filter that is being cleared (a rare false "seen").
// There is no data race: every access to the bits is atomic.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace cardinal::pipeline::cardinality {

class SeenFilter {
 public:
  // `bits` is rounded up to a multiple of 64 (at least 64); target_fp_rate is
  // clamped to [1e-9, 0.5].
  SeenFilter(size_t bits, double target_fp_rate = 0.01);
  SeenFilter(const SeenFilter&) = delete;
  SeenFilter& operator=(const SeenFilter&) = delete;

  // True if (probably) already seen in the current period; sets it either way.
  bool testAndSet(uint64_t hash);
  // Starts fetching the cache line testAndSet(hash) will read (a caller
  // walking many hashes issues it a few ahead).
  void prefetch(uint64_t hash) const;
  // Whether (probably) seen in the previous period. Does not set anything.
  bool seenInPrevious(uint64_t hash) const;
  // Starts a new period: the current filter becomes the previous one.
  void rotate();

  size_t memoryBytes() const;
  // Fraction of the current filter's bits that are set (0.5 at capacity for the optimal k).
  double fillRatio() const;
  size_t bits() const { return words_ * 64; }
  uint32_t hashCount() const { return k_; }
  // Insertions into one filter before it rotates by itself.
  uint64_t capacity() const { return capacity_; }
  // Rotations so far, explicit and automatic.
  uint64_t rotations() const { return generation_.load(std::memory_order_relaxed); }

 private:
  using Word = std::atomic<uint64_t>;
  // Tests the k bits of `hash` in `words` and sets the missing ones; whether all were set.
  struct Block;
  bool testAndSetIn(Block* f, uint64_t hash) const;
  bool testIn(const Block* f, uint64_t hash) const;
  void rotateLocked();

  size_t words_;
  uint32_t k_;
  uint64_t capacity_;
  struct alignas(64) Block {
    Word w[8];
  };
  Word& word(Block* f, size_t i) const { return f[i >> 3].w[i & 7]; }
  const Word& word(const Block* f, size_t i) const { return f[i >> 3].w[i & 7]; }
  size_t block_words_;  // 8, or all words when fewer
  size_t blocks_;
  std::unique_ptr<Block[]> filters_[2];
  std::atomic<uint64_t> generation_{0};  // current filter = filters_[generation_ & 1]
  std::atomic<uint64_t> inserted_{0};    // insertions into the current filter
  std::mutex rotate_mu_;
};

}  // namespace cardinal::pipeline::cardinality
