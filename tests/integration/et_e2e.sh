#!/bin/bash
# Ethiopia end to end: the real ewtpd against the real EIMS simulator (see et_e2e.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 480 /usr/bin/python3 "$here/et_e2e.py"
