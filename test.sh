#!/usr/bin/env bash
# Runs every Lethe test. On a fresh Debian machine with the .NET SDK it first installs and starts what the
# tests need (PostgreSQL, libsodium, the Python Matrix client, synadm and the Node packages used for interop), then prints one summary line:
#   N passed, N failed[, N skipped]
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter Name~Config]
set -uo pipefail
cd "$(dirname "$0")"

log() { printf '[test.sh] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) to run: $*"; return 1; fi
}

install_packages() {
  local wanted=(postgresql libsodium23 python3-nacl python3-matrix-nio synadm) missing=()
  for p in "${wanted[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Set when this script started PostgreSQL, so that it also stops it cleanly at the end: a cluster left running
# when the machine is torn down needs crash recovery (an fsync of every file) at the next start.
started_postgres=""

start_postgres() {
  [ -n "${LETHE_TEST_POSTGRES:-}" ] && return 0   # the caller brings its own
  command -v pg_lsclusters >/dev/null || { log "PostgreSQL is not installed; its tests will skip"; return 0; }
  local cluster
  cluster=$(pg_lsclusters -h 2>/dev/null | head -n1)
  if [ -z "$cluster" ]; then
    as_root pg_createcluster 15 main >/dev/null || return 0
    cluster=$(pg_lsclusters -h | head -n1)
  fi
  set -- $cluster
  if [ "$4" != "online" ]; then
    log "starting PostgreSQL $1/$2"
    # Crash recovery of a cluster that was not shut down can take minutes: give pg_ctl ten of them instead of
    # its default one, and wait for connections below even if it gave up waiting itself.
    as_root pg_ctlcluster "$1" "$2" start -- -t 600 || log "pg_ctl reported a failure; waiting for PostgreSQL anyway"
    started_postgres="$1 $2"
  fi
  local ready=""
  for _ in $(seq 1 600); do
    as_root su postgres -c "pg_isready -q -p $3" && { ready=1; break; }
    sleep 1
  done
  [ -n "$ready" ] || { log "PostgreSQL did not accept connections within 10 minutes"; return 0; }
  # Every PostgreSQL test makes its own schema; starting from a new database each run keeps the cluster small
  # (hundreds of thousands of files left by earlier runs made a crash recovery outlast pg_ctl's wait).
  as_root su postgres -c "psql -q -p $3 -v ON_ERROR_STOP=1" >/dev/null <<'SQL' || log "could not create the test role"
SET client_min_messages = warning;
ALTER SYSTEM SET recovery_init_sync_method = 'syncfs';
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lethe_test') THEN
    CREATE ROLE lethe_test LOGIN PASSWORD 'lethe_test' CREATEDB;
  END IF;
END $$;
DROP DATABASE IF EXISTS lethe_test WITH (FORCE);
CREATE DATABASE lethe_test OWNER lethe_test ENCODING 'UTF8' TEMPLATE template0;
SQL
  export LETHE_TEST_POSTGRES="Host=127.0.0.1;Port=$3;Username=lethe_test;Password=lethe_test;Database=lethe_test;Timeout=5"
  postgres_port=$3
}

# Drops what the run left in PostgreSQL and, when this script started the cluster, shuts it down cleanly.
stop_postgres() {
  [ -n "${postgres_port:-}" ] || return 0
  as_root su postgres -c "psql -q -p $postgres_port -c 'DROP DATABASE IF EXISTS lethe_test WITH (FORCE)'" >/dev/null 2>&1
  if [ -n "$started_postgres" ]; then
    # shellcheck disable=SC2086
    as_root pg_ctlcluster $started_postgres stop >/dev/null 2>&1 || log "could not stop PostgreSQL"
  fi
}

# The js-sdk E2EE interop test (tests/interop/js-sdk) needs Node and its npm packages (install scripts off: .npmrc).
install_js_sdk() {
  local dir=tests/interop/js-sdk
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null || return 1
  fi
  [ -d "$dir/node_modules/matrix-js-sdk" ] && return 0
  log "installing the npm packages of $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

install_packages || log "could not install test dependencies; tests that need them will fail or skip"
install_js_sdk || log "could not install the js-sdk interop packages; its test will fail"
start_postgres

# The server the process tests start is the native build ./lethe makes (about two minutes after a change): make it
# once here, so that no test waits for it, and stop at once if it does not build.
log "building the server"
if ! ./lethe --version >/dev/null; then
  stop_postgres
  echo "0 passed, 1 failed"
  exit 1
fi

results=$(mktemp -d)
log "building and running tests"
# A hung test must fail the run, not stall CI: the test host is killed after 5 minutes without progress.
dotnet test Lethe.slnx -c Release --nologo --blame-hang-timeout 5m "$@" 2>&1 | tee "$results/test.log"
rc=${PIPESTATUS[0]}
stop_postgres

summary=$(grep -E '^(Passed|Failed)!  - ' "$results/test.log" \
  | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\2 \1 \3/' \
  | awk '{p+=$1; f+=$2; s+=$3} END {printf "%d %d %d", p, f, s}')
read -r passed failed skipped <<<"${summary:-0 0 0}"
rm -rf "$results"
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no tests ran"
  echo "0 passed, 1 failed"
  exit 1
fi
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1   # the build or a test host failed outside any test
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
