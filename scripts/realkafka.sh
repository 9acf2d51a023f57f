#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, single node) and a real Apicurio Registry
# (Confluent-compatible API), from Maven Central, on 127.0.0.1. Everything is
# cached under .cache/realkafka (ignored by git); reruns reuse it.
#
#   scripts/realkafka.sh start   # prints the env lines to use them
#   scripts/realkafka.sh stop
#
# Versions: Kafka 4.1.1 (Java 17). Apicurio 3.0.9: the newest 3.x on Maven
# Central that runs on Java 17 (3.1.x is not published there, and 3.3.x needs
# Java 21); its archive holds apicurio-registry-app-<v>-runner.jar.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.cache/realkafka
m2=$PWD/.cache/m2
APICURIO_VERSION=${APICURIO_VERSION:-3.0.9}
KAFKA_PORT=${KAFKA_PORT:-49092}
CONTROLLER_PORT=${CONTROLLER_PORT:-49093}
REGISTRY_PORT=${REGISTRY_PORT:-48081}

need() { command -v "$1" >/dev/null || { echo "realkafka: $1 is required (Java 17+ and Maven)" >&2; exit 2; }; }

fetch() {
  need java; need mvn
  if [ ! -f "$root/libs/.done" ]; then
    echo "realkafka: fetching Apache Kafka from Maven Central" >&2
    (cd scripts/realkafka && mvn -q -B -Dmaven.repo.local="$m2" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$root/libs") >&2
    touch "$root/libs/.done"
  fi
  if [ ! -f "$root/apicurio/.done" ]; then
    echo "realkafka: fetching Apicurio Registry $APICURIO_VERSION from Maven Central" >&2
    mvn -q -B -Dmaven.repo.local="$m2" dependency:copy \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$root" >&2
    mkdir -p "$root/apicurio"
    tar -xzf "$root/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$root/apicurio"
    touch "$root/apicurio/.done"
  fi
}

start() {
  fetch
  run=$root/run
  rm -rf "$run" && mkdir -p "$run/logs"
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$run/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
PROPS
  cp="$root/libs/*"
  id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$run/server.properties" --ignore-formatted >/dev/null
  java -Xms256m -Xmx512m -XX:+UseG1GC -Dkafka.logs.dir="$run/logs" \
    -Dlog4j2.configurationFile="$PWD/scripts/realkafka/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$run/server.properties" >"$run/logs/stdout.log" 2>&1 &
  echo $! >"$run/kafka.pid"
  # exec: the recorded pid is the JVM itself, so stop can reach it.
  (cd "$root/apicurio" && exec java -Xmx512m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -jar "apicurio-registry-app-$APICURIO_VERSION-runner.jar") >"$run/logs/apicurio.log" 2>&1 &
  echo $! >"$run/apicurio.pid"
  for _ in $(seq 120); do
    grep -q "Kafka Server started" "$run/logs/server.log" 2>/dev/null &&
      [ "$(curl -s --max-time 2 "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects")" = "[]" ] && {
        echo "USAGESTREAM_BROKERS=127.0.0.1:$KAFKA_PORT"
        echo "USAGESTREAM_REGISTRY=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
        return 0
      }
    sleep 1
  done
  echo "realkafka: not ready after 120 s; see $run/logs" >&2
  stop
  return 1
}

stop() {
  for p in kafka apicurio; do
    f=$root/run/$p.pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  fetch) fetch ;;
  *) echo "usage: scripts/realkafka.sh start|stop|fetch" >&2; exit 2 ;;
esac
