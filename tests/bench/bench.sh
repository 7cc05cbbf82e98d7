#!/bin/bash
# make bench: builds build-bench-rel/ (RelWithDebInfo, no sanitizers; EWTP_BENCH_BUILD for another
# tree) and runs tests/bench/bench.py, which writes build/bench/report.md and report.json.
# About 5 minutes on 2 cores; not part of make test. Arguments go to bench.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# Its own tree: build-bench/ is accept_bench.sh's and pg_nodes_bench.sh's (Release, without
# BUILD_TESTING, so without tests/sign_bench).
build=${EWTP_BENCH_BUILD:-$root/build-bench-rel}
for t in wrk sqlite3 openssl python3 valgrind callgrind_annotate; do
  command -v $t >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 2; }
done
mkdir -p "$build"
echo "== building $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEWTP_SANITIZE=OFF -DBUILD_TESTING=ON \
  >"$build/bench-cmake.log" 2>&1 || { cat "$build/bench-cmake.log"; exit 1; }
cmake --build "$build" -j2 --target ewtpd ewtpctl ewtp-sim ewtp-cn ewtp-zz ewtp-my ewtp-be ewtp-rw \
  ewtp-et ewtp-sim-cn ewtp-sim-zz sign_bench >"$build/bench-build.log" 2>&1 ||
  { tail -40 "$build/bench-build.log"; exit 1; }
cc -std=c11 -O2 -Wall -Wextra -o "$build/hello_evhttp" "$root/tests/bench/hello_evhttp.c" \
  $(pkg-config --cflags --libs libevent)
exec python3 "$root/tests/bench/bench.py" --build "$build" "$@"
