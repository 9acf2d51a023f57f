# A real PostgreSQL server for the sink tests (sinks/postgres, cmd/usagestream):
# Debian's package, installed when missing (the downloaded .deb files kept
# under .cache/apt), started with initdb/pg_ctl on a free port of 127.0.0.1
# with a private data directory, as the postgres user when running as root
# (the server refuses root). Exports USAGESTREAM_TEST_POSTGRES_URL; the tests
# create a database of their own each and fail on CI without it.
#
# It can be sourced by other scripts too (benchmarks): without the test
# command's on_exit it registers its clean-up with an EXIT trap.
if ! declare -F on_exit >/dev/null; then
  on_exit() { trap "$1" EXIT; }
fi

_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
pg_bin=$(_pg_bin)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  echo "   installing Debian's postgresql (once; packages cached in .cache/apt)"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "PostgreSQL is missing and installing it needs root or sudo: apt-get install postgresql" >&2; exit 1; }
    sudo_cmd="sudo"
  fi
  mkdir -p .cache/apt/archives/partial
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Cache::Archives="$PWD/.cache/apt/archives" -qq update >/dev/null ||
    { echo "apt-get update failed: check the Debian mirror is reachable" >&2; exit 1; }
  # policy-rc.d-less containers may try to start the packaged cluster; that
  # one is not used (ours runs on a private port), so its failure is harmless.
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Cache::Archives="$PWD/.cache/apt/archives" \
    -qq -y --no-install-recommends install postgresql >/dev/null ||
    { echo "apt-get install postgresql failed: see the messages above; install it by hand and rerun" >&2; exit 1; }
  pg_bin=$(_pg_bin)
  [ -n "$pg_bin" ] || { echo "postgresql installed but no /usr/lib/postgresql/*/bin found" >&2; exit 1; }
fi

# The server's user: ourselves, or postgres when we are root.
pg_as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  pg_as=(runuser -u postgres --)
fi

pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/usagestream-pg.XXXXXX")
if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; fi
"${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1 ||
  { cat "$pg_dir/initdb.log" >&2; echo "initdb failed (log above)" >&2; exit 1; }

# A free port: another run of this lane (or anything else) may hold 55432.
pg_port=""
for p in $(seq 55432 55499); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$p -c unix_socket_directories=$pg_dir -c max_connections=200" start >/dev/null; then
      pg_port=$p
      break
    fi
  fi
done
[ -n "$pg_port" ] || { cat "$pg_dir/server.log" >&2; echo "PostgreSQL did not start on any port 55432-55499 (log above)" >&2; exit 1; }
on_exit "${pg_as[*]} '$pg_bin/pg_ctl' -D '$pg_dir/data' -m fast -w stop >/dev/null 2>&1; rm -rf '$pg_dir'"

export USAGESTREAM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
echo "   $("$pg_bin/postgres" --version) on 127.0.0.1:$pg_port (data in $pg_dir)"
