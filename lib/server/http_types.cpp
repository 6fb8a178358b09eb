#include "server/http_types.h"

namespace cardinal::server {

Response textResponse(http::status status, std::string_view text) {
  Response res{status, 11};
  res.set(http::field::server, "cardinal");
  if (!text.empty()) {
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body().assign(text);
    if (res.body().back() != '\n') res.body() += '\n';
  }
  return res;
}

void setWrittenHeaders(Response& res, const codec::WrittenCounts& written) {
  auto name = [](std::string_view s) { return boost::beast::string_view(s.data(), s.size()); };
  res.set(name(codec::kSamplesWrittenHeader), std::to_string(written.samples));
  res.set(name(codec::kHistogramsWrittenHeader), std::to_string(written.histograms));
  res.set(name(codec::kExemplarsWrittenHeader), std::to_string(written.exemplars));
}

}  // namespace cardinal::server
