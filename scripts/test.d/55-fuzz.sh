# Every Go fuzz target, briefly: USAGESTREAM_FUZZ_TIME each (default 3s, so
# the lane stays about a minute; longer for a real hunt, e.g.
# USAGESTREAM_FUZZ_TIME=10m). The seeds already ran in the go-test lane.
# Targets are found by name (func FuzzXxx in a _test.go file), so new ones
# are included. Go fuzzes one target per package per run: one run each.
# A failing input is written to the package's testdata/fuzz/<Target>/: keep
# it as a seed once the bug is fixed.
fuzz_time="${USAGESTREAM_FUZZ_TIME:-3s}"
fuzz_targets=$(grep -rE --include='*_test.go' --exclude-dir=.cache --exclude-dir=.git -o '^func Fuzz[A-Za-z0-9_]*' . |
  sed -E 's#^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#\1 \2#' | sort -u)
fuzz_n=0
while read -r fuzz_dir fuzz_name; do
  [ -n "$fuzz_name" ] || continue
  fuzz_start=$SECONDS
  go test -run '^$' -fuzz "^${fuzz_name}\$" -fuzztime "$fuzz_time" "./$fuzz_dir" >/tmp/usagestream-fuzz.$$.log 2>&1 || {
    cat /tmp/usagestream-fuzz.$$.log; rm -f /tmp/usagestream-fuzz.$$.log
    echo "fuzz target $fuzz_name (./$fuzz_dir) failed; the failing input is under ./$fuzz_dir/testdata/fuzz/$fuzz_name/" >&2
    exit 1
  }
  fuzz_n=$((fuzz_n + 1))
  fuzz_execs=$(grep -Eo 'execs: [0-9]+' /tmp/usagestream-fuzz.$$.log | tail -1 | cut -d' ' -f2 || true)
  echo "   $fuzz_name (./$fuzz_dir): ${fuzz_execs:-?} execs in $((SECONDS - fuzz_start)) s (build included)"
done <<<"$fuzz_targets"
rm -f /tmp/usagestream-fuzz.$$.log
echo "   $fuzz_n fuzz targets, $fuzz_time each"
