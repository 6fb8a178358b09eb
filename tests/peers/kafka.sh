#!/usr/bin/env bash
# Fetches the pinned Kafka broker (org.apache.kafka:kafka_2.13 and kafka-tools, with their runtime
# dependencies) from Maven Central through `mvn dependency:copy-dependencies`, once per machine,
# and prints the Kafka home (the only thing written to stdout). Cached outside the repo, keyed by
# version:
#   ${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}/kafka-<version>/libs/*.jar
# There are no shell scripts from Maven: the tests run `java -cp '<home>/libs/*' ...` with the
# main classes kafka.tools.StorageTool (kafka-storage.sh), kafka.Kafka (kafka-server-start.sh)
# and org.apache.kafka.tools.TopicCommand (kafka-topics.sh), in KRaft mode.
# A cached copy fetched with the same pom (sha256 in pom.sha256 beside it) is reused, so a second
# run only prints the path.
set -euo pipefail

# Kafka 4.x is KRaft-only and needs Java 17+ for the broker (Debian 12's default java is 17).
KAFKA_VERSION=4.1.1

here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/kafka/pom.xml"
cache="${CARDINAL_PEER_CACHE:-$HOME/.cache/cardinal-peers}"
home="$cache/kafka-$KAFKA_VERSION"
stamp="$home/pom.sha256"
log() { echo "kafka.sh: $*" >&2; }

sum="$( (cat "$pom"; echo "$KAFKA_VERSION") | sha256sum | cut -d' ' -f1)"
cached() {
  [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && [ -f "$home/libs/kafka_2.13-$KAFKA_VERSION.jar" ]
}
if cached; then
  echo "$home"
  exit 0
fi
for tool in mvn java; do
  command -v "$tool" >/dev/null || { log "$tool is not installed (apt-get install maven)"; exit 1; }
done

mkdir -p "$cache"
exec 9>"$cache/kafka-$KAFKA_VERSION.lock"
flock 9
if cached; then
  echo "$home"
  exit 0
fi

work="$(mktemp -d "$cache/kafka-$KAFKA_VERSION.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
log "fetching kafka_2.13 $KAFKA_VERSION and its runtime dependencies (first run on this machine)"
mvn -B -q -Dstyle.color=never -f "$pom" -Dkafka.version="$KAFKA_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/libs" >&2
# Smoke test: the storage tool runs on this JVM.
java -cp "$work/libs/*" kafka.tools.StorageTool random-uuid >/dev/null
rm -rf "$home"
mkdir -p "$home"
mv "$work/libs" "$home/libs"
echo "$sum" >"$stamp"
log "fetched in $(( $(date +%s) - started ))s: $home ($(ls "$home/libs" | wc -l) jars)"
echo "$home"
