#!/usr/bin/env bash
# `ewtpd -t -c FILE`: exit 0 for conf/dev.conf (run from a temporary copy so its ../var
# paths land there), non-zero with FILE:LINE: setting: reason for broken files.
set -u
src=${EWTP_SOURCE_DIR:?}
build=${EWTP_BUILD_DIR:?}
ewtpd="$build/bin/ewtpd"
if [ ! -x "$ewtpd" ]; then
  echo "FAIL: $ewtpd is not built" >&2
  exit 1
fi

tmp=$(mktemp -d /tmp/ewtpd-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

mkdir -p "$tmp/conf"
cp "$src"/conf/* "$tmp/conf/"
"$src/scripts/dev-keys.sh" "$tmp" || fail "scripts/dev-keys.sh failed"

# 1. The dev configuration is valid and its plugin is loaded from a content-named copy.
out=$("$ewtpd" -t -c "$tmp/conf/dev.conf" 2>&1)
rc=$?
[ $rc -eq 0 ] || fail "ewtpd -t -c dev.conf exited $rc: $out"
echo "$out" | grep -q "configuration ok" || fail "no 'configuration ok' in: $out"
ls "$tmp"/var/run/plugins/ewtp-zz.*.so >/dev/null 2>&1 ||
  fail "no content-named plugin copy under var/run/plugins"

# 2. Several mistakes: each reported with file, line, setting and reason.
bad="$tmp/conf/bad.conf"
sed -e 's/port = 8480;/port = "8480";/' \
    -e 's/token_file = "dev-token";/token_file = "no-such-token";/' \
    -e 's/instance = "zz-test";/instance = "zz-tset";/' "$tmp/conf/dev.conf" >"$bad"
printf 'tenant_defaults = { };\n' >>"$bad"
port_line=$(grep -n 'port = "8480"' "$bad" | cut -d: -f1)
token_line=$(grep -n 'no-such-token' "$bad" | cut -d: -f1)
route_line=$(grep -n 'zz-tset' "$bad" | cut -d: -f1)
last_line=$(wc -l <"$bad")
out=$("$ewtpd" -t -c "$bad" 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "ewtpd -t accepted a broken file"
for want in "$bad:$port_line: listeners[0].port: must be an integer" \
            "$bad:$token_line: tenants[0].token_file: cannot read $tmp/conf/no-such-token: No such file or directory" \
            "$bad:$route_line: routes[0].instance: no plugin instance is named \"zz-tset\"" \
            "$bad:$last_line: unknown setting tenant_defaults"; do
  echo "$out" | grep -qF -- "$want" || fail "missing '$want' in: $out"
done

# 3. A syntax error names its line.
printf 'listeners = ( { address = "127.0.0.1"; port = 0; } );\nstate_dir = ;\n' >"$tmp/conf/syntax.conf"
out=$("$ewtpd" -t -c "$tmp/conf/syntax.conf" 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "ewtpd -t accepted a syntax error"
echo "$out" | grep -qF "$tmp/conf/syntax.conf:2: syntax error" || fail "syntax error not located: $out"

# 4. Settings a plugin refuses are reported by the plugin through the same channel.
sed -e 's/sender_id = "ZZ-DEV-SENDER";/sender_id = 5;/' "$tmp/conf/dev.conf" >"$tmp/conf/plugin.conf"
out=$("$ewtpd" -t -c "$tmp/conf/plugin.conf" 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "ewtpd -t accepted sender_id = 5"
echo "$out" | grep -qE "plugin\.conf:[0-9]+: plugins\[0\] \(zz-test\): settings\.sender_id: .*must be a string" ||
  fail "plugin setting error not reported: $out"

# 5. A missing file.
out=$("$ewtpd" -t -c "$tmp/conf/none.conf" 2>&1)
[ $? -ne 0 ] || fail "ewtpd -t accepted a missing file"
echo "$out" | grep -qF "$tmp/conf/none.conf" || fail "missing file not named: $out"

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)" >&2
  exit 1
fi
echo "ok"
