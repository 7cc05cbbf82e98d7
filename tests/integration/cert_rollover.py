"""Certificate rollover without a restart or a failed request (issue 18).

ewtpd serves the API over TLS with certificate A and, configured beside it, certificate B
taking over (next.from) 10 s after the daemon was started. A client loop POSTs messages, each
on a new TLS connection, before and after that moment (bounded: 300 requests), and records
the server certificate each connection got. Checks:
  - every request was accepted (202): no failed request;
  - a connection whose handshake ended before from saw A, one that began after from saw B
    (exact: the daemon picks the pair in its handshake callback by the same clock); both seen;
  - a keep-alive connection opened before from keeps A and still works after it;
  - /metrics: ewtp_certificate_expiry_seconds for A (about 5 days, slot current) and B (slot
    next) before from, B alone (slot current) after; the signing certificate too;
  - the log: the signing certificate 5 days from expiry warned once (the 7-day threshold),
    however often the daemon checks; B's takeover logged;
  - `ewtpd -t` prints every certificate with its notAfter and when B takes over;
  - a configuration whose next key does not match its certificate is refused by `ewtpd -t`
    and by a reload (the running generation stays), naming the member;
  - then the file names certificate C and the daemon reloads while two client loops send
    (bounded: 300 requests): no failed request; connections begun after the reload saw C,
    those ended before it saw B; a keep-alive connection from before the reload still works.
Loopback only; certificates made with the openssl CLI."""
import hashlib
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (CONNECTION_ERRORS, PLUGINS, SRC, check, check_config, checks,  # noqa: E402
                          ewtpctl, free_port, http_call, keep_tmp_if_failed, load_json,
                          make_tmp, openssl, read_log, sanitizer_report, spawn_ewtpd, spawn_sim,
                          stop, wait_ready, write, write_token)

TOKEN = "rollover-test-token-0123456789abcdef"
MAX_REQUESTS = 300
FROM_AFTER_START_S = 10  # B takes over this long after ewtpd was started
DEADLINE = time.monotonic() + 240

tmp = make_tmp("ewtp-certroll-")
api_port, admin_port, sim_port = free_port(), free_port(), free_port()
os.makedirs(os.path.join(tmp, "run"))
write_token(tmp, "token", TOKEN)


def make_cert(name, days):
    """tmp/NAME.key (EC P-256, mode 0600) and tmp/NAME.crt (self-signed, CN=rollover-NAME,
    valid for days); returns the certificate's SHA-256 fingerprint (hex)."""
    key, crt = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", str(days), "-subj", "/CN=rollover-" + name)
    os.chmod(key, 0o600)
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


FP = {"A": make_cert("A", 5), "B": make_cert("B", 400), "C": make_cert("C", 200),
      "S": make_cert("S", 5), "X": make_cert("X", 400), "R1": make_cert("R1", 300),
      "R2": make_cert("R2", 500)}
NAMES = {v: k for k, v in FP.items()}


def colon(fp):
    """A fingerprint as openssl (and ewtpd's log and -t) print it: AB:CD:..."""
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def config(cert, key, next_block="", key_next=""):
    return f"""
plugin_dir = "{PLUGINS}";
dev_mode = true;
state_dir = "{tmp}/run";
admin_socket = "{tmp}/run/ewtpd.sock";
listeners = (
  {{ address = "127.0.0.1"; port = {api_port}; tls = true;
     cert_file = "{tmp}/{cert}"; key_file = "{tmp}/{key}";
     {next_block} }},
  {{ address = "127.0.0.1"; port = {admin_port}; admin = true; }}
);
store = {{ backend = "sqlite"; path = "{tmp}/ewtpd.sqlite"; }};
tenants = ( {{ id = "roll"; token_file = "{tmp}/token"; destinations = [ "*" ]; }} );
keys = ( {{ name = "soon"; key = "{tmp}/S.key"; cert = "{tmp}/S.crt"; }},
         {{ name = "roll"; key = "{tmp}/R1.key"; cert = "{tmp}/R1.crt"; {key_next} }} );
delivery = {{ scan_interval_ms = 100; workers = 2; }};
plugins = (
  {{ name = "zz-test"; plugin = "zz"; settings = {{ sign_key = ""; }};
     transport = "https"; endpoint = "http://127.0.0.1:{sim_port}"; }}
);
routes = ( {{ destination = "ZZ"; instance = "zz-test"; }} );
"""


conf = os.path.join(tmp, "ewtpd.conf")
BASE = load_json(os.path.join(SRC, "plugins", "template", "vectors", "order-basic", "input.json"))
CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE  # self-signed test certificates; the fingerprint is checked
HEADERS = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}


class Recorder:
    """Requests, each on a new TLS connection: (connect start, handshake end, server
    certificate, status or the error)."""

    def __init__(self, prefix):
        self.prefix, self.n, self.lock = prefix, 0, threading.Lock()
        self.rows = []
        self.stop = threading.Event()

    def one(self):
        with self.lock:
            if self.n >= MAX_REQUESTS:
                return False
            self.n += 1
            mid = "%s-%05d" % (self.prefix, self.n)
        body = json.dumps(dict(BASE, id=mid)).encode()
        t0 = time.time()
        t1, fp, status = None, None, None
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", api_port, context=CTX, timeout=30)
            try:
                conn.connect()  # the TLS handshake ends here
                t1 = time.time()
                fp = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
                conn.request("POST", "/v1/messages", body, HEADERS)
                r = conn.getresponse()
                r.read()
                status = r.status
            finally:
                conn.close()
        except CONNECTION_ERRORS as e:
            status = "error: %r" % (e,)
        with self.lock:
            self.rows.append((t0, t1, fp, status))
        return True

    def loop(self, until=None, pause=0.02, also=None):
        """Requests until the time until (or stop, or MAX_REQUESTS); also() after every tenth
        (keeps a keep-alive connection from idling into the server's header timeout)."""
        i = 0
        while not self.stop.is_set() and time.monotonic() < DEADLINE:
            if until is not None and time.time() > until:
                return
            if not self.one():
                return
            i += 1
            if also is not None and i % 10 == 0:
                also()
            time.sleep(pause)


class KeepAliveTLS:
    """One keep-alive TLS connection: the certificate it got and requests on it, each
    recorded as (time, status or the error)."""

    def __init__(self):
        self.conn = http.client.HTTPSConnection("127.0.0.1", api_port, context=CTX, timeout=30)
        self.conn.connect()
        self.fp = hashlib.sha256(self.conn.sock.getpeercert(binary_form=True)).hexdigest()
        self.sock = self.conn.sock
        self.rows = []

    def get(self, path="/v1/messages?limit=1"):
        try:
            self.conn.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
            r = self.conn.getresponse()
            r.read()
            status = r.status
        except CONNECTION_ERRORS as e:
            status = "error: %r" % (e,)
        # The same TCP connection throughout (http.client would reconnect silently).
        if self.conn.sock is not self.sock:
            status = "reconnected"
        self.rows.append((time.time(), status))
        return status


def metrics():
    status, data, _ = http_call("GET", "http://127.0.0.1:%d/metrics" % admin_port)
    return data.decode() if status == 200 else ""


def expiry_series(text):
    """{fingerprint: (use, name, slot, seconds)} of ewtp_certificate_expiry_seconds."""
    out = {}
    for m in re.finditer(r'^ewtp_certificate_expiry_seconds\{use="(\w+)",name="([^"]*)",'
                         r'slot="(\w+)",serial="[0-9A-F]*",fingerprint="([0-9a-f]{64})"\} (-?\d+)$',
                         text, re.M):
        out[m.group(4)] = (m.group(1), m.group(2), m.group(3), int(m.group(5)))
    return out


def days_between(seconds, lo, hi):
    return seconds is not None and lo * 86400 <= seconds <= hi * 86400


sim = daemon = None


def main():
    global sim, daemon
    spawn_at = time.time()
    takeover = int(spawn_at) + FROM_AFTER_START_S
    next_b = ('next = { cert_file = "%s/B.crt"; key_file = "%s/B.key"; from = "%s"; };'
              % (tmp, tmp, rfc3339(takeover)))
    # The signing key "roll" hands over to R2 at the same time: the daemon rebuilds its
    # generation then (certwatch), so that signatures and their certificate stay one pair.
    key_next = ('next = { key = "%s/R2.key"; cert = "%s/R2.crt"; from = "%s"; };'
                % (tmp, tmp, rfc3339(takeover)))
    write(conf, config("A.crt", "A.key", next_b, key_next))

    # ewtpd -t: every certificate with its notAfter, B's takeover.
    t = check_config(conf)
    check(t.returncode == 0, "ewtpd -t accepts the configuration", t.stderr[-600:])
    check(re.search(r"certificate tls listeners\[0\] \(listeners\[0\]\.cert_file\): "
                    r"CN=rollover-A, sha256 %s, notAfter \S+ \(in 4 days\)" % colon(FP["A"]),
                    t.stdout),
          "ewtpd -t prints A with its notAfter (4 days and some hours left)", t.stdout)
    check(re.search(r"certificate tls listeners\[0\] \(listeners\[0\]\.next\.cert_file\): "
                    r"CN=rollover-B, sha256 %s, .*takes over %s" % (colon(FP["B"]),
                                                                     rfc3339(takeover)[:-1]),
                    t.stdout), "ewtpd -t prints B and when it takes over", t.stdout)
    check("certificate signing soon (keys[0].cert): CN=rollover-S" in t.stdout,
          "ewtpd -t prints the signing certificate", t.stdout)

    # A next key that is not its certificate's: refused by -t, naming the member.
    bad = os.path.join(tmp, "bad.conf")
    write(bad, config("A.crt", "A.key", next_b.replace("B.key", "X.key")))
    t = check_config(bad)
    check(t.returncode != 0 and "listeners[0].next.key_file" in t.stderr
          and "does not match" in t.stderr,
          "ewtpd -t refuses a next key that does not match, naming listeners[0].next.key_file",
          t.stderr[-600:])

    sim = spawn_sim("zz", os.path.join(tmp, "sim.log"), listen="127.0.0.1:%d" % sim_port)
    daemon = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"))
    if not wait_ready(admin_port, daemon):
        check(False, "ewtpd became ready", read_log(daemon.log_path)[-2000:])
        return
    check(time.time() < takeover - 1, "ewtpd was ready before B's from (else nothing to see)",
          "ready %.1f s after start" % (time.time() - spawn_at))

    m = expiry_series(metrics())
    a, b, s = m.get(FP["A"]), m.get(FP["B"]), m.get(FP["S"])
    check(a is not None and a[:3] == ("tls", "listeners[0]", "current")
          and days_between(a[3], 4.9, 5.0), "metric: A current, about 5 days left", a)
    check(b is not None and b[:3] == ("tls", "listeners[0]", "next")
          and days_between(b[3], 399.9, 400.0), "metric: B next, about 400 days left", b)
    check(s is not None and s[:3] == ("signing", "soon", "current")
          and days_between(s[3], 4.9, 5.0), "metric: the signing certificate, about 5 days", s)

    early = KeepAliveTLS()
    check(early.fp == FP["A"] and early.get() == 200, "a keep-alive connection before from got A")

    # Phase 1: requests before and after from, each on a new connection.
    rec = Recorder("roll")
    rec.loop(until=takeover + 3, also=early.get)
    rows = rec.rows
    failed = [r for r in rows if r[3] != 202]
    check(rows and not failed, "phase 1: %d requests, none failed" % len(rows), failed[:5])
    before = [r for r in rows if r[1] is not None and r[1] < takeover]
    after = [r for r in rows if r[0] >= takeover]
    check(before and all(r[2] == FP["A"] for r in before),
          "connections whose handshake ended before from saw A (%d)" % len(before),
          [NAMES.get(r[2]) for r in before][:20])
    check(after and all(r[2] == FP["B"] for r in after),
          "connections begun after from saw B (%d)" % len(after),
          [NAMES.get(r[2]) for r in after][:20])
    early.get()
    check(all(x[1] == 200 for x in early.rows) and early.rows[-1][0] > takeover,
          "the keep-alive connection from before from still works after it (%d requests)"
          % len(early.rows), early.rows[-5:])
    early.conn.close()

    text = metrics()
    m = expiry_series(text)
    b = m.get(FP["B"])
    check(FP["A"] not in m and b is not None and b[2] == "current",
          "metric after from: B current, A gone", m)
    r2 = m.get(FP["R2"])
    check(FP["R1"] not in m and r2 is not None and r2[:3] == ("signing", "roll", "current"),
          "metric after from: the signing key roll's successor R2 current, R1 gone", m)
    gen = re.search(r"^ewtp_generation (\d+)$", text, re.M)
    ok = re.search(r'^ewtp_reloads_total\{result="ok"\} (\d+)$', text, re.M)
    check(gen and int(gen.group(1)) >= 2 and ok and int(ok.group(1)) >= 1,
          "the generation was rebuilt at from for the signing key (no reload asked by the test)",
          (gen and gen.group(0), ok and ok.group(0)))

    # A reload with a mismatching next key is refused; the running configuration stays.
    write(conf, config("B.crt", "B.key",
                       'next = { cert_file = "%s/C.crt"; key_file = "%s/X.key"; from = "%s"; };'
                       % (tmp, tmp, rfc3339(time.time() + 3600))))
    r = ewtpctl(conf, "reload", "--wait", timeout=120)
    check(r.returncode != 0 and "listeners[0].next.key_file" in r.stderr,
          "a reload with a mismatching next key is refused, naming the member", r.stderr[-600:])

    # Phase 2: the file names C; reload while two loops send.
    write(conf, config("C.crt", "C.key"))
    early = KeepAliveTLS()
    rec2 = Recorder("swap")
    threads = [threading.Thread(target=rec2.loop, kwargs={"pause": 0.01}, daemon=True)
               for _ in range(2)]
    threads.append(threading.Thread(target=rec2.loop, kwargs={"pause": 0.2, "also": early.get},
                                    daemon=True))
    for th in threads:
        th.start()
    time.sleep(1)
    reload_start = time.time()
    r = ewtpctl(conf, "reload", "--wait", timeout=120)
    reload_end = time.time()
    check(r.returncode == 0, "reload onto certificate C", r.stderr[-600:])
    time.sleep(1)
    rec2.stop.set()
    for th in threads:
        th.join(timeout=60)
    rows = rec2.rows
    failed = [x for x in rows if x[3] != 202]
    check(rows and not failed, "phase 2: %d requests around the reload, none failed" % len(rows),
          failed[:5])
    before = [x for x in rows if x[1] is not None and x[1] < reload_start]
    after = [x for x in rows if x[0] > reload_end]
    check(before and all(x[2] == FP["B"] for x in before),
          "connections ended before the reload saw B (%d)" % len(before))
    check(after and all(x[2] == FP["C"] for x in after),
          "connections begun after the reload saw C (%d)" % len(after),
          [NAMES.get(x[2]) for x in after][:20])
    early.get()
    check(early.fp == FP["B"] and all(x[1] == 200 for x in early.rows)
          and early.rows[-1][0] > reload_end,
          "a keep-alive connection from before the reload still works on B (%d requests)"
          % len(early.rows), early.rows[-5:])
    early.conn.close()
    m = expiry_series(metrics())
    check(FP["C"] in m and FP["B"] not in m and days_between(m[FP["C"]][3], 199.9, 200.0),
          "metric after the reload: C (about 200 days), B gone", m)

    stop(daemon)
    log = read_log(daemon.log_path)
    warned = re.findall(r"certificate signing soon \(keys\[0\]\.cert, CN=rollover-S.*expires in "
                        r"4 days", log)
    check(len(warned) == 1, "the signing certificate was warned about once (7-day threshold) "
          "over start, takeover and reloads", len(warned))
    check(not re.search(r"certificate tls listeners\[0\] \(listeners\[0\]\.cert_file.*expires",
                        log), "A (replaced by B before it expires) was not warned about")
    check(re.search(r"certificate tls listeners\[0\]: its successor .*sha256 %s.* takes over"
                    % colon(FP["B"]), log), "B's takeover is logged")
    check(not sanitizer_report(log), "no sanitizer report", sanitizer_report(log))


status = 1
try:
    status = checks.run(main)
finally:
    for p in (daemon, sim):
        if p is not None and p.poll() is None:
            stop(p)
    logs = [("ewtpd", os.path.join(tmp, "ewtpd.log")), ("sim", os.path.join(tmp, "sim.log"))]
    keep_tmp_if_failed(tmp, logs)
sys.exit(status)
