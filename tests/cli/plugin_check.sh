#!/usr/bin/env bash
# `ewtpctl plugin check PATH.so --vectors DIR` for every shipped plugin folder: the plugin
# loads like in ewtpd, its golden vectors hold, and the hostile-answer corpus
# (daemon/ctl_hostile.c) neither crashes it nor gets a decision out of it.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
status=0
n=0
for dir in "$EWTP_SOURCE_DIR"/plugins/*/; do
  [ -f "$dir/CMakeLists.txt" ] && [ -d "$dir/vectors" ] || continue
  name=$(sed -n 's/.*ewtp_add_plugin( *NAME \([a-z0-9_]*\).*/\1/p' "$dir/CMakeLists.txt" | head -1)
  so="$EWTP_BUILD_DIR/plugins/ewtp-$name.so"
  if [ -z "$name" ] || [ ! -f "$so" ]; then
    echo "FAIL $dir: no built plugin (ewtp_add_plugin NAME '$name', $so)"
    status=1
    continue
  fi
  echo "== $so --vectors ${dir}vectors"
  out=$("$EWTP_BUILD_DIR/bin/ewtpctl" plugin check "$so" --vectors "${dir}vectors") || {
    printf '%s\n' "$out" | grep -v '^ok ' || true
    echo "FAIL $name: plugin check exited non-zero"
    status=1
    continue
  }
  printf '%s\n' "$out" | grep -E '^(skip|time|[0-9]+ passed)' || true
  grep -q 'hostile interpret' <<<"$out" || { echo "FAIL $name: no hostile answers were run"; status=1; }
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "no plugin folder with vectors under $EWTP_SOURCE_DIR/plugins"; exit 1; }
exit $status
