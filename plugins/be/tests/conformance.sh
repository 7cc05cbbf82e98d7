#!/usr/bin/env bash
# Belgium conformance: every valid golden vector of plugins/be is translated again with the
# built plugin and each document is checked against the authority's rules:
#   - Peppol invoices / credit notes: ../shared/reference/be/peppol/validate.sh (UBL 2.1 XSD,
#     CEN EN16931 and Peppol BIS 3.0 schematron via Saxon-HE): zero fatal findings;
#   - H7 declarations: xmllint --schema plugins/be/schema/be-h7.xsd (our own schema: the
#     Belgian one is not public);
#   - the IDMS answer samples in tests/answers/ against the same schema;
#   - data/eas.txt (the EAS list validate compiles in) equals BR-CL-25 of the CEN schematron;
#   - a control: a tampered invoice must be refused by validate.sh (the checker works).
# Needs: xmllint (libxml2-utils), java + Saxon-HE (default-jre-headless, libsaxonhe-java).
set -u
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
shared=${EWTP_SHARED_DIR:-$EWTP_SOURCE_DIR/../shared}
here=$EWTP_SOURCE_DIR/plugins/be
ctl=$EWTP_BUILD_DIR/bin/ewtpctl
peppol=$shared/reference/be/peppol/validate.sh
xsd=$here/schema/be-h7.xsd
tmp=$(mktemp -d "${TMPDIR:-/tmp}/be-conformance.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for tool in xmllint java; do
  command -v $tool >/dev/null || { echo "conformance: $tool missing (scripts/deps.sh test)"; exit 1; }
done
[ -r /usr/share/java/Saxon-HE.jar ] || [ -n "${SAXON_JAR:-}" ] ||
  { echo "conformance: Saxon-HE missing (apt-get install libsaxonhe-java)"; exit 1; }

fail=0 invoices=0 h7=0

# data/eas.txt (compiled into validate) must still be the EAS list of BR-CL-25 in the CEN
# schematron that validate.sh runs.
cen=$shared/reference/be/peppol/sch/CEN-EN16931-UBL.sch
sch_eas=$(sed -n '/id="BR-CL-25"/p' "$cen" | sed -E "s/.*contains\\(' ([^']*) ', concat.*/\\1/" | tr ' ' '\n')
our_eas=$(grep -v '^#' "$here/data/eas.txt" | grep -v '^$')
if [ -n "$sch_eas" ] && [ "$sch_eas" = "$our_eas" ]; then
  echo "ok   data/eas.txt equals the BR-CL-25 list of $(basename "$cen") ($(echo "$our_eas" | wc -l) codes)"
else
  echo "FAIL data/eas.txt differs from the BR-CL-25 list of $cen"
  diff <(echo "$sch_eas") <(echo "$our_eas") | head -20
  fail=1
fi

for dir in "$here"/vectors/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  [ -f "$dir/errors.json" ] && continue
  [ -f "$dir/input.json" ] || continue # inbound-only cases (answers-explained)
  cfg=()
  [ -f "$dir/settings.conf" ] && cfg=(--config "$dir/settings.conf")
  out=$tmp/$name
  if ! "$ctl" translate --plugin-dir "$EWTP_BUILD_DIR/plugins" "${cfg[@]}" --unsigned \
       --now 2026-11-22T12:00:00Z --out "$out" "$dir/input.json" >"$tmp/$name.log" 2>&1; then
    echo "FAIL $name: translate"; cat "$tmp/$name.log"; fail=1; continue
  fi
  for doc in "$out"/*.xml; do
    case $(basename "$doc") in
      BE-invoice-*|BE-creditnote-*)
        invoices=$((invoices + 1))
        if QUIET_WARNINGS=1 "$peppol" "$doc" >"$tmp/v.out" 2>&1; then
          echo "ok   $name: $(basename "$doc") (UBL XSD + EN16931 + Peppol, 0 fatal)"
        else
          echo "FAIL $name: $(basename "$doc")"; cat "$tmp/v.out"; fail=1
        fi ;;
      BE-H7-*)
        h7=$((h7 + 1))
        if xmllint --noout --nonet --schema "$xsd" "$doc" >"$tmp/x.out" 2>&1; then
          echo "ok   $name: $(basename "$doc") (be-h7.xsd)"
        else
          echo "FAIL $name: $(basename "$doc")"; cat "$tmp/x.out"; fail=1
        fi ;;
      *) echo "FAIL $name: unexpected document $(basename "$doc")"; fail=1 ;;
    esac
  done
done

for ans in "$here"/tests/answers/*.xml; do
  [ -f "$ans" ] || continue
  case $(basename "$ans") in
    mls-*) continue ;; # Peppol MLS samples: UBL ApplicationResponse, not our schema
  esac
  if xmllint --noout --nonet --schema "$xsd" "$ans" >"$tmp/a.out" 2>&1; then
    echo "ok   answer $(basename "$ans") (be-h7.xsd)"
  else
    echo "FAIL answer $(basename "$ans")"; cat "$tmp/a.out"; fail=1
  fi
done

# Control: the checker must refuse a wrong total (BR-CO-15/16).
ctl_doc=$tmp/invoice-standard-21/BE-invoice-be-inv-0001.xml
if [ -f "$ctl_doc" ]; then
  sed 's#<cbc:PayableAmount currencyID="EUR">242.00#<cbc:PayableAmount currencyID="EUR">243.00#' \
    "$ctl_doc" >"$tmp/tampered.xml"
  QUIET_WARNINGS=1 "$peppol" "$tmp/tampered.xml" >"$tmp/t.out" 2>&1
  rc=$?
  if [ $rc -eq 1 ]; then
    echo "ok   control: tampered invoice refused ($(grep -c '^FATAL' "$tmp/t.out") fatal)"
  else
    echo "FAIL control: tampered invoice gave exit $rc"; cat "$tmp/t.out"; fail=1
  fi
fi

echo "invoices checked: $invoices, H7 declarations checked: $h7"
[ "$invoices" -ge 1 ] && [ "$h7" -ge 1 ] || fail=1
exit $fail
