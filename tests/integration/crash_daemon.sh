#!/bin/bash
# kill -9 of ewtpd and of the simulator under a load of POSTs (see crash_daemon.py).
# EWTP_CRASH_N: messages per scenario. Default 5000; 3000 in a sanitizer build (ASan+UBSan or
# TSan), where 2 x 5000 takes about two minutes on two shared cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EWTP_CRASH_N:-}" ]; then
  EWTP_CRASH_N=5000
  if grep -qsE '^EWTP_(SANITIZE|TSAN):BOOL=ON' "${EWTP_BUILD_DIR:-$here/../../build}/CMakeCache.txt"; then
    EWTP_CRASH_N=3000
  fi
fi
export EWTP_CRASH_N
exec timeout 850 /usr/bin/python3 "$here/crash_daemon.py" "$@"
