# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: demo test build bench bench-ingest bench-real lint soak

demo:
	$(GO) run ./cmd/usagestream demo

build:
	$(GO) build -buildvcs=true -o bin/usagestream ./cmd/usagestream

# Everything CI runs: formatting, vet, and every test.
test:
	./scripts/test.sh

# The soak of issue 14 (not in `make test`): two processors on a three-node
# cluster, over a million rows, 100 processor kills and 5 broker kills.
soak:
	./scripts/soak.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Ingest benchmark (issue 2): 5 million rows to the embedded broker.
bench-ingest:
	./scripts/bench-ingest.sh

# Every benchmark recorded in the README.
bench:
	./scripts/bench-all.sh

# Ingest and every stage against the real-Kafka lane's broker and registry
# (issue 20): rows/s, CPU seconds and peak RSS per command.
bench-real:
	./scripts/bench-real.sh
