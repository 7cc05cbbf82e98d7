#!/usr/bin/env bash
# tests/fuzz/run.sh — builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/
# (CMake with EWTP_FUZZ=ON: ASan + UBSan, coverage in libewtp, the daemon's layers and the
# plugins), writes the seeds, runs each target for SECONDS (default 600) one after the other and
# writes build-fuzz/summary.md (executions, coverage, corpus and findings per target).
# `make fuzz` calls it (FUZZ_SECONDS, FUZZ_TARGETS). See tests/fuzz/README.md.
#   tests/fuzz/run.sh [-t SECONDS] [-j JOBS] [--build-only] [TARGET...]
# TARGET: message json xml config http plugin-<cc> validate-<cc>, cc one of cn be my rw et zz
# (default: all). Findings (crash-*, leak-*, timeout-*, oom-*) land in build-fuzz/findings/<target>/;
# the corpora grow in build-fuzz/corpus/<target>/ and are kept between runs. Exit 1 when a
# target found something.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${EWTP_SHARED_DIR:-$root/../shared}
bdir=${EWTP_FUZZ_BUILD_DIR:-$root/build-fuzz}
secs=600
jobs=2
build_only=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) secs=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
plugins=(cn be my rw et zz)
if [ ${#targets[@]} -eq 0 ]; then
  targets=(message json xml config http)
  for cc in "${plugins[@]}"; do targets+=("plugin-$cc" "validate-$cc"); done
fi
for t in "${targets[@]}"; do
  case $t in
    message | json | xml | config | http) ;;
    plugin-* | validate-*) [[ " ${plugins[*]} " == *" ${t#*-} "* ]] || {
      echo "run.sh: unknown plugin in $t (one of ${plugins[*]})" >&2; exit 2; } ;;
    *) echo "run.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
command -v clang >/dev/null || {
  echo "run.sh: clang is missing: scripts/deps.sh fuzz (or apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
}

mkdir -p "$bdir"
CC=clang cmake -S "$root" -B "$bdir" -DEWTP_FUZZ=ON -DEWTP_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DEWTP_SHARED_DIR="$shared" \
  >"$bdir/configure.log" 2>&1 || { cat "$bdir/configure.log" >&2; exit 1; }
cmake --build "$bdir" -j"$jobs" --target fuzz-all >"$bdir/build.log" 2>&1 || {
  tail -40 "$bdir/build.log" >&2; exit 1; }
rm -rf "$bdir/seeds"
python3 "$root/tests/fuzz/seeds.py" "$root" "$shared" "$bdir/seeds"
[ $build_only = 1 ] && exit 0

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Third-party leaks only (libconfig's scanner); see the file.
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp
export EWTP_FUZZ_PLUGIN_DIR=$bdir/plugins
summary=$bdir/summary.md
{
  echo "# make fuzz: $(date -u +%Y-%m-%dT%H:%M:%SZ), ${secs} s per target"
  echo
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
       "load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| target | executions | exec/s | coverage | corpus | new units | findings |"
  echo "|---|---|---|---|---|---|---|"
} >"$summary"
status=0
for t in "${targets[@]}"; do
  bin=$bdir/fuzz/fuzz_${t%%-*}
  case $t in plugin-* | validate-*) export EWTP_FUZZ_PLUGIN=${t#*-} ;; esac
  mkdir -p "$bdir/corpus/$t" "$bdir/findings/$t"
  log=$bdir/findings/$t.log
  echo "== $t: ${secs}s"
  # -timeout: one input in more than 10 s is a hang; -rss_limit_mb: a leak or a blow-up.
  # Dictionaries: the message's member names; HTTP words and paths as well for http.
  dict=()
  case $t in
    http) cat "$root/tests/fuzz/http.dict" "$root/tests/fuzz/message.dict" >"$bdir/http.dict"
          dict=(-dict="$bdir/http.dict") ;;
    message | validate-*) dict=(-dict="$root/tests/fuzz/message.dict") ;;
  esac
  rc=0
  "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$bdir/findings/$t/" \
    "$bdir/corpus/$t" "$bdir/seeds/$t" >"$log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  found=$(find "$bdir/findings/$t" -type f | wc -l)
  what=none
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    what="$found file(s) in findings/$t/: $(grep -m1 -oE 'ERROR: [A-Za-z]+: [a-z-]+|fuzz_[a-z]+: [^:]*|deadly signal|Timeout|out-of-memory' "$log" || echo "exit $rc")"
    echo "!! $t: finding, see $log and $bdir/findings/$t/"
  fi
  echo "| $t | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | ${cov:-?} |" \
       "${corp:-?} | $(stat new_units_added) | $what |" >>"$summary"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' '
  echo
done
echo >>"$summary"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$summary"
echo "summary: $summary"
exit $status
