"""Several ewtpd nodes on one PostgreSQL: load on every node, one node killed with SIGKILL
in the middle of a delivery, its work taken over by another once its lease expired.

Run by pg_nodes.sh, which starts a throwaway PostgreSQL 15 (tests/pg_test_server.sh) and
sets EWTP_TEST_PG_CONNINFO. NODES (EWTP_PG_NODES, default 3) ewtpd processes share the
database, each with its own API port; the real ZZ simulator (ewtp-sim --country zz) with
check_sequence is the authority, and every message goes through one chain (the ZZ plugin
with chain_numbering: ordering key zz:SENDER), so that the simulator itself refuses (422
ZZ-SEQ) any number out of order or twice, and a resend of the same X-Request-Id after a
takeover is answered 409 with the first reference.

Two POST threads per node send their messages one after the other (each waits for its 202),
so a thread's messages have an accept order the chain must keep. When about 40% are
accepted, the simulator is slowed down (latency 1.5 s) so that a delivery is surely in
flight, the node holding that delivery's lease is killed (kill -9), and the latency is
removed. Its threads stop; the others go on.

Checked afterwards, through a surviving node only:
  - every id that got a 202 (on any node, the killed one included) is found and approved;
  - the simulator accepted each of them exactly once (its accepted list, by SenderReference;
    resends answered 409 are not in it), nothing else, and refused nothing for its sequence;
  - the chain numbers 1..n in the simulator's order, and each thread's ids in posting order;
  - the killed node's delivery was claimed again by another node only after its lease
    expired; the takeover time (kill -> the survivor's claim) is printed.
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (CONNECTION_ERRORS, PLUGINS, KeepAlive, check, checks,  # noqa: E402
                          free_port, http_json, kill9, log_tail_lines, make_tmp, read_log,
                          remove_tmp, sanitizer_report, spawn_ewtpd, spawn_sim,
                          stop as stop_process, wait_ready, wait_until, write, write_token,
                          zz_order)

TOKEN = "pg-nodes-token"
SENDER = "ZZ-PG-SENDER"
NODES = int(os.environ.get("EWTP_PG_NODES", "3"))
PER_THREAD = int(os.environ.get("EWTP_PG_PER_THREAD", "40"))
THREADS_PER_NODE = 2
LEASE_MS = 3000
KILL_AT = 0.4
DEADLINE = time.monotonic() + 600
CONNINFO = os.environ.get("EWTP_TEST_PG_CONNINFO", "")
PSQL = "/usr/lib/postgresql/15/bin/psql"
BASE = zz_order(None)


def body_of(mid):
    return json.dumps(dict(BASE, id=mid, order=dict(BASE["order"], number="SO-" + mid))).encode()


def sql(query):
    """Rows of query on the test database, as lists of strings (psql -At)."""
    out = subprocess.run([PSQL, CONNINFO, "-At", "-F", "\t", "-c", query], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def now_ms():
    return int(time.time() * 1000)


class Node:
    def __init__(self, tmp, k, sim_port):
        self.k = k
        self.dir = os.path.join(tmp, "node%d" % k)
        os.makedirs(os.path.join(self.dir, "run"))
        self.api = free_port()
        self.log = os.path.join(self.dir, "ewtpd.log")
        write(os.path.join(self.dir, "conninfo"), CONNINFO + "\n", 0o600)
        write_token(self.dir, "token", TOKEN)
        self.conf = write(os.path.join(self.dir, "ewtpd.conf"), """
plugin_dir = "%(plugins)s";
dev_mode = true;
state_dir = "%(dir)s/run";
admin_socket = "%(dir)s/run/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
store = { backend = "postgresql"; conninfo_file = "conninfo"; pool_size = 4; };
tenants = ( { id = "load"; token_file = "token"; destinations = [ "*" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 1000; request_timeout_ms = 2000; lease_ms = %(lease)d; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-pg"; plugin = "zz";
    settings = { sign_key = ""; sender_id = "%(sender)s"; chain_numbering = true; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = ( { destination = "ZZ"; instance = "zz-pg"; } );
""" % {"plugins": PLUGINS, "dir": self.dir, "api": self.api, "lease": LEASE_MS,
       "sender": SENDER, "sim": sim_port})
        self.proc = None
        self.killed = False

    def start(self):
        self.proc = spawn_ewtpd(self.conf, self.log)
        return wait_ready(self.api, self.proc, 60)


class Load:
    def __init__(self, nodes):
        self.nodes = nodes
        self.lock = threading.Lock()
        self.accepted = []  # (thread name, id) in the order of their 202s
        self.by_thread = {}
        self.unanswered = set()  # POSTs cut by the kill: stored or not, the client cannot know
        self.stop = {n.k: threading.Event() for n in nodes}

    def worker(self, node, t):
        name = "n%d-t%d" % (node.k, t)
        client = KeepAlive(node.api, TOKEN)
        mine = self.by_thread.setdefault(name, [])
        i = 0
        while i < PER_THREAD and time.monotonic() < DEADLINE and not self.stop[node.k].is_set():
            mid = "%s-%04d" % (name, i)
            try:
                st = client.request("POST", "/v1/messages", body_of(mid))[0]
            except CONNECTION_ERRORS:
                st = -1
            if st == 202:
                with self.lock:
                    self.accepted.append((name, mid))
                    mine.append(mid)
                i += 1
            elif st in (-1, 503):
                if st == -1:
                    with self.lock:
                        self.unanswered.add(mid)
                time.sleep(0.05)
            else:
                print("unexpected POST status %s for %s" % (st, mid), flush=True)
                i += 1
        client.close()


def scenario():
    tmp = make_tmp("ewtp-pg-nodes-")
    sim_port = free_port()
    sim = spawn_sim("zz", os.path.join(tmp, "sim.log"), listen="127.0.0.1:%d" % sim_port,
                    settings={"decision_delay_ms": 50, "check_sequence": "true",
                              "sender_id": SENDER})
    nodes = [Node(tmp, k, sim_port) for k in range(NODES)]
    ok = False
    try:
        check(wait_until(lambda: sim_health(sim_port), 30), "the ZZ simulator serves")
        for n in nodes:
            check(n.start(), "node %d serves on port %d (PostgreSQL store)" % (n.k, n.api))
        owners = {}
        load = Load(nodes)
        threads = [threading.Thread(target=load.worker, args=(n, t), daemon=True)
                   for n in nodes for t in range(THREADS_PER_NODE)]
        total = NODES * THREADS_PER_NODE * PER_THREAD
        t0 = time.monotonic()
        for t in threads:
            t.start()
        wait_until(lambda: len(load.accepted) >= int(total * KILL_AT), 300, 0.01)

        # A delivery surely in flight: slow the authority down, find the lease, kill its node.
        sim_control(sim_port, {"latency_ms": 1500})
        slow_from = now_ms()
        flight = None

        def leased():
            # Only a delivery claimed after the authority slowed down is surely still in flight
            # 0.3 s later: one claimed before may be answered meanwhile (then nothing is taken
            # over and the check below would fail for the test's reason, not the store's).
            nonlocal flight
            rows = sql("SELECT seq, id, lease_owner, lease_until, attempts FROM messages"
                       " WHERE state = 'delivering' AND lease_until >= %d ORDER BY seq LIMIT 1"
                       % (slow_from + 100 + LEASE_MS))
            flight = rows[0] if rows else None
            return flight is not None
        check(wait_until(leased, 30, 0.02), "a delivery is in flight under a lease")
        pid = int(flight[2].split(":")[1])
        victim = next((n for n in nodes if n.proc.pid == pid), None)
        check(victim is not None, "the lease owner %s is one of the nodes" % flight[2])
        if victim is None:
            return
        time.sleep(0.3)  # the request has reached the simulator
        load.stop[victim.k].set()
        kill_ms = now_ms()
        kill9(victim.proc)
        victim.killed = True
        sim_control(sim_port, {"latency_ms": 0})
        print("killed node %d (pid %d) holding %s (attempt %s), lease until +%d ms"
              % (victim.k, pid, flight[1], flight[4], int(flight[3]) - kill_ms), flush=True)

        for t in threads:
            t.join(timeout=max(1, DEADLINE - time.monotonic()))
        load_s = time.monotonic() - t0
        survivor = next(n for n in nodes if not n.killed)
        print("%d accepted on %d nodes in %.1f s" % (len(load.accepted), NODES, load_s),
              flush=True)

        # Every 202 is found through a surviving node and reaches a final state there.
        client = KeepAlive(survivor.api, TOKEN)
        pending = [mid for _, mid in load.accepted]
        states = {}

        def all_final():
            nonlocal pending
            left = []
            for mid in pending:
                try:
                    st, data = client.request("GET", "/v1/messages/" + mid)
                except CONNECTION_ERRORS:
                    left.append(mid)
                    continue
                s = json.loads(data).get("state") if st == 200 else "missing"
                states[mid] = s
                if s not in ("approved", "rejected", "cancelled"):
                    left.append(mid)
            pending = left
            return not pending
        final = wait_until(all_final, max(30, min(240, DEADLINE - time.monotonic())), 0.5)
        check(final, "every acknowledged message (%d) is found through node %d and final"
              % (len(load.accepted), survivor.k),
              {m: states.get(m) for m in pending[:10]})
        check(all(states.get(m) == "approved" for _, m in load.accepted),
              "every acknowledged message is approved",
              [(m, states.get(m)) for _, m in load.accepted if states.get(m) != "approved"][:10])
        client.close()

        # Exactly once, in order, as the simulator saw it.
        seq = http_json("GET", "http://127.0.0.1:%d/_zz/sequence/%s" % (sim_port, SENDER))[1]
        acc = [a["sender_reference"] for a in seq.get("accepted", [])]
        nums = [a["number"] for a in seq.get("accepted", [])]
        counts = {}
        for a in acc:
            counts[a] = counts.get(a, 0) + 1
        acked = {m for _, m in load.accepted}
        resent = [s for s in seq.get("seen", []) if s.get("answer") not in ("accepted", "202")]
        print("simulator: %d accepted, %d submissions seen, %d refused, answers of resends: %s"
              % (len(acc), len(seq.get("seen", [])), seq.get("refused", -1),
                 sorted({s.get("answer") for s in resent})), flush=True)
        check(all(c == 1 for c in counts.values()),
              "each message accepted by the simulator exactly once",
              [a for a, c in counts.items() if c > 1][:10])
        check(acked <= set(counts), "every acknowledged message reached the simulator",
              sorted(acked - set(counts))[:10])
        extra = set(counts) - acked
        check(extra <= load.unanswered,
              "nothing but acknowledged messages reached it (and %d whose 202 the kill cut)"
              % len(extra), sorted(extra - load.unanswered)[:10])
        check(seq.get("refused") == 0, "no submission refused for its sequence (ZZ-SEQ)")
        check(nums == list(range(1, len(nums) + 1)), "chain numbers 1..%d, no gap, no repeat"
              % len(nums))
        pos = {a: i for i, a in enumerate(acc)}
        order_ok = all([pos.get(m, -1) for m in ids] == sorted(pos.get(m, -1) for m in ids)
                       for ids in load.by_thread.values())
        check(order_ok, "each thread's messages delivered in the order it posted them")
        chain = sql("SELECT number FROM chains WHERE key = 'zz:%s'" % SENDER)
        check(chain and int(chain[0][0]) == len(nums), "the store's chain is at %d" % len(nums),
              chain)

        # The takeover: the in-flight message claimed again by another node after its lease.
        rows = sql("SELECT e.at, e.detail FROM events e JOIN messages m ON m.seq = e.seq"
                   " WHERE m.id = '%s' AND e.type IN ('claimed', 'lease_expired')"
                   " ORDER BY e.eid" % flight[1])
        later = [(int(at), json.loads(d or "{}").get("owner")) for at, d in rows
                 if int(at) >= kill_ms]
        reclaim = next(((at, o) for at, o in later if o and o != flight[2]), None)
        lease_until = int(flight[3])
        check(reclaim is not None, "another node claimed %s after the kill" % flight[1], rows)
        if reclaim:
            check(reclaim[0] >= lease_until,
                  "the takeover came after the lease expired (%d ms after)"
                  % (reclaim[0] - lease_until))
            print("takeover: %d ms after the kill (lease expired %d ms after the kill, lease "
                  "%d ms); claimed by %s" % (reclaim[0] - kill_ms, lease_until - kill_ms,
                                             LEASE_MS, reclaim[1]), flush=True)
        ok = True
    finally:
        clean = True
        for n in nodes:
            if n.proc and not n.killed:
                rc = stop_process(n.proc, 30)
                text = read_log(n.log)
                if rc != 0 or sanitizer_report(text):
                    clean = False
                    print("node %d exit %s\n%s" % (n.k, rc, log_tail_lines(n.log, 30)))
        stop_process(sim, 30)
        check(clean, "the surviving nodes stop cleanly, no sanitizer report")
        if ok and not checks.failed:
            remove_tmp(tmp)
        else:
            print("kept", tmp)


def sim_health(port):
    try:
        return http_json("GET", "http://127.0.0.1:%d/_sim/health" % port)[0] == 200
    except OSError:
        return False


def sim_control(port, doc):
    st = http_json("POST", "http://127.0.0.1:%d/_sim/control" % port, json.dumps(doc).encode())[0]
    check(st == 200, "simulator control %s" % doc)


def main():
    if not CONNINFO:
        print("EWTP_TEST_PG_CONNINFO is not set: run tests/integration/pg_nodes.sh")
        return 2
    print("%d nodes, %d threads per node, %d messages per thread, lease %d ms"
          % (NODES, THREADS_PER_NODE, PER_THREAD, LEASE_MS), flush=True)
    scenario()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
