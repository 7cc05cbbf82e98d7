#!/bin/bash
# Belgium end to end: the real ewtpd and three real `ewtp-sim --country be` (see be_e2e.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 240 /usr/bin/python3 "$here/be_e2e.py"
