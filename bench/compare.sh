#!/usr/bin/env bash
# Throughput of Cardinal against vmagent and against Cardinal's own codec, in one run on one
# machine (issue 6, part 2). One cardinal_sink receives everything; for ROUNDS rounds, in an
# order that changes every round, three proxies are put in front of it, each started fresh
# (own temp storage, own port) and fed by cardinal_loadgen with the same payloads (same seed,
# seed mix, pool mode):
#   cardinal   the full default pipeline: no --rules.file (built-in rules, sanitize, normalize,
#              the cardinality engine, merge), default --aggregation.interval
#   vmagent    vmagent from Debian (victoria-metrics package) with -remoteWrite.relabelConfig
#              doing labeldrop of the seed families' id labels, nothing else
#   codec      cardinal --bench.codec-only: decode + validate + re-encode + forward, no stage
# Throughput is the samples of the requests answered 2xx to the load generator per second
# (loadgen samples_acked / duration_s). vmagent answers before it forwards (it queues in memory
# and on disk), so each round also reports what the sink received: during the load
# (sink_window) and in all, after vmagent's queues drained and the proxy stopped (sink_total;
# for Cardinal this includes the merged series it emits at shutdown). Each round also records
# the CPU seconds the proxy and the sink used during the load (/proc/<pid>/stat) and the rest of
# the machine's busy CPU: on a shared machine, samples per proxy CPU-second is the steadier figure.
# Then latency: loadgen --rate at half of Cardinal's median request rate, LAT_ROUNDS times
# directly against the sink, through a fresh Cardinal and through a fresh codec-only Cardinal
# (order rotating per round), each after a warm-up of one pass over the payload pool at the same
# rate (not measured; its p99 and max are printed: a fresh Cardinal's first sight of each label
# set); added p99 = median Cardinal p99 - median direct p99, and the same for codec-only (the
# floor the codec alone sets at that rate).
#
#   bench/compare.sh [BUILD_DIR]          (default build dir: build, as `make build` makes it)
#   Env: ROUNDS (5), DURATION (10s), FRESH_RATIO (0.2), SEED (1), CONCURRENCY (4),
#        SERIES (2000 per request), POOL (64), LAT_ROUNDS (3), LAT_DURATION (10s),
#        DRAIN_TIMEOUT (60 s for vmagent's queues), VMAGENT (vmagent binary), JSON_OUT (file for
#        the JSON line, besides stdout), KEEP_WORK=1 (keep the temp dir with every log)
# Output: per-round table, medians and ratios on stdout, then one JSON line.
# Needs: vmagent (`deploy/apt-install.sh victoria-metrics`), curl, python3, coreutils' timeout.
set -euo pipefail
B=${1:-build}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
FRESH_RATIO=${FRESH_RATIO:-0.2}
SEED=${SEED:-1}
CONCURRENCY=${CONCURRENCY:-4}
SERIES=${SERIES:-2000}
POOL=${POOL:-64}
LAT_ROUNDS=${LAT_ROUNDS:-3}
LAT_DURATION=${LAT_DURATION:-10s}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
VMAGENT=${VMAGENT:-$(command -v vmagent || true)}
# The id labels of the seed families (bench/tools/README.md, "Workload").
ID_LABELS="user_id|order_id|pid|timestamp|email|file_path|path|query"

die() { echo "compare.sh: $*" >&2; exit 2; }
for bin in cardinal cardinal_loadgen cardinal_sink; do
  [ -x "$B/$bin" ] || die "missing $B/$bin (build it: make build, or cmake --build $B --target $bin)"
done
case "$("$B/cardinal" --help 2>&1 || true)" in
  *--bench.codec-only*) ;;
  *) die "$B/cardinal has no --bench.codec-only flag (rebuild from a tree that has it)" ;;
esac
[ -n "$VMAGENT" ] && [ -x "$VMAGENT" ] \
  || die "vmagent not found (install it: deploy/apt-install.sh victoria-metrics, or set VMAGENT=)"
for tool in curl python3 timeout; do command -v $tool >/dev/null || die "missing $tool"; done
# Debian's build prints an empty -version: ask dpkg for the package version.
vm_version=$("$VMAGENT" -version 2>&1 | head -1 || true)
if [ -z "$vm_version" ]; then
  vm_pkg=$(dpkg -S "$(readlink -f "$VMAGENT")" 2>/dev/null | cut -d: -f1 || true)
  [ -n "$vm_pkg" ] && vm_version="$vm_pkg $(dpkg-query -W -f='${Version}' "$vm_pkg" 2>/dev/null || true)"
fi
case "$vm_version" in *1.79.*) ;; *) echo "warning: expected vmagent 1.79, got: '$vm_version'" >&2 ;; esac
[[ "$DURATION" =~ ^[0-9]+s$ && "$LAT_DURATION" =~ ^[0-9]+s$ ]] || die "DURATION and LAT_DURATION are whole seconds, e.g. 10s"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$LAT_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS and LAT_ROUNDS are positive integers"
LOAD_TIMEOUT=$(( ${DURATION%s} + 60 ))   # the load generator's whole run, pool generation included
LAT_TIMEOUT=$(( ${LAT_DURATION%s} + 60 ))

source "$(dirname "$0")/lib.sh"
bench_init compare
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Busy and total jiffies of the whole machine (to tell how much CPU other work took).
machine_cpu() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
json_field() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(d.get(sys.argv[1], 0))' "$1"; }
sink_samples() { curl -sf --max-time 5 "$SINK_URL_BASE/stats" | json_field samples; }
metric_sum() { local v; v=$(metric "$1" "$2"); echo "${v:-0}"; }  # 0 when absent

# --- the sink: one for the whole run; `--decode=scan` leaves more of the 2 cores to the proxy
"$B/cardinal_sink" --listen=127.0.0.1:0 --port-file="$work/sink.port" --threads=1 --decode=scan \
  > "$work/sink.json" 2> "$work/sink.err" &
SINK=$!; pids+=("$SINK")
for _ in $(seq 100); do [ -s "$work/sink.port" ] && break; sleep 0.05; done
[ -s "$work/sink.port" ] || die "cardinal_sink did not start: $(cat "$work/sink.err")"
SINK_URL_BASE="http://127.0.0.1:$(cat "$work/sink.port")"
SINK_URL="$SINK_URL_BASE/api/v1/write"

cat > "$work/relabel.yml" <<EOF
- action: labeldrop
  regex: "$ID_LABELS"
EOF

# start_proxy KIND DIR: starts a fresh proxy, sets PROXY (pid), PROXY_BASE (http://host:port).
start_proxy() {
  local kind=$1 dir=$2 port
  port=$(free_port)
  mkdir -p "$dir"
  PROXY_BASE="http://127.0.0.1:$port"
  case "$kind" in
    cardinal|codec)
      local extra=()
      [ "$kind" = codec ] && extra=(--bench.codec-only)
      "$B/cardinal" --web.listen-address="127.0.0.1:$port" --upstream.url="$SINK_URL" \
        --storage.path="$dir/data" --log.level=warn "${extra[@]}" > "$dir/proxy.log" 2>&1 &
      PROXY=$!; pids+=("$PROXY")
      local ready="$PROXY_BASE/-/ready" ;;
    vmagent)
      "$VMAGENT" -httpListenAddr="127.0.0.1:$port" -remoteWrite.url="$SINK_URL" \
        -remoteWrite.relabelConfig="$work/relabel.yml" -remoteWrite.tmpDataPath="$dir/vmagent-data" \
        -loggerLevel=WARN > "$dir/proxy.log" 2>&1 &
      PROXY=$!; pids+=("$PROXY")
      local ready="$PROXY_BASE/health" ;;
  esac
  for _ in $(seq 200); do
    curl -sf --max-time 1 "$ready" > /dev/null && return 0
    kill -0 "$PROXY" 2>/dev/null || break
    sleep 0.05
  done
  echo "compare.sh: $kind did not become ready; its log:" >&2; cat "$dir/proxy.log" >&2; exit 1
}

# vmagent acknowledges before it forwards: wait until its queues are empty and the sink has
# every sample it pushed (bounded by DRAIN_TIMEOUT). Prints the seconds it took.
drain_vmagent() {
  local sink_before=$1 start=$SECONDS pushed pending inmem got
  while (( SECONDS - start < DRAIN_TIMEOUT )); do
    pushed=$(metric_sum "$PROXY_BASE" vmagent_remotewrite_rows_pushed_after_relabel_total)
    pending=$(metric_sum "$PROXY_BASE" vmagent_remotewrite_pending_data_bytes)
    inmem=$(metric_sum "$PROXY_BASE" vmagent_remotewrite_pending_inmemory_blocks)
    got=$(( $(sink_samples) - sink_before ))
    if [ "$pending" = 0 ] && [ "$inmem" = 0 ] && (( got >= pushed )); then break; fi
    sleep 0.5
  done
  echo $(( SECONDS - start ))
}

# run_round KIND ROUND POSITION: one fresh proxy, one load run, one JSON line in rounds.jsonl.
run_round() {
  local kind=$1 round=$2 pos=$3 dir="$work/r$2-$1"
  start_proxy "$kind" "$dir"
  local load0 s0 p0 k0 m0 t0
  load0=$(loadavg); s0=$(sink_samples); p0=$(cpu_s "$PROXY"); k0=$(cpu_s "$SINK"); read -r m0 t0 < <(machine_cpu)
  local rc=0
  timeout --kill-after=5 "$LOAD_TIMEOUT" "$B/cardinal_loadgen" --url="$PROXY_BASE/api/v1/write" \
    --duration="$DURATION" --concurrency="$CONCURRENCY" --series-per-request="$SERIES" \
    --mix=seed --fresh-ratio="$FRESH_RATIO" --seed="$SEED" --pool="$POOL" \
    > "$dir/loadgen.json" 2> "$dir/loadgen.err" || rc=$?
  local s1 p1 k1 m1 t1 load1
  s1=$(sink_samples); p1=$(cpu_s "$PROXY"); k1=$(cpu_s "$SINK"); read -r m1 t1 < <(machine_cpu); load1=$(loadavg)
  [ "$rc" = 0 ] || { echo "compare.sh: loadgen against $kind failed (exit $rc):" >&2; cat "$dir/loadgen.err" >&2; exit 1; }
  local drain_s=0 forwarded="" disk=0
  if [ "$kind" = vmagent ]; then
    drain_s=$(drain_vmagent "$s0")
    forwarded=$(metric_sum "$PROXY_BASE" vmagent_remotewrite_rows_pushed_after_relabel_total)
    disk=$(metric_sum "$PROXY_BASE" vm_persistentqueue_bytes_written_total)   # spilled to its disk queue
  else
    forwarded=$(metric_sum "$PROXY_BASE" cardinal_forwarded_samples_total)
  fi
  stop "$PROXY"
  local s2; s2=$(sink_samples)
  local warnings; warnings=$(grep -c . "$dir/proxy.log" || true)   # both log at warn level and above
  python3 - "$dir/loadgen.json" >> "$work/rounds.jsonl" <<EOF
import json, sys
l = json.load(open(sys.argv[1]))
print(json.dumps({"proxy": "$kind", "round": $round, "position": $pos,
  "samples_acked": l["samples_acked"], "duration_s": l["duration_s"], "samples_per_s": l["samples_per_s"],
  "requests": l["requests"], "ok": l["ok"], "requests_per_s": l["requests_per_s"], "errors": l["errors"],
  "p50_ms": l["latency_ms"]["p50"], "p99_ms": l["latency_ms"]["p99"],
  "sink_window": $s1 - $s0, "sink_total": $s2 - $s0, "proxy_forwarded": int("$forwarded" or 0),
  "drain_s": $drain_s, "vmagent_disk_bytes": int("$disk" or 0), "proxy_cpu_s": round($p1 - $p0, 2), "sink_cpu_s": round($k1 - $k0, 2),
  "other_cpu_s": round((($m1 - $m0) - ($p1 - $p0) * $(getconf CLK_TCK) - ($k1 - $k0) * $(getconf CLK_TCK)) / $(getconf CLK_TCK), 2),
  "machine_busy": round(($m1 - $m0) / max(1, $t1 - $t0), 3),
  "loadavg_start": $load0, "loadavg_end": $load1, "proxy_log_lines": int("$warnings" or 0)}))
EOF
  tail -1 "$work/rounds.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("round %d %-8s %8.0f k samples/s acked, sink total %9d, p99 %7.1f ms, proxy cpu %5.1f s, load %s" % (
      r["round"], r["proxy"], r["samples_per_s"] / 1e3, r["sink_total"], r["p99_ms"], r["proxy_cpu_s"],
      r["loadavg_start"]), file=sys.stderr)'
}

uptime_before=$(uptime)
echo "compare.sh: $(date -u +%FT%TZ), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $vm_version" >&2
echo "before: $uptime_before" >&2
# Orders: every proxy in every position over 6 rounds.
orders=("cardinal vmagent codec" "vmagent codec cardinal" "codec cardinal vmagent"
        "codec vmagent cardinal" "vmagent cardinal codec" "cardinal codec vmagent")
for (( r = 1; r <= ROUNDS; r++ )); do
  pos=1
  for kind in ${orders[$(( (r - 1) % 6 ))]}; do
    run_round "$kind" "$r" "$pos"
    pos=$(( pos + 1 ))
  done
done

# --- latency at half of Cardinal's median maximum request rate
rate=$(python3 - "$work/rounds.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(round(statistics.median(r["requests_per_s"] for r in rows if r["proxy"] == "cardinal") / 2, 2))
EOF
)
# paced URL ARGS...: the load generator at the latency rate with the workload's flags.
paced() {
  local url=$1; shift
  timeout --kill-after=5 "$LAT_TIMEOUT" "$B/cardinal_loadgen" --url="$url" --rate="$rate" \
    --concurrency="$CONCURRENCY" --series-per-request="$SERIES" \
    --mix=seed --fresh-ratio="$FRESH_RATIO" --seed="$SEED" --pool="$POOL" "$@"
}
for (( r = 1; r <= LAT_ROUNDS; r++ )); do
  targets=(direct cardinal codec)
  for (( k = 0; k < 3; k++ )); do
    target=${targets[$(( (k + r - 1) % 3 ))]}  # the order rotates every round
    dir="$work/lat$r-$target"; mkdir -p "$dir"
    if [ "$target" != direct ]; then start_proxy "$target" "$dir"; url="$PROXY_BASE/api/v1/write"; else url="$SINK_URL"; fi
    # Warm-up: the payload pool once, at the same rate, not measured (a fresh Cardinal builds its
    # label-set plans, merge inputs and cardinality state on first sight; its p99/max are kept).
    rc=0
    paced "$url" --requests="$POOL" > "$dir/warmup.json" 2> "$dir/warmup.err" || rc=$?
    [ "$rc" = 0 ] || { echo "compare.sh: warm-up loadgen ($target) failed (exit $rc):" >&2; cat "$dir/warmup.err" >&2; exit 1; }
    load0=$(loadavg)
    paced "$url" --duration="$LAT_DURATION" > "$dir/loadgen.json" 2> "$dir/loadgen.err" || rc=$?
    [ "$target" != direct ] && stop "$PROXY"
    [ "$rc" = 0 ] || { echo "compare.sh: paced loadgen ($target) failed (exit $rc):" >&2; cat "$dir/loadgen.err" >&2; exit 1; }
    python3 - "$dir/loadgen.json" "$dir/warmup.json" >> "$work/latency.jsonl" <<EOF
import json, sys
l = json.load(open(sys.argv[1]))
w = json.load(open(sys.argv[2]))
print(json.dumps({"target": "$target", "round": $r, "rate": $rate, "requests": l["requests"], "ok": l["ok"],
  "errors": l["errors"], "p50_ms": l["latency_ms"]["p50"], "p99_ms": l["latency_ms"]["p99"],
  "max_ms": l["latency_ms"]["max"], "warmup_requests": w["requests"], "warmup_p99_ms": w["latency_ms"]["p99"],
  "warmup_max_ms": w["latency_ms"]["max"], "loadavg_start": $load0}))
EOF
  done
done
uptime_after=$(uptime)
echo "after: $uptime_after" >&2

sink_final=$(curl -sf --max-time 5 "$SINK_URL_BASE/stats")
python3 - "$work/rounds.jsonl" "$work/latency.jsonl" "${JSON_OUT:-}" <<EOF
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lat = [json.loads(l) for l in open(sys.argv[2])]
sink = json.loads('''$sink_final''')
kinds = ["cardinal", "vmagent", "codec"]
label = {"cardinal": "Cardinal (default pipeline)", "vmagent": "vmagent labeldrop", "codec": "Cardinal --bench.codec-only"}
print(f"workload: loadgen --mix=seed --fresh-ratio=$FRESH_RATIO --seed=$SEED --pool=$POOL (pool mode) "
      f"--series-per-request=$SERIES --concurrency=$CONCURRENCY --duration=$DURATION; sink --decode=scan --threads=1")
print()
hdr = f"{'round':>5} {'pos':>3} {'proxy':<9} {'acked samples/s':>15} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'sink in window':>14} {'sink total':>11} {'acked':>10} {'drain s':>7} {'vm disk B':>9} {'proxy cpu s':>11} {'sink cpu s':>10} {'other cpu s':>11} {'load':>5} {'log':>4} {'errors'}"
print(hdr)
for r in rows:
    print(f"{r['round']:>5} {r['position']:>3} {r['proxy']:<9} {r['samples_per_s']:>15,.0f} {r['requests_per_s']:>7.1f} "
          f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['sink_window']:>14,} {r['sink_total']:>11,} {r['samples_acked']:>10,} "
          f"{r['drain_s']:>7} {r.get('vmagent_disk_bytes', 0):>9} {r['proxy_cpu_s']:>11.2f} {r['sink_cpu_s']:>10.2f} {r['other_cpu_s']:>11.2f} {r['loadavg_start']:>5} "
          f"{r['proxy_log_lines']:>4} {json.dumps(r['errors']) if r['errors'] else '-'}")
print("sink in window: samples the sink counted between the load's start and its end; sink total: after the proxy")
print("drained (vmagent) and stopped (Cardinal emits its merged series at shutdown); vm disk B: bytes vmagent")
print("wrote to its persistent (disk) queue; other cpu: the machine's busy")
print("CPU minus proxy and sink (the load generator and everything else running); log: proxy log lines (warn+)")
med = {}
for k in kinds:
    rs = [r for r in rows if r["proxy"] == k]
    med[k] = {
        "samples_per_s": st.median(r["samples_per_s"] for r in rs),
        "sink_samples_per_s": st.median(r["sink_total"] / r["duration_s"] for r in rs),
        "sink_window_per_s": st.median(r["sink_window"] / r["duration_s"] for r in rs),
        "requests_per_s": st.median(r["requests_per_s"] for r in rs),
        "p99_ms": st.median(r["p99_ms"] for r in rs),
        "samples_per_proxy_cpu_s": st.median(r["samples_acked"] / max(r["proxy_cpu_s"], 0.01) for r in rs),
        "rounds": len(rs),
    }
print()
print(f"{'medians over ' + str(len(rows) // 3) + ' rounds':<30} {'acked samples/s':>15} {'sink samples/s (total)':>22} {'sink samples/s (window)':>23} {'req/s':>7} {'p99 ms':>7} {'acked per proxy CPU-s':>21}")
for k in kinds:
    m = med[k]
    print(f"{label[k]:<30} {m['samples_per_s']:>15,.0f} {m['sink_samples_per_s']:>22,.0f} {m['sink_window_per_s']:>23,.0f} "
          f"{m['requests_per_s']:>7.1f} {m['p99_ms']:>7.2f} {m['samples_per_proxy_cpu_s']:>21,.0f}")
ratios = {
    "cardinal_vs_vmagent": med["cardinal"]["samples_per_s"] / med["vmagent"]["samples_per_s"],
    "cardinal_vs_codec": med["cardinal"]["samples_per_s"] / med["codec"]["samples_per_s"],
    "cardinal_vs_vmagent_per_cpu": med["cardinal"]["samples_per_proxy_cpu_s"] / med["vmagent"]["samples_per_proxy_cpu_s"],
    "cardinal_vs_codec_per_cpu": med["cardinal"]["samples_per_proxy_cpu_s"] / med["codec"]["samples_per_proxy_cpu_s"],
}
print()
print(f"ratio of medians, acked samples/s: Cardinal/vmagent = {ratios['cardinal_vs_vmagent']:.2f}  (target >= 2.0), "
      f"Cardinal/codec-only = {ratios['cardinal_vs_codec']:.2f}  (target >= 0.5)")
print(f"ratio of medians, acked samples per proxy CPU-second: Cardinal/vmagent = {ratios['cardinal_vs_vmagent_per_cpu']:.2f}, "
      f"Cardinal/codec-only = {ratios['cardinal_vs_codec_per_cpu']:.2f}")
print()
print(f"latency at {lat[0]['rate'] if lat else 0} requests/s (half of Cardinal's median {med['cardinal']['requests_per_s']:.1f}), "
      f"{'$LAT_DURATION'} per run, alternating:")
print(f"{'round':>5} {'target':<9} {'requests':>8} {'ok':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'load':>5} {'warm-up p99 / max ms':>21}")
for r in lat:
    print(f"{r['round']:>5} {r['target']:<9} {r['requests']:>8} {r['ok']:>6} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.2f} {r['loadavg_start']:>5} {r['warmup_p99_ms']:>10.2f} / {r['warmup_max_ms']:>7.2f}"
          + (f"  errors {json.dumps(r['errors'])}" if r["errors"] else ""))
latm = {t: {"p50_ms": st.median(r["p50_ms"] for r in lat if r["target"] == t),
            "p99_ms": st.median(r["p99_ms"] for r in lat if r["target"] == t)} for t in ("direct", "cardinal", "codec")}
added = latm["cardinal"]["p99_ms"] - latm["direct"]["p99_ms"]
added_codec = latm["codec"]["p99_ms"] - latm["direct"]["p99_ms"]
print(f"medians: direct p50 {latm['direct']['p50_ms']:.2f} / p99 {latm['direct']['p99_ms']:.2f} ms; "
      f"through Cardinal p50 {latm['cardinal']['p50_ms']:.2f} / p99 {latm['cardinal']['p99_ms']:.2f} ms; "
      f"added p99 {added:.2f} ms (target <= 2 ms)")
print(f"         through codec-only p50 {latm['codec']['p50_ms']:.2f} / p99 {latm['codec']['p99_ms']:.2f} ms; "
      f"added p99 {added_codec:.2f} ms (the codec's own floor at this rate)")
print()
print("load before: $uptime_before")
print("load after:  $uptime_after")
print(f"sink, whole run: {sink.get('samples', 0):,} samples in {sink.get('requests', 0):,} requests, {sink.get('decode_errors', 0)} decode errors")
out = {"date": "$(date -u +%FT%TZ)", "cores": $(nproc), "vmagent": "$vm_version", "rounds": len(rows) // 3,
       "duration": "$DURATION", "mix": "seed", "fresh_ratio": $FRESH_RATIO, "seed": $SEED, "pool": $POOL,
       "series_per_request": $SERIES, "concurrency": $CONCURRENCY,
       "medians": med, "ratios": ratios, "latency": {"rate": lat[0]["rate"] if lat else 0, **latm, "added_p99_ms": added,
                   "added_p99_ms_codec_only": added_codec},
       "per_round": rows, "latency_runs": lat,
       "load_before": "$uptime_before".split("load average:")[-1].strip(),
       "load_after": "$uptime_after".split("load average:")[-1].strip()}
line = json.dumps(out)
print(line)
if sys.argv[3]:
    open(sys.argv[3], "w").write(line + "\n")
EOF
