#!/bin/bash
# Rwanda end to end: the real ewtpd against the real Rwanda simulator (see rw_e2e.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/rw_e2e.py"
