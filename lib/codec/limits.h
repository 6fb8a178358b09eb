#pragma once
// Request limits enforced before and during decode. Each is a flag
// (--limits.*) with the default below; exceeding one is a 4xx with a message
// that names the limit.

#include <cstddef>

namespace cardinal::codec {

struct Limits {
  size_t max_body_bytes = 32u << 20;           // compressed request body (413 beyond)
  size_t max_decompressed_bytes = 128u << 20;  // from snappy's length header, before allocating
  size_t max_series_per_request = 100'000;
  size_t max_labels_per_series = 256;
  size_t max_label_name_bytes = 1024;
  size_t max_label_value_bytes = 16 * 1024;
};

}  // namespace cardinal::codec
