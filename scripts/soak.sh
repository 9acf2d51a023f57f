#!/usr/bin/env bash
# The soak of issue 14, not part of `make test`: a three-node KRaft cluster
# (scripts/realkafka-cluster.sh, auto ports), two `usagestream process`
# instances over more than 1,000,000 generated billing rows, 100 SIGKILLs of
# either instance at random moments and 5 broker kills
# (cmd/usagestream/soak_test.go, TestSoakKillsKeepExactlyOnce). It prints
# the duplicates and losses found (none when it passes) and the recovery
# times; the full log stays in .cache/soak/test.log.
#
#   scripts/soak.sh                      # or: make soak
#   SOAK_SERVICE_POINTS=25000 SOAK_MIN_ROWS=300000 SOAK_KILLS=20 SOAK_BROKER_KILLS=2 scripts/soak.sh   # a short one
#   SOAK_SEED=N                          # the same kill moments again
#
# Needs Java 17+ and Maven (as scripts/realkafka.sh). About 15 to 30 minutes
# on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/.cache/soak
rm -rf "$dir" && mkdir -p "$dir"
t0=$SECONDS
CLUSTER_KAFKA_PORTS=${CLUSTER_KAFKA_PORTS:-auto} CLUSTER_CONTROLLER_PORTS=${CLUSTER_CONTROLLER_PORTS:-auto} \
  CLUSTER_REGISTRY_PORT=${CLUSTER_REGISTRY_PORT:-auto} scripts/realkafka-cluster.sh start >"$dir/env"
trap 'scripts/realkafka-cluster.sh stop' EXIT
echo "soak: cluster started in $((SECONDS - t0)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
set +e
USAGESTREAM_SOAK=1 USAGESTREAM_TEST_CLUSTER=$dir/env go test -count=1 -v -timeout 3h -run '^TestSoakKillsKeepExactlyOnce$' ./cmd/usagestream >"$dir/test.log" 2>&1
rc=$?
set -e
grep -E 'soak|broker kill|kills;|last fault|is on Kafka|event id .* times|differ|final eligibility|published|^--- |^(ok|FAIL)' "$dir/test.log" |
  sed 's/^ *[a-z_]*_test.go:[0-9]*: /   /' || true
echo "soak: $((SECONDS - t0)) s in all; load average $(cut -d' ' -f1-3 /proc/loadavg); log: $dir/test.log (process logs next to $dir/env)"
if [ "$rc" != 0 ] || ! grep -q -- '^--- PASS: TestSoak' "$dir/test.log"; then
  echo "soak FAILED" >&2
  exit 1
fi
