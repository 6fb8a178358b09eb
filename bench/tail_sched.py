#!/usr/bin/env python3
"""Who held the CPUs while Cardinal's I/O threads waited for one (bench/tail_sched.sh).

Reads `perf script -F comm,tid,cpu,time,event,trace` output of sched_switch, sched_waking and
raw_syscalls:sys_exit (blocking syscalls only) recorded on every CPU with CLOCK_MONOTONIC
timestamps, Cardinal's log (--log.slow-requests=1ms), the load generator's JSON and the offset
from CLOCK_MONOTONIC to wall-clock time; prints, over the recording:

  - CPU time by task group (Cardinal, sink, load generator, idle, other processes by name);
  - wake-to-run latency of threads woken onto an idle CPU (is a halted vCPU slow to wake?);
  - the waits of Cardinal's I/O threads for a CPU (ready, not running), by how they began
    (woken, yielded right after waking another task, preempted) and, for long ones, what the CPU
    they then ran on was running meanwhile;
  - for the slowest 1% of the recorded requests (server-side time plus the request's wait in its
    socket, from the log): what the CPUs ran during them and while an I/O thread of ours waited;
  - the server-side p99 with, and without, the CPU time that processes outside the benchmark
    (neither Cardinal, the sink, the load generator nor perf) took in each request's window.

A switch that the kernel did not record (on some guests the switch out of the idle task is
missing on one CPU) is inferred from the next event whose header names another task on that CPU:
the blocking syscalls' exits make that event come right when a woken thread runs.
"""
import bisect
import collections
import datetime
import json
import re
import statistics
import sys

trace_path, log_path, load_path, offset_path, tids_path, record_s = sys.argv[1:7]
record_s = float(record_s)
tids = {int(x) for x in open(tids_path).read().split()}
offset = float(open(offset_path).read())  # wall - monotonic, seconds

LINE = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+\w+:(\w+):\s+(.*)$")
BENCH = ("cardinal", "sink", "loadgen", "idle", "perf")

cur = {}  # cpu -> (comm, pid) running
since = {}  # cpu -> when it began
occ = collections.defaultdict(list)  # cpu -> [(start, end, comm, pid)]
running = set()
waiting = {}  # pid -> (since, how)
waits = collections.defaultdict(list)  # pid -> [(start, end, how, cpu it then ran on)]
last_woke_other = {}  # pid -> when it last woke another task
comm_of = {}
inferred = 0


def switch_in(cpu, t, comm, pid):
    if cpu in cur:
        occ[cpu].append((since[cpu], t, cur[cpu][0], cur[cpu][1]))
        running.discard(cur[cpu][1])
    cur[cpu] = (comm, pid)
    since[cpu] = t
    running.add(pid)
    if pid in waiting:
        start, how = waiting.pop(pid)
        waits[pid].append((start, t, how, cpu))


for line in open(trace_path):
    m = LINE.match(line)
    if not m:
        continue
    comm, tid, cpu, t, ev, rest = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5), m.group(6)
    comm_of.setdefault(tid, comm)
    if cpu in cur and cur[cpu][1] != tid:  # the task named in the header runs here now
        inferred += 1
        switch_in(cpu, t, comm, tid)
    if ev == "sched_switch":
        prev_pid = int(re.search(r"prev_pid=(\d+)", rest).group(1))
        next_pid = int(re.search(r"next_pid=(\d+)", rest).group(1))
        next_comm = re.search(r"next_comm=(.*?) next_pid=", rest).group(1)
        comm_of[next_pid] = next_comm
        if re.search(r"prev_state=(\S+)", rest).group(1).startswith("R"):
            if prev_pid not in waiting:
                yielded = last_woke_other.get(prev_pid, -1.0) > t - 50e-6
                waiting[prev_pid] = (t, "yielded" if yielded else "preempted")
        else:
            waiting.pop(prev_pid, None)
        switch_in(cpu, t, next_comm, next_pid)
    elif ev == "sched_waking":
        pid = int(re.search(r" pid=(\d+)", rest).group(1))
        last_woke_other[tid] = t
        if pid not in running and pid not in waiting:
            waiting[pid] = (t, "woken")

for cpu in cur:  # close the last runs
    occ[cpu].append((since[cpu], max(o[1] for c in occ for o in occ[c]), cur[cpu][0], cur[cpu][1]))
cpus = sorted(occ)
starts = {c: [o[0] for o in occ[c]] for c in cpus}
t0 = min(o[0] for c in cpus for o in occ[c])
t1 = max(o[1] for c in cpus for o in occ[c])
span = t1 - t0


def group(comm, pid):
    if pid == 0:
        return "idle"
    if pid in tids:
        return "cardinal"
    if comm.startswith("cardinal_sink"):
        return "sink"
    if comm.startswith("cardinal_loadg"):
        return "loadgen"
    if comm.startswith("perf"):
        return "perf"
    name = re.sub(r"[/:.-]?\d+$", "", comm)  # kworker/1:2 -> kworker/1, kdamond.0 -> kdamond
    return name


def overlap(cpu, a, b):
    """CPU time per task group on `cpu` within [a, b)."""
    res = collections.Counter()
    runs = occ[cpu]
    i = max(0, bisect.bisect_right(starts[cpu], a) - 1)
    while i < len(runs) and runs[i][0] < b:
        s, e, comm, pid = runs[i]
        o = min(e, b) - max(s, a)
        if o > 0:
            res[group(comm, pid)] += o
        i += 1
    return res


def shares(counter, top=8):
    total = sum(counter.values()) or 1.0
    return ", ".join(f"{k} {v / total * 100:.1f}%" for k, v in counter.most_common(top))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))] if xs else float("nan")


load = json.load(open(load_path))
lat = load["latency_ms"]
print(f"loadgen: {load['requests']} requests at {load['rate']} /s, p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms "
      f"(the recording slows the proxy: compare with bench/latency_steps.sh)")
by_group = collections.Counter()
for c in cpus:
    for s, e, comm, pid in occ[c]:
        by_group[group(comm, pid)] += e - s
print(f"recorded {span:.2f} s on {len(cpus)} CPUs ({inferred} switches inferred from event headers); "
      f"CPU time by task, in CPUs: " + ", ".join(f"{k} {v / span:.3f}" for k, v in by_group.most_common(10)))

# Is a halted vCPU slow to wake? Wake-ups onto a CPU that stayed idle until the thread ran.
for name, members in (("cardinal", lambda p: p in tids),
                      ("sink", lambda p: comm_of.get(p, "").startswith("cardinal_sink")),
                      ("loadgen", lambda p: comm_of.get(p, "").startswith("cardinal_loadg"))):
    us = []
    for p, ws in waits.items():
        if not members(p):
            continue
        for a, b, how, cpu in ws:
            if how == "woken" and b > a and overlap(cpu, a, b).get("idle", 0) >= 0.9 * (b - a):
                us.append((b - a) * 1e6)
    if us:
        print(f"wake-to-run onto an idle CPU, {name}: {len(us)} wake-ups, p50 {pct(us, .5):.0f} us, p90 {pct(us, .9):.0f}, "
              f"p99 {pct(us, .99):.0f}, max {max(us):.0f}")

io = [p for p in tids if sum(e - s for c in cpus for s, e, comm, pid in occ[c] if pid == p) > 0.05 * span]
all_waits = [(a, b, how, cpu) for p in io for a, b, how, cpu in waits[p]]
by_how = collections.defaultdict(list)
for a, b, how, cpu in all_waits:
    by_how[how].append(b - a)
print(f"Cardinal's I/O threads ({len(io)}) waited for a CPU {len(all_waits)} times, {sum(b - a for a, b, _, _ in all_waits) * 1e3:.0f} ms "
      f"in all: " + ", ".join(f"{how} {len(v)} times, {sum(v) * 1e3:.0f} ms (p99 {pct(v, .99) * 1e3:.2f} ms)"
                              for how, v in sorted(by_how.items())))
for threshold in (0.5e-3, 1e-3):
    meanwhile = collections.Counter()
    n = 0
    for a, b, how, cpu in all_waits:
        if b - a >= threshold:
            n += 1
            meanwhile.update(overlap(cpu, a, b))
    print(f"  {n} waits of {threshold * 1e3:.1f} ms or more; the CPU each then ran on was running meanwhile: {shares(meanwhile)}")

# The slowest 1% of the requests answered inside the recording.
reqs = []
for line in open(log_path):
    if 'msg="slow write request"' not in line:
        continue
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    wall = datetime.datetime.strptime(kv["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    end = wall + 0.0005 - offset  # the log's ts has millisecond resolution
    length = (float(kv["total_ms"]) + float(kv.get("request_wait_ms", "0"))) / 1e3
    if end - length >= t0 and end <= t1:
        reqs.append((length, end))
answered = int(load["requests"] * record_s / float(load.get("duration_s", 10)))
k = max(1, answered // 100)
reqs.sort(reverse=True)
top = reqs[:k]
during = collections.Counter()
wait_meanwhile = collections.Counter()
for length, end in top:
    a = end - length
    for c in cpus:
        during.update(overlap(c, a, end))
    for wa, wb, how, cpu in all_waits:
        lo, hi = max(wa, a), min(wb, end)
        if hi > lo:
            wait_meanwhile.update(overlap(cpu, lo, hi))
print(f"slowest 1% of the recorded requests ({len(top)} of about {answered}; server-side time plus the request's wait in "
      f"its socket, from the log): median {statistics.median(r[0] for r in top) * 1e3:.2f} ms")
print(f"  the CPUs during them: {shares(during)}")
overall = collections.Counter({g: v for g, v in by_group.items()})
print(f"  the same over the whole recording: {shares(overall)}")
print(f"  an I/O thread of ours ready and waiting during them: {sum(wait_meanwhile.values()) / len(top) * 1e3:.2f} ms per "
      f"request (summed over threads); the CPU it then ran on was running meanwhile: {shares(wait_meanwhile)}")


def foreign(g):
    return g not in BENCH


plain, without = [], []
for length, end in reqs:
    a = end - length
    f = sum(v for c in cpus for g, v in overlap(c, a, end).items() if foreign(g))
    plain.append(length * 1e3)
    without.append(max(0.0, length - f) * 1e3)
fast = max(0, answered - len(reqs))  # under 1 ms: not in the log
p99 = lambda xs: pct(xs + [0.0] * fast, 0.99)
foreign_runs = collections.Counter(group(comm, pid) for c in cpus for s, e, comm, pid in occ[c]
                                   if foreign(group(comm, pid)) and e - s >= 1e-3)
print(f"processes outside the benchmark: {sum(v for g, v in by_group.items() if foreign(g)) * 1e3:.0f} ms of CPU in "
      f"{span:.1f} s; runs of 1 ms or more: " + (", ".join(f"{g} {n}" for g, n in foreign_runs.most_common()) or "none"))
print(f"server-side p99 (with the request's wait) {p99(plain):.2f} ms; less the CPU time processes outside the "
      f"benchmark took in each request's window: {p99(without):.2f} ms")


# Our two I/O threads on one CPU while the other CPU idles (the scheduler placed a woken thread
# behind the running one): the time a ready I/O thread waited while the CPU it then ran on ran our
# other thread and another CPU was idle.
def pieces(cpu, a, b, want):
    out = []
    runs = occ[cpu]
    i = max(0, bisect.bisect_right(starts[cpu], a) - 1)
    while i < len(runs) and runs[i][0] < b:
        s, e, comm, pid = runs[i]
        lo, hi = max(s, a), min(e, b)
        if hi > lo and group(comm, pid) == want:
            out.append((lo, hi))
        i += 1
    return out


def intersection(xs, ys):
    total, i, j = 0.0, 0, 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        total += max(0.0, hi - lo)
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return total


def stacked(a, b):
    total = 0.0
    for wa, wb, how, cpu in all_waits:
        lo, hi = max(wa, a), min(wb, b)
        if hi <= lo:
            continue
        ours = pieces(cpu, lo, hi, "cardinal")
        total += sum(intersection(ours, pieces(c, lo, hi, "idle")) for c in cpus if c != cpu)
    return total


top_stacked = [stacked(end - length, end) * 1e3 for length, end in top]
less_stacked = [max(0.0, length - stacked(end - length, end)) * 1e3 for length, end in reqs]
print(f"stacked (a ready I/O thread behind our other one while another CPU idled): {stacked(t0, t1) * 1e3:.0f} ms in "
      f"{span:.1f} s; in the slowest 1% more than 0.5 ms in {sum(x > 0.5 for x in top_stacked)} of {len(top)} "
      f"(mean {statistics.mean(top_stacked):.2f} ms); server-side p99 without it: {p99(less_stacked):.2f} ms")
