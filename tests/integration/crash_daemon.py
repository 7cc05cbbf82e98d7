"""kill -9 under load: nothing that got a 202 is lost, and all of it reaches the authority.

Two scenarios, each with a fresh state directory, the real ewtpd (real SQLite file) and the
real ZZ simulator (`ewtp-sim --country zz`) on loopback:

  daemon: POST threads (keep-alive) send N messages; when about 40% were accepted, ewtpd is
          killed with SIGKILL and restarted on the same configuration and database. Threads
          whose request was cut wait for the daemon and go on with their next message.
  sim:    the same load; mid-way the simulator is killed with SIGKILL and restarted on the
          same port; deliveries that failed meanwhile are retried by ewtpd.

Afterwards (bounded wait) every id that got a 202 must answer GET /v1/messages/{id} with 200
and must have reached the simulator at least once. The simulator records ids in memory, so
in the sim scenario "reached" is the union of the record taken just before the kill and the
restarted simulator's record; a delivery acknowledged in the few ms between that last
snapshot and the kill is proven by the authority reference the store holds for it.

Prints sent / 202 / found after restart / reached the simulator / duplicates for each
scenario and ends with "N passed, M failed". N is EWTP_CRASH_N (default 5000)."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (CONNECTION_ERRORS, KeepAlive, check, checks, free_port,  # noqa: E402
                          http_json, kill9, log_tail_lines, make_tmp, read_log, remove_tmp,
                          sanitizer_report, spawn_ewtpd, spawn_sim, stop as stop_process,
                          wait_ready, wait_until, write_ewtpd_config, write_token, zz_order)

TOKEN = "crash-token"
N = int(os.environ.get("EWTP_CRASH_N", "5000"))
THREADS = 8
KILL_AT = 0.4  # fraction of N accepted before the kill
DEADLINE = time.monotonic() + 800  # the whole test stops by itself
BASE = zz_order(None)


def body_of(mid):
    # Each message its own order number: shared relation keys would make every delivery
    # look up (and parse) up to 100 related messages.
    return json.dumps(dict(BASE, id=mid, order=dict(BASE["order"], number="SO-" + mid))).encode()


class Env:
    """One scenario's processes: the simulator and ewtpd, with their logs in tmp."""

    def __init__(self, name):
        self.name = name
        self.tmp = make_tmp("ewtp-crash-%s-" % name)
        self.api = free_port()
        self.sim_port = free_port()
        os.makedirs(os.path.join(self.tmp, "run"))
        write_token(self.tmp, "token", TOKEN)
        self.conf = write_ewtpd_config(self.tmp, self.api, """tenants = ( { id = "load"; token_file = "token"; destinations = [ "*" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 1000; request_timeout_ms = 2000; lease_ms = 3000; poll_interval_ms = 60000;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-test"; plugin = "zz"; settings = { sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = ( { destination = "ZZ"; instance = "zz-test"; } );
""" % {"sim": self.sim_port})
        self.daemon = None
        self.sim = None
        self.starts = 0

    def start_sim(self):
        self.sim = spawn_sim("zz", os.path.join(self.tmp, "sim.log"), append=True,
                             listen="127.0.0.1:%d" % self.sim_port,
                             settings={"decision_delay_ms": 50})

        def healthy():
            try:
                return sim_get(self.sim_port, "/_sim/health")[0] == 200
            except OSError:
                return False
        return wait_until(healthy, 30)

    def start_daemon(self):
        self.starts += 1
        log = os.path.join(self.tmp, "ewtpd.log")
        with open(log, "a") as f:
            f.write("---- start %d\n" % self.starts)
        self.daemon = spawn_ewtpd(self.conf, log, append=True)
        return wait_ready(self.api, self.daemon, 60)

    def stop(self):
        """SIGTERM to both; True when ewtpd exited 0 and no sanitizer report is in the logs."""
        rc = stop_process(self.daemon, 30) if self.daemon else 0
        stop_process(self.sim, 30)
        logs = read_log(os.path.join(self.tmp, "ewtpd.log")) + \
            read_log(os.path.join(self.tmp, "sim.log"))
        clean = not sanitizer_report(logs)
        if not clean:
            print("sanitizer report:\n" + logs[-4000:])
        return rc == 0 and clean

    def log_tail(self, what, n=40):
        return log_tail_lines(os.path.join(self.tmp, what), n)


def sim_get(port, path):
    return http_json("GET", "http://127.0.0.1:%d%s" % (port, path))


def sim_record(port):
    """{id: count} of what the simulator received."""
    st, rec = sim_get(port, "/_sim/received")
    out = {}
    items = rec.get("ids", rec.get("received", rec)) if isinstance(rec, dict) else rec
    if isinstance(items, dict):
        for k, v in items.items():
            out[k] = v.get("count", 1) if isinstance(v, dict) else int(v)
    elif isinstance(items, list):
        for it in items:
            if isinstance(it, dict):
                out[it.get("id")] = int(it.get("count", 1))
            else:
                out[it] = out.get(it, 0) + 1
    return out


class Load:
    """THREADS keep-alive POST loops over ids prefix-000000 .. prefix-N-1. A request cut by a
    crash counts as sent without an answer; the thread then waits until the daemon is up."""

    def __init__(self, env, prefix):
        self.env = env
        self.prefix = prefix
        self.lock = threading.Lock()
        self.next = 0
        self.status = {}  # id -> HTTP status, or -1 for no answer
        self.accepted = 0
        self.up = threading.Event()
        self.up.set()

    def take(self):
        with self.lock:
            if self.next >= N:
                return None
            self.next += 1
            return "%s-%06d" % (self.prefix, self.next - 1)

    def worker(self):
        client = KeepAlive(self.env.api, TOKEN)
        while time.monotonic() < DEADLINE:
            mid = self.take()
            if mid is None:
                break
            try:
                st = client.request("POST", "/v1/messages", body_of(mid))[0]
            except CONNECTION_ERRORS:
                st = -1
            with self.lock:
                self.status[mid] = st
                if st == 202:
                    self.accepted += 1
            if st == -1 or st == 503:
                self.up.wait(timeout=60)
                time.sleep(0.02)
        client.close()

    def run(self, at_kill):
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        killed = False
        while any(t.is_alive() for t in threads) and time.monotonic() < DEADLINE:
            if not killed and self.accepted >= int(N * KILL_AT):
                killed = True
                at_kill(self)
            time.sleep(0.01)
        for t in threads:
            t.join(timeout=5)
        return killed, time.monotonic() - t0


def count_found(env, ids):
    """How many of ids answer GET /v1/messages/{id} with 200, over THREADS connections."""
    ids = list(ids)
    found = [0] * THREADS
    refs = {}

    def worker(k):
        conn = KeepAlive(env.api, TOKEN)
        for mid in ids[k::THREADS]:
            for _ in range(3):
                try:
                    st, data = conn.request("GET", "/v1/messages/" + mid)
                except CONNECTION_ERRORS:
                    continue
                if st == 200:
                    found[k] += 1
                    refs[mid] = json.loads(data).get("authority_ref")
                break
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(found), refs


def wait_reached(env, ids, earlier, limit_s):
    """Waits until every id is in the simulator's record (or earlier); returns the record."""
    t0 = time.monotonic()
    end = t0 + limit_s
    rec = {}
    while time.monotonic() < min(end, DEADLINE):
        try:
            rec = sim_record(env.sim_port)
        except (OSError, ValueError):
            rec = {}
        if all(i in rec or i in earlier for i in ids):
            break
        time.sleep(0.5)
    print("%s: waited %.1f s for the deliveries" % (env.name, time.monotonic() - t0), flush=True)
    return rec


def report(name, load, found, reached, dups, secs):
    sent = len(load.status)
    accepted = sorted(i for i, s in load.status.items() if s == 202)
    others = {}
    for s in load.status.values():
        if s != 202:
            others[s] = others.get(s, 0) + 1
    print("%s: sent %d, 202 %d, other answers %s, found after restart %d/%d, reached the "
          "simulator %d/%d, duplicates %d, load %.1f s (%.0f POST/s)"
          % (name, sent, len(accepted), json.dumps(others), found, len(accepted), reached,
             len(accepted), dups, secs, sent / secs if secs else 0), flush=True)


def scenario_daemon():
    env = Env("daemon")
    try:
        if not check(env.start_sim() and env.start_daemon(), "daemon: ewtpd and the simulator start"):
            print(env.log_tail("ewtpd.log"), env.log_tail("sim.log"))
            return

        def at_kill(load):
            load.up.clear()
            kill9(env.daemon)
            print("daemon: ewtpd killed (SIGKILL) after %d accepted" % load.accepted, flush=True)
            # kill9 reaped it: its listener is closed, the restart can bind the port at once.
            ok = env.start_daemon()
            check(ok, "daemon: ewtpd restarts on the same configuration and database")
            load.up.set()

        load = Load(env, "kd")
        killed, secs = load.run(at_kill)
        check(killed, "daemon: the kill happened mid-load")
        check(len(load.status) == N, "daemon: all %d POSTs were sent" % N)
        accepted = [i for i, s in load.status.items() if s == 202]
        bad = [s for s in load.status.values() if s not in (202, 503, 429, -1)]
        check(not bad, "daemon: no answer other than 202/429/503 (got %s)" % sorted(set(bad)))
        cut = sum(1 for s in load.status.values() if s == -1)
        check(cut <= 2 * THREADS, "daemon: at most %d requests cut by the kill (%d)"
              % (2 * THREADS, cut))
        check(len(accepted) >= N * 0.9, "daemon: at least 90%% accepted (%d)" % len(accepted))
        found, _ = count_found(env, accepted)
        check(found == len(accepted), "daemon: every 202 is in the store after the restart")
        rec = wait_reached(env, accepted, {}, 240)
        reached = sum(1 for i in accepted if i in rec)
        dups = sum(c - 1 for i, c in rec.items() if c > 1)
        check(reached == len(accepted), "daemon: every 202 reached the simulator")
        unanswered_stored, _ = count_found(env, [i for i, s in load.status.items() if s == -1])
        print("daemon: %d requests cut by the kill, %d of them stored anyway"
              % (cut, unanswered_stored))
        report("daemon", load, found, reached, dups, secs)
        if reached != len(accepted):
            print(env.log_tail("ewtpd.log"))
    finally:
        check(env.stop(), "%s: ewtpd stops cleanly, no sanitizer report" % env.name)
        if not checks.failed:
            remove_tmp(env.tmp)


def scenario_sim():
    env = Env("sim")
    before = {}
    try:
        if not check(env.start_sim() and env.start_daemon(), "sim: ewtpd and the simulator start"):
            print(env.log_tail("ewtpd.log"), env.log_tail("sim.log"))
            return

        def at_kill(load):
            # The record lives in the simulator's memory: take it, then kill at once.
            try:
                before.update(sim_record(env.sim_port))
            except (OSError, ValueError) as e:
                print("sim: snapshot failed:", e)
            kill9(env.sim)
            print("sim: simulator killed (SIGKILL) after %d accepted, %d recorded"
                  % (load.accepted, len(before)), flush=True)
            # Deliveries fail meanwhile and go to retrying: wait until ewtpd shows one.
            def retrying():
                try:
                    st, page = http_json("GET", "http://127.0.0.1:%d/v1/messages?state=retrying"
                                         "&limit=1" % env.api, token=TOKEN)
                except CONNECTION_ERRORS:
                    return False
                return st == 200 and bool((page or {}).get("items"))
            check(wait_until(retrying, 60), "sim: with the simulator down, deliveries go to retrying")
            check(env.start_sim(), "sim: the simulator restarts on the same port")

        load = Load(env, "ks")
        killed, secs = load.run(at_kill)
        check(killed, "sim: the kill happened mid-load")
        check(len(load.status) == N, "sim: all %d POSTs were sent" % N)
        accepted = [i for i, s in load.status.items() if s == 202]
        check(len(accepted) == N, "sim: every POST got 202 (%d)" % len(accepted))
        found, _ = count_found(env, accepted)
        check(found == len(accepted), "sim: every 202 is in the store")
        rec = wait_reached(env, accepted, before, 240)
        missing = [i for i in accepted if i not in rec and i not in before]
        # Acknowledged by the first simulator after its last snapshot: the store has its ref.
        _, refs = count_found(env, missing)
        gap = [i for i in missing if refs.get(i)]
        reached = len(accepted) - len(missing) + len(gap)
        dups = sum(c - 1 for c in rec.values() if c > 1) + \
            sum(c - 1 for c in before.values() if c > 1) + \
            sum(1 for i in rec if i in before)
        print("sim: %d in the first simulator's record, %d in the second's, %d in both, "
              "%d acknowledged between the snapshot and the kill"
              % (len(before), len(rec), sum(1 for i in rec if i in before), len(gap)))
        check(reached == len(accepted), "sim: every 202 reached the simulator")
        report("sim", load, found, reached, dups, secs)
        if reached != len(accepted):
            print("missing (first 10):", [i for i in missing if i not in gap][:10])
            print(env.log_tail("ewtpd.log"))
    finally:
        check(env.stop(), "%s: ewtpd stops cleanly, no sanitizer report" % env.name)
        if not checks.failed:
            remove_tmp(env.tmp)


def main():
    which = sys.argv[1:] or ["daemon", "sim"]
    print("N = %d messages per scenario, %d threads, kill at %d%% accepted"
          % (N, THREADS, int(KILL_AT * 100)), flush=True)
    if "daemon" in which:
        scenario_daemon()
    if "sim" in which:
        scenario_sim()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
