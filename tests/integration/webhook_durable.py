"""Durable webhooks: the store's outbox survives a restart of ewtpd.

The real ewtpd (real SQLite file) delivers to the real ZZ simulator; tenant "hooked" has a
webhook receiver that is down at first. Its message reaches approved while every webhook
attempt fails (the outbox keeps them); ewtpd is killed with SIGKILL, the receiver comes up,
ewtpd restarts, and the receiver gets the signed POSTs (Standard Webhooks: the signature
verifies with the tenant's secret, the same webhook-id on every attempt) for submitted and
approved; the outbox is empty afterwards. Tenant "refused" has a receiver answering 410:
its webhooks are given up at once and the message gets a "webhook_failed" event.
Ends with "N passed, M failed"."""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_daemon import BIN, Env, body_of, free_port, sim_get  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"durable-webhook-secret-0123456789").decode()
passed, failed = [], []


def check(cond, what):
    (passed if cond else failed).append(what)
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    return cond


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []  # (path, headers, body)
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Receiver.lock:
            Receiver.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(410 if self.path.startswith("/refused") else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def api(env, method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", env.api, timeout=10)
    try:
        c.request(method, path, body=body, headers={"Authorization": "Bearer " + token,
                                                    "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def wait_state(env, token, mid, states, limit=30):
    end = time.monotonic() + limit
    st = None
    while time.monotonic() < end:
        code, st = api(env, "GET", "/v1/messages/" + mid, token)
        if code == 200 and st.get("state") in states:
            return st.get("state")
        time.sleep(0.1)
    return st.get("state") if isinstance(st, dict) else None


def outbox(env):
    db = sqlite3.connect(os.path.join(env.tmp, "ewtpd.sqlite"), timeout=10)
    try:
        return db.execute("SELECT count(*), coalesce(max(attempts), 0) FROM webhooks").fetchone()
    finally:
        db.close()


def verify(headers, body):
    key = base64.b64decode(SECRET[6:])
    signed = ("%s.%s." % (headers.get("webhook-id"), headers.get("webhook-timestamp"))).encode() + body
    want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return want in headers.get("webhook-signature", "").split(" ")


def main():
    env = Env("webhook")
    rport = free_port()
    with open(os.path.join(env.tmp, "hooked.token"), "w") as f:
        f.write("hooked-token\n")
    with open(os.path.join(env.tmp, "refused.token"), "w") as f:
        f.write("refused-token\n")
    with open(os.path.join(env.tmp, "whsec"), "w") as f:
        f.write(SECRET + "\n")
    conf = open(env.conf).read()
    conf = conf.replace(
        'tenants = ( { id = "load"; token_file = "token"; destinations = [ "*" ]; } );',
        """tenants = (
  { id = "hooked"; token_file = "hooked.token"; destinations = [ "*" ];
    webhook_url = "http://127.0.0.1:%d/hooked"; webhook_secret_file = "whsec"; },
  { id = "refused"; token_file = "refused.token"; destinations = [ "*" ];
    webhook_url = "http://127.0.0.1:%d/refused"; webhook_secret_file = "whsec"; }
);""" % (rport, rport))
    conf = conf.replace("base_delay_ms = 100;", "base_delay_ms = 200;").replace(
        "poll_interval_ms = 60000;", "poll_interval_ms = 200;")
    with open(env.conf, "w") as f:
        f.write(conf)
    server = None
    try:
        if not check(env.start_sim() and env.start_daemon(), "ewtpd and the simulator start"):
            print(env.log_tail("ewtpd.log"))
            return
        code, _ = api(env, "POST", "/v1/messages", "hooked-token", body_of("wh-1"))
        check(code == 202, "POST of wh-1: 202 (%s)" % code)
        check(wait_state(env, "hooked-token", "wh-1", ("approved",)) == "approved",
              "wh-1 approved while the receiver is down")
        end = time.monotonic() + 20
        n, attempts = outbox(env)
        while time.monotonic() < end and not (n >= 2 and attempts >= 2):
            time.sleep(0.2)
            n, attempts = outbox(env)
        check(n >= 2 and attempts >= 2,
              "the outbox holds the failing webhooks (%d rows, up to %d attempts)" % (n, attempts))
        env.kill9(env.daemon)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", rport), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        check(env.start_daemon(), "ewtpd restarts after SIGKILL")
        end = time.monotonic() + 40
        states = set()
        while time.monotonic() < end and not {"submitted", "approved"} <= states:
            with Receiver.lock:
                states = {json.loads(b)["state"] for p, h, b in Receiver.got if p == "/hooked"}
            time.sleep(0.2)
        with Receiver.lock:
            got = [(h, b) for p, h, b in Receiver.got if p == "/hooked"]
        check({"submitted", "approved"} <= states,
              "the receiver got wh-1's webhooks after the restart: %s" % sorted(states))
        check(got and all(verify(h, b) for h, b in got),
              "every webhook signature verifies (%d)" % len(got))
        bodies = [json.loads(b) for h, b in got]
        check(all(x["type"] == "message.state" and x["tenant"] == "hooked" and x["id"] == "wh-1"
                  for x in bodies), "webhook bodies name wh-1 of tenant hooked")
        ids = {}
        for h, b in got:
            ids.setdefault(json.loads(b)["state"], set()).add(h.get("webhook-id"))
        check(all(len(v) == 1 for v in ids.values()), "one webhook-id per state")
        end = time.monotonic() + 10
        while time.monotonic() < end and outbox(env)[0] != 0:
            time.sleep(0.2)
        check(outbox(env)[0] == 0, "the outbox is empty once delivered")

        # A receiver that refuses (410): given up at once, recorded as an event.
        code, _ = api(env, "POST", "/v1/messages", "refused-token", body_of("wh-2"))
        check(code == 202, "POST of wh-2: 202 (%s)" % code)
        wait_state(env, "refused-token", "wh-2", ("approved",))
        end = time.monotonic() + 20
        types = []
        while time.monotonic() < end and "webhook_failed" not in types:
            _, ev = api(env, "GET", "/v1/messages/wh-2/events", "refused-token")
            types = [e.get("type") for e in (ev or {}).get("events", [])]
            time.sleep(0.2)
        check("webhook_failed" in types, "a refused webhook is given up with an event (%s)" % types)
        with Receiver.lock:
            refused = [b for p, h, b in Receiver.got if p == "/refused"]
        states2 = [json.loads(b)["state"] for b in refused]
        check(len(states2) == len(set(states2)), "a refused webhook is not retried (%s)" % states2)
    finally:
        check(env.stop(), "ewtpd stops cleanly, no sanitizer report")
        if server:
            server.shutdown()
        if not failed:
            shutil.rmtree(env.tmp, ignore_errors=True)
        else:
            print(env.log_tail("ewtpd.log", 30))


if __name__ == "__main__":
    main()
    print("%d passed, %d failed" % (len(passed), len(failed)), flush=True)
    sys.exit(1 if failed else 0)
