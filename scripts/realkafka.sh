#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, single node) and a real Apicurio Registry
# (Confluent-compatible API), from Maven Central, on 127.0.0.1. Everything is
# cached under .cache/realkafka (ignored by git); reruns reuse it.
#
#   scripts/realkafka.sh start   # prints the env lines to use them (also in .cache/realkafka/run/env)
#   scripts/realkafka.sh stop
#   scripts/realkafka.sh fetch   # download only
#
# The broker has two client listeners: PLAINTEXT on KAFKA_PORT, and SASL_SSL
# (SCRAM-SHA-512, a broker certificate from a throw-away CA made here) on
# SASL_PORT, with one user whose random password is in run/sasl-password.
#
# Ports: KAFKA_PORT (49092), CONTROLLER_PORT (49093), SASL_PORT (49094),
# REGISTRY_PORT (48081); "auto" picks free ones (the test lane does, so two
# clones can test at once). READY_TIMEOUT (180 s) bounds the wait.
#
# Versions: Kafka 4.1.1 (Java 17). Apicurio 3.0.9: the newest 3.x on Maven
# Central that runs on Java 17 (3.1.x is not published there, and 3.3.x needs
# Java 21); its archive holds apicurio-registry-app-<v>-runner.jar.
#
# scripts/realkafka-cluster.sh sources this file for its functions (fetch,
# free_port, stop_pid, ...): the commands below run only when it is executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD/.cache/realkafka
run=$root/run
m2=${MAVEN_REPO_LOCAL:-$PWD/.cache/m2}
APICURIO_VERSION=${APICURIO_VERSION:-3.0.9}
KAFKA_PORT=${KAFKA_PORT:-49092}
CONTROLLER_PORT=${CONTROLLER_PORT:-49093}
SASL_PORT=${SASL_PORT:-49094}
REGISTRY_PORT=${REGISTRY_PORT:-48081}
READY_TIMEOUT=${READY_TIMEOUT:-180}
SASL_USER=usagestream
# Every JVM started here carries this property, so a later run can tell its
# own leftovers (an aborted run's broker) from anybody else's processes.
marker="-Dusagestream.realkafka=$root"

say() { echo "realkafka: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "$1 is required (Java 17+, Maven, openssl, curl)"; exit 2; }; }

# mvn_quiet shows Maven's output (errors included: -q prints them on stdout)
# only when it fails.
mvn_quiet() {
  local log
  log=$(mktemp)
  if ! mvn -q -B "$@" >"$log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$log" >&2
    rm -f "$log"
    say "Maven failed (above); check that Maven Central is reachable, then rerun"
    exit 1
  fi
  rm -f "$log"
}

fetch() {
  need java; need mvn
  if [ ! -f "$root/libs/.done" ]; then
    say "fetching Apache Kafka from Maven Central into $root/libs"
    rm -rf "$root/libs"
    (cd scripts/realkafka && mvn_quiet -Dmaven.repo.local="$m2" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$root/libs")
    touch "$root/libs/.done"
  fi
  if [ ! -f "$root/apicurio/.done" ]; then
    say "fetching Apicurio Registry $APICURIO_VERSION from Maven Central into $root/apicurio"
    mvn_quiet -Dmaven.repo.local="$m2" dependency:copy \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$root"
    rm -rf "$root/apicurio" && mkdir -p "$root/apicurio"
    tar -xzf "$root/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$root/apicurio"
    rm -f "$root/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
    touch "$root/apicurio/.done"
  fi
}

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# free_port picks a port below the kernel's ephemeral range (where outgoing
# connections would take it between the pick and the bind) that is neither
# listening nor already picked.
picked=" "
free_port() {
  local p lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    case $picked in *" $p "*) continue ;; esac
    port_busy "$p" && continue
    picked="$picked$p "
    port=$p
    return
  done
  say "no free port found below $lo"; exit 1
}

# ours lists the pids of JVMs this checkout started (by the marker property).
ours() {
  local d
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = java ] || continue
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "$marker " && echo "${d#/proc/}"
  done
  return 0
}

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  say "pid $pid ignored SIGTERM for 30 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local pid
  for pid in $(ours); do stop_pid "$pid"; done
  rm -f "$run"/*.pid
}

# tls makes a throw-away CA and a broker certificate for 127.0.0.1/localhost,
# and the broker's PKCS#12 keystore. Remade on every start: nothing trusts it.
tls() {
  local d=$run/tls
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=usagestream throw-away test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/broker.key" -out "$d/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/ext.cnf" -out "$d/broker.pem" 2>/dev/null
  keystore_pass=$(openssl rand -hex 16)
  openssl pkcs12 -export -in "$d/broker.pem" -inkey "$d/broker.key" -certfile "$d/ca.pem" \
    -name broker -passout "pass:$keystore_pass" -out "$d/broker.p12"
  rm -f "$d/ca.key" "$d/broker.key" "$d/broker.csr"
}

start() {
  fetch
  need openssl; need curl; need ss
  # Leftovers of an aborted run (a killed test command) hold the ports.
  stop
  [ "$KAFKA_PORT" = auto ] && free_port && KAFKA_PORT=$port
  [ "$CONTROLLER_PORT" = auto ] && free_port && CONTROLLER_PORT=$port
  [ "$SASL_PORT" = auto ] && free_port && SASL_PORT=$port
  [ "$REGISTRY_PORT" = auto ] && free_port && REGISTRY_PORT=$port
  for p in "$KAFKA_PORT" "$CONTROLLER_PORT" "$SASL_PORT" "$REGISTRY_PORT"; do
    if port_busy "$p"; then
      say "port $p on 127.0.0.1 is taken by another program; set KAFKA_PORT, CONTROLLER_PORT, SASL_PORT, REGISTRY_PORT (or =auto)"
      exit 1
    fi
  done
  rm -rf "$run" && mkdir -p "$run/logs"
  tls
  sasl_password=$(openssl rand -hex 16)
  (umask 077 && printf '%s' "$sasl_password" >"$run/sasl-password")
  (umask 077 && cat >"$run/server.properties") <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_SSL://127.0.0.1:$SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$run/tls/broker.p12
ssl.keystore.password=$keystore_pass
ssl.key.password=$keystore_pass
log.dirs=$run/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
PROPS
  cp="$root/libs/*"
  id=$(java -Xmx256m -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  # The SCRAM user is created with the metadata, before the broker starts.
  java -Xmx256m -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$run/server.properties" --ignore-formatted \
    --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$sasl_password]" >"$run/logs/format.log" 2>&1 || {
    say "formatting the broker's storage failed:"; cat "$run/logs/format.log" >&2; exit 1; }
  java "$marker" -Xms256m -Xmx512m -XX:+UseG1GC -Dkafka.logs.dir="$run/logs" \
    -Dlog4j2.configurationFile="$PWD/scripts/realkafka/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$run/server.properties" >"$run/logs/stdout.log" 2>&1 &
  echo $! >"$run/kafka.pid"
  # exec: the recorded pid is the JVM itself.
  (cd "$root/apicurio" && exec java "$marker" -Xmx512m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -jar "apicurio-registry-app-$APICURIO_VERSION-runner.jar") >"$run/logs/apicurio.log" 2>&1 &
  echo $! >"$run/apicurio.pid"
  local t0=$SECONDS kafka_ok= registry_ok=
  while [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ]; do
    [ -n "$kafka_ok" ] || ! grep -q "Kafka Server started" "$run/logs/server.log" 2>/dev/null || kafka_ok=$((SECONDS - t0))
    [ -n "$registry_ok" ] || [ "$(curl -s --max-time 2 "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects")" != "[]" ] ||
      registry_ok=$((SECONDS - t0))
    if [ -n "$kafka_ok" ] && [ -n "$registry_ok" ]; then
      say "Kafka ready in ${kafka_ok} s, Apicurio in ${registry_ok} s (logs: $run/logs)"
      cat >"$run/env" <<ENV
USAGESTREAM_BROKERS=127.0.0.1:$KAFKA_PORT
USAGESTREAM_REGISTRY=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
REALKAFKA_SASL_BROKERS=127.0.0.1:$SASL_PORT
REALKAFKA_SASL_CA=$run/tls/ca.pem
REALKAFKA_SASL_MECHANISM=SCRAM-SHA-512
REALKAFKA_SASL_USER=$SASL_USER
REALKAFKA_SASL_PASSWORD_FILE=$run/sasl-password
ENV
      cat "$run/env"
      return 0
    fi
    for p in kafka apicurio; do
      kill -0 "$(cat "$run/$p.pid")" 2>/dev/null || { say "$p exited during start-up"; fail_start; }
    done
    sleep 1
  done
  say "not ready after $READY_TIMEOUT s (Kafka: ${kafka_ok:-no}, Apicurio: ${registry_ok:-no})"
  fail_start
}

fail_start() {
  local f
  for f in server.log stdout.log apicurio.log; do
    [ -s "$run/logs/$f" ] || continue
    echo "---- tail of $run/logs/$f" >&2
    tail -n 30 "$run/logs/$f" >&2
  done
  stop
  exit 1
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  fetch) fetch ;;
  *) echo "usage: scripts/realkafka.sh start|stop|fetch" >&2; exit 2 ;;
esac
