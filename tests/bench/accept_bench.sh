#!/bin/bash
# accept_bench.sh — accepted messages/s of ewtpd over keep-alive on loopback, SQLite
# synchronous=FULL, as a ratio to a bare libevent evhttp "hello" server measured in the same
# run under the same wrk load. Not run by ctest; see README.md in this folder.
#
# Environment: EWTP_BENCH_BUILD (default build-bench/ of the checkout: a Release build without
# sanitizers, configured and built here), EWTP_BENCH_SECONDS (10), EWTP_BENCH_THREADS (2),
# EWTP_BENCH_CONNECTIONS (32).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/tests/bench
build=${EWTP_BENCH_BUILD:-$root/build-bench}
secs=${EWTP_BENCH_SECONDS:-10}
threads=${EWTP_BENCH_THREADS:-2}
conns=${EWTP_BENCH_CONNECTIONS:-32}

command -v wrk >/dev/null || { echo "accept_bench: wrk is missing (apt-get install wrk)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "accept_bench: sqlite3 is missing" >&2; exit 2; }

mkdir -p "$build"
echo "== building $build (Release, no sanitizers)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEWTP_SANITIZE=OFF -DBUILD_TESTING=OFF \
  >"$build/bench-cmake.log" 2>&1 || { cat "$build/bench-cmake.log"; exit 1; }
cmake --build "$build" -j2 --target ewtpd ewtp-sim ewtp-zz ewtp-sim-zz >"$build/bench-build.log" 2>&1 ||
  { tail -40 "$build/bench-build.log"; exit 1; }
cc -std=c11 -O2 -Wall -Wextra -o "$build/hello_evhttp" "$bench/hello_evhttp.c" \
  $(pkg-config --cflags --libs libevent)

tmp=$(mktemp -d /tmp/ewtp-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(port); sim=$(port); hello=$(port)
wait_http() { # url: bounded wait (30 s) for a 200
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "accept_bench: $1 did not come up" >&2
  return 1
}

echo bench-token >"$tmp/token"
mkdir -p "$tmp/run"
cat >"$tmp/ewtpd.conf" <<CONF
plugin_dir = "$build/plugins";
dev_mode = true;
state_dir = "$tmp/run";
admin_socket = "$tmp/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = $api; } );
tenants = ( { id = "bench"; token_file = "token"; destinations = [ "*" ]; } );
# WAL + synchronous=FULL: the store always opens SQLite this way (store_sqlite.c).
store = { backend = "sqlite"; path = "$tmp/ewtpd.sqlite"; };
delivery = { max_attempts = 20; base_delay_ms = 500; max_delay_ms = 5000;
  request_timeout_ms = 5000; lease_ms = 30000; poll_interval_ms = 5000; scan_interval_ms = 200; };
plugins = ( { name = "zz-bench"; plugin = "zz"; settings = { sign_key = ""; };
  transport = "https"; endpoint = "http://127.0.0.1:$sim"; } );
routes = ( { destination = "ZZ"; instance = "zz-bench"; } );
CONF
# The body: the template plugin's order vector, id and order number made unique by wrk.
python3 - "$root/plugins/template/vectors/order-basic/input.json" "$tmp/body.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["id"] = "@ID@"
m["order"]["number"] = "SO-@ID@"
open(sys.argv[2], "w").write(json.dumps(m))
PY
export EWTP_BENCH_BODY=$tmp/body.json EWTP_BENCH_TOKEN=bench-token EWTP_BENCH_RUN="r$$-$(date +%s)"

run_wrk() { # url log
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$bench/post_unique.lua" "$1" >"$2" 2>&1
  grep -E "requests in|Requests/sec|wrk:|Non-2xx|Socket errors" "$2" | sed 's/^/    /'
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
elapsed() { sed -n 's/.* requests in \([0-9.]*\)\(m\?s\).*/\1 \2/p' "$1" |
  awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }'; }

echo "== hello_evhttp (bare evhttp, 200 \"hello\") on 127.0.0.1:$hello"
"$build/hello_evhttp" "$hello" & pids+=($!)
wait_http "http://127.0.0.1:$hello/"
run_wrk "http://127.0.0.1:$hello/" "$tmp/wrk-hello.log"
hello_rps=$(rps "$tmp/wrk-hello.log")
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== ewtpd (SQLite WAL, synchronous=FULL, group commit) on 127.0.0.1:$api, ZZ simulator on $sim"
"$build/bin/ewtp-sim" --country zz --listen "127.0.0.1:$sim" >"$tmp/sim.log" 2>&1 & pids+=($!)
"$build/bin/ewtpd" -c "$tmp/ewtpd.conf" >"$tmp/ewtpd.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$api/readyz"
run_wrk "http://127.0.0.1:$api/v1/messages" "$tmp/wrk-ewtpd.log"
stored=$(sqlite3 "$tmp/ewtpd.sqlite" "SELECT count(*) FROM messages WHERE tenant = 'bench'")
commits=$(curl -s "http://127.0.0.1:$api/metrics" |
  awk '/^ewtp_store_commit_latency_seconds_count/ {print $2}')
t=$(elapsed "$tmp/wrk-ewtpd.log")
ewtpd_rps=$(rps "$tmp/wrk-ewtpd.log")

python3 - "$stored" "$t" "$hello_rps" "$ewtpd_rps" "${commits:-0}" "$threads" "$conns" <<'PY'
import sys
stored, t, hello, req, commits = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), int(float(sys.argv[5]))
acc = stored / t if t else 0
print("== result (wrk -t%s -c%s, %.1f s each, keep-alive, loopback)" % (sys.argv[6], sys.argv[7], t))
print("accepted messages/s (rows stored / duration): %.0f  (%d stored, %.1f per group commit)"
      % (acc, stored, stored / commits if commits else 0))
print("ewtpd requests/s (wrk): %.0f" % req)
print("hello evhttp requests/s: %.0f" % hello)
print("ratio accepted/hello: %.3f" % (acc / hello if hello else 0))
PY
