#!/bin/bash
# A cancel answered 202 survives kill -9 of ewtpd, with the authority down (see cancel_durable.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 150 /usr/bin/python3 "$here/cancel_durable.py"
