"""ewtpd under a fake systemd: a Unix datagram socket as NOTIFY_SOCKET collects what the
daemon tells the service manager, and the test checks each promise of the [ops] issue."""
import os
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (PLUGINS, check, checks, free_port, log_tail, make_tmp,  # noqa: E402
                          spawn_ewtpd, wait_exit, write, write_token)

tmp = make_tmp("ewtp-notify-")
write_token(tmp, "token", "t")
port = free_port()
GOOD = f"""dev_mode = true;
state_dir = "{tmp}/run";
plugin_dir = "{PLUGINS}";
listeners = ( {{ address = "127.0.0.1"; port = {port}; }} );
tenants = ( {{ id = "t"; token_file = "{tmp}/token"; destinations = [ "*" ]; }} );
store = {{ path = "{tmp}/ewtpd.sqlite"; }};
plugins = ( {{ name = "zz-test"; plugin = "zz"; settings = {{ sign_key = ""; }};
              transport = "https"; endpoint = "http://127.0.0.1:9"; }} );
routes = ( {{ destination = "ZZ"; instance = "zz-test"; }} );
"""
conf = write(os.path.join(tmp, "ewtpd.conf"), GOOD)

sock_path = os.path.join(tmp, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(sock_path)
notify.settimeout(0.2)
env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000")
env.pop("WATCHDOG_PID", None)
daemon = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=env)
received = []


def wait_for(pred, seconds=20):
    """Datagrams until one satisfies pred (returns it) or the time is up (None)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            msg = notify.recv(4096).decode()
        except socket.timeout:
            if daemon.poll() is not None:
                return None
            continue
        received.append(msg)
        if pred(msg):
            return msg
    return None


def fields(msg):
    return dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)


ready = wait_for(lambda m: "READY=1" in m)
check(ready is not None and "STATUS=generation 1" in ready, f"READY=1 with STATUS: {ready!r}")
dog = wait_for(lambda m: "WATCHDOG=1" in m, 5)
check(dog is not None, "WATCHDOG=1 pings from the loop")
mode = stat.S_IMODE(os.stat(os.path.join(tmp, "run", "ewtpd.sock")).st_mode)
check(mode == 0o660, f"admin socket mode {oct(mode)}")

daemon.send_signal(signal.SIGHUP)
rel = wait_for(lambda m: "RELOADING=1" in m)
f = fields(rel or "")
check(rel is not None and f.get("MONOTONIC_USEC", "").isdigit(),
      f"RELOADING=1 and MONOTONIC_USEC in one datagram: {rel!r}")
if rel:
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    check(abs(now_us - int(f["MONOTONIC_USEC"])) < 30_000_000, "MONOTONIC_USEC is CLOCK_MONOTONIC")
again = wait_for(lambda m: "READY=1" in m)
check(again is not None and "STATUS=generation 2" in again, f"READY=1 after reload: {again!r}")

write(conf, GOOD + "no_such_setting = 1;\n")
daemon.send_signal(signal.SIGHUP)
wait_for(lambda m: "RELOADING=1" in m)
bad = wait_for(lambda m: "READY=1" in m)
line = GOOD.count("\n") + 1
check(bad is not None and "reload failed" in bad and f"{conf}:{line}:" in bad,
      f"refused reload: READY=1 and STATUS with file:line: {bad!r}")
check(daemon.poll() is None, "a refused reload leaves the daemon running")

daemon.send_signal(signal.SIGTERM)
stopping = wait_for(lambda m: "STOPPING=1" in m)
check(stopping is not None, "STOPPING=1 on SIGTERM")
rc = wait_exit(daemon, 30)
check(rc == 0, f"exit status 0 after SIGTERM (got {rc})")
if checks.failed:
    print("datagrams:", received)
    print(log_tail(daemon.log_path, 3000))
sys.exit(checks.summary())
