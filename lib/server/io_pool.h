#pragma once
// The I/O threads: one io_context per thread, each run by its own thread only.
//
// One io_context run by several threads (Asio's usual pool) hands every ready
// socket to whichever thread is free, but each event also wakes a second
// thread to take over the epoll wait: about six context switches per
// remote-write request where one would do, and a contended scheduler lock
// (measured: BENCHMARKS.md, session 9). Here a connection belongs to one
// thread from accept to close (the server gives a new one to the thread with
// the fewest), its upstream exchange runs on that thread's upstream client,
// and the only hand-over between threads is a split request's helper task
// (request_split.h), posted to another thread's context.
//
// Context 0 also runs everything that is not a connection: signals, timers,
// the listener, the merged-series sender.
//
// Pinning (--web.io-threads-pin, off by default): thread i keeps to the i-th
// CPU of the process's allowed set (round robin when there are more threads).
// The kernel otherwise moves a thread that slept to whichever CPU is idle
// when it wakes; at 100-300 requests/s that was one to two moves per request,
// each starting on a cold core (measured: BENCHMARKS.md, session 13). Pinned,
// a thread cannot leave a CPU that another busy process shares either, so it
// is for hosts (or cpusets) where the proxy's CPUs are its own.
//
// Spreading (--web.io-threads-spread, on by default; off when pinned): a
// thread that starts processing on the CPU where another processing thread
// waits moves to another CPU (thread_spread.h).

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "server/thread_load.h"
#include "server/thread_spread.h"

namespace cardinal::server {

class IoPool {
 public:
  static constexpr size_t kNotInPool = static_cast<size_t>(-1);

  explicit IoPool(size_t threads, bool pin = false, bool spread = true);
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(size_t i) { return *contexts_[i]; }
  boost::asio::io_context& main() { return *contexts_[0]; }

  // Runs context 0 on the calling thread and every other one on a thread of
  // its own; returns once stop() was called and every thread has left (a
  // context without work keeps running until then).
  void run();
  // Stops every context (callable from any thread).
  void stop();

  // Which of this pool's contexts the calling thread runs, or kNotInPool.
  size_t currentIndex() const;

  // With pinning, the CPU thread i was pinned to once run() started it; -1
  // without pinning or when the kernel refused (logged). Read it from the
  // thread itself or after run() returned.
  int pinnedCpu(size_t i) const { return pinned_[i]; }

  // How busy each thread was lately (thread_load.h): each thread opens its
  // first window when run() starts it; the write handler ticks it per request
  // (when it splits requests: the load is read for that only).
  ThreadLoad& load() { return load_; }
  const ThreadLoad& load() const { return load_; }
  // Busy threads kept on different CPUs (thread_spread.h); each thread
  // attaches itself when run() starts it.
  ThreadSpread& spread() { return spread_; }
  const ThreadSpread& spread() const { return spread_; }

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  // Every context keeps running while it has nothing to do, until stop().
  std::vector<Guard> guards_;
  bool pin_ = false;
  std::vector<int> pinned_;
  ThreadLoad load_;
  ThreadSpread spread_;
};

}  // namespace cardinal::server
