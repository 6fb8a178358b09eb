#pragma once
// Keeping busy I/O threads on different CPUs.
//
// The kernel sometimes queues two I/O threads that both have a request to
// process on one CPU while another CPU idles: a thread woken by a new request
// preempts the one that is processing (wakeup preemption), and the preempted
// one, having just run, counts as cache-hot, so an idle CPU does not pull it
// over until a balancing tick milliseconds later. At half load on the 2-CPU
// development machine bench/tail_sched.sh found 32-127 ms of such waits in
// 8 s, in 10-27 of the 62 slowest requests (BENCHMARKS.md, session 20).
//
// Each I/O thread calls busy(i) when it starts processing a request and once
// it is decoded (a split request's helper when it starts its parts): it
// publishes its CPU, and when another I/O thread that is processing published
// the same CPU and is runnable there (/proc/self/task/<tid>/stat: state R,
// that processor), that thread is
// waiting for this CPU (this one runs on it), so this one moves to another CPU
// it may use, one where no other processing I/O thread published itself if
// there is one: its affinity is narrowed to those (the kernel moves it at
// once) and given back right away, so only this one move is forced. idle(i)
// when it stops processing. The checks cost a vDSO call and a relaxed load per
// other thread; the /proc read happens only when two published CPUs are equal.
//
// Disabled (busy() publishes nothing) with pinned threads
// (--web.io-threads-pin), with one thread, or by --web.io-threads-spread=false.

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace cardinal::server {

// A task's state letter and last CPU from a /proc/<pid>/task/<tid>/stat line
// (fields 3 and 39; the command in field 2 may hold spaces and parentheses);
// nullopt when the line is not one.
struct TaskCpu {
  char state = 0;
  int processor = -1;
};
std::optional<TaskCpu> parseTaskStat(std::string_view stat);

// Where a thread on `cpu` moves: the `allowed` CPUs other than `cpu` and not
// in `avoid` (where other processing I/O threads are), or, when that leaves
// none, the allowed ones other than `cpu`; empty when `cpu` is the only one.
cpu_set_t spreadTargets(const cpu_set_t& allowed, int cpu, const cpu_set_t& avoid);

class ThreadSpread {
 public:
  explicit ThreadSpread(size_t threads, bool enabled = true);

  bool enabled() const { return enabled_; }
  // Thread i, once, from the thread itself: its task id.
  void attach(size_t i);
  // Thread i, at the start of its processing and between its steps; true when
  // it moved to another CPU.
  bool busy(size_t i);
  // Thread i, when its processing ends.
  void idle(size_t i);
  // Moves made so far (all threads).
  uint64_t moves() const { return moves_.load(std::memory_order_relaxed); }

  // Thread i processing for the scope's life: busy(i) when made, idle(i) when
  // gone, check() for busy(i) again between steps. A null or disabled spread
  // makes a scope that does nothing.
  class Scope {
   public:
    Scope(ThreadSpread* spread, size_t i) : spread_(spread && spread->enabled() ? spread : nullptr), i_(i) {
      check();
    }
    ~Scope() {
      if (spread_) spread_->idle(i_);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    void check() const {
      if (spread_) spread_->busy(i_);
    }

   private:
    ThreadSpread* spread_;
    size_t i_;
  };

 private:
  struct alignas(64) Slot {
    std::atomic<int> cpu{-1};  // -1: not processing
    std::atomic<int> tid{0};
  };
  size_t size_;
  bool enabled_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<uint64_t> moves_{0};
};

}  // namespace cardinal::server
