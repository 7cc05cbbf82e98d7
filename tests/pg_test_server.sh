#!/bin/bash
# A throwaway PostgreSQL 15 server for the tests (Debian's postgresql-15 binaries).
#
#   tests/pg_test_server.sh run CMD [ARG...]
#       starts a server, runs CMD with EWTP_TEST_PG_CONNINFO set to a libpq connection string
#       of its database "ewtp" (and EWTP_TEST_PG_DIR to its folder), stops it and removes
#       everything, whatever CMD did; exits with CMD's status.
#   source tests/pg_test_server.sh; pg_test_start; ...; pg_test_stop
#       the same from another script (pg_test_start sets a trap on EXIT).
#
# The data directory lives in a temporary folder owned by postgres: initdb and the server
# refuse to run as root, and CI runs as root, so they run through `runuser -u postgres --`
# then (as the calling user otherwise). The server listens on a private port of 127.0.0.1 and
# on a unix socket in that folder; the connection string uses the socket (trust auth, the
# folder is not readable by others). Exit 77 (skipped) when the binaries are missing.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_test_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_test_start() {
  if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    echo "pg_test_server: $PG_BIN/initdb not found (make deps installs postgresql)" >&2
    return 77
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "pg_test_server: no user postgres (make deps installs postgresql)" >&2
    return 77
  fi
  EWTP_TEST_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ewtp-pg-XXXXXX")
  chmod 0700 "$EWTP_TEST_PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$EWTP_TEST_PG_DIR"
  trap pg_test_stop EXIT
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_test_as "$PG_BIN/initdb" -D "$EWTP_TEST_PG_DIR/data" -U postgres -A trust -E UTF8 \
    --locale=C --no-sync >"$EWTP_TEST_PG_DIR/initdb.log" 2>&1 || {
    cat "$EWTP_TEST_PG_DIR/initdb.log" >&2
    return 1
  }
  # fsync stays on: the accept figures of tests/bench are measured on this server too.
  pg_test_as "$PG_BIN/pg_ctl" -D "$EWTP_TEST_PG_DIR/data" -l "$EWTP_TEST_PG_DIR/server.log" -w \
    -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$EWTP_TEST_PG_DIR -c max_connections=300 -c shared_buffers=128MB" \
    start >/dev/null || {
    cat "$EWTP_TEST_PG_DIR/server.log" >&2
    return 1
  }
  pg_test_as "$PG_BIN/psql" -h "$EWTP_TEST_PG_DIR" -p "$port" -U postgres -d postgres -q \
    -c "CREATE DATABASE ewtp" >/dev/null || return 1
  EWTP_TEST_PG_PORT=$port
  EWTP_TEST_PG_CONNINFO="host=$EWTP_TEST_PG_DIR port=$port user=postgres dbname=ewtp"
  export EWTP_TEST_PG_DIR EWTP_TEST_PG_PORT EWTP_TEST_PG_CONNINFO
}

pg_test_stop() {
  [ -n "${EWTP_TEST_PG_DIR:-}" ] && [ -d "$EWTP_TEST_PG_DIR" ] || return 0
  if [ -f "$EWTP_TEST_PG_DIR/data/postmaster.pid" ]; then
    pg_test_as "$PG_BIN/pg_ctl" -D "$EWTP_TEST_PG_DIR/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$EWTP_TEST_PG_DIR"
  EWTP_TEST_PG_DIR=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
    echo "usage: $0 run CMD [ARG...]" >&2
    exit 2
  fi
  shift
  pg_test_start || exit $?
  set +e
  "$@"
  rc=$?
  pg_test_stop
  exit $rc
fi
