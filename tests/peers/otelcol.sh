#!/usr/bin/env bash
# Builds the pinned OpenTelemetry Collector distribution (tests/peers/otelcol/builder-config.yaml)
# with the collector builder of the same release, once per machine, and prints the binary's path
# (the only thing written to stdout). Cached outside the repo, keyed by version:
#   ${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}/otelcol-<version>/otelcol-cardinal
# A cached binary built from the same manifest (sha256 in manifest.sha256 beside it) is reused,
# so a second run only prints the path. The first build fetches modules through the Go module
# proxy and compiles a few hundred packages: about 10-20 min on 2 cores, run niced.
#   CARDINAL_PEER_BUILD_JOBS  parallel compile jobs (go build -p), default 2
set -euo pipefail

OTELCOL_VERSION=0.160.0

here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/otelcol/builder-config.yaml"
cache="${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}"
dir="$cache/otelcol-$OTELCOL_VERSION"
bin="$dir/otelcol-cardinal"
stamp="$dir/manifest.sha256"
log() { echo "otelcol.sh: $*" >&2; }

sum="$(sha256sum "$manifest" | cut -d' ' -f1)"
cached() { [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; }
if cached; then
  echo "$bin"
  exit 0
fi

# Every pre-1.0 collector module in the manifest must be at OTELCOL_VERSION: core and contrib
# of different releases do not build together (or worse, build and misbehave).
if stray="$(grep -oE 'v0\.[0-9]+\.[0-9]+' "$manifest" | grep -vx "v$OTELCOL_VERSION")"; then
  log "$manifest names versions other than v$OTELCOL_VERSION: $(echo $stray)"
  exit 1
fi
# Go from the image (/usr/local/go) when it is not on PATH (Debian's golang is too old).
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; }
command -v go >/dev/null || { log "go (1.26 or newer) is not installed"; exit 1; }

mkdir -p "$cache"
# One build at a time per cache (a second caller waits, then finds the binary).
exec 9>"$cache/otelcol-$OTELCOL_VERSION.lock"
flock 9
if cached; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d "$cache/otelcol-$OTELCOL_VERSION.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
export GOFLAGS="${GOFLAGS:-} -p=${CARDINAL_PEER_BUILD_JOBS:-2}"
log "building otelcol-cardinal $OTELCOL_VERSION in $work (first run on this machine; niced)"
GOBIN="$work/bin" nice -n 19 go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" >&2
cp "$manifest" "$work/builder-config.yaml"
(cd "$work" && nice -n 19 ./bin/builder --config builder-config.yaml >&2)
"$work/dist/otelcol-cardinal" --version >&2
mkdir -p "$dir"
mv -f "$work/dist/otelcol-cardinal" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "$sum" >"$stamp"
log "built in $(( $(date +%s) - started ))s: $bin"
echo "$bin"
