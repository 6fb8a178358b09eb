#!/usr/bin/env bash
# Bounded memory under an explosion of distinct label values (issue 5): Cardinal with an empty
# rule file (the cardinality engine alone) between cardinal_loadgen and cardinal_sink; every
# series of every request carries ids never sent before (--fresh-ratio=1, --live), so the
# distinct label values grow by ~1,600 per request of 2,000 series. Prints the proxy's RSS and
# the engine's accounted memory as the values grow, and fails if
#   - the peak RSS passes RSS_CAP_MB, or the engine's accounted memory its budget (+1 MiB),
#   - forwarding stopped: every request must be acknowledged and the sink must have received
#     exactly what Cardinal forwarded.
#
#   bench/cardinality_memory.sh [DISTINCT_VALUES] [BUILD_DIR]
#   DISTINCT_VALUES=10000000 (the bench; about 20 minutes here) or 1000000 (CI, about 2 minutes)
#   Env: CARD_MEM (engine budget, default 64MiB), RSS_CAP_MB (default 512), CONCURRENCY (4),
#        PIPELINE=engine (default: empty rule file, the engine alone, merge and cache capped low) or
#        default (Cardinal as shipped: built-in rules, sanitize, normalize, engine, merge, every
#        cap at its default; bench/series_curve.sh runs this one).
set -euo pipefail
N=${1:-10000000}
B=${2:-build}
CARD_MEM=${CARD_MEM:-64MiB}
RSS_CAP_MB=${RSS_CAP_MB:-512}
CONCURRENCY=${CONCURRENCY:-4}
SERIES=2000
PER_REQUEST=1600   # series of the seed's families per request: each brings a fresh id value
REQUESTS=$(( (N + PER_REQUEST - 1) / PER_REQUEST ))

for bin in cardinal cardinal_loadgen cardinal_sink; do
  [ -x "$B/$bin" ] || { echo "missing $B/$bin (build it: cmake --build $B --target $bin)" >&2; exit 2; }
done
work=$(mktemp -d /tmp/cardinal-mem.XXXXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$B/cardinal_sink" --port-file="$work/sink.port" --threads=1 --decode=scan > "$work/sink.json" 2>"$work/sink.err" &
SINK=$!
for _ in $(seq 100); do [ -s "$work/sink.port" ] && break; sleep 0.05; done
printf 'rules: []\n' > "$work/rules.yaml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
case "${PIPELINE:-engine}" in
  engine) pipeline_flags=(--rules.file="$work/rules.yaml" --cardinality.max-memory="$CARD_MEM"
                          --merge.max-inputs=200000 --merge.max-outputs=100000 --cache.max-series=200000) ;;
  default) pipeline_flags=(--cardinality.max-memory="$CARD_MEM") ;;
  *) echo "PIPELINE is engine or default" >&2; exit 2 ;;
esac
"$B/cardinal" --web.listen-address="127.0.0.1:$port" \
  --upstream.url="http://127.0.0.1:$(cat "$work/sink.port")/api/v1/write" \
  --storage.path="$work/data" --log.level=warn "${pipeline_flags[@]}" \
  --aggregation.interval=5s > "$work/cardinal.log" 2>&1 &
CARD=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.05; done

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' /proc/$CARD/status; }
echo "distinct values -> ${N} over ${REQUESTS} requests of ${SERIES} series; engine budget ${CARD_MEM}; RSS cap ${RSS_CAP_MB} MB"
printf '%12s %10s %14s %10s %10s\n' "seconds" "rss_mb" "engine_bytes" "families" "evicted"
"$B/cardinal_loadgen" --url="http://127.0.0.1:$port/api/v1/write" --live --mix=seed --fresh-ratio=1 \
  --series-per-request=$SERIES --requests=$REQUESTS --concurrency="$CONCURRENCY" \
  > "$work/loadgen.json" 2>"$work/loadgen.err" &
LOAD=$!
start=$(date +%s)
while kill -0 $LOAD 2>/dev/null; do
  printf '%12s %10s %14s %10s %10s\n' $(( $(date +%s) - start )) "$(rss_mb)" \
    "$(metric cardinal_cardinality_memory_bytes)" "$(metric cardinal_cardinality_families)" \
    "$(metric cardinal_cardinality_evicted_families)"
  sleep 5
done
wait $LOAD || { echo "load generator failed:"; cat "$work/loadgen.err"; exit 1; }
sleep 6   # one maintenance pass and one merged emission after the last request
peak=$(awk '/^VmHWM/ {printf "%.1f", $2/1024}' /proc/$CARD/status)
engine=$(metric cardinal_cardinality_memory_bytes)
budget=$(python3 -c "
import re,sys; v='$CARD_MEM'; m=re.match(r'(\d+)(KiB|MiB|GiB)?$', v); u={'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}.get(m.group(2),1)
print(int(m.group(1))*u)")
forwarded=$(metric cardinal_forwarded_samples_total)
kill -TERM $CARD; wait $CARD || true
kill -TERM $SINK; wait $SINK || true
python3 - "$work/loadgen.json" "$work/sink.json" <<EOF
import json, sys
load = json.load(open(sys.argv[1]))
sink = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
peak, cap = float("$peak"), float("$RSS_CAP_MB")
engine, budget = float("$engine" or 0), float("$budget")
forwarded = float("$forwarded" or 0)
print(json.dumps({"distinct_values_sent": load["samples_acked"] * 0.8, "requests": load["requests"],
                  "acked": load["ok"], "samples_per_s": load["samples_per_s"],
                  "peak_rss_mb": peak, "rss_cap_mb": cap, "engine_bytes": engine, "engine_budget_bytes": budget,
                  "forwarded_samples": forwarded, "sink_samples": sink["samples"]}))
problems = []
if load["ok"] != load["requests"]: problems.append(f"{load['requests'] - load['ok']} requests not acknowledged")
if peak > cap: problems.append(f"peak RSS {peak} MB over the cap {cap} MB")
if engine > budget + (1 << 20): problems.append(f"engine memory {engine} over its budget {budget}")
if sink["samples"] < forwarded: problems.append("the sink received less than Cardinal forwarded")
if problems:
    print("FAIL: " + "; ".join(problems)); sys.exit(1)
print("OK")
EOF
