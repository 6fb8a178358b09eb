#include "server/request_split.h"

#include <algorithm>
#include <bit>
#include <chrono>

#include "codec/decode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "core/yield_point.h"

namespace cardinal::server {

namespace {
// Waits until `a` no longer holds `old`. The two threads of a split request wait
// for each other for tens of microseconds at most (a part is a few hundred
// series), less than a sleep and a wake-up cost on a virtual machine, so the
// waiter spins first (with a CPU pause, about 20 us) and only then sleeps.
template <typename T>
void awaitChange(const std::atomic<T>& a, T old) {
  constexpr auto kSpin = std::chrono::microseconds(20);
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (unsigned n = 1;; ++n) {
    if (a.load(std::memory_order_acquire) != old) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (n % 64 == 0) {
      core::yieldPoint();  // an answer for an earlier request of this thread goes out meanwhile
      if (std::chrono::steady_clock::now() >= until) break;
    }
  }
  while (a.load(std::memory_order_acquire) == old) a.wait(old, std::memory_order_acquire);
}
}  // namespace

bool sharesSeries(std::span<const codec::SeriesBatch* const> batches, std::vector<uint64_t>& table) {
  size_t n = 0;
  for (const auto* b : batches) n += b->series.size();
  if (batches.size() < 2 || n == 0) return false;
  // Open addressing at most half full, two words per slot: the hash (stored
  // with its lowest bit set, 0 marking an empty slot; two hashes may then look
  // alike: a yes that costs only the parallel stages, never a missed series)
  // and the part it was first seen in.
  const size_t size = std::bit_ceil(n * 2);
  const size_t mask = size - 1;
  table.assign(2 * size, 0);
  for (size_t part = 0; part < batches.size(); ++part) {
    for (const auto& s : batches[part]->series) {
      const uint64_t key = s.hash | 1;
      size_t i = static_cast<size_t>(key >> 7) & mask;
      while (table[2 * i] != 0 && table[2 * i] != key) i = (i + 1) & mask;
      if (table[2 * i] == key) {
        if (table[2 * i + 1] != part) return true;
        continue;
      }
      table[2 * i] = key;
      table[2 * i + 1] = part;
    }
  }
  return false;
}

std::shared_ptr<SplitRequest> SplitRequest::acquire() {
  // A helper may still hold one for a moment after it is done with it (its
  // task object is destroyed after it returns), so a few are kept.
  constexpr size_t kPool = 4;
  thread_local std::vector<std::shared_ptr<SplitRequest>> pool;
  for (auto& h : pool)
    if (h.use_count() == 1) return h;
  auto h = std::make_shared<SplitRequest>();
  if (pool.size() < kPool) pool.push_back(h);
  return h;
}

bool SplitRequest::start(const Job& job) {
  const size_t want = std::clamp<size_t>(job.body.size() / std::max<size_t>(job.part_bytes, 1), 2, kMaxParts);
  const std::vector<size_t> cuts = codec::splitPoints(job.body, want);
  if (cuts.empty()) return false;
  job_ = job;
  parts_ = cuts.size() + 1;
  // An occasional huge request must not pin its buffers to the pool.
  constexpr size_t kKeep = 4u << 20;
  for (size_t i = 0; i < parts_; ++i) {
    Part& p = part_[i];
    const size_t begin = i == 0 ? 0 : cuts[i - 1];
    const size_t end = i == cuts.size() ? job.body.size() : cuts[i];
    p.body = job.body.substr(begin, end - begin);
    p.batch.clear();
    p.decoded = core::Status::Ok();
    if (p.encoded.capacity() > kKeep) std::string().swap(p.encoded);
    if (p.compressed.capacity() > kKeep) std::string().swap(p.compressed);
    p.encoded.clear();
    p.compressed.clear();
    p.encoded_valid = false;
    p.changed = false;
    p.live = {};
    p.by_helper = false;
  }
  for (size_t i = 0; i < kMaxParts; ++i) {
    decode_claimed_[i].store(false, std::memory_order_relaxed);
    process_claimed_[i].store(false, std::memory_order_relaxed);
  }
  decoded_.store(0);
  processed_.store(0);
  gate_.store(kDecoding, std::memory_order_release);
  return true;
}

void SplitRequest::decodePart(size_t i) {
  Part& p = part_[i];
  p.decoded = codec::decodeWriteRequest(p.body, *job_.limits, p.batch);
  if (p.decoded) job_.state->types.observe(p.batch);
}

void SplitRequest::processPart(size_t i) {
  Part& p = part_[i];
  if (job_.run_stages)
    pipeline::runStages(*job_.pipeline, p.batch, *job_.rules, *job_.state, *job_.clock, job_.dry_run);
  p.changed = p.batch.anyChanged();
  if (!job_.run_stages || p.changed) encode(i);
  p.live = p.batch.liveCounts();
}

void SplitRequest::encode(size_t i) {
  Part& p = part_[i];
  codec::encodeForProtocol(p.batch, codec::WireProtocol::kV1, p.encoded);
  codec::compress(p.encoded, p.compressed);
  p.encoded_valid = true;
}

template <typename Run>
void SplitRequest::takeParts(std::array<std::atomic<bool>, kMaxParts>& claimed, std::atomic<size_t>& done,
                             bool from_back, Run run) {
  // The two threads claim from opposite ends: a part found claimed means
  // every one beyond it is the other thread's.
  for (size_t k = 0; k < parts_; ++k) {
    const size_t i = from_back ? parts_ - 1 - k : k;
    if (claimed[i].exchange(true, std::memory_order_acq_rel)) return;
    run(i);
    if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == parts_) done.notify_all();
    core::yieldPoint();  // an answer for an earlier request of this thread goes out now
  }
}

void SplitRequest::waitAll(std::atomic<size_t>& done) {
  for (size_t d; (d = done.load(std::memory_order_acquire)) < parts_;) awaitChange(done, d);
}

void SplitRequest::runAsHelper() {
  // Late (every part taken, or the request long answered): touches nothing
  // but the counters. The request's thread does not let go of the job before
  // every part the helper took is done.
  takeParts(decode_claimed_, decoded_, true, [this](size_t i) { decodePart(i); });
  int g;
  while ((g = gate_.load(std::memory_order_acquire)) == kDecoding) awaitChange(gate_, static_cast<int>(kDecoding));
  if (g != kProcessing) return;
  takeParts(process_claimed_, processed_, true, [this](size_t i) {
    part_[i].by_helper = true;
    processPart(i);
  });
}

bool SplitRequest::decode() {
  takeParts(decode_claimed_, decoded_, false, [this](size_t i) { decodePart(i); });
  waitAll(decoded_);
  size_t series = 0;
  for (size_t i = 0; i < parts_; ++i) {
    if (!part_[i].decoded) return false;
    series += part_[i].batch.series.size();
  }
  return series <= job_.limits->max_series_per_request;
}

SplitRequest::Shared SplitRequest::process() {
  std::array<const codec::SeriesBatch*, kMaxParts> batches;
  for (size_t i = 0; i < parts_; ++i) batches[i] = &part_[i].batch;
  if (sharesSeries(std::span(batches.data(), parts_), shared_table_)) {
    // One after the other, in order, here.
    gate_.store(kStop, std::memory_order_release);
    gate_.notify_all();
    for (size_t i = 0; i < parts_; ++i) processPart(i);
    return Shared::kInOrder;
  }
  gate_.store(kProcessing, std::memory_order_release);
  gate_.notify_all();
  takeParts(process_claimed_, processed_, false, [this](size_t i) { processPart(i); });
  waitAll(processed_);
  for (size_t i = 0; i < parts_; ++i)
    if (part_[i].by_helper) return Shared::kShared;
  return Shared::kAlone;
}

void SplitRequest::abandon() {
  gate_.store(kStop, std::memory_order_release);
  gate_.notify_all();
}

}  // namespace cardinal::server
