#!/usr/bin/env bash
# Ingest benchmark (issue 2): a generated full-layout gzip file of ROWS rows
# (default 5 million) is ingested into the embedded broker, which runs in its
# own process (`usagestream run`), as a user would run it. Prints rows/s,
# MB/s (compressed and uncompressed), the ingest process's CPU seconds
# (user+sys) and peak RSS, and the load average before the run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-5000000}
work=.cache/bench-ingest
rm -rf "$work" && mkdir -p "$work"
go build -o "$work/usagestream" ./cmd/usagestream
bin="$work/usagestream"

echo "== generating $ROWS rows"
"$bin" gen -o "$work/in" --service-points $((ROWS / 12)) --months 12 --seed 1 --now 20250315 >/dev/null
file=$(ls "$work"/in/*.gz)
rows=$(( $(gzip -dc "$file" | wc -l) - 1 ))
zbytes=$(stat -c %s "$file")
rawbytes=$(gzip -dc "$file" | wc -c)

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kp=$(port); rp=$(port); hp=$(port)
"$bin" run --no-process --data-dir "$work/data" --kafka-port "$kp" --registry-port "$rp" --http-addr "127.0.0.1:$hp" --log-format json 2>"$work/run.log" &
runpid=$!
trap 'kill $runpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

echo "== ingesting $(basename "$file") ($rows rows, $((zbytes / 1048576)) MiB gzip, $((rawbytes / 1048576)) MiB text)"
load=$(cut -d' ' -f1 /proc/loadavg)
start=$(date +%s.%N)
/usr/bin/time -v "$bin" ingest --brokers "127.0.0.1:$kp" --registry "http://127.0.0.1:$rp" --progress never "$file" \
  >"$work/ingest.out" 2>"$work/ingest.time"
end=$(date +%s.%N)
cat "$work/ingest.out"
rss_kb=$(grep "Maximum resident set size" "$work/ingest.time" | awk '{print $NF}')
# CPU seconds move less than wall time when others share the cores.
cpu_s=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/ingest.time")
broker_rss_kb=$(ps -o rss= -p "$runpid" | tr -d ' ')
python3 - "$rows" "$start" "$end" "$zbytes" "$rawbytes" "$rss_kb" "$broker_rss_kb" "$cpu_s" "$load" <<'PY'
import sys
rows, start, end, z, raw, rss, brss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cpu, load = float(sys.argv[8]), sys.argv[9]
s = end - start
print(f"rows={rows} seconds={s:.2f} rows_per_s={rows/s:,.0f} MB_per_s_gzip={z/s/1e6:.1f} MB_per_s_text={raw/s/1e6:.1f} "
      f"ingest_cpu_s={cpu:.1f} ingest_peak_rss_MB={rss/1024:.0f} broker_rss_MB={brss/1024:.0f} load_before={load}")
PY
