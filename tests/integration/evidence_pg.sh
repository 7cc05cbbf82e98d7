#!/bin/bash
# Evidence bundles on the PostgreSQL store (issue 18): evidence.py --pg on a throwaway
# PostgreSQL 15 server (tests/pg_test_server.sh; exit 77 = skipped without it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../pg_test_server.sh" run timeout 180 /usr/bin/python3 "$here/evidence.py" --pg
