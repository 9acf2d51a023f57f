#!/usr/bin/env bash
# The whole test command (README's second command, called by .ci/run).
# It installs what the tests need under .cache/ (ignored by git) and runs every
# lane in scripts/test.d in name order. Each lane is a bash fragment sourced
# here: it may export variables for later lanes and register clean-ups with
# on_exit, which run in reverse order however the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export USAGESTREAM_ROOT=$PWD

command -v go >/dev/null || { echo "Go is required (https://go.dev/dl/); install it and rerun." >&2; exit 1; }

_cleanups=()
on_exit() { _cleanups=("$1" "${_cleanups[@]}"); }
_run_cleanups() {
  local c
  for c in "${_cleanups[@]}"; do eval "$c" || true; done
}
trap _run_cleanups EXIT

started=$SECONDS
for lane in scripts/test.d/*.sh; do
  lane_start=$SECONDS
  echo "== $(basename "$lane" .sh)"
  # shellcheck source=/dev/null
  . "$lane"
  echo "   ($(basename "$lane" .sh): $((SECONDS - lane_start)) s)"
done
echo "== all lanes passed in $((SECONDS - started)) s"
