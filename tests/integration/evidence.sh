#!/bin/bash
# Evidence bundles and the rejection explainer (issue 18): ewtpd + the China customs simulator
# (evidence.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 180 /usr/bin/python3 "$here/evidence.py"
