#!/usr/bin/env bash
# ewtpd speaks sd_notify as a Type=notify service: READY=1, RELOADING=1 + MONOTONIC_USEC in
# one datagram, STATUS= lines (with the reason of a refused reload), WATCHDOG=1, STOPPING=1.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
exec /usr/bin/python3 "$(dirname "$0")/systemd_notify.py"
