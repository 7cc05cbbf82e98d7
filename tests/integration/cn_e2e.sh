#!/bin/bash
# China end to end: ewtpd + the customs simulator through the spool folders (cn_e2e.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 120 /usr/bin/python3 "$here/cn_e2e.py"
