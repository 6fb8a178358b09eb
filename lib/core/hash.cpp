#include "core/hash.h"

#include <random>

namespace cardinal::core {

const HashKey& HashKey::random() {
  static const HashKey key = [] {
    std::random_device rd;
    auto draw = [&] { return (static_cast<uint64_t>(rd()) << 32) ^ rd(); };
    HashKey k{};
    k.k0 = draw();
    k.k1 = draw();
    k.seed = draw();
    return k;
  }();
  return key;
}

}  // namespace cardinal::core
