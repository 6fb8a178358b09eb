#pragma once
// Merge vocabulary shared by the rule schema (which says how to merge) and the
// merge engine (which does it). Header-only, no dependencies.

#include <cstdint>
#include <vector>

namespace cardinal::pipeline::merge {

enum class Kind : uint8_t { kCounter, kGauge };
enum class GaugeFn : uint8_t { kSum, kAvg, kMin, kMax, kCount, kLast };

struct Options {
  GaugeFn gauge = GaugeFn::kSum;  // keeps the metric name
  std::vector<double> quantiles;  // extra gauge outputs, each in [0, 1]
};

}  // namespace cardinal::pipeline::merge
