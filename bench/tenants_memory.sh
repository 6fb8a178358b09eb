#!/usr/bin/env bash
# Memory per tenant: one Cardinal with --tenant.header=X-Scope-OrgID; 20 requests (seed mix,
# 500 series each) as tenant t0, RSS; the same for TENANTS more tenants, RSS again.
#   bench/tenants_memory.sh [BUILD_DIR]      Env: TENANTS (50)
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
TENANTS=${TENANTS:-50}
source "$(dirname "$0")/lib.sh"
bench_init tenants-memory
cd "$work"
start_sink
mkdir st
PORT=$(free_port)
"$B/cardinal" --web.listen-address="127.0.0.1:$PORT" --upstream.url="http://127.0.0.1:$SP/api/v1/write" --storage.path=st \
  --tenant.header=X-Scope-OrgID --tenant.max-tenants=$((TENANTS + 2)) > cardinal.log 2>&1 &
C=$!; pids+=("$C")
wait_ready "http://127.0.0.1:$PORT/-/ready" "$C" cardinal cardinal.log
send() {
  "$B/cardinal_loadgen" --url="http://127.0.0.1:$PORT/api/v1/write" --mix=seed --fresh-ratio=0.2 --seed="$2" --pool=8 \
    --series-per-request=500 --concurrency=1 --requests=20 --header "X-Scope-OrgID: $1" > /dev/null 2>&1
}
rss() { awk '/VmRSS/{print $2}' "/proc/$C/status"; }
send t0 1
r0=$(rss)
for i in $(seq 1 "$TENANTS"); do send "t$i" $((i + 1)); done
r1=$(rss)
echo "rss_kb with 1 tenant: $r0; with $((TENANTS + 1)): $r1; per added tenant: $(((r1 - r0) / TENANTS)) KiB"
