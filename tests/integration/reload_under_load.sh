#!/usr/bin/env bash
# Live reload under load ([ops]): steady POSTs while ewtpd reloads 50 times, alternating good
# and broken configurations, with a plugin .so upgraded on disk in the middle.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
exec /usr/bin/python3 "$(dirname "$0")/reload_under_load.py"
