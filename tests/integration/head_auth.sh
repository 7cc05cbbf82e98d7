#!/bin/bash
# Credentials checked when the request head ends, connections capped per client address
# (see head_auth.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/head_auth.py"
