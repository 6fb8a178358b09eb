# Shell helpers shared by the bench scripts; `source "$(dirname "$0")/lib.sh"`.
# Each script sets `die` itself (its own name in messages).

# bench_init NAME: a temp work dir ($work), the processes to stop at exit ($pids; add with
# pids+=("$!")), and the exit trap that stops them and removes $work (KEEP_WORK=1 keeps it).
bench_init() {
  work=$(mktemp -d "/tmp/cardinal-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}

# start_sink: cardinal_sink ($B) on a free loopback port, one thread, counting without decoding
# (--decode=scan), logging to sink.log in the current directory; sets SP to its port.
start_sink() {
  "$B/cardinal_sink" --threads=1 --decode=scan --listen=127.0.0.1:0 --port-file=sink.port > sink.log 2>&1 &
  pids+=("$!")
  for _ in $(seq 50); do [ -s sink.port ] && break; sleep 0.1; done
  [ -s sink.port ] || { echo "$(basename "$0"): cardinal_sink did not start; its log:" >&2; cat sink.log >&2; exit 1; }
  SP=$(cat sink.port)
}

# cpu_ticks PID: user + system CPU of a process so far, in clock ticks (getconf CLK_TCK per second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# metric BASE_URL NAME: the value of a metric (the sum over its label sets) on BASE_URL/metrics;
# nothing when the page has no such metric.
metric() {
  curl -sf --max-time 10 "$1/metrics" | awk -v m="$2" '{n=$1; sub(/\{.*/, "", n)} n == m {s += $NF; f = 1} END {if (f) printf "%.0f", s}'
}

# stop PID: SIGTERM, then SIGKILL after 30 s; forgets the pid (it may be reused once reaped).
stop() {
  local p=$1 q keep=()
  if kill -TERM "$p" 2>/dev/null; then
    for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]}")
}

# wait_ready URL PID NAME LOG: until URL answers 2xx (30 s); fails with the log's tail if the
# process exits first or the time runs out.
wait_ready() {
  for _ in $(seq 600); do
    curl -sf --max-time 1 "$1" > /dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$(basename "$0"): $3 did not become ready; its log:" >&2; tail -30 "$4" >&2; exit 1
}

# The half-load scripts (latency_steps.sh, tail_sched.sh): Cardinal ($CARDINAL, else $B/cardinal,
# with $FLAGS) on a free loopback port in front of the sink ($SP), logging every request of 1 ms
# or more to cardinal.log in the current directory; sets PORT and C (its pid).
start_logged_cardinal() {
  PORT=$(free_port)
  # shellcheck disable=SC2086
  "${CARDINAL:-$B/cardinal}" --web.listen-address="127.0.0.1:$PORT" --upstream.url="http://127.0.0.1:$SP/api/v1/write" \
    --storage.path=st --log.level=warn --log.slow-requests=1ms ${FLAGS:-} > cardinal.log 2>&1 &
  C=$!; pids+=("$C")
  wait_ready "http://127.0.0.1:$PORT/-/ready" "$C" cardinal cardinal.log
}
# seed_load ARGS...: cardinal_loadgen with compare.sh's seed workload ($FRESH_RATIO, $SEED, $POOL,
# $SERIES, $CONCURRENCY) at $RATE requests/s against the Cardinal of start_logged_cardinal.
seed_load() {
  "$B/cardinal_loadgen" --url="http://127.0.0.1:$PORT/api/v1/write" --mix=seed --fresh-ratio="$FRESH_RATIO" \
    --seed="$SEED" --pool="$POOL" --series-per-request="$SERIES" --concurrency="$CONCURRENCY" --rate="$RATE" "$@"
}
