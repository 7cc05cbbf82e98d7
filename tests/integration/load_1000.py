"""1,000 concurrent POSTs: 50 threads x 20, each thread on its own keep-alive connection,
all released at once. Every one must get 202 and be in the store afterwards, and the store's
group commit must really batch: fewer commits (ewtp_store_commit_latency_seconds_count in
/metrics) than accepts. Real ewtpd, real SQLite file, real ZZ simulator, loopback only.
Ends with "N passed, M failed"."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_daemon import TOKEN, Env, body_of, count_found  # noqa: E402
from ewtp_harness import (CONNECTION_ERRORS, KeepAlive, check, checks, http_call,  # noqa: E402
                          remove_tmp)

THREADS, PER_THREAD = 50, 20


def metric(env, name):
    text = http_call("GET", "http://127.0.0.1:%d/metrics" % env.api)[1].decode()
    m = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def main():
    env = Env("load1000")
    status = {}
    lock = threading.Lock()
    go = threading.Barrier(THREADS, timeout=60)

    def worker(k):
        conn = KeepAlive(env.api, TOKEN, timeout=60)
        try:
            go.wait()
        except threading.BrokenBarrierError:
            return
        for i in range(PER_THREAD):
            mid = "l1k-%02d-%02d" % (k, i)
            try:
                st = conn.request("POST", "/v1/messages", body_of(mid))[0]
            except CONNECTION_ERRORS:
                st = -1
            with lock:
                status[mid] = st
        conn.close()

    try:
        if not check(env.start_sim() and env.start_daemon(), "ewtpd and the simulator start"):
            print(env.log_tail("ewtpd.log"))
            return 1
        commits0 = metric(env, "ewtp_store_commit_latency_seconds_count") or 0
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        secs = time.monotonic() - t0
        total = THREADS * PER_THREAD
        accepted = [i for i, s in status.items() if s == 202]
        others = sorted(set(s for s in status.values() if s != 202))
        check(len(status) == total, "all %d POSTs answered or failed (%d)" % (total, len(status)))
        check(len(accepted) == total, "every POST got 202 (%d; others %s)" % (len(accepted), others))
        found, _ = count_found(env, accepted)
        check(found == len(accepted), "every 202 is in the store (%d)" % found)
        commits = (metric(env, "ewtp_store_commit_latency_seconds_count") or 0) - commits0
        check(0 < commits < len(accepted),
              "group commit batches: %d commits for %d accepts" % (commits, len(accepted)))
        print("load_1000: %d POSTs from %d connections in %.2f s (%.0f/s), %d group commits "
              "(%.1f accepts per commit)" % (total, THREADS, secs, total / secs, commits,
                                             len(accepted) / commits if commits else 0))
    finally:
        check(env.stop(), "ewtpd stops cleanly, no sanitizer report")
        if not checks.failed:
            remove_tmp(env.tmp)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
