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

}  // namespace cardinal::server
