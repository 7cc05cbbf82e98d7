#!/usr/bin/env bash
# The ZZ authority simulator (ewtp-sim --country zz) over real HTTP(S): submissions translated
# by ewtpctl, validation errors, duplicates, decisions, callbacks, spool receipts, cancels,
# fault injection, /_sim/received, TLS client certificates and a clean SIGTERM (sim_zz.py).
set -u
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
for f in "$EWTP_BUILD_DIR/bin/ewtp-sim" "$EWTP_BUILD_DIR/bin/ewtpctl" \
         "$EWTP_BUILD_DIR/plugins/ewtp-sim-zz.so" "$EWTP_BUILD_DIR/plugins/ewtp-zz.so"; do
  if [ ! -e "$f" ]; then echo "FAIL: $f is not built"; exit 1; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
timeout 300 /usr/bin/python3 "$EWTP_SOURCE_DIR/tests/cli/sim_zz.py" \
  "$EWTP_BUILD_DIR" "$EWTP_SOURCE_DIR" "$tmp"
