#!/usr/bin/env python3
"""make bench: the figures of issue 20, each as a ratio to a baseline measured in the same run,
into OUT/report.md and OUT/report.json (default build/bench/). Not part of make test.

  tests/bench/bench.py [--build DIR] [--out DIR] [--quick]

--build: a tree with bin/ewtpd, bin/ewtp-sim, plugins/ and tests/sign_bench (Release or
RelWithDebInfo, no sanitizers); bench.sh configures and builds build-bench/ for it.

1. accepts: wrk -t2 -c64 (--conns) 10 s of unique 1.6 KB China import orders (311) on keep-alive against
   a bare libevent evhttp server (hello_evhttp.c), then ewtpd (SQLite WAL, synchronous=FULL)
   with 1 and 2 workers; accepted/s = rows stored / duration. Then latency percentiles at
   70 % of the 2-worker rate (wrk's delay() paces each connection). RSS idle and under load,
   commits and messages per commit; fsyncs per message = commits / accepted (WAL with
   synchronous=FULL syncs once per commit; checkpoints not counted).
2. drain: a backlog seeded directly into the store file (clones of one accepted order, each
   with its own id and order number: its own ordering key under issue 20's China keys, the
   same channel key before), then ewtpd started against the simulator; drained = left the
   gateway (submitted or beyond). China 1k/10k/100k (spool transport, ewtp-sim --country cn),
   ZZ 1k/10k (https, ewtp-sim --country zz). Each run is capped (--drain-cap s, shrunk so that
   the whole run fits --budget, 540 s); the rate is drained / elapsed. Ratio: to the 1k rate of
   the same country, and to the raw SM2 sign loop.
3. translate+sign per core: sign_bench per plugin (cn SM2, my RSA-2048) vs its raw sign loop:
   the host's signer with the same key over the same bytes the translation signed, in a bare
   loop (`openssl speed` with its own key shown beside it, for reference).
4. start (spawn to /readyz) and reload (SIGHUP to the "reloaded" log line).
5. instructions per accepted message (tests/bench/accept_profile.py: callgrind, 400 orders):
   the one figure here that the machine's load does not move.
On a 2-core machine the load generator competes with the server: compare ratios of one run.
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(SRC, "tests", "bench")
CN_VEC = os.path.join(SRC, "plugins", "cn", "vectors")
# Delivery workers of the drain runs: ewtpd's default (delivery.workers).
DRAIN_WORKERS = 8


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_code(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return 0


def wait_ok(url, limit=30):
    t0 = time.time()
    while time.time() - t0 < limit:
        if http_code(url) == 200:
            return time.time() - t0
        time.sleep(0.02)
    raise RuntimeError(url + " did not come up")


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def metric(api, name):
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api, timeout=5).read().decode()
    except Exception:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Env:
    def __init__(self, build, tmp):
        self.build, self.tmp = build, tmp
        self.procs = []
        self.key = os.path.join(tmp, "cn.key")
        self.crt = os.path.join(tmp, "cn.crt")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
                        "-out", self.key], check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", self.key, "-out", self.crt, "-days", "2",
                        "-subj", "/CN=ewtp bench", "-sm3", "-sigopt", "distid:1234567812345678"],
                       check=True, capture_output=True)
        with open(os.path.join(tmp, "token"), "w") as f:
            f.write("bench-token\n")
        os.chmod(os.path.join(tmp, "token"), 0o600)

    def spawn(self, argv, log):
        p = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)

    def config(self, name, api, workers, zz_port, spool, store, extra="", poll_ms=600000):
        conf = """plugin_dir = "%(plugins)s";
dev_mode = true;
state_dir = "%(run)s";
admin_socket = "%(run)s/ewtpd.sock";
listeners = ( { address = "127.0.0.1"; port = %(api)d; } );
tenants = ( { id = "bench"; token_file = "token"; destinations = [ "*" ]; } );
store = { backend = "sqlite"; path = "%(store)s"; };
delivery = { max_attempts = 20; base_delay_ms = 500; max_delay_ms = 5000;
  request_timeout_ms = 5000; lease_ms = 30000; poll_interval_ms = %(poll)d; scan_interval_ms = 200;
  workers = %(workers)d; };
keys = ( { name = "cn-sign"; key = "%(key)s"; cert = "%(crt)s"; } );
plugins = (
  { name = "zz-bench"; plugin = "zz"; settings = { sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%(zz)d"; },
  { name = "cn-bench"; plugin = "cn";
    settings = { cop_code = "3301960ABC"; cop_name = "EWTP BENCH"; dxp_id = "DXPENT0000000001";
                 sign_key = "cn-sign"; };
    transport = "spool"; spool_out = "%(spool)s/out"; spool_in = "%(spool)s/in"; }
  %(extra)s
);
routes = ( { destination = "ZZ"; instance = "zz-bench"; }, { destination = "CN"; instance = "cn-bench"; } );
""" % {"plugins": os.path.join(self.build, "plugins"), "run": os.path.join(self.tmp, "run-" + name),
            "api": api, "store": store, "workers": workers, "key": self.key, "crt": self.crt,
            "zz": zz_port, "spool": spool, "extra": extra, "poll": poll_ms}
        os.makedirs(os.path.join(self.tmp, "run-" + name), exist_ok=True)
        for d in ("out", "in"):
            os.makedirs(os.path.join(spool, d), exist_ok=True)
        path = os.path.join(self.tmp, name + ".conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def ewtpd(self, conf, api, name):
        t0 = time.time()
        p = self.spawn([os.path.join(self.build, "bin", "ewtpd"), "-c", conf],
                       os.path.join(self.tmp, name + ".log"))
        wait_ok("http://127.0.0.1:%d/readyz" % api)
        return p, time.time() - t0

    def sim(self, country, listen_port, spool=None):
        # The simulator stands for the authority, which runs on its own machines: here it
        # shares the gateway's 2 cores, at the lowest priority (nice 19), so that what is
        # measured is the gateway's rate, not the two processes' split of the cores. It does
        # all its checks (schema, signature) all the same, and a 20 ms scan of the out-folder
        # (64 files a scan) so that it is not what bounds the end-to-end rate.
        argv = ["nice", "-n", "19", os.path.join(self.build, "bin", "ewtp-sim"), "--country", country,
                "--listen", "127.0.0.1:%d" % listen_port]
        if spool:
            argv += ["--set", "spool_out=%s/out" % spool, "--set", "spool_in=%s/in" % spool,
                     "--set", "poll_ms=20"]
        p = self.spawn(argv, os.path.join(self.tmp, "sim-%s-%d.log" % (country, listen_port)))
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", listen_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return p


def order_body(path_out):
    m = json.load(open(os.path.join(CN_VEC, "import-order-311", "input.json")))
    m["id"] = "@ID@"
    m["order"]["number"] = "SO-@ID@"
    with open(path_out, "w") as f:
        f.write(json.dumps(m))
    return m


def wrk(url, secs, conns, body, run, delay_ms=None, threads=2):
    env = dict(os.environ, EWTP_BENCH_BODY=body, EWTP_BENCH_TOKEN="bench-token", EWTP_BENCH_RUN=run)
    if delay_ms is not None:
        env["EWTP_BENCH_DELAY_MS"] = "%.3f" % delay_ms
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--latency",
                          "-s", os.path.join(BENCH, "post_unique.lua"), url],
                         env=env, capture_output=True, text=True).stdout
    res = {"rps": 0.0, "secs": float(secs), "requests": 0}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([0-9.]+)(m?s)", out)
    if m:
        res["requests"] = int(m.group(1))
        res["secs"] = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s(?:\.0+)?%%\s+([0-9.]+)(us|ms|s)\s*$" % pct, out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            res["p" + pct] = v
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    res["raw"] = out
    return res


def stored(store, tenant="bench"):
    db = sqlite3.connect(store, timeout=30)
    n = db.execute("SELECT count(*) FROM messages WHERE tenant = ?", (tenant,)).fetchone()[0]
    db.close()
    return n


def accept_bench(env, res, secs, conns=64):
    body = os.path.join(env.tmp, "body.json")
    order_body(body)
    hello_port = port()
    hello = env.spawn([os.path.join(env.build, "hello_evhttp"), str(hello_port)],
                      os.path.join(env.tmp, "hello.log"))
    wait_ok("http://127.0.0.1:%d/" % hello_port)
    c0 = cpu_s(hello.pid)
    h = wrk("http://127.0.0.1:%d/" % hello_port, secs, conns, body, "hello")
    h["cpu_us_per_req"] = (cpu_s(hello.pid) - c0) * 1e6 / h["requests"] if h["requests"] else 0
    env.stop(hello)
    res["hello"] = {k: v for k, v in h.items() if k != "raw"}
    zz = port()
    spool = os.path.join(env.tmp, "spool-acc")
    sim = env.sim("cn", port(), spool)
    for workers in (1, 2):
        api = port()
        store = os.path.join(env.tmp, "acc-%d.sqlite" % workers)
        conf = env.config("acc%d" % workers, api, workers, zz, spool, store)
        p, start_s = env.ewtpd(conf, api, "acc%d" % workers)
        time.sleep(1)
        idle = rss_kib(p.pid)
        c0 = cpu_s(p.pid)
        w = wrk("http://127.0.0.1:%d/v1/messages" % api, secs, conns, body, "w%d-%d" % (workers, time.time()))
        cpu = cpu_s(p.pid) - c0
        n = stored(store)
        commits = metric(api, "ewtp_store_commit_latency_seconds_count")
        hwm = rss_kib(p.pid, "VmHWM")
        r = {"accepted_per_s": n / w["secs"], "stored": n, "wrk_rps": w["rps"], "p50_ms": w.get("p50"),
             "p99_ms": w.get("p99"), "non2xx": w["non2xx"], "commits": commits,
             "per_commit": n / commits if commits else 0, "fsyncs_per_msg": commits / n if n else 0,
             "rss_idle_kib": idle, "rss_load_kib": hwm, "start_s": start_s,
             # ewtpd's CPU (all threads: accepts, and the deliveries meanwhile) per stored message
             "cpu_us_per_msg": cpu * 1e6 / n if n else 0}
        r["ratio_to_hello"] = r["accepted_per_s"] / h["rps"] if h["rps"] else 0
        if workers == 2:
            # Latency at 70 % of the measured rate: 16 connections, each paced by delay().
            target = 0.7 * r["accepted_per_s"]
            conns = 16
            delay = max(conns * 1000.0 / target - (w.get("p50") or 1), 0.0) if target else 0
            l70 = wrk("http://127.0.0.1:%d/v1/messages" % api, secs, conns, body, "l70-%d" % time.time(),
                      delay_ms=delay)
            r["at70"] = {"target_rps": target, "achieved_rps": l70["rps"],
                         "achieved_ratio_of_max": l70["rps"] / r["accepted_per_s"] if r["accepted_per_s"] else 0,
                         "p50_ms": l70.get("p50"), "p90_ms": l70.get("p90"), "p99_ms": l70.get("p99")}
            # Reload: SIGHUP to the log line.
            log = os.path.join(env.tmp, "acc2.log")
            before = open(log, errors="replace").read().count("reloaded")
            t0 = time.time()
            p.send_signal(signal.SIGHUP)
            reload_s = None
            while time.time() - t0 < 30:
                if open(log, errors="replace").read().count("reloaded") > before:
                    reload_s = time.time() - t0
                    break
                time.sleep(0.01)
            r["reload_s"] = reload_s
        env.stop(p)
        res["accept_w%d" % workers] = r
    env.stop(sim)


def rss_all_plugins(env, res):
    """Idle RSS with every plugin instance of conf/dev.conf loaded (all five countries and
    ZZ): the configuration and its files copied beside a var/ of their own, the development
    keys made there, the API on a free port; nothing is sent."""
    root = os.path.join(env.tmp, "devconf")
    shutil.copytree(os.path.join(SRC, "conf"), os.path.join(root, "conf"))
    os.makedirs(os.path.join(root, "var", "run"), exist_ok=True)
    subprocess.run([os.path.join(SRC, "scripts", "dev-keys.sh"), root], check=True, capture_output=True)
    api = port()
    conf = os.path.join(root, "conf", "dev.conf")
    text = open(conf).read().replace("port = 8480;", "port = %d;" % api)
    with open(conf, "w") as f:
        f.write(text)
    p, start_s = env.ewtpd(conf, api, "all-plugins")
    time.sleep(1)
    res["all_plugins"] = {"rss_idle_kib": rss_kib(p.pid), "start_s": start_s,
                          "instances": text.count("plugin = \"")}
    env.stop(p)


def seed(store, template_ids, n, tag):
    """Clones of the template rows (accepted orders), each with its own id and order number."""
    db = sqlite3.connect(store, timeout=30)
    cols = [r[1] for r in db.execute("PRAGMA table_info(messages)")]
    keep = [c for c in cols if c not in ("seq", "blocked")]
    rows = db.execute("SELECT %s FROM messages WHERE id IN (%s)" % (", ".join(keep), ",".join("?" * len(template_ids))),
                      template_ids).fetchall()
    tpl = dict(zip(keep, rows[0]))
    old_no = json.loads(tpl["canonical"])["order"]["number"]
    rels = [r[0] for r in db.execute("SELECT r.key FROM relations r JOIN messages m ON m.seq = r.seq"
                                     " WHERE m.id = ?", (tpl["id"],))]
    db.execute("BEGIN")
    ins = "INSERT INTO messages(%s) VALUES(%s)" % (", ".join(keep), ", ".join("?" * len(keep)))
    for i in range(n):
        mid = "%s-%d" % (tag, i)
        no = "SO-%s-%d" % (tag, i)
        row = dict(tpl)
        row["id"] = mid
        row["canonical"] = tpl["canonical"].replace(old_no, no).replace('"%s"' % tpl["id"], '"%s"' % mid)
        row["ordering_key"] = tpl["ordering_key"].replace(old_no, no) if tpl["ordering_key"] else None
        row["state"], row["attempts"], row["next_attempt_at"] = "accepted", 0, 0
        row["lease_owner"], row["lease_until"], row["authority_ref"], row["errors"] = None, None, None, None
        cur = db.execute(ins, [row[c] for c in keep])
        for k in rels:
            db.execute("INSERT OR IGNORE INTO relations(key, seq) VALUES(?, ?)", (k.replace(old_no, no), cur.lastrowid))
    db.execute("COMMIT")
    db.close()


def drained(store, tag, exact=False):
    db = sqlite3.connect(store, timeout=30)
    n = db.execute("SELECT count(*) FROM messages WHERE id %s ? AND state NOT IN"
                   " ('accepted', 'delivering', 'retrying', 'dead')" % ("=" if exact else "LIKE"),
                   (tag if exact else tag + "-%",)).fetchone()[0]
    db.close()
    return n


def state_counts(store):
    """Messages per state, through the (state, next_attempt_at) index: cheap enough to poll
    while 100,000 are queued, unlike a scan of the rows."""
    db = sqlite3.connect(store, timeout=30)
    n = dict(db.execute("SELECT state, count(*) FROM messages INDEXED BY messages_due GROUP BY state").fetchall())
    db.close()
    return n


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        f = open("/proc/%d/stat" % pid).read()
    except OSError:
        return 0.0
    f = f[f.rfind(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def drain_bench(env, res, country, sizes, cap):
    out = res.setdefault("drain_" + country.lower(), {})
    for n in sizes:
        api, zz = port(), port()
        spool = os.path.join(env.tmp, "spool-d%s%d" % (country, n))
        store = os.path.join(env.tmp, "drain-%s-%d.sqlite" % (country, n))
        # ZZ's answers are asynchronous: its approvals are polled for, once a second here.
        conf = env.config("d%s%d" % (country, n), api, DRAIN_WORKERS, zz, spool, store,
                          poll_ms=1000 if country == "ZZ" else 600000)
        # Only China's simulator takes spool folders (the ZZ one refuses unknown settings and
        # would not start: nothing drained).
        sim = env.sim(country.lower(), zz if country == "ZZ" else port(), spool if country == "CN" else None)
        p, _ = env.ewtpd(conf, api, "d%s%d" % (country, n))
        m = json.load(open(os.path.join(CN_VEC, "import-order-311", "input.json")) if country == "CN"
                      else open(os.path.join(SRC, "plugins", "template", "vectors", "order-basic", "input.json")))
        m["id"] = "tpl-%d" % n
        if country == "CN":
            m["order"]["number"] = "SO-tpl-%d" % n
        else:
            m["order"]["number"] = "SO-tpl-%d" % n
        req = urllib.request.Request("http://127.0.0.1:%d/v1/messages" % api, data=json.dumps(m).encode(),
                                     headers={"Authorization": "Bearer bench-token",
                                              "Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        # The template must have left the gateway before the clones go in behind it: stopped
        # while it is queued or leased, it would block a shared ordering key (ZZ's is one per
        # sender) until its lease ran out, and the run would drain nothing.
        t0 = time.time()
        while time.time() - t0 < 60 and not drained(store, m["id"], exact=True):
            time.sleep(0.1)
        env.stop(p)
        tag = "d%s%d" % (country, n)
        seed(store, [m["id"]], n, tag)
        live = ("accepted", "delivering", "retrying")
        sim_cpu0 = cpu_s(sim.pid)
        t0 = time.time()
        p, _ = env.ewtpd(conf, api, "d%s%d" % (country, n))
        el = approved_s = None
        # Drained: no message of the backlog left in a state before submission (only the
        # backlog is live: the template has left). Then, within the same cap, approved: the
        # authority's receipts (China: 2 and 120 spool files; ZZ: its answer) recorded.
        while time.time() - t0 < cap:
            c = state_counts(store)
            if el is None and sum(c.get(s, 0) for s in live) == 0:
                el = time.time() - t0
                cpu_drained = cpu_s(p.pid)
            if c.get("approved", 0) >= n + 1:
                approved_s = time.time() - t0
                break
            time.sleep(0.5 if n > 1000 else 0.1)
        ewtpd_cpu = cpu_s(p.pid)
        sim_cpu = cpu_s(sim.pid) - sim_cpu0
        if el is None:
            el, cpu_drained = time.time() - t0, ewtpd_cpu
        done = drained(store, tag)
        approved = state_counts(store).get("approved", 0) - 1
        end = approved_s or (time.time() - t0)
        out[str(n)] = {"queued": n, "drained": done, "seconds": el, "per_s": done / el if el else 0,
                       "complete": done >= n, "approved": approved, "approved_seconds": end,
                       "approved_per_s": approved / end if end else 0, "approved_complete": approved >= n,
                       "ewtpd_cpu_ms_per_msg": 1000.0 * cpu_drained / done if done else 0,
                       "sim_cpu_ms_per_approved": 1000.0 * sim_cpu / approved if approved > 0 else 0}
        env.stop(p)
        env.stop(sim)
        # The run's spool and store stay until the end of the whole bench: on ext4 without a
        # journal (these machines), an inode freed less than a minute ago (five when its
        # block is still dirty) is passed over, one by one, by every file created after it
        # (find_inode_bit, recently_deleted), so deleting a run's 30,000 spool files here
        # would make the next run's every spool write walk them.
    base = out.get(str(sizes[0]), {}).get("per_s", 0) if sizes else 0
    for k, v in out.items():
        v["ratio_to_1k"] = v["per_s"] / base if base else 0


def openssl_speed(alg, secs=3):
    out = subprocess.run(["openssl", "speed", "-seconds", str(secs), alg], capture_output=True,
                         text=True).stdout
    # rsa: "rsa 2048 bits 0.000xxx 0.0000xx  sign/s verify/s" ; sm2: "... sign/s"
    for line in out.splitlines()[::-1]:
        nums = re.findall(r"([0-9]+(?:\.[0-9]+)?)", line)
        if alg.startswith("rsa") and line.strip().startswith("rsa") and "bits" in line and len(nums) >= 5:
            return float(nums[3])
        if alg == "sm2" and "SM2" in line and len(nums) >= 4:
            return float(nums[-2])
    return 0.0


def sign_ir(env, vec, n=20):
    """The same comparison counted in instructions (callgrind over sign_bench -n N): per
    document, translation (unsigned share) + the signatures it asked for, against the same
    key's raw loop. The lazily made test key is taken out. {} without valgrind."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_annotate")):
        return {}
    cg = os.path.join(env.tmp, "sign.cg")
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, "--dump-instr=no",
                        os.path.join(env.build, "tests", "sign_bench"), "--plugin-dir",
                        os.path.join(env.build, "plugins"), "-n", str(n), vec], capture_output=True, text=True)
    m = re.search(r", (\d+) per document", r.stdout)
    if r.returncode != 0 or not m or not os.path.exists(cg):
        return {}
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", cg], capture_output=True,
                          text=True).stdout
    incl = {}
    for line in text.splitlines():
        # GCC may clone a static function (raw_sign.constprop.0): the name before the dot.
        f = re.match(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?\S+:(\w+)(?:\.[\w.]+)? \[", line)
        if f:
            incl[f.group(2)] = max(incl.get(f.group(2), 0), int(f.group(1).replace(",", "")))
    per_doc = int(m.group(1))
    signing = (incl.get("watch_sign", 0) - incl.get("make_test", 0)) / (n + 3)
    translating = (incl.get("run", 0) - incl.get("watch_sign", 0)) / (2 * n + 3)
    raw = incl.get("raw_sign", 0) / n * per_doc
    return {"signed_doc_ir": signing + translating, "raw_sign_doc_ir": raw,
            "ratio": raw / (signing + translating) if signing + translating else 0}


def sign_bench(env, res, n):
    out = {}
    raw = {"sm2": openssl_speed("sm2"), "rsa2048": openssl_speed("rsa2048")}
    cases = [("cn", "SM2-SM3", os.path.join(CN_VEC, "import-declaration-621", "input.json"), "sm2"),
             ("my", "RSA-2048", os.path.join(SRC, "plugins", "my", "vectors", "invoice-xml", "input.json"), "rsa2048")]
    for plugin, alg, vec, rawk in cases:
        r = subprocess.run([os.path.join(env.build, "tests", "sign_bench"), "--plugin-dir",
                            os.path.join(env.build, "plugins"), "-n", str(n), vec], capture_output=True, text=True)
        m = re.search(r"signed:\s+\d+ documents in \d+ ms = (\d+) documents/s", r.stdout)
        m2 = re.search(r"unsigned:\s+\d+ documents in \d+ ms = (\d+) documents/s", r.stdout)
        m3 = re.search(r"raw sign: \d+ signatures in \d+ ms = (\d+) signatures/s.*, (\d+) per document",
                       r.stdout)
        docs = float(m.group(1)) if m else 0
        # The baseline: the same signer, key and bytes as the translation's, in a bare loop
        # (sign_bench's raw sign), as documents/s (signatures a document needs).
        raw_same = float(m3.group(1)) / max(int(m3.group(2)), 1) if m3 else 0
        ir = sign_ir(env, vec)
        out[plugin] = {"algorithm": alg, "signed_docs_per_s": docs, "ir": ir,
                       "unsigned_docs_per_s": float(m2.group(1)) if m2 else 0,
                       "raw_same_key_docs_per_s": raw_same,
                       "raw_openssl_speed_per_s": raw[rawk],
                       "ratio_to_raw_sign": docs / raw_same if raw_same else 0}
    res["translate_sign"] = out


def report(res, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    L = ["# ewtp bench (%s)" % res["when"], "",
         "Machine: %s cores, load average %s at start, %s at the end (%.0f s). Ratios are to a baseline of the same run;"
         " on a loaded machine wall-clock figures are noise, the instruction counts are not." %
         (os.cpu_count(), res["loadavg"], res.get("loadavg_end"), res.get("seconds", 0)), ""]
    h = res.get("hello", {})
    L += ["## Accepts (wrk -t2 -c%s, %s s, unique 1.6 KB China orders, SQLite WAL FULL)" % (res.get("conns", 32), res["secs"]), "",
          "| | accepted/s | ratio to bare evhttp | wrk p50 ms | wrk p99 ms | CPU µs/msg | per commit | fsyncs/msg | RSS idle MiB | RSS load MiB | start s |",
          "|---|---|---|---|---|---|---|---|---|---|---|",
          "| bare evhttp (baseline) | %.0f | 1 | %s | %s | %.0f | | | | | |" % (h.get("rps", 0), h.get("p50"), h.get("p99"),
                                                                     h.get("cpu_us_per_req", 0))]
    for w in (1, 2):
        a = res.get("accept_w%d" % w)
        if a:
            L.append("| ewtpd, %d worker%s | %.0f | %.3f | %s | %s | %.0f | %.1f | %.3f | %.1f | %.1f | %.2f |" % (
                w, "s" if w > 1 else "", a["accepted_per_s"], a["ratio_to_hello"], a["p50_ms"], a["p99_ms"],
                a.get("cpu_us_per_msg", 0), a["per_commit"], a["fsyncs_per_msg"], a["rss_idle_kib"] / 1024, a["rss_load_kib"] / 1024,
                a["start_s"]))
    a70 = res.get("accept_w2", {}).get("at70")
    if a70:
        L += ["", "Latency at 70 %% of the 2-worker maximum: achieved %.0f/s (%.2f of max): p50 %s ms, p90 %s ms, p99 %s ms." %
              (a70["achieved_rps"], a70["achieved_ratio_of_max"], a70["p50_ms"], a70["p90_ms"], a70["p99_ms"])]
    if res.get("accept_w2", {}).get("reload_s") is not None:
        L += ["Reload (SIGHUP to \"reloaded\"): %.3f s." % res["accept_w2"]["reload_s"]]
    if h.get("cpu_us_per_req") is not None:
        L += ["CPU µs/msg: the process's user + system CPU during the wrk run over the requests answered (ewtpd:"
              " every thread, the deliveries it made meanwhile included)."]
    ap = res.get("all_plugins")
    if ap:
        L += ["RSS idle with every plugin instance of conf/dev.conf loaded (%d instances, all five countries and ZZ):"
              " %.1f MiB; start (spawn to /readyz) %.2f s." % (ap["instances"], ap["rss_idle_kib"] / 1024, ap["start_s"])]
    ts = res.get("translate_sign", {})
    raw_sm2 = ts.get("cn", {}).get("raw_same_key_docs_per_s", 0)
    for c in ("cn", "zz"):
        d = res.get("drain_" + c)
        if not d:
            continue
        L += ["", "## Drain, %s (seeded backlog, %d workers (the default), to the simulator; drained = submitted or beyond;"
              " approved = the authority's final receipt recorded, end to end)" % (c.upper(), DRAIN_WORKERS), "",
              "| queued | drained | seconds | per s | ratio to 1k | ratio to raw SM2 sign/s | ewtpd CPU ms/msg |"
              " approved | seconds | approved/s | simulator CPU ms/msg |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for k in sorted(d, key=int):
            v = d[k]
            L.append("| %s | %d%s | %.1f | %.0f | %.2f | %.3f | %.2f | %d%s | %.1f | %.0f | %.2f |" % (
                k, v["drained"], "" if v["complete"] else " (capped)", v["seconds"], v["per_s"], v["ratio_to_1k"],
                v["per_s"] / raw_sm2 if raw_sm2 else 0, v.get("ewtpd_cpu_ms_per_msg", 0), v.get("approved", 0),
                "" if v.get("approved_complete") else " (capped)", v.get("approved_seconds", 0),
                v.get("approved_per_s", 0), v.get("sim_cpu_ms_per_approved", 0)))
    if ts:
        L += ["", "## Translate + sign, one core (baseline: the same key signing the same bytes in a bare loop)", "",
              "| plugin | algorithm | signed docs/s | unsigned docs/s | raw sign loop, same key, docs/s | ratio |"
              " openssl speed (its own key) | Ir per signed doc | Ir per raw sign(s) | ratio by Ir |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for p, v in ts.items():
            ir = v.get("ir") or {}
            L.append("| %s | %s | %.0f | %.0f | %.0f | %.3f | %.0f | %s | %s | %s |" % (
                p, v["algorithm"], v["signed_docs_per_s"], v["unsigned_docs_per_s"], v["raw_same_key_docs_per_s"],
                v["ratio_to_raw_sign"], v["raw_openssl_speed_per_s"],
                "%.0f" % ir["signed_doc_ir"] if ir else "", "%.0f" % ir["raw_sign_doc_ir"] if ir else "",
                "%.3f" % ir["ratio"] if ir else ""))
    cg = res.get("callgrind")
    if cg:
        L += ["", "## Instructions per accepted message (callgrind; independent of the machine's load)", "",
              "ewtpd under valgrind --tool=callgrind, %d unique China orders over %d connections after a warm-up, "
              "%d commits. Instructions are counted, not timed: this figure is comparable across runs and machines "
              "with the same build, unlike the wall-clock ratios above." % (cg["accepted"], cg["conns"], cg["commits"]),
              "", "| | instructions per accepted message |", "|---|---|",
              "| whole process (accept, and delivery meanwhile) | %.0f |" % cg["ir_per_accepted"],
              "| accept path (request in, worker, store writer, 202 out) | %.0f |" % cg["accept_ir_per_accepted"]]
        for label, fn, v in cg["rows"]:
            L.append("| %s | %.0f |" % (label, v))
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build-bench"))
    ap.add_argument("--out", default=os.path.join(SRC, "build", "bench"))
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64,
                    help="wrk connections of the accept runs (issue 20 measures with 64)")
    ap.add_argument("--drain-cap", type=float, default=60)
    ap.add_argument("--only", default="accept,drain,sign,callgrind")
    ap.add_argument("--budget", type=float, default=540,
                    help="seconds for the whole run: drain caps shrink to fit (make bench within 10 minutes)")
    ap.add_argument("--cn-sizes", default="1000,10000,100000")
    ap.add_argument("--zz-sizes", default="1000,10000")
    a = ap.parse_args()
    started = time.time()
    tmp = tempfile.mkdtemp(prefix="ewtp-bench.")
    env = Env(os.path.abspath(a.build), tmp)
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg": open("/proc/loadavg").read().split()[0],
           "secs": a.secs, "conns": a.conns, "build": a.build}
    only = a.only.split(",")
    try:
        if "sign" in only:
            sign_bench(env, res, 1000)
        if "accept" in only:
            accept_bench(env, res, a.secs, a.conns)
            rss_all_plugins(env, res)
        if "callgrind" in only:
            if shutil.which("valgrind") and shutil.which("callgrind_annotate"):
                spec = importlib.util.spec_from_file_location("accept_profile",
                                                              os.path.join(BENCH, "accept_profile.py"))
                prof = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(prof)
                res["callgrind"] = prof.profile(env.build, n=400, conns=8, tmp=os.path.join(tmp, "callgrind"))
            else:
                print("bench: valgrind missing, no instruction counts", file=sys.stderr)
        if "drain" in only:
            cn = [int(x) for x in a.cn_sizes.split(",") if x]
            zz = [int(x) for x in a.zz_sizes.split(",") if x]
            # Each drain run gets an equal share of what is left of the budget (seeding and
            # start-up included), at most --drain-cap.
            left = a.budget - (time.time() - started)
            cap = max(min(a.drain_cap, left / max(len(cn) + len(zz), 1) - 10), 10)
            res["drain_cap_s"] = cap
            drain_bench(env, res, "CN", cn, cap)
            drain_bench(env, res, "ZZ", zz, cap)
    finally:
        env.stop_all()
        res["seconds"] = time.time() - started
        res["loadavg_end"] = open("/proc/loadavg").read().split()[0]
        report(res, a.out)
        if not os.environ.get("EWTP_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    sys.exit(main())
