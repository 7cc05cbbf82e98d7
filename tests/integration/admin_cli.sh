#!/usr/bin/env bash
# ewtpctl's admin commands against a running ewtpd: status, plugins, messages --state,
# retry-now, replay, reload; human output and --json; clear errors when ewtpd is not there.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
exec /usr/bin/python3 "$(dirname "$0")/admin_cli.py"
