# Lane: real Apache Kafka 4.1 (KRaft) and Apicurio Registry 3.0, from Maven
# Central (scripts/realkafka.sh), on free ports of 127.0.0.1:
#   1. every Go test that talks to a broker, against them (each test uses a
#      topic prefix of its own), including
#      - the external Python client (confluent-kafka + fastavro, in a venv
#        under .cache/pyclient) reading the output topics through Apicurio's
#        Confluent-compatible API (processors/pipeline/external_client_test.go);
#      - TLS + SCRAM-SHA-512 on the broker's SASL_SSL listener
#        (internal/kafkaconf/realkafka_test.go);
#   2. the binary over SASL_SSL: run (topics, schemas), ingest, the records
#      counted by the Python client; a wrong password and an unknown CA refused;
#   3. compose/docker-compose.yml checked against the binary's commands and
#      flags (Docker cannot run here).
# Needs Java 17+, Maven, Python 3 and openssl: on CI (CI=true) their absence
# fails the lane; elsewhere it says so in one line and goes on.
rk_missing=
for rk_c in java mvn python3 openssl curl ss; do
  command -v "$rk_c" >/dev/null || rk_missing="$rk_missing $rk_c"
done
if [ -n "$rk_missing" ]; then
  if [ "${CI:-}" = true ]; then
    echo "   real-Kafka lane: missing$rk_missing; CI must test against real Kafka: install Java 17+, Maven, Python 3, openssl, curl, iproute2" >&2
    return 1
  fi
  echo "   real-Kafka lane skipped: missing$rk_missing (install Java 17+ and Maven to test against Apache Kafka and Apicurio; CI fails without them)"
  return 0
fi

rk_cache=$PWD/.cache/realkafka-lane
rm -rf "$rk_cache" && mkdir -p "$rk_cache"
rk_step() { echo "   ($1: $((SECONDS - rk_t)) s)"; rk_t=$SECONDS; }
rk_t=$SECONDS

# The Python client's virtual environment, remade when requirements change.
rk_venv=$PWD/.cache/pyclient/venv
rk_req=$(sha256sum scripts/pyclient/requirements.txt | cut -c1-16)
if [ ! -f "$rk_venv/.done-$rk_req" ]; then
  rm -rf "$rk_venv"
  python3 -m venv "$rk_venv"
  "$rk_venv/bin/pip" install -q --disable-pip-version-check --cache-dir "$PWD/.cache/pip" -r scripts/pyclient/requirements.txt
  touch "$rk_venv/.done-$rk_req"
fi
export USAGESTREAM_TEST_PYTHON=$rk_venv/bin/python
rk_step "python venv"

# The binary, built as the Dockerfile builds it, from the build context as
# .dockerignore filters it; then the compose file checked against it.
"$USAGESTREAM_TEST_PYTHON" compose/check_compose.py --copy-context "$rk_cache/context" compose/docker-compose.yml Dockerfile
rk_us=$rk_cache/usagestream
(cd "$rk_cache/context" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$rk_us" ./cmd/usagestream)
"$USAGESTREAM_TEST_PYTHON" compose/check_compose.py --binary "$rk_us" compose/docker-compose.yml Dockerfile
rk_step "image build step and compose check"

KAFKA_PORT=auto CONTROLLER_PORT=auto SASL_PORT=auto REGISTRY_PORT=auto scripts/realkafka.sh start >"$rk_cache/env"
on_exit 'scripts/realkafka.sh stop'
# shellcheck source=/dev/null
. "$rk_cache/env"
export USAGESTREAM_TEST_BROKERS=$USAGESTREAM_BROKERS USAGESTREAM_TEST_REGISTRY=$USAGESTREAM_REGISTRY
export USAGESTREAM_TEST_SASL_BROKERS=$REALKAFKA_SASL_BROKERS USAGESTREAM_TEST_SASL_CA=$REALKAFKA_SASL_CA
export USAGESTREAM_TEST_SASL_USER=$REALKAFKA_SASL_USER
USAGESTREAM_TEST_SASL_PASSWORD=$(cat "$REALKAFKA_SASL_PASSWORD_FILE")
export USAGESTREAM_TEST_SASL_PASSWORD
unset USAGESTREAM_BROKERS USAGESTREAM_REGISTRY
rk_step "Kafka and Apicurio started"

# Every package whose tests reach a broker: through internal/kafkatest (which
# uses the cluster above when USAGESTREAM_TEST_BROKERS is set) or an
# USAGESTREAM_TEST_* variable of its own.
mapfile -t rk_pkgs < <(grep -rlE --include='*_test.go' 'kafkatest\.|USAGESTREAM_TEST_' . |
  grep -v '^./.cache/' | xargs -n1 dirname | sort -u)
echo "   against real Kafka: ${rk_pkgs[*]}"
# A failing step does not stop the later ones (they test other things); the
# lane fails at its end, listing every failed step.
rk_failed=()
set +e
go test -count=1 -timeout 15m -skip 'TestExternalPythonClient|TestRealKafkaTLSAndSCRAM|TestPythonConsumerExample' "${rk_pkgs[@]}" ||
  rk_failed+=("Go tests against real Kafka")
# The three tests that only run here must not have skipped (the Python
# example consumer of docs/consumers.md needs this lane's venv).
if ! go test -count=1 -v -run 'TestExternalPythonClient|TestRealKafkaTLSAndSCRAM|TestPythonConsumerExample' ./processors/pipeline ./internal/kafkaconf ./cmd/usagestream >"$rk_cache/ext.log" 2>&1; then
  cat "$rk_cache/ext.log"; rk_failed+=("external Python client / SASL_SSL / Python example consumer tests")
elif grep -q -- '^--- SKIP' "$rk_cache/ext.log" || [ "$(grep -c -- '^--- PASS: Test' "$rk_cache/ext.log")" != 3 ]; then
  cat "$rk_cache/ext.log"; rk_failed+=("the external-client, SASL and Python example consumer tests did not all run")
else
  grep -h '^ *pyclient: [0-9]* events in' "$rk_cache/ext.log" | sed 's/^ */   /'
fi
set -e
rk_step "Go tests against real Kafka"

# The binary through the SASL_SSL listener, configured by environment, as in
# a container.
rk_prefix=lane$RANDOM.
rk_http=127.0.0.1:$((10000 + RANDOM % 20000))  # below the ephemeral range
set +e
# Each check exits explicitly: set -e does not apply in a subshell whose
# status is tested.
(
  export USAGESTREAM_BROKERS=$REALKAFKA_SASL_BROKERS USAGESTREAM_REGISTRY=$USAGESTREAM_TEST_REGISTRY
  export USAGESTREAM_KAFKA_TLS=true USAGESTREAM_KAFKA_TLS_CA=$REALKAFKA_SASL_CA
  export USAGESTREAM_SASL_MECHANISM=$REALKAFKA_SASL_MECHANISM USAGESTREAM_SASL_USER=$REALKAFKA_SASL_USER
  export USAGESTREAM_SASL_PASSWORD=$USAGESTREAM_TEST_SASL_PASSWORD USAGESTREAM_TOPIC_PREFIX=$rk_prefix
  "$rk_us" gen -o "$rk_cache/drop" --service-points 50 --months 6 --seed 7 --now 20250315 >/dev/null 2>&1 || exit 1
  "$rk_us" run --no-process --http-addr "$rk_http" --partitions 3 >"$rk_cache/run.log" 2>&1 &
  rk_run=$!
  trap 'kill $rk_run 2>/dev/null; wait $rk_run 2>/dev/null' EXIT
  for _ in $(seq 60); do
    curl -sf "http://$rk_http/readyz" >/dev/null && break
    kill -0 "$rk_run" 2>/dev/null || { cat "$rk_cache/run.log" >&2; echo "   usagestream run over SASL_SSL exited" >&2; exit 1; }
    sleep 0.5
  done
  curl -sf "http://$rk_http/readyz" >/dev/null || { cat "$rk_cache/run.log" >&2; echo "   usagestream run over SASL_SSL not ready in 30 s" >&2; exit 1; }
  "$rk_us" ingest --progress never "$rk_cache"/drop/*.gz >"$rk_cache/ingest.out" 2>"$rk_cache/ingest.err" ||
    { cat "$rk_cache/ingest.out" "$rk_cache/ingest.err" >&2; echo "   usagestream ingest over SASL_SSL failed" >&2; exit 1; }
  published=$(sed -n 's/.*rows read [0-9]* = published \([0-9]*\) + rejected 0$/\1/p' "$rk_cache/ingest.out" | tail -1)
  [ -n "$published" ] && [ "$published" -gt 0 ] ||
    { cat "$rk_cache/ingest.out" >&2; echo "   ingest over SASL_SSL: no 'published N + rejected 0' line" >&2; exit 1; }
  "$USAGESTREAM_TEST_PYTHON" scripts/pyclient/check_events.py --brokers "$REALKAFKA_SASL_BROKERS" --registry "$USAGESTREAM_REGISTRY" \
    --ca "$REALKAFKA_SASL_CA" --sasl-mechanism "$REALKAFKA_SASL_MECHANISM" --sasl-user "$REALKAFKA_SASL_USER" \
    count --topic "${rk_prefix}billing.v1" --expect "$published" >"$rk_cache/count.out" 2>&1 ||
    { cat "$rk_cache/count.out" >&2; echo "   the Python client over SASL_SSL did not read back $published rows" >&2; exit 1; }
  sed 's/^/   /' "$rk_cache/count.out"
  USAGESTREAM_SASL_PASSWORD=wrong "$rk_us" ingest --force --progress never "$rk_cache"/drop/*.gz >/dev/null 2>"$rk_cache/wrong.err"
  code=$?
  [ "$code" = 1 ] && grep -q 'refused the SASL SCRAM-SHA-512 login of user' "$rk_cache/wrong.err" ||
    { cat "$rk_cache/wrong.err" >&2; echo "   a wrong password: want exit 1 and a clear refusal, got $code" >&2; exit 1; }
  env -u USAGESTREAM_KAFKA_TLS_CA "$rk_us" ingest --force --progress never "$rk_cache"/drop/*.gz >/dev/null 2>"$rk_cache/ca.err"
  code=$?
  [ "$code" = 1 ] && grep -q 'certificate signed by unknown authority' "$rk_cache/ca.err" ||
    { cat "$rk_cache/ca.err" >&2; echo "   an unknown CA: want exit 1 and a clear refusal, got $code" >&2; exit 1; }
  echo "   binary over SASL_SSL: ingest published $published rows, read back by the Python client; wrong password and unknown CA refused (exit 1)"
) || rk_failed+=("the binary over SASL_SSL")
set -e
rk_step "binary over SASL_SSL"

# The compose services as compose would run them (their commands and
# environment) against this Kafka, the lane's PostgreSQL, and a second
# Apicurio configured by the compose file's registry settings (schemas in
# PostgreSQL, kept across a restart): a file dropped into the ingest folder
# must reach the sink's tables.
set +e
"$USAGESTREAM_TEST_PYTHON" compose/check_compose.py --binary "$rk_us" --smoke --brokers "$USAGESTREAM_TEST_BROKERS" \
  --registry "$USAGESTREAM_TEST_REGISTRY" --postgres-url "${USAGESTREAM_TEST_POSTGRES_URL:?the postgres lane (20) sets it}" \
  --apicurio-jar "$(ls .cache/realkafka/apicurio/apicurio-registry-app-*-runner.jar)" compose/docker-compose.yml Dockerfile ||
  rk_failed+=("compose services against real Kafka")
set -e
rk_step "compose services against real Kafka"
if [ "${#rk_failed[@]}" -gt 0 ]; then
  printf '   real-Kafka lane FAILED: %s\n' "${rk_failed[@]}" >&2
  return 1
fi
