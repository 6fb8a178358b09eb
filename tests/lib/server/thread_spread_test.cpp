#include "server/thread_spread.h"

#include <doctest/doctest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace cardinal;
using server::parseTaskStat;
using server::spreadTargets;
using server::ThreadSpread;

namespace {

std::vector<int> allowedCpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool setCpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A thread pinned to `cpu` that attaches itself as `spread`'s thread `index`, says it is busy
// there, and then either spins (runnable all the time) or sleeps until told to stop.
struct Neighbour {
  std::atomic<bool> stop{false};
  std::atomic<bool> ready{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread thread;
  Neighbour(ThreadSpread& spread, size_t index, int cpu, bool spin) {
    thread = std::thread([this, &spread, index, cpu, spin] {
      setCpus({cpu});
      spread.attach(index);
      spread.busy(index);
      ready = true;
      if (spin) {
        while (!stop.load(std::memory_order_relaxed)) {
        }
      } else {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stop.load(); });
      }
    });
    while (!ready) std::this_thread::yield();
  }
  ~Neighbour() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }
};

// Puts the calling thread on `cpu` and then lets it go anywhere it may: a running thread
// whose affinity widens stays where it is (until the kernel moves it, which a test retries).
void placeOn(int cpu, const std::vector<int>& all) {
  setCpus({cpu});
  setCpus(all);
}

}  // namespace

TEST_CASE("ThreadSpread: parseTaskStat reads a task's state and last CPU") {
  // This thread's own line.
  std::ifstream in("/proc/thread-self/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto self = parseTaskStat(ss.str());
  REQUIRE(self.has_value());
  CHECK(self->state == 'R');  // reading it: running
  const auto cpus = allowedCpus();
  CHECK(std::find(cpus.begin(), cpus.end(), self->processor) != cpus.end());
  // A command with spaces and parentheses: the fields count from the last ')'.
  std::string line = "4242 (a) b (c) S 1";
  for (int field = 5; field <= 38; ++field) line += " " + std::to_string(field);
  line += " 7 0 0 0\n";  // field 39: the processor
  const auto odd = parseTaskStat(line);
  REQUIRE(odd.has_value());
  CHECK(odd->state == 'S');
  CHECK(odd->processor == 7);
  // Not a stat line, or cut before field 39.
  CHECK_FALSE(parseTaskStat("").has_value());
  CHECK_FALSE(parseTaskStat("12 (x)").has_value());
  CHECK_FALSE(parseTaskStat("12 (x) R 1 2 3").has_value());
  CHECK_FALSE(parseTaskStat(line.substr(0, line.rfind(" 7 0 0 0"))).has_value());
}

TEST_CASE("ThreadSpread: spreadTargets leaves out the thread's CPU and, while others remain, the busy threads' CPUs") {
  auto set = [](std::initializer_list<int> cpus) {
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int c : cpus) CPU_SET(c, &s);
    return s;
  };
  auto list = [](const cpu_set_t& s) {
    std::vector<int> v;
    for (int c = 0; c < 16; ++c)
      if (CPU_ISSET(c, &s)) v.push_back(c);
    return v;
  };
  const auto four = set({0, 1, 2, 3});
  CHECK(list(spreadTargets(four, 1, set({}))) == std::vector<int>{0, 2, 3});
  CHECK(list(spreadTargets(four, 1, set({1, 2}))) == std::vector<int>{0, 3});  // not onto another busy thread
  CHECK(list(spreadTargets(four, 1, set({0, 2, 3}))) == std::vector<int>{0, 2, 3});  // all busy: any other
  CHECK(list(spreadTargets(set({0, 1}), 0, set({1}))) == std::vector<int>{1});  // two CPUs: the other one
  CHECK(list(spreadTargets(set({5}), 5, set({}))).empty());  // one CPU: nowhere
  CHECK(list(spreadTargets(set({2, 7}), 3, set({}))) == std::vector<int>{2, 7});  // not on an allowed one
}

TEST_CASE("ThreadSpread: off with one thread or when disabled; busy() then moves nothing") {
  ThreadSpread one(1);
  CHECK_FALSE(one.enabled());
  one.attach(0);
  CHECK_FALSE(one.busy(0));
  ThreadSpread off(2, false);
  CHECK_FALSE(off.enabled());
  off.attach(0);
  CHECK_FALSE(off.busy(0));
  CHECK(off.moves() == 0);
}

TEST_CASE("ThreadSpread: a thread starting on the CPU where another busy thread waits moves to another CPU") {
  const auto all = allowedCpus();
  if (all.size() < 2) {
    MESSAGE("one CPU allowed: nowhere to move, nothing to test");
    return;
  }
  const int cpu = all[0];
  ThreadSpread spread(2);
  REQUIRE(spread.enabled());
  spread.attach(1);  // this thread is thread 1

  SUBCASE("the other thread spins on this CPU (runnable there whenever this one runs): this one moves") {
    Neighbour busy(spread, 0, cpu, true);
    bool moved = false;
    for (int attempt = 0; attempt < 20 && !moved; ++attempt) {
      placeOn(cpu, all);
      if (sched_getcpu() != cpu) continue;  // the kernel moved it already
      moved = spread.busy(1);
    }
    CHECK(moved);
    CHECK(sched_getcpu() != cpu);
    CHECK(spread.moves() >= 1);
    // Its affinity is given back: every allowed CPU.
    CHECK(allowedCpus() == all);
    spread.idle(1);
  }
  SUBCASE("the other thread is busy but sleeping (not waiting for a CPU): nobody moves") {
    Neighbour sleeper(spread, 0, cpu, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it block
    placeOn(cpu, all);
    CHECK_FALSE(spread.busy(1));
    CHECK(spread.moves() == 0);
    spread.idle(1);
  }
  SUBCASE("the other thread spins there but is not processing (idle): nobody moves") {
    Neighbour spinner(spread, 0, cpu, true);
    spread.idle(0);  // as if it had finished its request
    placeOn(cpu, all);
    CHECK_FALSE(spread.busy(1));
    CHECK(spread.moves() == 0);
    spread.idle(1);
  }
  setCpus(all);
}
