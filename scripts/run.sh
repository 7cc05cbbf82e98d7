#!/usr/bin/env bash
# make run: the gateway in the foreground with conf/dev.conf (SQLite under var/, the
# authority simulators on loopback, API on http://127.0.0.1:8480, token dev-token).
# Until ewtpd exists in the build, this shows the SDK at work instead: ewtpctl validates
# the spec's example and translates the template plugin's golden vectors.
set -eu
cd "$(dirname "$0")/.."
if [ -x build/bin/ewtpd ] && [ -f conf/dev.conf ]; then
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
  trap 'kill -TERM $daemon 2>/dev/null' INT TERM
  wait $daemon || true
  wait $daemon 2>/dev/null || true
  exit 0
fi
echo "ewtpd is not built yet: showing ewtpctl validate/translate on the examples."
example=tests/corpus/valid/spec-example-order.json
echo "== ewtpctl validate $example"
build/bin/ewtpctl validate "$example" && echo "valid"
out=var/translate
for case in plugins/template/vectors/*/; do
  [ -f "$case/input.json" ] || continue
  [ -d "$case/expected" ] || continue
  name=$(basename "$case")
  rm -rf "$out/$name"; mkdir -p "$out/$name"
  echo "== ewtpctl translate --out $out/$name $case/input.json"
  build/bin/ewtpctl translate --now 2026-11-22T12:00:00Z --out "$out/$name" "$case/input.json"
  ls "$out/$name"
done
