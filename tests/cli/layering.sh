#!/usr/bin/env bash
# daemon/ is layered (core/daemon.h): core <- conf <- host <- store <- transport <- webhooks <-
# delivery <- api <- ewtpd.c, and ctl/ on core, conf, host and store. A file may include only
# headers of its own folder and of the folders before it, and a layer's static library may use
# only symbols of its own layer and those below. Checked two ways:
#   1. the #include "..." graph of the sources (every daemon/ header name is unique);
#   2. the symbols each libewtp-<layer>.a of the build tree needs (nm -u) against those the
#      libraries above it define: static archives alone would let a back-edge link whenever the
#      higher object happens to be pulled in already.
# Then it proves it can fail: a copy of the tree with one back-edge planted must be refused.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
layers=(core conf host store transport webhooks delivery api)

# rank NAME: the position of a layer (ctl: after store; main: after api).
rank() {
  case $1 in
    ctl) echo 3.5 ;;
    main) echo 99 ;;
    *) for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
       echo -1 ;;
  esac
}

# check_includes DAEMON_DIR: prints one line per back-edge or unknown folder; returns the count.
check_includes() {
  local root=$1 bad=0
  declare -A home=()
  local h d
  for h in "$root"/*/*.h; do
    d=$(basename "$(dirname "$h")")
    if [ -n "${home[$(basename "$h")]:-}" ]; then
      echo "FAIL: $(basename "$h") is in both ${home[$(basename "$h")]}/ and $d/"; bad=$((bad + 1))
    fi
    home[$(basename "$h")]=$d
  done
  local f from r_from inc to r_to
  for f in "$root"/*/*.[ch] "$root"/*.[ch]; do
    [ -e "$f" ] || continue
    from=$(basename "$(dirname "$f")")
    [ "$f" = "$root/$(basename "$f")" ] && from=main
    r_from=$(rank "$from")
    if [ "$r_from" = -1 ]; then
      echo "FAIL: daemon/$from/ is no layer (add it to core/daemon.h and this test)"; bad=$((bad + 1))
      continue
    fi
    while IFS= read -r inc; do
      to=${home[$inc]:-}
      [ -n "$to" ] || continue # a generated or SDK header
      r_to=$(rank "$to")
      if awk -v a="$r_to" -v b="$r_from" 'BEGIN { exit !(a > b) }'; then
        echo "FAIL: ${f#"$root"/} includes $to/$inc (a layer above $from/)"; bad=$((bad + 1))
      fi
      # ctl/ uses core, conf, host and store only.
      if [ "$from" = ctl ] && [ "$to" != ctl ] && awk -v a="$r_to" 'BEGIN { exit !(a > 3) }'; then
        echo "FAIL: ${f#"$root"/} includes $to/$inc (ctl/ uses core, conf, host, store)"
        bad=$((bad + 1))
      fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
  return "$bad"
}

fail=0
n_files=$(ls "$EWTP_SOURCE_DIR"/daemon/*/*.[ch] | wc -l)
if out=$(check_includes "$EWTP_SOURCE_DIR/daemon"); then
  echo "ok: #include graph of $n_files files follows the layers"
else
  echo "$out"; fail=1
fi

# 2. Symbols: what each layer's archive needs must not be defined by a layer above it.
lib() { echo "$EWTP_BUILD_DIR/daemon/libewtp-$1.a"; }
for l in "${layers[@]}"; do
  [ -f "$(lib "$l")" ] || { echo "FAIL: $(lib "$l") not built"; fail=1; }
done
if [ "$fail" = 0 ]; then
  for i in "${!layers[@]}"; do
    need=$(nm -u "$(lib "${layers[$i]}")" 2>/dev/null | awk '{print $2}' | sort -u)
    for j in "${!layers[@]}"; do
      [ "$j" -gt "$i" ] || continue
      have=$(nm --defined-only -g "$(lib "${layers[$j]}")" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u)
      back=$(comm -12 <(echo "$need") <(echo "$have"))
      if [ -n "$back" ]; then
        echo "FAIL: libewtp-${layers[$i]}.a uses $(echo "$back" | head -3 | tr '\n' ' ')of libewtp-${layers[$j]}.a"
        fail=1
      fi
    done
  done
  [ "$fail" = 0 ] && echo "ok: no layer's library uses a symbol of a layer above it"
fi

# 3. The check itself can fail: a back-edge planted in a copy is found.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$EWTP_SOURCE_DIR/daemon" "$tmp/daemon"
printf '#include "store.h"\n' >>"$tmp/daemon/core/util.c"
if planted=$(check_includes "$tmp/daemon"); then
  echo "FAIL: a planted back-edge (core/util.c includes store.h) was not found"; fail=1
else
  case $planted in
    *"core/util.c includes store/store.h"*) echo "ok: a planted back-edge is refused" ;;
    *) echo "FAIL: planted back-edge reported wrongly: $planted"; fail=1 ;;
  esac
fi
exit "$fail"
