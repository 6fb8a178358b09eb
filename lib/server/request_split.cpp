#include "server/request_split.h"

#include <bit>

#include "codec/decode.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"

namespace cardinal::server {

bool sharesSeries(const codec::SeriesBatch& a, const codec::SeriesBatch& b, std::vector<uint64_t>& table) {
  if (a.series.empty() || b.series.empty()) return false;
  // Open addressing at most half full; 0 marks an empty slot, so a hash is
  // stored with its lowest bit set (two hashes may then look alike: a yes
  // that costs only the parallel stages, never a missed series).
  const size_t size = std::bit_ceil(a.series.size() * 2);
  const size_t mask = size - 1;
  table.assign(size, 0);
  for (const auto& s : a.series) {
    const uint64_t key = s.hash | 1;
    size_t i = static_cast<size_t>(key >> 7) & mask;
    while (table[i] != 0 && table[i] != key) i = (i + 1) & mask;
    table[i] = key;
  }
  for (const auto& s : b.series) {
    const uint64_t key = s.hash | 1;
    for (size_t i = static_cast<size_t>(key >> 7) & mask; table[i] != 0; i = (i + 1) & mask)
      if (table[i] == key) return true;
  }
  return false;
}

std::shared_ptr<SplitHalf> SplitHalf::acquire() {
  // A helper may still hold a half for a moment after it is done with it (its
  // task object is destroyed after it returns), so a few are kept.
  constexpr size_t kPool = 4;
  thread_local std::vector<std::shared_ptr<SplitHalf>> pool;
  for (auto& h : pool)
    if (h.use_count() == 1) return h;
  auto h = std::make_shared<SplitHalf>();
  if (pool.size() < kPool) pool.push_back(h);
  return h;
}

void SplitHalf::start(const Job& job) {
  // An occasional huge request must not pin its buffers to the pool.
  constexpr size_t kKeep = 16u << 20;
  if (encoded_.capacity() > kKeep) std::string().swap(encoded_);
  if (compressed_.capacity() > kKeep) std::string().swap(compressed_);
  job_ = job;
  batch_.clear();
  decoded_ = core::Status::Ok();
  encoded_.clear();
  encoded_valid_ = false;
  outcome_ = pipeline::Outcome::kUnchanged;
  phase_.store(kPosted, std::memory_order_release);
}

void SplitHalf::decode() {
  decoded_ = codec::decodeWriteRequest(job_.body, *job_.limits, batch_);
  if (decoded_) job_.state->types.observe(batch_);
}

void SplitHalf::process() {
  if (job_.run_stages)
    outcome_ = pipeline::runStages(*job_.pipeline, batch_, *job_.rules, *job_.state, *job_.clock, job_.dry_run);
  if (!job_.run_stages || batch_.anyChanged()) encode();
}

void SplitHalf::encode() {
  codec::encodeForProtocol(batch_, codec::WireProtocol::kV1, encoded_);
  codec::compress(encoded_, compressed_);
  encoded_valid_ = true;
}

int SplitHalf::waitWhile(int phase) {
  int p;
  while ((p = phase_.load(std::memory_order_acquire)) == phase) phase_.wait(phase, std::memory_order_acquire);
  return p;
}

void SplitHalf::runAsHelper() {
  int expected = kPosted;
  if (!phase_.compare_exchange_strong(expected, kHelperDecoding, std::memory_order_acq_rel)) return;
  decode();
  phase_.store(kDecoded, std::memory_order_release);
  phase_.notify_all();
  if (waitWhile(kDecoded) != kContinue) return;
  process();
  phase_.store(kProcessed, std::memory_order_release);
  phase_.notify_all();
}

void SplitHalf::awaitDecoded() {
  int expected = kPosted;
  if (phase_.compare_exchange_strong(expected, kCallerOwns, std::memory_order_acq_rel)) {
    decode();
    return;
  }
  waitWhile(kHelperDecoding);
}

bool SplitHalf::release(bool helper_continues) {
  if (phase_.load(std::memory_order_acquire) != kDecoded) return false;  // the caller owns it
  phase_.store(helper_continues ? kContinue : kStop, std::memory_order_release);
  phase_.notify_all();
  return helper_continues;
}

void SplitHalf::finish() {
  int p = phase_.load(std::memory_order_acquire);
  if (p == kPosted) {
    // Not started: the helper's task will find it taken and leave it.
    if (phase_.compare_exchange_strong(p, kCallerOwns, std::memory_order_acq_rel)) return;
  }
  if (p == kHelperDecoding) p = waitWhile(kHelperDecoding);
  if (p == kDecoded) (void)release(false);
  else if (p == kContinue) waitWhile(kContinue);
}

}  // namespace cardinal::server
