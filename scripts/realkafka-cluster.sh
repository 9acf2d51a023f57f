#!/usr/bin/env bash
# A three-node Apache Kafka KRaft cluster (each node broker and controller,
# static voters) and an Apicurio Registry on 127.0.0.1, for fault tests: the
# jars are those of scripts/realkafka.sh (fetched from Maven Central into
# .cache/realkafka), the cluster lives under .cache/realkafka/cluster.
#
#   scripts/realkafka-cluster.sh start            # prints the env lines (also in .cache/realkafka/cluster/env)
#   scripts/realkafka-cluster.sh stop
#   scripts/realkafka-cluster.sh broker-kill N    # kill -9 node N (1..3)
#   scripts/realkafka-cluster.sh broker-start N   # start node N again; it rejoins with its data
#   scripts/realkafka-cluster.sh broker-leader TOPIC PARTITION   # node id of the leader
#   scripts/realkafka-cluster.sh txn-coordinator TRANSACTIONAL_ID # node id of its coordinator
#   scripts/realkafka-cluster.sh registry-stop    # SIGTERM to the registry
#   scripts/realkafka-cluster.sh registry-start   # same port; schemas kept (H2 file)
#
# Replication 3 with min.insync.replicas 2 everywhere (topics, consumer
# offsets, transaction state): one node may be down and every acks=all write
# and every transaction still goes through; two down and writes wait.
# Timeouts are shortened so a dead node is fenced and its partitions move
# within seconds (see the properties below).
#
# Ports: CLUSTER_KAFKA_PORTS (49192,49193,49194), CLUSTER_CONTROLLER_PORTS
# (49195,49196,49197), CLUSTER_REGISTRY_PORT (48082); "auto" picks free ones.
# Restarting a node keeps its ports. CLUSTER_HEAP (-Xms128m -Xmx384m) is each
# node's heap; READY_TIMEOUT (180 s) bounds every wait.
set -euo pipefail
# shellcheck source=realkafka.sh
. "$(dirname "$0")/realkafka.sh"
croot=$root/cluster
CLUSTER_KAFKA_PORTS=${CLUSTER_KAFKA_PORTS:-49192,49193,49194}
CLUSTER_CONTROLLER_PORTS=${CLUSTER_CONTROLLER_PORTS:-49195,49196,49197}
CLUSTER_REGISTRY_PORT=${CLUSTER_REGISTRY_PORT:-48082}
CLUSTER_HEAP=${CLUSTER_HEAP:--Xms128m -Xmx384m}
# Not the single node's marker: realkafka.sh stop leaves the cluster alone,
# and the other way round; `pgrep -f usagestream.realkafka` finds both.
cmarker="-Dusagestream.realkafka.cluster=$croot"

# ports_of expands a port list ("auto" or "p1,p2,p3") into three ports, in
# the array ports (not in a subshell: free_port remembers what it picked).
ports_of() {
  local spec=$1 p
  ports=()
  if [ "$spec" = auto ]; then
    for _ in 1 2 3; do free_port; ports+=("$port"); done
  else
    IFS=, read -r -a ports <<<"$spec"
    [ "${#ports[@]}" = 3 ] || { say "want three ports or auto, got $spec"; exit 2; }
  fi
  for p in "${ports[@]}"; do
    if port_busy "$p"; then
      say "port $p on 127.0.0.1 is taken by another program; set CLUSTER_KAFKA_PORTS, CLUSTER_CONTROLLER_PORTS, CLUSTER_REGISTRY_PORT (or =auto)"
      exit 1
    fi
  done
}

# cluster_pids lists the pids of the JVMs of this cluster (by the marker).
cluster_pids() {
  local d
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = java ] || continue
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "$cmarker " && echo "${d#/proc/}"
  done
  return 0
}

# pid_of prints the live pid recorded for name (node1..3, registry), only
# when that process is still the JVM this script started (pids are reused).
pid_of() {
  local f=$croot/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$cmarker " || return 1
  echo "$pid"
}

node_arg() {
  case "${1:-}" in 1 | 2 | 3) ;; *) say "node is 1, 2 or 3, not '${1:-}'"; exit 2 ;; esac
}

# cluster_stop sends SIGTERM to every node at once: one by one, the last
# node's controlled shutdown waits for a controller quorum that is gone.
# What is left after 20 s is killed (the data is thrown away at the next
# start anyway).
cluster_stop() {
  local pids pid
  pids=$(cluster_pids)
  [ -n "$pids" ] || { rm -f "$croot"/*.pid; return 0; }
  # shellcheck disable=SC2086 # a list of pids
  kill $pids 2>/dev/null || true
  for _ in $(seq 40); do
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && break; pid=; done
    [ -z "$pid" ] && break
    sleep 0.5
  done
  for pid in $pids; do
    kill -0 "$pid" 2>/dev/null && { say "pid $pid still running 20 s after SIGTERM; killing it"; kill -9 "$pid" 2>/dev/null || true; }
  done
  rm -f "$croot"/*.pid
}

# wait_started waits until node n's log shows a start after line from.
wait_started() {
  local n=$1 from=$2 t0=$SECONDS log=$croot/node$1/logs/server.log pid
  while [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ]; do
    tail -n +"$((from + 1))" "$log" 2>/dev/null | grep -q "Kafka Server started" && return 0
    if ! pid=$(pid_of "node$n"); then
      say "node $n exited during start-up; tail of $log:"
      tail -n 30 "$log" >&2 || true
      tail -n 30 "$croot/node$n/logs/stdout.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  say "node $n not started after $READY_TIMEOUT s (log: $log)"
  return 1
}

log_lines() { wc -l <"$croot/node$1/logs/server.log" 2>/dev/null || echo 0; }

launch_node() {
  local n=$1
  mkdir -p "$croot/node$n/logs"
  # shellcheck disable=SC2086 # CLUSTER_HEAP is a list of JVM options
  java "$cmarker" "-Dusagestream.realkafka.node=$n" $CLUSTER_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dkafka.logs.dir="$croot/node$n/logs" -Dlog4j2.configurationFile="$PWD/scripts/realkafka/log4j2.properties" \
    -cp "$root/libs/*" kafka.Kafka "$croot/node$n/server.properties" >>"$croot/node$n/logs/stdout.log" 2>&1 &
  echo $! >"$croot/node$n.pid"
}

launch_registry() {
  local port
  port=$(sed -n 's/^CLUSTER_REGISTRY_PORT=//p' "$croot/ports")
  # Schemas in an H2 file, not in memory: a registry restarted after an
  # outage answers for the ids the topics already carry. exec: the recorded
  # pid is the JVM itself.
  (cd "$root/apicurio" && exec java "$cmarker" -Xmx384m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$croot/registry/db" \
    -jar "apicurio-registry-app-$APICURIO_VERSION-runner.jar") >>"$croot/registry/apicurio.log" 2>&1 &
  echo $! >"$croot/registry.pid"
}

wait_registry() {
  local port t0=$SECONDS
  port=$(sed -n 's/^CLUSTER_REGISTRY_PORT=//p' "$croot/ports")
  while [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ]; do
    curl -sf --max-time 2 "http://127.0.0.1:$port/apis/ccompat/v7/subjects" >/dev/null && return 0
    pid_of registry >/dev/null || { say "the registry exited during start-up:"; tail -n 30 "$croot/registry/apicurio.log" >&2; return 1; }
    sleep 0.5
  done
  say "the registry did not answer in $READY_TIMEOUT s (log: $croot/registry/apicurio.log)"
  return 1
}

cluster_start() {
  fetch
  need curl; need ss
  # Leftovers of an aborted run (a killed test command) hold the ports.
  cluster_stop
  local kports cports rport n t0=$SECONDS voters id
  ports_of "$CLUSTER_KAFKA_PORTS" && kports=("${ports[@]}")
  ports_of "$CLUSTER_CONTROLLER_PORTS" && cports=("${ports[@]}")
  if [ "$CLUSTER_REGISTRY_PORT" = auto ]; then free_port; rport=$port; else rport=$CLUSTER_REGISTRY_PORT; fi
  if port_busy "$rport"; then say "registry port $rport is taken; set CLUSTER_REGISTRY_PORT (or =auto)"; exit 1; fi
  rm -rf "$croot" && mkdir -p "$croot/registry"
  printf 'CLUSTER_KAFKA_PORTS=%s\nCLUSTER_CONTROLLER_PORTS=%s\nCLUSTER_REGISTRY_PORT=%s\n' \
    "${kports[*]}" "${cports[*]}" "$rport" >"$croot/ports"
  voters="1@127.0.0.1:${cports[0]},2@127.0.0.1:${cports[1]},3@127.0.0.1:${cports[2]}"
  for n in 1 2 3; do
    mkdir -p "$croot/node$n/logs"
    cat >"$croot/node$n/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${kports[n - 1]},CONTROLLER://127.0.0.1:${cports[n - 1]}
advertised.listeners=PLAINTEXT://127.0.0.1:${kports[n - 1]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$croot/node$n/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
# A dead node is fenced after 4 s without a heartbeat (default 9 s), and a
# follower that stopped fetching leaves the ISR after 5 s (default 30 s).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
replica.lag.time.max.ms=5000
controller.quorum.election.timeout.ms=1000
controller.quorum.fetch.timeout.ms=2000
# Aborts a dead producer's transaction soon after its timeout.
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
group.initial.rebalance.delay.ms=0
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
PROPS
  done
  id=$(java -Xmx256m -cp "$root/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  for n in 1 2 3; do
    java -Xmx256m -cp "$root/libs/*" kafka.tools.StorageTool format -t "$id" -c "$croot/node$n/server.properties" \
      --ignore-formatted >"$croot/node$n/logs/format.log" 2>&1 || {
      say "formatting node $n failed:"; cat "$croot/node$n/logs/format.log" >&2; cluster_stop; exit 1; }
  done
  for n in 1 2 3; do launch_node "$n"; done
  launch_registry
  for n in 1 2 3; do wait_started "$n" 0 || { cluster_stop; exit 1; }; done
  wait_registry || { cluster_stop; exit 1; }
  say "three nodes and Apicurio ready in $((SECONDS - t0)) s (logs: $croot/node*/logs, $croot/registry)"
  cat >"$croot/env" <<ENV
USAGESTREAM_BROKERS=127.0.0.1:${kports[0]},127.0.0.1:${kports[1]},127.0.0.1:${kports[2]}
USAGESTREAM_REGISTRY=http://127.0.0.1:$rport/apis/ccompat/v7
REALKAFKA_CLUSTER=$PWD/scripts/realkafka-cluster.sh
REALKAFKA_CLUSTER_DIR=$croot
ENV
  cat "$croot/env"
}

broker_kill() {
  local n=$1 pid
  node_arg "$n"
  pid=$(pid_of "node$n") || { say "node $n is not running"; exit 1; }
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$croot/node$n.pid"
  say "node $n (pid $pid) killed with SIGKILL"
}

broker_start() {
  local n=$1 from t0=$SECONDS
  node_arg "$n"
  [ -f "$croot/node$n/server.properties" ] || { say "no cluster here: run $0 start first"; exit 1; }
  pid_of "node$n" >/dev/null && { say "node $n is running already"; exit 1; }
  from=$(log_lines "$n")
  launch_node "$n"
  wait_started "$n" "$from" || exit 1
  say "node $n started again in $((SECONDS - t0)) s"
}

bootstrap() {
  [ -f "$croot/env" ] || { say "no cluster here: run $0 start first"; exit 1; }
  sed -n 's/^USAGESTREAM_BROKERS=//p' "$croot/env"
}

info() {
  java -Xmx128m -cp "$root/libs/*" scripts/realkafka/ClusterInfo.java "$(bootstrap)" "$@"
}

usage() {
  echo "usage: scripts/realkafka-cluster.sh start|stop|broker-kill N|broker-start N|broker-leader TOPIC PARTITION|txn-coordinator ID|registry-stop|registry-start" >&2
  exit 2
}

case "${1:-}" in
  start) cluster_start ;;
  stop) cluster_stop ;;
  broker-kill) broker_kill "${2:-}" ;;
  broker-start) broker_start "${2:-}" ;;
  broker-leader) [ $# = 3 ] || usage; info leader "$2" "$3" ;;
  txn-coordinator) [ $# = 2 ] || usage; info txn-coordinator "$2" ;;
  registry-stop)
    pid=$(pid_of registry) || { say "the registry is not running"; exit 1; }
    stop_pid "$pid"; rm -f "$croot/registry.pid"; say "registry stopped" ;;
  registry-start)
    [ -f "$croot/ports" ] || { say "no cluster here: run $0 start first"; exit 1; }
    pid_of registry >/dev/null && { say "the registry is running already"; exit 1; }
    t0=$SECONDS; launch_registry; wait_registry || exit 1; say "registry started again in $((SECONDS - t0)) s" ;;
  *) usage ;;
esac
