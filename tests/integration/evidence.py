"""Evidence bundles (issue 18): the real ewtpd (SQLite, or with --pg the PostgreSQL store of
EWTP_TEST_PG_CONNINFO, as evidence_pg.sh runs it; a cn instance on the spool transport, an SM2
signing key and an RSA evidence key made here by openssl) against `ewtp-sim --country cn`, and
a zz instance over HTTPS against `ewtp-sim --country zz --tls-cert`.

1. an order reaches `approved`; GET /v1/messages/{id}/evidence is a tar archive whose
   manifest.json lists the entries, the head signature and the certificate, and whose
   evidence/ files hold the signed CEB311 exactly as it was written to spool_out (the file the
   simulator took); `ewtpctl evidence get` writes a bundle of the same entries;
   `ewtpctl evidence verify` accepts it (exit 0);
2. one byte of the CEB311 changed: verify exits 1 naming that entry;
3. the same change with the file's hash and the whole chain recomputed (the head too): verify
   exits 1 because the head signature no longer matches;
4. /metrics has ewtp_evidence_bytes > 0; another tenant gets 404 for the bundle;
5. the rejection explainer: an order whose signature customs cannot verify is rejected by a
   CEB900; its status error, its receipt event and its webhook carry the raw code, the plain
   cause and (none here) the pointer;
6. HTTPS: the attempt's request and answer entries name the endpoint and, as peer, the SHA-256
   fingerprint of the certificate the simulator served, equal to `openssl x509 -fingerprint
   -sha256` of that certificate's file; the bundle verifies;
7. ewtp_evidence_bytes in /metrics equals the bytes of every request and answer file of every
   message's bundle plus their meta texts (what the store counts).
Ends with "N passed, M failed"; exit 1 on any failure."""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SIM, SRC, Api, PostRecorder, check, check_config,  # noqa: E402
                          checks, ewtpctl, free_port, http_call, load_json, make_sm2_cert,
                          make_tmp, openssl, print_logs, remove_tmp, spawn, spawn_ewtpd,
                          spawn_cn_sim, stop, wait_port_file, wait_ready, wait_until,
                          write_ewtpd_config, write_token, zz_order)

VEC = os.path.join(SRC, "plugins", "cn", "vectors")
PG = "--pg" in sys.argv[1:]
PG_CONNINFO = os.environ.get("EWTP_TEST_PG_CONNINFO", "")
STORE = "PostgreSQL" if PG else "SQLite"


def config(tmp, api, key, crt, ekey, ecrt, hook, zz_port, zz_crt):
    for d in ("out", "in"):
        os.makedirs(os.path.join(tmp, "spool", d), exist_ok=True)
    for t in ("plat", "bad", "other", "tls"):
        write_token(tmp, t + ".token", t + "-token")
    write_token(tmp, "whsec", "whsec_" + "ab" * 16)
    conf = """tenants = (
  { id = "plat"; token_file = "plat.token"; destinations = [ "CN" ]; },
  { id = "bad"; token_file = "bad.token"; destinations = [ "CN" ]; webhook_url = "%(hook)s";
    webhook_secret_file = "whsec"; },
  { id = "other"; token_file = "other.token"; destinations = [ "CN" ]; },
  { id = "tls"; token_file = "tls.token"; destinations = [ "ZZ" ]; } );
delivery = { max_attempts = 3; max_age_ms = 600000; base_delay_ms = 50; max_delay_ms = 200;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
keys = ( { name = "cn-sign"; key = "%(key)s"; cert = "%(crt)s"; },
         { name = "evidence"; key = "%(ekey)s"; cert = "%(ecrt)s"; } );
evidence = { key = "evidence"; retention_days = 30; };
plugins = (
  { name = "cn-test"; plugin = "cn";
    settings = { cop_code = "3301980AGT"; cop_name = "E2E TEST BROKER";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; },
  { name = "cn-badsig"; plugin = "cn";
    settings = { cop_code = "3301960ABC"; cop_name = "E2E TEST PLATFORM";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign";
                 signature_method_uri = "urn:example:unknown-signature-algorithm"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; },
  { name = "zz-tls"; plugin = "zz"; settings = { sign_key = ""; sender_id = "EV-TLS"; };
    transport = "https"; endpoint = "https://127.0.0.1:%(zz_port)d"; ca_file = "%(zz_crt)s"; }
);
routes = ( { tenant = "bad"; destination = "CN"; instance = "cn-badsig"; },
           { destination = "CN"; instance = "cn-test"; },
           { tenant = "tls"; destination = "ZZ"; instance = "zz-tls"; } );
""" % {"key": key, "crt": crt, "ekey": ekey, "ecrt": ecrt, "hook": hook, "zz_port": zz_port,
       "zz_crt": zz_crt}
    return write_ewtpd_config(tmp, api, conf, pg_conninfo=PG_CONNINFO if PG else None)


def order(suffix, number):
    o = load_json(os.path.join(VEC, "import-declaration-621", "related", "1-order.json"))
    o["id"] = "ord-" + suffix
    o["order"]["number"] = number
    return o


def members(tar_bytes):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def pack(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def entry_hash(e):
    c = dict(e)
    c.pop("hash", None)
    text = json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def verify(conf, path):
    return ewtpctl(conf, "evidence", "verify", path)


def main():
    tmp = make_tmp("ewtp-evidence-")
    procs = []
    hook = PostRecorder().start()
    hook.url = "http://127.0.0.1:%d/hook" % hook.port
    try:
        api = free_port()
        key, crt = make_sm2_cert(os.path.join(tmp, "cn-sign.key"), os.path.join(tmp, "cn-sign.crt"),
                                 "/CN=ewtp evidence TEST")
        ekey, ecrt = os.path.join(tmp, "evidence.key"), os.path.join(tmp, "evidence.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ekey, "-out", ecrt,
                "-days", "2", "-subj", "/CN=ewtp evidence key TEST")
        # The HTTPS authority: ewtp-sim --country zz serving a certificate for 127.0.0.1.
        zkey, zcrt = os.path.join(tmp, "zz-tls.key"), os.path.join(tmp, "zz-tls.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", zkey, "-out", zcrt,
                "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
        zz_port_file = os.path.join(tmp, "zz.port")
        procs.append(spawn([SIM, "--country", "zz", "--listen", "127.0.0.1:0", "--port-file",
                            zz_port_file, "--tls-cert", zcrt, "--tls-key", zkey],
                           os.path.join(tmp, "zz-sim.log")))
        zz_port = wait_port_file(zz_port_file, procs[-1], 15)
        check(bool(zz_port), "ewtp-sim --country zz --tls-cert started")
        if PG:
            check(bool(PG_CONNINFO), "EWTP_TEST_PG_CONNINFO is set (evidence_pg.sh sets it)")
        conf = config(tmp, api, key, crt, ekey, ecrt, hook.url, int(zz_port or 0), zcrt)
        chk = check_config(conf)
        check(chk.returncode == 0, "ewtpd -t accepts evidence = { key; retention_days; }",
              chk.stderr)
        check(bool(spawn_cn_sim(tmp, procs)), "ewtp-sim --country cn started")
        procs.append(spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log")))
        check(wait_ready(api, procs[-1], 20), "ewtpd is ready")
        if not checks.failed:
            run(tmp, api, conf, hook)
            run_tls(tmp, api, conf, zcrt, zz_port)
            run_metric(api)
    finally:
        for p in reversed(procs):
            stop(p, 15)
        hook.stop()
        if checks.failed:
            print_logs([("ewtpd.log", os.path.join(tmp, "ewtpd.log")),
                        ("sim.log", os.path.join(tmp, "sim.log")),
                        ("zz-sim.log", os.path.join(tmp, "zz-sim.log"))], 3000)
        remove_tmp(tmp)


def run(tmp, api, conf, hook):
    plat = Api(api, "plat-token")
    o = order("ev1", "SO-EV-1")
    st, body = plat.submit(o)
    check(st == 202, "order accepted (202)", (st, body))
    m = plat.wait_state(o["id"], ("approved", "rejected", "dead"), 30)
    check(m and m["state"] == "approved", "order approved", m)

    # 1. the bundle over HTTP.
    st, raw, hdr = http_call("GET", "http://127.0.0.1:%d/v1/messages/%s/evidence" % (api, o["id"]),
                             token="plat-token")
    check(st == 200 and hdr.get("content-type") == "application/x-tar",
          "GET /evidence: 200 application/x-tar", (st, hdr))
    files = members(raw) if st == 200 else {}
    man = json.loads(files.get("manifest.json", b"{}"))
    entries = man.get("entries", [])
    check(man.get("format") == "ewtp-evidence/1" and entries and man.get("head") and
          man.get("signature", {}).get("value") and "BEGIN CERTIFICATE" in man.get("certificate", ""),
          "manifest.json: entries, head, signature and certificate", sorted(man))
    sent_dir = os.path.join(tmp, "spool", "out", "sent")
    sent = {}
    for n in os.listdir(sent_dir) if os.path.isdir(sent_dir) else []:
        with open(os.path.join(sent_dir, n), "rb") as f:
            sent[n] = f.read()
    ceb311 = [e for e in entries if e["kind"] == "request" and b"CEB311Message" in files.get(e["file"], b"")]
    check(len(ceb311) == 1, "the bundle holds one request with the CEB311", [e["file"] for e in entries])
    doc = files.get(ceb311[0]["file"]) if ceb311 else b""
    check(doc in sent.values(), "it is byte for byte the signed CEB311 written to spool_out",
          (len(doc), sorted(sent)))
    # The DXP envelope carries the CEB311 in Base64 (dxp:Data).
    inner = b""
    if b"<dxp:Data>" in doc:
        inner = base64.b64decode(doc.split(b"<dxp:Data>")[1].split(b"</dxp:Data>")[0])
    check(b"CEB311Message" in inner and b"SignatureValue" in inner and b"SO-EV-1" in inner,
          "the CEB311 in the bundle is the signed order SO-EV-1", inner[:200])
    check(ceb311 and ceb311[0]["meta"].get("peer", "").startswith("spool:"),
          "the request's peer is the spool folder", ceb311[0]["meta"] if ceb311 else None)
    kinds = {e["kind"] for e in entries}
    check({"request", "answer", "state", "receipt"} <= kinds,
          "requests, answers, the state history and the receipts are entries", sorted(kinds))
    prev = ""
    ok = True
    for e in entries:
        ok = ok and e["prev"] == prev and entry_hash(e) == e["hash"] and \
            hashlib.sha256(files[e["file"]]).hexdigest() == e["sha256"]
        prev = e["hash"]
    check(ok and man["head"] == prev, "each entry carries the hash of the one before; head = last")
    path = os.path.join(tmp, "bundle.tar")
    with open(path, "wb") as f:
        f.write(raw)
    r = verify(conf, path)
    check(r.returncode == 0, "ewtpctl evidence verify accepts the bundle (exit 0)",
          (r.returncode, r.stdout, r.stderr))
    cli = os.path.join(tmp, "cli.tar")
    r = ewtpctl(conf, "evidence", "get", o["id"], "--tenant", "plat", "--out", cli)
    check(r.returncode == 0 and os.path.exists(cli), "ewtpctl evidence get writes the bundle",
          (r.returncode, r.stderr))
    if os.path.exists(cli):
        with open(cli, "rb") as f:
            cfiles = members(f.read())
        cman = json.loads(cfiles.get("manifest.json", b"{}"))
        check([e["sha256"] for e in cman.get("entries", [])] == [e["sha256"] for e in entries],
              "the CLI's bundle has the same entries as the API's")
        r = verify(conf, cli)
        check(r.returncode == 0, "and it verifies", (r.returncode, r.stderr))

    # 2. one byte of the signed document changed.
    if ceb311:
        name = ceb311[0]["file"]
        bad = dict(files)
        b = bytearray(doc)
        i = b.find(b"<dxp:Data>") + len(b"<dxp:Data>") + 100
        b[i] = ord("A") if b[i] != ord("A") else ord("B")
        bad[name] = bytes(b)
        p2 = os.path.join(tmp, "byte.tar")
        with open(p2, "wb") as f:
            f.write(pack(bad))
        r = verify(conf, p2)
        seq = ceb311[0]["seq"]
        check(r.returncode == 1 and ("entry %d (%s)" % (seq, name)) in r.stderr,
              "one byte changed: verify exits 1 naming entry %d" % seq, (r.returncode, r.stderr))

        # 3. ... and the chain recomputed (file hash, every entry hash, the head).
        man2 = json.loads(json.dumps(man))
        prev = ""
        for e in man2["entries"]:
            if e["file"] == name:
                e["sha256"] = hashlib.sha256(bad[name]).hexdigest()
            e["prev"] = prev
            e["hash"] = entry_hash(e)
            prev = e["hash"]
        man2["head"] = prev
        bad["manifest.json"] = json.dumps(man2).encode()
        p3 = os.path.join(tmp, "chain.tar")
        with open(p3, "wb") as f:
            f.write(pack(bad))
        r = verify(conf, p3)
        check(r.returncode == 1 and "signature" in r.stderr,
              "recomputed chain: verify exits 1, the head signature no longer matches",
              (r.returncode, r.stderr))

    # 4. metrics, tenants.
    st, raw, _ = http_call("GET", "http://127.0.0.1:%d/metrics" % api)
    line = [x for x in raw.decode().splitlines() if x.startswith("ewtp_evidence_bytes ")]
    check(line and int(line[0].split()[1]) > 0, "/metrics: ewtp_evidence_bytes > 0", line)
    st, raw, _ = http_call("GET", "http://127.0.0.1:%d/v1/messages/%s/evidence" % (api, o["id"]),
                           token="other-token")
    check(st == 404, "another tenant's bundle: 404", st)

    # 5. the rejection explainer through status, events and the webhook.
    badapi = Api(api, "bad-token")
    o5 = order("ev5", "SO-EV-5")
    st, body = badapi.submit(o5)
    check(st == 202, "order with a bad signature accepted (202)", (st, body))
    m = badapi.wait_state(o5["id"], ("approved", "rejected", "dead"), 30)
    check(m and m["state"] == "rejected", "order rejected by the format check", m)
    errs = (m or {}).get("errors", [])
    check(errs and errs[0].get("code", "").startswith("CEB900:") and errs[0].get("cause"),
          "status: the error carries the raw code and the plain cause", errs)
    st, evs = badapi.call("GET", "/v1/messages/%s/events" % o5["id"])
    rec = [e for e in (evs or {}).get("events", []) if e.get("type") == "receipt"]
    check(rec and rec[-1]["detail"].get("cause") and rec[-1]["detail"].get("code"),
          "events: the receipt's detail carries code and cause", rec[-1:] if rec else evs)
    def bodies():
        return [json.loads(g[2]) for g in hook.posts("/hook")]
    wait_until(lambda: any(b.get("state") == "rejected" for b in bodies()), 15)
    hooks = bodies()
    rej = [h for h in hooks if h.get("state") == "rejected"]
    check(rej and rej[0].get("code", "").startswith("CEB900:") and rej[0].get("cause"),
          "webhook of the rejection carries code and cause", hooks)


def bundle(api, token, mid):
    """The parsed manifest and the files of mid's bundle ({}, {} when there is none)."""
    st, raw, _ = http_call("GET", "http://127.0.0.1:%d/v1/messages/%s/evidence" % (api, mid),
                           token=token)
    if st != 200:
        return {}, {}, raw
    files = members(raw)
    return json.loads(files.get("manifest.json", b"{}")), files, raw


def run_tls(tmp, api, conf, zcrt, zz_port):
    """6. the TLS peer of an HTTPS attempt is the certificate the authority served."""
    tls = Api(api, "tls-token")
    o = zz_order("zz-tls-1")
    st, body = tls.submit(o)
    check(st == 202, "ZZ order over HTTPS accepted (202)", (st, body))
    m = tls.wait_state(o["id"], ("approved", "rejected", "dead"), 30)
    check(m and m["state"] == "approved", "ZZ order over HTTPS approved", m)
    man, files, raw = bundle(api, "tls-token", o["id"])
    entries = man.get("entries", [])
    sent = [e for e in entries if e["kind"] == "request"]
    answers = [e for e in entries if e["kind"] == "answer"]
    check(sent and answers, "the HTTPS attempt's request and answer are in the bundle",
          [e["file"] for e in entries])
    # "sha256 Fingerprint=AB:CD:..." -> "sha256:abcd..." (httpc.c's form)
    text = subprocess.run(["openssl", "x509", "-in", zcrt, "-noout", "-fingerprint", "-sha256"],
                          check=True, capture_output=True, text=True).stdout
    fp = "sha256:" + text.strip().split("=", 1)[1].replace(":", "").lower()
    check(len(fp) == 7 + 64, "openssl gives the SHA-256 fingerprint of the served certificate", fp)
    peers = {e["meta"].get("peer") for e in sent + answers}
    check(peers == {fp}, "the recorded TLS peer is the simulator's certificate (%s)" % fp,
          sorted(p or "" for p in peers))
    check({e["meta"].get("endpoint") for e in sent} == {"https://127.0.0.1:%d" % zz_port},
          "the request names the HTTPS endpoint", [e["meta"] for e in sent])
    doc = files.get(sent[0]["file"], b"") if sent else b""
    check(b"zz-tls-1" in doc, "the request file is the document sent for zz-tls-1", doc[:200])
    check(any(a["meta"].get("status") in (200, 201, 202) for a in answers),
          "the answer entry has the authority's status", [a["meta"] for a in answers])
    outcome = [e for e in entries if e["kind"] == "state" and
               b'"outcome"' in files.get(e["file"], b"")]
    check(outcome, "the attempt's outcome is in the state history beside its evidence",
          [e["file"] for e in entries])
    path = os.path.join(tmp, "tls.tar")
    with open(path, "wb") as f:
        f.write(raw)
    r = verify(conf, path)
    check(r.returncode == 0, "the HTTPS bundle verifies", (r.returncode, r.stderr))


def run_metric(api):
    """7. ewtp_evidence_bytes: the request and answer bytes and their meta, of every message."""
    total = 0
    for token, mid in (("plat-token", "ord-ev1"), ("bad-token", "ord-ev5"),
                       ("tls-token", "zz-tls-1")):
        man, files, _ = bundle(api, token, mid)
        for e in man.get("entries", []):
            if e["kind"] in ("request", "answer"):
                total += len(files[e["file"]])
                if e["meta"] is not None:
                    total += len(json.dumps(e["meta"], sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False).encode())
    got = {"v": -1}

    def metric():
        # The store's figures are read at most once a second: an earlier scrape's may show.
        st, raw, _ = http_call("GET", "http://127.0.0.1:%d/metrics" % api)
        line = [x for x in raw.decode().splitlines() if x.startswith("ewtp_evidence_bytes ")]
        got["v"] = int(line[0].split()[1]) if line else -1
        return got["v"] == total
    wait_until(metric, 10, 0.2)
    got = got["v"]
    check(total > 0 and got == total,
          "%s: ewtp_evidence_bytes %d = the bundles' request and answer bytes and meta" %
          (STORE, got), (got, total))


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    sys.exit(checks.summary(" (%.1f s)" % (time.time() - t0)))
