#!/bin/bash
# Delivery end to end against a scripted authority (see dispatch_zz.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/dispatch_zz.py"
