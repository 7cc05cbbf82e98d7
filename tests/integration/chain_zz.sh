#!/bin/bash
# Gap-free chain numbering across 503s, a rejection and kill -9 of ewtpd (see chain_zz.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 120 /usr/bin/python3 "$here/chain_zz.py"
