"""Delivery end to end: the real ewtpd (real SQLite) against the scripted ZZ authority of
fake_authority.py on loopback. Scenarios: poll to approval, immediate approval, rejection with
the authority's reason, 503 + Retry-After twice then success, strict ordering per key, inbound
callback and spool receipt correlated, cancel (202 then cancelled; 409), spool transport,
signed webhooks, dead after max_attempts and replay to approval. Exits non-zero on failure."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (Api, check, checks, ewtpctl, free_port, make_tmp,  # noqa: E402
                          print_logs, read_log, remove_tmp, sanitizer_env, sanitizer_report,
                          spawn_ewtpd, stop, wait_port, wait_until, webhook_signature_ok, write,
                          write_ewtpd_config, write_token, zz_order)
from fake_authority import Authority  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def config(tmp, api_port, auth_port, dead_port):
    for d in ("spool-out", "spool-in", "zz-a-in"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    for t in ("t1", "t2", "t3", "t4"):
        write_token(tmp, t + ".token", t + "-token")
    write_token(tmp, "oauth.secret", "s3cret&x")
    write_token(tmp, "inbound.token", "inbound-secret")
    write_token(tmp, "t1.whsec", SECRET)
    fake = "http://127.0.0.1:%d" % auth_port
    conf = """tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "*" ];
    webhook_url = "%(fake)s/hooks/t1"; webhook_secret_file = "t1.whsec"; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "*" ]; },
  { id = "t3"; token_file = "t3.token"; destinations = [ "*" ]; },
  { id = "t4"; token_file = "t4.token"; destinations = [ "*" ]; }
);
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
plugins = (
  { name = "zz-a"; plugin = "zz"; settings = { sender_id = "SENDER-A"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s"; spool_in = "zz-a-in";
    inbound_token_file = "inbound.token"; },
  { name = "zz-spool"; plugin = "zz"; settings = { sender_id = "SENDER-S"; sign_key = ""; };
    transport = "spool"; spool_out = "spool-out"; spool_in = "spool-in"; },
  { name = "zz-dead"; plugin = "zz"; settings = { sender_id = "SENDER-D"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s"; },
  { name = "zz-oauth"; plugin = "zz"; settings = { sender_id = "SENDER-O"; sign_key = ""; };
    transport = "https"; endpoint = "%(fake)s";
    auth = { kind = "oauth2"; token_url = "%(fake)s/token"; client_id = "hub";
             secret_file = "oauth.secret"; scope = "submit"; }; }
);
routes = (
  { tenant = "t1"; destination = "ZZ"; instance = "zz-a"; },
  { tenant = "t2"; destination = "ZZ"; instance = "zz-spool"; },
  { tenant = "t3"; destination = "ZZ"; instance = "zz-dead"; },
  { tenant = "t4"; destination = "ZZ"; instance = "zz-oauth"; }
);
""" % {"fake": fake}
    return write_ewtpd_config(tmp, api_port, conf)


def submit(api, mid):
    code, body = api.submit(zz_order(mid))
    check(code == 202, "%s accepted with 202 (got %s %s)" % (mid, code, body))


def main():
    tmp = make_tmp("ewtp-dispatch-")
    auth = Authority().start()
    dead_port = free_port()
    api_port = free_port()
    conf = config(tmp, api_port, auth.port, dead_port)
    env = sanitizer_env()
    proc = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=env)
    try:
        if not wait_port(api_port, proc):
            check(False, "ewtpd listens")
            return
        api = Api(api_port)
        tenant = {t: api.as_token(t + "-token") for t in ("t1", "t2", "t3", "t4")}

        # 1. received, then approved through the poll
        submit(tenant["t1"], "acc-1")
        st = tenant["t1"].wait_state("acc-1", ["approved"])
        check(st and st.get("state") == "approved", "acc-1 approved via poll")
        check(st and st.get("authority_ref") == "ZZREF-acc-1", "acc-1 authority reference kept")
        check(st and [r["state"] for r in st["receipts"]] == ["submitted", "approved"],
              "acc-1 receipts submitted then approved (%s)" % (st and st.get("receipts")))
        check(any(e[0] == "GET" and e[1] == "/v1/submissions/ZZREF-acc-1" for e in auth.log),
              "acc-1 polled by reference")

        # 2. approved at once
        submit(tenant["t1"], "now-1")
        st = tenant["t1"].wait_state("now-1", ["approved"])
        check(st and st.get("state") == "approved" and st.get("attempts") == 1, "now-1 approved, 1 attempt")

        # 3. rejected with the authority's reason
        submit(tenant["t1"], "rej-1")
        st = tenant["t1"].wait_state("rej-1", ["rejected"])
        check(st and st.get("state") == "rejected", "rej-1 rejected")
        rc = st["receipts"][-1] if st and st.get("receipts") else {}
        check(rc.get("code") == "ZZ-E042" and "tariff" in (rc.get("message") or ""),
              "rej-1 receipt carries the authority's code and text (%s)" % rc)
        check(st and any(e.get("pointer") == "/order/lines/0/hs_code" for e in st.get("errors", [])),
              "rej-1 error points at /order/lines/0/hs_code (%s)" % (st and st.get("errors")))

        # 4. 503 + Retry-After: 1 twice, then received -> approved; attempts = 3
        submit(tenant["t1"], "flaky-1")
        st = tenant["t1"].wait_state("flaky-1", ["approved", "dead"], timeout=20)
        check(st and st.get("state") == "approved" and st.get("attempts") == 3,
              "flaky-1 approved after 3 attempts (%r)" % ((st and (st.get("state"), st.get("attempts"))),))
        times = [e[3] for e in auth.submissions("flaky-1")]
        check(len(times) == 3 and all(b - a >= 0.95 for a, b in zip(times, times[1:])),
              "flaky-1 Retry-After honoured (gaps %s)" % [round(b - a, 2) for a, b in zip(times, times[1:])])

        # 5. one ordering key: strictly in accept order, one in flight
        submit(tenant["t1"], "flaky-2")
        for i in range(1, 4):
            submit(tenant["t1"], "ord-%d" % i)
        for i in range(1, 4):
            tenant["t1"].wait_state("ord-%d" % i, ["approved"], timeout=20)
        seq = [e[2] for e in auth.submissions() if e[2] in ("flaky-2", "ord-1", "ord-2", "ord-3")]
        check(seq == ["flaky-2"] * 3 + ["ord-1", "ord-2", "ord-3"],
              "ordering key: flaky-2 (3 tries) before ord-1, ord-2, ord-3 (%s)" % seq)

        # 6. inbound callback correlated by reference
        submit(tenant["t1"], "cb-1")
        tenant["t1"].wait_state("cb-1", ["submitted"])
        code, body = api.call("POST", "/v1/inbound/zz-a",
                              {"reference": "ZZREF-cb-1", "status": "accepted", "code": "OK",
                               "message": "cleared"}, token="inbound-secret")
        check(code == 200 and body == {"message": "cb-1"}, "inbound callback -> 200 (%s %s)" % (code, body))
        st = tenant["t1"].wait_state("cb-1", ["approved"])
        check(st and st.get("state") == "approved", "cb-1 approved by the callback")
        code, _ = api.call("POST", "/v1/inbound/zz-a",
                           {"reference": "ZZREF-nope", "status": "accepted"},
                           token="inbound-secret")
        check(code == 404, "inbound for an unknown reference -> 404 (%s)" % code)
        code, _ = api.call("POST", "/v1/inbound/zz-a", b"not a receipt", ctype=None,
                           token="inbound-secret")
        check(code == 400, "inbound the plugin does not recognise -> 400 (%s)" % code)

        # 7. a receipt file in the spool in-folder
        submit(tenant["t1"], "cb-2")
        tenant["t1"].wait_state("cb-2", ["submitted"])
        write(os.path.join(tmp, "zz-a-in", "receipt-cb-2.json"),
              json.dumps({"reference": "ZZREF-cb-2", "status": "rejected", "code": "ZZ-E7",
                          "message": "late refusal"}))
        st = tenant["t1"].wait_state("cb-2", ["rejected"])
        check(st and st.get("state") == "rejected", "cb-2 rejected by a spool receipt")
        check(os.path.exists(os.path.join(tmp, "zz-a-in", "done", "receipt-cb-2.json")),
              "spool receipt moved to done/")
        write(os.path.join(tmp, "zz-a-in", "junk.txt"), "junk")
        wait_until(lambda: os.path.exists(os.path.join(tmp, "zz-a-in", "failed", "junk.txt")), 5)
        check(os.path.exists(os.path.join(tmp, "zz-a-in", "failed", "junk.txt")),
              "unrecognised spool file moved to failed/")

        # 8. cancel
        code, body = tenant["t1"].call("POST", "/v1/messages/acc-1/cancel",
                                       {"reason": "customer withdrew"})
        check(code == 202, "cancel of an approved message -> 202 (%s %s)" % (code, body))
        st = tenant["t1"].wait_state("acc-1", ["cancelled"])
        check(st and st.get("state") == "cancelled", "acc-1 cancelled once the authority confirmed")
        code, body = tenant["t1"].call("POST", "/v1/messages/rej-1/cancel", {"reason": "x"})
        check(code == 409, "cancel of a rejected message -> 409 (%s %s)" % (code, body))
        code, body = tenant["t1"].call("POST", "/v1/messages/nope/cancel", {"reason": "x"})
        check(code == 404, "cancel of an unknown message -> 404 (%s)" % code)

        # 9. spool transport
        submit(tenant["t2"], "sp-1")
        st = tenant["t2"].wait_state("sp-1", ["submitted"])
        check(st and st.get("state") == "submitted", "sp-1 submitted once spooled")
        files = [f for f in os.listdir(os.path.join(tmp, "spool-out")) if not f.startswith(".")]
        data = open(os.path.join(tmp, "spool-out", files[0]), "rb").read() if files else b""
        check(len(files) == 1 and b"<zz:SenderReference>sp-1<" in data,
              "spool_out holds the document (%s)" % files)

        # 10. webhooks, signed: wait until acc-1's cancelled (its last event) has arrived.
        def acc1_states():
            with auth.lock:
                got = list(auth.hooks)
            return {json.loads(b).get("state") for _, b in got if json.loads(b).get("id") == "acc-1"}
        wait_until(lambda: {"submitted", "approved", "cancelled"} <= acc1_states(), 20)
        with auth.lock:
            hooks = list(auth.hooks)
        good = 0
        states = set()
        for h, body in hooks:
            if webhook_signature_ok(SECRET, h, body):
                good += 1
            ev = json.loads(body)
            if ev.get("id") == "acc-1":
                states.add(ev.get("state"))
            assert ev.get("type") == "message.state" and ev.get("tenant") == "t1"
        check(hooks and good == len(hooks), "every webhook signature verifies (%d of %d)" % (good, len(hooks)))
        check({"submitted", "approved", "cancelled"} <= states, "acc-1 webhooks: %s" % sorted(states))

        # 11. OAuth2 client credentials: one token, cached, on every request of the instance
        submit(tenant["t4"], "now-oa-1")
        submit(tenant["t4"], "now-oa-2")
        tenant["t4"].wait_state("now-oa-1", ["approved"])
        st = tenant["t4"].wait_state("now-oa-2", ["approved"])
        check(st and st.get("state") == "approved", "oauth2 instance delivers")
        check(auth.authz.get("now-oa-1") == "Bearer tok-1" and auth.authz.get("now-oa-2") == "Bearer tok-1",
              "oauth2 token sent and cached (%s)" % auth.authz)
        check(len(auth.token_requests) == 1 and b"grant_type=client_credentials" in auth.token_requests[0]
              and b"client_secret=s3cret%26x" in auth.token_requests[0],
              "one client-credentials token request (%s)" % auth.token_requests)

        # 12. authority down past max_attempts -> dead; replay once it is up -> approved
        auth.down = True
        submit(tenant["t3"], "down-1")
        st = tenant["t3"].wait_state("down-1", ["dead"], timeout=20)
        check(st and st.get("state") == "dead" and st.get("attempts") == 3,
              "down-1 dead after 3 attempts (%r)" % ((st and (st.get("state"), st.get("attempts"))),))
        auth.down = False
        r = ewtpctl(conf, "replay", "down-1", timeout=20, env=env)
        check(r.returncode == 0, "ewtpctl replay down-1 (%s%s)" % (r.stdout, r.stderr))
        st = tenant["t3"].wait_state("down-1", ["approved"], timeout=20)
        check(st and st.get("state") == "approved", "down-1 approved after replay")
    finally:
        if proc.poll() is None:
            rc = stop(proc, timeout=20)
            check(rc == 0, "ewtpd exits 0 on SIGTERM (%s)" % rc)
        auth.stop()
        check(not sanitizer_report(read_log(proc.log_path)), "no sanitizer reports")
        if checks.failed:
            print_logs([("ewtpd log", proc.log_path)], 12000)
        remove_tmp(tmp, keep=bool(checks.failed))
    sys.exit(checks.summary())

if __name__ == "__main__":
    main()
