#!/usr/bin/python3
"""The HTTP API of the real ewtpd: status codes, bodies, TLS and mTLS, limits, shutdown.

Starts build/bin/ewtpd with a temporary configuration (plain, TLS, mTLS and admin
listeners on ephemeral loopback ports; two token tenants and a client-certificate tenant;
the template plugin "zz" unsigned, delivering to a port nobody listens on, so deliveries
just retry) and drives it with the standard library only.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (PLUGINS, SRC, check, check_config, checks, free_port,  # noqa: E402
                          http_call, load_json, log_tail, make_tmp, openssl, parse_json, read_log,
                          remove_tmp, sanitizer_report, spawn_ewtpd, stop, wait_until,
                          write_token, zz_order)

HEADER_TIMEOUT_MS = 1500


def make_pki(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=ewtp test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, subj in (("server", "/CN=127.0.0.1"),
                       ("client", "/C=CN/O=Example Ltd/CN=shop.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt",
                cwd=d)
    # A second customer's CA, also trusted by the mTLS listener, and a certificate it issued
    # with the subject of the first customer's tenant (issue 19).
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=ewtp second test CA", "-keyout", "ca2.key", "-out", "ca2.crt", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/C=CN/O=Example Ltd/CN=shop.example",
            "-keyout", "forged.key", "-out", "forged.csr", cwd=d)
    openssl("x509", "-req", "-in", "forged.csr", "-CA", "ca2.crt", "-CAkey", "ca2.key",
            "-CAcreateserial", "-days", "2", "-extfile", "client.ext", "-out", "forged.crt", cwd=d)
    with open(os.path.join(d, "clients-ca.crt"), "w") as out:
        for name in ("ca.crt", "ca2.crt"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())


def write_config(d):
    for name, token in (("t1.token", "token-one-of-the-http-api-test-0001"), ("t2.token", "token-two-of-the-http-api-test-0002"),
                        ("inbound.token", "inbound-secret-of-the-http-api-0003")):
        write_token(d, name, token, 0o600)
    conf = """
plugin_dir = "%(plugins)s";
state_dir = "%(d)s/run";
admin_socket = "%(d)s/run/ewtpd.sock";
listeners = (
  { address = "127.0.0.1"; port = 0; },
  { address = "127.0.0.1"; port = 0; tls = true; cert_file = "server.crt"; key_file = "server.key"; },
  { address = "127.0.0.1"; port = 0; tls = true; cert_file = "server.crt"; key_file = "server.key";
    client_ca_file = "clients-ca.crt"; },
  { address = "127.0.0.1"; port = 0; admin = true; }
);
tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "ZZ" ]; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "CN" ]; },
  { id = "shop"; cert_subject = "CN=shop.example,O=Example Ltd,C=CN"; cert_ca_file = "ca.crt";
    destinations = [ "*" ]; }
);
store = { backend = "sqlite"; path = "%(d)s/ewtpd.sqlite"; };
delivery = { max_attempts = 50; base_delay_ms = 60000; max_delay_ms = 600000; scan_interval_ms = 200;
             request_timeout_ms = 2000; workers = 2; };
limits = { timeout_ms = 5000; header_timeout_ms = %(ht)d; max_pending = 10000; };
plugins = (
  { name = "zz-test"; plugin = "zz"; settings = { sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%(dead)d";
    inbound_token_file = "inbound.token"; }
);
routes = ( { destination = "ZZ"; instance = "zz-test"; } );
""" % {"plugins": PLUGINS, "d": d, "ht": HEADER_TIMEOUT_MS,
       "dead": free_port()}
    path = os.path.join(d, "ewtpd.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def config_checks(d, conf):
    """Issue 19: secrets and dev_mode, through ewtpd -t on variants of the test's config."""
    text = open(conf).read()

    def variant(name, new_text):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(new_text)
        return check_config(path)

    r = check_config(conf)
    check(r.returncode == 0, "the test's configuration passes ewtpd -t (%s)" % r.stderr[-300:])
    os.chmod(os.path.join(d, "t1.token"), 0o644)
    r = variant("readable.conf", text)
    os.chmod(os.path.join(d, "t1.token"), 0o600)
    check(r.returncode != 0 and "t1.token is readable by its group or others (mode 0644)"
          in r.stderr and "tenants[0].token_file" in r.stderr,
          "a token file of mode 0644 is refused with a sentence (%s)" % r.stderr[-300:])
    write_token(d, "short.token", "x" * 31, 0o600)
    r = variant("short.conf", text.replace('"t1.token"', '"short.token"'))
    check(r.returncode != 0 and "a token of 31 bytes: a bearer token needs at least 32"
          in r.stderr, "a 31-byte bearer token is refused (%s)" % r.stderr[-300:])
    r = variant("devshort.conf", "dev_mode = true;\n" + text.replace('"t1.token"', '"short.token"'))
    check(r.returncode == 0, "dev_mode accepts a short token on loopback (%s)" % r.stderr[-300:])
    r = variant("devwide.conf", "dev_mode = true;\n" + text.replace(
        '{ address = "127.0.0.1"; port = 0; admin = true; }',
        '{ address = "0.0.0.0"; port = 0; admin = true; }'))
    check(r.returncode != 0 and "dev_mode: is only allowed when every listener is on loopback"
          in r.stderr, "dev_mode refused with a listener on 0.0.0.0 (%s)" % r.stderr[-300:])
    r = variant("prefix.conf", text.replace(
        '{ address = "127.0.0.1"; port = 0; },', '{ address = "127.0.0.1.nip.io"; port = 0; },', 1))
    check(r.returncode != 0 and "127.0.0.1.nip.io would carry tenants' tokens in clear"
          in r.stderr, "loopback is an address, not the text prefix 127. (%s)" % r.stderr[-300:])
    r = variant("metricsshort.conf", 'metrics_token_file = "short.token";\n' + text)
    check(r.returncode != 0 and "metrics_token_file" in r.stderr
          and "a bearer token needs at least 32" in r.stderr,
          "a 31-byte metrics token is refused (%s)" % r.stderr[-300:])
    r = variant("metricstenant.conf", 'metrics_token_file = "t1.token";\n' + text)
    check(r.returncode != 0 and "holds the same token as tenants[0]" in r.stderr,
          "a tenant's token as the metrics token is refused (%s)" % r.stderr[-300:])
    r = variant("noca.conf", text.replace(' cert_ca_file = "ca.crt";', ''))
    check(r.returncode != 0 and "tenants[2].cert_ca_file: required with cert_subject" in r.stderr,
          "a certificate tenant without its own CA is refused (%s)" % r.stderr[-300:])
    r = variant("webhook.conf", text.replace(
        'token_file = "t2.token";', 'token_file = "t2.token"; webhook_url = "https://example.com/h";'))
    check(r.returncode != 0 and "tenants[1].webhook_secret_file: required when webhook_url is set"
          in r.stderr, "a webhook_url without a secret is refused (%s)" % r.stderr[-300:])


class Daemon:
    """ewtpd on conf; .ports are its four listeners' ports, in the configuration's order, as
    it logs them ("listening on http(s)://...:port")."""

    def __init__(self, conf, d):
        self.p = spawn_ewtpd(conf, os.path.join(d, "ewtpd.log"))

        def listening():
            self.ports = [int(m) for m in re.findall(r"listening on https?://[^ ]*:(\d+)",
                                                     self.text())]
            return len(self.ports) >= 4 or self.p.poll() is not None
        wait_until(listening, 30, 0.1)
        if len(self.ports) < 4:
            sys.stderr.write(self.text())
            raise SystemExit("ewtpd did not start")

    def text(self):
        return read_log(self.p.log_path)


def request(port, method, path, body=None, token=None, headers=None, ctx=None, raw=False):
    """(status, JSON answer or, with raw, its bytes, headers); https when ctx is given. A body
    given as bytes or str goes without a Content-Type."""
    url = "%s://127.0.0.1:%d%s" % ("https" if ctx is not None else "http", port, path)
    st, data, hdrs = http_call(method, url, body=body, token=token, headers=headers,
                               ctype=None if isinstance(body, (bytes, str)) else "application/json",
                               timeout=20, context=ctx)
    return st, (data if raw else parse_json(data)), hdrs


def order(id_, sku="SKU-1"):
    m = zz_order(id_)
    m["order"]["lines"][0]["sku"] = sku
    return m


def reorder(obj):
    """The same JSON value with members in reverse order."""
    if isinstance(obj, dict):
        return {k: reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [reorder(x) for x in obj]
    return obj


def is_error_json(doc):
    return isinstance(doc, dict) and ("error" in doc or "errors" in doc)


def main():
    tmp = make_tmp("ewtp-http-")
    make_pki(tmp)
    conf = write_config(tmp)
    config_checks(tmp, conf)
    dmn = Daemon(conf, tmp)
    plain, tls, mtls, admin = dmn.ports
    T1, T2 = "token-one-of-the-http-api-test-0001", "token-two-of-the-http-api-test-0002"

    # ---- submit, idempotency ---------------------------------------------------------------
    m = order("ord-1")
    st, doc, _ = request(plain, "POST", "/v1/messages", m, T1)
    check(st == 202 and doc == {"id": "ord-1", "state": "accepted"}, "POST new -> 202 %s" % doc)
    body = json.dumps(reorder(m), indent=3)
    st, doc, _ = request(plain, "POST", "/v1/messages", body, T1)
    check(st == 200 and doc.get("id") == "ord-1" and "state" in doc and doc.get("tenant") == "t1",
          "exact repeat (reordered, whitespace) -> 200 with status %s" % st)
    st, doc, _ = request(plain, "POST", "/v1/messages", order("ord-1", sku="OTHER"), T1)
    check(st == 409 and doc.get("error") == "conflict", "same id, other content -> 409")

    st, doc, _ = request(plain, "POST", "/v1/messages", '{"schema": "ewtp/1", "id": ', T1)
    check(st == 400 and isinstance(doc.get("errors"), list) and doc["errors"],
          "broken JSON -> 400 with errors")
    bad = load_json(os.path.join(SRC, "plugins/template/vectors/invalid-missing-hs-code",
                                 "input.json"))
    st, doc, _ = request(plain, "POST", "/v1/messages", bad, T1)
    ptrs = [e.get("pointer") for e in (doc or {}).get("errors", [])]
    check(st == 422 and any(p and p.endswith("/hs_code") for p in ptrs),
          "plugin-invalid -> 422 with pointers %s" % ptrs)
    bad2 = order("ord-bad")
    bad2["order"]["lines"][0]["amount"] = "31.00"
    del bad2["order"]["currency"]
    st, doc, _ = request(plain, "POST", "/v1/messages", bad2, T1)
    ptrs = [e.get("pointer") for e in (doc or {}).get("errors", [])]
    check(st == 422 and "/order/currency" in ptrs and len(ptrs) >= 2,
          "model-invalid -> 422 with every error %s" % ptrs)
    other = order("ord-cn")
    other["destination"] = "XX"
    st, doc, _ = request(plain, "POST", "/v1/messages", other, T1)
    check(st == 422, "unknown destination -> 422 (%s)" % st)

    # ---- auth --------------------------------------------------------------------------------
    st, doc, _ = request(plain, "POST", "/v1/messages", m)
    check(st == 401 and doc.get("error") == "unauthorized", "no token -> 401 JSON")
    st, doc, _ = request(plain, "GET", "/v1/messages/ord-1", token="wrong")
    check(st == 401 and doc.get("error") == "unauthorized", "wrong token -> 401 JSON")
    st, doc, _ = request(plain, "POST", "/v1/messages", order("ord-t2"), T2)
    check(st == 403 and doc.get("error") == "forbidden", "destination not allowed -> 403")
    st, doc, _ = request(plain, "GET", "/v1/messages/ord-1", token=T2)
    check(st == 404 and doc.get("error") == "not_found", "another tenant's id -> 404")
    st, doc, _ = request(plain, "GET", "/v1/messages/nope", token=T1)
    check(st == 404 and is_error_json(doc), "unknown id -> 404")
    st, doc, _ = request(plain, "GET", "/v1/nothing", token=T1)
    check(st == 404 and is_error_json(doc), "unknown path -> 404 JSON")
    st, doc, h = request(plain, "DELETE", "/v1/messages", token=T1)
    check(st == 405 and is_error_json(doc) and "allow" in h, "wrong method -> 405 JSON + Allow")

    # ---- limits --------------------------------------------------------------------------------
    big = b'{"schema":"ewtp/1","pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    try:
        st, doc, _ = request(plain, "POST", "/v1/messages", big, T1)
    except (ConnectionError, BrokenPipeError) as e:
        st, doc = 0, {"_exc": str(e)}
    check(st == 413 and is_error_json(doc), "2 MiB body -> 413 JSON (%s %s)" % (st, doc))
    st, doc, _ = request(plain, "GET", "/v1/messages", token=T1,
                         headers={"X-Big": "y" * 20000})
    check(st == 400 and is_error_json(doc), "huge header -> 400 JSON (%s)" % st)

    # ---- reading -------------------------------------------------------------------------------
    st, doc, _ = request(plain, "GET", "/v1/messages/ord-1", token=T1)
    check(st == 200 and doc.get("id") == "ord-1" and doc.get("plugin") == "zz-test",
          "GET status -> 200 %s" % (doc or {}).get("state"))
    st, doc, _ = request(plain, "GET", "/v1/messages/ord-1/events", token=T1)
    check(st == 200 and isinstance(doc.get("events"), list) and doc["events"]
          and doc["events"][0].get("type") == "accepted", "GET events -> 200")
    for i in range(2, 6):
        st, _, _ = request(plain, "POST", "/v1/messages", order("ord-%d" % i), T1)
        check(st == 202, "POST ord-%d -> 202" % i)
    seen, after, pages = [], None, 0
    while pages < 20:
        q = "/v1/messages?limit=2" + ("&after=" + after if after else "")
        st, doc, _ = request(plain, "GET", q, token=T1)
        if st != 200:
            break
        pages += 1
        seen += [it["id"] for it in doc["items"]]
        after = doc.get("next")
        if not after:
            break
    check(seen == ["ord-%d" % i for i in range(1, 6)] and pages == 3,
          "list with cursor pages through all (%s, %d pages)" % (seen, pages))
    st, doc, _ = request(plain, "GET", "/v1/messages?state=bogus", token=T1)
    check(st == 400 and is_error_json(doc), "list with bad state -> 400")
    st, doc, _ = request(plain, "GET", "/v1/messages?after=garbage", token=T1)
    check(st == 400 and is_error_json(doc), "list with bad cursor -> 400")
    # Cursors are sealed per tenant (issue 19): they do not show the store's global sequence
    # (which would tell a tenant how much everyone sends), and one tenant's cursor, or an
    # altered one, is refused.
    cursors = []
    for _ in range(2):
        st, doc, _ = request(plain, "GET", "/v1/messages?limit=2", token=T1)
        cursors.append((doc or {}).get("next") or "")
    st, doc, _ = request(plain, "GET", "/v1/messages?limit=4", token=T1)
    cursors.append((doc or {}).get("next") or "")
    check(all(re.fullmatch(r"[A-Za-z0-9_-]{70}", c) for c in cursors)
          and not any(re.search(r"\d{2,}", c) and c.isdigit() for c in cursors)
          and cursors[0] != cursors[1],
          "cursors are opaque, of one length whatever the position, fresh each time (%s)"
          % cursors)
    st, doc, _ = request(plain, "GET", "/v1/messages?limit=2&after=" + cursors[0], token=T2)
    check(st == 400 and (doc or {}).get("message") == "after is not a cursor this gateway gave out",
          "another tenant's cursor -> 400 (%s %s)" % (st, doc))
    c0 = cursors[0].ljust(41, "A")
    flipped = c0[:40] + ("A" if c0[40] != "A" else "B") + c0[41:]
    st, doc, _ = request(plain, "GET", "/v1/messages?limit=2&after=" + flipped, token=T1)
    check(st == 400, "an altered cursor -> 400 (%s)" % st)
    st, doc, _ = request(plain, "GET", "/v1/messages?limit=2&after=" + cursors[1], token=T1)
    check(st == 200 and [it["id"] for it in doc["items"]] == ["ord-3", "ord-4"],
          "a cursor handed out twice resumes at the same place (%s)" % (doc or {}).get("items"))
    st, doc, _ = request(plain, "GET", "/v1/messages?destination=ZZ&limit=1000", token=T1)
    check(st == 200 and len(doc["items"]) == 5, "list filtered by destination")
    st, doc, _ = request(plain, "GET", "/v1/messages", token=T2)
    check(st == 200 and doc["items"] == [], "another tenant lists nothing")

    # ---- cancel and inbound ------------------------------------------------------------------
    st, doc, _ = request(plain, "POST", "/v1/messages/ord-2/cancel", {}, T1)
    check(st == 422 and is_error_json(doc), "cancel without reason -> 422")
    st, doc, _ = request(plain, "POST", "/v1/messages/ord-2/cancel", {"reason": "customer"}, T1)
    check(st == 202 and isinstance(doc, dict), "cancel -> 202 (%s %s)" % (st, doc))
    st, doc, _ = request(plain, "POST", "/v1/messages/nope/cancel", {"reason": "x"}, T1)
    check(st == 404 and is_error_json(doc), "cancel unknown id -> 404")
    st, doc, _ = request(plain, "POST", "/v1/inbound/zz-test", {"reference": "r"})
    check(st == 401 and is_error_json(doc), "inbound without token -> 401")
    st, doc, _ = request(plain, "POST", "/v1/inbound/nope", {"reference": "r"}, "inbound-secret-of-the-http-api-0003")
    check(st == 404 and is_error_json(doc), "inbound to unknown instance -> 404")
    st, doc, _ = request(plain, "POST", "/v1/inbound/zz-test",
                         {"reference": "unknown-ref", "status": "accepted"}, "inbound-secret-of-the-http-api-0003")
    check(st == 404 and is_error_json(doc), "inbound with token, unknown reference -> 404 (%s %s)"
          % (st, doc))

    # ---- hostile bodies: the loop stays responsive (issue 19.1) ------------------------------
    def b36(i):
        digits = ""
        while True:
            digits = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36] + digits
            i //= 36
            if not i:
                return digits

    def keys_body(n):
        return ("{" + ",".join('"%s":0' % b36(i) for i in range(n)) + "}").encode()

    def livez_worst_during(path, body, token):
        """(status, answer, worst /livez seconds) while body is POSTed to path."""
        out = {}

        def send():
            try:
                out["r"] = request(plain, "POST", path, body, token)
            except Exception as e:  # noqa: BLE001 - reported by the check below
                out["r"] = (0, {"_exc": str(e)}, {})
        t = threading.Thread(target=send)
        t.start()
        worst, polls, failed = 0.0, 0, 0
        while t.is_alive() or polls < 5:
            t0 = time.monotonic()
            lst, _, _ = request(plain, "GET", "/livez")
            worst = max(worst, time.monotonic() - t0)
            polls += 1
            failed += lst != 200
        t.join()
        check(failed == 0, "/livez answers 200 throughout (%d of %d not)" % (failed, polls))
        return out["r"][0], out["r"][1], worst

    small_st, small_doc, small_worst = livez_worst_during(
        "/v1/messages/ord-2/cancel", keys_body(12000), T1)
    big_body = keys_body(120000)
    check(1000000 < len(big_body) < 1024 * 1024, "the hostile cancel body is 1 MB (under the limit)")
    big_st, big_doc, big_worst = livez_worst_during("/v1/messages/ord-2/cancel", big_body, T1)
    check(big_st == 413 and big_doc.get("error") == "too_large"
          and "at most 8192 bytes" in big_doc.get("message", ""),
          "1 MB cancel body of 120,000 keys -> 413 naming the limit (%s %s)" % (big_st, big_doc))
    check(small_st == 413, "100 kB cancel body -> 413 (%s)" % small_st)
    # Ten times the body must not cost the loop more than a generous factor (DECISIONS
    # "Tests": no absolute timings); quadratic work made it about 100 times (19 s).
    check(big_worst < 10 * small_worst + 0.25,
          "/livez not stalled by a 10x larger cancel body (worst %.3f s against %.3f s)"
          % (big_worst, small_worst))
    st, doc, _ = request(plain, "POST", "/v1/messages/ord-2/cancel", keys_body(600), T1)
    msgs = [e.get("message", "") for e in (doc or {}).get("errors", [])]
    check(st == 400 and [e.get("code") for e in doc.get("errors", [])] == ["limit"]
          and "at most 16 keys per object" in msgs[0],
          "cancel body of 600 keys -> 400 naming the key limit (%s %s)" % (st, doc))
    deep = b"[" * 100 + b"]" * 100
    st, doc, _ = request(plain, "POST", "/v1/inbound/zz-test", deep, "inbound-secret-of-the-http-api-0003")
    check(st == 400 and doc.get("error") == "limit" and "at most 64 levels" in doc.get("message", ""),
          "inbound body 100 levels deep -> 400 naming the depth limit (%s %s)" % (st, doc))
    wide = keys_body(5000)
    st, doc, _ = request(plain, "POST", "/v1/inbound/zz-test", wide, "inbound-secret-of-the-http-api-0003")
    check(st == 400 and doc.get("error") == "limit"
          and "at most 1000 keys per object" in doc.get("message", ""),
          "inbound body of 5,000 keys -> 400 naming the key limit (%s %s)" % (st, doc))

    # ---- health and metrics ------------------------------------------------------------------
    st, doc, _ = request(plain, "GET", "/livez")
    check(st == 200 and doc == {"status": "ok"}, "livez")
    st, doc, _ = request(plain, "GET", "/readyz")
    check(st == 200, "readyz -> %s %s" % (st, doc))
    st, text, h = request(admin, "GET", "/metrics", raw=True)
    text = text.decode()
    check(st == 200 and h.get("content-type", "").startswith("text/plain"), "admin /metrics")
    for needle in ('ewtp_http_requests_total{code="202"}', 'ewtp_http_requests_total{code="413"}',
                   'ewtp_accept_latency_seconds_bucket{le="+Inf"}',
                   'ewtp_accept_latency_seconds_count', 'ewtp_messages{plugin="zz-test",state=',
                   "ewtp_queue_depth", "ewtp_oldest_pending_age_seconds", "ewtp_generation 1"):
        check(needle in text, "metrics has " + needle)
    st, doc, _ = request(admin, "GET", "/v1/messages/ord-1", token=T1)
    check(st == 404, "admin listener serves no /v1")
    # /metrics is the admin listener's (issue 19): not on an API listener without
    # metrics_token_file (nor dev_mode), and a tenant's token does not open it.
    st, doc, _ = request(plain, "GET", "/metrics")
    check(st == 404 and is_error_json(doc), "API listener: no /metrics by default (%s)" % st)
    st, doc, _ = request(plain, "GET", "/metrics", token=T1)
    check(st == 404, "API listener: no /metrics for a tenant's token either (%s)" % st)
    # Cheap: the store's figures are read at most once a second, whatever the scrape rate
    # (counted by the daemon itself, against the wall time the scrapes took).
    def reads():
        _, raw, _ = request(admin, "GET", "/metrics", raw=True)
        m = re.search(r"^ewtp_metrics_store_reads_total (\d+)$", raw.decode(), re.M)
        return int(m.group(1)) if m else None
    r0, t0 = reads(), time.monotonic()
    for _ in range(40):
        request(admin, "GET", "/metrics", raw=True)
    r1, spent = reads(), time.monotonic() - t0
    check(r0 is not None and r1 is not None and r0 >= 1 and r1 - r0 <= int(spent) + 2,
          "41 scrapes read the store %s times in %.1f s (at most one a second)"
          % (None if r0 is None or r1 is None else r1 - r0, spent))
    # With metrics_token_file (reloaded in): that token only, on the API listener.
    write_token(tmp, "metrics.token", "metrics-token-of-the-http-api-0004", 0o600)
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write('metrics_token_file = "metrics.token";\n' + text)
    dmn.p.send_signal(signal.SIGHUP)
    gen2 = wait_until(lambda: re.search(r"^ewtp_generation 2$", request(
        admin, "GET", "/metrics", raw=True)[1].decode(), re.M), 20, 0.1)
    check(bool(gen2), "reloaded with metrics_token_file")
    st, _, h = request(plain, "GET", "/metrics", raw=True)
    check(st == 401 and "Bearer" in h.get("www-authenticate", ""),
          "API listener /metrics without the token -> 401 (%s)" % st)
    st, _, _ = request(plain, "GET", "/metrics", token=T1, raw=True)
    check(st == 401, "API listener /metrics with a tenant's token -> 401 (%s)" % st)
    st, raw, _ = request(plain, "GET", "/metrics", token="metrics-token-of-the-http-api-0004",
                         raw=True)
    check(st == 200 and b"ewtp_queue_depth" in raw,
          "API listener /metrics with the metrics token -> 200 (%s)" % st)

    # ---- TLS and mTLS --------------------------------------------------------------------------
    ctx = ssl.create_default_context(cafile=os.path.join(tmp, "ca.crt"))
    st, doc, _ = request(tls, "GET", "/v1/messages/ord-1", token=T1, ctx=ctx)
    check(st == 200 and doc.get("id") == "ord-1", "https with bearer token")
    st, doc, _ = request(tls, "GET", "/v1/messages/ord-1", ctx=ctx)
    check(st == 401, "https without credentials -> 401")
    # Mozilla "intermediate" only (issue 19): openssl s_client offering one suite at a time.
    def handshake(*args):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls,
                            "-CAfile", os.path.join(tmp, "ca.crt")] + list(args),
                           input="", capture_output=True, text=True, timeout=30)
        m = re.search(r"Cipher is (\S+)", r.stdout)
        return m.group(1) if m and m.group(1) != "(NONE)" else None
    for suite in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"):
        got = handshake("-tls1_2", "-cipher", suite + ":@SECLEVEL=0")
        check(got is None, "TLS 1.2 suite %s refused (%s)" % (suite, got))
    got = handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    check(got == "ECDHE-RSA-AES128-GCM-SHA256", "intermediate suite works (%s)" % got)
    got = handshake("-tls1_3")
    check(got is not None and got.startswith("TLS_"), "TLS 1.3 works (%s)" % got)
    cctx = ssl.create_default_context(cafile=os.path.join(tmp, "ca.crt"))
    cctx.load_cert_chain(os.path.join(tmp, "client.crt"), os.path.join(tmp, "client.key"))
    st, doc, _ = request(mtls, "POST", "/v1/messages", order("shop-1"), ctx=cctx)
    check(st == 202, "mTLS client certificate -> 202 (%s %s)" % (st, doc))
    st, doc, _ = request(mtls, "GET", "/v1/messages/shop-1", ctx=cctx)
    check(st == 200 and doc.get("tenant") == "shop", "mTLS tenant reads its message")
    # The same subject from another CA the listener also trusts: the handshake succeeds (the
    # listener trusts both customers' CAs), the tenant is not authenticated (its own CA only).
    fctx = ssl.create_default_context(cafile=os.path.join(tmp, "ca.crt"))
    fctx.load_cert_chain(os.path.join(tmp, "forged.crt"), os.path.join(tmp, "forged.key"))
    st, doc, _ = request(mtls, "GET", "/v1/messages/shop-1", ctx=fctx)
    check(st == 401, "a certificate with the tenant's subject from another CA -> 401 (%s %s)"
          % (st, doc))
    st, doc, _ = request(mtls, "POST", "/v1/messages", order("shop-forged"), ctx=fctx)
    check(st == 401, "... and it cannot submit either (%s)" % st)
    # Only the TLS alert counts as the refusal: a refused connection or a timeout (OSError)
    # would pass for the wrong reason. TLS 1.2, where the server's alert ends the handshake
    # itself: under TLS 1.3 the client finishes first and the alert may be lost to the reset
    # of a connection closed with the request unread ("EOF in violation of protocol").
    nocert = ssl.create_default_context(cafile=os.path.join(tmp, "ca.crt"))
    nocert.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        request(mtls, "GET", "/livez", ctx=nocert)
        refused = "answered"
    except ssl.SSLError as e:
        refused = "certificate required" if "CERTIFICATE_REQUIRED" in str(e).upper().replace(
            " ", "_") or "HANDSHAKE_FAILURE" in str(e).upper() else "other TLS error: %s" % e
    except OSError as e:
        refused = "not a TLS refusal: %r" % e
    check(refused == "certificate required",
          "mTLS listener refuses a client without certificate with a TLS alert (%s)" % refused)
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    try:
        st, doc, _ = request(tls, "POST", "/v1/messages", big, T1, ctx=ctx)
    except (ConnectionError, ssl.SSLError) as e:
        st, doc = 0, {"_exc": str(e)}
    check(st == 413 and is_error_json(doc), "https 2 MiB body -> 413 JSON (%s)" % st)

    # ---- slow-header guard ---------------------------------------------------------------------
    def stalls(trickle):
        s = socket.create_connection(("127.0.0.1", plain))
        s.settimeout(0.2)
        t0 = time.time()
        s.sendall(b"POST /v1/mess")
        closed = None
        while time.time() - t0 < 10:
            if trickle:
                try:
                    s.sendall(b"a")
                except OSError:
                    closed = time.time() - t0
                    break
            try:
                if s.recv(1024) == b"":
                    closed = time.time() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = time.time() - t0
                break
        s.close()
        return closed

    for trickle in (False, True):
        closed = stalls(trickle)
        check(closed is not None and closed < HEADER_TIMEOUT_MS / 1000 + 1.5,
              "slow header (%s) cut after %s s" % ("trickle" if trickle else "stall", closed))
    st, doc, _ = request(plain, "GET", "/livez")
    check(st == 200, "still serving after the guard fired")
    s = socket.create_connection(("127.0.0.1", tls))  # no TLS handshake at all
    s.settimeout(HEADER_TIMEOUT_MS / 1000 + 2)
    t0 = time.time()
    try:
        gone = s.recv(1) == b""
    except OSError:
        gone = True
    s.close()
    check(gone and time.time() - t0 < HEADER_TIMEOUT_MS / 1000 + 1.5,
          "silent TLS client cut by the guard")

    # A complete head followed by a slow body is bounded by timeout_ms, not header_timeout.
    s = socket.create_connection(("127.0.0.1", plain))
    payload = json.dumps(order("slow-body")).encode()
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-one-of-the-http-api-test-0001\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload))
    t0 = time.time()
    sent = 0
    while time.time() - t0 < HEADER_TIMEOUT_MS / 1000 + 1:
        s.sendall(payload[sent:sent + 8])
        sent += 8
        time.sleep(0.1)
    s.sendall(payload[sent:])
    s.settimeout(10)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    check(answer.startswith(b"HTTP/1.1 202"), "slow body within timeout_ms is served (%r)"
          % answer[:40])

    # ---- 200 concurrent POSTs ----------------------------------------------------------------
    results = {}
    lock = threading.Lock()

    def worker(k):
        for i in range(k * 10, k * 10 + 10):
            try:
                st, doc, _ = request(plain, "POST", "/v1/messages", order("conc-%d" % i), T1)
            except Exception as e:  # noqa: BLE001 - report any failure as a status
                st, doc = 0, str(e)
            with lock:
                results[i] = st

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(set(results.values()))
    check(len(results) == 200 and codes == [202], "200 concurrent POSTs all 202 (%s)" % codes)
    st, doc, _ = request(plain, "GET", "/v1/messages?limit=1000", token=T1)
    ids = set(it["id"] for it in doc.get("items", []))
    check(all("conc-%d" % i in ids for i in range(200)), "all 200 present afterwards")

    # ---- shutdown --------------------------------------------------------------------------------
    rc = stop(dmn.p, 30)
    log = dmn.text()
    check(rc == 0, "SIGTERM -> exit 0 (%s)" % rc)
    check(not sanitizer_report(log), "no sanitizer report")
    if checks.failed:
        sys.stderr.write(log_tail(dmn.p.log_path, 6000))
    else:
        remove_tmp(tmp)
    return checks.summary()

if __name__ == "__main__":
    sys.exit(main())
