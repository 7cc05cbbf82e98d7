#!/bin/bash
# The OpenAPI document against the running ewtpd (tests/integration/openapi_contract.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${EWTP_BUILD_DIR:?}"
if [ ! -x "$EWTP_BUILD_DIR/bin/ewtpd" ]; then
    echo "FAIL: $EWTP_BUILD_DIR/bin/ewtpd is not built" >&2
    exit 1
fi
exec /usr/bin/python3 "$here/openapi_contract.py"
