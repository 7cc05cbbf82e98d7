#!/usr/bin/env bash
# abi/compat (tests/abi/CMakeLists.txt): plugin ABI 1.0 keeps working as the ABI grows.
#  1. The template plugin built against the 1.0 headers (tests/abi/1.0/) runs its golden vectors
#     and plugin check's hostile answers in a host whose public structs have grown
#     (EWTP_ABI_TEST_GROWN: libewtp and ewtpctl of a pretend next minor).
#  2. A plugin built with the grown headers (the next minor) is refused by today's ewtpctl with
#     the loader's sentence, and driven directly with today's host structs it stays within them.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
abi="$EWTP_BUILD_DIR/tests/abi"
old_plugin="$abi/plugins-1.0/ewtp-zz.so"
grown="$abi/grown/ewtpctl"
new_plugin="$abi/new/ewtp-xb.so"
for f in "$old_plugin" "$grown" "$new_plugin" "$abi/abi_compat_driver"; do
  [ -e "$f" ] || { echo "FAIL: $f is not built"; exit 1; }
done

# The grown host runs on the grown libewtp (same soname libewtp.so.1, its own folder), which the
# 1.0 plugin then binds to as well.
if ! ldd "$grown" | grep -q "$abi/grown/libewtp.so.1"; then
  echo "FAIL: $grown does not load $abi/grown/libewtp.so.1"
  ldd "$grown"
  exit 1
fi

echo "== 1.0 plugin, grown host (the next minor's structs)"
"$grown" plugin check "$old_plugin" --vectors "$EWTP_SOURCE_DIR/plugins/template/vectors"

echo "== a plugin of the next minor, today's host"
if out=$("$EWTP_BUILD_DIR/bin/ewtpctl" plugin check "$new_plugin" 2>&1); then
  echo "$out"
  echo "FAIL: today's ewtpctl accepted a plugin of a newer minor"
  exit 1
fi
if ! grep -Eq "needs plugin ABI 1\.[0-9]+ but this host offers only 1\.[0-9]+: upgrade" <<<"$out"; then
  echo "$out"
  echo "FAIL: the refusal does not say which ABI is needed and offered"
  exit 1
fi
echo "ok   refused: $(grep -m1 'needs plugin ABI' <<<"$out")"
"$abi/abi_compat_driver" "$new_plugin"
echo "abi/compat: all passed"
