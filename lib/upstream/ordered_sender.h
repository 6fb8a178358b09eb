#pragma once
// A bounded FIFO of request bodies Cardinal creates itself (merged series),
// delivered one at a time, in order, through the upstream Client: per output
// series, samples must reach the receiver in timestamp order. A body the
// upstream could not take within the retry budget is retried after a pause,
// never reordered; a body the upstream refuses (4xx) is dropped and counted.
// When the queue is full the oldest body is dropped and counted (for merged
// counters that loses resolution, not increases: the next sample carries the
// cumulative value). Thread-safe.

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "upstream/client.h"

namespace cardinal::upstream {

struct OrderedSenderMetrics {
  explicit OrderedSenderMetrics(prometheus::Registry& registry);
  prometheus::Gauge& queued;
  prometheus::Counter& delivered;
  prometheus::Counter& rejected;
  prometheus::Counter& overflow;
  prometheus::Counter& retries;
};

class OrderedSender {
 public:
  struct Config {
    size_t max_queued = 1000;
    std::chrono::milliseconds retry_pause{1000};
    // The protocol the bodies are encoded in (merge::encodeEmitted). Every
    // body holds at least one sample, so a 2.0 upstream must confirm some.
    codec::WireProtocol protocol = codec::WireProtocol::kV1;
  };
  OrderedSender(boost::asio::io_context& ioc, Client& client, Config config, OrderedSenderMetrics* metrics);
  // `extra` headers go with this body only (the tenant header of the tenant
  // whose merged series it holds); one body never mixes tenants.
  void enqueue(std::shared_ptr<const std::string> body, Headers extra = {});
  size_t queued() const;
  bool idle() const;  // nothing queued and nothing in flight

 private:
  void sendNextLocked();  // called with mu_ held
  void onResult(const DeliveryResult& r);

  Client& client_;
  Config config_;
  OrderedSenderMetrics* metrics_;
  boost::asio::steady_timer timer_;
  mutable std::mutex mu_;
  struct Item {
    std::shared_ptr<const std::string> body;
    Headers extra;
  };
  std::deque<Item> queue_;
  bool in_flight_ = false;
};

}  // namespace cardinal::upstream
