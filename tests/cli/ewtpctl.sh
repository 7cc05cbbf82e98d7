#!/usr/bin/env bash
# ewtpctl validate / translate as users and scripts see them: exit codes, the errors JSON on
# stdout, stdin input, usage errors, signed output verified by xmlsec1 independently.
set -u
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
ctl="$EWTP_BUILD_DIR/bin/ewtpctl"
py=/usr/bin/python3
corpus="$EWTP_SOURCE_DIR/tests/corpus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

expect_rc() { # want_rc description command...
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, want $want; stdout: $(head -c 400 "$tmp/out") stderr: $(head -c 400 "$tmp/err")"; fi
}

# The corpus is about the common model: no plugin is loaded for it (so ZZ is no destination).
mkdir -p "$tmp/noplugins"
# Every valid corpus file validates (exit 0), also from stdin.
for f in "$corpus"/valid/*.json; do
  expect_rc 0 "validate $(basename "$f")" "$ctl" validate --plugin-dir "$tmp/noplugins" "$f"
done
expect_rc 0 "validate from stdin" sh -c "\"$ctl\" validate - < \"$corpus/valid/spec-example-order.json\""

# Every invalid corpus file exits 1 with each expected pointer and code in the JSON on stdout.
for f in "$corpus"/invalid/*.json; do
  exp="${f%.json}.expect"
  "$ctl" validate --plugin-dir "$tmp/noplugins" "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ "$rc" -ne 1 ]; then bad "validate $(basename "$f"): exit $rc, want 1"; continue; fi
  if [ -f "$exp" ]; then
    if $py - "$tmp/out" "$exp" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["errors"]
pairs = {(e["pointer"], e["code"]) for e in got}
assert all(set(e) >= {"pointer", "code", "message"} and e["message"] for e in got)
missing = []
for line in open(sys.argv[2]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    parts = line.split()
    # "pointer code", or just "code" for the whole document (pointer "")
    pointer, code = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
    if pointer == '""':
        pointer = ""
    if (pointer, code) not in pairs:
        missing.append(line)
if missing:
    print("missing:", missing, "got:", sorted(pairs))
    sys.exit(1)
PY
    then ok; else bad "validate $(basename "$f"): expected pointers not reported"; fi
  else
    ok
  fi
done

# Usage and I/O errors exit 2 with a sentence on stderr.
expect_rc 2 "missing file" "$ctl" validate "$tmp/does-not-exist.json"
expect_rc 2 "unknown option" "$ctl" validate --bogus "$corpus/valid/spec-example-order.json"
expect_rc 2 "no command" "$ctl"
expect_rc 2 "translate without --out" "$ctl" translate "$corpus/valid/spec-example-order.json"
expect_rc 2 "bad --now" "$ctl" validate --now yesterday "$corpus/valid/spec-example-order.json"
expect_rc 2 "bad --chain" "$ctl" translate --chain x --out "$tmp/x" "$corpus/valid/spec-example-order.json"

# Not JSON at all: invalid (exit 1) with a pointer "" error.
printf '{"schema": "ewtp/1",' >"$tmp/trunc.json"
expect_rc 1 "truncated JSON" "$ctl" validate "$tmp/trunc.json"

# Signed translation with the template plugin's test identity: xmlsec1 verifies it with the
# certificate the document carries; a tampered copy fails.
case_dir="$EWTP_SOURCE_DIR/plugins/template/vectors/order-basic"
expect_rc 0 "translate signed" "$ctl" translate --now 2026-11-22T12:00:00Z --out "$tmp/signed" "$case_dir/input.json"
doc="$tmp/signed/ZZ-order-zz-ord-0001.xml"
if [ -f "$doc" ] && grep -q "<ds:Signature" "$doc"; then ok; else bad "signed document missing or unsigned"; fi
if xmlsec1 --verify --insecure --enabled-key-data x509 "$doc" >"$tmp/xmlsec.out" 2>&1; then ok; else bad "xmlsec1 --verify: $(cat "$tmp/xmlsec.out")"; fi
sed 's/Wool scarf/Silk scarf/' "$doc" >"$tmp/tampered.xml"
if xmlsec1 --verify --insecure --enabled-key-data x509 "$tmp/tampered.xml" >/dev/null 2>&1; then bad "tampered document verified"; else ok; fi
grep -q '"Authorization": "\*\*\*"' "$tmp/signed/requests.json" && ok || bad "secret header not masked in requests.json"
grep -q 'test-token' "$tmp/signed/requests.json" && bad "token leaked into requests.json" || ok

# --unsigned output is byte-identical to the golden vector (after C14N, checked by plugin
# check); here: no signature.
expect_rc 0 "translate unsigned" "$ctl" translate --unsigned --now 2026-11-22T12:00:00Z --out "$tmp/unsigned" "$case_dir/input.json"
grep -q "Signature" "$tmp/unsigned/ZZ-order-zz-ord-0001.xml" && bad "unsigned output has a signature" || ok

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
