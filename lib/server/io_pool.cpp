#include "server/io_pool.h"

#include <thread>

namespace cardinal::server {

namespace {
// The pool and index of the context the calling thread runs (set by run()).
thread_local const IoPool* t_pool = nullptr;
thread_local size_t t_index = IoPool::kNotInPool;
}  // namespace

IoPool::IoPool(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is run by one thread, so its scheduler
    // never wakes another one (posting to it from other threads stays safe).
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

void IoPool::run() {
  auto runOne = [this](size_t i) {
    t_pool = this;
    t_index = i;
    contexts_[i]->run();
    t_pool = nullptr;
    t_index = kNotInPool;
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < contexts_.size(); ++i) threads.emplace_back(runOne, i);
  runOne(0);
  for (auto& t : threads) t.join();
}

void IoPool::stop() {
  for (auto& c : contexts_) c->stop();
}

size_t IoPool::currentIndex() const { return t_pool == this ? t_index : kNotInPool; }

}  // namespace cardinal::server
