"""Malaysia end to end: the real ewtpd (real SQLite) against the real MyInvois simulator
(`ewtp-sim --country my`) on loopback, the plugin signing with an RSA test key made by openssl.

- 250 invoices through POST /v1/messages: the dispatcher batches them per the plugin's limits
  (at most 100 documents per submission), the simulator checks the UBL 2.1 XSD, documentHash
  and the signature (digests + RSA value) and validates them; all reach `approved` (Valid).
- an invoice whose buyer TIN the simulator treats as unregistered reaches `rejected` with the
  simulator's code and text.
- a cancel inside the 72 h window: POST /v1/messages/{id}/cancel -> 202, then `cancelled`.
- an intermediary instance: its token request carries `onbehalfof` (auth.onbehalfof), and one
  token per instance is fetched and reused.
Prints the counts; ends with "N passed, M failed"; exit 0 only when nothing failed."""
import concurrent.futures
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, check, checks, free_port, http_json, make_tmp,  # noqa: E402
                          openssl, print_logs, read_log, remove_tmp, sanitizer_env,
                          sanitizer_report, spawn_ewtpd, spawn_sim, wait_exit, wait_port,
                          write_ewtpd_config, write_token)

N = 250
SELLER_TIN, SELLER_BRN = "C25845632020", "201901234567"
BAD_BUYER_TIN = "C99999999990"


def invoice(mid, number, buyer_tin="C20876543210"):
    with open(os.path.join(SRC, "plugins/my/vectors/invoice-xml/input.json")) as f:
        m = json.load(f)
    # Issued a minute ago: MyInvois takes documents issued within the last 72 hours.
    issued = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    m["id"] = mid
    m["created_at"] = issued
    m["invoice"]["number"] = number
    m["invoice"]["issued_at"] = issued
    for p in m["parties"]["buyer"]["ids"]:
        if p["scheme"] == "TIN":
            p["value"] = buyer_tin
    return m


def credit_note(mid, number, original, buyer_tin):
    """The credit-note vector as a note of `original`, issued now, with no ext.my.original_uuid
    (the gateway is to find the original's LHDN UUID itself)."""
    with open(os.path.join(SRC, "plugins/my/vectors/credit-note/input.json")) as f:
        m = json.load(f)
    issued = (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    m["id"] = mid
    m["created_at"] = issued
    m["invoice"]["number"] = number
    m["invoice"]["issued_at"] = issued
    m["invoice"]["original_invoice"] = original
    m["ext"]["my"].pop("original_uuid", None)
    for p in m["parties"]["buyer"]["ids"]:
        if p["scheme"] == "TIN":
            p["value"] = buyer_tin
    return m


def config(tmp, api_port, sim_port):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            os.path.join(tmp, "my.key"), "-out", os.path.join(tmp, "my.crt"), "-days", "30",
            "-set_serial", "4660", "-subj",
            "/C=MY/O=Kedai Contoh Sdn Bhd/organizationIdentifier=%s/serialNumber=%s"
            "/CN=Kedai Contoh e-Invoice" % (SELLER_TIN, SELLER_BRN))
    write_token(tmp, "t1.token", "t1-token")
    write_token(tmp, "t2.token", "t2-token")
    write_token(tmp, "myinvois.secret", "s3cret-of-the-erp")
    sim = "http://127.0.0.1:%d" % sim_port
    conf = """tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "MY" ]; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "MY" ]; }
);
delivery = { max_attempts = 5; max_age_ms = 600000; base_delay_ms = 100; max_delay_ms = 1000;
  request_timeout_ms = 20000; lease_ms = 60000; poll_interval_ms = 300; scan_interval_ms = 50;
  workers = 2; };
keys = ( { name = "my-sign"; key = "my.key"; cert = "my.crt"; } );
plugins = (
  { name = "my-kl"; plugin = "my";
    settings = { taxpayer_tin = "%(tin)s"; sign_key = "my-sign"; };
    endpoint = "%(sim)s";
    auth = { kind = "oauth2"; token_url = "%(sim)s/connect/token"; client_id = "ewtp-hub";
             secret_file = "myinvois.secret"; scope = "InvoicingAPI"; }; },
  { name = "my-agent"; plugin = "my";
    settings = { intermediary = true; sign_key = "my-sign"; };
    endpoint = "%(sim)s";
    auth = { kind = "oauth2"; token_url = "%(sim)s/connect/token"; client_id = "ewtp-hub";
             secret_file = "myinvois.secret"; scope = "InvoicingAPI";
             onbehalfof = "%(tin)s:%(brn)s"; }; }
);
routes = (
  { tenant = "t1"; destination = "MY"; instance = "my-kl"; },
  { tenant = "t2"; destination = "MY"; instance = "my-agent"; }
);
""" % {"sim": sim, "tin": SELLER_TIN, "brn": SELLER_BRN}
    return write_ewtpd_config(tmp, api_port, conf)


def main():
    tmp = make_tmp("ewtp-my-e2e-")
    sim_port, api_port = free_port(), free_port()
    env = sanitizer_env()
    sim = spawn_sim("my", os.path.join(tmp, "sim.log"), listen="127.0.0.1:%d" % sim_port,
                    settings=[("client_id", "ewtp-hub"), ("client_secret", "s3cret-of-the-erp"),
                              ("taxpayer_tin", SELLER_TIN), ("invalid_buyer_tin", BAD_BUYER_TIN),
                              ("validation_delay_ms", 200)], env=env)
    conf = config(tmp, api_port, sim_port)
    proc = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=env)
    t1 = Api(api_port, "t1-token", timeout=20)
    t2 = Api(api_port, "t2-token", timeout=20)
    simurl = "http://127.0.0.1:%d" % sim_port
    try:
        check(wait_port(sim_port, sim, 30), "ewtp-sim --country my listens")
        check(wait_port(api_port, proc, 30), "ewtpd listens")
        if checks.failed:
            return

        # 1. 250 invoices, posted concurrently so that batches fill up.
        ids = ["my-%03d" % i for i in range(N)]
        t0 = time.time()

        def post(i):
            return t1.submit(invoice(ids[i], "INV-E2E-%03d" % i))[0]

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(post, range(N)))
        check(codes.count(202) == N, "%d invoices accepted with 202 (%d)" % (N, codes.count(202)))
        last = t1.wait_states(ids, ("approved", "rejected", "dead"), 180)
        states = [(last.get(m) or {}).get("state") for m in ids]
        approved = states.count("approved")
        print("  %d approved, %d rejected, %d other in %.1f s" %
              (approved, states.count("rejected"), N - approved - states.count("rejected"),
               time.time() - t0))
        check(approved == N, "all %d invoices approved (Valid)" % N)
        bad = [(m, last.get(m)) for m in ids if (last.get(m) or {}).get("state") != "approved"]
        if bad:
            print("  first not approved:", json.dumps(bad[0])[:1500])
        one = last.get(ids[0]) or {}
        check(isinstance(one.get("authority_ref"), str) and len(one["authority_ref"]) == 26,
              "the LHDN document UUID is the authority reference (%s)" % one.get("authority_ref"))
        code, stats = http_json("GET", simurl + "/sim/stats", timeout=20)
        sizes = stats.get("submission_sizes", []) if isinstance(stats, dict) else []
        print("  simulator: submissions %s, tokens issued %s, documents %s" %
              (sizes, stats.get("tokens_issued"), stats.get("documents")))
        check(len(sizes) >= 3 and max(sizes) <= 100 and sum(sizes) == N,
              "250 documents in >= 3 submissions of <= 100 each (%s)" % sizes)
        check(stats.get("Valid") == N and stats.get("rejected_at_submission") == 0,
              "the simulator found every document Valid (XSD, hash, signature)")
        check(stats.get("tokens_issued") == 1,
              "one token fetched for the instance and reused (%s)" % stats.get("tokens_issued"))

        # 2. An invoice the simulator finds Invalid (Step04: buyer TIN not registered).
        code, _ = t1.submit(invoice("my-bad", "INV-E2E-BAD", BAD_BUYER_TIN))
        check(code == 202, "the invalid invoice is accepted by the gateway (%s)" % code)
        st = t1.wait_states(["my-bad"], ("rejected", "approved", "dead"), 30)["my-bad"]
        rc = (st.get("receipts") or [{}])[-1] if isinstance(st, dict) else {}
        check(st.get("state") == "rejected", "my-bad rejected (%s)" % st.get("state"))
        check("CF410" in (rc.get("code") or "") and "Taxpayer Validator" in (rc.get("message") or "")
              and "not registered" in (rc.get("message") or ""),
              "its receipt has the simulator's code and text (%s: %s)" % (rc.get("code"), rc.get("message")))
        print("  rejected: %s %s" % (rc.get("code"), rc.get("message")))

        # 3. Cancel inside the window.
        code, body = t1.call("POST", "/v1/messages/%s/cancel" % ids[7],
                             {"reason": "wrong buyer address"})
        check(code == 202, "cancel -> 202 (%s %s)" % (code, body))
        st = t1.wait_states([ids[7]], ("cancelled",), 30)[ids[7]]
        check(st.get("state") == "cancelled", "%s cancelled (%s)" % (ids[7], st.get("state")))
        code, det = http_json("GET", simurl + "/api/v1.0/documents/%s/details"
                              % one.get("authority_ref"), timeout=20)
        check(code == 401, "the simulator's API wants a token (%s)" % code)
        # A second cancel: the document is Cancelled now, so MyInvois refuses (IncorrectState).
        code, body = t1.call("POST", "/v1/messages/%s/cancel" % ids[7], {"reason": "again"})
        check(code == 409, "cancel of a cancelled message -> 409 (%s)" % code)

        # 4. Intermediary: onbehalfof on the token request, one token for that instance.
        agent = ["my-agent-%d" % i for i in range(3)]
        for i, mid in enumerate(agent):
            t2.submit(invoice(mid, "INV-AGENT-%d" % i))
        last = t2.wait_states(agent, ("approved", "rejected", "dead"), 60)
        check(all((last.get(m) or {}).get("state") == "approved" for m in agent),
              "intermediary invoices approved (%s)" % [(last.get(m) or {}).get("state") for m in agent])
        code, stats = http_json("GET", simurl + "/sim/stats", timeout=20)
        obo = [t.get("onbehalfof") for t in stats.get("tokens", [])]
        check(obo == [None, "%s:%s" % (SELLER_TIN, SELLER_BRN)],
              "token requests: taxpayer without, intermediary with onbehalfof (%s)" % obo)
        print("  simulator totals: Valid %s, Invalid %s, Cancelled %s, submissions %s" %
              (stats.get("Valid"), stats.get("Invalid"), stats.get("Cancelled"),
               stats.get("submissions")))

        # 5. One document over MyInvois' 300 KB in a batch: only it is refused (the batch is
        #    halved until it is alone), the others of its batch are approved.
        big = invoice("my-big", "INV-E2E-BIG")
        line = big["invoice"]["lines"][0]
        lines = []
        for i in range(700):
            ln = dict(line, line=i + 1, quantity="1", unit_price="1.00", amount="1.00",
                      description="Spare part number %04d for the laptop peripherals" % i,
                      taxes=[{"type": "SST", "category": "01", "rate": "10", "amount": "0.10"}])
            lines.append(ln)
        big["invoice"]["lines"] = lines
        big["invoice"]["totals"] = {"net": "700.00", "tax": "70.00", "gross": "770.00",
                                    "payable": "770.00"}
        small = ["my-small-%d" % i for i in range(4)]
        msgs = [invoice(m, "INV-E2E-SMALL-%d" % i) for i, m in enumerate(small)] + [big]
        with concurrent.futures.ThreadPoolExecutor(5) as ex:
            codes = list(ex.map(lambda m: t1.submit(m)[0],
                                msgs))
        check(codes == [202] * 5, "4 invoices and a 700-line one accepted (%s)" % codes)
        last = t1.wait_states(small + ["my-big"], ("approved", "rejected", "dead"), 60)
        st = last.get("my-big") or {}
        errs = st.get("errors") or []
        check(st.get("state") == "rejected" and any(e.get("code") == "size" for e in errs),
              "the 700-line invoice is rejected for its size (%s %s)" %
              (st.get("state"), json.dumps(errs)[:300]))
        check(all((last.get(m) or {}).get("state") == "approved" for m in small),
              "the others of its batch are approved (%s)" %
              [(last.get(m) or {}).get("state") for m in small])

        # 6. An invoice and its credit note posted together (issue 11.2): the note waits for
        #    its original to be Valid and goes out with its LHDN UUID; a note whose original
        #    is found Invalid is refused with that cause and never sent.
        pairs = (("my-orig-ok", "INV-E2E-ORIG", "my-note-ok", "CN-E2E-1", "C20876543210"),
                 ("my-orig-bad", "INV-E2E-ORIG-BAD", "my-note-bad", "CN-E2E-2", BAD_BUYER_TIN))
        for oid, onum, nid, nnum, buyer in pairs:
            code_o, _ = t1.submit(invoice(oid, onum, buyer))
            code_n, body = t1.submit(credit_note(nid, nnum, onum, buyer))
            check(code_o == 202 and code_n == 202,
                  "%s and its credit note %s accepted together (%s %s %s)" %
                  (oid, nid, code_o, code_n, body))
        ids6 = [x for p in pairs for x in (p[0], p[2])]
        last = t1.wait_states(ids6, ("approved", "rejected", "dead"), 60)
        st = {m: (last.get(m) or {}).get("state") for m in ids6}
        check(st == {"my-orig-ok": "approved", "my-note-ok": "approved",
                     "my-orig-bad": "rejected", "my-note-bad": "rejected"},
              "original Valid -> note approved; original Invalid -> note rejected (%s)" % st)
        note_bad = last.get("my-note-bad") or {}
        rc = (note_bad.get("receipts") or [{}])[-1]
        check(rc.get("code") == "dependency_failed" and "INV-E2E-ORIG-BAD" in
              (rc.get("message") or ""),
              "the refused note says why (%s: %s)" % (rc.get("code"), rc.get("message")))
        ev = t1.call("GET", "/v1/messages/my-note-bad/events")[1].get("events", [])
        check(not any(e.get("type") == "outcome" and (e.get("detail") or {}).get("http_status")
                      for e in ev),
              "the refused note was never sent to MyInvois")
        code, stats = http_json("GET", simurl + "/sim/stats", timeout=20)
        check(stats.get("CF501", 0) == 0 if isinstance(stats, dict) else False,
              "MyInvois never saw an unknown reference (CF501: %s)" %
              (stats.get("CF501") if isinstance(stats, dict) else stats))
    finally:
        for p in (proc, sim):
            p.terminate()
        for p, name in ((proc, "ewtpd"), (sim, "ewtp-sim")):
            rc = wait_exit(p, 20)
            text = read_log(p.log_path)
            check(rc == 0 and not sanitizer_report(text), "%s exits cleanly (rc %s)" % (name, rc))
            if name == "ewtpd":
                check("sent as 2 smaller batches" in text,
                      "ewtpd split the batch with the oversized invoice")
            if rc != 0 or checks.failed:
                print_logs([(name + " log", p.log_path)], 4000)
        remove_tmp(tmp, keep=bool(checks.failed))


if __name__ == "__main__":
    main()
    sys.exit(checks.summary())
