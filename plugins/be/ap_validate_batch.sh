#!/bin/sh
# ap_validate_batch.sh VALIDATE_SH DIR — the Belgian access point stub's validator (be_sim.c):
# the steps of the official ../shared/reference/be/peppol/validate.sh (UBL 2.1 XSD, CEN EN16931
# and Peppol BIS 3.0 schematrons, same artefacts from VALIDATE_SH's folder, same environment
# UBL_XSD_DIR and SAXON_JAR) over every DIR/*.xml at once: Saxon runs once per stage for the
# whole folder instead of four JVM starts per document, so a burst of invoices costs about
# what one does.
# Prints one line per document: NAME<TAB>EXIT<TAB>FIRST where EXIT and FIRST are what
# validate.sh would give for it alone (0 valid, 1 fatal schematron assert, 2 XSD invalid or not
# well-formed; FIRST its first stdout line, "KIND<TAB>rule<TAB>xpath<TAB>message", or empty).
# When a batch stage fails (one odd document must not sink the others) every document of the
# batch goes through validate.sh on its own. Exit 3 on a setup problem (missing tool or file).
set -u

[ $# -eq 2 ] || { echo "usage: $0 VALIDATE_SH DIR" >&2; exit 3; }
vsh=$1
dir=$2
here=$(cd "$(dirname "$vsh")" && pwd) || exit 3
ubl_dir=${UBL_XSD_DIR:-$here/../../common/ubl-2.1}
saxon=${SAXON_JAR:-/usr/share/java/Saxon-HE.jar}
command -v xmllint >/dev/null 2>&1 || { echo "$0: xmllint not found" >&2; exit 3; }
command -v java >/dev/null 2>&1 || { echo "$0: java not found" >&2; exit 3; }
[ -r "$saxon" ] || { echo "$0: Saxon-HE jar not found at $saxon" >&2; exit 3; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ap-batch.XXXXXX") || exit 3
trap 'rm -rf "$tmp"' EXIT
trap 'exit 3' INT TERM
mkdir "$tmp/ok" "$tmp/first"
tab=$(printf '\t')

one_by_one() {
    for f in "$tmp/ok"/*.xml; do
        [ -e "$f" ] || continue
        n=$(basename "$f")
        out=$(QUIET_WARNINGS=1 sh "$vsh" "$f" 2>/dev/null)
        rc=$?
        printf '%s\t%s\t%s\n' "$n" "$rc" "$(printf '%s\n' "$out" | head -n 1)"
    done
}

# Well-formedness and the UBL schema, per document (xmllint is quick).
for f in "$dir"/*.xml; do
    [ -e "$f" ] || continue
    n=$(basename "$f")
    if ! root=$(xmllint --xpath 'local-name(/*)' "$f" 2>"$tmp/wf.err"); then
        printf '%s\t2\tNOT-WELL-FORMED\t-\t-\t%s\n' "$n" "$(head -c 2000 "$tmp/wf.err" | tr '\n\t' '  ')"
        continue
    fi
    case "$root" in
        Invoice)    xsd=$ubl_dir/maindoc/UBL-Invoice-2.1.xsd ;;
        CreditNote) xsd=$ubl_dir/maindoc/UBL-CreditNote-2.1.xsd ;;
        *) printf '%s\t2\tROOT\t-\t/\troot element is '"'"'%s'"'"', expected Invoice or CreditNote\n' "$n" "$root"
           continue ;;
    esac
    [ -r "$xsd" ] || { echo "$0: UBL schema not found: $xsd" >&2; exit 3; }
    if ! xmllint --noout --nonet --schema "$xsd" "$f" >"$tmp/xsd.out" 2>&1; then
        grep -v ' validates$' "$tmp/xsd.out" | sed 's/^/XSD	-	-	/' >"$tmp/first/$n"
    fi
    cp "$f" "$tmp/ok/$n"
done
ls "$tmp/ok" | grep -q . || exit 0

# Both schematrons over the whole folder: two JVM starts per schematron.
for sch in CEN-EN16931-UBL PEPPOL-EN16931-UBL; do
    mkdir "$tmp/svrl-$sch" "$tmp/txt-$sch"
    if ! java -jar "$saxon" -s:"$tmp/ok" -xsl:"$here/xslt/$sch.xslt" -o:"$tmp/svrl-$sch" \
            2>"$tmp/$sch.err" ||
        ! java -jar "$saxon" -s:"$tmp/svrl-$sch" -xsl:"$here/svrl-report.xsl" \
            -o:"$tmp/txt-$sch" 2>>"$tmp/$sch.err"; then
        echo "$0: Saxon failed on the batch ($sch), one document at a time:" >&2
        head -c 2000 "$tmp/$sch.err" >&2
        one_by_one
        exit 0
    fi
done

for f in "$tmp/ok"/*.xml; do
    n=$(basename "$f")
    for sch in CEN-EN16931-UBL PEPPOL-EN16931-UBL; do
        [ -r "$tmp/txt-$sch/$n" ] || { one_by_one; exit 0; }
    done
done
for f in "$tmp/ok"/*.xml; do
    n=$(basename "$f")
    fatal=0
    for sch in CEN-EN16931-UBL PEPPOL-EN16931-UBL; do
        t=$tmp/txt-$sch/$n
        k=$(grep -c "^fatal$tab" "$t")
        if [ "$k" -gt 0 ]; then
            fatal=$((fatal + k))
            grep "^fatal$tab" "$t" | sed 's/^fatal/FATAL/' >>"$tmp/first/$n"
        fi
    done
    rc=0
    if [ "$fatal" -gt 0 ]; then
        rc=1
    elif [ -s "$tmp/first/$n" ]; then
        rc=2
    fi
    first=""
    [ -s "$tmp/first/$n" ] && first=$(head -n 1 "$tmp/first/$n")
    printf '%s\t%s\t%s\n' "$n" "$rc" "$first"
done
exit 0
