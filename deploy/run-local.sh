#!/usr/bin/env bash
# `make run`: Cardinal in front of a local Prometheus started from Debian's
# package (own data dir under build/run, remote-write receiver on, a free
# port), with the default rules. UPSTREAM=<url> fronts an existing receiver
# instead. CARDINAL_PORT picks Cardinal's port (default 9192, else a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=build/run
mkdir -p "$RUN_DIR"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
    port_free "$p" && { echo "$p"; return; }
  done
  echo "no free port found" >&2; exit 1
}
wait_ready() {  # url, name, pid
  for _ in $(seq 1 100); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || { echo "$2 exited; see its log" >&2; return 1; }
    sleep 0.1
  done
  echo "$2 did not become ready" >&2; return 1
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

CARDINAL_PORT=${CARDINAL_PORT:-9192}
port_free "$CARDINAL_PORT" || CARDINAL_PORT=$(free_port)

if [ -n "${UPSTREAM:-}" ]; then
  upstream_url=$UPSTREAM
  prom_note="fronting $UPSTREAM"
else
  PROM_PORT=$(free_port)
  cat > "$RUN_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: cardinal
    static_configs:
      - targets: ['127.0.0.1:${CARDINAL_PORT}']
YAML
  prometheus --config.file="$RUN_DIR/prometheus.yml" --storage.tsdb.path="$RUN_DIR/prometheus-data" \
    --web.listen-address="127.0.0.1:${PROM_PORT}" --web.enable-remote-write-receiver \
    --enable-feature=native-histograms,exemplar-storage >"$RUN_DIR/prometheus.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:${PROM_PORT}/-/ready" prometheus "${pids[-1]}" || { tail -20 "$RUN_DIR/prometheus.log"; exit 1; }
  upstream_url="http://127.0.0.1:${PROM_PORT}/api/v1/write"
  prom_note="Prometheus UI:  http://127.0.0.1:${PROM_PORT}  (log: $RUN_DIR/prometheus.log, data: $RUN_DIR/prometheus-data)"
fi

./build/cardinal --web.listen-address="0.0.0.0:${CARDINAL_PORT}" --upstream.url="$upstream_url" \
  --rules.file=rules/default.yaml --storage.path="$RUN_DIR/cardinal-data" 2> >(tee "$RUN_DIR/cardinal.log" >&2) &
pids+=($!)
wait_ready "http://127.0.0.1:${CARDINAL_PORT}/-/ready" cardinal "${pids[-1]}"

cat <<MSG

  Cardinal is running.
  Point remote-write senders at:  http://$(hostname -I 2>/dev/null | awk '{print $1}' || echo 127.0.0.1):${CARDINAL_PORT}/api/v1/write
                        (local:)  http://127.0.0.1:${CARDINAL_PORT}/api/v1/write
  Cardinal metrics:  http://127.0.0.1:${CARDINAL_PORT}/metrics
  ${prom_note}

  Prometheus agent:  remote_write: [{url: http://127.0.0.1:${CARDINAL_PORT}/api/v1/write}]
  vmagent:           -remoteWrite.url=http://127.0.0.1:${CARDINAL_PORT}/api/v1/write
  Collector:         exporters: {prometheusremotewrite: {endpoint: http://127.0.0.1:${CARDINAL_PORT}/api/v1/write}}

  Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
