#include "pipeline/merge/emitter.h"

#include "codec/encode.h"
#include "codec/snappy_codec.h"

namespace cardinal::pipeline::merge {

std::vector<std::shared_ptr<const std::string>> encodeEmitted(const std::vector<MergeState::Emitted>& emitted,
                                                              size_t max_series) {
  std::vector<std::shared_ptr<const std::string>> bodies;
  std::string raw;
  std::vector<core::LabelView> labels;
  size_t in_body = 0;
  auto flush = [&] {
    if (in_body == 0) return;
    auto body = std::make_shared<std::string>();
    codec::compress(raw, *body);
    bodies.push_back(std::move(body));
    raw.clear();
    in_body = 0;
  };
  for (const auto& e : emitted) {
    labels.clear();
    for (const auto& [n, v] : e.labels) labels.push_back({n, v});
    codec::appendSeries(raw, labels, std::span<const codec::Sample>(&e.sample, 1));
    if (++in_body >= max_series) flush();
  }
  flush();
  return bodies;
}

}  // namespace cardinal::pipeline::merge
