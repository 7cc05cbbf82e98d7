#!/usr/bin/env bash
# tests/fuzz/run.sh — builds the libFuzzer targets of tests/fuzz/ into build-fuzz/ and runs
# each for SECONDS (default 60), one at a time. See tests/fuzz/README.md.
#   tests/fuzz/run.sh [-t SECONDS] [-j JOBS] [--build-only] [TARGET...]
# TARGET: message json xml config plugin-cn plugin-be plugin-my plugin-rw plugin-zz (default: all).
# Findings (crash-*, leak-*, timeout-*, oom-*) land in build-fuzz/findings/<target>/; the
# corpora grow in build-fuzz/corpus/<target>/ and are kept between runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${EWTP_SHARED_DIR:-$root/../shared}
bdir=$root/build-fuzz
secs=60
jobs=2
build_only=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) secs=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n 2,7p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(message json xml config plugin-cn plugin-be plugin-my plugin-rw plugin-zz)
command -v clang >/dev/null || {
  echo "run.sh: clang is missing: apt-get install -y --no-install-recommends clang libclang-rt-14-dev" >&2
  exit 1
}

# libewtp, ewtp-host and the plugins with the same sanitizers as the targets, plus coverage
# instrumentation (fuzzer-no-link) so that plugin code guides the fuzzer too.
mkdir -p "$bdir"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CC=clang cmake -S "$root" -B "$bdir" -DEWTP_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >"$bdir/configure.log" 2>&1 || {
  cat "$bdir/configure.log" >&2; exit 1; }
cmake --build "$bdir" -j"$jobs" --target ewtp ewtp-store ewtp-cn ewtp-be ewtp-my ewtp-rw ewtp-zz >/dev/null

cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer $san
        -I"$root/sdk/include" -I"$root/sdk/src" $(printf -- '-I%s ' "$root"/daemon/*/)
        -DEWTP_FUZZ_SOURCE_DIR="\"$root\"")
libs=("$bdir/daemon/libewtp-store.a" "$bdir/daemon/libewtp-host.a" "$bdir/daemon/libewtp-conf.a"
      "$bdir/daemon/libewtp-core.a" -L"$bdir/sdk" -lewtp -Wl,-rpath,"$bdir/sdk"
      $(pkg-config --libs jansson libxml-2.0 openssl libconfig sqlite3 libpq libarchive libsystemd) -ldl -lpthread)
mkdir -p "$bdir/fuzz"
for t in message json xml config plugin; do
  clang "${cflags[@]}" "$root/tests/fuzz/fuzz_$t.c" "${libs[@]}" -o "$bdir/fuzz/fuzz_$t"
done
python3 "$root/tests/fuzz/seeds.py" "$root" "$shared" "$bdir/seeds"
[ $build_only = 1 ] && exit 0

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Third-party leaks only (libconfig's scanner); see the file.
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp
export EWTP_FUZZ_PLUGIN_DIR=$bdir/plugins
status=0
for t in "${targets[@]}"; do
  bin=$bdir/fuzz/fuzz_${t%%-*}
  case $t in plugin-*) export EWTP_FUZZ_PLUGIN=${t#plugin-} ;; esac
  mkdir -p "$bdir/corpus/$t" "$bdir/findings/$t"
  echo "== $t: ${secs}s"
  # -timeout: one input in more than 10 s is a hang; -rss_limit_mb: a leak or a blow-up.
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$bdir/findings/$t/" \
      "$bdir/corpus/$t" "$bdir/seeds/$t" >"$bdir/findings/$t.log" 2>&1; then
    echo "!! $t: finding, see $bdir/findings/$t.log and $bdir/findings/$t/"
    status=1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
    "$bdir/findings/$t.log" | tr '\n' ' '
  echo
done
exit $status
