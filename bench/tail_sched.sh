#!/usr/bin/env bash
# Who holds the CPUs while Cardinal's I/O threads wait for one, and how much of the tail is work
# outside the benchmark: one fresh Cardinal (default pipeline, --log.slow-requests=1ms) in front of
# cardinal_sink, a warm-up pass, then RATE requests/s for DURATION (the seed workload of
# compare.sh), with the scheduler recorded on every CPU for RECORD of it (perf record -a:
# sched_switch, sched_waking and the exits of blocking syscalls, CLOCK_MONOTONIC timestamps);
# bench/tail_sched.py then reports CPU time by task, wake-to-run latency onto idle CPUs, the I/O
# threads' waits for a CPU and what ran meanwhile, the same for the slowest 1% of the requests,
# and the server-side p99 with and without the CPU time processes outside the benchmark took in
# each request's window. The recording itself costs CPU: read its latencies beside
# bench/latency_steps.sh's, not in place of them.
#   bench/tail_sched.sh [BUILD_DIR]     Env: RATE (785), DURATION (10s), RECORD (8, seconds),
#   CONCURRENCY (4), SERIES (2000), POOL (64), FRESH_RATIO (0.2), SEED (1), FLAGS (extra Cardinal
#   flags), CARDINAL (the binary, default BUILD_DIR/cardinal). Needs perf (Debian's linux-perf:
#   deploy/apt-install.sh linux-perf) and root or kernel.perf_event_paranoid <= -1.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
RATE=${RATE:-785}
DURATION=${DURATION:-10s}
RECORD=${RECORD:-8}
CONCURRENCY=${CONCURRENCY:-4}
SERIES=${SERIES:-2000}
POOL=${POOL:-64}
FRESH_RATIO=${FRESH_RATIO:-0.2}
SEED=${SEED:-1}
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "tail_sched.sh: $*" >&2; exit 1; }
command -v perf >/dev/null || die "perf not found: deploy/apt-install.sh linux-perf"
source "$here/lib.sh"
bench_init tail-sched
cd "$work"
start_sink
start_logged_cardinal
seed_load --requests="$POOL" > warmup.json 2> warmup.err
python3 -c 'import time; print(time.time() - time.monotonic())' > offset
ls "/proc/$C/task" > tids
seed_load --duration="$DURATION" > load.json 2> load.err &
L=$!
sleep 1
# Blocking syscalls (read, poll, select, sched_yield, nanosleep, recvfrom, recvmsg, futex,
# clock_nanosleep, epoll_wait, epoll_pwait): a woken thread's first event is its return from one.
perf record -a -k CLOCK_MONOTONIC -e sched:sched_switch -e sched:sched_waking -e raw_syscalls:sys_exit \
  --filter 'id == 0 || id == 7 || id == 23 || id == 24 || id == 35 || id == 45 || id == 47 || id == 202 || id == 230 || id == 232 || id == 281' \
  -o sched.data -- sleep "$RECORD" > perf.out 2>&1 || { cat perf.out >&2; die "perf record failed"; }
wait "$L" || die "the load generator failed: $(cat load.err)"
perf script -i sched.data -F comm,tid,cpu,time,event,trace > sched.txt 2> /dev/null
python3 "$here/tail_sched.py" sched.txt cardinal.log load.json offset tids "$RECORD"
