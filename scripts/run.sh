#!/usr/bin/env bash
# make run: the gateway in the foreground with conf/dev.conf (SQLite under var/, the
# authority simulators on loopback, API on http://127.0.0.1:8480, token dev-token).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x build/bin/ewtpd ]; then
  echo "run.sh: build/bin/ewtpd is missing: run it through 'make run'" >&2
  exit 1
fi
mkdir -p var/run
# The signing keys dev.conf names (var/dev-keys, self-signed, made once).
scripts/dev-keys.sh "$PWD"
# One authority simulator per built country module, on the ports conf/dev.conf names.
declare -A sim_port=([zz]=8490 [cn]=8491 [be]=8492 [my]=8493 [rw]=8494 [et]=8495)
# Settings a simulator needs to answer the dev.conf instance (--set key=value each; values
# without spaces). be: IDMS-H7 decisions are callbacks to the be-liege instance.
declare -A sim_set=(
  [be]="callback_url=http://127.0.0.1:8480/v1/inbound/be-liege callback_token=$(cat conf/be-inbound-token)"
  [cn]="spool_out=$PWD/var/spool/cn/out spool_in=$PWD/var/spool/cn/in"
  [rw]="spool_out=$PWD/var/spool/rw/out spool_in=$PWD/var/spool/rw/in"
)
sims=()
for cc in "${!sim_port[@]}"; do
  [ -f "build/plugins/ewtp-sim-$cc.so" ] || continue
  sets=()
  for kv in ${sim_set[$cc]:-}; do sets+=(--set "$kv"); done
  build/bin/ewtp-sim --country "$cc" --listen "127.0.0.1:${sim_port[$cc]}" "${sets[@]}" \
    >"var/sim-$cc.log" 2>&1 &
  sims+=($!)
  echo "simulator $cc on http://127.0.0.1:${sim_port[$cc]} (log var/sim-$cc.log)"
done
stop_sims() { [ ${#sims[@]} -eq 0 ] || kill "${sims[@]}" 2>/dev/null || true; }
trap stop_sims EXIT
echo "ewtpd on http://127.0.0.1:8480 (tenant token: dev-token); Ctrl-C stops everything"
build/bin/ewtpd -c conf/dev.conf &
daemon=$!
stopping=0
trap 'stopping=1; kill -TERM $daemon 2>/dev/null' INT TERM
status=0
wait $daemon || status=$?
# Ctrl-C interrupts the first wait (the trap passed SIGTERM on): ewtpd's own exit status
# decides (0 after a clean stop); a daemon that fails to start fails make run.
if [ $stopping = 1 ]; then
  status=0
  wait $daemon || status=$?
fi
exit $status
