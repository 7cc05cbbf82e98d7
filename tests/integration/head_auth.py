"""Credentials are checked when the request head ends (issue 19.2), and connections are capped
per client address: the real ewtpd on loopback with limits.timeout_ms (the body timeout) of
20 s. A head announcing a 900,000-byte body that never comes gets its 401 and the connection
closed well inside that timeout (under a quarter of it) when it carries no token, a wrong
token, or a tenant's token on /v1/inbound/NAME (which takes the instance's inbound token),
and a 404 as quickly for an instance that does not exist; heads with good credentials still get their bodies read. max_connections_per_client = 8: the
ninth idle connection from 127.0.0.1 is closed at once, and a client that closed its
connections is served again. /livez answers throughout. Exits non-zero on failure."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (LOOPBACK, Api, check, checks, free_port, make_tmp,  # noqa: E402
                          print_logs, read_log, remove_tmp, sanitizer_env, sanitizer_report,
                          spawn_ewtpd, stop, wait_port, wait_until, write_ewtpd_config,
                          write_token, zz_order)

BODY_TIMEOUT_S = 20
PER_CLIENT = 8
T1 = "t1-token-0123456789abcdef0123456789"
INBOUND = "inbound-token-0123456789abcdef0123"


def config(tmp, api_port):
    write_token(tmp, "t1.token", T1)
    write_token(tmp, "inbound.token", INBOUND)
    conf = """tenants = ( { id = "t1"; token_file = "t1.token"; destinations = [ "*" ]; } );
limits = { timeout_ms = %d; header_timeout_ms = %d; max_connections_per_client = %d; };
plugins = (
  { name = "zz-a"; plugin = "zz"; settings = { sender_id = "SENDER-A"; sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:9"; inbound_token_file = "inbound.token"; }
);
routes = ( { tenant = "t1"; destination = "ZZ"; instance = "zz-a"; } );
""" % (BODY_TIMEOUT_S * 1000, BODY_TIMEOUT_S * 1000, PER_CLIENT)
    return write_ewtpd_config(tmp, api_port, conf)


def probe(port, path, token=None, length=900000, body=b""):
    """Sends a POST head announcing length bytes, then body; reads until the server closes or
    BODY_TIMEOUT_S + 5 s pass. (status or None, seconds to the answer, closed by the server)."""
    s = socket.create_connection((LOOPBACK, port), timeout=5)
    s.settimeout(BODY_TIMEOUT_S + 5)
    head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    head += "Content-Length: %d\r\n\r\n" % length
    t0 = time.monotonic()
    got = b""
    closed = False
    try:
        s.sendall(head.encode() + body)
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += d
            if b"\r\n\r\n" in got and length == len(body):
                break  # a complete request: one answer is enough
    except socket.timeout:
        pass
    except OSError:
        closed = True
    took = time.monotonic() - t0
    s.close()
    status = int(got[9:12]) if got.startswith(b"HTTP/1.1 ") else None
    return status, took, closed, got


def livez(port):
    try:
        code, _ = Api(port).call("GET", "/livez", token=None)
        return code == 200
    except OSError:
        return False


def main():
    tmp = make_tmp("ewtp-head-auth-")
    api_port = free_port()
    conf = config(tmp, api_port)
    proc = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=sanitizer_env())
    try:
        if not check(wait_port(api_port, proc), "ewtpd listens"):
            return
        quick = BODY_TIMEOUT_S / 4.0
        for what, path, token in (("no token", "/v1/messages", None),
                                  ("a wrong token", "/v1/messages", "x" * 40),
                                  ("no token on a cancel", "/v1/messages/m1/cancel", None),
                                  ("a tenant token on /v1/inbound", "/v1/inbound/zz-a", T1)):
            st, took, closed, got = probe(api_port, path, token)
            check(st == 401 and took < quick and closed,
                  "%s, Content-Length 900000, no body: 401 and closed in %.2f s (< %.0f s)"
                  % (what, took, quick), (st, closed, got[:300]))
            check(b"WWW-Authenticate: Bearer" in got and b'"error":"unauthorized"' in got,
                  "%s: the 401 is JSON with WWW-Authenticate" % what, got[:300])
            check(livez(api_port), "/livez answers after %s" % what)
        st, took, closed, got = probe(api_port, "/v1/inbound/nope", INBOUND)
        check(st == 404 and took < quick and closed and b'"error":"not_found"' in got,
              "an unknown inbound instance, Content-Length 900000, no body: 404 and closed in "
              "%.2f s" % took, (st, closed, got[:300]))
        check(livez(api_port), "/livez answers after the unknown instance")

        # good credentials: the body is awaited and read as before
        body = json.dumps(zz_order("ok-1")).encode()
        st, took, closed, got = probe(api_port, "/v1/messages", T1, len(body), body)
        check(st == 202, "a tenant's token: the order is read and accepted (%s)" % st, got[:300])
        body = json.dumps({"reference": "ZZREF-none", "status": "accepted"}).encode()
        st, took, closed, got = probe(api_port, "/v1/inbound/zz-a", INBOUND, len(body), body)
        check(st == 404, "the inbound token: the receipt is read (404: no such reference) (%s)"
              % st, got[:300])
        st, took, closed, got = probe(api_port, "/v1/messages", T1, 100, b"{")
        check(st is None and took >= quick,
              "a tenant's token with a short body: the body is still awaited (%.2f s)" % took,
              got[:300])
        check(livez(api_port), "/livez answers after the short body")

        # connections per client address
        held = []
        for _ in range(PER_CLIENT):
            held.append(socket.create_connection((LOOPBACK, api_port), timeout=5))
        time.sleep(0.3)
        extra = socket.create_connection((LOOPBACK, api_port), timeout=5)
        extra.settimeout(BODY_TIMEOUT_S / 4.0)
        t0 = time.monotonic()
        try:
            d = extra.recv(100)
            closed = d == b""
        except socket.timeout:
            closed = False
        except OSError:
            closed = True
        check(closed and time.monotonic() - t0 < BODY_TIMEOUT_S / 4.0,
              "connection %d from one address closed at once" % (PER_CLIENT + 1))
        extra.close()
        for s in held[1:]:
            s.close()
        # one of the 8 still open: the others' places are free again
        check(wait_until(lambda: livez(api_port), 10), "/livez answers once the client closed")
        held[0].close()
        log = read_log(proc.log_path)
        check("connections open: closing its next ones" in log,
              "the per-client refusal is logged")
    finally:
        if proc.poll() is None:
            rc = stop(proc, timeout=20)
            check(rc == 0, "ewtpd exits 0 on SIGTERM (%s)" % rc)
        check(not sanitizer_report(read_log(proc.log_path)), "no sanitizer reports")
        if checks.failed:
            print_logs([("ewtpd log", proc.log_path)], 12000)
        remove_tmp(tmp, keep=bool(checks.failed))
    sys.exit(checks.summary())


if __name__ == "__main__":
    main()
