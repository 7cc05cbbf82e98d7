"""Reload under load: zero failed requests, zero lost messages, broken reloads reported with
file and line, the upgraded plugin visible in `ewtpctl plugins` after its reload.

Prints the counts, the p99 accept latency without and with reloads (and their ratio) and the
daemon's peak RSS. Loopback only; every loop is bounded in count and time."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (BUILD, CONNECTION_ERRORS, SRC, KeepAlive, check, checks,  # noqa: E402
                          ewtpctl, free_port, kill9, load_json, log_tail_lines, make_tmp,
                          read_log, remove_tmp, sanitizer_report, spawn_ewtpd, spawn_sim, stop,
                          wait_ready, write_token)

TOKEN = "reload-test-token"
RELOADS = 50
THREADS = 4
STEADY_SECONDS = 5
DEADLINE = time.monotonic() + 600  # the whole test stops by itself

tmp = make_tmp("ewtp-reload-")
api_port, sim_port = free_port(), free_port()
plugin_dir = os.path.join(tmp, "plugins")
os.makedirs(plugin_dir)
os.makedirs(os.path.join(tmp, "run"))
plugin_so = os.path.join(plugin_dir, "ewtp-zz.so")
shutil.copy(os.path.join(BUILD, "plugins", "ewtp-zz.so"), plugin_so)
write_token(tmp, "token", TOKEN)

# Version 2 of the template plugin, built out of tree like a country team would.
V2 = "1.1.0-reload"
v2_so = os.path.join(tmp, "ewtp-zz-v2.so")
env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, "sdk"))
flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ewtp-uninstalled"], env=env,
                       check=True, capture_output=True, text=True).stdout.split()
tpl = os.path.join(SRC, "plugins", "template")
subprocess.run(["cc", "-std=c11", "-fPIC", "-shared", "-fvisibility=hidden",
                f'-DZZ_PLUGIN_VERSION="{V2}"', "-o", v2_so]
               + [os.path.join(tpl, f) for f in ("zz_plugin.c", "zz_translate.c", "zz_interpret.c")]
               + flags, check=True)

GOOD = f"""# reload test configuration
plugin_dir = "{plugin_dir}";
state_dir = "{tmp}/run";
dev_mode = true;
listeners = ( {{ address = "127.0.0.1"; port = {api_port}; }} );
tenants = ( {{ id = "load"; token_file = "{tmp}/token"; destinations = [ "*" ]; }} );
store = {{ backend = "sqlite"; path = "{tmp}/ewtpd.sqlite"; }};
delivery = {{ max_attempts = 20; base_delay_ms = 200; max_delay_ms = 2000;
             poll_interval_ms = 500; scan_interval_ms = 50; workers = 2; }};
plugins = (
  {{ name = "zz-test"; plugin = "zz"; settings = {{ sign_key = ""; }};
     transport = "https"; endpoint = "http://127.0.0.1:{sim_port}"; }}
);
routes = ( {{ destination = "ZZ"; instance = "zz-test"; }} );
"""
lines = GOOD.splitlines()
# Broken variants: (text, line the error must name, who reports it).
BROKEN = [
    ("\n".join(lines[:5] + ["bogus_setting = 1;"] + lines[5:]) + "\n", 6, "daemon"),
    (GOOD.replace('instance = "zz-test"', 'instance = "no-such-instance"'),
     next(i + 1 for i, l in enumerate(lines) if "routes" in l), "daemon"),
    (GOOD.replace('sign_key = ""', 'sign_key = ""; sender_id = 5'),
     next(i + 1 for i, l in enumerate(lines) if "zz-test" in l and "name" in l), "daemon"),
    (GOOD.replace('state_dir = ', 'state_dir '), 3, "ewtpctl"),  # libconfig syntax error
]
conf = os.path.join(tmp, "ewtpd.conf")


def write_conf(text):
    with open(conf + ".tmp", "w") as f:
        f.write(text)
    os.replace(conf + ".tmp", conf)


write_conf(GOOD)
sim = spawn_sim("zz", os.path.join(tmp, "sim.log"), listen=f"127.0.0.1:{sim_port}")
daemon = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"))
procs = [sim, daemon]


def cleanup():
    for p in procs:
        kill9(p)


if not wait_ready(api_port, daemon):
    print(read_log(daemon.log_path))
    cleanup()
    sys.exit("ewtpd did not become ready")

BASE = load_json(os.path.join(tpl, "vectors", "order-basic", "input.json"))


class Load:
    """Keep-alive POST loops; each request's status and latency are recorded."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (phase, status, seconds, id)
        self.phase = "steady"
        self.counter = 0

    def next_id(self):
        with self.lock:
            self.counter += 1
            return f"reload-{self.counter:07d}"

    def worker(self):
        client = KeepAlive(api_port, TOKEN)
        while not self.stop.is_set() and time.monotonic() < DEADLINE:
            mid = self.next_id()
            body = dict(BASE, id=mid)
            data = json.dumps(body).encode()
            phase = self.phase
            t0 = time.monotonic()
            try:
                status = client.request("POST", "/v1/messages", data)[0]
            except CONNECTION_ERRORS as e:
                status = -1
                print("request error:", mid, e, flush=True)
            with self.lock:
                self.results.append((phase, status, time.monotonic() - t0, mid))


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0


load = Load()
threads = [threading.Thread(target=load.worker, daemon=True) for _ in range(THREADS)]
for t in threads:
    t.start()
time.sleep(STEADY_SECONDS)
load.phase = "reload"


def ctl(*args):
    return ewtpctl(conf, *args, timeout=120)


broken_reported = 0
good_ok = 0
swapped_at = None
for i in range(RELOADS):
    if time.monotonic() > DEADLINE:
        break
    time.sleep(0.1)  # a steady load between reloads, so the reload phase measures something
    if i % 2 == 0:
        if i == RELOADS // 2:  # upgrade the plugin on disk, then reload onto it
            shutil.copy(v2_so, plugin_so + ".new")
            os.replace(plugin_so + ".new", plugin_so)
            swapped_at = i
        write_conf(GOOD)
        r = ctl("reload", "--wait")
        check(r.returncode == 0, f"good reload {i} failed: {r.stderr.strip()}")
        good_ok += r.returncode == 0
        if swapped_at == i:
            p = ctl("plugins", "--json")
            versions = [x["version"] for x in json.loads(p.stdout).get("plugins", [])] \
                if p.returncode == 0 else []
            check(V2 in versions, f"new plugin version not listed after reload: {versions}")
    else:
        text, line, who = BROKEN[(i // 2) % len(BROKEN)]
        write_conf(text)
        r = ctl("reload", "--wait")
        pattern = re.escape(conf) + ":" + str(line) + ":"
        ok = r.returncode != 0 and re.search(pattern, r.stderr) is not None
        check(ok, f"broken reload {i} ({who}) not reported as {conf}:{line}: "
                  f"rc={r.returncode} {r.stderr.strip()[:300]}")
        broken_reported += ok
write_conf(GOOD)
load.stop.set()
for t in threads:
    t.join(timeout=60)

# A broken file must never have replaced the running generation: the daemon still serves.
st = ctl("status", "--json")
check(st.returncode == 0, "status after the reloads failed")
status = json.loads(st.stdout) if st.returncode == 0 else {}

results = load.results
sent = len(results)
accepted = [r for r in results if r[1] == 202]
failed = [r for r in results if r[1] != 202]
check(not failed, f"{len(failed)} requests failed: {sorted(set(r[1] for r in failed))}")

# Every 202 is in the store.
lost = 0
conn = KeepAlive(api_port, TOKEN)
for _, _, _, mid in accepted:
    lost += conn.request("GET", "/v1/messages/" + mid)[0] != 200
conn.close()
check(lost == 0, f"{lost} accepted messages not found")

rss_kb = 0
with open(f"/proc/{daemon.pid}/status") as f:
    for line in f:
        if line.startswith("VmHWM:"):
            rss_kb = int(line.split()[1])

rc = stop(daemon, 30)
check(rc == 0, f"ewtpd exit status on SIGTERM: {rc}")
stop(sim, 30)
# Reloads build generations on worker threads while requests run: under TSan (make tsan) a
# report there is a failure even when the exit status is not looked at.
for proc in (daemon, sim):
    check(not sanitizer_report(read_log(proc.log_path)),
          f"no sanitizer report in {os.path.basename(proc.log_path)}")

steady = [r[2] for r in results if r[0] == "steady" and r[1] == 202]
during = [r[2] for r in results if r[0] == "reload" and r[1] == 202]
p_steady, p_reload = p99(steady), p99(during)
print(f"requests sent {sent}, accepted {len(accepted)}, failed {len(failed)}, lost {lost}")
print(f"reloads {RELOADS}: good ok {good_ok}, broken reported with file:line {broken_reported}, "
      f"generation now {status.get('generation')}, daemon counted ok "
      f"{status.get('reloads_ok')} failed {status.get('reloads_failed')}")
print(f"p99 accept latency: steady {p_steady * 1000:.1f} ms ({len(steady)} requests), "
      f"during reloads {p_reload * 1000:.1f} ms ({len(during)} requests), "
      f"ratio {p_reload / p_steady if p_steady else 0:.2f}")
print(f"ewtpd peak RSS {rss_kb} kB")
cleanup()
if checks.failed:
    print("daemon log tail:")
    print(log_tail_lines(daemon.log_path, 30))
else:
    remove_tmp(tmp)
sys.exit(checks.summary())
