"""Authentication to the authority is the host's (issue 4): JSON login and OAuth2 client
credentials, tokens cached until shortly before they expire, secrets read from files.

The real ewtpd with two ZZ instances on the real ZZ simulator (require_login: submissions and
polls need a token it issued, valid token_ttl_ms):
  zz-login  auth kind "json_login": POST /v1/login {"user","password"} -> {"token","expires_in"}
  zz-oauth  auth kind "oauth2": POST /v1/oauth/token (client credentials) -> access_token
Both read the password from one secret file. The simulator counts logins ("login:hub",
"oauth:hub", "...:refused") and refused tokens ("unauthorized") in /_sim/received.

  1. cached: 15 + 5 messages (long-lived tokens) -> one login per instance, no 401;
  2. a 401 (the simulator revokes every token) -> each instance fetches a new token once and
     its message still gets through; tokens now live 4 s;
  3. refresh before expiry: messages every 0.4 s for 8 s on both instances -> new logins
     (about every 3 s), every message approved, no further 401;
  4. wrong password in the secret file -> the message keeps retrying (never rejected) with
     the reason in its status; with the right password back it is approved.
Ends with "N passed, M failed"."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (Api, DaemonAndSim, check, checks, free_port,  # noqa: E402
                          keep_tmp_if_failed, make_tmp, wait_messages, write_ewtpd_config,
                          write_token, zz_order)

DEADLINE = time.monotonic() + 85  # the whole test stops by itself
ORDER = zz_order(None)


def order(mid):
    return dict(ORDER, id=mid, order=dict(ORDER["order"], number="SO-" + mid))


def write_secret(tmp, password):
    """The password both instances read (tmp/hub.secret, mode 0600)."""
    write_token(tmp, "hub.secret", password, 0o600)


def setup():
    """The temporary folder and ewtpd with the ZZ simulator (not started yet)."""
    tmp = make_tmp("ewtp-auth-")
    api_port = free_port()
    sim_port = free_port()
    os.makedirs(os.path.join(tmp, "run"))
    for t in ("t1", "t2"):
        write_token(tmp, t + ".token", t + "-token", 0o600)
    write_secret(tmp, "pw-1")
    conf = write_ewtpd_config(tmp, api_port, """tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "*" ]; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "*" ]; }
);
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 400; request_timeout_ms = 3000; lease_ms = 10000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-login"; plugin = "zz"; settings = { sender_id = "LOGIN-1"; sign_key = ""; };
    transport = "https"; endpoint = "%(sim)s";
    auth = { kind = "json_login"; token_url = "%(sim)s/v1/login"; client_id = "hub";
             secret_file = "hub.secret"; token_json_pointer = "/token"; }; },
  { name = "zz-oauth"; plugin = "zz"; settings = { sender_id = "OAUTH-1"; sign_key = ""; };
    transport = "https"; endpoint = "%(sim)s";
    auth = { kind = "oauth2"; token_url = "%(sim)s/v1/oauth/token"; client_id = "hub";
             secret_file = "hub.secret"; }; }
);
routes = (
  { tenant = "t1"; destination = "ZZ"; instance = "zz-login"; },
  { tenant = "t2"; destination = "ZZ"; instance = "zz-oauth"; }
);
""" % {"sim": "http://127.0.0.1:%d" % sim_port})
    os.chmod(conf, 0o600)
    return tmp, DaemonAndSim(tmp, conf, api_port, sim_port, "zz",
                             {"decision_delay_ms": 0, "require_login": "true",
                              "login_user": "hub", "login_password": "pw-1",
                              "token_ttl_ms": 600000})


def counts(sim):
    """{"login": n, "oauth": n, "login_refused": n, "unauthorized": n} so far."""
    ids = sim.call("GET", "/_sim/received")[1].get("ids", {})
    n = lambda k: ids.get(k, {}).get("count", 0)
    return {"login": n("login:hub"), "oauth": n("oauth:hub"),
            "login_refused": n("login:refused") + n("oauth:refused"),
            "unauthorized": n("unauthorized")}


def wait_states(api, msgs, states, until):
    """{id: status} once every (tenant, id) is in one of states, or at until."""
    return wait_messages([(api[tenant], mid) for tenant, mid in msgs], states,
                         until - time.monotonic(), 0.1, retry_on=OSError)


def all_approved(api, msgs, what, secs):
    st = wait_states(api, msgs, ("approved", "rejected", "dead"),
                     min(DEADLINE - 5, time.monotonic() + secs))
    bad = {m: st.get(m, {}).get("state") for _, m in msgs if st.get(m, {}).get("state") != "approved"}
    return check(not bad, "%s: all %d approved (not: %s)" % (what, len(msgs), bad))


def main():
    tmp, env = setup()
    api = {t: Api(env.api_port, t + "-token") for t in ("t1", "t2")}
    sim = Api(env.sim_port)
    try:
        if not (check(env.start_sim(), "simulator up (require_login)") and
                check(env.start_daemon(), "ewtpd up")):
            return
        # 1. Cached: one login per instance for a burst.
        msgs = [("t1", "l-%03d" % i) for i in range(15)] + [("t2", "o-%03d" % i) for i in range(5)]
        for tenant, mid in msgs:
            api[tenant].submit(order(mid))
        all_approved(api, msgs, "burst", 30)
        c1 = counts(sim)
        print("  after the burst: %s" % c1)
        check(c1["login"] == 1, "json_login: one login for 15 messages and their polls (%d)"
              % c1["login"])
        check(c1["oauth"] == 1, "oauth2: one token for 5 messages and their polls (%d)"
              % c1["oauth"])
        check(c1["unauthorized"] == 0 and c1["login_refused"] == 0, "no 401 so far")

        # 2. The authority refuses the cached token: a fresh login, the message gets through.
        check(sim.call("POST", "/_sim/control", {"token_ttl_ms": 4000, "revoke_tokens": True})[0]
              == 200,
              "simulator: every token revoked, new ones live 4 s")
        api["t1"].submit(order("l-401"))
        api["t2"].submit(order("o-401"))
        ok = all_approved(api, [("t1", "l-401"), ("t2", "o-401")], "after a 401", 15)
        c2 = counts(sim)
        saw401 = []
        for tenant, mid in (("t1", "l-401"), ("t2", "o-401")):
            evs = (api[tenant].call("GET", "/v1/messages/%s/events" % mid)[1] or {}).get(
                "events", [])
            saw401.append(any(e.get("type") == "outcome" and e.get("state") == "retrying" and
                              (e.get("detail") or {}).get("http_status") == 401 for e in evs))
        check(ok and all(saw401) and c2["unauthorized"] == 2 and
              c2["login"] == c1["login"] + 1 and c2["oauth"] == c1["oauth"] + 1,
              "a 401 makes ewtpd fetch one new token per instance and retry (401 seen %s, "
              "logins %d -> %d, oauth %d -> %d)" %
              (saw401, c1["login"], c2["login"], c1["oauth"], c2["oauth"]))

        # 3. Refresh before expiry: 4 s tokens, traffic for 8 s, never a 401.
        msgs = []
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 8:
            for tenant, p in (("t1", "r-l-"), ("t2", "r-o-")):
                mid = "%s%03d" % (p, i)
                api[tenant].submit(order(mid))
                msgs.append((tenant, mid))
            i += 1
            time.sleep(0.4)
        all_approved(api, msgs, "8 s of traffic with 4 s tokens", 20)
        c3 = counts(sim)
        print("  after 8 s with 4 s tokens: %s" % c3)
        check(c3["login"] - c2["login"] >= 2 and c3["login"] - c2["login"] <= 5,
              "json_login: refreshed about every 3 s (%d new logins)" % (c3["login"] - c2["login"]))
        check(c3["oauth"] - c2["oauth"] >= 2 and c3["oauth"] - c2["oauth"] <= 6,
              "oauth2: refreshed before expiry (%d new tokens)" % (c3["oauth"] - c2["oauth"]))
        check(c3["unauthorized"] == c2["unauthorized"],
              "no request went out with an expired token (401s %d -> %d)" %
              (c2["unauthorized"], c3["unauthorized"]))

        # 4. A wrong password: retries with a clear reason, never a rejection.
        write_secret(tmp, "wrong-password")
        sim.call("POST", "/_sim/control", {"revoke_tokens": True})
        api["t1"].submit(order("l-badpw"))
        st = {}
        until = min(DEADLINE - 15, time.monotonic() + 15)
        while time.monotonic() < until:
            st = api["t1"].status("l-badpw")[1] or {}
            if st.get("attempts", 0) >= 3 and st.get("state") == "retrying":
                break
            time.sleep(0.2)
        reasons = [e.get("message") or "" for e in st.get("errors", [])]
        print("  wrong password: state %s after %s attempts: %s" %
              (st.get("state"), st.get("attempts"), reasons))
        check(st.get("state") == "retrying" and st.get("attempts", 0) >= 3,
              "wrong password: retried, not rejected (%s, %s attempts)" %
              (st.get("state"), st.get("attempts")))
        check(any("authentication at the authority failed" in r and "HTTP 401" in r
                  for r in reasons),
              "the status says why: the token endpoint refused the credentials")
        check(counts(sim)["login_refused"] >= 2, "each retry tried to log in again")
        write_secret(tmp, "pw-1")
        all_approved(api, [("t1", "l-badpw")], "right password back", 15)
    finally:
        check(env.stop(), "ewtpd exits 0 on SIGTERM; no sanitizer report")
        keep_tmp_if_failed(tmp, [("ewtpd log", env.daemon_log)], 3000)


if __name__ == "__main__":
    sys.exit(checks.run(main))
