"""Durable webhooks: the store's outbox survives a restart of ewtpd.

The real ewtpd (real SQLite file) delivers to the real ZZ simulator; tenant "hooked" has a
webhook receiver that is down at first. Its message reaches approved while every webhook
attempt fails (the outbox keeps them); ewtpd is killed with SIGKILL, the receiver comes up,
ewtpd restarts, and the receiver gets the signed POSTs (Standard Webhooks: the signature
verifies with the tenant's secret, the same webhook-id on every attempt) for submitted and
approved; the outbox is empty afterwards. Tenant "refused" has a receiver answering 410:
its webhooks are given up at once and the message gets a "webhook_failed" event.
Ends with "N passed, M failed"."""
import base64
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_daemon import Env, body_of  # noqa: E402
from ewtp_harness import (Api, PostRecorder, check, checks, free_port, kill9,  # noqa: E402
                          remove_tmp, wait_until, webhook_signature_ok, write, write_token)

SECRET = "whsec_" + base64.b64encode(b"durable-webhook-secret-0123456789").decode()


def outbox(env):
    db = sqlite3.connect(os.path.join(env.tmp, "ewtpd.sqlite"), timeout=10)
    try:
        return db.execute("SELECT count(*), coalesce(max(attempts), 0) FROM webhooks").fetchone()
    finally:
        db.close()


def metric(port, name):
    """The value of a metric without labels in /metrics, or None."""
    import re
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def main():
    env = Env("webhook")
    rport = free_port()
    write_token(env.tmp, "hooked.token", "hooked-token")
    write_token(env.tmp, "refused.token", "refused-token")
    write_token(env.tmp, "whsec", SECRET)
    conf = open(env.conf).read()
    conf = conf.replace(
        'tenants = ( { id = "load"; token_file = "token"; destinations = [ "*" ]; } );',
        """tenants = (
  { id = "hooked"; token_file = "hooked.token"; destinations = [ "*" ];
    webhook_url = "http://127.0.0.1:%d/hooked"; webhook_secret_file = "whsec"; },
  { id = "refused"; token_file = "refused.token"; destinations = [ "*" ];
    webhook_url = "http://127.0.0.1:%d/refused"; webhook_secret_file = "whsec"; }
);""" % (rport, rport))
    conf = conf.replace("base_delay_ms = 100;", "base_delay_ms = 200;").replace(
        "poll_interval_ms = 60000;", "poll_interval_ms = 200;")
    write(env.conf, conf)
    hooked_api = Api(env.api, "hooked-token")
    refused_api = Api(env.api, "refused-token")
    server = None
    try:
        if not check(env.start_sim() and env.start_daemon(), "ewtpd and the simulator start"):
            print(env.log_tail("ewtpd.log"))
            return
        code, _ = hooked_api.submit(body_of("wh-1"))
        check(code == 202, "POST of wh-1: 202 (%s)" % code)
        check(hooked_api.wait_state("wh-1", ("approved",), 30).get("state") == "approved",
              "wh-1 approved while the receiver is down")
        wait_until(lambda: min(outbox(env)) >= 2, 20, 0.2)
        n, attempts = outbox(env)
        check(n >= 2 and attempts >= 2,
              "the outbox holds the failing webhooks (%d rows, up to %d attempts)" % (n, attempts))
        kill9(env.daemon)
        server = PostRecorder(rport, lambda path: 410 if path.startswith("/refused") else 204)
        server.start()
        check(env.start_daemon(), "ewtpd restarts after SIGKILL")

        def hooked_states():
            return {json.loads(b)["state"] for p, h, b in server.posts("/hooked")}
        wait_until(lambda: {"submitted", "approved"} <= hooked_states(), 40, 0.2)
        states = hooked_states()
        got = [(h, b) for p, h, b in server.posts("/hooked")]
        check({"submitted", "approved"} <= states,
              "the receiver got wh-1's webhooks after the restart: %s" % sorted(states))
        check(got and all(webhook_signature_ok(SECRET, h, b) for h, b in got),
              "every webhook signature verifies (%d)" % len(got))
        bodies = [json.loads(b) for h, b in got]
        check(all(x["type"] == "message.state" and x["tenant"] == "hooked" and x["id"] == "wh-1"
                  for x in bodies), "webhook bodies name wh-1 of tenant hooked")
        ids = {}
        for h, b in got:
            ids.setdefault(json.loads(b)["state"], set()).add(h.get("webhook-id"))
        check(all(len(v) == 1 for v in ids.values()), "one webhook-id per state")
        wait_until(lambda: outbox(env)[0] == 0, 10, 0.2)
        check(outbox(env)[0] == 0, "the outbox is empty once delivered")

        # A receiver that refuses (410): given up at once, recorded as an event.
        code, _ = refused_api.submit(body_of("wh-2"))
        check(code == 202, "POST of wh-2: 202 (%s)" % code)
        refused_api.wait_state("wh-2", ("approved",), 30)

        def event_types():
            ev = refused_api.call("GET", "/v1/messages/wh-2/events")[1]
            return [e.get("type") for e in (ev or {}).get("events", [])]
        wait_until(lambda: "webhook_failed" in event_types(), 20, 0.2)
        types = event_types()
        check("webhook_failed" in types, "a refused webhook is given up with an event (%s)" % types)
        refused = [b for p, h, b in server.posts("/refused")]
        states2 = [json.loads(b)["state"] for b in refused]
        check(len(states2) == len(set(states2)), "a refused webhook is not retried (%s)" % states2)
        # Webhook deliveries and failures of this process in /metrics.
        delivered = metric(env.api, "ewtp_webhooks_delivered_total")
        failed = metric(env.api, "ewtp_webhooks_failed_total")
        check(delivered is not None and delivered >= 1,
              "ewtp_webhooks_delivered_total counts deliveries (%s)" % delivered)
        check(failed is not None and failed >= 1,
              "ewtp_webhooks_failed_total counts the refused one (%s)" % failed)
    finally:
        check(env.stop(), "ewtpd stops cleanly, no sanitizer report")
        if server:
            server.stop()
        if not checks.failed:
            remove_tmp(env.tmp)
        else:
            print(env.log_tail("ewtpd.log", 30))


if __name__ == "__main__":
    main()
    sys.exit(checks.summary())
