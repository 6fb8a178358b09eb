#include "server/io_pool.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <string>
#include <thread>

#include "core/log.h"

namespace cardinal::server {

namespace {
// The pool and index of the context the calling thread runs (set by run()).
thread_local const IoPool* t_pool = nullptr;
thread_local size_t t_index = IoPool::kNotInPool;
}  // namespace

namespace {
size_t atLeastOne(size_t threads) { return threads == 0 ? 1 : threads; }
}  // namespace

IoPool::IoPool(size_t threads, bool pin, bool spread)
    : pin_(pin), load_(atLeastOne(threads)), spread_(atLeastOne(threads), spread && !pin) {
  threads = atLeastOne(threads);
  pinned_.assign(threads, -1);
  for (size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is run by one thread, so its scheduler
    // never wakes another one (posting to it from other threads stays safe).
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

namespace {
// The CPUs in `set`, in order.
std::vector<int> cpusOf(const cpu_set_t& set) {
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Pins the calling thread to `cpu`; the error, if the kernel refused.
int pinTo(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}
}  // namespace

void IoPool::run() {
  // Read before any thread pins itself (the calling thread is one of them,
  // and gets this set back when its context returns).
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;
  if (pin_ && sched_getaffinity(0, sizeof allowed, &allowed) == 0) cpus = cpusOf(allowed);
  auto runOne = [this, &cpus, &allowed](size_t i) {
    t_pool = this;
    t_index = i;
    if (!cpus.empty()) {
      const int cpu = cpus[i % cpus.size()];
      if (int err = pinTo(cpu); err == 0) {
        pinned_[i] = cpu;
      } else {
        core::logWarn("I/O thread not pinned", {{"thread", std::to_string(i)},
                                                {"cpu", std::to_string(cpu)},
                                                {"error", std::strerror(err)}});
      }
    }
    load_.start(i);
    spread_.attach(i);
    contexts_[i]->run();
    if (pinned_[i] >= 0) pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
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
