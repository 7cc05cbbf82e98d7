"""The Belgian simulator on its own (ctest be/simulator): build/bin/ewtp-sim --country be on a
free loopback port, its call-backs received by a small HTTP server of this script.

Checked: lodgement -> 202 IE928 (no MRN yet) -> call-backs IE428 (MRN with a valid ISO 6346
check digit) -> IE429, in that order, with the call-back token; the not-released path
(IE428 -> IE451), IE416 FRCT, IE906 H7-150 / H7-EXCISE / H7-CUR with the element in error;
400 IE906 H7-XSD on schema errors and on junk; 409 on a duplicate LRN; 401 without or with a
wrong token (and such a request does not count as lodged); 404/405; the access point stub
(well-formedness only here, 202 at once then an MLS receipt by call-back: the Java run is
covered by the conformance and e2e tests);
every notification the simulator sends validates against schema/be-h7.xsd (xmllint), so a
test of the plugin against the simulator tests against the schema, not against itself.
Ends with "N passed, M failed"; exit 1 on any failure."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "../../../tests/integration"))
from ewtp_harness import (SIM, SRC, PostRecorder, check, checks, http_call,  # noqa: E402
                          log_tail, make_tmp, read_log, remove_tmp, sanitizer_env,
                          sanitizer_report, spawn_sim, stop, wait_port_file, wait_until)

XSD = os.path.join(SRC, "plugins/be/schema/be-h7.xsd")
BASIC = os.path.join(SRC, "plugins/be/vectors/h7-basic/expected/BE-H7-be-h7-0001.xml")
TOKEN = "eongw-secret"
CB_TOKEN = "callback-secret"
NS = "urn:ewtp:be:idms-h7:1"


def for_lrn(cb, lrn):
    """The call-backs cb received about lrn: [(Authorization, body text)]."""
    got = [(h.get("authorization"), b.decode("utf-8", "replace")) for _, h, b in cb.posts()]
    return [(a, b) for a, b in got if "<h7:LRN>%s</h7:LRN>" % lrn in b]


def http(method, url, body=None, token=TOKEN, ctype="application/xml"):
    st, data, _ = http_call(method, url, body=body, token=token, ctype=ctype)
    return st, data.decode()


def mrn_check_digit(s):
    """ISO 6346: letters A=10 .. Z=38 skipping multiples of 11; weights 2^i; sum mod 11 mod 10."""
    values, v = {}, 10
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        values[c] = v
        v += 1
    total = sum((values[c] if c.isalpha() else int(c)) * (2 ** i) for i, c in enumerate(s))
    return str(total % 11 % 10)


def tag(body, name):
    m = re.search(r"<h7:%s>([^<]*)</h7:%s>" % (name, name), body)
    return m.group(1) if m else None


def root(body):
    m = re.search(r"<h7:(IE[0-9]{3})[ >]", body)
    return m.group(1) if m else None


def schema_valid(tmp, body):
    path = os.path.join(tmp, "n.xml")
    with open(path, "w") as f:
        f.write(body)
    r = subprocess.run(["xmllint", "--noout", "--nonet", "--schema", XSD, path],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0, r.stderr.strip()[-300:]


def declaration(lrn, amount=None, hs=None, currency=None):
    with open(BASIC) as f:
        x = f.read()
    x = x.replace("<h7:LRN>be-h7-0001</h7:LRN>", "<h7:LRN>%s</h7:LRN>" % lrn)
    if amount:
        x = x.replace('<h7:IntrinsicValue currency="EUR">24.00<',
                      '<h7:IntrinsicValue currency="EUR">%s<' % amount)
    if hs:
        x = x.replace(">610910<", ">%s<" % hs)
    if currency:
        x = x.replace('<h7:IntrinsicValue currency="EUR">13.00<',
                      '<h7:IntrinsicValue currency="%s">13.00<' % currency)
    return x


def wait_callbacks(cb, lrn, n, timeout=10):
    if wait_until(lambda: len(for_lrn(cb, lrn)) >= n, timeout, 0.02):
        time.sleep(0.2)  # anything more than expected would show up now
    return for_lrn(cb, lrn)


def main():
    if not os.access(SIM, os.X_OK) or shutil.which("xmllint") is None:
        print("FAIL needs %s and xmllint" % SIM)
        sys.exit(1)
    tmp = make_tmp("be-sim-test-")
    cb = PostRecorder().start()
    port_file = os.path.join(tmp, "port")
    sim = spawn_sim("be", os.path.join(tmp, "sim.log"), port_file=port_file, env=sanitizer_env(),
                    settings=[("token", TOKEN),
                              ("callback_url", "http://127.0.0.1:%d/v1/inbound/be" % cb.port),
                              ("callback_token", CB_TOKEN), ("decision_delay_ms", 50),
                              ("peppol_validate", "")])
    try:
        port = wait_port_file(port_file, sim, 20)
        if not port:
            check(False, "ewtp-sim --country be starts")
            return
        base = "http://127.0.0.1:%d" % port
        h7 = base + "/h7/declarations"

        # 1. released: 202 IE928 (no MRN yet), then IE428 with the MRN, then IE429.
        st, body = http("POST", h7, declaration("sim-ok-1"))
        check(st == 202 and root(body) == "IE928" and tag(body, "LRN") == "sim-ok-1",
              "lodgement answered 202 IE928 with the LRN (%s)" % st)
        check(tag(body, "MRN") is None, "IE928 carries no MRN yet")
        ok, why = schema_valid(tmp, body)
        check(ok, "IE928 validates against be-h7.xsd %s" % why)
        got = wait_callbacks(cb, "sim-ok-1", 2)
        kinds = [root(b) for _, b in got]
        check(kinds == ["IE428", "IE429"], "call-backs IE428 then IE429 (%s)" % kinds)
        check(all(a == "Bearer " + CB_TOKEN for a, _ in got), "call-backs carry the call-back token")
        mrns = [tag(b, "MRN") for _, b in got]
        mrn = mrns[0] if mrns else None
        check(mrn is not None and len(set(mrns)) == 1, "IE428 and IE429 name the same MRN (%s)" % mrns)
        check(mrn is not None and re.fullmatch(r"[0-9]{2}BE[0-9A-Z]{12}R[0-9]", mrn) is not None
              and mrn_check_digit(mrn[:17]) == mrn[17],
              "MRN is 18 characters, BE, R, ISO 6346 check digit (%s)" % mrn)
        for _, b in got:
            ok, why = schema_valid(tmp, b)
            check(ok, "%s validates against be-h7.xsd %s" % (root(b), why))

        # 2. duplicate LRN: 409, and no second decision.
        st, body = http("POST", h7, declaration("sim-ok-1"))
        check(st == 409 and "EONGW-409" in body, "same LRN again: 409 (%s)" % st)

        # 3. not released after control: IE428 then IE451 with its reason.
        st, _ = http("POST", h7, declaration("sim-notrel-1"))
        got = wait_callbacks(cb, "sim-notrel-1", 2)
        kinds = [root(b) for _, b in got]
        check(st == 202 and kinds == ["IE428", "IE451"], "not released: IE428 then IE451 (%s)" % kinds)
        check(len(got) == 2 and tag(got[1][1], "MRN") == tag(got[0][1], "MRN")
              and tag(got[1][1], "ErrorCode") == "CTRL", "IE451 has the MRN and code CTRL")

        # 4. refused for other reasons (FRCT account): IE416, no MRN.
        http("POST", h7, declaration("sim-frct-1"))
        got = wait_callbacks(cb, "sim-frct-1", 1)
        check([root(b) for _, b in got] == ["IE416"] and tag(got[0][1], "ErrorCode") == "FRCT"
              and tag(got[0][1], "MRN") is None, "FRCT: IE416 alone, no MRN")

        # 5. the simulator's own H7 rules, with the element in error.
        cases = [("sim-150-1", dict(amount="137.01"), "H7-150",
                  "Declaration/GoodsItem[1]/IntrinsicValue"),
                 ("sim-150-2", dict(amount="137.00"), None, None),  # exactly 150.00 passes
                 ("sim-exc-1", dict(hs="220421"), "H7-EXCISE",
                  "Declaration/GoodsItem[1]/HarmonizedSystemSubHeadingCode"),
                 ("sim-exc-2", dict(hs="240220"), "H7-EXCISE",
                  "Declaration/GoodsItem[1]/HarmonizedSystemSubHeadingCode"),
                 ("sim-cur-1", dict(currency="JPY"), "H7-CUR",
                  "Declaration/GoodsItem[2]/IntrinsicValue"),
                 ("sim-usd-1", dict(currency="USD"), None, None)]
        for lrn, kw, code, pointer in cases:
            st, _ = http("POST", h7, declaration(lrn, **kw))
            got = wait_callbacks(cb, lrn, 1 if code else 2)
            kinds = [root(b) for _, b in got]
            if code:
                check(st == 202 and kinds == ["IE906"] and tag(got[0][1], "ErrorCode") == code
                      and tag(got[0][1], "ErrorPointer") == pointer,
                      "%s: IE906 %s at %s (%s)" % (lrn, code, pointer, kinds))
                ok, why = schema_valid(tmp, got[0][1]) if got else (False, "none")
                check(ok, "%s IE906 validates against be-h7.xsd %s" % (lrn, why))
            else:
                check(st == 202 and kinds == ["IE428", "IE429"], "%s released (%s)" % (lrn, kinds))

        # 6. schema errors: 400 with IE906 H7-XSD, nothing lodged.
        bad = declaration("sim-xsd-1").replace("<h7:DeclarationType>IM</h7:DeclarationType>", "")
        st, body = http("POST", h7, bad)
        check(st == 400 and root(body) == "IE906" and tag(body, "ErrorCode") == "H7-XSD",
              "missing DeclarationType: 400 IE906 H7-XSD (%s)" % st)
        ok, why = schema_valid(tmp, body)
        check(ok, "the 400's IE906 validates against be-h7.xsd %s" % why)
        bad = declaration("sim-xsd-2").replace(">610910<", ">6109<")
        st, body = http("POST", h7, bad)
        check(st == 400 and tag(body, "ErrorCode") == "H7-XSD", "4-digit HS code: 400 H7-XSD (%s)" % st)
        st, body = http("POST", h7, "this is not XML")
        check(st == 400 and tag(body, "ErrorCode") == "H7-XSD", "junk body: 400 H7-XSD (%s)" % st)
        st, body = http("POST", h7, '<x:Other xmlns:x="urn:other"/>')
        check(st == 400, "foreign document: 400 (%s)" % st)
        time.sleep(0.3)
        check(for_lrn(cb, "sim-xsd-1") == [] and for_lrn(cb, "sim-xsd-2") == [],
              "no call-backs for refused documents")

        # 7. authentication: 401 without or with a wrong token; the LRN is not used up.
        st, body = http("POST", h7, declaration("sim-auth-1"), token=None)
        check(st == 401 and "EONGW-401" in body, "no token: 401 (%s)" % st)
        st, _ = http("POST", h7, declaration("sim-auth-1"), token="wrong")
        check(st == 401, "wrong token: 401 (%s)" % st)
        st, _ = http("POST", base + "/api/v1/outbound", "<Invoice/>", token=None)
        check(st == 401, "access point without token: 401 (%s)" % st)
        st, _ = http("POST", h7, declaration("sim-auth-1"))
        check(st == 202, "same LRN with the token afterwards: 202 (%s)" % st)

        # 8. other paths and methods.
        st, _ = http("GET", h7)
        check(st == 405, "GET /h7/declarations: 405 (%s)" % st)
        st, _ = http("POST", base + "/h7/other", "<x/>")
        check(st == 404, "unknown path: 404 (%s)" % st)

        # 9. access point stub (well-formedness only with peppol_validate empty).
        with open(os.path.join(SRC, "plugins/be/vectors/invoice-standard-21/expected",
                               "BE-invoice-be-inv-0001.xml")) as f:
            inv = f.read()
        st, body = http("POST", base + "/api/v1/outbound", inv)
        j = json.loads(body) if st == 202 else {}
        check(st == 202 and j.get("status") == "queued" and j.get("id", "").startswith("AP-"),
              "access point takes a well-formed invoice: 202 queued (%s %s)" % (st, body))
        ap_id = j.get("id")
        st, body = http("POST", base + "/api/v1/outbound", inv[: len(inv) // 2])
        check(st == 422 and "errors" in body, "access point refuses a truncated invoice: 422 (%s)" % st)
        # ... and decides after the answer: an MLS receipt (AP) naming its id, by call-back.
        def mls_for(ref):
            return [b.decode() for _, _, b in cb.posts()
                    if b"ApplicationResponse" in b and b"<cbc:ID>%s</cbc:ID>" % ref.encode() in b]
        wait_until(lambda: mls_for(ap_id or "?"), 10, 0.02)
        got = mls_for(ap_id or "?")
        check(len(got) == 1 and "<cbc:ResponseCode>AP</cbc:ResponseCode>" in got[0],
              "access point: MLS receipt AP for %s by call-back (%s)" % (ap_id, got))

        # 10. the simulator's own record: duplicates counted, call-backs all delivered.
        st, body = http("GET", base + "/_sim/received", token=None)
        rec = json.loads(body) if st == 200 else {}
        ids = rec.get("ids", {})
        check(ids.get("sim-ok-1", {}).get("count") == 2 and "sim-auth-1" in ids
              and ids["sim-auth-1"].get("count") == 1,
              "/_sim/received: sim-ok-1 twice, sim-auth-1 once (%s)" % {k: ids.get(k) for k in
                                                                       ("sim-ok-1", "sim-auth-1")})
        wait_callbacks(cb, "sim-auth-1", 2)
        st, body = http("GET", base + "/_sim/received", token=None)
        cbs = json.loads(body).get("callbacks", {}) if st == 200 else {}
        n = len(cb.posts())
        check(cbs.get("failed") == 0 and cbs.get("delivered") == n,
              "every call-back delivered (%s, received %d)" % (cbs, n))
    finally:
        if sim.poll() is None:
            rc = stop(sim, 20)
            check(rc == 0, "ewtp-sim exits 0 on SIGTERM (%s)" % rc)
        cb.stop()
        check(not sanitizer_report(read_log(sim.log_path)),
              "no sanitizer reports from the simulator")
        if checks.failed:
            print("---- ewtp-sim log (%s) ----" % tmp)
            print(log_tail(sim.log_path, 6000))
        remove_tmp(tmp, keep=bool(checks.failed))
        checks.summary()
    sys.exit(1 if checks.failed else 0)

if __name__ == "__main__":
    main()
