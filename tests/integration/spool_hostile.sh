#!/bin/bash
# Spool folders with planted links and FIFOs (see spool_hostile.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/spool_hostile.py"
