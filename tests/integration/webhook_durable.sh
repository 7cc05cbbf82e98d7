#!/bin/bash
# Webhooks survive a restart of ewtpd (the store's outbox; see webhook_durable.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 200 /usr/bin/python3 "$here/webhook_durable.py"
