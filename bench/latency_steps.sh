#!/usr/bin/env bash
# Where a write request's latency goes inside Cardinal: one fresh Cardinal (default pipeline) in
# front of cardinal_sink, a warm-up pass over the payload pool, then RATE requests/s for DURATION
# (the seed workload of compare.sh); prints the load generator's p50/p99 and, from
# cardinal_write_step_duration_seconds (the /metrics difference over the measured run), each
# step's count, mean and p50/p99 interpolated within the histogram's buckets; then the slowest 1%
# of the measured requests one by one, from Cardinal's own log (--log.slow-requests=1ms, which
# logs every request that took 1 ms or more): the server-side p99, the medians of their total,
# steps and I/O-thread CPU time beside those of all logged requests, how many of them had their
# thread put aside by the kernel (involuntary context switches) and how long it waited on the run
# queue (the server-side p99 is also given without that wait) and ran other work while the request
# waited for its upstream answer, how long that answer lay in the socket before the thread read it,
# how long the request itself lay in its socket before its thread came to it (before the handling
# the log times: the p99 is also given with it added), and how many bursts they came
# in (requests that ended within 10 ms of each other: one moment slowed them all), and how their
# stages ran (whole on one thread, or split between the two) against all logged requests; and the
# proxy's CPU time per request over the run (all threads, /proc).
#   bench/latency_steps.sh [BUILD_DIR]     Env: RATE (730, about half of compare.sh's maximum
#   here), DURATION (10s), CONCURRENCY (4), SERIES (2000), POOL (64), FRESH_RATIO (0.2), SEED (1),
#   FLAGS (extra Cardinal flags), CARDINAL (the binary, default BUILD_DIR/cardinal: A/B of two builds)
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
RATE=${RATE:-730}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-4}
SERIES=${SERIES:-2000}
POOL=${POOL:-64}
FRESH_RATIO=${FRESH_RATIO:-0.2}
SEED=${SEED:-1}
source "$(dirname "$0")/lib.sh"
bench_init latency-steps
cd "$work"
start_sink
start_logged_cardinal
seed_load --requests="$POOL" > warmup.json 2> warmup.err
curl -sf "http://127.0.0.1:$PORT/metrics" > before.txt
cpu0=$(cpu_ticks "$C")
start=$(date +%s.%N)
seed_load --duration="$DURATION" > load.json 2> load.err
cpu1=$(cpu_ticks "$C")
curl -sf "http://127.0.0.1:$PORT/metrics" > after.txt
python3 - before.txt after.txt load.json warmup.json cardinal.log "$start" "$cpu0 $cpu1 $(getconf CLK_TCK)" <<'PY'
import collections, json, re, sys
def parse(path):
    buckets, sums, counts = collections.defaultdict(dict), {}, {}
    for line in open(path):
        m = re.match(r'cardinal_write_step_duration_seconds_(bucket|sum|count)\{(.*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        value = float(m.group(3))
        if m.group(1) == "bucket":
            buckets[labels["step"]][float(labels["le"])] = value
        elif m.group(1) == "sum":
            sums[labels["step"]] = value
        else:
            counts[labels["step"]] = value
    return buckets, sums, counts
b0, s0, c0 = parse(sys.argv[1])
b1, s1, c1 = parse(sys.argv[2])
l, w = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
print(f"loadgen: {l['requests']} requests at {l['rate']} /s, {l['ok']} 2xx, p50 {l['latency_ms']['p50']:.2f} ms, "
      f"p99 {l['latency_ms']['p99']:.2f} ms (warm-up: {w['requests']} requests, p99 {w['latency_ms']['p99']:.2f} ms)")
print(f"{'step':<11} {'requests':>8} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7}")
for step in ("decompress", "decode", "process", "encode", "upstream"):
    n = c1.get(step, 0) - c0.get(step, 0)
    if n <= 0:
        continue
    cum = [(le, b1[step][le] - b0[step].get(le, 0)) for le in sorted(b1[step])]
    def quantile(q):
        target, prev_le, prev_c = q * n, 0.0, 0.0
        for le, c in cum:
            if c >= target:
                return prev_le if le == float("inf") else prev_le + (le - prev_le) * (target - prev_c) / max(c - prev_c, 1e-9)
            prev_le, prev_c = le, c
        return prev_le
    mean = (s1[step] - s0.get(step, 0)) / n
    print(f"{step:<11} {int(n):>8} {mean * 1e3:>8.3f} {quantile(0.5) * 1e3:>7.3f} {quantile(0.99) * 1e3:>7.3f}")

import datetime, statistics
c0_, c1_, tck = map(int, sys.argv[7].split())
print(f"proxy CPU per request over the run (all threads): {1e3 * (c1_ - c0_) / tck / max(1, l['requests']):.3f} ms")
start = float(sys.argv[6])
rows = []
for line in open(sys.argv[5]):
    if 'msg="slow write request"' not in line:
        continue
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    end = datetime.datetime.strptime(kv["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    r = {k: float(v) for k, v in kv.items() if k.endswith("_ms") or k == "involuntary_switches"}
    r["end"] = end + 0.0005  # the log's ts has millisecond resolution
    r["split"] = kv.get("split", "").strip('"')
    if r["end"] - r["total_ms"] / 1e3 >= start - 0.001:  # measured requests only (not the warm-up)
        rows.append(r)
k = max(1, l["requests"] // 100)
if len(rows) < k:
    print(f"only {len(rows)} requests took 1 ms or more: the slowest 1% ({k}) are not all in the log")
    sys.exit(0)
rows.sort(key=lambda r: -r["total_ms"])
top = rows[:k]
print(f"from the proxy's log (requests of 1 ms or more: {len(rows)} of {l['requests']}): server-side p99 "
      f"{top[-1]['total_ms']:.2f} ms (from the start of handling to the answer)")
print(f"{'medians':<24} {'total':>6} {'cpu':>6} {'decomp':>6} {'decode':>6} {'process':>7} {'encode':>6} {'upstrm':>6} "
      f"{'up-cpu':>6} {'rqwait':>6} {'ans-wt':>6} {'req-wt':>6}  switched")
for name, rs in ((f"slowest 1% ({k})", top), (f"all >= 1 ms ({len(rows)})", rows)):
    # nan: a field this Cardinal does not log (an older build, or no schedstat)
    m = lambda key: statistics.median(r[key] for r in rs) if all(key in r for r in rs) else float("nan")
    share = sum(r["involuntary_switches"] > 0 for r in rs) / len(rs)
    print(f"{name:<24} {m('total_ms'):>6.2f} {m('thread_cpu_ms'):>6.2f} {m('decompress_ms'):>6.2f} {m('decode_ms'):>6.2f} "
          f"{m('process_ms'):>7.2f} {m('encode_ms'):>6.2f} {m('upstream_ms'):>6.2f} {m('upstream_thread_cpu_ms'):>6.2f} "
          f"{m('runqueue_wait_total_ms'):>6.2f} {m('answer_wait_ms'):>6.2f} {m('request_wait_ms'):>6.2f}  {share:>7.0%}")
# The same p99 with one wait taken out of each request: requests under 1 ms are not logged, but
# stay under 1 ms without it.
def p99_without(key, what):
    if not all(key in r for r in rows):
        return
    less = sorted((r["total_ms"] - r[key] for r in rows), reverse=True)
    p99_less = less[k - 1] if len(less) >= k else 0.0
    print(f"server-side p99 without {what}: " + (f"{p99_less:.2f} ms" if p99_less >= 1.0 else "under 1 ms"))
# The run-queue wait: the time its I/O thread was ready to run while the kernel ran other tasks
# on both CPUs.
p99_without("runqueue_wait_total_ms", "the run-queue wait of the request's I/O thread")
# The answer's wait: each upstream answer read the moment it arrived (the time it lay in the
# socket while the thread was busy or waited for a CPU).
p99_without("answer_wait_ms", "the answers' wait in the socket")
# The request's wait in its socket before its thread came to it is not in total_ms: added, the
# p99 of the logged requests (a lower bound: a request under 1 ms of handling is not logged,
# whatever its wait).
if all("request_wait_ms" in r for r in rows):
    more = sorted((r["total_ms"] + r["request_wait_ms"] for r in rows), reverse=True)
    print(f"server-side p99 with each request's wait in its socket added: {more[k - 1]:.2f} ms "
          f"(logged requests only: a lower bound)")
ends = sorted(r["end"] for r in top)
bursts = []
for t in ends:
    if bursts and t - bursts[-1][-1] <= 0.010:
        bursts[-1].append(t)
    else:
        bursts.append([t])
sizes = sorted((len(b) for b in bursts), reverse=True)
print(f"the slowest 1% came in {len(bursts)} bursts (ends within 10 ms of each other); largest: {sizes[:8]}")
# How each request's stages ran (the log's split=): no: whole on its own thread (the other one
# was processing a request when this one was decoded, or the request is below
# --web.split-request-bytes); shared: in parts, both threads; alone: in parts, the helper came late.
if all(r["split"] and "thread_cpu_ms" in r for r in rows):
    parts = []
    for o in sorted({r["split"] for r in rows}):
        mine = [r for r in rows if r["split"] == o]
        parts.append(f"{o}: {sum(r['split'] == o for r in top)} of the slowest 1%, {len(mine)} of all >= 1 ms, "
                     f"cpu {statistics.median(r['thread_cpu_ms'] for r in mine):.2f}")
    print("by how the stages ran (split=; cpu: median ms): " + "; ".join(parts))
print("(cpu: the request thread's CPU time up to the upstream exchange; up-cpu: its CPU time during the upstream "
      "step, on other work and the answer's callback; rqwait: the time that thread was ready "
      "but waited for a CPU, up to the answer; ans-wt: how long the upstream's answer lay in the socket before "
      "that thread read it; req-wt: how long the request lay in its socket before its thread came to it (not in "
      "total); switched: share with an involuntary context switch of that thread "
      "up to the upstream exchange)")
PY
