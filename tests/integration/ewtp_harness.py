"""Shared mechanics of the integration tests (tests/integration/*.py, plugins/be/tests/
test_be_sim.py): where the build is, free loopback ports, temporary files, starting ewtpd and
ewtp-sim and waiting until they serve, a small HTTP/JSON client with bearer tokens, bounded
waits, a clean SIGTERM stop with its exit status, sanitizer reports and log tails, and the
"ok / FAIL" lines with the closing "N passed, M failed".

Standard library only (/usr/bin/python3). A test imports it from its own folder:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ewtp_harness import check, checks, free_port, ...

What a test checks stays in the test; this module only runs things and reports."""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

# ---- where things are --------------------------------------------------------------------------
# ctest passes EWTP_SOURCE_DIR / EWTP_BUILD_DIR; run by hand, the tree this file is in and its
# build/ folder are used.
SRC = os.environ.get("EWTP_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.environ.get("EWTP_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.path.join(BUILD, "bin")
PLUGINS = os.path.join(BUILD, "plugins")
EWTPD = os.path.join(BIN, "ewtpd")
EWTPCTL = os.path.join(BIN, "ewtpctl")
SIM = os.path.join(BIN, "ewtp-sim")
LOOPBACK = "127.0.0.1"
# What a request on a connection that breaks (refused, reset, cut mid-answer) raises.
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


# ---- checks and the summary line ----------------------------------------------------------------
class Checks:
    """Counts what passed and what failed; one per test process (the module's `checks`)."""

    def __init__(self):
        self.passed = 0
        self.failed = []  # the descriptions of the failed checks

    def check(self, cond, what, detail=None):
        """Prints "ok   what" or "FAIL what[: detail]" and records it; returns bool(cond)."""
        if cond:
            self.passed += 1
            print("ok   " + what, flush=True)
        else:
            self.failed.append(what)
            print("FAIL " + what + ("" if detail is None else ": " + str(detail)[:600]),
                  flush=True)
        return bool(cond)

    def summary(self, suffix=""):
        """Prints "N passed, M failed<suffix>"; returns the exit status (1 on any failure)."""
        print("%d passed, %d failed%s" % (self.passed, len(self.failed), suffix), flush=True)
        return 1 if self.failed else 0

    def run(self, main):
        """Runs main(), then prints the summary, also when main raised (the exception then goes
        on); returns the exit status."""
        try:
            main()
        finally:
            status = self.summary()
        return status


checks = Checks()
check = checks.check


# ---- ports, files, temporary folders ------------------------------------------------------------
_given_ports = set()


def free_port():
    """A free loopback port not handed out before in this run (the kernel may offer the same
    port again once its probe socket is closed)."""
    for _ in range(100):
        s = socket.socket()
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port")


def write(path, text, mode=None):
    """Writes text to path (replacing it); mode, if given, is chmod'ed. Returns path."""
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


def write_token(folder, name, token, mode=None):
    """A token (or secret) file folder/name holding token and a newline. Returns its path."""
    return write(os.path.join(folder, name), token + "\n", mode)


def write_ewtpd_config(tmp, api_port, rest, name="ewtpd.conf", pg_conninfo=None):
    """Writes tmp/name: the settings every daemon test shares (the build's plugins, state and
    admin socket under tmp/run, one plain listener on 127.0.0.1:api_port, the SQLite store
    tmp/ewtpd.sqlite, or with pg_conninfo the PostgreSQL store of that libpq connection string,
    kept in tmp/pg.conninfo), then rest (tenants, delivery, keys, plugins, routes...). Returns
    its path."""
    store = 'store = { backend = "sqlite"; path = "%s/ewtpd.sqlite"; };' % tmp
    if pg_conninfo:
        write(os.path.join(tmp, "pg.conninfo"), pg_conninfo + "\n", 0o600)
        store = 'store = { backend = "postgresql"; conninfo_file = "%s/pg.conninfo"; };' % tmp
    head = """
plugin_dir = "%(plugins)s";
dev_mode = true;
state_dir = "%(tmp)s/run";
admin_socket = "%(tmp)s/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
%(store)s
""" % {"plugins": PLUGINS, "tmp": tmp, "api": api_port, "store": store}
    return write(os.path.join(tmp, name), head + rest)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def zz_order(mid):
    """The template plugin's order-basic vector with id mid (a fresh copy)."""
    m = load_json(os.path.join(SRC, "plugins/template/vectors/order-basic/input.json"))
    m["id"] = mid
    return m


def make_tmp(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_tmp(tmp, keep=False):
    """Removes the test's temporary folder, unless keep or EWTP_KEEP_TMP is set (then says
    where it is)."""
    if keep or os.environ.get("EWTP_KEEP_TMP"):
        print("kept " + tmp, flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def keep_tmp_if_failed(tmp, logs, chars=4000):
    """At the end of a test: when a check failed, prints the tail of each (label, path) of logs
    and keeps tmp (remove_tmp says where); otherwise removes tmp."""
    if checks.failed:
        print_logs(logs, chars)
    remove_tmp(tmp, keep=bool(checks.failed))


def openssl(*args, cwd=None):
    """Runs openssl quietly; raises CalledProcessError when it fails."""
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_sm2_cert(key, crt, subject, days=2):
    """An SM2 test key and its self-signed certificate (SM3), for the cn plugin's signing."""
    openssl("genpkey", "-algorithm", "SM2", "-out", key)
    openssl("req", "-x509", "-key", key, "-sm3", "-out", crt, "-days", str(days), "-subj", subject)
    return key, crt


# ---- bounded waits ------------------------------------------------------------------------------
def wait_until(probe, timeout=20.0, step=0.05):
    """Calls probe() until it returns something true or timeout seconds have passed; returns
    its last value (so the caller sees what it was when the time ran out)."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


def wait_port(port, proc=None, timeout=20):
    """True once 127.0.0.1:port accepts a connection; False when proc exits first or the time
    is up."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_ready(port, proc=None, timeout=30, path="/readyz"):
    """True once GET path (ewtpd's /readyz; ewtp-sim's is /_sim/health) on 127.0.0.1:port
    answers 200; False when proc exits first or the time is up."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if http_call("GET", "http://%s:%d%s" % (LOOPBACK, port, path), timeout=2)[0] == 200:
                return True
        except CONNECTION_ERRORS:
            pass
        time.sleep(0.05)
    return False


def wait_port_file(path, proc=None, timeout=20):
    """The port a process wrote to path (ewtp-sim --port-file), or None when proc exits first
    or the time is up."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


# ---- processes ----------------------------------------------------------------------------------
def sanitizer_env(base=None):
    """The environment for a child under the sanitizers: leak checking on unless the caller's
    ASAN_OPTIONS say otherwise."""
    env = dict(os.environ if base is None else base)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return env


def spawn(argv, log_path, env=None, append=False, **popen_args):
    """Starts argv with stdout and stderr in log_path (truncated, or appended to); the Popen
    gets .log_path."""
    with open(log_path, "a" if append else "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, **popen_args)
    proc.log_path = log_path
    return proc


def spawn_ewtpd(conf, log_path, env=None, append=False, **popen_args):
    """ewtpd -c conf, its output in log_path."""
    return spawn([EWTPD, "-c", conf], log_path, env=env, append=append, **popen_args)


def spawn_sim(country, log_path, settings=(), listen="127.0.0.1:0", port_file=None, env=None,
              append=False):
    """ewtp-sim --country country --listen listen [--port-file f] [--set k=v ...]; settings is
    a dict or a sequence of (key, value) pairs, in order."""
    argv = [SIM, "--country", country, "--listen", listen]
    if port_file:
        argv += ["--port-file", port_file]
    for k, v in (settings.items() if isinstance(settings, dict) else settings):
        argv += ["--set", "%s=%s" % (k, v)]
    return spawn(argv, log_path, env=env, append=append)


def spawn_cn_sim(tmp, procs, timeout=15):
    """The China customs simulator on tmp/spool/out and tmp/spool/in (the folders the tests'
    cn instance writes and reads), quick to answer; appended to procs. Its port, or None when
    it did not start within timeout seconds."""
    port_file = os.path.join(tmp, "sim.port")
    procs.append(spawn_sim(
        "cn", os.path.join(tmp, "sim.log"), port_file=port_file,
        settings=[("spool_out", os.path.join(tmp, "spool", "out")),
                  ("spool_in", os.path.join(tmp, "spool", "in")),
                  ("delay_ms", 100), ("poll_ms", 50), ("match_wait_ms", 3000)]))
    return wait_port_file(port_file, procs[-1], timeout)


def check_config(conf, env=None, timeout=60):
    """ewtpd -t -c conf (the configuration check), output captured as text."""
    return subprocess.run([EWTPD, "-t", "-c", conf], capture_output=True, text=True, env=env,
                          timeout=timeout)


def ewtpctl(conf, *args, timeout=60, env=None):
    """ewtpctl -c conf args..., output captured as text."""
    return subprocess.run([EWTPCTL, "-c", conf] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_exit(proc, timeout=30):
    """Waits up to timeout seconds for proc to exit; one that does not is killed, and the
    answer is None. Otherwise its exit status."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def stop(proc, timeout=30, sig=signal.SIGTERM):
    """Stops proc with sig (SIGTERM) and waits for it (wait_exit): its exit status, also when
    it had exited before; None when it had to be killed."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    return wait_exit(proc, timeout)


class DaemonAndSim:
    """ewtpd on conf (its API on api_port) and one ewtp-sim for country on the fixed port
    sim_port, each started (and restarted) when the test says; their output is appended to
    tmp/ewtpd.log and tmp/sim.log (.daemon_log, .sim_log), ewtpd's after a "---- start N"
    line. .daemon and .sim are the running processes, .starts how often ewtpd was started."""

    def __init__(self, tmp, conf, api_port, sim_port, country, sim_settings=()):
        self.conf, self.api_port, self.sim_port = conf, api_port, sim_port
        self.country, self.sim_settings = country, sim_settings
        self.daemon_log = os.path.join(tmp, "ewtpd.log")
        self.sim_log = os.path.join(tmp, "sim.log")
        self.daemon = None
        self.sim = None
        self.starts = 0

    def start_sim(self, timeout=30):
        """True once the simulator answers GET /_sim/health with 200."""
        self.sim = spawn_sim(self.country, self.sim_log, self.sim_settings,
                             listen="%s:%d" % (LOOPBACK, self.sim_port), append=True)
        return wait_ready(self.sim_port, self.sim, timeout, path="/_sim/health")

    def start_daemon(self, timeout=30):
        """True once ewtpd is ready (wait_ready)."""
        self.starts += 1
        with open(self.daemon_log, "a") as f:
            f.write("---- start %d\n" % self.starts)
        self.daemon = spawn_ewtpd(self.conf, self.daemon_log, append=True)
        return wait_ready(self.api_port, self.daemon, timeout)

    def stop(self, timeout=20):
        """Stops ewtpd, then the simulator (stop); True when ewtpd exited 0 (or was never
        started) and neither log holds a sanitizer report (printed when one does)."""
        rc = stop(self.daemon, timeout) if self.daemon else 0
        stop(self.sim, timeout)
        logs = read_log(self.daemon_log) + read_log(self.sim_log)
        clean = not sanitizer_report(logs)
        if not clean:
            print("sanitizer report:\n" + logs[-4000:], flush=True)
        return rc == 0 and clean


def kill9(proc):
    """SIGKILL (a crash, not a stop) and reap."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def read_log(path):
    """The whole of a log file ("" when there is none)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def log_tail(path, chars=4000):
    return read_log(path)[-chars:]


def log_tail_lines(path, n=40):
    return "".join(read_log(path).splitlines(True)[-n:])


def sanitizer_report(text):
    """True when text holds a sanitizer report: ASan, LSan, UBSan ("runtime error") and TSan
    ("WARNING: ThreadSanitizer: data race", "... lock-order-inversion", and the closing
    "ThreadSanitizer: reported N warnings"), which all name "Sanitizer"."""
    return "Sanitizer" in text or "runtime error" in text


def print_logs(logs, chars=4000):
    """Prints the tail of each (label, path) in logs, for a failed test."""
    for label, path in logs:
        print("---- %s (%s, tail) ----" % (label, path))
        print(log_tail(path, chars), flush=True)


# ---- HTTP -------------------------------------------------------------------------------------
def http_call(method, url, body=None, token=None, ctype="application/json", headers=None,
              timeout=10, context=None):
    """One HTTP request on its own connection: (status, body bytes, {lower-case header: value}).

    body: None, bytes or str (sent as UTF-8) as is, anything else as JSON. token: sent as
    "Authorization: Bearer <token>". Content-Type: ctype when there is a body (none when ctype
    is None). Error statuses are answers, not exceptions; a connection that fails raises one
    of CONNECTION_ERRORS."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if body is not None and ctype:
        h.setdefault("Content-Type", ctype)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        conn.close()


def parse_json(data):
    """A JSON answer: None when empty, {"_not_json": the start of it} when it is not JSON."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {"_not_json": data[:200].decode("utf-8", "replace")}


def http_json(method, url, body=None, token=None, **kw):
    """http_call, answering (status, parsed JSON) (see parse_json)."""
    status, data, _ = http_call(method, url, body=body, token=token, **kw)
    return status, parse_json(data)


_OWN = object()  # Api.call: the client's own token


class Api:
    """ewtpd's /v1 API on 127.0.0.1:port for one bearer token (None: no Authorization)."""

    def __init__(self, port, token=None, timeout=10):
        self.port = port
        self.base = "http://%s:%d" % (LOOPBACK, port)
        self.token = token
        self.timeout = timeout

    def as_token(self, token):
        """The same API for another token."""
        return Api(self.port, token, self.timeout)

    def call(self, method, path, body=None, ctype="application/json", headers=None,
             token=_OWN):
        """(status, parsed JSON); token: the client's own unless given (None: none)."""
        return http_json(method, self.base + path, body=body,
                         token=self.token if token is _OWN else token, ctype=ctype,
                         headers=headers, timeout=self.timeout)

    def submit(self, msg):
        return self.call("POST", "/v1/messages", msg)

    def status(self, mid):
        """(status, the message's status document)."""
        return self.call("GET", "/v1/messages/" + mid)

    def wait_state(self, mid, states, timeout=20):
        """Polls the message until its state is one of states; returns its last status
        document (a dict, {} when there was none), whatever the state when time ran out."""
        last = {}

        def probe():
            code, doc = self.status(mid)
            if code == 200 and isinstance(doc, dict):
                last["doc"] = doc
                return doc.get("state") in states
            return False
        wait_until(probe, timeout)
        return last.get("doc", {})

    def wait_states(self, ids, states, timeout, step=0.3):
        """Polls every id until each is in one of states; returns {id: last status document}."""
        return wait_messages([(self, mid) for mid in ids], states, timeout, step)


def wait_messages(msgs, states, timeout, step=0.3, retry_on=()):
    """Polls every (api, id) of msgs (an Api each: messages of several tenants) until each is
    in one of states; returns {id: last status document}. A poll that raises one of retry_on
    (an exception class or a tuple of them; none by default) is made again in the next round."""
    end = time.monotonic() + timeout
    last = {}
    todo = list(msgs)
    while todo and time.monotonic() < end:
        rest = []
        for api, mid in todo:
            try:
                code, doc = api.status(mid)
            except retry_on:
                rest.append((api, mid))
                continue
            last[mid] = doc
            if not (code == 200 and isinstance(doc, dict) and doc.get("state") in states):
                rest.append((api, mid))
        todo = rest
        if todo:
            time.sleep(step)
    return last


class KeepAlive:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port, opened on first use and again
    after a failure or a "Connection: close"."""

    def __init__(self, port, token=None, timeout=30):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn = None

    def request(self, method, path, body=None, ctype="application/json"):
        """(status, body bytes); on a failure the connection is dropped and the error raised."""
        h = {}
        if self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            h["Content-Type"] = ctype
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, data
        except CONNECTION_ERRORS:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def webhook_signature_ok(secret, headers, body):
    """Whether a webhook's "webhook-signature" (Standard Webhooks: "v1,<base64 HMAC-SHA256 of
    id.timestamp.body>", space separated) verifies with secret ("whsec_<base64 key>");
    headers with lower-case names."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = ("%s.%s." % (headers.get("webhook-id"), headers.get("webhook-timestamp"))).encode()
    want = "v1," + base64.b64encode(hmac.new(key, signed + body, hashlib.sha256).digest()).decode()
    return want in headers.get("webhook-signature", "").split(" ")


class PostRecorder(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that records every POST as (path, {lower-case header: value},
    body bytes) in .got (under .lock) and answers status_for(path) with an empty body. For
    webhook receivers and simulator call-backs."""

    daemon_threads = True

    def __init__(self, port=0, status_for=lambda path: 200):
        self.got = []
        self.lock = threading.Lock()
        self.status_for = status_for
        super().__init__((LOOPBACK, port), _RecordingHandler)
        self.port = self.server_address[1]

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()

    def posts(self, path=None):
        """A copy of what was received (only for path, if given)."""
        with self.lock:
            return [g for g in self.got if path is None or g[0] == path]


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.got.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body))
        self.send_response(self.server.status_for(self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass
