#include "server/routes.h"

#include <chrono>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "server/web_ui.h"

namespace cardinal::server {

namespace {
const std::string kWrite = "/api/v1/write";
const std::string kMetrics = "/metrics";
const std::string kHealthy = "/-/healthy";
const std::string kReady = "/-/ready";
const std::string kReload = "/-/reload";
const std::string kStats = "/api/v1/stats";
const std::string kExplain = "/api/v1/stats/explain";
const std::string kWeb = "/";  // the status page and its /static/ files
const std::string kOther = "other";
}  // namespace

void Routes::handle(Request&& req, Responder respond) {
  auto started = std::chrono::steady_clock::now();
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  const std::string* handler = &kOther;
  if (path == kWrite) handler = &kWrite;
  else if (path == kMetrics) handler = &kMetrics;
  else if (path == kHealthy) handler = &kHealthy;
  else if (path == kReady) handler = &kReady;
  else if (path == kReload) handler = &kReload;
  else if (path == kStats) handler = &kStats;
  else if (path == kExplain) handler = &kExplain;
  else if (isWebPath(path)) handler = &kWeb;

  // Every answer is counted and timed under its handler label.
  Responder done = [this, handler, started, respond = std::move(respond)](Response res) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    deps_.metrics.countRequest(*handler, static_cast<int>(res.result_int()), secs);
    respond(std::move(res));
  };
  if (deps_.auth && deps_.auth->enabled() && handler != &kHealthy && handler != &kReady) {
    auto it = req.find(http::field::authorization);
    std::string_view given = it == req.end() ? std::string_view() : std::string_view(it->value().data(), it->value().size());
    auto verdict = deps_.auth->check(given);
    if (verdict != security::IngestAuth::Verdict::kAllowed) {
      deps_.metrics.countRejected(verdict == security::IngestAuth::Verdict::kMissing ? "auth_missing" : "auth_wrong");
      Response res = textResponse(
          http::status::unauthorized,
          verdict == security::IngestAuth::Verdict::kMissing
              ? "unauthorized: this endpoint requires credentials (Authorization: Bearer or Basic)"
              : "unauthorized: the credentials in the Authorization header are not valid");
      if (deps_.auth->bearerEnabled()) res.insert(http::field::www_authenticate, "Bearer realm=\"cardinal\"");
      if (deps_.auth->basicEnabled()) res.insert(http::field::www_authenticate, "Basic realm=\"cardinal\", charset=\"UTF-8\"");
      // A remote-write 2.0 sender expects the Written headers on every answer.
      if (handler == &kWrite)
        if (auto ct = req.find(http::field::content_type); ct != req.end()) {
          auto c = codec::checkContentType(std::string_view(ct->value().data(), ct->value().size()));
          if (c.error.empty() && c.protocol == codec::WireProtocol::kV2) setWrittenHeaders(res, {});
        }
      return done(std::move(res));
    }
  }
  auto method = req.method();
  auto onlyGet = [&] { return method == http::verb::get || method == http::verb::head; };
  auto notAllowed = [&](const char* allow) {
    Response res = textResponse(http::status::method_not_allowed, "method not allowed");
    res.set(http::field::allow, allow);
    done(std::move(res));
  };

  if (handler == &kWrite) {
    if (method != http::verb::post) return notAllowed("POST");
    return deps_.write.handle(std::move(req), std::move(done));
  }
  if (handler == &kMetrics) {
    if (!onlyGet()) return notAllowed("GET");
    Response res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = prometheus::TextSerializer().Serialize(deps_.registry.Collect());
    return done(std::move(res));
  }
  if (handler == &kHealthy) {
    if (!onlyGet()) return notAllowed("GET");
    return done(textResponse(http::status::ok, "Cardinal is Healthy."));
  }
  if (handler == &kReady) {
    if (!onlyGet()) return notAllowed("GET");
    if (deps_.ready && !deps_.ready()) return done(textResponse(http::status::service_unavailable, "Cardinal is not ready."));
    return done(textResponse(http::status::ok, "Cardinal is Ready."));
  }
  if (handler == &kReload) {
    if (method != http::verb::post && method != http::verb::put) return notAllowed("POST, PUT");
    std::string err = deps_.reload ? deps_.reload() : std::string("reload is not available");
    if (!err.empty()) return done(textResponse(http::status::internal_server_error, "failed to reload config: " + err));
    return done(textResponse(http::status::ok, "reloaded"));
  }
  if ((handler == &kStats || handler == &kExplain) && deps_.stats) {
    if (!onlyGet()) return notAllowed("GET");
    return done(handler == &kStats ? deps_.stats->stats(target) : deps_.stats->explain(target));
  }
  if (handler == &kWeb) {
    if (!onlyGet()) return notAllowed("GET");
    return done(webResponse(path));
  }
  done(textResponse(http::status::not_found, "404 page not found"));
}

}  // namespace cardinal::server
