#!/bin/bash
# Several ewtpd nodes on one PostgreSQL, one killed with kill -9 (see pg_nodes.py), on a
# throwaway PostgreSQL 15 server (tests/pg_test_server.sh; exit 77 = skipped without it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../pg_test_server.sh" run timeout 650 /usr/bin/python3 "$here/pg_nodes.py" "$@"
