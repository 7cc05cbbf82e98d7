#!/bin/bash
# kill -9 of ewtpd and of the simulator under a load of POSTs (see crash_daemon.py).
# EWTP_CRASH_N sets the messages per scenario (default 5000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 850 /usr/bin/python3 "$here/crash_daemon.py" "$@"
