#!/usr/bin/env bash
# Instructions per seed request, step by step, under callgrind: a count that does not move with the
# host's noise, for comparing builds when a change is worth a few percent (timings on a shared
# 2-vCPU machine vary by more than that from one minute to the next; BENCHMARKS.md, session 22).
# For each cardinal_pipeline_bench given and each step (decompress, decode, process, encode,
# compress), callgrind counts the events inside the step's function during that step's benchmark,
# once with 1 repetition of 1 iteration and once with 21, and prints the difference / 20: the
# fixture's setup (building and processing the 64-body pool once) cancels out, leaving one
# request's cost in steady state (plans cached, merge inputs known). Each repetition takes the
# pool's first body (2,000 series), so the count is the same on every run of one build.
# Ir: instructions; D1mr/D1mw: first-level data cache read/write misses in callgrind's simulated
# cache (indicative only: the same body every time keeps it warmer than a live proxy's).
#   bench/instructions.sh [PIPELINE_BENCH...]   default: build/bench/cardinal_pipeline_bench
#   (cmake --preset bench && cmake --build build/bench --target cardinal_pipeline_bench)
#   Env: TOP (0: also list the N functions with the most instructions of their own in `process`)
# Needs valgrind (Debian package valgrind). About 3 minutes per binary (10 runs under callgrind).
set -euo pipefail
command -v valgrind > /dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[ $# -ge 1 ] || set -- build/bench/cardinal_pipeline_bench
for b in "$@"; do [ -x "$b" ] || { echo "$0: $b is not an executable" >&2; exit 2; }; done
TOP=${TOP:-0}
work=$(mktemp -d /tmp/cardinal-instructions.XXXXXX)
trap 'rm -rf "$work"' EXIT
# step name, the function counted (callgrind --toggle-collect), the benchmark that runs it
steps=(
  "decompress cardinal::codec::decompress* BM_SeedDecompress$"
  "decode cardinal::codec::decodeWriteRequest* BM_SeedDecode$"
  "process cardinal::pipeline::processBatch* BM_SeedProcess$"
  "encode cardinal::codec::encodeForProtocol* BM_SeedEncode$"
  "compress cardinal::codec::compress* BM_SeedEncode$"
)
# count BIN FUNC BENCH REPS OUT: callgrind's totals for FUNC over REPS repetitions of one iteration
count() {
  valgrind --tool=callgrind --callgrind-out-file="$5" --toggle-collect="$2" --cache-sim=yes \
    "$1" --benchmark_filter="$3" --benchmark_min_time=0 --benchmark_repetitions="$4" > "$5.log" 2>&1 ||
    { cat "$5.log" >&2; exit 1; }
}
for b in "$@"; do
  echo "$b"
  for s in "${steps[@]}"; do
    read -r name fn bm <<< "$s"
    count "$b" "$fn" "$bm" 1 "$work/$name.1"
    count "$b" "$fn" "$bm" 21 "$work/$name.21"
  done
  names=(); for s in "${steps[@]}"; do names+=("${s%% *}"); done
  python3 - "$work" "$TOP" "${names[@]}" <<'PY'
import re, subprocess, sys
work, top, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def totals(path):
    txt = open(path).read()
    events = re.search(r"^events: (.*)$", txt, re.M).group(1).split()
    values = re.search(r"^(?:summary|totals): (.*)$", txt, re.M).group(1).split()
    return dict(zip(events, map(int, values)))
print(f"  {'step':<11}{'Ir':>12}{'Ir/series':>11}{'D1mr':>10}{'D1mw':>10}")
all_ir = 0
bad = []
for s in steps:
    a, b = totals(f"{work}/{s}.1"), totals(f"{work}/{s}.21")
    d = {k: (b[k] - a[k]) / 20 for k in a}
    all_ir += d["Ir"]
    if d["Ir"] <= 0: bad.append(s)
    print(f"  {s:<11}{d['Ir']:>12,.0f}{d['Ir'] / 2000:>11,.0f}{d['D1mr']:>10,.0f}{d['D1mw']:>10,.0f}")
print(f"  {'request':<11}{all_ir:>12,.0f}{all_ir / 2000:>11,.0f}")
if bad:  # the function was renamed or no longer runs in its benchmark: the toggle counted nothing
    sys.exit(f"instructions.sh: no instructions counted for {', '.join(bad)}: check the step's function name")
if top:
    def selfcost(path):
        out = subprocess.run(["callgrind_annotate", "--show=Ir", "--threshold=100", path], capture_output=True, text=True).stdout
        d = {}
        for line in out.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+\S*?:(\S.*?)\s*(?:\[.*\])?$", line)
            if m: d[m.group(2)] = d.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
        return d
    a, b = selfcost(f"{work}/process.1"), selfcost(f"{work}/process.21")
    diff = sorted(((b[k] - a.get(k, 0)) / 20, k) for k in b)
    print(f"  process: the {top} functions with the most instructions of their own, per request")
    for ir, k in reversed(diff[-top:]):
        print(f"  {ir:>12,.0f}  {k[:110]}")
PY
done
