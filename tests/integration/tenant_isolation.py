"""Tenant isolation (issue 19, DECISIONS "Tenants and party codes"): the real ewtpd with a China
instance on the spool transport and the real customs simulator `ewtp-sim --country cn`.

1. Party codes: a tenant with `parties` that posts an order naming another platform's code
   gets 403 with a sentence naming the role and scheme only (nothing of the other tenant);
   with its own code 202. A tenant without parties keeps today's behaviour (and ewtpd says
   so at start). Two tenants listing the same code: the configuration is refused.
2. Receipts: two tenants post orders with the same platform code and order number at once.
   Customs takes the first and refuses the second as a duplicate; each message ends with its
   own receipts only (correlated by the guid the receipt repeats, never by the shared CEB key
   across tenants). The default copNo of an inventory is not the public UUID v5 of tenant and
   id, so no other tenant can file an inventory under it in advance.
3. Validation oracle: another tenant's inventory (621) that disagrees with the platform's
   order gets one generic `/declaration` rule error, echoing nothing of the order; the
   platform's own gets the precise pointer; a tenant flooding the order's key with orders
   that agree with a forged inventory does not hide the platform's own order from the match.
Ends with "N passed, M failed"; exit 1 on any failure."""
import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, check, check_config, checks, free_port,  # noqa: E402
                          load_json, make_sm2_cert, make_tmp, print_logs, remove_tmp, spawn_ewtpd,
                          spawn_cn_sim, stop, wait_ready, wait_until,
                          write_ewtpd_config, write_token)

VEC = os.path.join(SRC, "plugins", "cn", "vectors")
PA, PB = "CN-CUSTOMS:3301960PA1", "CN-CUSTOMS:3301960PB1"
# tenant -> its parties (None: no parties line)
TENANTS = {"pa": [PA, "CN-CUSTOMS:3301980AGT"], "pb": [PB], "n1": None, "n2": None}


def config(tmp, api, key, crt, tenants=TENANTS, name="ewtpd.conf"):
    for d in ("out", "in"):
        os.makedirs(os.path.join(tmp, "spool", d), exist_ok=True)
    lines = []
    for t, parties in tenants.items():
        write_token(tmp, t + ".token", t + "-token-of-the-isolation-test")
        lines.append('{ id = "%s"; token_file = "%s.token"; destinations = [ "CN" ];%s }'
                     % (t, t, (" parties = [ %s ];" % ", ".join('"%s"' % p for p in parties))
                        if parties else ""))
    conf = """tenants = ( %(tenants)s );
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
keys = ( { name = "cn-sign"; key = "%(key)s"; cert = "%(crt)s"; } );
plugins = (
  { name = "cn-test"; plugin = "cn";
    settings = { cop_code = "3301980AGT"; cop_name = "ISOLATION TEST BROKER";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; }
);
routes = ( { destination = "CN"; instance = "cn-test"; } );
""" % {"key": key, "crt": crt, "tenants": ",\n  ".join(lines)}
    return write_ewtpd_config(tmp, api, conf, name)


def order_of(mid, number, platform):
    rel = os.path.join(VEC, "import-declaration-621", "related")
    o = load_json(os.path.join(rel, "1-order.json"))
    o["id"] = mid
    o["order"]["number"] = number
    scheme, value = platform.split(":", 1)
    o["parties"]["platform"]["ids"] = [{"scheme": scheme, "value": value}]
    return o


class Env:
    def __init__(self):
        self.tmp = make_tmp("ewtp-isolation-")
        self.api = free_port()
        self.key, self.crt = make_sm2_cert(os.path.join(self.tmp, "cn-sign.key"),
                                           os.path.join(self.tmp, "cn-sign.crt"),
                                           "/CN=ewtp isolation TEST")
        self.conf = config(self.tmp, self.api, self.key, self.crt)
        self.procs = []
        chk = check_config(self.conf)
        check(chk.returncode == 0, "ewtpd -t accepts the configuration", chk.stderr)
        port = spawn_cn_sim(self.tmp, self.procs)
        check(bool(port), "ewtp-sim --country cn started")
        self.procs.append(spawn_ewtpd(self.conf, os.path.join(self.tmp, "ewtpd.log")))
        check(wait_ready(self.api, self.procs[-1], 20), "ewtpd is ready")

    def api_of(self, tenant):
        return Api(self.api, tenant + "-token-of-the-isolation-test")

    def close(self):
        for p in reversed(self.procs):
            stop(p, 15)


def party_codes(env):
    pa, n1 = env.api_of("pa"), env.api_of("n1")
    st, body = pa.submit(order_of("pa-steal", "SO-ISO-1", PB))
    text = json.dumps(body)
    check(st == 403 and (body or {}).get("error") == "forbidden",
          "order naming another tenant's platform code: 403", (st, body))
    check("platform" in text and "CN-CUSTOMS" in text, "the 403 names the role and scheme", text)
    check("3301960PB1" not in text and "pb" not in text.replace("platform", ""),
          "the 403 echoes nothing of the other tenant", text)
    check(pa.status("pa-steal")[0] == 404, "the refused order was not stored")
    st, body = pa.submit(order_of("pa-unknown", "SO-ISO-1", "CN-CUSTOMS:3301960ZZZ"))
    check(st == 403, "order naming a code no tenant holds: 403", (st, body))
    st, body = pa.submit(order_of("pa-own", "SO-ISO-1", PA))
    check(st == 202, "order with the tenant's own platform code: 202", (st, body))
    st, body = n1.submit(order_of("n1-any", "SO-ISO-N1", PB))
    check(st == 202, "a tenant without parties is not checked (today's behaviour): 202",
          (st, body))
    with open(os.path.join(env.tmp, "ewtpd.log")) as f:
        log = f.read()
    check("tenant n1 has no parties: sender codes are not checked" in log,
          "ewtpd warns at start about tenants without parties")
    dup = config(env.tmp, free_port(), env.key, env.crt,
                 {"pa": [PA], "pb": [PB, PA]}, "dup.conf")
    chk = check_config(dup)
    check(chk.returncode != 0 and "is also a party code of tenants[0]" in chk.stderr,
          "two tenants with the same party code: configuration refused", chk.stderr)


# EWTP_UUID_NS_EWTP (sdk/src/crypto.c): what anyone can compute without the gateway's secret.
NS_EWTP = uuid.UUID(bytes=bytes([0xbe, 0xb6, 0xc1, 0x4b, 0x27, 0x64, 0x5e, 0xcf,
                                 0x8d, 0x12, 0xe6, 0x34, 0x27, 0xf8, 0xc9, 0x6a]))


def receipts(env):
    n1, n2 = env.api_of("n1"), env.api_of("n2")
    # Same platform code and order number from two tenants (neither has parties), at once.
    answers = {}

    def post(api, mid):
        answers[mid] = api.submit(order_of(mid, "SO-ISO-TWIN", PA))
    threads = [threading.Thread(target=post, args=(n1, "n1-twin")),
               threading.Thread(target=post, args=(n2, "n2-twin"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(answers.get(m, (0,))[0] == 202 for m in ("n1-twin", "n2-twin")),
          "both twin orders: 202", answers)
    done = ("approved", "rejected", "cancelled", "dead")
    d1 = n1.wait_state("n1-twin", done, 30)
    d2 = n2.wait_state("n2-twin", done, 30)
    states = sorted([d1.get("state"), d2.get("state")])
    check(states == ["approved", "rejected"],
          "one twin approved, the other refused by customs as a duplicate; none left waiting "
          "(%s)" % states)
    codes = {m: [r.get("code") for r in d.get("receipts", [])]
             for m, d in (("n1-twin", d1), ("n2-twin", d2))}
    for m, d in (("n1-twin", d1), ("n2-twin", d2)):
        mine = codes[m]
        if d.get("state") == "approved":
            check("CEB312:120" in mine and not any("-301010" in (c or "") for c in mine),
                  "%s (approved) holds its own receipts only" % m, codes)
        else:
            check(any("-301010" in (c or "") for c in mine) and "CEB312:120" not in mine
                  and "CEB312:2" not in mine,
                  "%s (duplicate) holds its own refusal only" % m, codes)
    # The default copNo of an inventory is keyed by the gateway's secret.
    inv = inventory_of("n1-inv-cop", "SO-ISO-COP", PA)
    del inv["ext"]["cn"]["cop_no"]
    st, body = n1.submit(inv)
    check(st == 202, "an inventory without ext.cn.cop_no: 202", (st, body))
    ref = {}

    def spooled_ref():
        code, ev = n1.call("GET", "/v1/messages/n1-inv-cop/events")
        for e in (ev or {}).get("events", []) if code == 200 else []:
            r = (e.get("detail") or {}).get("authority_ref") or ""
            if r.startswith("CEB621:"):
                ref["cop"] = r[len("CEB621:"):]
                return True
        return False
    check(wait_until(spooled_ref, 30), "the inventory was handed over with its CEB621 key")
    public = str(uuid.uuid5(NS_EWTP, "cn/n1/n1-inv-cop/copno")).upper().replace("-", "")[:20]
    cop = ref.get("cop", "")
    check(re.fullmatch(r"[0-9A-F]{20}", cop or "") is not None and cop != public,
          "the default copNo is 20 hex digits and not the public UUID v5 of tenant and id "
          "(%s vs %s)" % (cop, public))


def ric_with_check(body17):
    """An 18-character resident ID with a valid ISO 7064 MOD 11-2 check character."""
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(c) * x for c, x in zip(body17, w)) % 11]


def inventory_of(mid, number, platform, ric=None, name=None):
    inv = load_json(os.path.join(VEC, "import-declaration-621", "input.json"))
    inv["id"] = mid
    inv["declaration"]["order_number"] = number
    scheme, value = platform.split(":", 1)
    inv["parties"]["platform"]["ids"] = [{"scheme": scheme, "value": value}]
    inv.setdefault("ext", {}).setdefault("cn", {})["cop_no"] = mid.upper().replace("-", "")[:20]
    if ric:
        inv["parties"]["buyer"]["ids"] = [{"scheme": "CN-RIC", "value": ric}]
    if name:
        inv["parties"]["buyer"]["name"] = name
    return inv


def validation_oracle(env):
    pa, n1, n2 = env.api_of("pa"), env.api_of("n1"), env.api_of("n2")
    order = order_of("pa-o3", "SO-ISO-3", PA)
    real_ric, real_name = (order["parties"]["buyer"]["ids"][0]["value"],
                           order["parties"]["buyer"]["name"])
    st, body = pa.submit(order)
    check(st == 202, "the platform's order: 202", (st, body))
    other_ric = ric_with_check("11010119900307123")
    # Another tenant (no parties, so it may name the platform) probes the buyer's data with
    # an inventory: one generic error, nothing of the order echoed, no pointer to guess by.
    st, body = n1.submit(inventory_of("n1-inv3", "SO-ISO-3", PA, other_ric, "Someone Else"))
    errs = (body or {}).get("errors", [])
    check(st == 422 and [(e.get("pointer"), e.get("code")) for e in errs]
          == [("/declaration", "rule")],
          "another tenant's inventory against the order: one /declaration rule error", (st, body))
    text = json.dumps(body, ensure_ascii=False)
    check(real_ric not in text and real_name not in text, "nothing of the order is echoed", text)
    # Within the tenant the pointers are precise.
    st, body = pa.submit(inventory_of("pa-inv3", "SO-ISO-3", PA, other_ric))
    ptrs = [e.get("pointer") for e in (body or {}).get("errors", [])]
    check(st == 422 and "/parties/buyer/ids" in ptrs,
          "the platform's own inventory: the precise pointer", (st, body))
    # Flooding the key with orders that agree with a forged inventory does not hide the
    # platform's own order from the match.
    for i in range(3):
        f = order_of("n2-flood-%d" % i, "SO-ISO-3", PA)
        f["parties"]["buyer"]["ids"] = [{"scheme": "CN-RIC", "value": other_ric}]
        st, body = n2.submit(f)
        check(st == 202, "flood order %d of a tenant without parties: 202" % i, (st, body))
    st, body = pa.submit(inventory_of("pa-inv3b", "SO-ISO-3", PA, other_ric))
    ptrs = [e.get("pointer") for e in (body or {}).get("errors", [])]
    check(st == 422 and "/parties/buyer/ids" in ptrs,
          "after the flood the platform's inventory is still matched with its own order",
          (st, body))


def main():
    env = Env()
    try:
        if checks.failed:
            return
        party_codes(env)
        receipts(env)
        validation_oracle(env)
    finally:
        env.close()
        if checks.failed:
            print_logs([("ewtpd.log", os.path.join(env.tmp, "ewtpd.log")),
                        ("sim.log", os.path.join(env.tmp, "sim.log"))], 3000)
        remove_tmp(env.tmp)


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    except Exception as e:  # a crash of the test is a failure, not a traceback only
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    sys.exit(checks.summary(" (%.1f s)" % (time.time() - t0)))
