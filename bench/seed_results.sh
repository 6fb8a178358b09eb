#!/usr/bin/env bash
# The seed's "Results" (issue 6, part 5): a fixed run of the seed workload into a fresh
# Prometheus, (a) directly and (b) through Cardinal with its default settings, then the head
# series and memory each Prometheus reports. Each case gets its own Prometheus (own temp TSDB,
# free port, no scrape targets) and, for (b), a fresh Cardinal (own temp storage, no flags but
# the addresses). The workload, the same in both cases:
#   cardinal_loadgen --live --mix=seed --fresh-ratio=0.2 --seed=1 --series-per-request=2000
#                    --concurrency=4 --requests=300 --rate=10
# live mode: every sample at the current time, so Prometheus stores all of them. After the last
# request, both cases wait SETTLE seconds (Cardinal emits merged series every 15 s); Cardinal
# is then stopped (it emits what is pending), and the metrics are read from Prometheus'
# /metrics: prometheus_tsdb_head_series, process_resident_memory_bytes,
# go_memstats_heap_inuse_bytes (also after a forced GC, via /debug/pprof/heap?gc=1).
#
#   bench/seed_results.sh [BUILD_DIR]     (default build dir: build, as `make build` makes it)
#   Env: REQUESTS (300), RATE (10 requests/s), SERIES (2000), CONCURRENCY (4), FRESH_RATIO (0.2),
#        SEED (1), SETTLE (20 s), PROMETHEUS (binary), JSON_OUT (file for the JSON line),
#        KEEP_WORK=1 (keep the temp dir with every log)
# Output: a table on stdout, then one JSON line.
# Needs: Prometheus >= 2.33 (`deploy/apt-install.sh prometheus`: 2.42 on Debian 12), curl, python3.
set -euo pipefail
B=${1:-build}
REQUESTS=${REQUESTS:-300}
RATE=${RATE:-10}
SERIES=${SERIES:-2000}
CONCURRENCY=${CONCURRENCY:-4}
FRESH_RATIO=${FRESH_RATIO:-0.2}
SEED=${SEED:-1}
SETTLE=${SETTLE:-20}
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}

die() { echo "seed_results.sh: $*" >&2; exit 2; }
for bin in cardinal cardinal_loadgen; do
  [ -x "$B/$bin" ] || die "missing $B/$bin (build it: make build, or cmake --build $B --target $bin)"
done
[ -n "$PROMETHEUS" ] && [ -x "$PROMETHEUS" ] \
  || die "prometheus not found (install it: deploy/apt-install.sh prometheus, or set PROMETHEUS=)"
for tool in curl python3 timeout; do command -v $tool >/dev/null || die "missing $tool"; done
prom_version=$("$PROMETHEUS" --version 2>&1 | head -1 || true)
case "$prom_version" in *"version 2.42."*) ;; *) echo "warning: expected Prometheus 2.42, got: '$prom_version'" >&2 ;; esac
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ && "$SETTLE" =~ ^[0-9]+$ ]] || die "REQUESTS and SETTLE are integers"
# Bound the load: REQUESTS / RATE seconds, plus slack for a slow receiver.
LOAD_TIMEOUT=$(python3 -c "print(int($REQUESTS / $RATE * 3 + 60))")

source "$(dirname "$0")/lib.sh"
bench_init seed

printf 'global:\n  scrape_interval: 1m\nscrape_configs: []\n' > "$work/prometheus.yml"

# run_case NAME: fresh Prometheus [+ fresh Cardinal], the load, the settle, the readings.
run_case() {
  local name=$1 dir="$work/$1" pport
  mkdir -p "$dir"
  pport=$(free_port)
  local prom="http://127.0.0.1:$pport"
  "$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
    --log.level=warn > "$dir/prometheus.log" 2>&1 &
  local PROM=$!; pids+=("$PROM")
  wait_ready "$prom/-/ready" "$PROM" prometheus "$dir/prometheus.log"
  local url="$prom/api/v1/write" CARD="" card=""
  if [ "$name" = cardinal ]; then
    local cport; cport=$(free_port)
    card="http://127.0.0.1:$cport"
    "$B/cardinal" --web.listen-address="127.0.0.1:$cport" --upstream.url="$url" \
      --storage.path="$dir/cardinal-data" > "$dir/cardinal.log" 2>&1 &
    CARD=$!; pids+=("$CARD")
    wait_ready "$card/-/ready" "$CARD" cardinal "$dir/cardinal.log"
    url="$card/api/v1/write"
  fi
  local rc=0
  timeout --kill-after=5 "$LOAD_TIMEOUT" "$B/cardinal_loadgen" --url="$url" --live --mix=seed \
    --fresh-ratio="$FRESH_RATIO" --seed="$SEED" --series-per-request="$SERIES" \
    --concurrency="$CONCURRENCY" --requests="$REQUESTS" --rate="$RATE" \
    > "$dir/loadgen.json" 2> "$dir/loadgen.err" || rc=$?
  [ "$rc" = 0 ] || { echo "seed_results.sh: loadgen ($name) failed (exit $rc):" >&2; cat "$dir/loadgen.err" >&2; exit 1; }
  sleep "$SETTLE"
  local card_rss=0 card_warn=0
  if [ -n "$CARD" ]; then
    card_rss=$(awk '/^VmRSS/ {print $2 * 1024}' "/proc/$CARD/status")
    stop "$CARD"   # emits the merged series still pending, then exits
    card_warn=$(grep -cE 'level=(warn|error)' "$dir/cardinal.log" || true)
    sleep 2
  fi
  local head rss heap appended heap_gc oos
  head=$(metric "$prom" prometheus_tsdb_head_series)
  rss=$(metric "$prom" process_resident_memory_bytes)
  heap=$(metric "$prom" go_memstats_heap_inuse_bytes)
  appended=$(metric "$prom" prometheus_tsdb_head_samples_appended_total)
  oos=$(metric "$prom" prometheus_tsdb_out_of_order_samples_total)
  curl -sf --max-time 30 "$prom/debug/pprof/heap?gc=1" > /dev/null || true
  heap_gc=$(metric "$prom" go_memstats_heap_inuse_bytes)
  curl -sf --max-time 10 -G "$prom/api/v1/query" \
    --data-urlencode 'query=count by (__name__) ({__name__=~".+", __name__!~"(up|scrape_.*)"})' \
    > "$dir/families.json" || echo '{}' > "$dir/families.json"
  local wrote; wrote=$(curl -sf --max-time 10 "$prom/metrics" \
    | awk '/^prometheus_http_requests_total\{.*handler="\/api\/v1\/write"/ {match($0, /code="[0-9]+"/); c = substr($0, RSTART + 6, 3); s[c] += $NF} END {for (c in s) printf "%s:%d ", c, s[c]}')
  stop "$PROM"
  python3 - "$dir/loadgen.json" "$dir/families.json" >> "$work/cases.jsonl" <<EOF
import json, sys
l = json.load(open(sys.argv[1]))
try:
    fam = {r["metric"].get("__name__", "?"): int(r["value"][1]) for r in json.load(open(sys.argv[2]))["data"]["result"]}
except Exception:
    fam = {}
print(json.dumps({"case": "$name", "requests": l["requests"], "ok": l["ok"], "errors": l["errors"],
  "samples_acked": l["samples_acked"], "duration_s": l["duration_s"],
  "head_series": int("$head" or 0), "samples_appended": int("$appended" or 0),
  "out_of_order_samples": int("$oos" or 0),
  "resident_bytes": int("$rss" or 0), "heap_inuse_bytes": int("$heap" or 0), "heap_inuse_after_gc_bytes": int("$heap_gc" or 0),
  "remote_write_responses": "$wrote".strip(), "cardinal_rss_bytes": int("$card_rss" or 0),
  "cardinal_warnings": int("$card_warn" or 0), "series_by_family": fam}))
EOF
}

uptime_before=$(uptime)
echo "seed_results.sh: $(date -u +%FT%TZ), $(nproc) cores, $prom_version" >&2
echo "before: $uptime_before" >&2
run_case direct
run_case cardinal
uptime_after=$(uptime)
echo "after: $uptime_after" >&2

python3 - "$work/cases.jsonl" "${JSON_OUT:-}" <<EOF
import json, sys
rows = {r["case"]: r for r in map(json.loads, open(sys.argv[1]))}
d, c = rows["direct"], rows["cardinal"]
mb = lambda b: f"{b / 1e6:,.1f} MB"
print("workload: cardinal_loadgen --live --mix=seed --fresh-ratio=$FRESH_RATIO --seed=$SEED "
      "--series-per-request=$SERIES --concurrency=$CONCURRENCY --requests=$REQUESTS --rate=$RATE; "
      "read $SETTLE s after the last request; $prom_version")
print()
print(f"{'':<38} {'Prometheus alone':>18} {'behind Cardinal':>18} {'ratio':>7}")
def line(name, a, b, fmt=lambda v: f"{v:,}"):
    ratio = f"{b / a:.3f}" if a else "-"
    print(f"{name:<38} {fmt(a):>18} {fmt(b):>18} {ratio:>7}")
line("samples sent (all acked 2xx)", d["samples_acked"], c["samples_acked"])
line("prometheus_tsdb_head_series", d["head_series"], c["head_series"])
line("samples appended", d["samples_appended"], c["samples_appended"])
line("process_resident_memory_bytes", d["resident_bytes"], c["resident_bytes"], mb)
line("go_memstats_heap_inuse_bytes", d["heap_inuse_bytes"], c["heap_inuse_bytes"], mb)
line("heap in use after a forced GC", d["heap_inuse_after_gc_bytes"], c["heap_inuse_after_gc_bytes"], mb)
print(f"{'Cardinal RSS (the proxy itself)':<38} {'':>18} {mb(c['cardinal_rss_bytes']):>18}")
print(f"{'remote-write responses (code:count)':<38} {d['remote_write_responses']:>18} {c['remote_write_responses']:>18}")
print()
print("series by family:")
fams = sorted(set(d["series_by_family"]) | set(c["series_by_family"]))
for f in fams:
    print(f"  {f:<40} {d['series_by_family'].get(f, 0):>10,} {c['series_by_family'].get(f, 0):>10,}")
for r in (d, c):
    if r["errors"] or r["ok"] != r["requests"]:
        print(f"note: {r['case']}: {r['requests'] - r['ok']} requests not acknowledged: {r['errors']}")
    if r["out_of_order_samples"]:
        print(f"note: {r['case']}: {r['out_of_order_samples']} out-of-order samples rejected by Prometheus")
if c["cardinal_warnings"]:
    print(f"note: Cardinal logged {c['cardinal_warnings']} warnings/errors (KEEP_WORK=1 keeps its log)")
print()
print("load before: $uptime_before")
print("load after:  $uptime_after")
out = {"date": "$(date -u +%FT%TZ)", "cores": $(nproc), "prometheus": "$prom_version",
       "workload": {"mix": "seed", "fresh_ratio": $FRESH_RATIO, "seed": $SEED, "series_per_request": $SERIES,
                    "concurrency": $CONCURRENCY, "requests": $REQUESTS, "rate": $RATE, "settle_s": $SETTLE},
       "direct": d, "cardinal": c,
       "load_before": "$uptime_before".split("load average:")[-1].strip(),
       "load_after": "$uptime_after".split("load average:")[-1].strip()}
line_ = json.dumps(out)
print(line_)
if sys.argv[2]:
    open(sys.argv[2], "w").write(line_ + "\n")
EOF
