#!/bin/bash
# The HTTP API of ewtpd end to end (tests/integration/http_api.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${EWTP_BUILD_DIR:?}"
if [ ! -x "$EWTP_BUILD_DIR/bin/ewtpd" ]; then
    echo "FAIL: $EWTP_BUILD_DIR/bin/ewtpd is not built" >&2
    exit 1
fi
exec /usr/bin/python3 "$here/http_api.py"
