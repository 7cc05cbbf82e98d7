#!/bin/bash
# The remote signer: ewtp-signer with SoftHSM2, key-file and command keys, and ewtpd signing a
# China order through it (remote_signer.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 300 /usr/bin/python3 "$here/remote_signer.py"
