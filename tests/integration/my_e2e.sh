#!/bin/bash
# Malaysia end to end: the real ewtpd against the real MyInvois simulator (see my_e2e.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/my_e2e.py"
