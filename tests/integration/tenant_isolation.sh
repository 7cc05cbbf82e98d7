#!/bin/bash
# Tenants of one hub cannot act as each other's parties, take each other's receipts or read
# each other's messages through validation errors (tests/integration/tenant_isolation.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${EWTP_BUILD_DIR:?}"
if [ ! -x "$EWTP_BUILD_DIR/bin/ewtpd" ]; then
    echo "FAIL: $EWTP_BUILD_DIR/bin/ewtpd is not built" >&2
    exit 1
fi
exec /usr/bin/python3 "$here/tenant_isolation.py"
