#!/usr/bin/env bash
# Throughput and memory as distinct series grow (issue 6): Cardinal as shipped (built-in rules,
# every stage, default caps) fed by `cardinal_loadgen --live --fresh-ratio=1` (every series of
# every request new: ~1,600 fresh seed-family series per request of 2,000), one run per size,
# each through bench/cardinality_memory.sh (PIPELINE=default), which also checks that every
# request was acknowledged and the sink got what Cardinal forwarded. Not for CI (minutes).
#
#   bench/series_curve.sh [BUILD_DIR]
#   Env: SIZES (default "10000 100000 1000000 10000000"), CARD_MEM (512MiB, the default budget),
#        RSS_CAP_MB (4096: a run fails above it)
set -euo pipefail
B=${1:-build}
SIZES=${SIZES:-10000 100000 1000000 10000000}
here=$(cd "$(dirname "$0")" && pwd)
echo "series_curve.sh: $(date -u +%FT%TZ), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%12s %10s %14s %12s %14s %16s %6s\n' distinct requests samples/s peak_rss_mb engine_bytes forwarded_samples load
for n in $SIZES; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  out=$(PIPELINE=default CARD_MEM="${CARD_MEM:-512MiB}" RSS_CAP_MB="${RSS_CAP_MB:-4096}" \
        "$here/cardinality_memory.sh" "$n" "$B" 2>&1) || { echo "$out" | tail -20; echo "FAIL at $n"; exit 1; }
  echo "$out" | grep '^{' | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
print(f\"{$n:>12,} {d['requests']:>10,} {d['samples_per_s']:>14,.0f} {d['peak_rss_mb']:>12.1f} {d['engine_bytes']:>14,.0f} {d['forwarded_samples']:>16,.0f} {'$load':>6}\")"
done
