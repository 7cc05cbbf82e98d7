#!/usr/bin/env bash
# China plugin conformance: every valid golden vector translated *signed* (the host's TEST
# identity: SM2 for sm2-sm3, RSA for rsa-sha1) must
#   - validate against the official 2022-05 XSD of its root (validate-authority-doc), and its
#     DXP envelope against the terminal-node XSD, with Data = Base64 of the signed document;
#   - carry a signature that independent tools verify: SM2-SM3 with the openssl CLI over
#     SignedInfo canonicalised by xmllint (SM3 reference digest, distid 1234567812345678),
#     RSA-SHA1 with xmlsec1 using the certificate in KeyInfo; a tampered copy must fail;
# and the unsigned expected documents whose signature is optional must validate as they are.
set -eu
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}" "${EWTP_SHARED_DIR:?}"
ctl="$EWTP_BUILD_DIR/bin/ewtpctl"
plugins="$EWTP_BUILD_DIR/plugins"
vectors="$EWTP_SOURCE_DIR/plugins/cn/vectors"
check="$EWTP_SHARED_DIR/tools/validate-authority-doc"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0 passed=0 sm2=0 rsa=0
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# Writes si.c14n (SignedInfo with the namespaces it inherits, as inclusive C14N of a document
# subset renders them), ref.c14n (the canonical document without the Signature: enveloped
# transform), sig.bin, digest.b64 and pub.pem next to the signed file $1.
pieces() {
  local f=$1 d
  d=$(dirname "$f")
  xmllint --xpath 'string(//*[local-name()="SignatureValue"])' "$f" | base64 -d > "$d/sig.bin"
  xmllint --xpath 'string(//*[local-name()="DigestValue"])' "$f" > "$d/digest.b64"
  { echo "-----BEGIN CERTIFICATE-----"
    xmllint --xpath 'string(//*[local-name()="X509Certificate"])' "$f" | tr -d ' \n' | fold -w 64
    echo; echo "-----END CERTIFICATE-----"; } > "$d/cert.pem"
  openssl x509 -in "$d/cert.pem" -pubkey -noout > "$d/pub.pem"
  xmllint --c14n "$f" > "$d/full.c14n"
  python3 - "$d" <<'PY'
import sys
d = sys.argv[1]
full = open(d + '/full.c14n', 'rb').read()
si = full.index(b'<ds:SignedInfo>'); si_end = full.index(b'</ds:SignedInfo>') + len(b'</ds:SignedInfo>')
sig = full.index(b'<ds:Signature '); sig_end = full.index(b'</ds:Signature>') + len(b'</ds:Signature>')
head = (b'<ds:SignedInfo xmlns:ceb="http://www.chinaport.gov.cn/ceb" '
        b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#">')
open(d + '/si.c14n', 'wb').write(head + full[si + len(b'<ds:SignedInfo>'):si_end])
open(d + '/ref.c14n', 'wb').write(full[:sig] + full[sig_end:])
PY
}

verify_sm2() {
  local f=$1 d
  d=$(dirname "$f")
  pieces "$f"
  openssl pkeyutl -verify -rawin -digest sm3 -pubin -inkey "$d/pub.pem" -sigfile "$d/sig.bin" \
    -in "$d/si.c14n" -pkeyopt distid:1234567812345678 >/dev/null 2>&1 || return 1
  [ "$(openssl dgst -sm3 -binary "$d/ref.c14n" | base64)" = "$(cat "$d/digest.b64")" ]
}

verify_rsa() {
  xmlsec1 --verify --insecure --enabled-key-data x509 "$1" >/dev/null 2>&1
}

for dir in "$vectors"/*/; do
  case_name=$(basename "$dir")
  [ -d "$dir/expected" ] || continue
  out="$work/$case_name"
  args=(--plugin-dir "$plugins" --now 2026-11-22T12:00:00Z --out "$out")
  if [ -f "$dir/settings.conf" ]; then
    # With a configuration the host signs only with the configured keys: give it a fresh
    # key of the kind the case's sign_alg needs (RSA for rsa-sha1, SM2 otherwise).
    mkdir -p "$work/keys"
    if grep -q 'rsa-sha1' "$dir/settings.conf"; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/keys/$case_name.key" \
        -out "$work/keys/$case_name.crt" -subj "/CN=ewtp cn conformance TEST" -days 2 2>/dev/null
    else
      openssl genpkey -algorithm SM2 -out "$work/keys/$case_name.key" 2>/dev/null
      openssl req -x509 -key "$work/keys/$case_name.key" -sm3 -out "$work/keys/$case_name.crt" \
        -subj "/CN=ewtp cn conformance TEST" -days 2 2>/dev/null
    fi
    { cat "$dir/settings.conf"
      echo "keys = ( { name = \"cn-sign\"; key = \"$work/keys/$case_name.key\"; cert = \"$work/keys/$case_name.crt\"; } );"
    } > "$work/$case_name.conf"
    args+=(--config "$work/$case_name.conf")
  fi
  if [ -f "$dir/call.json" ]; then
    ref=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["authority_ref"])' "$dir/call.json")
    reason=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["reason"])' "$dir/call.json")
    args+=(--op cancel --authority-ref "$ref" --reason "$reason")
  fi
  if ! "$ctl" translate "${args[@]}" "$dir/input.json" > "$work/$case_name.log" 2>&1; then
    bad "$case_name: translate: $(cat "$work/$case_name.log")"; continue
  fi
  doc=$(ls "$out"/CEB*Message-*.xml | head -1)
  env=$(ls "$out"/DxpMsg-*.xml | head -1)
  if ! "$check" "$doc" > "$work/x.log" 2>&1; then bad "$case_name: $(basename "$doc") not schema-valid: $(cat "$work/x.log")"; continue; fi
  if ! "$check" "$env" > "$work/x.log" 2>&1; then bad "$case_name: envelope not schema-valid: $(cat "$work/x.log")"; continue; fi
  if ! cmp -s <(xmllint --xpath 'string(//*[local-name()="Data"])' "$env" | base64 -d) "$doc"; then
    bad "$case_name: envelope Data is not the signed document"; continue
  fi
  method=$(xmllint --xpath 'string(//*[local-name()="SignatureMethod"]/@Algorithm)' "$doc")
  case "$method" in
    *sm2-sm3) verify_sm2 "$doc" || { bad "$case_name: SM2 signature does not verify"; continue; }; sm2=$((sm2 + 1)) ;;
    *rsa-sha1) verify_rsa "$doc" || { bad "$case_name: RSA signature does not verify (xmlsec1)"; continue; }; rsa=$((rsa + 1)) ;;
    *) bad "$case_name: unexpected SignatureMethod '$method'"; continue ;;
  esac
  # A changed byte of content must break the signature.
  sed 's/<ceb:copCode>[^<]*</<ceb:copCode>TAMPERED</' "$doc" > "$out/tampered.xml"
  case "$method" in
    *sm2-sm3) if verify_sm2 "$out/tampered.xml"; then bad "$case_name: tampered SM2 document verifies"; continue; fi ;;
    *) if verify_rsa "$out/tampered.xml"; then bad "$case_name: tampered RSA document verifies"; continue; fi ;;
  esac
  # Unsigned expected output: schema-valid where the XSD makes the signature optional.
  for e in "$dir"/expected/CEB*.xml; do
    case "$(basename "$e")" in CEB621*|CEB623*|CEB625*|CEB711*) continue ;; esac
    "$check" "$e" > "$work/x.log" 2>&1 || bad "$case_name: expected $(basename "$e") not schema-valid"
  done
  echo "ok   $case_name ($(basename "$doc"), ${method##*#})"
  passed=$((passed + 1))
done
echo "$passed passed ($sm2 SM2-SM3, $rsa RSA-SHA1), $fail failed"
[ "$fail" -eq 0 ] && [ "$passed" -ge 10 ] && [ "$rsa" -ge 1 ] && [ "$sm2" -ge 1 ]
