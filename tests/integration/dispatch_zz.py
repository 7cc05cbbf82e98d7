"""Delivery end to end: the real ewtpd (real SQLite) against the scripted ZZ authority of
fake_authority.py on loopback. Scenarios: poll to approval, immediate approval, rejection with
the authority's reason, 503 + Retry-After twice then success, strict ordering per key, inbound
callback and spool receipt correlated, cancel (202 then cancelled; 409), spool transport,
signed webhooks, dead after max_attempts and replay to approval. Exits non-zero on failure."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_authority import Authority  # noqa: E402

SRC = os.environ.get("EWTP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.environ.get("EWTP_BUILD_DIR", os.path.join(SRC, "build"))
EWTPD = os.path.join(BUILD, "bin", "ewtpd")
EWTPCTL = os.path.join(BUILD, "bin", "ewtpctl")
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


_given_ports = set()


def free_port():
    """A free loopback port not handed out before in this run (the kernel may offer the same
    port again once its probe socket is closed)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def config(tmp, api_port, auth_port, dead_port):
    for d in ("spool-out", "spool-in", "zz-a-in"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    write(os.path.join(tmp, "t1.token"), "t1-token\n")
    write(os.path.join(tmp, "t2.token"), "t2-token\n")
    write(os.path.join(tmp, "t3.token"), "t3-token\n")
    write(os.path.join(tmp, "t4.token"), "t4-token\n")
    write(os.path.join(tmp, "oauth.secret"), "s3cret&x\n")
    write(os.path.join(tmp, "inbound.token"), "inbound-secret\n")
    write(os.path.join(tmp, "t1.whsec"), SECRET + "\n")
    fake = "http://127.0.0.1:%d" % auth_port
    conf = """
plugin_dir = "%(plugins)s";
state_dir = "%(tmp)s/run";
admin_socket = "%(tmp)s/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "*" ];
    webhook_url = "%(fake)s/hooks/t1"; webhook_secret_file = "t1.whsec"; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "*" ]; },
  { id = "t3"; token_file = "t3.token"; destinations = [ "*" ]; },
  { id = "t4"; token_file = "t4.token"; destinations = [ "*" ]; }
);
store = { backend = "sqlite"; path = "%(tmp)s/ewtpd.sqlite"; };
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
plugins = (
  { name = "zz-a"; plugin = "zz"; settings = { sender_id = "SENDER-A"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s"; spool_in = "zz-a-in";
    inbound_token_file = "inbound.token"; },
  { name = "zz-spool"; plugin = "zz"; settings = { sender_id = "SENDER-S"; sign_key = ""; };
    transport = "spool"; spool_out = "spool-out"; spool_in = "spool-in"; },
  { name = "zz-dead"; plugin = "zz"; settings = { sender_id = "SENDER-D"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s"; },
  { name = "zz-oauth"; plugin = "zz"; settings = { sender_id = "SENDER-O"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s";
    auth = { kind = "oauth2"; token_url = "%(fake)s/token"; client_id = "hub";
             secret_file = "oauth.secret"; scope = "submit"; }; }
);
routes = (
  { tenant = "t1"; destination = "ZZ"; instance = "zz-a"; },
  { tenant = "t2"; destination = "ZZ"; instance = "zz-spool"; },
  { tenant = "t3"; destination = "ZZ"; instance = "zz-dead"; },
  { tenant = "t4"; destination = "ZZ"; instance = "zz-oauth"; }
);
""" % {"plugins": os.path.join(BUILD, "plugins"), "tmp": tmp, "api": api_port, "fake": fake}
    path = os.path.join(tmp, "ewtpd.conf")
    write(path, conf)
    return path


class Api:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def call(self, method, path, token, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null")
            except ValueError:
                return e.code, raw

    def post_raw(self, path, token, raw):
        req = urllib.request.Request(self.base + path, data=raw, method="POST")
        req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self, tenant, mid):
        return self.call("GET", "/v1/messages/" + mid, tenant + "-token")[1]

    def wait_state(self, tenant, mid, states, timeout=15):
        end = time.time() + timeout
        st = None
        while time.time() < end:
            st = self.status(tenant, mid)
            if isinstance(st, dict) and st.get("state") in states:
                return st
            time.sleep(0.05)
        return st


def message(mid):
    with open(os.path.join(SRC, "plugins/template/vectors/order-basic/input.json")) as f:
        m = json.load(f)
    m["id"] = mid
    return m


def submit(api, tenant, mid):
    code, body = api.call("POST", "/v1/messages", tenant + "-token", message(mid))
    check(code == 202, "%s accepted with 202 (got %s %s)" % (mid, code, body))


def wait_http(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="ewtp-dispatch-")
    auth = Authority().start()
    dead_port = free_port()
    api_port = free_port()
    conf = config(tmp, api_port, auth.port, dead_port)
    log = open(os.path.join(tmp, "ewtpd.log"), "w+")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    proc = subprocess.Popen([EWTPD, "-c", conf], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        if not wait_http(api_port, proc):
            check(False, "ewtpd listens")
            return
        api = Api(api_port)

        # 1. received, then approved through the poll
        submit(api, "t1", "acc-1")
        st = api.wait_state("t1", "acc-1", ["approved"])
        check(st and st.get("state") == "approved", "acc-1 approved via poll")
        check(st and st.get("authority_ref") == "ZZREF-acc-1", "acc-1 authority reference kept")
        check(st and [r["state"] for r in st["receipts"]] == ["submitted", "approved"],
              "acc-1 receipts submitted then approved (%s)" % (st and st.get("receipts")))
        check(any(e[0] == "GET" and e[1] == "/v1/submissions/ZZREF-acc-1" for e in auth.log),
              "acc-1 polled by reference")

        # 2. approved at once
        submit(api, "t1", "now-1")
        st = api.wait_state("t1", "now-1", ["approved"])
        check(st and st.get("state") == "approved" and st.get("attempts") == 1, "now-1 approved, 1 attempt")

        # 3. rejected with the authority's reason
        submit(api, "t1", "rej-1")
        st = api.wait_state("t1", "rej-1", ["rejected"])
        check(st and st.get("state") == "rejected", "rej-1 rejected")
        rc = st["receipts"][-1] if st and st.get("receipts") else {}
        check(rc.get("code") == "ZZ-E042" and "tariff" in (rc.get("message") or ""),
              "rej-1 receipt carries the authority's code and text (%s)" % rc)
        check(st and any(e.get("pointer") == "/order/lines/0/hs_code" for e in st.get("errors", [])),
              "rej-1 error points at /order/lines/0/hs_code (%s)" % (st and st.get("errors")))

        # 4. 503 + Retry-After: 1 twice, then received -> approved; attempts = 3
        submit(api, "t1", "flaky-1")
        st = api.wait_state("t1", "flaky-1", ["approved", "dead"], timeout=20)
        check(st and st.get("state") == "approved" and st.get("attempts") == 3,
              "flaky-1 approved after 3 attempts (%r)" % ((st and (st.get("state"), st.get("attempts"))),))
        times = [e[3] for e in auth.submissions("flaky-1")]
        check(len(times) == 3 and all(b - a >= 0.95 for a, b in zip(times, times[1:])),
              "flaky-1 Retry-After honoured (gaps %s)" % [round(b - a, 2) for a, b in zip(times, times[1:])])

        # 5. one ordering key: strictly in accept order, one in flight
        submit(api, "t1", "flaky-2")
        for i in range(1, 4):
            submit(api, "t1", "ord-%d" % i)
        for i in range(1, 4):
            api.wait_state("t1", "ord-%d" % i, ["approved"], timeout=20)
        seq = [e[2] for e in auth.submissions() if e[2] in ("flaky-2", "ord-1", "ord-2", "ord-3")]
        check(seq == ["flaky-2"] * 3 + ["ord-1", "ord-2", "ord-3"],
              "ordering key: flaky-2 (3 tries) before ord-1, ord-2, ord-3 (%s)" % seq)

        # 6. inbound callback correlated by reference
        submit(api, "t1", "cb-1")
        api.wait_state("t1", "cb-1", ["submitted"])
        code, body = api.call("POST", "/v1/inbound/zz-a", "inbound-secret",
                              {"reference": "ZZREF-cb-1", "status": "accepted", "code": "OK",
                               "message": "cleared"})
        check(code == 200 and body == {"message": "cb-1"}, "inbound callback -> 200 (%s %s)" % (code, body))
        st = api.wait_state("t1", "cb-1", ["approved"])
        check(st and st.get("state") == "approved", "cb-1 approved by the callback")
        code, _ = api.call("POST", "/v1/inbound/zz-a", "inbound-secret",
                           {"reference": "ZZREF-nope", "status": "accepted"})
        check(code == 404, "inbound for an unknown reference -> 404 (%s)" % code)
        code, _ = api.post_raw("/v1/inbound/zz-a", "inbound-secret", b"not a receipt")
        check(code == 400, "inbound the plugin does not recognise -> 400 (%s)" % code)

        # 7. a receipt file in the spool in-folder
        submit(api, "t1", "cb-2")
        api.wait_state("t1", "cb-2", ["submitted"])
        write(os.path.join(tmp, "zz-a-in", "receipt-cb-2.json"),
              json.dumps({"reference": "ZZREF-cb-2", "status": "rejected", "code": "ZZ-E7",
                          "message": "late refusal"}))
        st = api.wait_state("t1", "cb-2", ["rejected"])
        check(st and st.get("state") == "rejected", "cb-2 rejected by a spool receipt")
        check(os.path.exists(os.path.join(tmp, "zz-a-in", "done", "receipt-cb-2.json")),
              "spool receipt moved to done/")
        write(os.path.join(tmp, "zz-a-in", "junk.txt"), "junk")
        end = time.time() + 5
        while time.time() < end and not os.path.exists(os.path.join(tmp, "zz-a-in", "failed", "junk.txt")):
            time.sleep(0.05)
        check(os.path.exists(os.path.join(tmp, "zz-a-in", "failed", "junk.txt")),
              "unrecognised spool file moved to failed/")

        # 8. cancel
        code, body = api.call("POST", "/v1/messages/acc-1/cancel", "t1-token", {"reason": "customer withdrew"})
        check(code == 202, "cancel of an approved message -> 202 (%s %s)" % (code, body))
        st = api.wait_state("t1", "acc-1", ["cancelled"])
        check(st and st.get("state") == "cancelled", "acc-1 cancelled once the authority confirmed")
        code, body = api.call("POST", "/v1/messages/rej-1/cancel", "t1-token", {"reason": "x"})
        check(code == 409, "cancel of a rejected message -> 409 (%s %s)" % (code, body))
        code, body = api.call("POST", "/v1/messages/nope/cancel", "t1-token", {"reason": "x"})
        check(code == 404, "cancel of an unknown message -> 404 (%s)" % code)

        # 9. spool transport
        submit(api, "t2", "sp-1")
        st = api.wait_state("t2", "sp-1", ["submitted"])
        check(st and st.get("state") == "submitted", "sp-1 submitted once spooled")
        files = [f for f in os.listdir(os.path.join(tmp, "spool-out")) if not f.startswith(".")]
        data = open(os.path.join(tmp, "spool-out", files[0]), "rb").read() if files else b""
        check(len(files) == 1 and b"<zz:SenderReference>sp-1<" in data,
              "spool_out holds the document (%s)" % files)

        # 10. webhooks, signed
        time.sleep(0.5)
        with auth.lock:
            hooks = list(auth.hooks)
        key = base64.b64decode(SECRET[6:])
        good = 0
        states = set()
        for h, body in hooks:
            signed = ("%s.%s." % (h.get("webhook-id"), h.get("webhook-timestamp"))).encode() + body
            want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            if want in h.get("webhook-signature", "").split(" "):
                good += 1
            ev = json.loads(body)
            if ev.get("id") == "acc-1":
                states.add(ev.get("state"))
            assert ev.get("type") == "message.state" and ev.get("tenant") == "t1"
        check(hooks and good == len(hooks), "every webhook signature verifies (%d of %d)" % (good, len(hooks)))
        check({"submitted", "approved", "cancelled"} <= states, "acc-1 webhooks: %s" % sorted(states))

        # 11. OAuth2 client credentials: one token, cached, on every request of the instance
        submit(api, "t4", "now-oa-1")
        submit(api, "t4", "now-oa-2")
        api.wait_state("t4", "now-oa-1", ["approved"])
        st = api.wait_state("t4", "now-oa-2", ["approved"])
        check(st and st.get("state") == "approved", "oauth2 instance delivers")
        check(auth.authz.get("now-oa-1") == "Bearer tok-1" and auth.authz.get("now-oa-2") == "Bearer tok-1",
              "oauth2 token sent and cached (%s)" % auth.authz)
        check(len(auth.token_requests) == 1 and b"grant_type=client_credentials" in auth.token_requests[0]
              and b"client_secret=s3cret%26x" in auth.token_requests[0],
              "one client-credentials token request (%s)" % auth.token_requests)

        # 12. authority down past max_attempts -> dead; replay once it is up -> approved
        auth.down = True
        submit(api, "t3", "down-1")
        st = api.wait_state("t3", "down-1", ["dead"], timeout=20)
        check(st and st.get("state") == "dead" and st.get("attempts") == 3,
              "down-1 dead after 3 attempts (%r)" % ((st and (st.get("state"), st.get("attempts"))),))
        auth.down = False
        r = subprocess.run([EWTPCTL, "-c", conf, "replay", "down-1"], capture_output=True, text=True,
                           timeout=20, env=env)
        check(r.returncode == 0, "ewtpctl replay down-1 (%s%s)" % (r.stdout, r.stderr))
        st = api.wait_state("t3", "down-1", ["approved"], timeout=20)
        check(st and st.get("state") == "approved", "down-1 approved after replay")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -9
            check(rc == 0, "ewtpd exits 0 on SIGTERM (%s)" % rc)
        auth.stop()
        log.seek(0)
        text = log.read()
        check("ERROR: AddressSanitizer" not in text and "ERROR: LeakSanitizer" not in text
              and "runtime error" not in text, "no sanitizer reports")
        if failures:
            print("---- ewtpd log (%s) ----" % tmp)
            print(text[-12000:])
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
