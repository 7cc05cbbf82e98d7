"""The remote signer (issue 18): ewtp-signer on loopback with keys in a SoftHSM2 token made
here (RSA 2048 and EC P-256 generated on the token by pkcs11-tool, so their private halves never
exist outside it), an SM2 key file and an external command, and test certificates made here by
the openssl CLI (a CA, the agent's certificate for 127.0.0.1, client certificates).

1. Through the agent's API (mutual TLS from Python's ssl): each key's signature verifies with
   the openssl CLI against the public key read from the token or the key file (RSA-SHA256,
   RSA-SHA512, ECDSA-SHA256, SM2-SM3 with the default distinguishing id, a command's
   RSA-SHA256); an algorithm that does not fit the key 422; an unknown key and a key this
   client is not allowed 403 alike; a body over the limit 413; a client certificate of another
   CA (with an allowed CN) and no client certificate refused in the handshake; the agent's log
   holds neither the data nor a signature; `-t` with a wrong PIN fails and names no PIN.
2. ewtpd with a China instance whose SM2 key is `remote` (this agent): an order is signed
   through the agent and approved by the customs simulator, which checks the SM2 signature
   against the certificate of ewtpd's configuration; with the agent stopped, a second order
   retries (never rejected or dead, ewtpd alive, the reason logged), and once the agent is
   back on the same port it is approved.
Ends with "N passed, M failed"; exit 1 on any failure."""
import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (BIN, SRC, Api, check, check_config, checks, free_port,  # noqa: E402
                          keep_tmp_if_failed, load_json, log_tail, make_tmp, openssl,
                          sanitizer_report, spawn, spawn_ewtpd, spawn_sim, stop, wait_port,
                          wait_port_file, wait_ready, wait_until, write, write_ewtpd_config,
                          write_token)

SIGNER = os.path.join(BIN, "ewtp-signer")
SOFTHSM_MODULE = next((p for p in ("/usr/lib/softhsm/libsofthsm2.so",
                                   "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
                       if os.path.exists(p)), "/usr/lib/softhsm/libsofthsm2.so")
PIN = "4711"
DATA = b"<SignedInfo>remote signer test \xe4\xb8\xad</SignedInfo>"


def run(argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


class Pki:
    """A CA, the agent's certificate (IP 127.0.0.1), an allowed client, a client the keys do not
    name, and a client with the allowed CN from another CA."""

    def __init__(self, tmp):
        self.tmp = tmp
        p = lambda n: os.path.join(tmp, n)  # noqa: E731
        self.ca_key, self.ca = p("ca.key"), p("ca.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=signer test CA")
        self.srv, self.srv_key = self.leaf("signer", "subjectAltName=IP:127.0.0.1")
        self.cli, self.cli_key = self.leaf("ewtpd-gw")
        self.other, self.other_key = self.leaf("somebody-else")
        rogue_key, rogue_ca = p("rogue-ca.key"), p("rogue-ca.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", rogue_key, "-out", rogue_ca, "-days", "2", "-subj", "/CN=rogue CA")
        self.rogue, self.rogue_key = self.leaf("ewtpd-gw", ca=(rogue_ca, rogue_key), name="rogue")

    def leaf(self, cn, ext=None, ca=None, name=None):
        name = name or cn
        key, csr, crt = (os.path.join(self.tmp, name + s) for s in (".key", ".csr", ".crt"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        ca_crt, ca_key = ca or (self.ca, self.ca_key)
        args = ["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "2"]
        if ext:
            ext_file = write(os.path.join(self.tmp, name + ".ext"), ext + "\n")
            args += ["-extfile", ext_file]
        openssl(*args)
        os.chmod(key, 0o600)
        return crt, key


def make_token(tmp):
    """A SoftHSM2 token in tmp/tokens with an RSA and an EC key generated on it. The environment
    (SOFTHSM2_CONF) and the public keys (PEM) as read back from the token."""
    os.makedirs(os.path.join(tmp, "tokens"))
    conf = write(os.path.join(tmp, "softhsm2.conf"),
                 "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                 "log.level = ERROR\n" % tmp)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    r = run(["softhsm2-util", "--init-token", "--free", "--label", "ewtp-test", "--pin", PIN,
             "--so-pin", "123456"], env)
    check(r.returncode == 0, "SoftHSM2 token initialised", r.stderr)
    pubs = {}
    for label, kid, ktype in (("rsa", "01", "rsa:2048"), ("ec", "02", "EC:prime256v1")):
        tool = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "ewtp-test"]
        r = run(tool + ["--login", "--pin", PIN, "--keypairgen", "--key-type", ktype,
                        "--label", label, "--id", kid], env)
        check(r.returncode == 0, "%s key generated on the token" % label, r.stderr)
        der = os.path.join(tmp, label + ".pub.der")
        r = run(tool + ["--read-object", "--type", "pubkey", "--id", kid, "-o", der], env)
        pem = os.path.join(tmp, label + ".pub.pem")
        openssl("pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem)
        pubs[label] = pem
    return env, pubs


def signer_config(tmp, pki, port, pin_file, sm2_key, cmd_key):
    return write(os.path.join(tmp, "signer.conf"), """
listen = "127.0.0.1:%(port)d";
tls = { cert = "%(srv)s"; key = "%(srv_key)s"; client_ca = "%(ca)s"; };
limits = { max_request_bytes = 65536; workers = 4; timeout_ms = 5000; };
keys = (
  { name = "hsm-rsa"; clients = [ "CN=ewtpd-gw" ];
    pkcs11 = { module = "%(module)s"; token = "ewtp-test"; label = "rsa"; pin_file = "%(pin)s"; }; },
  { name = "hsm-ec"; clients = [ "CN=ewtpd-gw" ];
    pkcs11 = { module = "%(module)s"; token = "ewtp-test"; id = "02"; pin_file = "%(pin)s"; }; },
  { name = "cn-sm2"; clients = [ "CN=ewtpd-gw" ]; key_file = "%(sm2)s"; },
  { name = "card"; clients = [ "CN=ewtpd-gw" ]; timeout_ms = 10000;
    command = "openssl dgst -sha256 -sign %(cmd)s"; },
  { name = "not-yours"; clients = [ "CN=somebody-else" ]; key_file = "%(sm2)s"; }
);
""" % {"port": port, "srv": pki.srv, "srv_key": pki.srv_key, "ca": pki.ca,
       "module": SOFTHSM_MODULE, "pin": pin_file, "sm2": sm2_key, "cmd": cmd_key})


def tls_context(pki, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def call(port, ctx, method, path, body=None):
    """(status, JSON answer) or (None, the exception) when the connection fails."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    except (OSError, http.client.HTTPException) as e:
        return None, e
    finally:
        conn.close()


def sign(port, ctx, key, alg, data=DATA):
    return call(port, ctx, "POST", "/v1/sign",
                {"key": key, "alg": alg, "data": base64.b64encode(data).decode()})


def verifies(tmp, pub, alg, sig):
    """The openssl CLI's verdict on sig over DATA with the public key pub."""
    data_file = write(os.path.join(tmp, "data.bin"), "")
    with open(data_file, "wb") as f:
        f.write(DATA)
    sig_file = os.path.join(tmp, "sig.bin")
    with open(sig_file, "wb") as f:
        f.write(sig)
    if alg == "sm2-sm3":
        argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest",
                "sm3", "-in", data_file, "-sigfile", sig_file, "-pkeyopt",
                "distid:1234567812345678"]
    else:
        md = {"rsa-sha256": "-sha256", "rsa-sha512": "-sha512", "ecdsa-sha256": "-sha256"}[alg]
        argv = ["openssl", "dgst", md, "-verify", pub, "-signature", sig_file, data_file]
    r = run(argv)
    return r.returncode == 0


def start_signer(conf, log, env, port_file=None, append=False):
    argv = [SIGNER, "-c", conf] + (["--port-file", port_file] if port_file else [])
    return spawn(argv, log, env=env, append=append)


def api_checks(tmp, pki, port, pubs):
    good = tls_context(pki, pki.cli, pki.cli_key)
    st, body = call(port, good, "GET", "/v1/keys")
    check(st == 200 and body.get("keys") == ["hsm-rsa", "hsm-ec", "cn-sm2", "card"],
          "GET /v1/keys lists the keys this client may use", (st, body))
    for key, alg, pub in (("hsm-rsa", "rsa-sha256", pubs["rsa"]),
                          ("hsm-rsa", "rsa-sha512", pubs["rsa"]),
                          ("hsm-ec", "ecdsa-sha256", pubs["ec"]),
                          ("cn-sm2", "sm2-sm3", pubs["sm2"]),
                          ("card", "rsa-sha256", pubs["card"])):
        st, body = sign(port, good, key, alg)
        sig = base64.b64decode(body["signature"]) if st == 200 else b""
        check(st == 200 and body.get("key") == key and body.get("alg") == alg,
              "%s %s signed through the agent" % (key, alg), (st, body))
        check(sig and verifies(tmp, pub, alg, sig),
              "%s %s signature verifies with openssl" % (key, alg), len(sig))
    st, body = sign(port, good, "cn-sm2", "rsa-sha256")
    check(st == 422 and body.get("error") == "bad_alg", "an algorithm that does not fit: 422",
          (st, body))
    st, body = sign(port, good, "no-such-key", "rsa-sha256")
    st2, body2 = sign(port, good, "not-yours", "sm2-sm3")
    check(st == 403 and st2 == 403 and body == body2,
          "unknown key and a key of another client: the same 403", (st, body, st2, body2))
    other = tls_context(pki, pki.other, pki.other_key)
    st, body = sign(port, other, "cn-sm2", "sm2-sm3")
    check(st == 403, "a client of the CA that the key does not name: 403", (st, body))
    st, body = sign(port, other, "not-yours", "sm2-sm3")
    check(st == 200, "that client's own key: 200", (st, body))
    st, body = call(port, good, "POST", "/v1/sign", b"{" + b" " * 70000 + b"}")
    check(st == 413, "a body over max_request_bytes: 413", (st, body))
    st, body = call(port, good, "POST", "/v1/sign", {"key": "cn-sm2", "alg": "sm2-sm3",
                                                     "data": "not base64!"})
    check(st == 400, "data that is not Base64: 400", (st, body))
    rogue = tls_context(pki, pki.rogue, pki.rogue_key)
    st, err = sign(port, rogue, "cn-sm2", "sm2-sm3")
    check(st is None, "a certificate of another CA (allowed CN) refused in the handshake", err)
    st, err = sign(port, tls_context(pki), "cn-sm2", "sm2-sm3")
    check(st is None, "no client certificate refused in the handshake", err)


def cn_config(tmp, api, pki, signer_port, cert):
    for d in ("out", "in"):
        os.makedirs(os.path.join(tmp, "spool", d), exist_ok=True)
    write_token(tmp, "plat.token", "plat-token")
    conf = """tenants = ( { id = "plat"; token_file = "plat.token"; destinations = [ "CN" ]; } );
delivery = { max_attempts = 50; max_age_ms = 600000; base_delay_ms = 100; max_delay_ms = 300;
  request_timeout_ms = 3000; lease_ms = 20000; poll_interval_ms = 200; scan_interval_ms = 50;
  workers = 2; };
keys = ( { name = "cn-sign"; cert = "%(cert)s";
           remote = { url = "https://127.0.0.1:%(port)d"; key = "cn-sm2";
                      client_cert = "%(cli)s"; client_key = "%(cli_key)s"; ca_file = "%(ca)s";
                      timeout_ms = 3000; }; } );
plugins = (
  { name = "cn-test"; plugin = "cn";
    settings = { cop_code = "3301980AGT"; cop_name = "E2E TEST BROKER";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign"; };
    transport = "spool"; spool_out = "spool/out"; spool_in = "spool/in"; } );
routes = ( { destination = "CN"; instance = "cn-test"; } );
""" % {"cert": cert, "port": signer_port, "cli": pki.cli, "cli_key": pki.cli_key, "ca": pki.ca}
    return write_ewtpd_config(tmp, api, conf)


def cn_order(suffix):
    rel = os.path.join(SRC, "plugins", "cn", "vectors", "import-declaration-621", "related")
    order = load_json(os.path.join(rel, "1-order.json"))
    order["id"] = "ord-" + suffix
    order["order"]["number"] = "SO-RS-" + suffix.upper()
    return order


def ewtpd_checks(tmp, pki, signer_conf, signer_port, env, procs):
    api = free_port()
    sm2_crt = os.path.join(tmp, "cn-sm2.crt")
    openssl("req", "-x509", "-key", os.path.join(tmp, "cn-sm2.key"), "-sm3", "-out", sm2_crt,
            "-days", "2", "-subj", "/CN=ewtp remote signer TEST")
    conf = cn_config(tmp, api, pki, signer_port, sm2_crt)
    chk = check_config(conf)
    check(chk.returncode == 0, "ewtpd -t accepts a remote key", chk.stderr)
    port_file = os.path.join(tmp, "sim.port")
    procs["sim"] = spawn_sim("cn", os.path.join(tmp, "sim.log"), port_file=port_file,
                             settings=[("spool_out", os.path.join(tmp, "spool", "out")),
                                       ("spool_in", os.path.join(tmp, "spool", "in")),
                                       ("delay_ms", 100), ("poll_ms", 50)])
    check(bool(wait_port_file(port_file, procs["sim"], 15)), "ewtp-sim --country cn started")
    procs["ewtpd"] = spawn_ewtpd(conf, os.path.join(tmp, "ewtpd.log"))
    if not check(wait_ready(api, procs["ewtpd"], 30), "ewtpd is ready"):
        return
    plat = Api(api, "plat-token")
    order = cn_order("a1")
    st, body = plat.submit(order)
    check(st == 202, "order accepted (202)", (st, body))
    m = plat.wait_state(order["id"], ("approved", "rejected", "dead"), 30)
    check(m and m.get("state") == "approved",
          "order signed through the agent and approved (the simulator checked the SM2 signature)",
          m)
    signer_log = log_tail(procs["signer"].log_path, 100000)
    check('client="ewtpd-gw" POST /v1/sign key=cn-sm2 alg=sm2-sm3' in signer_log and
          "status=200" in signer_log, "the agent logged ewtpd's signature request", signer_log[-800:])

    # The agent goes away: the delivery fails and is retried, nothing is lost.
    check(stop(procs["signer"], 15) == 0, "the agent stops cleanly on SIGTERM")
    order2 = cn_order("b2")
    st, body = plat.submit(order2)
    check(st == 202, "second order accepted while the agent is down (202)", (st, body))
    m = wait_until(lambda: (lambda d: d if d and d.get("attempts", 0) >= 2 else None)(
        plat.status(order2["id"])[1]), 20, 0.1)
    check(m and m.get("state") not in ("rejected", "dead", "approved") and
          any(r.get("state") == "retrying" for r in m.get("receipts", [])),
          "with the agent down the order is retried, not rejected or dead", m)
    check(wait_ready(api, procs["ewtpd"], 5, path="/livez"), "ewtpd alive while the agent is down")
    check("remote signer" in log_tail(os.path.join(tmp, "ewtpd.log"), 200000),
          "ewtpd logged why the signature failed")
    procs["signer"] = start_signer(signer_conf, procs["signer"].log_path, env, append=True)
    check(wait_port(signer_port, procs["signer"], 20), "the agent is back on its port")
    m = plat.wait_state(order2["id"], ("approved", "rejected", "dead"), 40)
    check(m and m.get("state") == "approved", "the second order approved once the agent is back",
          m)


def main():
    tmp = make_tmp("ewtp-remote-signer-")
    procs = {}
    logs = [("signer.log", os.path.join(tmp, "signer.log")),
            ("ewtpd.log", os.path.join(tmp, "ewtpd.log")),
            ("sim.log", os.path.join(tmp, "sim.log"))]
    try:
        pki = Pki(tmp)
        env, pubs = make_token(tmp)
        pin_file = write_token(tmp, "token.pin", PIN, 0o600)
        sm2_key = os.path.join(tmp, "cn-sm2.key")
        openssl("genpkey", "-algorithm", "SM2", "-out", sm2_key)
        os.chmod(sm2_key, 0o600)
        pubs["sm2"] = os.path.join(tmp, "cn-sm2.pub.pem")
        openssl("pkey", "-in", sm2_key, "-pubout", "-out", pubs["sm2"])
        cmd_key = os.path.join(tmp, "card.key")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                cmd_key)
        pubs["card"] = os.path.join(tmp, "card.pub.pem")
        openssl("pkey", "-in", cmd_key, "-pubout", "-out", pubs["card"])
        port = free_port()
        conf = signer_config(tmp, pki, port, pin_file, sm2_key, cmd_key)
        r = run([SIGNER, "-c", conf, "-t"], env)
        check(r.returncode == 0, "ewtp-signer -t opens every key (PKCS#11 login included)",
              r.stderr)
        bad_pin = write_token(tmp, "bad.pin", "999999", 0o600)
        with open(conf) as f:
            text = f.read()
        bad_conf = write(os.path.join(tmp, "bad-pin.conf"), text.replace(pin_file, bad_pin))
        r = run([SIGNER, "-c", bad_conf, "-t"], env)
        check(r.returncode == 1 and "login" in r.stderr and "999999" not in r.stderr,
              "a wrong PIN fails -t, and the PIN is not printed", r.stderr)
        procs["signer"] = start_signer(conf, os.path.join(tmp, "signer.log"), env)
        if not check(wait_port(port, procs["signer"], 20), "ewtp-signer listens"):
            return
        api_checks(tmp, pki, port, pubs)
        ewtpd_checks(tmp, pki, conf, port, env, procs)
        text = log_tail(os.path.join(tmp, "signer.log"), 1000000)
        check(base64.b64encode(DATA).decode() not in text and "signature" not in text,
              "the agent's log holds neither data nor signatures")
    finally:
        status = {name: stop(p, 20) for name, p in procs.items()}
        check(status.get("ewtpd") in (None, 0) and status.get("signer") in (None, 0),
              "ewtpd and the agent exit 0 on SIGTERM", status)
        for name, path in logs:
            if os.path.exists(path):
                check(not sanitizer_report(log_tail(path, 1000000)),
                      "no sanitizer report in %s" % name)
        keep_tmp_if_failed(tmp, logs)


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    except Exception as e:  # a crash of the test is a failure, not a traceback only
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    sys.exit(checks.summary(" (%.1f s)" % (time.time() - t0)))
