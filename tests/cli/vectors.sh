#!/usr/bin/env bash
# Golden vectors of every plugin folder (plugins/*/vectors), through `ewtpctl plugin check`,
# which also dlopens every built plugin with RTLD_NOW and checks its descriptor.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
dirs=()
for d in "$EWTP_SOURCE_DIR"/plugins/*/vectors; do
  [ -d "$d" ] && dirs+=("$d")
done
[ ${#dirs[@]} -gt 0 ] || { echo "no vectors found under $EWTP_SOURCE_DIR/plugins" >&2; exit 1; }
exec "$EWTP_BUILD_DIR/bin/ewtpctl" plugin check --plugin-dir "$EWTP_BUILD_DIR/plugins" "${dirs[@]}"
