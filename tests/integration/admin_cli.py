"""ewtpctl admin commands over the admin socket, with an authority nobody listens on so that
messages go retrying and then dead."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ["EWTP_SOURCE_DIR"]
BUILD = os.environ["EWTP_BUILD_DIR"]
CTL = os.path.join(BUILD, "bin", "ewtpctl")
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_ports(n):
    """n distinct free ports (all bound at once, so they cannot repeat)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


tmp = tempfile.mkdtemp(prefix="ewtp-admin-")
with open(os.path.join(tmp, "token"), "w") as f:
    f.write("admin-test\n")
port, dead_port = free_ports(2)


def config(base_delay_ms, max_attempts):
    return f"""state_dir = "{tmp}/run";
plugin_dir = "{BUILD}/plugins";
listeners = ( {{ address = "127.0.0.1"; port = {port}; }} );
tenants = ( {{ id = "t"; token_file = "{tmp}/token"; destinations = [ "*" ]; }} );
store = {{ path = "{tmp}/ewtpd.sqlite"; }};
delivery = {{ max_attempts = {max_attempts}; base_delay_ms = {base_delay_ms};
             max_delay_ms = {base_delay_ms}; scan_interval_ms = 50; request_timeout_ms = 2000; }};
plugins = ( {{ name = "zz-test"; plugin = "zz"; settings = {{ sign_key = ""; }};
              transport = "https"; endpoint = "http://127.0.0.1:{dead_port}"; }} );
routes = ( {{ destination = "ZZ"; instance = "zz-test"; }} );
"""


conf = os.path.join(tmp, "ewtpd.conf")
with open(conf, "w") as f:
    f.write(config(50, 2))


def ctl(*args):
    return subprocess.run([CTL, "-c", conf] + list(args), capture_output=True, text=True,
                          timeout=60)


r = ctl("status")
check(r.returncode == 2 and "cannot reach ewtpd" in r.stderr, "status without a daemon: exit 2 + why")

log = open(os.path.join(tmp, "ewtpd.log"), "w")
daemon = subprocess.Popen([os.path.join(BUILD, "bin", "ewtpd"), "-c", conf], stdout=log,
                          stderr=subprocess.STDOUT)


def api(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body) if body else None,
              headers={"Authorization": "Bearer admin-test"})
    resp = c.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


for _ in range(200):
    try:
        if api("GET", "/readyz")[0] == 200:
            break
    except OSError:
        pass
    time.sleep(0.05)

with open(os.path.join(SRC, "plugins/template/vectors/order-basic/input.json")) as f:
    base = json.load(f)


def state_of(mid):
    return api("GET", "/v1/messages/" + mid)[1].get("state")


def wait_state(mid, want, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if state_of(mid) == want:
            return True
        time.sleep(0.1)
    return False


st, _ = api("POST", "/v1/messages", dict(base, id="adm-dead"))
check(st == 202, "accepted")
check(wait_state("adm-dead", "dead"), "unreachable authority: dead after max_attempts")

r = ctl("status")
check(r.returncode == 0 and "generation 1" in r.stdout and "zz-test" in r.stdout
      and "dead=1" in r.stdout, f"status (human): {r.stdout!r}")
r = ctl("status", "--json")
doc = json.loads(r.stdout)
check(doc.get("ok") and doc["messages"]["zz-test"]["dead"] == 1 and "queue_depth" in doc,
      "status --json counts by plugin and state")
r = ctl("plugins")
check(r.returncode == 0 and "zz-test" in r.stdout and "ABI 1.0" in r.stdout, f"plugins: {r.stdout!r}")
r = ctl("messages", "--state", "dead")
check(r.returncode == 0 and "adm-dead" in r.stdout, f"messages --state dead: {r.stdout!r}")
r = ctl("messages", "--state", "bogus")
check(r.returncode == 1 and "unknown state" in r.stderr, "messages with an unknown state: exit 1")
r = ctl("retry-now", "adm-dead")
check(r.returncode == 1 and "no retrying message" in r.stderr, "retry-now of a dead message refused")
r = ctl("replay", "nope")
check(r.returncode == 1 and "no dead message" in r.stderr, "replay of an unknown id refused")
r = ctl("replay")
check(r.returncode == 2, "replay without an id: usage error")

# Slow retries now: a replayed message stays retrying, and retry-now makes it due at once.
with open(conf, "w") as f:
    f.write(config(600000, 5))
r = ctl("reload", "--wait")
check(r.returncode == 0 and "generation 2" in r.stdout, f"reload --wait: {r.stdout!r}{r.stderr!r}")
r = ctl("replay", "adm-dead", "--json")
check(r.returncode == 0 and json.loads(r.stdout).get("state") == "accepted", "replay dead -> accepted")
check(wait_state("adm-dead", "retrying"), "replayed message fails again: retrying")
attempts = api("GET", "/v1/messages/adm-dead")[1]["attempts"]
r = ctl("retry-now", "adm-dead")
check(r.returncode == 0, f"retry-now: {r.stdout}{r.stderr}")
end = time.monotonic() + 15
while time.monotonic() < end and api("GET", "/v1/messages/adm-dead")[1]["attempts"] == attempts:
    time.sleep(0.1)
check(api("GET", "/v1/messages/adm-dead")[1]["attempts"] > attempts,
      "retry-now: another attempt at once instead of in 10 minutes")

daemon.send_signal(signal.SIGTERM)
rc = daemon.wait(timeout=30)
check(rc == 0, "clean stop")
if failures:
    print(open(os.path.join(tmp, "ewtpd.log")).read()[-3000:])
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
