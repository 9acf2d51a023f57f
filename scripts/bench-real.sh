#!/usr/bin/env bash
# usagestream against a real broker (issue 20): starts the real-Kafka lane's
# Apache Kafka broker and Apicurio Registry (scripts/realkafka.sh, cached
# under .cache/realkafka), generates ROWS billing rows (default 1,000,000),
# then runs, as a user would, `usagestream ingest` and `usagestream process`
# (every stage, exactly once) against them under a fresh topic prefix, and
# prints per command: rows/s, CPU seconds (user + system), CPU seconds per
# million rows and peak RSS, with the load average before each.
#
#   make bench-real              # or: ROWS=300000 scripts/bench-real.sh
#   KEEP=1 scripts/bench-real.sh # leave the broker running afterwards
#   INSTANCES=3 scripts/bench-real.sh  # three `process` sharing the partitions
#   INSTANCES=3 COMPARE=1 scripts/bench-real.sh
#   PROCESS_ARGS="--instances 3" scripts/bench-real.sh  # flags for every process
#
# `process` is measured from its start to lag 0: its /metrics count every
# billing row read, and `usagestream status` shows every stage's group
# committed with no record left. INSTANCES=N (default 1)
# starts N `process` instances at once, each with its own --state-dir and
# --http-addr and the same topic prefix: they share each stage's consumer
# group and so the partitions. Their CPU seconds are summed, and each one's
# peak RSS is printed. Per run it also counts the broker's retriable
# OutOfOrderSequenceException answers (server.log; docs/capacity.md), the
# Kafka client's OUT_OF_ORDER_SEQUENCE_NUMBER lines (`--kafka-log-level
# info`: franz-go logs only the answers it cannot recover from, failing the
# producer id; those it drops and resends are the broker's count), the
# transactions aborted on a produce error and the stage restarts.
#
# COMPARE=1 checks the result, not only the speed: the same file is ingested
# under a second prefix and one `process` instance runs over it first (the
# reference, measured too); then every event topic of both runs is read with
# `usagestream tail` and compared by scripts/bench-compare.py (no event id
# twice, the same events from the input, the same last state per subject).
# A mismatch exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
PARTITIONS=${PARTITIONS:-6}
INSTANCES=${INSTANCES:-1}
COMPARE=${COMPARE:-}
case $INSTANCES in ''|*[!0-9]*|0) echo "bench-real: INSTANCES must be a number of instances, 1 or more (got '$INSTANCES')" >&2; exit 2 ;; esac
[ -z "$COMPARE" ] || python3 scripts/bench-compare.py --self-test
work=.cache/bench-real
rm -rf "$work" && mkdir -p "$work"
load() { echo "   (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }
say() { echo "bench-real: $*" >&2; }

go build -o "$work/usagestream" ./cmd/usagestream
bin="$work/usagestream"

KAFKA_PORT=${KAFKA_PORT:-auto} CONTROLLER_PORT=${CONTROLLER_PORT:-auto} SASL_PORT=${SASL_PORT:-auto} REGISTRY_PORT=${REGISTRY_PORT:-auto} \
  scripts/realkafka.sh start >/dev/null
# On any exit, the `process` instances still running are stopped (their
# GNU time parents' children), then the broker unless KEEP is set.
cleanup() {
  local f
  for f in "$work"/*/pid*; do
    [ -e "$f" ] && pkill -INT -P "$(cat "$f")" 2>/dev/null || true
  done
  wait || true
  [ -n "${KEEP:-}" ] || scripts/realkafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
set -a
. .cache/realkafka/run/env
set +a
stamp=$(date +%s)
prefix="bench$stamp."
ref_prefix="bench${stamp}ref."
serverlog=.cache/realkafka/run/logs/server.log

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# topics PREFIX: the topics and schemas, as an operator creates them: `run
# --no-process` against the brokers, stopped once ready.
topics() {
  local hp rpid
  hp=$(free_port)
  USAGESTREAM_TOPIC_PREFIX=$1 "$bin" run --no-process --partitions "$PARTITIONS" --http-addr "127.0.0.1:$hp" >"$work/run.log" 2>&1 &
  rpid=$!
  for _ in $(seq 150); do curl -fs "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$hp/readyz" >/dev/null || { cat "$work/run.log" >&2; say "run --no-process did not get ready"; exit 1; }
  kill -INT "$rpid"; wait "$rpid" || true
}

echo "== generating $ROWS billing rows"
"$bin" gen -o "$work/in" --service-points $((ROWS / 12)) --months 12 --seed 1 --now 20250315 >/dev/null
file=$(ls "$work"/in/*.gz)
rows=$(( $(gzip -dc "$file" | wc -l) - 1 ))

# report NAME ROWS SECONDS TIMEFILE: one line of figures from /usr/bin/time -v.
report() {
  python3 - "$@" <<'PY'
import re, sys
name, rows, secs, tf = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
t = open(tf).read()
get = lambda k: float(re.search(re.escape(k) + r":\s*([0-9.]+)", t).group(1))
cpu = get("User time (seconds)") + get("System time (seconds)")
rss = get("Maximum resident set size (kbytes)") / 1024
print(f"{name}: rows={rows} seconds={secs:.1f} rows_per_s={rows/secs:,.0f} cpu_s={cpu:.1f} "
      f"cpu_s_per_million={cpu/rows*1e6:.1f} peak_rss_mib={rss:.0f}")
PY
}

# ingest PREFIX: the file into PREFIX's billing.v1, measured.
ingest() {
  local start end
  topics "$1"
  echo "== ingest into ${1}billing.v1 ($PARTITIONS partitions)"; load
  start=$(date +%s.%N)
  USAGESTREAM_TOPIC_PREFIX=$1 /usr/bin/time -v "$bin" ingest --progress never "$file" >"$work/ingest.out" 2>"$work/ingest.time" ||
    { cat "$work/ingest.out" "$work/ingest.time" >&2; say "ingest failed"; exit 1; }
  end=$(date +%s.%N)
  report ingest "$rows" "$(echo "$end - $start" | bc)" "$work/ingest.time"
}

# caught_up DIR PREFIX N: the stages that read billing.v1 read it all
# (summed over the instances' /metrics: a transaction aborted by a rebalance
# is read again, so at least all), and then, from the broker, every stage's
# group has committed offsets and no record left after them (`usagestream
# status`: it counts the records, not the offsets, which also hold the
# transactions' commit markers).
caught_up() {
  local d=$1 i
  for i in $(seq "$3"); do
    curl -fs --max-time 2 "http://127.0.0.1:$(cat "$d/port$i")/metrics" >"$d/metrics$i" || return 1
  done
  python3 - "$d" "$3" "$rows" <<'PY' || return 1
import re, sys
d, n, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
billing = {}
for i in range(1, n + 1):
    m = open(f"{d}/metrics{i}").read()
    for p, v in re.findall(r'^usagestream_processor_records_in_total\{processor="([^"]+)",topic="[^"]*billing\.v1"\} (\S+)$', m, re.M):
        billing[p] = billing.get(p, 0) + float(v)
sys.exit(0 if billing.get("servicepoint", 0) >= rows and billing.get("interval", 0) >= rows else 1)
PY
  USAGESTREAM_TOPIC_PREFIX=$2 "$bin" status --json >"$d/status.json" 2>/dev/null || return 1
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["stages"]; sys.exit(0 if len(s) == 4 and all(x["started"] and x["lag"] == 0 and x["lag_exact"] for x in s) else 1)' "$d/status.json"
}

# broker_cpu: the Kafka JVM's CPU time so far, in clock ticks (user +
# system): what the broker spends on a command is as much a part of its
# cost on a shared machine as the command's own CPU.
broker_cpu() { awk '{print $14 + $15}' "/proc/$(cat .cache/realkafka/run/kafka.pid)/stat"; }

# process PREFIX N NAME: N `process` instances over PREFIX's topics, from
# their start to lag 0; prints the figures.
process() {
  local pfx=$1 n=$2 name=$3 d="$work/$3" i start done_at ooo0 ooo1
  mkdir -p "$d"
  echo "== $name: every stage, exactly once, $n instance(s) of process, from the start to lag 0"; load
  ooo0=$(grep -c OutOfOrderSequenceException "$serverlog" || true)
  bcpu0=$(broker_cpu)
  start=$(date +%s.%N)
  for i in $(seq "$n"); do
    free_port >"$d/port$i"
    # shellcheck disable=SC2086 # PROCESS_ARGS is a list of flags
    USAGESTREAM_TOPIC_PREFIX=$pfx /usr/bin/time -v "$bin" process --state-dir "$d/state$i" --http-addr "127.0.0.1:$(cat "$d/port$i")" \
      --kafka-log-level info ${PROCESS_ARGS:-} 2>"$d/process$i.time" >"$d/process$i.log" &
    echo $! >"$d/pid$i"
  done
  done_at=""
  for _ in $(seq 7200); do
    for i in $(seq "$n"); do
      kill -0 "$(cat "$d/pid$i")" 2>/dev/null || { tail -n 30 "$d/process$i.log" "$d/process$i.time" >&2; say "process $i exited"; exit 1; }
    done
    if caught_up "$d" "$pfx" "$n"; then done_at=$(date +%s.%N); break; fi
    sleep 0.5
  done
  [ -n "$done_at" ] || { say "process did not reach lag 0 within an hour"; exit 1; }
  ooo1=$(grep -c OutOfOrderSequenceException "$serverlog" || true)
  echo "   broker (Kafka JVM) CPU seconds meanwhile: $(echo "scale=1; ($(broker_cpu) - $bcpu0) / $(getconf CLK_TCK)" | bc)"
  # Where each stage's time went, summed over the instances: transactions,
  # and seconds processing polls against seconds committing them (waiting
  # for the broker); what each instance read; what the retriable
  # out-of-order answers cost.
  for i in $(seq "$n"); do
    curl -fs --max-time 2 "http://127.0.0.1:$(cat "$d/port$i")/metrics" >"$d/metrics$i" || true
  done
  python3 - "$d" "$n" "$((ooo1 - ooo0))" <<'PY'
import glob, json, re, sys
d, n, broker_ooo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def per(m, name):
    return {p: float(v) for p, v in re.findall(r'^' + name + r'\{processor="([^"]+)"\} (\S+)$', m, re.M)}
tx, ps, cs = {}, {}, {}
aborts = restarts = client_ooo = 0
for i in range(1, n + 1):
    m = open(f"{d}/metrics{i}").read()
    for acc, name in ((tx, "usagestream_processor_transactions_committed_total"), (ps, "usagestream_processor_process_seconds_sum"),
                      (cs, "usagestream_processor_commit_seconds_sum")):
        for st, v in per(m, name).items():
            acc[st] = acc.get(st, 0) + v
    aborts += sum(float(v) for v in re.findall(r'^usagestream_processor_transactions_aborted_total\{processor="[^"]+",reason="produce_error"\} (\S+)$', m, re.M))
    restarts += sum(per(m, "usagestream_processor_restarts_total").values())
    read = sum(float(v) for v in re.findall(r'^usagestream_processor_records_in_total\{processor="servicepoint",topic="[^"]*billing.v1"\} (\S+)$', m, re.M))
    client_ooo += sum(1 for line in open(f"{d}/process{i}.log") if "OUT_OF_ORDER_SEQUENCE_NUMBER" in line)
    if n > 1:
        print(f"   instance {i}: servicepoint read {read:.0f} billing rows")
for st in sorted(tx):
    print(f"   stage {st}: {tx[st]:.0f} transactions, {ps.get(st, 0):.1f} s processing, {cs.get(st, 0):.1f} s committing")
print(f"   out of order: broker OutOfOrderSequenceException {broker_ooo}, client OUT_OF_ORDER_SEQUENCE_NUMBER lines {client_ooo}, "
      f"transactions aborted on a produce error {aborts:.0f}, stage restarts {restarts:.0f}")
PY
  # GNU time ignores SIGINT: stop its child, usagestream.
  for i in $(seq "$n"); do pkill -INT -P "$(cat "$d/pid$i")" || true; done
  for i in $(seq "$n"); do wait "$(cat "$d/pid$i")" || true; rm -f "$d/pid$i"; done
  # The time runs to the status that saw lag 0 (it takes about 0.7 s, and
  # the checks are 0.5 s apart).
  python3 - "$name" "$rows" "$(echo "$done_at - $start" | bc)" "$d" "$n" <<'PY'
import re, sys
name, rows, secs, d, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
cpu, rss = 0.0, []
for i in range(1, n + 1):
    t = open(f"{d}/process{i}.time").read()
    get = lambda k: float(re.search(re.escape(k) + r":\s*([0-9.]+)", t).group(1))
    cpu += get("User time (seconds)") + get("System time (seconds)")
    rss.append(f"{get('Maximum resident set size (kbytes)') / 1024:.0f}")
print(f"{name}: instances={n} rows={rows} seconds={secs:.1f} rows_per_s={rows/secs:,.0f} cpu_s={cpu:.1f} "
      f"cpu_s_per_million={cpu/rows*1e6:.1f} peak_rss_mib={'/'.join(rss)}")
PY
  # State on disk per instance after the run (Pebble, every stage).
  for i in $(seq "$n"); do echo "   instance $i state: $(du -sk "$d/state$i" | cut -f1) KiB"; done
}

# dump PREFIX DIR: every event topic of PREFIX as `usagestream tail` JSON lines.
dump() {
  local t
  mkdir -p "$2"
  for t in eligibility.v1 account-events.v1 corrections.v1 anomalies.v1; do
    USAGESTREAM_TOPIC_PREFIX=$1 "$bin" tail "$t" >"$2/$t.jsonl" || { say "reading $1$t failed"; exit 1; }
  done
}

if [ -n "$COMPARE" ]; then
  ingest "$ref_prefix"
  process "$ref_prefix" 1 process-reference
fi
ingest "$prefix"
process "$prefix" "$INSTANCES" process
if [ -n "$COMPARE" ]; then
  echo "== comparing the event topics of ${prefix}* ($INSTANCES instances) with ${ref_prefix}* (1 instance)"
  dump "$ref_prefix" "$work/events-reference"
  dump "$prefix" "$work/events"
  python3 scripts/bench-compare.py "$work/events-reference" "$work/events" || { say "the outputs differ from the reference run's"; exit 1; }
fi
