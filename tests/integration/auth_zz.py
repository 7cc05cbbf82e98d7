"""Authentication to the authority is the host's (issue 4): JSON login and OAuth2 client
credentials, tokens cached until shortly before they expire, secrets read from files.

The real ewtpd with two ZZ instances on the real ZZ simulator (require_login: submissions and
polls need a token it issued, valid token_ttl_ms):
  zz-login  auth kind "json_login": POST /v1/login {"user","password"} -> {"token","expires_in"}
  zz-oauth  auth kind "oauth2": POST /v1/oauth/token (client credentials) -> access_token
Both read the password from one secret file. The simulator counts logins ("login:hub",
"oauth:hub", "...:refused") and refused tokens ("unauthorized") in /_sim/received.

  1. cached: 15 + 5 messages (long-lived tokens) -> one login per instance, no 401;
  2. a 401 (the simulator revokes every token) -> each instance fetches a new token once and
     its message still gets through; tokens now live 4 s;
  3. refresh before expiry: messages every 0.4 s for 8 s on both instances -> new logins
     (about every 3 s), every message approved, no further 401;
  4. wrong password in the secret file -> the message keeps retrying (never rejected) with
     the reason in its status; with the right password back it is approved.
Ends with "N passed, M failed"."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("EWTP_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.environ.get("EWTP_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.path.join(BUILD, "bin")
DEADLINE = time.monotonic() + 85  # the whole test stops by itself
passed, failed = [], []


def check(cond, what):
    (passed if cond else failed).append(what)
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def vector(name):
    with open(os.path.join(SRC, "plugins/template/vectors", name, "input.json")) as f:
        return json.load(f)


ORDER = vector("order-basic")


def order(mid):
    return dict(ORDER, id=mid, order=dict(ORDER["order"], number="SO-" + mid))


def request(port, method, path, body=None, token=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                  headers=headers)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:
            return r.status, raw
    finally:
        c.close()


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ewtp-auth-")
        self.api = free_port()
        self.sim_port = free_port()
        os.makedirs(os.path.join(self.tmp, "run"))
        for t in ("t1", "t2"):
            self.write(t + ".token", t + "-token\n")
        self.write("hub.secret", "pw-1\n")
        self.conf = os.path.join(self.tmp, "ewtpd.conf")
        sim = "http://127.0.0.1:%d" % self.sim_port
        self.write("ewtpd.conf", """
plugin_dir = "%(plugins)s";
state_dir = "%(tmp)s/run";
admin_socket = "%(tmp)s/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "*" ]; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "*" ]; }
);
store = { backend = "sqlite"; path = "%(tmp)s/ewtpd.sqlite"; };
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 400; request_timeout_ms = 3000; lease_ms = 10000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-login"; plugin = "zz"; settings = { sender_id = "LOGIN-1"; sign_key = ""; };
    transport = "https"; endpoint = "%(sim)s";
    auth = { kind = "json_login"; token_url = "%(sim)s/v1/login"; client_id = "hub";
             secret_file = "hub.secret"; token_json_pointer = "/token"; }; },
  { name = "zz-oauth"; plugin = "zz"; settings = { sender_id = "OAUTH-1"; sign_key = ""; };
    transport = "https"; endpoint = "%(sim)s";
    auth = { kind = "oauth2"; token_url = "%(sim)s/v1/oauth/token"; client_id = "hub";
             secret_file = "hub.secret"; }; }
);
routes = (
  { tenant = "t1"; destination = "ZZ"; instance = "zz-login"; },
  { tenant = "t2"; destination = "ZZ"; instance = "zz-oauth"; }
);
""" % {"plugins": os.path.join(BUILD, "plugins"), "tmp": self.tmp, "api": self.api, "sim": sim})
        self.daemon = None
        self.sim = None

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    def start_sim(self):
        log = open(os.path.join(self.tmp, "sim.log"), "a")
        self.sim = subprocess.Popen(
            [os.path.join(BIN, "ewtp-sim"), "--country", "zz", "--listen",
             "127.0.0.1:%d" % self.sim_port, "--set", "decision_delay_ms=0",
             "--set", "require_login=true", "--set", "login_user=hub",
             "--set", "login_password=pw-1", "--set", "token_ttl_ms=600000"],
            stdout=log, stderr=subprocess.STDOUT)
        return wait_up(self.sim_port, "/_sim/health", self.sim)

    def start_daemon(self):
        log = open(os.path.join(self.tmp, "ewtpd.log"), "a")
        self.daemon = subprocess.Popen([os.path.join(BIN, "ewtpd"), "-c", self.conf],
                                       stdout=log, stderr=subprocess.STDOUT)
        return wait_up(self.api, "/readyz", self.daemon)

    def stop(self):
        """SIGTERM to both; True when ewtpd exited 0 and no sanitizer report is in the logs."""
        rcs = []
        for p in (self.daemon, self.sim):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            rcs.append(p.returncode if p else 0)
        logs = self.log("ewtpd.log") + self.log("sim.log")
        clean = "Sanitizer" not in logs and "runtime error" not in logs
        if not clean:
            print("sanitizer report:\n" + logs[-4000:])
        return rcs[0] == 0 and clean

    def log(self, what):
        try:
            with open(os.path.join(self.tmp, what)) as f:
                return f.read()
        except OSError:
            return ""

    def post(self, tenant, msg):
        return request(self.api, "POST", "/v1/messages", msg, tenant + "-token")[0]

    def status(self, tenant, mid):
        return request(self.api, "GET", "/v1/messages/" + mid, token=tenant + "-token")[1]

    def events(self, tenant, mid):
        return request(self.api, "GET", "/v1/messages/%s/events" % mid,
                       token=tenant + "-token")[1]

    def control(self, **kv):
        return request(self.sim_port, "POST", "/_sim/control", kv)[0]

    def counts(self):
        """{"login": n, "oauth": n, "login_refused": n, "unauthorized": n} so far."""
        ids = request(self.sim_port, "GET", "/_sim/received")[1].get("ids", {})
        n = lambda k: ids.get(k, {}).get("count", 0)
        return {"login": n("login:hub"), "oauth": n("oauth:hub"),
                "login_refused": n("login:refused") + n("oauth:refused"),
                "unauthorized": n("unauthorized")}


def wait_up(port, path, proc):
    end = time.monotonic() + 30
    while time.monotonic() < end and proc.poll() is None:
        try:
            if request(port, "GET", path, timeout=2)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wait_states(env, msgs, states, until):
    """{id: status} once every (tenant, id) is in one of states, or at until."""
    last = {}
    while time.monotonic() < until:
        for tenant, mid in msgs:
            if last.get(mid, {}).get("state") not in states:
                try:
                    last[mid] = env.status(tenant, mid) or {}
                except OSError:
                    pass
        if all(last.get(m, {}).get("state") in states for _, m in msgs):
            break
        time.sleep(0.1)
    return last


def all_approved(env, msgs, what, secs):
    st = wait_states(env, msgs, ("approved", "rejected", "dead"),
                     min(DEADLINE - 5, time.monotonic() + secs))
    bad = {m: st.get(m, {}).get("state") for _, m in msgs if st.get(m, {}).get("state") != "approved"}
    return check(not bad, "%s: all %d approved (not: %s)" % (what, len(msgs), bad))


def main():
    env = Env()
    try:
        if not (check(env.start_sim(), "simulator up (require_login)") and
                check(env.start_daemon(), "ewtpd up")):
            return
        # 1. Cached: one login per instance for a burst.
        msgs = [("t1", "l-%03d" % i) for i in range(15)] + [("t2", "o-%03d" % i) for i in range(5)]
        for tenant, mid in msgs:
            env.post(tenant, order(mid))
        all_approved(env, msgs, "burst", 30)
        c1 = env.counts()
        print("  after the burst: %s" % c1)
        check(c1["login"] == 1, "json_login: one login for 15 messages and their polls (%d)"
              % c1["login"])
        check(c1["oauth"] == 1, "oauth2: one token for 5 messages and their polls (%d)"
              % c1["oauth"])
        check(c1["unauthorized"] == 0 and c1["login_refused"] == 0, "no 401 so far")

        # 2. The authority refuses the cached token: a fresh login, the message gets through.
        check(env.control(token_ttl_ms=4000, revoke_tokens=True) == 200,
              "simulator: every token revoked, new ones live 4 s")
        env.post("t1", order("l-401"))
        env.post("t2", order("o-401"))
        ok = all_approved(env, [("t1", "l-401"), ("t2", "o-401")], "after a 401", 15)
        c2 = env.counts()
        saw401 = []
        for tenant, mid in (("t1", "l-401"), ("t2", "o-401")):
            evs = (env.events(tenant, mid) or {}).get("events", [])
            saw401.append(any(e.get("type") == "outcome" and e.get("state") == "retrying" and
                              (e.get("detail") or {}).get("http_status") == 401 for e in evs))
        check(ok and all(saw401) and c2["unauthorized"] == 2 and
              c2["login"] == c1["login"] + 1 and c2["oauth"] == c1["oauth"] + 1,
              "a 401 makes ewtpd fetch one new token per instance and retry (401 seen %s, "
              "logins %d -> %d, oauth %d -> %d)" %
              (saw401, c1["login"], c2["login"], c1["oauth"], c2["oauth"]))

        # 3. Refresh before expiry: 4 s tokens, traffic for 8 s, never a 401.
        msgs = []
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 8:
            for tenant, p in (("t1", "r-l-"), ("t2", "r-o-")):
                mid = "%s%03d" % (p, i)
                env.post(tenant, order(mid))
                msgs.append((tenant, mid))
            i += 1
            time.sleep(0.4)
        all_approved(env, msgs, "8 s of traffic with 4 s tokens", 20)
        c3 = env.counts()
        print("  after 8 s with 4 s tokens: %s" % c3)
        check(c3["login"] - c2["login"] >= 2 and c3["login"] - c2["login"] <= 5,
              "json_login: refreshed about every 3 s (%d new logins)" % (c3["login"] - c2["login"]))
        check(c3["oauth"] - c2["oauth"] >= 2 and c3["oauth"] - c2["oauth"] <= 6,
              "oauth2: refreshed before expiry (%d new tokens)" % (c3["oauth"] - c2["oauth"]))
        check(c3["unauthorized"] == c2["unauthorized"],
              "no request went out with an expired token (401s %d -> %d)" %
              (c2["unauthorized"], c3["unauthorized"]))

        # 4. A wrong password: retries with a clear reason, never a rejection.
        env.write("hub.secret", "wrong-password\n")
        env.control(revoke_tokens=True)
        env.post("t1", order("l-badpw"))
        st = {}
        until = min(DEADLINE - 15, time.monotonic() + 15)
        while time.monotonic() < until:
            st = env.status("t1", "l-badpw") or {}
            if st.get("attempts", 0) >= 3 and st.get("state") == "retrying":
                break
            time.sleep(0.2)
        reasons = [e.get("message") or "" for e in st.get("errors", [])]
        print("  wrong password: state %s after %s attempts: %s" %
              (st.get("state"), st.get("attempts"), reasons))
        check(st.get("state") == "retrying" and st.get("attempts", 0) >= 3,
              "wrong password: retried, not rejected (%s, %s attempts)" %
              (st.get("state"), st.get("attempts")))
        check(any("authentication at the authority failed" in r and "HTTP 401" in r
                  for r in reasons),
              "the status says why: the token endpoint refused the credentials")
        check(env.counts()["login_refused"] >= 2, "each retry tried to log in again")
        env.write("hub.secret", "pw-1\n")
        all_approved(env, [("t1", "l-badpw")], "right password back", 15)
    finally:
        check(env.stop(), "ewtpd exits 0 on SIGTERM; no sanitizer report")
        if failed:
            print("logs kept in " + env.tmp)
            print(env.log("ewtpd.log")[-3000:])
        else:
            shutil.rmtree(env.tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        print("%d passed, %d failed" % (len(passed), len(failed)))
    sys.exit(1 if failed else 0)
