#!/usr/bin/env bash
# The whole test command (README's second command, called by .ci/run).
# It installs what the tests need under .cache/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

command -v go >/dev/null || { echo "Go is required (https://go.dev/dl/); install it and rerun." >&2; exit 1; }

echo "== gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
go vet ./...

echo "== go test (embedded broker and registry)"
go test -count=1 -timeout 15m ./...
