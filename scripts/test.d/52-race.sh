# The race detector over the packages whose goroutines share state: the
# processor runtime (franz-go callbacks against Run and Close), the
# pipeline's stages on it, the sinks and ingest. Whole packages, every test:
# 108 s on 2 busy cores (load average 6-7), the runtime and the pipeline's
# scenarios the longest.
# It needs cgo's C compiler on most platforms (gcc or clang).
race_pkgs=(./processors/runtime/ ./processors/pipeline/ ./sinks/... ./producers/ingest/)
go test -race -count=1 -timeout 10m "${race_pkgs[@]}" || {
  echo "the race lane failed: a DATA RACE report above names both goroutines' stacks; fix the unsynchronised access (a mutex, a channel, or state owned by one goroutine)" >&2
  exit 1
}
