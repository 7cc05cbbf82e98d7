#!/bin/bash
# Authority authentication by the host: JSON login and OAuth2 tokens (see auth_zz.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 120 /usr/bin/python3 "$here/auth_zz.py"
