"""A 202 to POST /v1/messages/{id}/cancel is a promise that holds across kill -9 (issue 13).

The real ewtpd (real SQLite file) with one ZZ instance and the real ZZ simulator:
  1. two orders are approved; the authority goes down; each gets a cancel (202; a repeat is
     answered 202 too and records nothing new); ewtpd retries against a 503 and is
     killed with SIGKILL;
  2. the authority comes back before ewtpd restarts: c-1 ends `cancelled`;
  3. for c-2 ewtpd restarts first, still without the authority, and is killed again; the
     authority comes back only after the second restart: c-2 ends `cancelled`;
  4. a cancel of an order the authority has not got yet (c-3, accepted while it is down) waits
     for its order, survives a kill -9 too, and is sent after it: c-3 approved, then cancelled;
  5. the operations gauge in /metrics goes back to 0, the events tell the story, a clean stop
     leaves no sanitizer report.
"Down" is the simulator answering 503 to everything (it keeps its submissions meanwhile).
Ends with "N passed, M failed"."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (Api, DaemonAndSim, check, checks, free_port,  # noqa: E402
                          keep_tmp_if_failed, kill9, make_tmp, wait_until,
                          write_ewtpd_config, write_token, zz_order)

TOKEN = "cancel-token-0123456789abcdef0123456789"
DEADLINE = time.monotonic() + 130


def setup():
    tmp = make_tmp("ewtp-cancel-")
    api_port, sim_port = free_port(), free_port()
    os.makedirs(os.path.join(tmp, "run"))
    write_token(tmp, "token", TOKEN)
    conf = write_ewtpd_config(tmp, api_port, """
tenants = ( { id = "t1"; token_file = "token"; destinations = [ "*" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 400; request_timeout_ms = 1500; lease_ms = 2000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-a"; plugin = "zz"; settings = { sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%d"; }
);
routes = ( { destination = "ZZ"; instance = "zz-a"; } );
""" % sim_port)
    return tmp, DaemonAndSim(tmp, conf, api_port, sim_port, "zz", {"decision_delay_ms": 50})


def event_types(api, mid):
    st, body = api.call("GET", "/v1/messages/%s/events" % mid)
    return [e.get("type") for e in (body or {}).get("events", [])] if st == 200 else []


def metrics_ops(port):
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^ewtp_operations_pending (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def authority(sim, up):
    """The authority answers every request 503 (down) or normally again (up); the simulator
    keeps what it knows meanwhile."""
    body = {"force_status": 0} if up else {"force_status": 503, "force_count": 1000000,
                                            "retry_after": 0}
    return sim.call("POST", "/_sim/control", body)[0] == 200


def cancel(api, mid, reason="customer withdrew"):
    return api.call("POST", "/v1/messages/%s/cancel" % mid, {"reason": reason})


def wait_state(api, mid, states, timeout):
    timeout = min(timeout, DEADLINE - time.monotonic())
    try:
        st = api.wait_state(mid, states, max(timeout, 1))
    except OSError:
        st = None
    return (st or {}).get("state")


def main():
    tmp, env = setup()
    api = Api(env.api_port, TOKEN)
    sim = Api(env.sim_port)
    try:
        if not (check(env.start_sim(), "simulator up") and
                check(env.start_daemon(), "ewtpd up")):
            return
        for mid in ("c-1", "c-2"):
            check(api.submit(zz_order(mid))[0] == 202, "%s accepted" % mid)
        for mid in ("c-1", "c-2"):
            check(wait_state(api, mid, ("approved",), 20) == "approved", "%s approved" % mid)

        # 1. The authority goes down; the cancels are promised all the same.
        check(authority(sim, False), "authority down (503 to everything)")
        code, body = cancel(api, "c-1")
        check(code == 202 and body.get("cancel") == "requested",
              "cancel of c-1 with the authority down -> 202", (code, body))
        code, body = cancel(api, "c-1", "again")
        check(code == 202, "a repeated cancel -> 202", (code, body))
        check(event_types(api, "c-1").count("cancel_requested") == 1,
              "the repeat recorded nothing new", event_types(api, "c-1"))
        check(metrics_ops(env.api_port) == 1, "ewtp_operations_pending 1",
              metrics_ops(env.api_port))
        check(wait_until(lambda: "op_retry" in event_types(api, "c-1"), 10),
              "the cancel was tried, refused 503 and rescheduled",
              event_types(api, "c-1"))
        kill9(env.daemon)

        # 2. Authority back first, then ewtpd.
        check(authority(sim, True), "authority back")
        check(env.start_daemon(), "ewtpd restarted after kill -9")
        check(wait_state(api, "c-1", ("cancelled",), 20) == "cancelled",
              "c-1 cancelled after the restart")

        # 3. ewtpd back first (twice), the authority only after.
        check(authority(sim, False), "authority down again")
        code, body = cancel(api, "c-2")
        check(code == 202, "cancel of c-2 with the authority down -> 202", (code, body))
        kill9(env.daemon)
        check(env.start_daemon(), "ewtpd restarted, authority still down")
        check(wait_until(lambda: "op_retry" in event_types(api, "c-2"), 10),
              "after the restart the cancel is tried again", event_types(api, "c-2"))
        check(wait_state(api, "c-2", ("cancelled",), 1) != "cancelled",
              "c-2 not cancelled while the authority is down")

        # 4. A cancel that must wait for its order.
        check(api.submit(zz_order("c-3"))[0] == 202, "c-3 accepted with the authority down")
        code, body = cancel(api, "c-3")
        check(code == 202 and body.get("state") in ("accepted", "delivering", "retrying"),
              "cancel of c-3 before the authority has it -> 202", (code, body))
        kill9(env.daemon)
        check(env.start_daemon(), "ewtpd restarted again")
        check(authority(sim, True), "authority back at last")
        check(wait_state(api, "c-2", ("cancelled",), 20) == "cancelled",
              "c-2 cancelled once the authority came back")
        check(wait_state(api, "c-3", ("cancelled",), 25) == "cancelled",
              "c-3 sent, then cancelled")
        ev = event_types(api, "c-3")
        sent = ev.index("outcome") if "outcome" in ev else len(ev)
        claimed = ev.index("op_claimed") if "op_claimed" in ev else -1
        check(claimed > sent, "c-3's cancel was claimed only after its order went out", ev)

        # 5. Nothing left over.
        check(wait_until(lambda: metrics_ops(env.api_port) == 0, 10), "ewtp_operations_pending 0",
              metrics_ops(env.api_port))
        check(env.stop(), "clean stop, no sanitizer report")
    finally:
        if env.daemon and env.daemon.poll() is None:
            kill9(env.daemon)
        if env.sim and env.sim.poll() is None:
            kill9(env.sim)
        keep_tmp_if_failed(tmp, [("ewtpd", env.daemon_log), ("simulator", env.sim_log)])


if __name__ == "__main__":
    sys.exit(checks.run(main))
