"""Spool folders shared with a hostile other side (issue 19.3): the real ewtpd (real SQLite)
with the template plugin on a spool instance (out-folder) and on an https instance against
fake_authority.py whose receipts come back through an in-folder. Planted before the daemon
starts:

- out-folder: a symbolic link at the temporary name ewtpd once used (.<name>.tmp) and at the
  request's own file name, both to a victim file outside the folder: ewtpd writes nothing
  through them and the request lands as a regular file;
- in-folder: a link to a valid receipt outside the folder (moved to failed/ as a link, never
  read: a message waiting for its receipt stays submitted), a FIFO and a link to a FIFO (moved to failed/, the scan
  does not block on them).

/livez answers throughout, and a plain receipt file written afterwards is still read.
Exits non-zero on failure."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (Api, check, checks, free_port, make_tmp, print_logs,  # noqa: E402
                          read_log, remove_tmp, sanitizer_env, sanitizer_report, spawn_ewtpd,
                          stop, wait_port, wait_until, write, write_ewtpd_config, write_token,
                          zz_order)
from fake_authority import Authority  # noqa: E402

VICTIM = "do not overwrite\n"


def config(tmp, api_port, auth_port):
    write_token(tmp, "t1.token", "t1-token")
    write_token(tmp, "t2.token", "t2-token")
    conf = """tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "*" ]; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "*" ]; }
);
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
plugins = (
  { name = "zz-spool"; plugin = "zz"; settings = { sender_id = "SENDER-S"; sign_key = ""; };
    transport = "spool"; spool_out = "out"; },
  { name = "zz-a"; plugin = "zz"; settings = { sender_id = "SENDER-A"; sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%d"; spool_in = "in"; }
);
routes = ( { tenant = "t1"; destination = "ZZ"; instance = "zz-spool"; },
           { tenant = "t2"; destination = "ZZ"; instance = "zz-a"; } );
""" % auth_port
    return write_ewtpd_config(tmp, api_port, conf)


def livez(api):
    t0 = time.monotonic()
    try:
        code, _ = api.call("GET", "/livez", token=None)
    except OSError as e:
        return False, str(e)
    return code == 200, time.monotonic() - t0


def main():
    tmp = make_tmp("ewtp-spool-hostile-")
    out, inn, outside = (os.path.join(tmp, d) for d in ("out", "in", "outside"))
    for d in (out, inn, outside):
        os.makedirs(d)
    victim = os.path.join(outside, "victim.txt")
    write(victim, VICTIM)
    # the request path /v1/submissions is written as v1_submissions
    os.symlink(victim, os.path.join(out, ".v1_submissions.tmp"))
    os.symlink(victim, os.path.join(out, "v1_submissions"))
    fifo = os.path.join(outside, "fifo")
    os.mkfifo(fifo)
    os.mkfifo(os.path.join(inn, "pipe.json"))
    os.symlink(fifo, os.path.join(inn, "link-to-fifo.json"))

    auth = Authority().start()
    api_port = free_port()
    conf = config(tmp, api_port, auth.port)
    proc = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"), env=sanitizer_env())
    try:
        if not check(wait_port(api_port, proc), "ewtpd listens"):
            return
        api = Api(api_port)
        t1 = api.as_token("t1-token")
        t2 = api.as_token("t2-token")

        # the FIFOs are refused, not waited on
        failed = os.path.join(inn, "failed")
        wait_until(lambda: all(os.path.lexists(os.path.join(failed, n))
                               for n in ("pipe.json", "link-to-fifo.json")), 10)
        check(os.path.lexists(os.path.join(failed, "pipe.json")),
              "a FIFO in the in-folder moved to failed/")
        check(os.path.islink(os.path.join(failed, "link-to-fifo.json")),
              "a link to a FIFO moved to failed/ as a link")
        ok, took = livez(api)
        check(ok and took < 1.0, "/livez answers with FIFOs in the in-folder (%s)" % took)

        # the spool transport writes through no planted link
        code, body = t1.submit(zz_order("sp-1"))
        check(code == 202, "sp-1 accepted (%s %s)" % (code, body))
        st = t1.wait_state("sp-1", ["submitted", "dead", "failed"])
        check(st.get("state") == "submitted", "sp-1 spooled (%s)" % st.get("state"))
        with open(victim) as f:
            got = f.read()
        check(got == VICTIM, "nothing written through the links to the victim file", got[:200])
        dst = os.path.join(out, "v1_submissions")
        check(os.path.isfile(dst) and not os.path.islink(dst),
              "the request is a regular file in the out-folder, not the planted link")
        data = open(dst, "rb").read() if os.path.isfile(dst) else b""
        check(b"<zz:SenderReference>sp-1<" in data, "the out-file holds sp-1's document")
        check(os.path.islink(os.path.join(out, ".v1_submissions.tmp")),
              "the link at the old temporary name is left alone")
        left = [n for n in os.listdir(out) if n.startswith(".ewtp-")]
        check(not left, "no temporary left behind (%s)" % left)

        # a link to a valid receipt is moved aside, never read
        code, body = t2.submit(zz_order("cb-1"))
        check(code == 202, "cb-1 accepted (%s %s)" % (code, body))
        st = t2.wait_state("cb-1", ["submitted", "dead", "failed"])
        check(st.get("state") == "submitted", "cb-1 waits for its receipt (%s)" % st.get("state"))
        ref = st.get("authority_ref") or "ZZREF-cb-1"
        receipt = os.path.join(outside, "receipt.json")
        write(receipt, json.dumps({"reference": ref, "status": "rejected", "code": "ZZ-E7",
                                   "message": "through a link"}))
        os.symlink(receipt, os.path.join(inn, "link-receipt.json"))
        wait_until(lambda: os.path.lexists(os.path.join(failed, "link-receipt.json")), 10)
        check(os.path.islink(os.path.join(failed, "link-receipt.json")),
              "a link in the in-folder moved to failed/ as a link")
        code, st = t2.status("cb-1")
        check(code == 200 and st.get("state") == "submitted",
              "the receipt behind the link was not read (%s)" % st.get("state"))
        log = read_log(proc.log_path)
        check("symbolic link" in log and "not a regular file" in log,
              "the refusals are logged")

        # a plain receipt file is still read
        write(os.path.join(inn, "receipt.json"),
              json.dumps({"reference": ref, "status": "accepted", "code": "OK",
                          "message": "cleared"}))
        st = t2.wait_state("cb-1", ["approved", "rejected"])
        check(st.get("state") == "approved", "a plain receipt file approves cb-1 (%s)" % st.get("state"))
        ok, took = livez(api)
        check(ok and took < 1.0, "/livez answers at the end (%s)" % took)
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
