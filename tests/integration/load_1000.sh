#!/bin/bash
# 1,000 concurrent POSTs, all durable, group commit batching (see load_1000.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/load_1000.py"
