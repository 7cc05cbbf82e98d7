#!/usr/bin/env bash
# ewtpctl plugin new: in a copy of the source tree, `plugin new qq` adds plugins/qq/ and
# nothing else; the copy then configures and builds ewtp-qq.so (and its simulator), and
# `plugin check` passes on the new plugin with its own vectors. Also: an existing folder
# and an invalid code are refused without changing anything.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
ctl="$EWTP_BUILD_DIR/bin/ewtpctl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy="$tmp/src"
mkdir "$copy"
# The files of the checkout as a fresh clone would have them (with their working-tree
# content, and new files not yet added, so that a change under way is tested as it is).
git -C "$EWTP_SOURCE_DIR" ls-files -z --cached --others --exclude-standard |
  (cd "$EWTP_SOURCE_DIR" && tar --null --ignore-failed-read -T - -cf -) |
  tar -xf - -C "$copy"
cd "$copy"
git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm base

"$ctl" plugin new qq
changes=$(git status --porcelain --untracked-files=all | grep -v '^?? plugins/qq/' || true)
[ -z "$changes" ] || { echo "FAIL: plugin new changed files outside plugins/qq/:"; echo "$changes"; exit 1; }
[ -f plugins/qq/qq_plugin.c ] && [ -f plugins/qq/qq_sim.c ] && [ -d plugins/qq/vectors ] ||
  { echo "FAIL: plugins/qq lacks qq_plugin.c, qq_sim.c or vectors/"; ls -R plugins/qq; exit 1; }
grep -q 'NAME qq' plugins/qq/CMakeLists.txt || { echo "FAIL: CMake target not renamed"; exit 1; }
grep -rq 'TODO(country)' plugins/qq || { echo "FAIL: no TODO(country) markers"; exit 1; }
# The code is replaced everywhere but in the vectors' message ids (zz-ord-0001 stays).
if grep -rlw --exclude-dir=vectors -e zz -e ZZ plugins/qq; then
  echo "FAIL: the template's code is left in the files above"; exit 1
fi

# Refusals: an existing folder, an invalid code; nothing changes.
if "$ctl" plugin new qq 2>"$tmp/err"; then echo "FAIL: an existing folder was not refused"; exit 1; fi
grep -q 'already exists' "$tmp/err" || { cat "$tmp/err"; exit 1; }
for bad in q 1x qqq zz; do
  if "$ctl" plugin new "$bad" 2>/dev/null; then echo "FAIL: code '$bad' was not refused"; exit 1; fi
done
changes=$(git status --porcelain --untracked-files=all | grep -v '^?? plugins/qq/' || true)
[ -z "$changes" ] || { echo "FAIL: a refused plugin new changed files:"; echo "$changes"; exit 1; }

# CMake finds the folder by itself; build only what the check needs (no sanitizers).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DEWTP_SHARED_DIR="${EWTP_SHARED_DIR:-$EWTP_SOURCE_DIR/../shared}" >"$tmp/cmake.log" 2>&1 ||
  { tail -30 "$tmp/cmake.log"; exit 1; }
cmake --build build -j2 --target ewtpctl ewtp-qq ewtp-sim-qq >"$tmp/build.log" 2>&1 ||
  { grep -E 'error|Error' "$tmp/build.log" | head -30; exit 1; }
[ -f build/plugins/ewtp-qq.so ] && [ -f build/plugins/ewtp-sim-qq.so ] ||
  { echo "FAIL: build/plugins/ewtp-qq.so or ewtp-sim-qq.so not built"; exit 1; }
build/bin/ewtpctl plugin check build/plugins/ewtp-qq.so --vectors plugins/qq/vectors >"$tmp/check.log" ||
  { grep -v '^ok ' "$tmp/check.log"; exit 1; }
tail -2 "$tmp/check.log"
