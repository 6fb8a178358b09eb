#!/usr/bin/env bash
# Fixed-rate A/B of Cardinal binaries: latency, CPU and context switches per request.
# One cardinal_sink for the whole run; for ROUNDS rounds, in an order that rotates every round,
# each binary is started fresh in front of it (own port, own temp storage), fed one warm-up pass
# over the payload pool (not measured), then RATE requests/s for DURATION with compare.sh's
# workload (seed mix, 20% fresh ids, 2,000 series per request, a pool of 64 bodies,
# 4 connections). Per run: the load generator's p50/p99/max, the proxy's CPU per request
# (/proc/<pid>/stat), its voluntary and involuntary context switches per request (all its
# threads, /proc/<pid>/task/*/status) and the sink's, and how often the kernel moved one of the
# proxy's threads to another CPU (se.nr_migrations in /proc/<pid>/task/*/sched, where the kernel
# has it); then each binary's medians.
#   bench/ab_latency.sh BINARY...        e.g. bench/ab_latency.sh /tmp/cardinal-before build/cardinal
#   An argument may carry flags for that binary alone, in one word:
#     bench/ab_latency.sh build/cardinal "build/cardinal --web.io-threads-pin"
#   Env: B (build dir with cardinal_loadgen and cardinal_sink; default build), RATE (730: about half
#   of compare.sh's maximum here), ROUNDS (3), DURATION (10s), FLAGS (extra Cardinal flags),
#   NEIGHBOURS (0: how many CPU-bound processes, each a busy loop at nice 0, share the machine
#   during each measured run: a host where the proxy's CPUs are not its own)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
B=$(cd "${B:-build}" && pwd)
RATE=${RATE:-730}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
BINS=()
BIN_FLAGS=()
for arg in "$@"; do
  read -r b flags <<< "$arg"
  [ -x "$b" ] || { echo "$0: $b is not an executable" >&2; exit 2; }
  BINS+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")")
  BIN_FLAGS+=("$flags")
done
source "$(dirname "$0")/lib.sh"
bench_init ab-latency
cd "$work"
start_sink
SINK_PID=${pids[0]}
load() {
  "$B/cardinal_loadgen" --url="$1" --rate="$RATE" --concurrency=4 --series-per-request=2000 --mix=seed \
    --fresh-ratio=0.2 --seed=1 --pool=64 "${@:2}"
}
switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v, n}'; }
# -1 where the kernel keeps no scheduler statistics per thread.
migrations() { cat /proc/"$1"/task/*/sched 2> /dev/null | awk '/^se.nr_migrations/ {m += $3; seen = 1} END {print seen ? m : -1}'; }
echo "rate $RATE requests/s, $DURATION per run, $ROUNDS rounds, ${NEIGHBOURS:-0} CPU-bound neighbours; $(uptime)"
for (( r = 1; r <= ROUNDS; r++ )); do
  n=${#BINS[@]}
  for (( k = 0; k < n; k++ )); do
    i=$(( (k + r - 1) % n ))
    d="$work/r$r-$i"; mkdir -p "$d"
    port=$(free_port)
    # shellcheck disable=SC2086
    "${BINS[$i]}" --web.listen-address="127.0.0.1:$port" --upstream.url="http://127.0.0.1:$SP/api/v1/write" \
      --storage.path="$d/data" --log.level=warn ${FLAGS:-} ${BIN_FLAGS[$i]} > "$d/proxy.log" 2>&1 &
    P=$!; pids+=("$P")
    wait_ready "http://127.0.0.1:$port/-/ready" "$P" cardinal "$d/proxy.log"
    url="http://127.0.0.1:$port/api/v1/write"
    load "$url" --requests=64 > "$d/warmup.json" 2> "$d/warmup.err" || { cat "$d/warmup.err" >&2; exit 1; }
    c0=$(cpu_ticks "$P"); s0=$(switches "$P"); k0=$(switches "$SINK_PID"); m0=$(migrations "$P")
    hogs=()
    for (( h = 0; h < ${NEIGHBOURS:-0}; h++ )); do sha256sum /dev/zero & hogs+=($!); pids+=($!); done
    load "$url" --duration="$DURATION" > "$d/load.json" 2> "$d/load.err" || { cat "$d/load.err" >&2; exit 1; }
    for h in "${hogs[@]}"; do stop "$h"; done
    c1=$(cpu_ticks "$P"); s1=$(switches "$P"); k1=$(switches "$SINK_PID"); m1=$(migrations "$P")
    stop "$P"
    python3 - "$d/load.json" "$i" "$r" "$c0 $c1" "$s0 $s1" "$k0 $k1" "$(getconf CLK_TCK)" "$m0 $m1" >> "$work/runs.jsonl" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))
c0, c1 = map(int, sys.argv[4].split())
sv0, sn0, sv1, sn1 = map(int, sys.argv[5].split())
kv0, kn0, kv1, kn1 = map(int, sys.argv[6].split())
n = max(1, l["requests"])
m0, m1 = map(int, sys.argv[8].split())
print(json.dumps({"bin": int(sys.argv[2]), "round": int(sys.argv[3]), "requests": l["requests"], "ok": l["ok"],
  "p50": l["latency_ms"]["p50"], "p99": l["latency_ms"]["p99"], "max": l["latency_ms"]["max"],
  "cpu_ms": 1000.0 * (c1 - c0) / int(sys.argv[7]) / n, "vol": (sv1 - sv0) / n, "invol": (sn1 - sn0) / n,
  "sink_vol": (kv1 - kv0) / n, "sink_invol": (kn1 - kn0) / n,
  "migrations": (m1 - m0) / n if m0 >= 0 else None}))
PY
    tail -1 "$work/runs.jsonl" | python3 -c 'import json,sys; x=json.loads(sys.stdin.read()); print("round {round} binary {bin}: {requests} requests ({ok} 2xx), p50 {p50:.2f} p99 {p99:.2f} max {max:.2f} ms, proxy CPU {cpu_ms:.3f} ms/request, switches/request: proxy {vol:.2f} voluntary {invol:.2f} involuntary, sink {sink_vol:.2f} {sink_invol:.2f}".format(**x) + ("" if x["migrations"] is None else ", proxy CPU migrations/request {:.2f}".format(x["migrations"])))'
  done
done
names=()
for (( i = 0; i < ${#BINS[@]}; i++ )); do names+=("${BINS[$i]}${BIN_FLAGS[$i]:+ ${BIN_FLAGS[$i]}}"); done
python3 - "$work/runs.jsonl" "${names[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("medians per binary:")
for i, name in enumerate(sys.argv[2:]):
    rs = [x for x in runs if x["bin"] == i]
    m = lambda k: statistics.median(x[k] for x in rs)
    p99s = ", ".join("%.2f" % x["p99"] for x in rs)
    print(f"  {i} {name}: p50 {m('p50'):.2f} / p99 {m('p99'):.2f} ms (p99 per round {p99s}), "
          f"proxy CPU {m('cpu_ms'):.3f} ms/request, switches/request {m('vol'):.2f} + {m('invol'):.2f}"
          + ("" if rs[0]["migrations"] is None else f", migrations/request {m('migrations'):.2f}"))
PY
