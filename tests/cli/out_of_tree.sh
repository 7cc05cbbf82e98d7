#!/usr/bin/env bash
# A country team builds a plugin out of tree with nothing but libewtp: the template plugin's
# sources compiled with `pkg-config ewtp` flags, -fvisibility=hidden and -z defs (every
# symbol resolved from libewtp and libc), then loaded and its vectors checked by ewtpctl.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PKG_CONFIG_PATH="$EWTP_BUILD_DIR/sdk"
cflags=$(pkg-config --cflags ewtp-uninstalled)
libs=$(pkg-config --libs ewtp-uninstalled)
mkdir "$tmp/plugins"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $cflags \
   "$EWTP_SOURCE_DIR"/plugins/template/zz_plugin.c "$EWTP_SOURCE_DIR"/plugins/template/zz_translate.c \
   "$EWTP_SOURCE_DIR"/plugins/template/zz_interpret.c -o "$tmp/plugins/ewtp-zz.so" \
   -Wl,-z,defs $libs
# Only the descriptor is exported.
exported=$(nm -D --defined-only "$tmp/plugins/ewtp-zz.so" | awk '$2 ~ /[TDRB]/ {print $3}' | grep -v '^_' || true)
if [ "$exported" != "ewtp_plugin_v1" ]; then
  echo "FAIL: exported symbols: $exported"; exit 1
fi
# The sanitizer runtime must come first when an instrumented ewtpctl loads this plugin.
"$EWTP_BUILD_DIR/bin/ewtpctl" plugin check --plugin-dir "$tmp/plugins" "$EWTP_SOURCE_DIR/plugins/template/vectors"
