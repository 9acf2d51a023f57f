# Lane: a three-node Apache Kafka KRaft cluster (replication 3, min ISR 2;
# scripts/realkafka-cluster.sh) and broker faults while more than 300,000
# billing rows are ingested and processed (cmd/usagestream/cluster_faults_test.go):
# the leader of billing.v1 partition 0 and the servicepoint stage's
# transaction coordinator are killed with SIGKILL and started again;
# exactly-once is checked end to end against the pure rules.
# Needs Java 17+ and Maven, as lane 60: on CI their absence fails the lane.
cl_missing=
for cl_c in java mvn curl ss; do
  command -v "$cl_c" >/dev/null || cl_missing="$cl_missing $cl_c"
done
if [ -n "$cl_missing" ]; then
  if [ "${CI:-}" = true ]; then
    echo "   cluster lane: missing$cl_missing; CI must test against a real Kafka cluster: install Java 17+, Maven, curl, iproute2" >&2
    return 1
  fi
  echo "   cluster lane skipped: missing$cl_missing (install Java 17+ and Maven; CI fails without them)"
  return 0
fi

cl_cache=$PWD/.cache/cluster-lane
rm -rf "$cl_cache" && mkdir -p "$cl_cache"
cl_t=$SECONDS
cl_step() { echo "   ($1: $((SECONDS - cl_t)) s)"; cl_t=$SECONDS; }

# Lane 60's single broker and registry are done with: their CPU and memory
# go to the cluster (two cores on CI).
scripts/realkafka.sh stop
CLUSTER_KAFKA_PORTS=auto CLUSTER_CONTROLLER_PORTS=auto CLUSTER_REGISTRY_PORT=auto \
  scripts/realkafka-cluster.sh start >"$cl_cache/env"
on_exit 'scripts/realkafka-cluster.sh stop'
cl_step "cluster started"

set +e
USAGESTREAM_TEST_CLUSTER=$cl_cache/env go test -count=1 -v -timeout 15m -run '^TestCluster' ./cmd/usagestream >"$cl_cache/test.log" 2>&1
cl_rc=$?
set -e
scripts/realkafka-cluster.sh stop
if [ "$cl_rc" != 0 ] || grep -q -- '^--- SKIP' "$cl_cache/test.log" || ! grep -q -- '^--- PASS: TestCluster' "$cl_cache/test.log"; then
  cat "$cl_cache/test.log"
  echo "   cluster lane FAILED (broker logs: .cache/realkafka/cluster/node*/logs)" >&2
  return 1
fi
# The kills, the recovery times and the exactly-once summary.
grep -E 'killed|started again|registry|stopped|continued|lost its|ingest done|caught up|first commit after|rows: .* published|^--- PASS' "$cl_cache/test.log" |
  sed 's/^ *cluster_faults_test.go:[0-9]*: /   /; s/^--- /   /'
cl_step "broker faults during ingest and process"
