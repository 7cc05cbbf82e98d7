#!/usr/bin/env bash
# ewtpctl migrate-store --from sqlite:PATH --to conninfo_file:FILE (issue 16): a SQLite store
# written by a real ewtpd is copied into an empty PostgreSQL 15 database (a throwaway server of
# tests/pg_test_server.sh): the same rows in every table, the evidence (issue 18) byte for
# byte, ewtpd on the copy answers for the same messages and builds the same evidence, and a
# second copy into the now non-empty database is refused. --without-evidence into a second
# database copies the rest and leaves the evidence in the file.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EWTP_TEST_PG_CONNINFO:-}" ]; then
  exec bash "$here/../pg_test_server.sh" run bash "$0" "$@"
fi
src=${EWTP_SOURCE_DIR:-$here/../..}
build=${EWTP_BUILD_DIR:-$src/build}
psql_() { /usr/lib/postgresql/15/bin/psql "${2:-$EWTP_TEST_PG_CONNINFO}" -At -c "$1"; }
tmp=$(mktemp -d /tmp/ewtp-migrate.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

api=$(port)
dead=$(port) # nothing listens there: deliveries fail and wait to be retried
mkdir -p "$tmp/run"
echo migrate-token-0123456789 >"$tmp/token"
printf '%s\n' "$EWTP_TEST_PG_CONNINFO" >"$tmp/conninfo"
psql_ "CREATE DATABASE ewtp_noev" >/dev/null
noev=${EWTP_TEST_PG_CONNINFO/dbname=ewtp/dbname=ewtp_noev}
printf '%s\n' "$noev" >"$tmp/conninfo-noev"
chmod 600 "$tmp/token" "$tmp/conninfo" "$tmp/conninfo-noev"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/evidence.key" -out "$tmp/evidence.crt" \
  -days 2 -subj "/CN=ewtp migrate evidence TEST" 2>/dev/null
chmod 600 "$tmp/evidence.key"
conf() { # store line
  cat <<CONF
plugin_dir = "$build/plugins";
dev_mode = true;
state_dir = "$tmp/run";
admin_socket = "$tmp/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = $api; } );
tenants = ( { id = "t1"; token_file = "token"; destinations = [ "*" ]; } );
keys = ( { name = "evidence"; key = "$tmp/evidence.key"; cert = "$tmp/evidence.crt"; } );
evidence = { key = "evidence"; };
$1
delivery = { max_attempts = 1; base_delay_ms = 60000; max_delay_ms = 60000;
  request_timeout_ms = 1000; lease_ms = 5000; scan_interval_ms = 50; };
plugins = ( { name = "zz-m"; plugin = "zz"; settings = { sign_key = ""; };
  transport = "https"; endpoint = "http://127.0.0.1:$dead"; } );
routes = ( { destination = "ZZ"; instance = "zz-m"; } );
CONF
}
conf 'store = { backend = "sqlite"; path = "store.db"; };' >"$tmp/sqlite.conf"
conf 'store = { backend = "postgresql"; conninfo_file = "conninfo"; };' >"$tmp/pg.conf"
up() {
  "$build/bin/ewtpd" -c "$1" >>"$tmp/ewtpd.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  fail "ewtpd did not come up"; tail -20 "$tmp/ewtpd.log"; return 1
}
down() { kill "$pid"; wait "$pid"; pid=; }
# The sha256 of each sent request and raw answer in m's evidence bundle, in order.
evidence_of() {
  curl -s -H "Authorization: Bearer migrate-token-0123456789" \
    "http://127.0.0.1:$api/v1/messages/$1/evidence" | python3 -c '
import io, json, sys, tarfile
t = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
m = json.load(t.extractfile("manifest.json"))
print(" ".join(e["sha256"] for e in m["entries"] if e["kind"] in ("request", "answer")))'
}
state_of() {
  curl -s -H "Authorization: Bearer migrate-token-0123456789" \
    "http://127.0.0.1:$api/v1/messages/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state"))'
}

up "$tmp/sqlite.conf" || exit 1
for i in 1 2 3 4 5; do
  body=$(python3 - "$src/plugins/template/vectors/order-basic/input.json" "m-$i" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["id"] = sys.argv[2]; m["order"]["number"] = "SO-" + sys.argv[2]
print(json.dumps(m))
PY
)
  st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer migrate-token-0123456789" \
    -H 'Content-Type: application/json' --data "$body" "http://127.0.0.1:$api/v1/messages")
  [ "$st" = 202 ] || fail "POST m-$i: $st"
done
# The only delivery attempt fails (nothing listens): events, evidence, dead states that no
# later attempt changes (a retry, due at a random time, could come before the checks below).
sleep 1
before=$(state_of m-1)
ev_before=$(evidence_of m-1)
[ -n "$ev_before" ] && ok "m-1 has evidence on SQLite ($(echo $ev_before | wc -w) entries)" ||
  fail "m-1 has no evidence on SQLite"
down

# The delivery attempts left evidence: a plain copy takes it along.
out=$("$build/bin/ewtpctl" migrate-store --from "sqlite:$tmp/store.db" --to "conninfo_file:$tmp/conninfo" 2>&1)
rc=$?
[ $rc = 0 ] && [[ $out != *"stay in"* ]] && ok "migrate-store copies the evidence: $out" ||
  fail "migrate-store exit $rc: $out"
for t in messages relations events receipts chains refs webhooks ops key_states evidence; do
  a=$(sqlite3 "$tmp/store.db" "SELECT count(*) FROM $t")
  b=$(psql_ "SELECT count(*) FROM $t")
  [ "$a" = "$b" ] && ok "$t: $a rows in both" || fail "$t: $a rows in SQLite, $b in PostgreSQL"
done
a=$(sqlite3 "$tmp/store.db" "SELECT group_concat(eid || ':' || seq || ':' || name || ':' || hex(body), ',') FROM (SELECT * FROM evidence ORDER BY eid)")
b=$(psql_ "SELECT string_agg(eid || ':' || seq || ':' || name || ':' || upper(encode(body, 'hex')), ',' ORDER BY eid) FROM evidence")
[ -n "$a" ] && [ "$a" = "$b" ] && ok "evidence: the same bodies, byte for byte" || fail "evidence differs"

# --without-evidence (into a second database): the rest, and a sentence on what stays behind.
out=$("$build/bin/ewtpctl" migrate-store --from "sqlite:$tmp/store.db" --to "conninfo_file:$tmp/conninfo-noev" --without-evidence 2>&1)
rc=$?
n=$(sqlite3 "$tmp/store.db" "SELECT count(*) FROM evidence")
[ $rc = 0 ] && [[ $out == *"$n evidence entries stay in"* ]] && ok "migrate-store --without-evidence: $out" ||
  fail "migrate-store --without-evidence exit $rc: $out"
[ "$(psql_ "SELECT count(*) FROM evidence" "$noev")" = 0 ] &&
  [ "$(psql_ "SELECT count(*) FROM messages" "$noev")" = "$(sqlite3 "$tmp/store.db" "SELECT count(*) FROM messages")" ] &&
  ok "--without-evidence: the messages without their evidence" || fail "--without-evidence copied evidence or lost messages"
a=$(sqlite3 "$tmp/store.db" "SELECT group_concat(seq || ':' || id || ':' || state || ':' || attempts, ',') FROM (SELECT * FROM messages ORDER BY seq)")
b=$(psql_ "SELECT string_agg(seq || ':' || id || ':' || state || ':' || attempts, ',' ORDER BY seq) FROM messages")
[ "$a" = "$b" ] && ok "messages keep their seq, state and attempts" || fail "messages: $a vs $b"

out=$("$build/bin/ewtpctl" migrate-store --from "sqlite:$tmp/store.db" --to "conninfo_file:$tmp/conninfo" --without-evidence 2>&1)
rc=$?
[ $rc = 2 ] && [[ $out == *"not empty"* ]] && ok "a second copy is refused: $out" ||
  fail "second migrate-store: exit $rc: $out"
out=$("$build/bin/ewtpctl" migrate-store --from "$tmp/store.db" --to "conninfo_file:$tmp/conninfo" 2>&1)
[ $? = 2 ] && ok "--from without sqlite: is a usage error" || fail "bad --from accepted: $out"

up "$tmp/pg.conf" || exit 1
after=$(state_of m-1)
[ -n "$before" ] && [ "$before" = "$after" ] && ok "ewtpd on PostgreSQL answers for m-1 ($after)" ||
  fail "m-1 was $before on SQLite, $after on PostgreSQL"
[ "$(state_of m-5)" != None ] && ok "m-5 found on PostgreSQL" || fail "m-5 not found"
ev_after=$(evidence_of m-1)
[ "$ev_before" = "$ev_after" ] && ok "ewtpd on PostgreSQL builds m-1's bundle with the same sent and answered bytes" ||
  fail "m-1's evidence: '$ev_before' on SQLite, '$ev_after' on PostgreSQL"
down
[ $fails = 0 ] && echo "migrate_store: all ok" || echo "migrate_store: $fails failed"
exit $((fails > 0))
