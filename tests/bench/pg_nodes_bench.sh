#!/bin/bash
# pg_nodes_bench.sh — accepted messages/s of 1, 2 and 3 ewtpd nodes on one PostgreSQL 15,
# as a ratio to one node on SQLite measured in the same run under the same total wrk load
# (wrk -c split over the nodes, all nodes loaded at once), and the takeover time after a
# kill -9 comes from tests/integration/pg_nodes.sh. Not run by ctest; see README.md.
#
# Environment: EWTP_BENCH_BUILD (default build-bench/: Release, no sanitizers, built here),
# EWTP_BENCH_SECONDS (5), EWTP_BENCH_CONNECTIONS (24 in all), EWTP_BENCH_NODES ("1 2 3"),
# EWTP_BENCH_WORKERS (8, every node of both backends: libpq calls block a worker for a round
# trip, so a PostgreSQL node wants more workers than the SQLite default of 2), EWTP_BENCH_POOL
# (PostgreSQL pool_size, default = workers).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/tests/bench
build=${EWTP_BENCH_BUILD:-$root/build-bench}
secs=${EWTP_BENCH_SECONDS:-5}
conns=${EWTP_BENCH_CONNECTIONS:-24}
counts=${EWTP_BENCH_NODES:-1 2 3}
workers=${EWTP_BENCH_WORKERS:-8}
pool=${EWTP_BENCH_POOL:-$workers}
command -v wrk >/dev/null || { echo "pg_nodes_bench: wrk is missing" >&2; exit 2; }

mkdir -p "$build"
echo "== building $build (Release, no sanitizers)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEWTP_SANITIZE=OFF -DBUILD_TESTING=OFF \
  >"$build/bench-cmake.log" 2>&1 || { cat "$build/bench-cmake.log"; exit 1; }
cmake --build "$build" -j2 --target ewtpd ewtp-sim ewtp-zz ewtp-sim-zz >"$build/bench-build.log" 2>&1 ||
  { tail -40 "$build/bench-build.log"; exit 1; }

# shellcheck source=../pg_test_server.sh
source "$root/tests/pg_test_server.sh"
pg_test_start || exit $?
tmp=$(mktemp -d /tmp/ewtp-pgbench.XXXXXX)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() { stop_all; rm -rf "$tmp"; pg_test_stop; }
trap cleanup EXIT
psql_() { "$PG_BIN/psql" "$EWTP_TEST_PG_CONNINFO" -At -c "$1"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "pg_nodes_bench: $1 did not come up" >&2
  return 1
}
sim=$(port)
"$build/bin/ewtp-sim" --country zz --listen "127.0.0.1:$sim" >"$tmp/sim.log" 2>&1 & simpid=$!
echo bench-token >"$tmp/token"
printf '%s\n' "$EWTP_TEST_PG_CONNINFO" >"$tmp/conninfo"
chmod 600 "$tmp/conninfo"
python3 - "$root/plugins/template/vectors/order-basic/input.json" "$tmp/body.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["id"] = "@ID@"
m["order"]["number"] = "SO-@ID@"
open(sys.argv[2], "w").write(json.dumps(m))
PY
export EWTP_BENCH_BODY=$tmp/body.json EWTP_BENCH_TOKEN=bench-token

node_conf() { # dir api store-line
  mkdir -p "$1/run"
  cat >"$1/ewtpd.conf" <<CONF
plugin_dir = "$build/plugins";
dev_mode = true;
state_dir = "$1/run";
admin_socket = "$1/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = $2; } );
tenants = ( { id = "bench"; token_file = "$tmp/token"; destinations = [ "*" ]; } );
$3
delivery = { max_attempts = 20; base_delay_ms = 500; max_delay_ms = 5000;
  request_timeout_ms = 5000; lease_ms = 30000; poll_interval_ms = 5000; scan_interval_ms = 200;
  workers = $workers; };
plugins = ( { name = "zz-bench"; plugin = "zz"; settings = { sign_key = ""; };
  transport = "https"; endpoint = "http://127.0.0.1:$sim"; } );
routes = ( { destination = "ZZ"; instance = "zz-bench"; } );
CONF
}

# run NAME N STORE-LINE COUNT-COMMAND: N nodes, wrk on each at once, rows counted after.
declare -A result
run() {
  local name=$1 n=$2 store=$3 count=$4 apis=() wpids=()
  for k in $(seq 1 "$n"); do
    local api; api=$(port)
    node_conf "$tmp/$name-$k" "$api" "$store"
    "$build/bin/ewtpd" -c "$tmp/$name-$k/ewtpd.conf" >"$tmp/$name-$k/ewtpd.log" 2>&1 & pids+=($!)
    apis+=("$api")
  done
  for api in "${apis[@]}"; do wait_http "http://127.0.0.1:$api/readyz"; done
  local c=$(( conns / n )); [ "$c" -ge 2 ] || c=2
  for k in $(seq 1 "$n"); do
    EWTP_BENCH_RUN="$name-$k-$$" wrk -t1 -c"$c" -d"${secs}s" -s "$bench/post_unique.lua" \
      "http://127.0.0.1:${apis[$((k - 1))]}/v1/messages" >"$tmp/wrk-$name-$k.log" 2>&1 & wpids+=($!)
  done
  for p in "${wpids[@]}"; do wait "$p"; done
  local stored; stored=$($count)
  stop_all
  local rate; rate=$(python3 -c "print('%.0f' % ($stored / $secs))")
  result[$name]=$rate
  printf '%-14s nodes=%d  stored=%-7d accepted/s=%s   (wrk: %s)\n' "$name" "$n" "$stored" "$rate" \
    "$(grep -h '^wrk:' "$tmp"/wrk-"$name"-*.log | tr '\n' ' ')"
}

count_sqlite() { sqlite3 "$tmp/sqlite.db" "SELECT count(*) FROM messages"; }
count_pg() { psql_ "SELECT count(*) FROM messages"; }
reset_pg() { psql_ "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" >/dev/null; }

echo "== $secs s per run, $conns connections in all, $workers workers per node, ZZ simulator delivering meanwhile"
run sqlite 1 "store = { backend = \"sqlite\"; path = \"$tmp/sqlite.db\"; };" count_sqlite
for n in $counts; do
  reset_pg
  run "pg-$n" "$n" "store = { backend = \"postgresql\"; conninfo_file = \"$tmp/conninfo\"; pool_size = $pool; };" count_pg
done
kill "$simpid" 2>/dev/null || true
echo "== result: accepted messages/s, ratio to one SQLite node in this run"
for n in $counts; do
  python3 -c "print('postgresql, %d node(s): %s/s  = %.2f x sqlite (%s/s)' % ($n, ${result[pg-$n]}, ${result[pg-$n]} / max(1, ${result[sqlite]}), ${result[sqlite]}))"
done
