#!/usr/bin/env bash
# Every recorded benchmark, one after the other (they share 2 cores): the
# figures in the README come from this script's output. The load average is
# printed before each, since other work on the machine moves the rates.
set -euo pipefail
cd "$(dirname "$0")/.."
load() { echo "   (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }
echo "== ingest: 5,000,000 rows to the embedded broker in its own process"; load
./scripts/bench-ingest.sh | tail -1
echo "== runtime: exactly-once per-service-point processor, restore, latency at 20k/s"; load
go test -run XXX -bench 'RuntimeEOS|Restore|LatencyAt20k' -benchtime 1x -timeout 20m ./processors/runtime | grep Benchmark
echo "== billing stages, then every stage, over 1,000,000 generated rows"; load
go test -run XXX -bench 'Pipeline$' -benchtime 1x -timeout 20m ./processors/pipeline | grep Benchmark
echo "== rules alone (one core) and the state codec"; load
go test -run XXX -bench 'Stage|StateCodec' ./processors/rules | grep Benchmark
echo "== file readers"; load
go test -run XXX -bench 'Reader' ./producers/billing ./producers/interval | grep Benchmark
echo "== validate: core over 300,000 rows, memory / Pebble"; load
go test -run XXX -bench 'Validate$' -benchtime 3x ./processors/validate | grep Benchmark
echo "== intervals: ingest and the interval stage over 960,000 reads"; load
go test -run XXX -bench IngestInterval -benchtime 1x ./producers/ingest | grep Benchmark
go test -run XXX -bench IntervalStage -benchtime 1x ./processors/pipeline | grep Benchmark
echo "== query API"; load
go test -run XXX -bench ServicePointLocal ./processors/query | grep Benchmark
echo "== PostgreSQL sink (starts a private PostgreSQL as the test lane does)"; load
bash -c '. scripts/test.d/20-postgres.sh &&
  go test -run XXX -bench "PostgresSink$" -benchtime 1x -timeout 40m ./sinks/postgres &&
  go test -run XXX -bench PostgresWrite -benchtime 40x ./sinks/postgres' | grep Benchmark
