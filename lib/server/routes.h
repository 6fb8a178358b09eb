#pragma once
// The HTTP surface: path + method -> handler, timing and counting every
// answer by handler and code. Unknown paths get 404, wrong methods 405.

#include <atomic>
#include <functional>
#include <memory>

#include "server/http_types.h"
#include "server/metrics.h"
#include "server/stats_handler.h"
#include "server/write_handler.h"
#include "security/auth.h"

namespace prometheus {
class Registry;
}

namespace cardinal::server {

struct RouteDeps {
  WriteHandler& write;
  prometheus::Registry& registry;
  ProxyMetrics& metrics;
  std::function<bool()> ready;                 // false while starting or draining
  std::function<std::string()> reload;         // POST /-/reload: "" on success, else the error
  const StatsHandler* stats = nullptr;         // GET /api/v1/stats, /api/v1/stats/explain
  // Set and enabled: every path but /-/healthy and /-/ready needs credentials (401 otherwise).
  const security::IngestAuth* auth = nullptr;
};

class Routes {
 public:
  explicit Routes(RouteDeps deps) : deps_(std::move(deps)) {}
  void handle(Request&& req, Responder respond);

 private:
  RouteDeps deps_;
};

}  // namespace cardinal::server
