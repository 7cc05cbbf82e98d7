#!/bin/bash
# The "amqp" transport end to end against a private rabbitmq-server on loopback (amqp_cn.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 180 /usr/bin/python3 "$here/amqp_cn.py"
