#!/usr/bin/env bash
# Builds Prometheus 3 (the `prometheus` server command only) from its source module on the Go
# module proxy, once per machine, and prints the binary's path (the only thing written to
# stdout). Cached outside the repo, keyed by version:
#   ${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}/prometheus-<version>/prometheus
# A second run only prints the path.
#
# How: `go mod download` fetches github.com/prometheus/prometheus@v0.<3xx>.<patch> (Prometheus
# 3.x.y is published as Go module version v0.3xx.y); the module is copied into a scratch
# directory and built there as the main module, so its own go.mod (with its replace directive)
# and go.sum pin every dependency (`go install pkg@version` refuses modules with replace
# directives). Built with `-tags remove_all_sd`: static and file service discovery only, no
# cloud SDKs, which is all the tests use and keeps the build small. Without the
# `builtinassets` tag the web UI is not embedded: the HTTP API, /-/ready and the remote-write
# receiver work, the UI pages do not (the tests need none).
#   CARDINAL_PEER_BUILD_JOBS  parallel compile jobs (go build -p), default 2
set -euo pipefail

PROMETHEUS_VERSION=3.14.0

here="$(cd "$(dirname "$0")" && pwd)"
cache="${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}"
dir="$cache/prometheus-$PROMETHEUS_VERSION"
bin="$dir/prometheus"
log() { echo "prometheus3.sh: $*" >&2; }

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
# Go from the image (/usr/local/go) when it is not on PATH (Debian's golang is too old).
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; }
command -v go >/dev/null || { log "go (1.25 or newer) is not installed"; exit 1; }

mkdir -p "$cache"
# One build at a time per cache (a second caller waits, then finds the binary).
exec 9>"$cache/prometheus-$PROMETHEUS_VERSION.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

major=${PROMETHEUS_VERSION%%.*}
rest=${PROMETHEUS_VERSION#*.}
minor=${rest%%.*}
patch=${rest#*.}
module_version="v0.$((major * 100 + minor)).$patch"

work="$(mktemp -d "$cache/prometheus-$PROMETHEUS_VERSION.build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
started=$(date +%s)
log "building prometheus $PROMETHEUS_VERSION ($module_version) in $work (first run on this machine; niced)"
src="$(cd "$work" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "github.com/prometheus/prometheus@$module_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$src" ] || { log "go mod download did not produce the module source"; exit 1; }
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
ldflags="-s -w"
for kv in "Version=$PROMETHEUS_VERSION" "Revision=module-$module_version" "Branch=cardinal-peer" \
          "BuildUser=cardinal" "BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"; do
  ldflags="$ldflags -X github.com/prometheus/common/version.$kv"
done
# The module's go.work lists sibling modules that are not part of the module zip: off.
(cd "$work/src" && GOWORK=off GOFLAGS="-mod=readonly -p=${CARDINAL_PEER_BUILD_JOBS:-2}" \
  nice -n 19 go build -trimpath -tags remove_all_sd -ldflags="$ldflags" -o "$work/prometheus" ./cmd/prometheus >&2)
"$work/prometheus" --version >&2
mkdir -p "$dir"
mv -f "$work/prometheus" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
log "built in $(( $(date +%s) - started ))s: $bin"
echo "$bin"
