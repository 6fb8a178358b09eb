#include "upstream/ordered_sender.h"

#include <boost/asio/strand.hpp>

#include "core/log.h"

namespace cardinal::upstream {

OrderedSenderMetrics::OrderedSenderMetrics(prometheus::Registry& r)
    : queued(prometheus::BuildGauge()
                 .Name("cardinal_merged_queue_requests")
                 .Help("Merged-series requests waiting to be delivered to the upstream.")
                 .Register(r)
                 .Add({})),
      delivered(prometheus::BuildCounter()
                    .Name("cardinal_merged_requests_total")
                    .Help("Merged-series requests, by outcome.")
                    .Register(r)
                    .Add({{"outcome", "delivered"}})),
      rejected(prometheus::BuildCounter().Name("cardinal_merged_requests_total").Register(r).Add({{"outcome", "rejected"}})),
      overflow(prometheus::BuildCounter().Name("cardinal_merged_requests_total").Register(r).Add({{"outcome", "dropped_queue_full"}})),
      retries(prometheus::BuildCounter().Name("cardinal_merged_requests_total").Register(r).Add({{"outcome", "retried"}})) {}

OrderedSender::OrderedSender(boost::asio::io_context& ioc, Client& client, Config config,
                             OrderedSenderMetrics* metrics)
    : client_(client), config_(config), metrics_(metrics), timer_(boost::asio::make_strand(ioc)) {}

void OrderedSender::enqueue(std::shared_ptr<const std::string> body, Headers extra) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= config_.max_queued) {
    if (metrics_) metrics_->overflow.Increment();
    // Never touch the body in flight (the front); drop the oldest waiting one.
    if (in_flight_ && queue_.size() <= 1) return;
    queue_.erase(in_flight_ ? queue_.begin() + 1 : queue_.begin());
  }
  queue_.push_back({std::move(body), std::move(extra)});
  if (metrics_) metrics_->queued.Set(static_cast<double>(queue_.size()));
  if (!in_flight_) sendNextLocked();
}

size_t OrderedSender::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool OrderedSender::idle() const {
  std::lock_guard lock(mu_);
  return queue_.empty() && !in_flight_;
}

void OrderedSender::sendNextLocked() {
  if (queue_.empty()) return;
  in_flight_ = true;
  const bool v2 = config_.protocol == codec::WireProtocol::kV2;
  Headers headers = remoteWriteHeaders(config_.protocol);
  headers.insert(headers.end(), queue_.front().extra.begin(), queue_.front().extra.end());
  // Under mu_ (enqueue() waits for it): no yielding the CPU within send().
  client_.send(queue_.front().body, std::move(headers), [this](DeliveryResult r) { onResult(r); },
               SendOptions{v2, v2 ? 1u : 0u, false});
}

void OrderedSender::onResult(const DeliveryResult& r) {
  std::lock_guard lock(mu_);
  if (r.kind == DeliveryResult::Kind::kGaveUp) {
    if (metrics_) metrics_->retries.Increment();
    core::logWarn("merged series not delivered yet; retrying", {{"reason", r.message}});
    timer_.expires_after(config_.retry_pause);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      std::lock_guard relock(mu_);
      sendNextLocked();
    });
    return;
  }
  if (r.kind == DeliveryResult::Kind::kRejected) {
    if (metrics_) metrics_->rejected.Increment();
    // The upstream's message may quote series labels: not logged.
    core::logError("upstream rejected merged series; dropped",
                   {{"status", std::to_string(r.status)}, {"not_remote_write_2", r.unconfirmed_v2 ? "true" : "false"}});
  } else if (metrics_) {
    metrics_->delivered.Increment();
  }
  queue_.pop_front();
  in_flight_ = false;
  if (metrics_) metrics_->queued.Set(static_cast<double>(queue_.size()));
  if (!queue_.empty()) sendNextLocked();
}

}  // namespace cardinal::upstream
