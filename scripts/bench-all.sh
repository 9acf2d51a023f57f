#!/usr/bin/env bash
# Every recorded benchmark, one after the other (they share 2 cores): the
# figures in the README come from this script's output.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ingest: 5,000,000 rows to the embedded broker in its own process"
./scripts/bench-ingest.sh | tail -1
echo "== runtime: exactly-once per-service-point processor, restore, latency at 20k/s"
go test -run XXX -bench 'RuntimeEOS|Restore|LatencyAt20k' -benchtime 1x -timeout 20m ./processors/runtime | grep Benchmark
echo "== both stages over 1,000,000 generated rows"
go test -run XXX -bench Pipeline -benchtime 1x -timeout 20m ./processors/pipeline | grep Benchmark
echo "== rules alone (one core)"
go test -run XXX -bench 'Stage' ./processors/rules | grep Benchmark
echo "== file reader"
go test -run XXX -bench 'Reader' ./producers/billing | grep Benchmark
