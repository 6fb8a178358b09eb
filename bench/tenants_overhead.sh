#!/usr/bin/env bash
# Cost of --tenant.header on the write path: the same load through a fresh Cardinal without it
# ("off") and with --tenant.header=X-Scope-OrgID and every request naming one tenant ("on"),
# alternating for ROUNDS rounds, into one cardinal_sink. Prints one line per round: the proxy's
# CPU seconds during the load (/proc/<pid>/stat), its RSS at the end, and loadgen's summary.
#   bench/tenants_overhead.sh [BUILD_DIR]      Env: ROUNDS (3), DURATION (10s)
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
source "$(dirname "$0")/lib.sh"
bench_init tenants-overhead
cd "$work"
start_sink
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
for r in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    extra=(); hdr=()
    if [ "$mode" = on ]; then extra=(--tenant.header=X-Scope-OrgID); hdr=(--header "X-Scope-OrgID: team-a"); fi
    rm -rf st && mkdir st
    PORT=$(free_port)
    "$B/cardinal" --web.listen-address="127.0.0.1:$PORT" --upstream.url="http://127.0.0.1:$SP/api/v1/write" \
      --storage.path=st "${extra[@]}" > "cardinal-$mode.log" 2>&1 &
    C=$!; pids+=("$C")
    wait_ready "http://127.0.0.1:$PORT/-/ready" "$C" cardinal "cardinal-$mode.log"
    c0=$(cpu "$C")
    out=$("$B/cardinal_loadgen" --url="http://127.0.0.1:$PORT/api/v1/write" --mix=seed --fresh-ratio=0.2 --seed=1 \
          --pool=64 --series-per-request=2000 --concurrency=4 --duration="$DURATION" "${hdr[@]}" 2>&1 | tail -1)
    c1=$(cpu "$C")
    rss=$(awk '/VmRSS/{print $2}' "/proc/$C/status")
    stop "$C"
    echo "round=$r mode=$mode proxy_cpu_s=$(echo "$c1 - $c0" | bc) rss_kb=$rss $out"
  done
done
