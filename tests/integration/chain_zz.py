"""Chains (spec/plugin-abi.md "Chains") end to end: gap-free numbering across retries, a
business rejection and a kill -9 of ewtpd.

The real ewtpd (real SQLite file) with one ZZ instance whose sender numbers its submissions
(setting chain_numbering: classify says needs_chain, translate writes Header/Sequence), and
the real ZZ simulator with check_sequence: it refuses (422 ZZ-SEQ) a number that is not the
sender's last accepted + 1 or a previous reference that is not the last accepted one's,
refuses a declaration over reject_over at once (422 ZZ-150) without using up a number, and
answers a resent X-Request-Id with 409 and the first reference.

One sender, 60 messages, posted in phases:
  1. 20 orders;
  2. the simulator's framework answers the next 6 requests 503 (force_status), then 10 orders,
     one declaration over reject_over (the business rejection), 9 orders;
  3. the simulator reads the next 2 numbered submissions and answers 503 (unavailable_count:
     so their first number is visible), 10 orders with 400 ms latency on every answer, and
     ewtpd is killed with SIGKILL mid-delivery and restarted on the same database;
  4. 10 orders.
Then: every order approved, the declaration rejected with ZZ-150; the simulator accepted
exactly 1..K (K = 59) with no gap, no duplicate and no ZZ-SEQ refusal; each message's number
in ewtpd's events is the simulator's, with its reference; the rejected declaration's number
went to the next message; every resend (503s, the resend after the crash) carried its first
number. Ends with "N passed, M failed"."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("EWTP_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.environ.get("EWTP_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.path.join(BUILD, "bin")
TOKEN = "chain-token"
SENDER = "CHAIN-1"
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
DECL = vector("declaration-low-value")


def order(mid):
    return dict(ORDER, id=mid, order=dict(ORDER["order"], number="SO-" + mid))


def big_declaration(mid):
    d = dict(DECL["declaration"], type="standard", order_number="SO-" + mid,
             invoice_value="5000.00")
    d["lines"] = [dict(DECL["declaration"]["lines"][0], unit_price="5000.00", amount="5000.00")]
    return dict(DECL, id=mid, declaration=d)


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
        self.tmp = tempfile.mkdtemp(prefix="ewtp-chain-")
        self.api = free_port()
        self.sim_port = free_port()
        os.makedirs(os.path.join(self.tmp, "run"))
        with open(os.path.join(self.tmp, "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.conf = os.path.join(self.tmp, "ewtpd.conf")
        with open(self.conf, "w") as f:
            f.write("""
plugin_dir = "%(plugins)s";
state_dir = "%(tmp)s/run";
admin_socket = "%(tmp)s/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
tenants = ( { id = "chain"; token_file = "token"; destinations = [ "*" ]; } );
store = { backend = "sqlite"; path = "%(tmp)s/ewtpd.sqlite"; };
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 500; request_timeout_ms = 1500; lease_ms = 2000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-chain"; plugin = "zz";
    settings = { sign_key = ""; sender_id = "%(sender)s"; chain_numbering = true; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = ( { destination = "ZZ"; instance = "zz-chain"; } );
""" % {"plugins": os.path.join(BUILD, "plugins"), "tmp": self.tmp, "api": self.api,
                "sim": self.sim_port, "sender": SENDER})
        self.daemon = None
        self.sim = None
        self.starts = 0

    def start_sim(self):
        log = open(os.path.join(self.tmp, "sim.log"), "a")
        self.sim = subprocess.Popen(
            [os.path.join(BIN, "ewtp-sim"), "--country", "zz", "--listen",
             "127.0.0.1:%d" % self.sim_port, "--set", "decision_delay_ms=50",
             "--set", "check_sequence=true", "--set", "reject_over=1000.00",
             "--set", "sender_id=" + SENDER],
            stdout=log, stderr=subprocess.STDOUT)
        return self.wait_up(self.sim_port, "/_sim/health", self.sim)

    def start_daemon(self):
        self.starts += 1
        log = open(os.path.join(self.tmp, "ewtpd.log"), "a")
        log.write("---- start %d\n" % self.starts)
        log.flush()
        self.daemon = subprocess.Popen([os.path.join(BIN, "ewtpd"), "-c", self.conf],
                                       stdout=log, stderr=subprocess.STDOUT)
        return self.wait_up(self.api, "/readyz", self.daemon)

    @staticmethod
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

    def post(self, msg):
        return request(self.api, "POST", "/v1/messages", msg, TOKEN)[0]

    def status(self, mid):
        return request(self.api, "GET", "/v1/messages/" + mid, token=TOKEN)[1]

    def events(self, mid):
        return request(self.api, "GET", "/v1/messages/%s/events" % mid, token=TOKEN)[1]

    def control(self, **kv):
        return request(self.sim_port, "POST", "/_sim/control", kv)[0]

    def sequence(self):
        return request(self.sim_port, "GET", "/_zz/sequence/" + SENDER)[1]


def wait_states(env, ids, states, until):
    """{id: status} once every id is in one of states, or at until."""
    last = {}
    while time.monotonic() < until:
        for mid in ids:
            if last.get(mid, {}).get("state") not in states:
                try:
                    last[mid] = env.status(mid) or {}
                except OSError:
                    pass
        if all(last.get(m, {}).get("state") in states for m in ids):
            break
        time.sleep(0.2)
    return last


def main():
    env = Env()
    try:
        if not (check(env.start_sim(), "simulator up") and
                check(env.start_daemon(), "ewtpd up")):
            return
        ids, rejected_id = [], "c-030-rej"
        posted = {}

        def send(mid, msg):
            ids.append(mid)
            posted[mid] = env.post(msg)

        # 1. A plain run.
        for i in range(20):
            send("c-%03d" % i, order("c-%03d" % i))
        wait_states(env, ids[:5], ("submitted", "approved"), min(DEADLINE, time.monotonic() + 20))
        # 2. Transient failures before the module (framework 503s), a rejection in the middle.
        # Polls count among the next requests too: enough that submissions get some.
        check(env.control(force_status=503, force_count=6, retry_after=0) == 200,
              "simulator: next 6 requests answered 503")
        for i in range(20, 30):
            send("c-%03d" % i, order("c-%03d" % i))
        send(rejected_id, big_declaration(rejected_id))
        for i in range(31, 40):
            send("c-%03d" % i, order("c-%03d" % i))
        wait_states(env, ids[:30], ("submitted", "approved", "rejected"),
                    min(DEADLINE, time.monotonic() + 25))
        # 3. 503s after the number was read, slow answers, and kill -9 mid-delivery.
        check(env.control(unavailable_count=2, latency_ms=400) == 200,
              "simulator: 2 numbered submissions read then 503, answers 400 ms late")
        for i in range(40, 50):
            send("c-%03d" % i, order("c-%03d" % i))
        # Kill when the simulator has just read a numbered submission whose answer is held
        # back 400 ms (/_sim/received is never delayed): ewtpd has not recorded it, so after
        # the restart it sends the message again with the same number and X-Request-Id, and
        # gets 409 with the first reference.
        victim = None
        until = min(DEADLINE - 40, time.monotonic() + 20)
        while victim is None and time.monotonic() < until:
            got = request(env.sim_port, "GET", "/_sim/received")[1].get("ids", {})
            new = sorted(m for m in got if m.startswith("c-04") and m >= "c-042")
            if new:
                victim = new[0]
            else:
                time.sleep(0.01)
        env.daemon.send_signal(signal.SIGKILL)
        env.daemon.wait()
        print("  killed ewtpd while the simulator's answer to %s was on its way" % victim)
        check(env.control(latency_ms=0) == 200, "simulator: latency off again")
        check(env.start_daemon(), "ewtpd restarted after kill -9")
        # 4. After the restart.
        for i in range(50, 60):
            send("c-%03d" % i, order("c-%03d" % i))
        check(all(posted[m] == 202 for m in ids),
              "all 60 accepted with 202 (%s)" % {m: s for m, s in posted.items() if s != 202})

        final = wait_states(env, ids, ("approved", "rejected", "dead"), DEADLINE - 8)
        orders = [m for m in ids if m != rejected_id]
        bad = {m: final.get(m, {}).get("state") for m in orders
               if final.get(m, {}).get("state") != "approved"}
        check(not bad, "every order approved (%d; not: %s)" % (len(orders) - len(bad), bad))
        rej = final.get(rejected_id, {})
        codes = [e.get("code") for e in rej.get("errors", [])]
        check(rej.get("state") == "rejected" and "ZZ-150" in codes,
              "the declaration over reject_over is rejected with ZZ-150 (%s %s)" %
              (rej.get("state"), codes))

        seq = env.sequence()
        accepted = seq.get("accepted", [])
        numbers = [a["number"] for a in accepted]
        k = len(orders)
        print("  simulator: last %s, %d accepted, %d refused (ZZ-SEQ), %d seen" %
              (seq.get("last"), len(accepted), seq.get("refused"), len(seq.get("seen", []))))
        check(numbers == list(range(1, k + 1)),
              "simulator accepted exactly 1..%d in order, no gap, no duplicate (%s)" %
              (k, numbers if numbers != list(range(1, k + 1)) else "ok"))
        check(seq.get("refused") == 0, "no submission refused for its sequence (ZZ-SEQ)")
        by_ref = {a["sender_reference"]: a for a in accepted}
        check(len(by_ref) == len(accepted) and set(by_ref) == set(orders),
              "each order accepted once by the simulator")

        # ewtpd's side: the outcome that advanced the chain names the number and reference.
        mismatch = []
        resent_503 = []
        for mid in orders:
            evs = (env.events(mid) or {}).get("events", [])
            adv = [e["detail"]["chain"] for e in evs
                   if e.get("type") == "outcome" and isinstance(e.get("detail"), dict)
                   and e["detail"].get("chain")]
            sim = by_ref.get(mid, {})
            if (len(adv) != 1 or adv[0].get("number") != sim.get("number") or
                    adv[0].get("ref") != sim.get("reference") or
                    final[mid].get("authority_ref") != sim.get("reference")):
                mismatch.append((mid, adv, sim))
            if any(e.get("type") == "outcome" and e.get("state") == "retrying" and
                   (e.get("detail") or {}).get("http_status") == 503 for e in evs):
                resent_503.append(mid)
        check(not mismatch, "each message's chain number and reference in ewtpd are the "
              "simulator's (%s)" % (mismatch[:3] or "ok"))
        check(len(resent_503) >= 1, "messages retried after a 503 (%d: %s)" %
              (len(resent_503), resent_503))

        # Every sending of one message carried one number: retries reuse it.
        seen = seq.get("seen", [])
        per = {}
        for s in seen:
            per.setdefault(s["sender_reference"], set()).add(s["number"])
        multi = [s for s in seen if s["answer"] in ("ZZ-503", "duplicate")]
        check(all(len(v) == 1 for v in per.values()),
              "every resend carried its first number (%s)" %
              ({m: sorted(v) for m, v in per.items() if len(v) != 1} or "ok"))
        check(sum(1 for s in seen if s["answer"] == "ZZ-503") == 2,
              "2 numbered submissions read and answered 503, then resent (%s)" %
              [(s["sender_reference"], s["number"]) for s in multi])
        dup = [s for s in seen if s["answer"] == "duplicate"]
        print("  resends after the crash answered 409 (first submission stands): %s" %
              ([(s["sender_reference"], s["number"]) for s in dup] or "none"))
        check(any(d["sender_reference"] == victim for d in dup),
              "%s, in flight at the kill, was sent again after the restart and answered 409"
              % victim)
        for s in dup:
            check(by_ref.get(s["sender_reference"], {}).get("number") == s["number"],
                  "resend of %s after the crash carried its number %d" %
                  (s["sender_reference"], s["number"]))

        # The rejection used no number: the next message in accept order took it.
        rej_seen = [s for s in seen if s["sender_reference"] == rejected_id]
        nxt = ids[ids.index(rejected_id) + 1]
        check(len(rej_seen) == 1 and rej_seen[0]["answer"] == "ZZ-150" and
              by_ref.get(nxt, {}).get("number") == rej_seen[0]["number"],
              "the rejected declaration's number %s went to the next message %s (%s)" %
              (rej_seen[0]["number"] if rej_seen else None, nxt, by_ref.get(nxt)))
        check(env.starts == 2, "ewtpd was killed once and restarted")
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
