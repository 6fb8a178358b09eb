#!/usr/bin/env bash
# Builds tests/peers/otel-sender (an OpenTelemetry Go SDK application that exports the seed's
# metric families over OTLP) once per source version and prints the binary's path (the only
# thing written to stdout). Cached outside the repo, keyed by a hash of its sources:
#   ${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}/otel-sender-<sha256 prefix>/otel-sender
# A second run with unchanged sources only prints the path. Modules come from the Go module
# proxy (go.sum pins them).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
src="$here/otel-sender"
cache="${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}"
log() { echo "otel-sender.sh: $*" >&2; }

key="$(cd "$src" && cat go.mod go.sum $(ls *.go | LC_ALL=C sort) | sha256sum | cut -c1-16)"
dir="$cache/otel-sender-$key"
bin="$dir/otel-sender"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
# Go from the image (/usr/local/go) when it is not on PATH (Debian's golang is too old).
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; }
command -v go >/dev/null || { log "go (1.26 or newer) is not installed"; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/otel-sender.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
started=$(date +%s)
log "building otel-sender ($key)"
mkdir -p "$dir"
(cd "$src" && GOFLAGS="${GOFLAGS:-} -p=${CARDINAL_PEER_BUILD_JOBS:-2} -mod=readonly" \
  nice -n 19 go build -trimpath -ldflags="-s -w" -o "$bin.tmp" .)
mv -f "$bin.tmp" "$bin"
log "built in $(( $(date +%s) - started ))s: $bin"
echo "$bin"
