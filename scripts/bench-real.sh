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
#
# `process` is measured from its start to lag 0: every consumer-lag gauge of
# its /metrics at 0 and no input counted for two seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
PARTITIONS=${PARTITIONS:-6}
work=.cache/bench-real
rm -rf "$work" && mkdir -p "$work"
load() { echo "   (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }
say() { echo "bench-real: $*" >&2; }

go build -o "$work/usagestream" ./cmd/usagestream
bin="$work/usagestream"

KAFKA_PORT=${KAFKA_PORT:-auto} CONTROLLER_PORT=${CONTROLLER_PORT:-auto} SASL_PORT=${SASL_PORT:-auto} REGISTRY_PORT=${REGISTRY_PORT:-auto} \
  scripts/realkafka.sh start >/dev/null
[ -n "${KEEP:-}" ] || trap 'scripts/realkafka.sh stop >/dev/null 2>&1 || true' EXIT
set -a
. .cache/realkafka/run/env
set +a
prefix="bench$(date +%s)."
export USAGESTREAM_TOPIC_PREFIX=$prefix

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The topics and schemas, as an operator creates them: `run --no-process`
# against the brokers, stopped once ready.
hp=$(free_port)
"$bin" run --no-process --partitions "$PARTITIONS" --http-addr "127.0.0.1:$hp" >"$work/run.log" 2>&1 &
rpid=$!
for _ in $(seq 150); do curl -fs "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$hp/readyz" >/dev/null || { cat "$work/run.log" >&2; say "run --no-process did not get ready"; exit 1; }
kill -INT "$rpid"; wait "$rpid" || true

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

echo "== ingest into ${prefix}billing.v1 ($PARTITIONS partitions)"; load
start=$(date +%s.%N)
/usr/bin/time -v "$bin" ingest --progress never "$file" >"$work/ingest.out" 2>"$work/ingest.time" ||
  { cat "$work/ingest.out" "$work/ingest.time" >&2; say "ingest failed"; exit 1; }
end=$(date +%s.%N)
report ingest "$rows" "$(echo "$end - $start" | bc)" "$work/ingest.time"

port=$(free_port)
echo "== process: every stage, exactly once, from the start to lag 0"; load
start=$(date +%s.%N)
/usr/bin/time -v "$bin" process --state-dir "$work/state" --http-addr "127.0.0.1:$port" 2>"$work/process.time" >"$work/process.log" &
ppid=$!
# caught_up: every lag gauge is 0 and the inputs counted did not move since
# the last call (state in $work/last).
caught_up() {
  curl -fs --max-time 2 "http://127.0.0.1:$port/metrics" >"$work/metrics" || return 1
  python3 - "$work/metrics" "$work/last" "$rows" <<'PY'
import os, re, sys
m = open(sys.argv[1]).read()
rows = int(sys.argv[3])
lags = re.findall(r'^usagestream_processor_consumer_lag_records\{[^}]*processor="([^"]+)"[^}]*\} (\S+)$', m, re.M)
ins = re.findall(r'^usagestream_processor_records_in_total\{processor="([^"]+)",topic="([^"]+)"\} (\S+)$', m, re.M)
billing = {p: float(v) for p, t, v in ins if t.endswith("billing.v1")}
total = str(sum(float(v) for _, _, v in ins))
last = open(sys.argv[2]).read() if os.path.exists(sys.argv[2]) else ""
open(sys.argv[2], "w").write(total)
# Every stage read something, the two that read billing.v1 read it all,
# no lag, and nothing read since the last look.
done = ({p for p, _ in lags} == {"servicepoint", "premise", "customer", "interval"}
        and all(float(v) == 0 for _, v in lags)
        and billing.get("servicepoint") == rows and billing.get("interval") == rows and last == total)
sys.exit(0 if done else 1)
PY
}
done_at=""
for _ in $(seq 3600); do
  kill -0 "$ppid" 2>/dev/null || { cat "$work/process.log" "$work/process.time" >&2; say "process exited"; exit 1; }
  if caught_up; then done_at=$(date +%s.%N); break; fi
  sleep 1
done
[ -n "$done_at" ] || { say "process did not reach lag 0 within an hour"; exit 1; }
# Where each stage's time went: transactions, and seconds processing polls
# against seconds committing them (waiting for the broker).
curl -fs --max-time 2 "http://127.0.0.1:$port/metrics" >"$work/metrics" || true
python3 - "$work/metrics" <<'PY'
import re, sys
m = open(sys.argv[1]).read()
def per(name):
    return {p: float(v) for p, v in re.findall(r'^' + name + r'\{processor="([^"]+)"\} (\S+)$', m, re.M)}
tx, ps, cs = per("usagestream_processor_transactions_committed_total"), per("usagestream_processor_process_seconds_sum"), per("usagestream_processor_commit_seconds_sum")
for st in sorted(tx):
    print(f"   stage {st}: {tx[st]:.0f} transactions, {ps.get(st, 0):.1f} s processing, {cs.get(st, 0):.1f} s committing")
PY
# GNU time ignores SIGINT: stop its child, usagestream.
pkill -INT -P "$ppid"; wait "$ppid" || true
# The stability check waited one poll (1 s) after lag 0.
report process "$rows" "$(echo "$done_at - $start - 1" | bc)" "$work/process.time"
