#!/usr/bin/env bash
# make run: the gateway in the foreground with conf/dev.conf (SQLite under var/, the
# authority simulators on loopback, API on http://127.0.0.1:8480, token dev-token).
# Until ewtpd exists in the build, this shows the SDK at work instead: ewtpctl validates
# the spec's example and translates the template plugin's golden vectors.
set -eu
cd "$(dirname "$0")/.."
if [ -x build/bin/ewtpd ] && [ -f conf/dev.conf ]; then
  mkdir -p var
  # The signing keys dev.conf names (var/dev-keys, self-signed, made once).
  scripts/dev-keys.sh "$PWD"
  exec build/bin/ewtpd -c conf/dev.conf
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
