"""The ZZ authority simulator over real HTTP: ewtp-sim --country zz against documents that
ewtpctl translate produced from the template plugin's golden vectors.

usage: sim_zz.py BUILD_DIR SOURCE_DIR TMP_DIR   (exit 0 when every check passed)
"""
import http.client
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

build, source, tmp = sys.argv[1:4]
sim_bin = os.path.join(build, "bin", "ewtp-sim")
ctl = os.path.join(build, "bin", "ewtpctl")
vectors = os.path.join(source, "plugins", "template", "vectors")
TOKEN = "test-token"
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what, flush=True)


def translate(name, msg_id=None, extra=(), mutate=None):
    """Translates a vector's input (optionally under another id); returns (xml bytes, rid)."""
    msg = json.load(open(os.path.join(vectors, name, "input.json")))
    if msg_id:
        msg["id"] = msg_id
    if mutate:
        mutate(msg)
    src = os.path.join(tmp, "%s-%s.json" % (name, msg_id or "orig"))
    json.dump(msg, open(src, "w"))
    out = os.path.join(tmp, "out-%s-%s-%d" % (name, msg_id or "orig", len(extra)))
    subprocess.run([ctl, "translate", "--unsigned", "--out", out] + list(extra) + [src],
                   check=True, stdout=subprocess.DEVNULL)
    req = json.load(open(os.path.join(out, "requests.json")))["requests"][0]
    body = open(os.path.join(out, req["body"]), "rb").read()
    return body, req["headers"]["X-Request-Id"], req["path"]


# ---- a callback listener standing in for the gateway's /v1/inbound/zz ----------------------
callbacks = []


class Inbound(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        callbacks.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


listener = http.server.HTTPServer(("127.0.0.1", 0), Inbound)
threading.Thread(target=listener.serve_forever, daemon=True).start()
cb_port = listener.server_address[1]
spool = os.path.join(tmp, "spool-in")
os.makedirs(spool)


def start_sim(args, name):
    port_file = os.path.join(tmp, name + ".port")
    err = open(os.path.join(tmp, name + ".err"), "w+")
    p = subprocess.Popen([sim_bin, "--country", "zz", "--listen", "127.0.0.1:0",
                          "--port-file", port_file] + args,
                         stdout=subprocess.DEVNULL, stderr=err)
    for _ in range(200):
        if os.path.exists(port_file):
            return p, int(open(port_file).read()), err
        if p.poll() is not None:
            break
        time.sleep(0.05)
    err.seek(0)
    print("ewtp-sim did not start:", err.read())
    sys.exit(1)


def stop_sim(p, err, what):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -9
    err.seek(0)
    log = err.read()
    check(rc == 0, "%s: SIGTERM exit %s, want 0 (%s)" % (what, rc, log[-2000:]))
    check("Sanitizer" not in log and "runtime error" not in log,
          "%s: sanitizer report on shutdown:\n%s" % (what, log[-4000:]))


sim, port, sim_err = start_sim(
    ["--set", "decision_delay_ms=300", "--set", "token=" + TOKEN,
     "--set", "callback_url=http://127.0.0.1:%d/v1/inbound/zz" % cb_port,
     "--set", "callback_token=cb-secret", "--set", "spool_in=" + spool,
     "--set", "reject_over=1000.00"], "main")


def call(method, path, body=None, headers=None, token=TOKEN, ctype="application/xml"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None and ctype:
        h["Content-Type"] = ctype
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return r.status, dict(r.getheaders()), doc


def control(settings):
    s, _, doc = call("POST", "/_sim/control", json.dumps(settings).encode(), token=None,
                     ctype="application/json")
    check(s == 200, "control %s: %s %s" % (settings, s, doc))
    return doc


def wait_status(ref, want, timeout=5.0):
    end = time.time() + timeout
    doc = None
    while time.time() < end:
        _, _, doc = call("GET", "/v1/submissions/" + ref)
        if doc and doc.get("status") == want:
            return doc
        time.sleep(0.05)
    return doc


order, order_rid, order_path = translate("order-basic")
check(order_path == "/v1/submissions", "translate path %s" % order_path)

# received: 202 with a reference; the decision is not there yet
s, _, doc = call("POST", "/v1/submissions", order, {"X-Request-Id": order_rid})
check(s == 202 and doc and doc.get("status") == "received" and doc.get("reference", "").startswith("ZZ-"),
      "submit order: %s %s" % (s, doc))
ref1 = doc["reference"] if doc else "ZZ-1"
s, _, doc = call("GET", "/v1/submissions/" + ref1)
check(s == 200 and doc["status"] == "received", "GET before the decision: %s %s" % (s, doc))

# duplicate X-Request-Id: 409 with the same reference
s, _, doc = call("POST", "/v1/submissions", order, {"X-Request-Id": order_rid})
check(s == 409 and doc and doc.get("reference") == ref1 and doc["errors"][0]["code"] == "ZZ-409",
      "duplicate: %s %s" % (s, doc))

# authentication and headers
s, h, doc = call("POST", "/v1/submissions", order, {"X-Request-Id": order_rid}, token=None)
check(s == 401 and doc["errors"][0]["code"] == "ZZ-401", "no token: %s %s" % (s, doc))
s, _, doc = call("POST", "/v1/submissions", order, {"X-Request-Id": order_rid}, token="wrong")
check(s == 401, "wrong token: %s %s" % (s, doc))
s, _, doc = call("POST", "/v1/submissions", order)
check(s == 400 and doc["errors"][0]["code"] == "ZZ-400", "no X-Request-Id: %s %s" % (s, doc))
s, _, doc = call("POST", "/v1/submissions", order, {"X-Request-Id": "x-1"}, ctype="text/plain")
check(s == 415 and doc["errors"][0]["code"] == "ZZ-415", "content type: %s %s" % (s, doc))

# invalid documents: 400 with errors
s, _, doc = call("POST", "/v1/submissions", b"<zz:Submission", {"X-Request-Id": "bad-1"})
check(s == 400 and doc["errors"] and doc["errors"][0]["code"] == "ZZ-100"
      and doc["errors"][0]["message"], "malformed XML: %s %s" % (s, doc))
broken = order.replace(b"<zz:Number>SO-ZZ-1</zz:Number>", b"").replace(b"zz-ord-0001", b"zz-ord-bad2")
s, _, doc = call("POST", "/v1/submissions", broken, {"X-Request-Id": "bad-2"})
check(s == 400 and doc["errors"][0]["code"] == "ZZ-101" and "Number" in json.dumps(doc),
      "schema-invalid: %s %s" % (s, doc))
other_rid = order.replace(order_rid.encode(), b"00000000-0000-5000-8000-000000000000").replace(
    b"zz-ord-0001", b"zz-ord-bad3")
s, _, doc = call("POST", "/v1/submissions", other_rid, {"X-Request-Id": "bad-3"})
check(s == 400 and doc["errors"][0]["code"] == "ZZ-102", "RequestId mismatch: %s %s" % (s, doc))

# the decision after decision_delay_ms: accepted, POSTed to the callback, written to the spool
doc = wait_status(ref1, "accepted")
check(doc and doc["status"] == "accepted" and doc["errors"] == [], "decision: %s" % doc)
end = time.time() + 5
while time.time() < end and not any(c[2]["reference"] == ref1 for c in callbacks):
    time.sleep(0.05)
cb = [c for c in callbacks if c[2]["reference"] == ref1]
check(len(cb) == 1 and cb[0][0] == "/v1/inbound/zz" and cb[0][1] == "Bearer cb-secret"
      and cb[0][2]["status"] == "accepted" and set(cb[0][2]) == {"reference", "status", "code", "message"},
      "callback: %s" % cb)
spooled = sorted(os.listdir(spool))
check(("%s-accepted.json" % ref1) in spooled and not any(f.startswith(".") for f in spooled),
      "spool: %s" % spooled)
if ("%s-accepted.json" % ref1) in spooled:
    receipt = json.load(open(os.path.join(spool, "%s-accepted.json" % ref1)))
    check(receipt["reference"] == ref1 and receipt["status"] == "accepted", "receipt %s" % receipt)

# business rule: a declaration over reject_over is rejected with ZZ-150
def high_value(m):
    m["declaration"]["invoice_value"] = "1000.01"

decl_ok, decl_ok_rid, _ = translate("declaration-low-value", "zz-dec-0100")
decl_hi, decl_hi_rid, _ = translate("declaration-low-value", "zz-dec-0101", mutate=high_value)
s, _, doc = call("POST", "/v1/submissions", decl_ok, {"X-Request-Id": decl_ok_rid})
ref_ok = doc and doc.get("reference")
check(s == 202, "declaration under the limit: %s %s" % (s, doc))
s, _, doc = call("POST", "/v1/submissions", decl_hi, {"X-Request-Id": decl_hi_rid})
ref_hi = doc and doc.get("reference")
check(s == 202 and doc["status"] == "received", "declaration over the limit: %s %s" % (s, doc))
doc = wait_status(ref_ok, "accepted")
check(doc and doc["status"] == "accepted", "declaration 1000.00 limit, 40.50: %s" % doc)
doc = wait_status(ref_hi, "rejected")
check(doc and doc["status"] == "rejected" and doc["errors"][0]["code"] == "ZZ-150"
      and doc["errors"][0]["path"] == "/declaration/invoice_value", "rejection: %s" % doc)
end = time.time() + 5
while time.time() < end and not any(c[2]["reference"] == ref_hi for c in callbacks):
    time.sleep(0.05)
cb = [c[2] for c in callbacks if c[2]["reference"] == ref_hi]
check(cb and cb[0]["status"] == "rejected" and cb[0]["code"] == "ZZ-150", "rejection callback %s" % cb)

# cancel: before the decision or after an acceptance -> cancelled; a rejected one -> 409
control({"decision_delay_ms": 60000})
order3, order3_rid, _ = translate("order-basic", "zz-ord-0300")
s, _, doc = call("POST", "/v1/submissions", order3, {"X-Request-Id": order3_rid})
ref3 = doc["reference"]
canc3, canc3_rid, canc3_path = translate(
    "order-basic", "zz-ord-0300", ["--op", "cancel", "--authority-ref", ref3, "--reason", "withdrawn"])
check(canc3_path == "/v1/submissions/%s/cancel" % ref3, "cancel path %s" % canc3_path)
s, _, doc = call("POST", canc3_path, canc3, {"X-Request-Id": canc3_rid})
check(s == 200 and doc == {"reference": ref3, "status": "cancelled"}, "cancel: %s %s" % (s, doc))
s, _, doc = call("GET", "/v1/submissions/" + ref3)
check(doc["status"] == "cancelled", "cancelled status: %s" % doc)
canc1, canc1_rid, canc1_path = translate(
    "order-basic", None, ["--op", "cancel", "--authority-ref", ref1, "--reason", "too late"])
s, _, doc = call("POST", canc1_path, canc1, {"X-Request-Id": canc1_rid})
check(s == 200 and doc == {"reference": ref1, "status": "cancelled"},
      "cancel after the acceptance: %s %s" % (s, doc))
canc_hi, canc_hi_rid, canc_hi_path = translate(
    "order-basic", "zz-ord-hi", ["--op", "cancel", "--authority-ref", ref_hi, "--reason", "x"])
s, _, doc = call("POST", canc_hi_path, canc_hi, {"X-Request-Id": canc_hi_rid})
check(s == 409 and doc["errors"][0] == {"code": "ZZ-409", "message": "already rejected"},
      "cancel of a rejected submission: %s %s" % (s, doc))
s, _, doc = call("POST", "/v1/submissions/ZZ-999/cancel", canc1, {"X-Request-Id": "c-999"})
check(s == 404, "cancel of an unknown reference: %s %s" % (s, doc))
control({"decision_delay_ms": None})

# fault injection
control({"force_status": 503, "retry_after": 7})
s, h, doc = call("GET", "/v1/submissions/" + ref1)
check(s == 503 and h.get("Retry-After") == "7" and doc["errors"][0]["code"] == "SIM-503",
      "forced 503: %s %s %s" % (s, h, doc))
s, _, _ = call("GET", "/v1/submissions/" + ref1)
check(s == 200, "force_status applies once: %s" % s)
control({"force_status": 429, "force_count": 2, "retry_after": None})
got = [call("GET", "/v1/submissions/" + ref1)[:2] for _ in range(3)]
check([g[0] for g in got] == [429, 429, 200] and got[0][1].get("Retry-After") == "1",
      "forced 429 twice: %s" % got)
control({"error_rate": 100})
s, _, _ = call("GET", "/v1/submissions/" + ref1)
check(s == 503, "error_rate 100: %s" % s)
control({"error_rate": 50, "seed": 42})
first = [call("GET", "/v1/submissions/" + ref1)[0] for _ in range(20)]
control({"seed": 42})
second = [call("GET", "/v1/submissions/" + ref1)[0] for _ in range(20)]
check(first == second and 200 in first and 503 in first, "seeded error_rate: %s %s" % (first, second))
control({"error_rate": 0, "rate_limit": 2})
codes = [call("GET", "/v1/submissions/" + ref1)[0] for _ in range(5)]
check(429 in codes, "rate_limit 2/s over 5 quick requests: %s" % codes)
control({"rate_limit": 0, "latency_ms": 300})
t0 = time.time()
s, _, _ = call("GET", "/v1/submissions/" + ref1)
check(s == 200 and time.time() - t0 >= 0.29, "latency_ms: %s after %.3f" % (s, time.time() - t0))
control({"latency_ms": 0})
s, _, doc = call("POST", "/_sim/control", b'{"no_such_setting":1}', token=None, ctype="application/json")
check(s == 400 and doc["errors"][0]["code"] == "unknown_member", "unknown control key: %s %s" % (s, doc))
s, _, doc = call("POST", "/_sim/control", b'{"error_rate":101}', token=None, ctype="application/json")
check(s == 400, "error_rate out of range: %s %s" % (s, doc))

# what reached the authority: every id once, the resend counted as a duplicate
s, _, rec = call("GET", "/_sim/received", token=None)
ids = rec["ids"]
check(ids.get("zz-ord-0001", {}).get("count") == 2 and ids["zz-ord-0001"]["duplicates"] == 1,
      "received zz-ord-0001: %s" % ids.get("zz-ord-0001"))
check(ids.get("zz-dec-0100", {}).get("count") == 1 and ids.get("zz-ord-bad2", {}).get("count") == 1 and ids.get("zz-ord-0300/cancel", {}).get("count") == 1,
      "received others: %s" % ids)
check(rec["duplicates"] == rec["total"] - rec["unique"] and rec["faults"] >= 5
      and rec["callbacks"]["delivered"] >= 3, "received totals: %s" % rec)
control({"reset_received": True})
s, _, rec = call("GET", "/_sim/received", token=None)
check(rec["total"] == 0 and rec["ids"] == {}, "reset_received: %s" % rec)

stop_sim(sim, sim_err, "plain")

# a bad setting is refused at start with a reason
r = subprocess.run([sim_bin, "--country", "zz", "--listen", "127.0.0.1:0", "--set", "bogus=1"],
                   capture_output=True, text=True, timeout=30)
check(r.returncode == 1 and "bogus" in r.stderr, "unknown --set: %s %s" % (r.returncode, r.stderr))
r = subprocess.run([sim_bin, "--country", "qq", "--listen", "127.0.0.1:0"],
                   capture_output=True, text=True, timeout=30)
check(r.returncode == 1 and "ewtp-sim-qq.so" in r.stderr, "unknown country: %s" % r.stderr)
r = subprocess.run([sim_bin, "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
check(r.returncode == 2, "usage: %s" % r.returncode)

# HTTPS with a required client certificate
def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

pki = os.path.join(tmp, "pki")
os.makedirs(pki)
P = lambda n: os.path.join(pki, n)
openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", P("ca.key"), "-out", P("ca.pem"),
        "-days", "2", "-subj", "/CN=ZZ test CA")
openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", P("srv.key"), "-out", P("srv.pem"),
        "-days", "2", "-subj", "/CN=127.0.0.1")
openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", P("cli.key"), "-out", P("cli.csr"),
        "-subj", "/CN=gateway")
openssl("x509", "-req", "-in", P("cli.csr"), "-CA", P("ca.pem"), "-CAkey", P("ca.key"),
        "-CAcreateserial", "-out", P("cli.pem"), "-days", "2")
tls_sim, port, tls_err = start_sim(["--tls-cert", P("srv.pem"), "--tls-key", P("srv.key"),
                                    "--client-ca", P("ca.pem")], "tls")


def tls_get(with_cert):
    ctx = ssl.create_default_context(cafile=P("srv.pem"))
    ctx.check_hostname = False
    if with_cert:
        ctx.load_cert_chain(P("cli.pem"), P("cli.key"))
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        c.request("GET", "/_sim/health")
        r = c.getresponse()
        return r.status, json.loads(r.read())
    except (ssl.SSLError, OSError, http.client.HTTPException) as e:
        return 0, str(e)
    finally:
        c.close()


s, doc = tls_get(True)
check(s == 200 and doc["country"] == "ZZ", "https with client cert: %s %s" % (s, doc))
s, doc = tls_get(False)
check(s == 0, "https without client cert must fail: %s %s" % (s, doc))
stop_sim(tls_sim, tls_err, "tls")

listener.shutdown()
print("sim_zz: %d passed, %d failed" % (passed, len(failures)))
sys.exit(1 if failures else 0)
