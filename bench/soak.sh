#!/usr/bin/env bash
# Soak (issue 7, part 3; not run in CI): Cardinal with its full default pipeline (no
# --rules.file: built-in rules, sanitize, normalize, cardinality engine, merge) in front of
# cardinal_sink, fed by cardinal_loadgen in live mode (every request encoded at send time, fresh
# ids never repeat: churning ids) at a fixed request rate for DURATION. Every INTERVAL seconds
# it samples Cardinal's RSS (/proc/<pid>/status VmRSS) and, from its /metrics, the write
# requests in flight, the merged-series queue, open connections, merge inputs and the
# cardinality engine's memory, into a CSV. At the end: first/last/max and the least-squares
# slope per minute of each column, the load generator's and the sink's totals.
#
#   bench/soak.sh [BUILD_DIR]              (default build dir: build)
#   Env: DURATION (600 s), RATE (requests/s over all connections, 10), SERIES (2000 per
#        request), FRESH_RATIO (0.2: share of fresh ids per request), CONCURRENCY (4),
#        INTERVAL (10 s), AGGREGATION (15s, --aggregation.interval), SNAPSHOT (1m),
#        OUT (CSV path; default soak-<date>.csv in the temp dir, printed), KEEP_WORK=1,
#        CARDINAL_FLAGS (more flags for Cardinal, e.g. "--merge.max-inputs=300000")
# Half of max load: measure the max with bench/compare.sh (median requests_per_s of the
# cardinal rows) and pass RATE at half of it.
set -euo pipefail
B=${1:-build}
DURATION=${DURATION:-600}
RATE=${RATE:-10}
SERIES=${SERIES:-2000}
FRESH_RATIO=${FRESH_RATIO:-0.2}
CONCURRENCY=${CONCURRENCY:-4}
INTERVAL=${INTERVAL:-10}
AGGREGATION=${AGGREGATION:-15s}
SNAPSHOT=${SNAPSHOT:-1m}

die() { echo "soak.sh: $*" >&2; exit 2; }
for bin in cardinal cardinal_loadgen cardinal_sink; do
  [ -x "$B/$bin" ] || die "missing $B/$bin (build it: cmake --build $B --target $bin)"
done
for tool in curl python3 timeout awk; do command -v $tool >/dev/null || die "missing $tool"; done
[[ "$DURATION" =~ ^[1-9][0-9]*$ && "$INTERVAL" =~ ^[1-9][0-9]*$ ]] || die "DURATION and INTERVAL are whole seconds"

source "$(dirname "$0")/lib.sh"
bench_init soak
OUT=${OUT:-$work/soak-$(date -u +%Y%m%dT%H%M%SZ).csv}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
metric_sum() {  # sum of a metric over its label sets, from a /metrics page (empty text: 0)
  awk -v m="$2" '{n=$1; sub(/\{.*/, "", n)} n == m {s += $NF} END {printf "%.0f", s}' <<<"$1"
}

"$B/cardinal_sink" --listen=127.0.0.1:0 --port-file="$work/sink.port" --threads=1 --decode=scan \
  > "$work/sink.json" 2> "$work/sink.err" &
SINK=$!; pids+=("$SINK")
for _ in $(seq 100); do [ -s "$work/sink.port" ] && break; sleep 0.05; done
[ -s "$work/sink.port" ] || die "cardinal_sink did not start: $(cat "$work/sink.err")"
SINK_BASE="http://127.0.0.1:$(cat "$work/sink.port")"

port=$(free_port)
BASE="http://127.0.0.1:$port"
"$B/cardinal" --web.listen-address="127.0.0.1:$port" --upstream.url="$SINK_BASE/api/v1/write" \
  --storage.path="$work/data" --aggregation.interval="$AGGREGATION" --snapshot.interval="$SNAPSHOT" \
  --log.level=warn ${CARDINAL_FLAGS:-} > "$work/cardinal.log" 2>&1 &
CARDINAL=$!; pids+=("$CARDINAL")
for _ in $(seq 200); do curl -sf --max-time 1 "$BASE/-/ready" >/dev/null && break; sleep 0.05; done
curl -sf --max-time 1 "$BASE/-/ready" >/dev/null || { cat "$work/cardinal.log" >&2; die "cardinal did not become ready"; }

echo "soak: ${DURATION}s at $RATE req/s x $SERIES series (fresh ratio $FRESH_RATIO, live mode), sampling every ${INTERVAL}s" >&2
timeout --kill-after=10 $((DURATION + 120)) "$B/cardinal_loadgen" --url="$BASE/api/v1/write" --live \
  --duration="${DURATION}s" --rate="$RATE" --concurrency="$CONCURRENCY" --series-per-request="$SERIES" \
  --fresh-ratio="$FRESH_RATIO" --mix=seed > "$work/loadgen.json" 2> "$work/loadgen.err" &
LOADGEN=$!; pids+=("$LOADGEN")

echo "t_s,rss_kib,requests_in_flight,merged_queue_requests,connections,merge_outputs,merge_inputs,merge_tombstones,cardinality_memory_bytes,received_samples,forwarded_samples" > "$OUT"
start=$SECONDS
sample() {
  local m
  m=$(curl -sf --max-time 5 "$BASE/metrics" || true)
  echo "$((SECONDS - start)),$(rss_kib "$CARDINAL"),$(metric_sum "$m" cardinal_write_requests_in_flight),$(metric_sum "$m" cardinal_merged_queue_requests),$(metric_sum "$m" cardinal_http_connections),$(metric_sum "$m" cardinal_merge_outputs),$(metric_sum "$m" cardinal_merge_inputs),$(metric_sum "$m" cardinal_merge_tombstones),$(metric_sum "$m" cardinal_cardinality_memory_bytes),$(metric_sum "$m" cardinal_received_samples_total),$(metric_sum "$m" cardinal_forwarded_samples_total)" >> "$OUT"
}
sample
while kill -0 "$LOADGEN" 2>/dev/null; do
  next=$((start + ( (SECONDS - start) / INTERVAL + 1) * INTERVAL))
  while [ $SECONDS -lt $next ] && kill -0 "$LOADGEN" 2>/dev/null; do sleep 0.5; done
  kill -0 "$LOADGEN" 2>/dev/null && sample
done
wait "$LOADGEN" || die "cardinal_loadgen failed: $(tail -5 "$work/loadgen.err")"
sample
kill -0 "$CARDINAL" 2>/dev/null || { tail -20 "$work/cardinal.log" >&2; die "cardinal died during the soak"; }
sink_stats=$(curl -sf --max-time 5 "$SINK_BASE/stats" || echo '{}')
warnings=$(grep -c . "$work/cardinal.log" || true)

python3 - "$OUT" "$work/loadgen.json" "$sink_stats" "$warnings" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
l = json.load(open(sys.argv[2]))
sink = json.loads(sys.argv[3])
print(f"CSV: {sys.argv[1]} ({len(rows)} samples)")
print(f"{'column':<26}{'first':>14}{'last':>14}{'max':>14}{'slope/min':>14}")
t = [float(r["t_s"]) for r in rows]
for col in list(rows[0].keys())[1:]:
    v = [float(r[col] or 0) for r in rows]
    n = len(v); mt = sum(t) / n; mv = sum(v) / n
    den = sum((x - mt) ** 2 for x in t)
    slope = (sum((x - mt) * (y - mv) for x, y in zip(t, v)) / den * 60) if den else 0.0
    print(f"{col:<26}{v[0]:>14.0f}{v[-1]:>14.0f}{max(v):>14.0f}{slope:>14.1f}")
# RSS flatness over the second half (after warm-up: caches and the cardinality window fill first).
half = [(x, float(r["rss_kib"])) for x, r in zip(t, rows) if x >= t[-1] / 2]
if len(half) >= 2:
    mt = sum(x for x, _ in half) / len(half); mv = sum(y for _, y in half) / len(half)
    den = sum((x - mt) ** 2 for x, _ in half)
    s = sum((x - mt) * (y - mv) for x, y in half) / den * 60 if den else 0.0
    print(f"rss_kib slope over the second half: {s:.1f} KiB/min")
print(f"loadgen: {l['requests']} requests, {l['ok']} ok, errors {l['errors']}, {l['samples_acked']} samples acked, "
      f"{l['requests_per_s']:.2f} req/s, p50 {l['latency_ms']['p50']} ms, p99 {l['latency_ms']['p99']} ms")
print(f"sink: {sink.get('requests', 0)} requests, {sink.get('samples', 0)} samples; cardinal log lines (warn+): {sys.argv[4]}")
EOF
# The default CSV lives in the temp dir: keep a copy in the current directory.
case "$OUT" in "$work"/*) [ "${KEEP_WORK:-0}" = 1 ] || { cp "$OUT" "./$(basename "$OUT")"; echo "CSV copied to ./$(basename "$OUT")" >&2; } ;; esac
