"""China end to end: the real ewtpd (real SQLite, a temporary configuration with a cn instance,
transport spool, an SM2 test key made here by openssl) against the real customs simulator
`ewtp-sim --country cn`, which watches the instance's spool_out and answers into its spool_in.

1. one parcel: order (platform tenant), payment (payment company tenant), waybill (logistics
   tenant) and inventory 621 (declarant tenant) all reach `approved`; the receipts (312/412/
   512 120, 622 2/120/800) and the 816 tax bill are recorded on the right messages; the
   inventory's authority reference becomes the customs invtNo; the simulator saw each
   document once (GET /_sim/received) and validated it against the official XSD and the
   SM2 signature.
2. an inventory that disagrees with the order already here (another tenant's): 422 with one
   generic error.
3. an inventory whose payment went through another channel (POSTed straight to the
   simulator with a different amount): the gateway cannot see it, customs can: `rejected`
   with the customs code (CEB622:-621014) in its receipts.
4. the released inventory of 1 is cancelled (623 -> 624 399): `cancelled`.
5. an order signed with an algorithm customs does not know: CEB900 (format check, with the
   original message in oriBizMessage) correlated to it: `rejected`.
Ends with "N passed, M failed"; exit 1 on any failure."""
import copy
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (EWTPCTL, PLUGINS, SRC, Api, check, check_config, checks,  # noqa: E402
                          free_port, http_call, load_json, make_sm2_cert, make_tmp, parse_json,
                          print_logs, remove_tmp, spawn_cn_sim, spawn_ewtpd, stop,
                          wait_ready, wait_until, write, write_ewtpd_config, write_token)

VEC = os.path.join(SRC, "plugins", "cn", "vectors")


def config(tmp, api, key, crt):
    for d in ("out", "in"):
        os.makedirs(os.path.join(tmp, "spool", d), exist_ok=True)
    tenants = ["plat", "pay", "logi", "agent", "bad"]
    for t in tenants:
        write_token(tmp, t + ".token", t + "-token")
    conf = """tenants = ( %(tenants)s );
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
keys = ( { name = "cn-sign"; key = "%(key)s"; cert = "%(crt)s"; } );
plugins = (
  { name = "cn-test"; plugin = "cn";
    settings = { cop_code = "3301980AGT"; cop_name = "E2E TEST BROKER";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; },
  # Signs with an algorithm URI customs does not know: the simulator's signature check fails.
  { name = "cn-badsig"; plugin = "cn";
    settings = { cop_code = "3301960ABC"; cop_name = "E2E TEST PLATFORM";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign";
                 signature_method_uri = "urn:example:unknown-signature-algorithm"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; }
);
routes = ( { tenant = "bad"; destination = "CN"; instance = "cn-badsig"; },
           { destination = "CN"; instance = "cn-test"; } );
""" % {"key": key, "crt": crt,
       "tenants": ",\n  ".join('{ id = "%s"; token_file = "%s.token"; destinations = [ "CN" ]; }'
                               % (t, t) for t in tenants)}
    return write_ewtpd_config(tmp, api, conf)


def messages(suffix, order_no, waybill_no, pay_no):
    """Order, payment, waybill and inventory of one parcel, from the plugin's golden vector
    (import-declaration-621 and its related messages), with fresh ids and numbers."""
    rel = os.path.join(VEC, "import-declaration-621", "related")
    order = load_json(os.path.join(rel, "1-order.json"))
    pay = load_json(os.path.join(rel, "2-payment.json"))
    wb = load_json(os.path.join(rel, "3-waybill.json"))
    inv = load_json(os.path.join(VEC, "import-declaration-621", "input.json"))
    order["id"], pay["id"], wb["id"], inv["id"] = ("ord-" + suffix, "pay-" + suffix,
                                                   "wb-" + suffix, "inv-" + suffix)
    order["order"]["number"] = order_no
    pay["payment"]["order_number"] = order_no
    pay["payment"]["number"] = pay_no
    wb["waybill"]["order_number"] = order_no
    wb["waybill"]["number"] = waybill_no
    inv["declaration"]["order_number"] = order_no
    inv["declaration"]["waybill_number"] = waybill_no
    inv.setdefault("ext", {}).setdefault("cn", {})["cop_no"] = ("COP" + suffix).upper()[:20]
    return order, pay, wb, inv


class Env:
    def __init__(self):
        self.tmp = make_tmp("ewtp-cn-e2e-")
        self.api = free_port()
        key, crt = make_sm2_cert(os.path.join(self.tmp, "cn-sign.key"),
                                 os.path.join(self.tmp, "cn-sign.crt"), "/CN=ewtp cn e2e TEST")
        self.conf = config(self.tmp, self.api, key, crt)
        self.base = "http://127.0.0.1:%d" % self.api
        self.procs = []
        chk = check_config(self.conf)
        check(chk.returncode == 0, "ewtpd -t accepts the cn configuration", chk.stderr)
        port = spawn_cn_sim(self.tmp, self.procs)
        check(bool(port), "ewtp-sim --country cn started")
        self.sim = "http://127.0.0.1:%d" % port if port else None
        self.procs.append(spawn_ewtpd(self.conf, os.path.join(self.tmp, "ewtpd.log")))
        check(wait_ready(self.api, self.procs[-1], 20), "ewtpd is ready")

    def tenant(self, tenant):
        return Api(self.api, tenant + "-token")

    def post(self, tenant, msg):
        return self.tenant(tenant).submit(msg)

    def get(self, tenant, mid):
        st, doc = self.tenant(tenant).status(mid)
        return doc if st == 200 else None

    def wait_state(self, tenant, mid, states, timeout=20):
        return self.tenant(tenant).wait_state(mid, states, timeout)

    def close(self):
        for p in reversed(self.procs):
            stop(p, 15)


def codes(m):
    return [r.get("code") for r in (m or {}).get("receipts", [])]


def main():
    env = Env()
    try:
        if checks.failed:
            return
        run(env)
    finally:
        env.close()
        if checks.failed:
            print_logs([("ewtpd.log", os.path.join(env.tmp, "ewtpd.log")),
                        ("sim.log", os.path.join(env.tmp, "sim.log"))], 3000)
        remove_tmp(env.tmp)


def run(env):
    # 1. one parcel, four parties, four tenants.
    order, pay, wb, inv = messages("a1", "SO-E2E-A1", "EXA1000000001CN", "PAY-E2E-A1")
    for tenant, msg in (("plat", order), ("pay", pay), ("logi", wb)):
        st, body = env.post(tenant, msg)
        check(st == 202, "%s %s accepted (202)" % (msg["kind"], msg["id"]), (st, body))
    for tenant, msg in (("plat", order), ("pay", pay), ("logi", wb)):
        m = env.wait_state(tenant, msg["id"], ("approved", "rejected", "dead"))
        check(m and m["state"] == "approved", "%s %s approved" % (msg["kind"], msg["id"]), m)
    m = env.get("plat", order["id"])
    check({"CEB312:2", "CEB312:120"} <= set(codes(m)), "order receipts 312 2 and 120 recorded",
          codes(m))
    st, body = env.post("agent", inv)
    check(st == 202, "inventory (declarant tenant) accepted (202)", (st, body))
    m = env.wait_state("agent", inv["id"], ("approved", "rejected", "dead"))
    check(m and m["state"] == "approved", "inventory 621 approved (622 800 released)", m)
    # The tax bill (816) and the release (622 800) are files of their own in the in-folder,
    # read in either order: the approval may come first.
    wait_until(lambda: any(x and x.startswith("CEB816:") for x in codes(env.get("agent", inv["id"]))),
               10)
    m = env.get("agent", inv["id"])
    c = codes(m)
    check({"CEB622:2", "CEB622:120", "CEB622:800"} <= set(c), "622 receipts 2/120/800 recorded",
          c)
    check(any(x and x.startswith("CEB816:") for x in c), "816 tax bill recorded on the inventory",
          c)
    ref = (m or {}).get("authority_ref") or ""
    check(len(ref) == 18 and ref[4:8].isdigit() and ref[8] == "I",
          "authority reference is the customs invtNo", ref)
    st, raw, _ = http_call("GET", env.sim + "/_sim/received")
    rec = (parse_json(raw) or {}).get("ids", {})
    want = ["CEB311:3301960ABC:SO-E2E-A1", "CEB411:3301960PAY:PAY-E2E-A1",
            "CEB511:3301980EXP:EXA1000000001CN", "CEB621:COPA1"]
    check(all(rec.get(k, {}).get("count") == 1 for k in want),
          "the simulator received each document once", sorted(rec))
    sent = os.listdir(os.path.join(env.tmp, "spool", "out", "sent"))
    check(len(sent) >= 4 and all(n.startswith("CEB") for n in sent),
          "the simulator took the envelopes out of spool_out", sent)

    # 2. an inventory that disagrees with the order already here: refused before sending.
    bad = copy.deepcopy(inv)
    bad["id"] = "inv-a1-bad"
    bad["ext"]["cn"]["cop_no"] = "COPA1BAD"
    bad["declaration"]["lines"][0]["quantity"] = "2"
    bad["declaration"]["lines"][0]["amount"] = "398.00"
    st, body = env.post("agent", bad)
    ptrs = sorted(e.get("pointer") for e in (body or {}).get("errors", []))
    check(st == 422, "inventory disagreeing with the order: 422", (st, body))
    # The order is the platform's (another tenant): one generic error, nothing of it echoed
    # (DECISIONS "Tenants and party codes"; precise pointers within one tenant are
    # tests/integration/tenant_isolation.py's).
    check(ptrs == ["/declaration"], "422 is one generic /declaration error", ptrs)
    check(env.get("agent", bad["id"]) is None, "the refused inventory was not stored")

    # 2b. a payment whose amount differs from the order already here (FACTS §4: amountPaid
    # equals acturalPaid): refused before sending. From the order's own tenant the pointer is
    # precise; from the payment firm (another tenant) one generic error, nothing echoed.
    for tenant, pid, want in (("plat", "pay-a1-bad-own", ["/payment/amount"]),
                              ("pay", "pay-a1-bad", ["/payment"])):
        bad_pay = copy.deepcopy(pay)
        bad_pay["id"] = pid
        bad_pay["payment"]["number"] = "PAY-" + pid.upper()
        bad_pay["payment"]["amount"] = "200.00"
        st, body = env.post(tenant, bad_pay)
        errs = (body or {}).get("errors", [])
        check(st == 422, "payment disagreeing with the order (%s): 422" % tenant, (st, body))
        check(sorted(e.get("pointer") for e in errs) == want and
              all(e.get("code") == "rule" for e in errs),
              "422 names exactly %s" % want, errs)
        check("227.97" not in json.dumps(body), "the order's total is not echoed", body)
        check(env.get(tenant, pid) is None, "the refused payment was not stored")

    # 3. the payment went through another channel: only customs sees the difference.
    order, pay, wb, inv3 = messages("c3", "SO-E2E-C3", "EXC3000000003CN", "PAY-E2E-C3")
    for tenant, msg in (("plat", order), ("logi", wb)):
        st, body = env.post(tenant, msg)
        check(st == 202, "%s %s accepted (202)" % (msg["kind"], msg["id"]), (st, body))
    pay["payment"]["amount"] = "200.00"
    out = os.path.join(env.tmp, "other-channel")
    pay_file = os.path.join(env.tmp, "pay-c3.json")
    write(pay_file, json.dumps(pay))
    tr = subprocess.run([EWTPCTL, "translate", "--plugin-dir", PLUGINS, "--config", env.conf,
                         "--out", out, pay_file], capture_output=True, text=True)
    check(tr.returncode == 0, "ewtpctl translate of the other channel's payment", tr.stderr)
    envelope = None
    if tr.returncode == 0:
        reqs = load_json(os.path.join(out, "requests.json"))
        r0 = (reqs.get("requests") or reqs)[0] if isinstance(reqs, (dict, list)) else None
        body_file = r0.get("body_file") or r0.get("body") if isinstance(r0, dict) else None
        if body_file:
            with open(os.path.join(out, os.path.basename(body_file)), "rb") as f:
                envelope = f.read()
    check(envelope is not None and b"DxpMsg" in envelope, "payment envelope built", envelope)
    if envelope:
        st, raw, _ = http_call("POST", env.sim + "/dxp", envelope, ctype="application/xml")
        check(st == 200 and b"<dxp:ResponseCode>0<" in raw,
              "payment POSTed to customs directly (DxpRep 0)", raw)
    for tenant, msg in (("plat", order), ("logi", wb)):
        m = env.wait_state(tenant, msg["id"], ("approved", "rejected", "dead"))
        check(m and m["state"] == "approved", "%s %s approved" % (msg["kind"], msg["id"]), m)
    st, body = env.post("agent", inv3)
    check(st == 202, "inventory without a payment at the gateway accepted (202)", (st, body))
    m = env.wait_state("agent", inv3["id"], ("approved", "rejected", "dead"))
    check(m and m["state"] == "rejected", "inventory rejected by customs", m)
    check("CEB622:-621014" in codes(m), "receipt carries the customs code CEB622:-621014",
          codes(m))

    # 4. cancel the released inventory of 1 (CEB623 by invtNo -> 624 399).
    st, raw = env.tenant("agent").call("POST", "/v1/messages/inv-a1/cancel",
                                       {"reason": "buyer returned the order before delivery"})
    check(st == 202, "cancel of the released inventory: 202", (st, raw))
    m = env.wait_state("agent", "inv-a1", ("cancelled",))
    check(m and m["state"] == "cancelled", "inventory cancelled (CEB624 399)", m)
    check("CEB624:399" in codes(m), "624 receipt recorded", codes(m))

    # 5. a signature customs cannot verify: the format-check receipt CEB900 (which carries the
    # original message) reaches the order and rejects it.
    order5 = messages("e5", "SO-E2E-E5", "EXE5000000005CN", "PAY-E2E-E5")[0]
    st, body = env.post("bad", order5)
    check(st == 202, "order with a bad signature accepted (202)", (st, body))
    m = env.wait_state("bad", order5["id"], ("approved", "rejected", "dead"))
    check(m and m["state"] == "rejected", "order rejected by the format check", m)
    check("CEB900:-1" in codes(m), "CEB900 receipt recorded on the order", codes(m))


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    except Exception as e:  # a crash of the test is a failure, not a traceback only
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    sys.exit(checks.summary(" (%.1f s)" % (time.time() - t0)))
