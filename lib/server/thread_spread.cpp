#include "server/thread_spread.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace cardinal::server {

std::optional<TaskCpu> parseTaskStat(std::string_view stat) {
  // "<tid> (<comm>) <state> <ppid> ...": the command ends at the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || close + 3 >= stat.size() || stat[close + 1] != ' ') return std::nullopt;
  TaskCpu t;
  t.state = stat[close + 2];
  // Fields from the state (3) on, separated by single spaces; the processor is field 39.
  size_t at = close + 2;
  for (int field = 3; field < 39; ++field) {
    at = stat.find(' ', at);
    if (at == std::string_view::npos) return std::nullopt;
    ++at;
  }
  int cpu = -1;
  const auto [end, ec] = std::from_chars(stat.data() + at, stat.data() + stat.size(), cpu);
  if (ec != std::errc() || end == stat.data() + at || cpu < 0) return std::nullopt;
  t.processor = cpu;
  return t;
}

cpu_set_t spreadTargets(const cpu_set_t& allowed, int cpu, const cpu_set_t& avoid) {
  cpu_set_t others = allowed;
  if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_CLR(cpu, &others);
  cpu_set_t free_ones;
  CPU_XOR(&free_ones, &others, &avoid);
  CPU_AND(&free_ones, &free_ones, &others);  // others, less avoid
  return CPU_COUNT(&free_ones) > 0 ? free_ones : others;
}

namespace {

// The state and CPU of thread `tid` of this process, read from /proc.
std::optional<TaskCpu> taskCpu(int tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return parseTaskStat(std::string_view(buf, static_cast<size_t>(n)));
}

// Moves the calling thread off `cpu` (spreadTargets: its affinity narrowed,
// the kernel migrates it before the call returns), then gives its affinity
// back. False when there is no other CPU or the kernel refused.
bool moveOff(int cpu, const cpu_set_t& avoid) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  const cpu_set_t target = spreadTargets(allowed, cpu, avoid);
  if (CPU_COUNT(&target) == 0) return false;
  if (sched_setaffinity(0, sizeof target, &target) != 0) return false;
  sched_setaffinity(0, sizeof allowed, &allowed);
  return true;
}

}  // namespace

ThreadSpread::ThreadSpread(size_t threads, bool enabled)
    : size_(threads), enabled_(enabled && threads >= 2), slots_(std::make_unique<Slot[]>(threads)) {}

void ThreadSpread::attach(size_t i) { slots_[i].tid.store(static_cast<int>(::gettid()), std::memory_order_relaxed); }

bool ThreadSpread::busy(size_t i) {
  if (!enabled_) return false;
  const int cpu = sched_getcpu();
  slots_[i].cpu.store(cpu, std::memory_order_relaxed);
  if (cpu < 0) return false;
  for (size_t j = 0; j < size_; ++j) {
    if (j == i || slots_[j].cpu.load(std::memory_order_relaxed) != cpu) continue;
    const int tid = slots_[j].tid.load(std::memory_order_relaxed);
    if (tid == 0) continue;
    const auto other = taskCpu(tid);
    // Runnable on this CPU while this thread runs here: it waits for it.
    if (!other || other->state != 'R' || other->processor != cpu) continue;
    cpu_set_t avoid;  // where the other processing threads are (on many CPUs: not onto one of them)
    CPU_ZERO(&avoid);
    for (size_t k = 0; k < size_; ++k) {
      const int c = slots_[k].cpu.load(std::memory_order_relaxed);
      if (k != i && c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &avoid);
    }
    if (!moveOff(cpu, avoid)) return false;
    moves_.fetch_add(1, std::memory_order_relaxed);
    slots_[i].cpu.store(sched_getcpu(), std::memory_order_relaxed);
    return true;
  }
  return false;
}

void ThreadSpread::idle(size_t i) {
  if (enabled_) slots_[i].cpu.store(-1, std::memory_order_relaxed);
}

}  // namespace cardinal::server
