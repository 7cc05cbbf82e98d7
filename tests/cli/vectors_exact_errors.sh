#!/usr/bin/env bash
# `ewtpctl plugin check`: an invalid vector's errors.json is the exact set of (pointer, code)
# errors. From one real invalid vector (plugins/cn/vectors/invalid-311-six-decimals, four
# errors) three copies: as is (passes), one listed error removed (the plugin then reports an
# error errors.json does not list: fails), one error added that the plugin does not report
# (fails).
set -u
: "${EWTP_SOURCE_DIR:?}" "${EWTP_BUILD_DIR:?}"
ctl="$EWTP_BUILD_DIR/bin/ewtpctl"
case_dir="$EWTP_SOURCE_DIR/plugins/cn/vectors/invalid-311-six-decimals"
tmp=$(mktemp -d /tmp/ewtp-exact.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

for v in exact fewer more; do
  mkdir -p "$tmp/$v/case"
  cp "$case_dir/input.json" "$tmp/$v/case/"
done
cp "$case_dir/errors.json" "$tmp/exact/case/errors.json"
/usr/bin/python3 - "$case_dir/errors.json" "$tmp" <<'EOF'
import json, sys
errs = json.load(open(sys.argv[1]))["errors"]
assert len(errs) >= 2, errs
json.dump({"errors": errs[1:]}, open(sys.argv[2] + "/fewer/case/errors.json", "w"))
json.dump({"errors": errs + [{"pointer": "/order/freight", "code": "format"}]},
          open(sys.argv[2] + "/more/case/errors.json", "w"))
EOF

run() { "$ctl" plugin check --plugin-dir "$EWTP_BUILD_DIR/plugins" "$tmp/$1" >"$tmp/$1.out" 2>&1; }
if run exact; then echo "ok: the exact errors pass"; else fail "exact errors.json: $(cat "$tmp/exact.out")"; fi
if run fewer; then
  fail "errors.json without $(head -c 200 "$case_dir/errors.json"): an unlisted error passed"
elif grep -q "unexpected error" "$tmp/fewer.out"; then
  echo "ok: an error errors.json does not list fails the case"
else
  fail "fewer: failed for another reason: $(cat "$tmp/fewer.out")"
fi
if run more; then
  fail "an error listed but not reported passed"
elif grep -q "not reported" "$tmp/more.out"; then
  echo "ok: a listed error that is not reported fails the case"
else
  fail "more: failed for another reason: $(cat "$tmp/more.out")"
fi
[ $fails -eq 0 ] || exit 1
