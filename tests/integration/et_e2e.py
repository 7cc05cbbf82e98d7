"""Ethiopia end to end: the real ewtpd (real SQLite) with the et plugin against the real EIMS
simulator (`ewtp-sim --country et`) on loopback, the plugin logging in through the host's token
cache (ABI 1.3 login hook; tokens live 3 s here, so they are refreshed during the run).

- a customs declaration is refused at POST (422) with `/kind` `unsupported` and the sentence
  naming the missing specification; invalid vectors are refused at POST (422) with their
  pointers;
- 100 invoices of one seller system posted concurrently are registered in strict number order
  1..100, each with its predecessor's IRN as PreviousIrn, with ewtpd killed with SIGKILL while
  they are being delivered and restarted on the same database: no gap, no duplicate, every
  message approved with its own IRN;
- one of them is cancelled (POST /v1/messages/{id}/cancel): `cancelled`, and CANCELLED at EIMS;
- the simulator revokes every token: the next invoice gets 401, the host logs in again and it
  is approved;
- a document registered outside the gateway (translated offline by `ewtpctl translate --chain`
  and posted to the simulator directly) puts EIMS ahead: the gateway's next invoice is refused
  as out of sequence with the expected number, the key is blocked (that invoice dead, the next
  held); `ewtpctl chain set` + `ewtpctl replay` send both, in order.
Ends with "N passed, M failed"."""
import concurrent.futures
import copy
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, DaemonAndSim, check, checks, ewtpctl,  # noqa: E402
                          free_port, http_json, keep_tmp_if_failed, kill9, load_json, make_tmp,
                          wait_messages, wait_until, write_ewtpd_config, write_token)

TOKEN = "et-token"
N = 100
TIN = "0099990001"
SYSTEM = "ET-E2E-POS"
KEY = "et:et:%s:%s" % (TIN, SYSTEM)
DEADLINE = time.monotonic() + 420
VEC = os.path.join(SRC, "plugins/et/vectors")
INVOICE = load_json(os.path.join(VEC, "invoice-sample/input.json"))
INVALID = ["invalid-seller-tin", "invalid-unit", "invalid-vat-amount", "invalid-vat-rate",
           "invalid-sku-too-long", "invalid-seller-phone", "invalid-ext-member",
           "invalid-fx-without-rate", "invalid-zero-rated-unknown"]
LOGIN = {"clientId": "et-e2e", "clientSecret": "et-e2e-secret", "apikey": "et-e2e-key",
         "tin": TIN}


def invoice(mid):
    m = copy.deepcopy(INVOICE)
    m["id"] = mid
    m["invoice"]["number"] = "INV-" + mid
    return m


def setup():
    tmp = make_tmp("ewtp-et-")
    api_port, sim_port = free_port(), free_port()
    os.makedirs(os.path.join(tmp, "run"))
    write_token(tmp, "token", TOKEN)
    write_token(tmp, "client-secret", LOGIN["clientSecret"], 0o600)
    write_token(tmp, "api-key", LOGIN["apikey"], 0o600)
    conf = write_ewtpd_config(tmp, api_port, """
tenants = ( { id = "et"; token_file = "token"; destinations = [ "ET" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 500; request_timeout_ms = 3000; lease_ms = 4000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "et-eims"; plugin = "et";
    settings = { tin = "%(tin)s"; system_number = "%(system)s"; client_id = "et-e2e";
                 client_secret_file = "%(tmp)s/client-secret"; api_key_file = "%(tmp)s/api-key"; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = ( { destination = "ET"; kinds = [ "invoice", "declaration" ]; instance = "et-eims"; } );
""" % {"sim": sim_port, "tmp": tmp, "tin": TIN, "system": SYSTEM})
    env = DaemonAndSim(tmp, conf, api_port, sim_port, "et",
                       {"client_id": LOGIN["clientId"], "client_secret": LOGIN["clientSecret"],
                        "api_key": LOGIN["apikey"], "tin": TIN, "token_ttl_s": "3"})
    return tmp, env


def chain(sim):
    code, doc = sim.call("GET", "/_et/chain/%s/%s" % (TIN, SYSTEM))
    return doc if code == 200 and isinstance(doc, dict) else {}


def registered(sim):
    return chain(sim).get("registered", [])


def final_states():
    return ("approved", "rejected", "dead", "cancelled")


def main():
    tmp, env = setup()
    api = Api(env.api_port, TOKEN)
    sim = Api(env.sim_port)
    try:
        if not (check(env.start_sim(), "simulator up") and
                check(env.start_daemon(), "ewtpd up")):
            return
        # Declarations: refused before anything is sent, with the missing specification named.
        decl = load_json(os.path.join(VEC, "invalid-declaration/input.json"))
        code, doc = api.submit(decl)
        errs = (doc or {}).get("errors", [])
        check(code == 422 and any(e.get("pointer") == "/kind" and e.get("code") == "unsupported"
                                  and "specification" in (e.get("message") or "")
                                  for e in errs),
              "a customs declaration is refused 422 at /kind unsupported, naming the missing "
              "specification (%s %s)" % (code, errs))
        # Invalid vectors: 422 with their pointers.
        for case in INVALID:
            m = load_json(os.path.join(VEC, case, "input.json"))
            want = {(e["pointer"], e["code"])
                    for e in load_json(os.path.join(VEC, case, "errors.json"))["errors"]}
            code, doc = api.submit(m)
            got = {(e.get("pointer"), e.get("code")) for e in (doc or {}).get("errors", [])}
            check(code == 422 and want <= got,
                  "%s refused 422 with %s (%s %s)" % (case, sorted(want), code, sorted(got)))

        # 100 invoices at once, kill -9 in the middle.
        ids = ["et-e2e-%03d" % i for i in range(N)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda mid: api.submit(invoice(mid))[0], ids))
        check(all(c == 202 for c in codes), "100 invoices accepted with 202 (%s)" %
              sorted(set(codes)))
        wait_until(lambda: len(registered(sim)) >= N // 3, min(120, DEADLINE - time.monotonic()))
        done = len(registered(sim))
        kill9(env.daemon)
        print("  killed ewtpd after %d registrations" % done)
        check(0 < done < N, "ewtpd killed mid-delivery (%d of %d registered)" % (done, N))
        check(env.start_daemon(), "ewtpd restarted after kill -9")
        final = wait_messages([(api, m) for m in ids], final_states(),
                              DEADLINE - time.monotonic() - 60, retry_on=OSError)
        bad = {m: final.get(m, {}).get("state") for m in ids
               if final.get(m, {}).get("state") != "approved"}
        check(not bad, "all 100 approved (%d; not: %s)" % (N - len(bad), bad))
        c = chain(sim)
        reg = c.get("registered", [])
        numbers = [d.get("number") for d in reg]
        check(numbers == list(range(1, N + 1)),
              "EIMS registered document numbers 1..%d in strict order, no gap or duplicate (%s)"
              % (N, "ok" if numbers == list(range(1, N + 1)) else numbers))
        check([d.get("counter") for d in reg] == list(range(1, N + 1)),
              "invoice counters 1..%d" % N)
        prevs_ok = all(d.get("previous") == (reg[i - 1]["irn"] if i else None)
                       for i, d in enumerate(reg))
        check(prevs_ok, "each document references its predecessor's IRN (PreviousIrn)")
        irns = [final.get(m, {}).get("authority_ref") for m in ids]
        check(len(set(irns)) == N and set(irns) == {d.get("irn") for d in reg},
              "each message has its own IRN, the one EIMS registered")
        check(c.get("refused_sequence") == 0, "no sequence refusal (%s)" %
              c.get("refused_sequence"))
        print("  identical resends after the restart: %d" % sum(d.get("resends", 0) for d in reg))
        check(c.get("logins", 0) >= 2,
              "the host logged in through the plugin and refreshed the 3 s token (%s logins)"
              % c.get("logins"))

        # Cancel one.
        victim = ids[N // 2]
        code, body = api.call("POST", "/v1/messages/%s/cancel" % victim,
                              {"reason": "2: issued to the wrong buyer"})
        check(code == 202, "cancel of %s -> 202 (%s %s)" % (victim, code, body))
        doc = api.wait_state(victim, ("cancelled",), 30)
        check(doc.get("state") == "cancelled", "%s cancelled (%s)" % (victim, doc.get("state")))
        st = {d["irn"]: d.get("status") for d in registered(sim)}
        check(st.get(final[victim]["authority_ref"]) == "CANCELLED" and
              list(st.values()).count("CANCELLED") == 1,
              "EIMS holds exactly that document as CANCELLED")

        # Tokens revoked: 401, the host logs in again.
        logins = chain(sim).get("logins", 0)
        sim.call("POST", "/_sim/control", {"revoke_tokens": "true"})
        check(api.submit(invoice("et-e2e-revoked"))[0] == 202, "an invoice after revocation")
        doc = api.wait_state("et-e2e-revoked", final_states(), 30)
        check(doc.get("state") == "approved" and chain(sim).get("logins", 0) > logins,
              "after a 401 the host logs in again and the invoice is approved (%s, logins %s "
              "-> %s)" % (doc.get("state"), logins, chain(sim).get("logins")))

        # EIMS ahead of the gateway: a document registered outside it.
        last = chain(sim)
        n_out = last.get("last", 0) + 1
        outside = invoice("et-e2e-outside")
        src = os.path.join(tmp, "outside.json")
        with open(src, "w") as f:
            json.dump(outside, f)
        outdir = os.path.join(tmp, "outside")
        r = ewtpctl(env.conf, "translate", "--tenant", "et", "--unsigned", "--chain",
                    "%d:%s" % (n_out, last.get("last_irn")), "--out", outdir, src)
        docs = glob.glob(os.path.join(outdir, "ET-*.json"))
        check(r.returncode == 0 and docs, "ewtpctl translate --chain %d:IRN (%s%s)" %
              (n_out, r.stdout[-300:], r.stderr[-300:]))
        base = "http://127.0.0.1:%d" % env.sim_port
        st, ans = http_json("POST", base + "/auth/login", LOGIN)
        tok = ((ans or {}).get("data") or {}).get("accessToken")
        with open(docs[0], "rb") as f:
            payload = json.load(f)
        check(payload.get("DocumentDetails", {}).get("DocumentNumber") == str(n_out) and
              payload.get("ReferenceDetails", {}).get("PreviousIrn") == last.get("last_irn"),
              "the offline translation carries --chain's number and previous IRN")
        st, ans = http_json("POST", base + "/v1/register", payload, token=tok)
        check(st == 200, "document %d registered outside the gateway (%s %s)" %
              (n_out, st, (ans or {}).get("message")))
        check(api.submit(invoice("et-e2e-oos"))[0] == 202, "the gateway's next invoice accepted")
        oos = api.wait_state("et-e2e-oos", ("dead", "rejected", "approved"), 30)
        msgs = " ".join(r.get("message") or "" for r in oos.get("receipts", []))
        check(oos.get("state") == "dead" and "expects %d" % (n_out + 1) in msgs,
              "EIMS's out-of-sequence answer (expected %d) blocks the key: dead (%s: %s)" %
              (n_out + 1, oos.get("state"), msgs[:300]))
        check(api.submit(invoice("et-e2e-held"))[0] == 202, "a later invoice accepted")
        time.sleep(1.0)  # 20 dispatcher scans: it would have been sent by now
        held = api.status("et-e2e-held")[1]
        check(held.get("state") == "accepted" and held.get("attempts") == 0,
              "the later invoice is held while the key is blocked (%s, %s attempts)" %
              (held.get("state"), held.get("attempts")))
        after = chain(sim)
        r = ewtpctl(env.conf, "chain", "set", KEY, str(n_out + 1), after.get("last_irn"))
        check(r.returncode == 0, "ewtpctl chain set %s %d IRN (%s%s)" %
              (KEY, n_out + 1, r.stdout, r.stderr))
        r = ewtpctl(env.conf, "replay", "et-e2e-oos", "--tenant", "et")
        check(r.returncode == 0, "ewtpctl replay et-e2e-oos (%s%s)" % (r.stdout, r.stderr))
        final = wait_messages([(api, m) for m in ("et-e2e-oos", "et-e2e-held")], final_states(),
                              30)
        check(all(final.get(m, {}).get("state") == "approved"
                  for m in ("et-e2e-oos", "et-e2e-held")),
              "after the repair both are approved (%s)" %
              [final.get(m, {}).get("state") for m in ("et-e2e-oos", "et-e2e-held")])
        reg = registered(sim)
        check([d.get("number") for d in reg] == list(range(1, n_out + 3)) and
              reg[-2].get("irn") == final.get("et-e2e-oos", {}).get("authority_ref") and
              reg[-1].get("previous") == reg[-2].get("irn"),
              "EIMS holds 1..%d without a gap, the replayed invoice as %d" % (n_out + 2,
                                                                            n_out + 1))
    finally:
        ok = env.stop()
        check(ok, "ewtpd and the simulator stopped cleanly, no sanitizer report")
        keep_tmp_if_failed(tmp, [("ewtpd", env.daemon_log), ("simulator", env.sim_log)])


if __name__ == "__main__":
    checks.run(main)
