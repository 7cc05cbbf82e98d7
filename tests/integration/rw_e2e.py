"""Rwanda end to end: the real ewtpd (real SQLite) with two instances of the rw plugin, the
customs one on the spool transport and the EBM one over HTTP, against the real simulator
(`ewtp-sim --country rw`) that reads the spool and serves the VSDC API on loopback.

- declarations (the valid vectors, new ids) are written to the spool, validated by the
  simulator against the ASYCUDA schema, come back registered, assessed and paid, and reach
  `approved` (released) with the registration as authority reference; one for an office the
  simulator refuses reaches `rejected` with its code;
- an invoice with an unknown EBM tax category is refused at POST with its pointer;
- the first invoice of the branch initialises the VSDC device (once), registers its items and
  reaches `approved` with sdcId/rcptNo/invcNo;
- 100 invoices posted concurrently for the same branch reach the simulator in strict number
  order with no gap, with ewtpd killed with SIGKILL while they are being delivered and
  restarted on the same database; after the restart the device is not initialised again;
- `ewtpctl chain set` moves the branch's chain away from the VSDC's: the next invoice is
  answered "out of sequence", the plugin blocks the key and the host makes that invoice dead,
  holding the later one of the branch (never sent); `ewtpctl chain set` back and `ewtpctl replay`
  send both, in order, with the right numbers;
- a credit note posted together with its original waits for it (ABI 1.1 wait) and is sent as a
  refund receipt with the original's number (orgInvcNo) once the original is approved.
Ends with "N passed, M failed"."""
import concurrent.futures
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, DaemonAndSim, check, checks, ewtpctl,  # noqa: E402
                          free_port, keep_tmp_if_failed, kill9, load_json, make_tmp,
                          wait_messages, wait_until, write_ewtpd_config, write_token)

TOKEN = "rw-token"
N = 100
DEADLINE = time.monotonic() + 240
VEC = os.path.join(SRC, "plugins/rw/vectors")
INVOICE = load_json(os.path.join(VEC, "invoice-official-example/input.json"))
DECLS = ["declaration-import-road", "declaration-import-procedures", "declaration-export-air",
         "declaration-office-from-settings"]


def invoice(mid):
    m = copy.deepcopy(INVOICE)
    m["id"] = mid
    m["invoice"]["number"] = "INV-" + mid
    return m


def setup():
    tmp = make_tmp("ewtp-rw-")
    api_port, sim_port = free_port(), free_port()
    for d in ("run", "spool/out", "spool/in"):
        os.makedirs(os.path.join(tmp, d))
    write_token(tmp, "token", TOKEN)
    conf = write_ewtpd_config(tmp, api_port, """
tenants = ( { id = "rw"; token_file = "token"; destinations = [ "RW" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 500; request_timeout_ms = 3000; lease_ms = 4000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "rw-customs"; plugin = "rw";
    settings = { office = "RWKGL"; office_name = "Kigali Magerwa"; };
    transport = "spool"; spool_out = "%(tmp)s/spool/out"; spool_in = "%(tmp)s/spool/in"; },
  { name = "rw-ebm"; plugin = "rw";
    settings = { tin = "999991130"; bhf_id = "00"; device_serial = "dvcv1130";
                 operator_id = "Admin"; operator_name = "Admin"; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = (
  { destination = "RW"; kinds = [ "declaration" ]; instance = "rw-customs"; },
  { destination = "RW"; kinds = [ "invoice" ]; instance = "rw-ebm"; }
);
""" % {"sim": sim_port, "tmp": tmp})
    env = DaemonAndSim(tmp, conf, api_port, sim_port, "rw",
                       {"spool_out": os.path.join(tmp, "spool/out"),
                        "spool_in": os.path.join(tmp, "spool/in"), "poll_ms": "50",
                        "reject_office": "RWXXX"})
    return tmp, env


def branch(sim):
    code, doc = sim.call("GET", "/sim/rw/sales")
    for b in (doc or {}).get("branches", []) if code == 200 else []:
        if b.get("tin") == "999991130" and b.get("bhfId") == "00":
            return b
    return {}


def main():
    tmp, env = setup()
    api = Api(env.api_port, TOKEN)
    sim = Api(env.sim_port)
    try:
        if not (check(env.start_sim(), "simulator up") and
                check(env.start_daemon(), "ewtpd up")):
            return
        # Declarations through the spool.
        decl_ids = []
        for i, case in enumerate(DECLS):
            m = load_json(os.path.join(VEC, case, "input.json"))
            m["id"] = "rw-e2e-decl-%d" % i
            decl_ids.append(m["id"])
            code, doc = api.submit(m)
            check(code == 202, "declaration %s accepted (%s %s)" % (case, code, doc))
        bad = load_json(os.path.join(VEC, DECLS[0], "input.json"))
        bad["id"] = "rw-e2e-decl-refused"
        bad["declaration"]["customs_office"] = "RWXXX"
        check(api.submit(bad)[0] == 202, "declaration for office RWXXX accepted")
        # An unknown tax category: refused before anything is sent, with its pointer.
        wrong = invoice("rw-e2e-bad-category")
        wrong["invoice"]["lines"][0]["taxes"][0]["category"] = "S"
        code, doc = api.submit(wrong)
        pointers = [e.get("pointer") for e in (doc or {}).get("errors", [])]
        check(code in (400, 422) and "/invoice/lines/0/taxes/0/category" in pointers,
              "unknown tax category refused at POST with its pointer (%s %s)" % (code, pointers))
        # The first invoice: device initialisation, item registration, sale.
        code, _ = api.submit(invoice("rw-e2e-first"))
        check(code == 202, "first invoice accepted")
        first = api.wait_state("rw-e2e-first", ("approved", "rejected", "dead"), 30)
        check(first.get("state") == "approved" and
              (first.get("authority_ref") or "").endswith("/1"),
              "first invoice approved as invcNo 1 (%s %s)" % (first.get("state"),
                                                              first.get("authority_ref")))
        final = wait_messages([(api, m) for m in decl_ids + ["rw-e2e-decl-refused"]],
                              ("approved", "rejected", "dead"), 30)
        for mid in decl_ids:
            doc = final.get(mid, {})
            check(doc.get("state") == "approved" and
                  (doc.get("authority_ref") or "").startswith("RW"),
                  "%s released (%s %s)" % (mid, doc.get("state"), doc.get("authority_ref")))
        ref = final.get("rw-e2e-decl-refused", {})
        codes = [e.get("code") for e in ref.get("errors", [])]
        check(ref.get("state") == "rejected" and "RW-OFFICE" in codes,
              "declaration for a refused office rejected with RW-OFFICE (%s %s)" %
              (ref.get("state"), codes))

        # 100 invoices at once, kill -9 in the middle.
        ids = ["rw-e2e-%03d" % i for i in range(N)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda mid: api.submit(invoice(mid))[0], ids))
        check(all(c == 202 for c in codes), "100 invoices accepted with 202")
        wait_until(lambda: len(branch(sim).get("accepted", [])) >= 1 + N // 3,
                   min(60, DEADLINE - time.monotonic()))
        done = len(branch(sim).get("accepted", []))
        kill9(env.daemon)
        print("  killed ewtpd after %d sales reached the simulator" % done)
        check(0 < done < 1 + N, "ewtpd killed mid-delivery (%d of %d accepted)" % (done, N + 1))
        check(env.start_daemon(), "ewtpd restarted after kill -9")
        final = wait_messages([(api, m) for m in ids], ("approved", "rejected", "dead"),
                              DEADLINE - time.monotonic() - 10, retry_on=OSError)
        bad = {m: final.get(m, {}).get("state") for m in ids
               if final.get(m, {}).get("state") != "approved"}
        check(not bad, "all 100 approved (%d; not: %s)" % (N - len(bad), bad))
        b = branch(sim)
        accepted = b.get("accepted", [])
        check(accepted == list(range(1, N + 2)),
              "the simulator accepted invcNo 1..%d in strict order, no gap (%s)" %
              (N + 1, accepted if accepted != list(range(1, N + 2)) else "ok"))
        firsts = []
        for n in b.get("received", []):
            if n not in firsts:
                firsts.append(n)
        check(firsts == list(range(1, N + 2)),
              "every number first reached the simulator in order (resends only repeat one)")
        refs = sorted(int((final.get(m, {}).get("authority_ref") or "0/0/0").split("/")[-1])
                      for m in ids)
        check(refs == list(range(2, N + 2)), "each invoice has its own number 2..%d" % (N + 1))
        got = sim.call("GET", "/_sim/received")[1].get("ids", {})
        inits = got.get("init:999991130:00", {}).get("count", 0)
        check(inits == 1, "the device was initialised once, not again after the restart (%d)"
              % inits)

        # Out of sequence: the key is blocked, an admin repairs it.
        key = "rw:ebm:rw:999991130:00"
        out = ewtpctl(env.conf, "chain", "set", key, "500")
        check(out.returncode == 0, "ewtpctl chain set %s 500 (%s%s)" % (key, out.stdout,
                                                                        out.stderr))
        check(api.submit(invoice("rw-e2e-oos"))[0] == 202, "an invoice numbered 500 accepted")
        oos = api.wait_state("rw-e2e-oos", ("dead", "rejected", "approved"), 30)
        check(oos.get("state") == "dead" and
              any("out of sequence" in (r.get("message") or "") for r in oos.get("receipts", [])),
              "the VSDC's out of sequence answer makes it dead and blocks the key (%s)" %
              oos.get("state"))
        check(api.submit(invoice("rw-e2e-held"))[0] == 202, "a later invoice of the branch accepted")
        time.sleep(1.0)  # 20 dispatcher scans: it would have been sent by now
        held = api.status("rw-e2e-held")[1]
        check(held.get("state") == "accepted" and held.get("attempts") == 0,
              "the later invoice is held while the key is blocked (%s, %s attempts)" %
              (held.get("state"), held.get("attempts")))
        check(max(branch(sim).get("received", [0])) == 500 and
              branch(sim).get("received", []).count(500) == 1,
              "nothing after the refused 500 reached the VSDC")
        out = ewtpctl(env.conf, "chain", "set", key, str(N + 2))
        check(out.returncode == 0, "ewtpctl chain set back to %d" % (N + 2))
        out = ewtpctl(env.conf, "replay", "rw-e2e-oos", "--tenant", "rw")
        check(out.returncode == 0, "ewtpctl replay rw-e2e-oos (%s%s)" % (out.stdout, out.stderr))
        final = wait_messages([(api, m) for m in ("rw-e2e-oos", "rw-e2e-held")],
                              ("approved", "rejected", "dead"), 30)
        refs = [(final.get(m, {}).get("authority_ref") or "").split("/")[-1]
                for m in ("rw-e2e-oos", "rw-e2e-held")]
        check(all(final.get(m, {}).get("state") == "approved" for m in ("rw-e2e-oos",
                                                                         "rw-e2e-held")) and
              refs == [str(N + 2), str(N + 3)],
              "after the repair both are approved in order as %d and %d (%s)" %
              (N + 2, N + 3, refs))
        check(branch(sim).get("accepted") == list(range(1, N + 4)),
              "the VSDC holds 1..%d without a gap" % (N + 3))

        # A credit note posted right after its original: it waits for the original's number.
        orig = invoice("rw-e2e-orig")
        note = invoice("rw-e2e-note")
        note["invoice"].update(type="credit_note", original_invoice=orig["invoice"]["number"],
                               reason="Returned goods")
        check(api.submit(orig)[0] == 202 and api.submit(note)[0] == 202,
              "an invoice and its credit note accepted")
        final = wait_messages([(api, m) for m in ("rw-e2e-orig", "rw-e2e-note")],
                              ("approved", "rejected", "dead"), 30)
        refs = [(final.get(m, {}).get("authority_ref") or "").split("/")[-1]
                for m in ("rw-e2e-orig", "rw-e2e-note")]
        check(all(final.get(m, {}).get("state") == "approved"
                  for m in ("rw-e2e-orig", "rw-e2e-note")) and
              refs == [str(N + 4), str(N + 5)],
              "the credit note waited for its original and both are approved (%s)" % refs)
        sale = branch(sim).get("refunds", {})
        check(sale.get(str(N + 5)) == N + 4,
              "the refund receipt names its original's number (orgInvcNo %s)" % sale)
    finally:
        ok = env.stop()
        check(ok, "ewtpd and the simulator stopped cleanly, no sanitizer report")
        keep_tmp_if_failed(tmp, [env.daemon_log, env.sim_log])


if __name__ == "__main__":
    checks.run(main)
