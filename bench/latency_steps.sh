#!/usr/bin/env bash
# Where a write request's latency goes inside Cardinal: one fresh Cardinal (default pipeline) in
# front of cardinal_sink, a warm-up pass over the payload pool, then RATE requests/s for DURATION
# (the seed workload of compare.sh); prints the load generator's p50/p99 and, from
# cardinal_write_step_duration_seconds (the /metrics difference over the measured run), each
# step's count, mean and p50/p99 interpolated within the histogram's buckets.
#   bench/latency_steps.sh [BUILD_DIR]     Env: RATE (480, about half of compare.sh's maximum
#   here), DURATION (10s), CONCURRENCY (4), SERIES (2000), POOL (64), FRESH_RATIO (0.2), SEED (1),
#   FLAGS (extra Cardinal flags), CARDINAL (the binary, default BUILD_DIR/cardinal: A/B of two builds)
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
RATE=${RATE:-480}
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
PORT=$(free_port)
# shellcheck disable=SC2086
"${CARDINAL:-$B/cardinal}" --web.listen-address="127.0.0.1:$PORT" --upstream.url="http://127.0.0.1:$SP/api/v1/write" \
  --storage.path=st --log.level=warn ${FLAGS:-} > cardinal.log 2>&1 &
C=$!; pids+=("$C")
wait_ready "http://127.0.0.1:$PORT/-/ready" "$C" cardinal cardinal.log
load() {
  "$B/cardinal_loadgen" --url="http://127.0.0.1:$PORT/api/v1/write" --mix=seed --fresh-ratio="$FRESH_RATIO" \
    --seed="$SEED" --pool="$POOL" --series-per-request="$SERIES" --concurrency="$CONCURRENCY" --rate="$RATE" "$@"
}
load --requests="$POOL" > warmup.json 2> warmup.err
curl -sf "http://127.0.0.1:$PORT/metrics" > before.txt
load --duration="$DURATION" > load.json 2> load.err
curl -sf "http://127.0.0.1:$PORT/metrics" > after.txt
python3 - before.txt after.txt load.json warmup.json <<'PY'
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
PY
