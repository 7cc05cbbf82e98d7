"""Belgium end to end: the real ewtpd (real SQLite) and real `ewtp-sim --country be` simulators
on loopback, the simulators' IDMS decisions arriving as call-backs on POST /v1/inbound/<instance>.

Three tenants, each routed to its own be instance; two simulators (a simulator has one
call-back URL, as the EONGW has one per declarant EORI):
  dev    -> be-e2e    plugin defaults (split check = warning), Peppol by the AP's HTTP API
  lax    -> be-lax    h7.threshold_eur and the excise list relaxed, so that over-150 and wine
                      consignments reach the simulator and IDMS's own rules refuse them
  strict -> be-strict h7.split_check = "error"; everything it gets is refused before sending
                      (its endpoint is the lax simulator, never reached).
Checked:
  - every valid H7 vector of plugins/be/vectors ends `approved` with an MRN (18 characters,
    ISO 6346 check digit) as authority_ref, receipts IE928 -> IE428 -> IE429;
  - every invalid vector is refused with 422 and the pointers of its errors.json;
  - splitting: a warning (/parties/consignee) kept in the 202's status; an error (422) with
    h7.split_check = "error";
  - through the simulator: not released -> `rejected` IE451/CTRL (the reason code kept); FRCT -> IE416/FRCT; over EUR 150
    -> IE906/H7-150 at /declaration/lines/0/amount; wine -> IE906/H7-EXCISE at .../hs_code;
  - /v1/inbound/<instance>: 401 without or with a wrong token, 400 junk, 404 unknown LRN;
  - Peppol through the access point stub's HTTP API (the official artefacts of validate.sh):
    it answers 202 at once with its id and sends its MLS receipt by call-back after validating;
    a valid invoice ends `approved` (AP reference, receipt AP), an invoice that only the
    official schematron catches `rejected` RE/BV with its BR code in the message;
  - a burst of 20 invoices posted at once (one invalid): all final, none dead, none retried.
Ends with "N passed, M failed"; exit 1 on any failure."""
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (EWTPD, SIM, SRC, Api, check, check_config, checks,  # noqa: E402
                          free_port, http_json, load_json, make_tmp, print_logs, read_log,
                          remove_tmp, sanitizer_env, sanitizer_report, spawn_ewtpd, spawn_sim,
                          stop, wait_port, wait_port_file, write_ewtpd_config, write_token)

VEC = os.path.join(SRC, "plugins/be/vectors")
EONGW_TOKEN = "eongw-secret"
MRN_RE = re.compile(r"[0-9]{2}BE[0-9A-Z]{12}R[0-9]")


def mrn_ok(mrn):
    """18 characters, BE, R (H7), ISO 6346 check digit (computed here, not by the simulator)."""
    if not isinstance(mrn, str) or not MRN_RE.fullmatch(mrn):
        return False
    values, v = {}, 10
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        values[c] = v
        v += 1
    total = sum((values[c] if c.isalpha() else int(c)) * (2 ** i) for i, c in enumerate(mrn[:17]))
    return str(total % 11 % 10) == mrn[17]


def config(tmp, api_port, sims):
    for t in ("dev", "strict", "lax"):
        write_token(tmp, t + ".token", t + "-token")
    write_token(tmp, "eongw.token", EONGW_TOKEN)
    for name in sims:
        write_token(tmp, "%s.inbound" % name, "inbound-%s" % name)
    conf = """tenants = (
  { id = "dev"; token_file = "dev.token"; destinations = [ "BE" ]; },
  { id = "strict"; token_file = "strict.token"; destinations = [ "BE" ]; },
  { id = "lax"; token_file = "lax.token"; destinations = [ "BE" ]; }
);
delivery = { max_attempts = 4; max_age_ms = 600000; base_delay_ms = 100; max_delay_ms = 500;
  request_timeout_ms = 30000; lease_ms = 60000; poll_interval_ms = 500; scan_interval_ms = 50;
  workers = 2; };
plugins = (
  { name = "be-e2e"; plugin = "be"; transport = "https"; endpoint = "%(be-e2e)s";
    inbound_token_file = "be-e2e.inbound";
    settings = { h7 = { token_file = "eongw.token"; exchange_rates = { CNY = "0.13"; }; };
                 peppol = { delivery = "http"; token_file = "eongw.token"; }; }; },
  { name = "be-strict"; plugin = "be"; transport = "https"; endpoint = "%(be-lax)s";
    settings = { h7 = { token_file = "eongw.token"; split_check = "error"; }; }; },
  { name = "be-lax"; plugin = "be"; transport = "https"; endpoint = "%(be-lax)s";
    inbound_token_file = "be-lax.inbound";
    settings = { h7 = { token_file = "eongw.token"; threshold_eur = "100000.00";
                        excise_hs_prefixes = [ "99" ]; }; }; }
);
routes = (
  { tenant = "dev"; destination = "BE"; kinds = [ "declaration", "invoice" ]; instance = "be-e2e"; },
  { tenant = "strict"; destination = "BE"; kinds = [ "declaration" ]; instance = "be-strict"; },
  { tenant = "lax"; destination = "BE"; kinds = [ "declaration" ]; instance = "be-lax"; }
);
""" % {k: "http://127.0.0.1:%d" % v["port"] for k, v in sims.items()}
    return write_ewtpd_config(tmp, api_port, conf)


def pointers(errors):
    return sorted((e.get("pointer"), e.get("code")) for e in errors or [])


def receipt_codes(st):
    return [r.get("code") for r in (st or {}).get("receipts", [])]


def approved_with_mrn(api, mid, what):
    st = api.wait_state(mid, ["approved", "rejected", "dead"], 30)
    state = (st or {}).get("state")
    ref = (st or {}).get("authority_ref")
    check(state == "approved" and mrn_ok(ref),
          "%s: approved with an MRN as authority_ref (%s, %s)" % (what, state, ref))
    codes = receipt_codes(st)
    check([c for c in codes if c in ("IE928", "IE428", "IE429")] == ["IE928", "IE428", "IE429"],
          "%s: receipts IE928 -> IE428 -> IE429 (%s)" % (what, codes))
    return st


def rejected_with(api, mid, code, pointer, what):
    st = api.wait_state(mid, ["approved", "rejected", "dead"], 30)
    state = (st or {}).get("state")
    codes = receipt_codes(st)
    errs = (st or {}).get("errors") or []
    ok = state == "rejected" and codes and codes[-1] == code
    if pointer:
        ok = ok and any(e.get("pointer") == pointer for e in errs)
    check(ok, "%s: rejected %s%s (%s, %s, %s)" % (what, code, " at " + pointer if pointer else "",
                                                  state, codes, pointers(errs)))
    return st


def main():
    for exe in (EWTPD, SIM):
        if not os.access(exe, os.X_OK):
            check(False, "missing %s" % exe)
            sys.exit(checks.summary())
    tmp = make_tmp("ewtp-be-e2e-")
    env = sanitizer_env()
    api_port = free_port()
    sims = {}
    logs = []  # (what, log path)
    proc = None
    try:
        for name in ("be-e2e", "be-lax"):
            pf = os.path.join(tmp, name + ".port")
            p = spawn_sim("be", os.path.join(tmp, name + "-sim.log"), port_file=pf, env=env,
                          settings=[("token", EONGW_TOKEN),
                                    ("callback_url", "http://127.0.0.1:%d/v1/inbound/%s"
                                     % (api_port, name)),
                                    ("callback_token", "inbound-" + name),
                                    ("decision_delay_ms", 100)])
            logs.append((name + " simulator", p.log_path))
            sims[name] = {"proc": p, "port_file": pf}
        for name, s in sims.items():
            s["port"] = wait_port_file(s["port_file"], s["proc"], 20)
        conf = config(tmp, api_port, sims)
        r = check_config(conf, env=env)
        check(r.returncode == 0, "ewtpd -t accepts the configuration (%s)" % (r.stdout + r.stderr).strip())
        proc = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=env)
        logs.append(("ewtpd", proc.log_path))
        if not wait_port(api_port, proc, 30):
            check(False, "ewtpd listens")
            return
        api = {t: Api(api_port, t + "-token", timeout=30) for t in ("dev", "lax", "strict")}
        inbound = Api(api_port, timeout=30)

        # ---- inbound authentication and junk -------------------------------------------------
        ie429 = ('<h7:IE429 xmlns:h7="urn:ewtp:be:idms-h7:1"><h7:LRN>nobody-here</h7:LRN>'
                 '<h7:MRN>26BE000000000099R5</h7:MRN></h7:IE429>').encode()
        code, _ = inbound.call("POST", "/v1/inbound/be-e2e", ie429, ctype="application/xml")
        check(code == 401, "inbound without token: 401 (%s)" % code)
        code, _ = inbound.call("POST", "/v1/inbound/be-e2e", ie429, ctype="application/xml",
                               token="inbound-be-lax")
        check(code == 401, "inbound with another instance's token: 401 (%s)" % code)
        code, _ = inbound.call("POST", "/v1/inbound/be-e2e", b"not xml", ctype="application/xml",
                               token="inbound-be-e2e")
        check(code == 400, "inbound junk: 400 (%s)" % code)
        code, _ = inbound.call("POST", "/v1/inbound/be-e2e", ie429, ctype="application/xml",
                               token="inbound-be-e2e")
        check(code == 404, "inbound IE429 for an unknown LRN: 404 (%s)" % code)

        # ---- every valid H7 vector: approved with an MRN --------------------------------------
        # h7-basic first: nothing related yet, so no splitting warning.
        # h7-split-other-tenant's related declaration is another tenant's (a wrapper with its
        # tenant, for ewtpctl plugin check): the dev tenant cannot post it as such.
        h7 = sorted(d for d in os.listdir(VEC)
                    if d.startswith("h7-") and d != "h7-split-other-tenant")
        h7.remove("h7-basic")
        h7.insert(0, "h7-basic")
        for case in h7:
            d = os.path.join(VEC, case)
            rel = os.path.join(d, "related")
            for f in sorted(os.listdir(rel)) if os.path.isdir(rel) else []:
                code, body = api["dev"].submit(load_json(os.path.join(rel, f)))
                check(code == 202, "%s related %s: 202 (%s %s)" % (case, f, code, body))
            msg = load_json(os.path.join(d, "input.json"))
            code, body = api["dev"].submit(msg)
            check(code == 202 and body.get("state") == "accepted",
                  "%s: 202 accepted (%s %s)" % (case, code, body))
            if case == "h7-basic":
                _, st = api["dev"].status(msg["id"])
                check(st.get("errors") == [], "h7-basic: no warnings (%s)" % st.get("errors"))
            if case == "h7-split-warning":
                _, st = api["dev"].status(msg["id"])
                warn = [e for e in st.get("errors", []) if e.get("pointer") == "/parties/consignee"]
                check(len(warn) == 1 and warn[0].get("code") == "rule"
                      and warn[0].get("severity", "warning") == "warning",
                      "h7-split-warning: the splitting warning is kept in the status (%s)"
                      % st.get("errors"))
        for case in h7:
            mid = load_json(os.path.join(VEC, case, "input.json"))["id"]
            approved_with_mrn(api["dev"], mid, case)
        st = approved_with_mrn(api["dev"], "be-h7-0008", "h7-split-warning related be-h7-0008")

        # ---- not released after control: IE428 (MRN) then IE451 -> rejected ------------------
        msg = load_json(os.path.join(VEC, "h7-basic", "input.json"))
        msg["id"] = "be-h7-notrel-1"
        code, _ = api["dev"].submit(msg)
        check(code == 202, "not-released case: 202 (%s)" % code)
        st = rejected_with(api["dev"], "be-h7-notrel-1", "IE451/CTRL", None, "not released")
        check("physical control" in ((st or {}).get("receipts") or [{}])[-1].get("message", ""),
              "not released: the reason is kept in the receipt (%s)"
              % ((st or {}).get("receipts") or [{}])[-1])
        check(mrn_ok((st or {}).get("authority_ref")) and "IE428" in receipt_codes(st),
              "not released: MRN kept as authority_ref (%s)" % (st or {}).get("authority_ref"))

        # ---- invalid vectors: 422 with the pointers of errors.json ----------------------------
        for case in sorted(d for d in os.listdir(VEC) if d.startswith("invalid-")):
            if case == "invalid-h7-split-error":
                continue  # needs h7.split_check = "error": the strict tenant below
            d = os.path.join(VEC, case)
            want = pointers(load_json(os.path.join(d, "errors.json"))["errors"])
            msg = load_json(os.path.join(d, "input.json"))
            code, body = api["dev"].submit(msg)
            got = pointers(body.get("errors") if isinstance(body, dict) else None)
            check(code == 422 and all(w in got for w in want),
                  "%s: 422 with %s (%s %s)" % (case, want, code, got))
            code, _ = api["dev"].status(msg["id"])
            check(code == 404, "%s: nothing stored (%s)" % (case, code))

        # ---- splitting as an error (strict instance) ------------------------------------------
        # Only the tenant's own declarations count (issue 19: another tenant's values would
        # leak through the fact; plugins/be/vectors/h7-split-other-tenant): the dev tenant's
        # be-h7-0008 above does not count, the strict tenant's own copy of it does.
        d = os.path.join(VEC, "invalid-h7-split-error")
        own = load_json(os.path.join(d, "related", "be-h7-0008.json"))
        own["id"] = "be-h7-0008-strict"
        code, body = api["strict"].submit(own)
        check(code == 202, "strict: its own related declaration: 202 (%s %s)" % (code, body))
        code, body = api["strict"].submit(load_json(os.path.join(d, "input.json")))
        got = pointers(body.get("errors") if isinstance(body, dict) else None)
        check(code == 422 and ("/parties/consignee", "rule") in got,
              "invalid-h7-split-error: 422 at /parties/consignee (%s %s)" % (code, got))

        # ---- IDMS's own refusals through the simulator (lax instance) -------------------------
        for case, mid, code_, ptr in (
                ("invalid-h7-over-150", None, "IE906/H7-150", "/declaration/lines/0/amount"),
                ("invalid-h7-excise-wine", None, "IE906/H7-EXCISE", "/declaration/lines/0/hs_code"),
                ("h7-basic", "be-h7-frct-1", "IE416/FRCT", None)):
            msg = load_json(os.path.join(VEC, case, "input.json"))
            if mid:
                msg["id"] = mid
            code, body = api["lax"].submit(msg)
            check(code == 202, "lax %s: 202, the plugin lets it through (%s %s)" % (msg["id"], code, body))
            rejected_with(api["lax"], msg["id"], code_, ptr, "lax %s" % msg["id"])

        # ---- Peppol through the access point's HTTP API (two Java runs) -----------------------
        inv = load_json(os.path.join(VEC, "invoice-http-access-point", "input.json"))
        code, _ = api["dev"].submit(inv)
        check(code == 202, "invoice %s: 202 (%s)" % (inv["id"], code))
        broken = load_json(os.path.join(VEC, "invoice-http-access-point", "input.json"))
        broken["id"] = "be-inv-pm-99"
        broken["invoice"]["number"] = "BE-INV-9999"
        # A payment means code outside UNCL 4461: neither the common message (any string) nor
        # the plugin checks it, the official schematron does (BR-CL-16), so only the access
        # point can refuse it. (An EAS scheme outside the code list, BR-CL-25, is now refused
        # by validate: vector invalid-invoice-eas-unknown.)
        broken["invoice"]["payment_means"] = {"code": "99"}
        code, _ = api["dev"].submit(broken)
        check(code == 202, "invoice %s: 202 (%s)" % (broken["id"], code))
        # The access point answers 202 at once and decides after: its MLS receipt comes back by
        # call-back, naming the id it answered with (the message's authority_ref).
        st = api["dev"].wait_state(inv["id"], ["approved", "rejected", "dead"], 90)
        check((st or {}).get("state") == "approved"
              and str((st or {}).get("authority_ref", "")).startswith("AP-")
              and receipt_codes(st)[-1:] == ["AP"],
              "invoice %s: taken by the access point (AP- reference), approved by its MLS "
              "receipt (%s, %s, %s)" % (inv["id"], (st or {}).get("state"),
                                         (st or {}).get("authority_ref"), receipt_codes(st)))
        st = api["dev"].wait_state(broken["id"], ["approved", "rejected", "dead"], 90)
        last = ((st or {}).get("receipts") or [{}])[-1]
        check((st or {}).get("state") == "rejected" and receipt_codes(st)[-1:] == ["RE/BV"]
              and "BR-CL-16" in (last.get("message") or ""),
              "invoice %s: rejected by the access point's MLS receipt, BR-CL-16 (%s, %s, %s)"
              % (broken["id"], (st or {}).get("state"), receipt_codes(st), last.get("message")))

        # ---- a burst: 20 invoices posted at once, one of them invalid -------------------------
        # Issue 11 point 3: the stub used to validate inside the request (a JVM per invoice), so
        # a burst timed out, was retried and went dead. Every one must reach a final state.
        burst = []
        for i in range(20):
            m = load_json(os.path.join(VEC, "invoice-http-access-point", "input.json"))
            m["id"] = "be-inv-burst-%02d" % i
            m["invoice"]["number"] = "BE-BURST-%02d" % i
            if i == 13:
                m["invoice"]["payment_means"] = {"code": "99"}
            burst.append(m)
        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(lambda m: api["dev"].submit(m)[0], burst))
        check(codes == [202] * 20, "burst: 20 invoices posted at once, 202 each (%s)" % codes)
        final = api["dev"].wait_states([m["id"] for m in burst], ["approved", "rejected", "dead"],
                                       180)
        states = {mid: (doc or {}).get("state") for mid, doc in final.items()}
        want = {m["id"]: "rejected" if m["id"] == "be-inv-burst-13" else "approved" for m in burst}
        check(states == want, "burst: 19 approved, the invalid one rejected, none dead (%s)"
              % {k: v for k, v in states.items() if v != want.get(k)})
        attempts = sorted({(doc or {}).get("attempts") for doc in final.values()})
        check(attempts == [1], "burst: each invoice sent once, no retries (attempts %s)" % attempts)

        # ---- the simulators delivered every call-back -----------------------------------------
        for name, s in sims.items():
            rec = http_json("GET", "http://127.0.0.1:%d/_sim/received" % s["port"])[1]
            cbs = rec.get("callbacks", {})
            # be-strict shares be-lax's simulator, whose call-backs go to be-lax's inbound URL:
            # the two of the strict tenant's own be-h7-0008-strict (IE928, IE428) find no
            # message there (404).
            foreign = 2 if name == "be-lax" else 0
            check(cbs.get("failed") == foreign and cbs.get("sent") == cbs.get("delivered", 0) + foreign,
                  "%s simulator: every call-back accepted by ewtpd (%s)" % (name, cbs))
    finally:
        if proc is not None and proc.poll() is None:
            rc = stop(proc, 30)
            check(rc == 0, "ewtpd exits 0 on SIGTERM (%s)" % rc)
        for s in sims.values():
            stop(s["proc"], 20)
        for what, path in logs:
            check(not sanitizer_report(read_log(path)), "no sanitizer reports from %s" % what)
        if checks.failed:
            print_logs(logs, 8000)
        remove_tmp(tmp, keep=bool(checks.failed))
        checks.summary()
    sys.exit(1 if checks.failed else 0)

if __name__ == "__main__":
    main()
