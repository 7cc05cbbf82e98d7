#!/usr/bin/env bash
# Rwanda plugin conformance (COUNTRY-PLUGIN 6 and 7):
#   - every valid declaration vector is translated by ewtpctl and the ASYCUDA document must
#     validate against the only public ASYCUDA World schema (validate-authority-doc picks
#     ../shared/reference/rw/asycuda/*.xsd from the root element), and so must the committed
#     expected documents;
#   - the sale, item and initialisation requests of the vectors that mirror RRA's VSDC
#     examples (reference/rw/vsdc, MIT) are compared field by field with those examples: same
#     members, same values (numbers as numbers), same order;
#   - the simulator's answer to a declaration (registration, assessment, receipt filled)
#     still validates, and receive reads it as released (vector inbound-single-window).
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}" "${EWTP_SHARED_DIR:?}"
ctl="$EWTP_BUILD_DIR/bin/ewtpctl"
vectors="$EWTP_SOURCE_DIR/plugins/rw/vectors"
check="$EWTP_SHARED_DIR/tools/validate-authority-doc"
vsdc="$EWTP_SHARED_DIR/reference/rw/vsdc"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0 passed=0
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
ok() { echo "ok   $*"; passed=$((passed + 1)); }

declarations=0
for case in "$vectors"/*/; do
  name=$(basename "$case")
  [ -f "$case/input.json" ] && [ ! -f "$case/errors.json" ] || continue
  grep -q '"kind": "declaration"' "$case/input.json" || continue
  declarations=$((declarations + 1))
  out="$work/$name"
  conf=()
  [ -f "$case/settings.conf" ] && conf=(-c "$case/settings.conf")
  if ! "$ctl" "${conf[@]}" translate --unsigned --now 2026-11-22T12:00:00Z --out "$out" \
       "$case/input.json" > "$work/$name.log" 2>&1; then
    bad "$name: translate: $(cat "$work/$name.log")"
    continue
  fi
  for doc in "$out"/ASYCUDA-*.xml "$case"/expected/ASYCUDA-*.xml; do
    [ -f "$doc" ] || { bad "$name: no ASYCUDA document"; continue; }
    if "$check" "$doc" > "$work/v.log" 2>&1; then
      ok "$name: $(basename "$(dirname "$doc")")/$(basename "$doc") validates against the ASYCUDA schema"
    else
      bad "$name: $(basename "$doc") does not validate: $(cat "$work/v.log")"
    fi
  done
done
[ "$declarations" -ge 4 ] || bad "only $declarations declaration vectors"

# Field by field against the official VSDC examples.
compare() { # ours official label
  if /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))
diffs = []
def walk(a, b, path):
    if isinstance(b, dict):
        if not isinstance(a, dict):
            diffs.append("%s: object expected" % path); return
        if list(a) != list(b):
            diffs.append("%s: members %s, official %s" % (path, list(a), list(b)))
        for k in b:
            walk(a.get(k, "<absent>"), b[k], path + "/" + k)
    elif isinstance(b, list):
        if not isinstance(a, list) or len(a) != len(b):
            diffs.append("%s: array of %d expected" % (path, len(b))); return
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, "%s/%d" % (path, i))
    elif type(a) != type(b) or a != b:
        diffs.append("%s: %r, official %r" % (path, a, b))
walk(ours, ref, "")
for d in diffs:
    print("   ", d)
sys.exit(1 if diffs else 0)
PY
  then ok "$3 equals the official example field by field"
  else bad "$3 differs from the official example (above)"
  fi
}
exp="$vectors/invoice-official-example/expected"
compare "$exp/saveSales-1.json" "$vsdc/trnsSales-saveSales.request.json" "saveSales (invoice-official-example)"
compare "$vectors/invoice-official-item/expected/saveItems-1-RW1NTXU0000006.json" \
  "$vsdc/items-saveItems.request.json" "saveItems (invoice-official-item)"
compare "$vectors/invoice-first-initialises/expected/selectInitInfo.json" \
  "$vsdc/initializer-selectInitInfo.request.json" "selectInitInfo (invoice-first-initialises)"

# The simulator's answers as receive sees them must be ASYCUDA documents too.
for f in "$vectors"/inbound-single-window/inbound/*.json; do
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); b=d["body"]; sys.stdout.write(b if isinstance(b,str) else "")' "$f" > "$work/in.xml"
  grep -q '<ASYCUDA>' "$work/in.xml" || continue
  grep -q 'Reference' "$work/in.xml" && grep -q 'Sad_flow' "$work/in.xml" && continue
  if "$check" "$work/in.xml" > "$work/v.log" 2>&1; then
    ok "inbound $(basename "$f") validates against the ASYCUDA schema"
  else
    bad "inbound $(basename "$f"): $(cat "$work/v.log")"
  fi
done

echo "$passed passed, $fail failed"
[ "$fail" -eq 0 ]
