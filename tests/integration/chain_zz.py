"""Chains (spec/plugin-abi.md "Chains") end to end: gap-free numbering across retries, a
business rejection and a kill -9 of ewtpd.

The real ewtpd (real SQLite file) with one ZZ instance whose sender numbers its submissions
(setting chain_numbering: classify says needs_chain, translate writes Header/Sequence), and
the real ZZ simulator with check_sequence: it refuses (422 ZZ-SEQ) a number that is not the
sender's last accepted + 1 or a previous reference that is not the last accepted one's,
refuses a declaration over reject_over at once (422 ZZ-150) without using up a number, and
answers a resent X-Request-Id with 409 and the first reference.

One sender, 60 messages, posted in phases:
  1. 20 orders;
  2. the simulator's framework answers the next 6 requests 503 (force_status), then 10 orders,
     one declaration over reject_over (the business rejection), 9 orders;
  3. the simulator reads the next 2 numbered submissions and answers 503 (unavailable_count:
     so their first number is visible), 10 orders with 400 ms latency on every answer, and
     ewtpd is killed with SIGKILL mid-delivery and restarted on the same database;
  4. 10 orders.
Then: every order approved, the declaration rejected with ZZ-150; the simulator accepted
exactly 1..K (K = 59) with no gap, no duplicate and no ZZ-SEQ refusal; each message's number
in ewtpd's events is the simulator's, with its reference; the rejected declaration's number
went to the next message; every resend (503s, the resend after the crash) carried its first
number. Ends with "N passed, M failed"."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, DaemonAndSim, check, checks, free_port,  # noqa: E402
                          keep_tmp_if_failed, kill9, load_json, make_tmp, wait_messages,
                          write_ewtpd_config, write_token, zz_order)

TOKEN = "chain-token"
SENDER = "CHAIN-1"
DEADLINE = time.monotonic() + 85  # the whole test stops by itself
ORDER = zz_order(None)
DECL = load_json(os.path.join(SRC, "plugins/template/vectors/declaration-low-value/input.json"))


def order(mid):
    return dict(ORDER, id=mid, order=dict(ORDER["order"], number="SO-" + mid))


def big_declaration(mid):
    d = dict(DECL["declaration"], type="standard", order_number="SO-" + mid,
             invoice_value="5000.00")
    d["lines"] = [dict(DECL["declaration"]["lines"][0], unit_price="5000.00", amount="5000.00")]
    return dict(DECL, id=mid, declaration=d)


def setup():
    """The temporary folder and ewtpd with the ZZ simulator (not started yet)."""
    tmp = make_tmp("ewtp-chain-")
    api_port = free_port()
    sim_port = free_port()
    os.makedirs(os.path.join(tmp, "run"))
    write_token(tmp, "token", TOKEN)
    conf = write_ewtpd_config(tmp, api_port, """
tenants = ( { id = "chain"; token_file = "token"; destinations = [ "*" ]; } );
delivery = { max_attempts = 1000; max_age_ms = 3600000; base_delay_ms = 100;
  max_delay_ms = 500; request_timeout_ms = 1500; lease_ms = 2000; poll_interval_ms = 200;
  scan_interval_ms = 50; workers = 2; };
plugins = (
  { name = "zz-chain"; plugin = "zz";
    settings = { sign_key = ""; sender_id = "%(sender)s"; chain_numbering = true; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d"; }
);
routes = ( { destination = "ZZ"; instance = "zz-chain"; } );
""" % {"sim": sim_port, "sender": SENDER})
    return tmp, DaemonAndSim(tmp, conf, api_port, sim_port, "zz",
                             {"decision_delay_ms": 50, "check_sequence": "true",
                              "reject_over": "1000.00", "sender_id": SENDER})


def wait_states(api, ids, states, until):
    """{id: status} once every id is in one of states, or at until."""
    return wait_messages([(api, mid) for mid in ids], states, until - time.monotonic(), 0.2,
                         retry_on=OSError)


def main():
    tmp, env = setup()
    api = Api(env.api_port, TOKEN)
    sim = Api(env.sim_port)
    try:
        if not (check(env.start_sim(), "simulator up") and
                check(env.start_daemon(), "ewtpd up")):
            return
        ids, rejected_id = [], "c-030-rej"
        posted = {}

        def send(mid, msg):
            ids.append(mid)
            posted[mid] = api.submit(msg)[0]

        # 1. A plain run.
        for i in range(20):
            send("c-%03d" % i, order("c-%03d" % i))
        wait_states(api, ids[:5], ("submitted", "approved"), min(DEADLINE, time.monotonic() + 20))
        # 2. Transient failures before the module (framework 503s), a rejection in the middle.
        # Polls count among the next requests too: enough that submissions get some.
        check(sim.call("POST", "/_sim/control",
                       {"force_status": 503, "force_count": 6, "retry_after": 0})[0] == 200,
              "simulator: next 6 requests answered 503")
        for i in range(20, 30):
            send("c-%03d" % i, order("c-%03d" % i))
        send(rejected_id, big_declaration(rejected_id))
        for i in range(31, 40):
            send("c-%03d" % i, order("c-%03d" % i))
        wait_states(api, ids[:30], ("submitted", "approved", "rejected"),
                    min(DEADLINE, time.monotonic() + 25))
        # 3. 503s after the number was read, slow answers, and kill -9 mid-delivery.
        check(sim.call("POST", "/_sim/control", {"unavailable_count": 2, "latency_ms": 400})[0]
              == 200,
              "simulator: 2 numbered submissions read then 503, answers 400 ms late")
        for i in range(40, 50):
            send("c-%03d" % i, order("c-%03d" % i))
        # Kill when the simulator has just read a numbered submission whose answer is held
        # back 400 ms (/_sim/received is never delayed): ewtpd has not recorded it, so after
        # the restart it sends the message again with the same number and X-Request-Id, and
        # gets 409 with the first reference.
        victim = None
        until = min(DEADLINE - 40, time.monotonic() + 20)
        while victim is None and time.monotonic() < until:
            got = sim.call("GET", "/_sim/received")[1].get("ids", {})
            new = sorted(m for m in got if m.startswith("c-04") and m >= "c-042")
            if new:
                victim = new[0]
            else:
                time.sleep(0.01)
        kill9(env.daemon)
        print("  killed ewtpd while the simulator's answer to %s was on its way" % victim)
        check(sim.call("POST", "/_sim/control", {"latency_ms": 0})[0] == 200,
              "simulator: latency off again")
        check(env.start_daemon(), "ewtpd restarted after kill -9")
        # 4. After the restart.
        for i in range(50, 60):
            send("c-%03d" % i, order("c-%03d" % i))
        check(all(posted[m] == 202 for m in ids),
              "all 60 accepted with 202 (%s)" % {m: s for m, s in posted.items() if s != 202})

        final = wait_states(api, ids, ("approved", "rejected", "dead"), DEADLINE - 8)
        orders = [m for m in ids if m != rejected_id]
        bad = {m: final.get(m, {}).get("state") for m in orders
               if final.get(m, {}).get("state") != "approved"}
        check(not bad, "every order approved (%d; not: %s)" % (len(orders) - len(bad), bad))
        rej = final.get(rejected_id, {})
        codes = [e.get("code") for e in rej.get("errors", [])]
        check(rej.get("state") == "rejected" and "ZZ-150" in codes,
              "the declaration over reject_over is rejected with ZZ-150 (%s %s)" %
              (rej.get("state"), codes))

        seq = sim.call("GET", "/_zz/sequence/" + SENDER)[1]
        accepted = seq.get("accepted", [])
        numbers = [a["number"] for a in accepted]
        k = len(orders)
        print("  simulator: last %s, %d accepted, %d refused (ZZ-SEQ), %d seen" %
              (seq.get("last"), len(accepted), seq.get("refused"), len(seq.get("seen", []))))
        check(numbers == list(range(1, k + 1)),
              "simulator accepted exactly 1..%d in order, no gap, no duplicate (%s)" %
              (k, numbers if numbers != list(range(1, k + 1)) else "ok"))
        check(seq.get("refused") == 0, "no submission refused for its sequence (ZZ-SEQ)")
        by_ref = {a["sender_reference"]: a for a in accepted}
        check(len(by_ref) == len(accepted) and set(by_ref) == set(orders),
              "each order accepted once by the simulator")

        # ewtpd's side: the outcome that advanced the chain names the number and reference.
        mismatch = []
        resent_503 = []
        for mid in orders:
            evs = (api.call("GET", "/v1/messages/%s/events" % mid)[1] or {}).get("events", [])
            adv = [e["detail"]["chain"] for e in evs
                   if e.get("type") == "outcome" and isinstance(e.get("detail"), dict)
                   and e["detail"].get("chain")]
            sim = by_ref.get(mid, {})
            if (len(adv) != 1 or adv[0].get("number") != sim.get("number") or
                    adv[0].get("ref") != sim.get("reference") or
                    final[mid].get("authority_ref") != sim.get("reference")):
                mismatch.append((mid, adv, sim))
            if any(e.get("type") == "outcome" and e.get("state") == "retrying" and
                   (e.get("detail") or {}).get("http_status") == 503 for e in evs):
                resent_503.append(mid)
        check(not mismatch, "each message's chain number and reference in ewtpd are the "
              "simulator's (%s)" % (mismatch[:3] or "ok"))
        check(len(resent_503) >= 1, "messages retried after a 503 (%d: %s)" %
              (len(resent_503), resent_503))

        # Every sending of one message carried one number: retries reuse it.
        seen = seq.get("seen", [])
        per = {}
        for s in seen:
            per.setdefault(s["sender_reference"], set()).add(s["number"])
        multi = [s for s in seen if s["answer"] in ("ZZ-503", "duplicate")]
        check(all(len(v) == 1 for v in per.values()),
              "every resend carried its first number (%s)" %
              ({m: sorted(v) for m, v in per.items() if len(v) != 1} or "ok"))
        check(sum(1 for s in seen if s["answer"] == "ZZ-503") == 2,
              "2 numbered submissions read and answered 503, then resent (%s)" %
              [(s["sender_reference"], s["number"]) for s in multi])
        dup = [s for s in seen if s["answer"] == "duplicate"]
        print("  resends after the crash answered 409 (first submission stands): %s" %
              ([(s["sender_reference"], s["number"]) for s in dup] or "none"))
        check(any(d["sender_reference"] == victim for d in dup),
              "%s, in flight at the kill, was sent again after the restart and answered 409"
              % victim)
        for s in dup:
            check(by_ref.get(s["sender_reference"], {}).get("number") == s["number"],
                  "resend of %s after the crash carried its number %d" %
                  (s["sender_reference"], s["number"]))

        # The rejection used no number: the next message in accept order took it.
        rej_seen = [s for s in seen if s["sender_reference"] == rejected_id]
        nxt = ids[ids.index(rejected_id) + 1]
        check(len(rej_seen) == 1 and rej_seen[0]["answer"] == "ZZ-150" and
              by_ref.get(nxt, {}).get("number") == rej_seen[0]["number"],
              "the rejected declaration's number %s went to the next message %s (%s)" %
              (rej_seen[0]["number"] if rej_seen else None, nxt, by_ref.get(nxt)))
        check(env.starts == 2, "ewtpd was killed once and restarted")
    finally:
        check(env.stop(), "ewtpd exits 0 on SIGTERM; no sanitizer report")
        keep_tmp_if_failed(tmp, [("ewtpd log", env.daemon_log)], 3000)


if __name__ == "__main__":
    sys.exit(checks.run(main))
