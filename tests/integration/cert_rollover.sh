#!/bin/bash
# Certificate lifecycle (issue 18): a TLS listener's certificate A hands over to B at a set
# time under a request loop, then a reload swaps in C under load; expiry metrics, warnings and
# `ewtpd -t` (cert_rollover.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/cert_rollover.py"
