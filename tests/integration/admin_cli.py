"""ewtpctl admin commands over the admin socket, with an authority nobody listens on so that
messages go retrying and then dead."""
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (PLUGINS, Api, check, checks, ewtpctl, free_port, log_tail,  # noqa: E402
                          make_tmp, read_log, sanitizer_report, spawn_ewtpd, stop, wait_ready,
                          wait_until, write, write_token, zz_order)

tmp = make_tmp("ewtp-admin-")
write_token(tmp, "token", "admin-test")
port, dead_port = free_port(), free_port()


def config(base_delay_ms, max_attempts):
    return f"""dev_mode = true;
state_dir = "{tmp}/run";
plugin_dir = "{PLUGINS}";
listeners = ( {{ address = "127.0.0.1"; port = {port}; }} );
tenants = ( {{ id = "t"; token_file = "{tmp}/token"; destinations = [ "*" ]; }} );
store = {{ path = "{tmp}/ewtpd.sqlite"; }};
delivery = {{ max_attempts = {max_attempts}; base_delay_ms = {base_delay_ms};
             max_delay_ms = {base_delay_ms}; scan_interval_ms = 50; request_timeout_ms = 2000; }};
plugins = ( {{ name = "zz-test"; plugin = "zz"; settings = {{ sign_key = ""; }};
              transport = "https"; endpoint = "http://127.0.0.1:{dead_port}"; }} );
routes = ( {{ destination = "ZZ"; instance = "zz-test"; }} );
"""


conf = write(os.path.join(tmp, "ewtpd.conf"), config(50, 2))


def ctl(*args):
    return ewtpctl(conf, *args)


r = ctl("status")
check(r.returncode == 2 and "cannot reach ewtpd" in r.stderr, "status without a daemon: exit 2 + why")

daemon = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"))
api = Api(port, "admin-test")
wait_ready(port, daemon)

st, _ = api.submit(zz_order("adm-dead"))
check(st == 202, "accepted")
check(api.wait_state("adm-dead", ["dead"]).get("state") == "dead",
      "unreachable authority: dead after max_attempts")

r = ctl("status")
check(r.returncode == 0 and "generation 1" in r.stdout and "zz-test" in r.stdout
      and "dead=1" in r.stdout, f"status (human): {r.stdout!r}")
r = ctl("status", "--json")
doc = json.loads(r.stdout)
check(doc.get("ok") and doc["messages"]["zz-test"]["dead"] == 1 and "queue_depth" in doc,
      "status --json counts by plugin and state")
r = ctl("plugins")
# The template plugin is built with this tree's headers: major 1, whatever minor they are at.
check(r.returncode == 0 and "zz-test" in r.stdout and re.search(r"ABI 1\.\d+ ", r.stdout),
      f"plugins: {r.stdout!r}")
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
write(conf, config(600000, 5))
r = ctl("reload", "--wait")
check(r.returncode == 0 and "generation 2" in r.stdout, f"reload --wait: {r.stdout!r}{r.stderr!r}")
r = ctl("replay", "adm-dead", "--json")
check(r.returncode == 0 and json.loads(r.stdout).get("state") == "accepted", "replay dead -> accepted")
check(api.wait_state("adm-dead", ["retrying"]).get("state") == "retrying",
      "replayed message fails again: retrying")
attempts = api.status("adm-dead")[1]["attempts"]
r = ctl("retry-now", "adm-dead")
check(r.returncode == 0, f"retry-now: {r.stdout}{r.stderr}")
wait_until(lambda: api.status("adm-dead")[1]["attempts"] != attempts, 15, 0.1)
check(api.status("adm-dead")[1]["attempts"] > attempts,
      "retry-now: another attempt at once instead of in 10 minutes")

# Issue 19.6: a second line while the first one's store job or reload --wait is pending must
# not replace the request under the worker nor free the connection (ASan aborts ewtpd on a
# use-after-free). One answer per connection, to the first line.
sock_path = next(os.path.join(dp, f) for dp, _, fs in os.walk(tmp) for f in fs
                 if f.endswith(".sock"))
for first, want in (({"cmd": "reload", "wait": True}, "generation"),
                    ({"cmd": "status"}, "queue_depth"),
                    ({"cmd": "messages", "state": "dead"}, "items")):
    for delay in (0, 0.002, 0.01, 0.03):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(sock_path)
        s.sendall(json.dumps(first).encode() + b"\n")
        if delay:
            time.sleep(delay)
        try:
            s.sendall(b'{"cmd": "plugins"}\n{"cmd": "reload", "wait": true}\n')
        except OSError:
            pass  # the answer was written and the socket closed already
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        lines = data.decode(errors="replace").splitlines()
        check(len(lines) == 1 and want in json.loads(lines[0]),
              f"{first['cmd']} + a second line after {delay} s: one answer, the first's "
              f"({lines!r:.200})")
check(daemon.poll() is None, "ewtpd still running after two lines per connection")
r = ctl("status")
check(r.returncode == 0, "admin socket still answers")

rc = stop(daemon, 30)
check(rc == 0, "clean stop")
check(not sanitizer_report(read_log(daemon.log_path)), "no sanitizer report")
if checks.failed:
    print(log_tail(daemon.log_path, 3000))
sys.exit(checks.summary())
