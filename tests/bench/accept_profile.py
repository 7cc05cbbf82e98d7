#!/usr/bin/env python3
"""Instructions per accepted message (issue 20): a figure that does not depend on the machine's
load, unlike the wall-clock ratios of bench.py.

  tests/bench/accept_profile.py [--build DIR] [--n 400] [--conns 8] [--json FILE] [--keep DIR]

Runs ewtpd (SQLite WAL, synchronous=FULL, 2 workers, China routed to a spool instance) under
`valgrind --tool=callgrind`, warms it up with a few orders, zeroes the counters
(callgrind_control -z), posts N unique 1.6 KB China import orders (311) over CONNS keep-alive
connections, dumps the counters (callgrind_control -d) and splits the instructions by function
with callgrind_annotate --inclusive=yes. "accept path" is what runs per request on the event
loop (on_request, on_accepts), on a worker (ewtp_http_submit_work) and on the store's writer
(writer_main, i.e. group commit and fsync calls); "delivery" is what the dispatcher spent meanwhile
(translate, SM2 sign, spool write), which depends on how far delivery got, so it is shown apart.
"""
import argparse
import http.client
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ewtp_bench", os.path.join(HERE, "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

# Inclusive rows reported, in this order: (label, function name in callgrind's output).
ROWS = [
    ("accept path: event loop, request in (on_request)", "on_request"),
    ("accept path: event loop, 202 out (on_accepts)", "on_accepts"),
    ("accept path: worker (ewtp_http_submit_work)", "ewtp_http_submit_work"),
    ("  parse (ewtp_message_parse)", "ewtp_message_parse"),
    ("  classify (cn_classify)", "cn_classify"),
    ("  related messages (ewtp_store_related)", "ewtp_store_related"),
    ("  validate (cn_validate)", "cn_validate"),
    ("  canonical JSON (ewtp_message_canonical)", "ewtp_message_canonical"),
    ("  digest (ewtp_sha256_hex)", "ewtp_sha256_hex"),
    ("accept path: store writer (writer_main)", "writer_main"),
    ("  accept rows (sq_batch_accept)", "sq_batch_accept"),
    ("  commit (sq_batch_commit)", "sq_batch_commit"),
    ("delivery: claim (ewtp_store_claim_due)", "ewtp_store_claim_due"),
    ("delivery: translate + sign (dsp_deliver_prepare)", "dsp_deliver_prepare"),
    ("delivery: record outcome (ewtp_store_record_outcome)", "ewtp_store_record_outcome"),
]
ACCEPT_ROOTS = ("on_request", "on_accepts", "ewtp_http_submit_work", "writer_main")
# Frames live when the counters were zeroed carry inclusive costs into callgrind_annotate's
# "self" list: left out of it.
NOT_SELF = {"clone", "start_thread", "main", "(below main)", "event_base_dispatch", "event_base_loop",
            "__libc_start_main@@GLIBC_2.34", "worker_main", "writer_main"}


def post_all(api, body_tpl, n, conns, run):
    """n unique orders over conns keep-alive connections; returns (accepted, other codes)."""
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "other": {}}

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", api, timeout=600)
        while True:
            with lock:
                i = state["next"]
                if i >= n:
                    break
                state["next"] += 1
            body = body_tpl.replace("@ID@", "%s-%d" % (run, i))
            c.request("POST", "/v1/messages", body=body,
                      headers={"Authorization": "Bearer bench-token", "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            with lock:
                if r.status == 202:
                    state["ok"] += 1
                else:
                    state["other"][r.status] = state["other"].get(r.status, 0) + 1
        c.close()

    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return state["ok"], state["other"]


def annotate(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    incl, total = {}, 0
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(?:PROGRAM TOTALS|(\S+):(\S+?)(?: \[.*\])?)\s*$", line)
        if not m:
            continue
        v = int(m.group(1).replace(",", ""))
        if m.group(3) is None:
            total = v
        else:
            fn = m.group(3)
            incl[fn] = max(incl.get(fn, 0), v)
    excl = []
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+?)(?: \[(.*)\])?\s*$", line)
        if m and m.group(3) not in NOT_SELF and not m.group(3).startswith("0x000000000001ab70"):
            excl.append((int(m.group(1).replace(",", "")), m.group(3), os.path.basename(m.group(4) or "")))
    return total, incl, excl


def profile(build, n=400, conns=8, keep=None, tmp=None):
    own_tmp = tmp is None
    tmp = tmp or tempfile.mkdtemp(prefix="ewtp-prof.")
    os.makedirs(tmp, exist_ok=True)
    env = bench.Env(build, tmp)
    api, zz = bench.port(), bench.port()
    spool = os.path.join(tmp, "spool")
    store = os.path.join(tmp, "prof.sqlite")
    conf = env.config("prof", api, 2, zz, spool, store)
    # Delivery one at a time, so that it takes less of the (slow, instrumented) run; its own
    # cost is shown apart anyway.
    text = open(conf).read().replace("workers = 2; };", "workers = 2; max_in_flight = 1; };")
    open(conf, "w").write(text)
    body_path = os.path.join(tmp, "body.json")
    bench.order_body(body_path)
    body_tpl = open(body_path).read()
    cg = os.path.join(tmp, "callgrind.out")
    p = env.spawn(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, "--dump-instr=no",
                   "--collect-jumps=no", os.path.join(build, "bin", "ewtpd"), "-c", conf],
                  os.path.join(tmp, "prof.log"))
    res = {"n": n, "conns": conns}
    try:
        bench.wait_ok("http://127.0.0.1:%d/readyz" % api, limit=300)
        post_all(api, body_tpl, 50, min(conns, 4), "warm")
        time.sleep(2)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        t0 = time.time()
        ok, other = post_all(api, body_tpl, n, conns, "prof")
        res.update(accepted=ok, other=other, seconds=time.time() - t0)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        res["commits"] = bench.metric(api, "ewtp_store_commit_latency_seconds_count")
    finally:
        env.stop(p)
    dumps = sorted(f for f in os.listdir(tmp) if f.startswith("callgrind.out.") or f == "callgrind.out")
    # The -d dump is the first numbered part (".1"); the final one at exit is not used.
    dump = next((os.path.join(tmp, f) for f in dumps if f.endswith(".1")), None)
    if dump is None:
        raise RuntimeError("no callgrind dump in %s: %s" % (tmp, dumps))
    res.update(summarize(dump, res["accepted"]))
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(dump, os.path.join(keep, "callgrind.accept.out"))
    if own_tmp and not os.environ.get("EWTP_BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def summarize(dump, accepted):
    total, incl, excl = annotate(dump)
    ok = max(accepted, 1)
    res = {}
    res["total_ir"] = total
    res["ir_per_accepted"] = total / ok
    res["accept_ir_per_accepted"] = sum(incl.get(f, 0) for f in ACCEPT_ROOTS) / ok
    res["rows"] = [(label, fn, incl.get(fn, 0) / ok) for label, fn in ROWS]
    res["top_self"] = [(fn, lib, ir / ok) for ir, fn, lib in excl[:25]]
    return res


def table(res):
    L = ["%d orders over %d connections: %d accepted (%s other), %d commits (%.1f per commit)." % (
        res["n"], res["conns"], res["accepted"], res["other"] or "no", res["commits"],
        res["accepted"] / res["commits"] if res["commits"] else 0), "",
        "| instructions per accepted message | Ir |", "|---|---|",
        "| **whole process** (accept + delivery meanwhile) | %.0f |" % res["ir_per_accepted"],
        "| **accept path** (sum of the four accept roots) | %.0f |" % res["accept_ir_per_accepted"]]
    for label, fn, v in res["rows"]:
        L.append("| %s | %.0f |" % (label, v))
    L += ["", "Top functions by own instructions, per accepted message:", "", "| function | object | Ir |",
          "|---|---|---|"]
    for fn, lib, v in res["top_self"]:
        L.append("| %s | %s | %.0f |" % (fn, lib, v))
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(bench.SRC, "build-bench"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--json")
    ap.add_argument("--keep")
    ap.add_argument("--dump", help="only annotate this kept dump (of --json's run, for --n and the counts)")
    a = ap.parse_args()
    if a.dump:
        res = json.load(open(a.json))
        res.update(summarize(a.dump, res["accepted"]))
    else:
        res = profile(os.path.abspath(a.build), a.n, a.conns, a.keep)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    print(table(res))


if __name__ == "__main__":
    sys.exit(main())
