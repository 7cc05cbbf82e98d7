"""The EIMS simulator's rules over HTTP (ewtp-sim --country et): login, bearer tokens, the
reconstructed samples of ../shared/reference/et/samples registered as they are, the sequence
rules (406/417 with the expected number), identical resends, verify, cancel, credit-note rules
and the RSA-SHA512 envelope (signed here with the openssl CLI, an independent signer).
Ends with "N passed, M failed"."""
import base64
import copy
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../../tests/integration"))
from ewtp_harness import (checks, check, http_json, keep_tmp_if_failed, make_tmp,  # noqa: E402
                          spawn_sim, stop, wait_port_file, SRC)

SHARED = os.environ.get("EWTP_SHARED_DIR", os.path.join(SRC, "../shared"))
SAMPLES = os.path.join(SHARED, "reference/et/samples")
SETTINGS = {"client_id": "cid", "client_secret": "csecret", "api_key": "akey",
            "tin": "0099990001", "start_document_number": "42"}


def sample(name):
    with open(os.path.join(SAMPLES, "reconstructed-" + name + ".json")) as f:
        return json.load(f)


def main():
    tmp = make_tmp("ewtp-et-sim-")
    log = os.path.join(tmp, "sim.log")
    pf = os.path.join(tmp, "port")
    sim = spawn_sim("et", log, SETTINGS, port_file=pf)
    try:
        port = wait_port_file(pf, sim)
        base = "http://127.0.0.1:%d" % port

        def post(path, body, token=None):
            return http_json("POST", base + path, body, token=token)

        login = sample("login-request")
        st, ans = post("/auth/login", login)
        check(st == 401, "login with the sample's placeholder credentials is refused (401)", ans)
        login.update(clientId="cid", clientSecret="csecret", apikey="akey")
        st, ans = post("/auth/login", login)
        token = (ans or {}).get("data", {}).get("accessToken")
        check(st == 200 and token and ans["data"]["expiresIn"] == 3600,
              "login answers data.accessToken and expiresIn like the sample", ans)
        exp = sample("login-response")
        check(set(ans) == set(exp) and set(ans["data"]) == set(exp["data"]),
              "login answer has the sample's members")
        inv = sample("register-invoice-request")
        inv["ReferenceDetails"]["PreviousIrn"] = None
        st, ans = post("/v1/register", inv)
        check(st == 401, "register without a token: 401", ans)
        st, ans = post("/v1/register", inv, token="et-access-99")
        check(st == 401, "register with an unknown token: 401", ans)
        st, ans = post("/v1/register", inv, token)
        irn = (ans or {}).get("body", {}).get("irn")
        check(st == 200 and irn and set(ans["body"]) == set(sample("register-response")["body"]),
              "the sample invoice (document 42) registers, answer shaped like the sample", ans)
        st, again = post("/v1/register", inv, token)
        check(st == 200 and again["body"]["irn"] == irn,
              "an identical resend returns the original IRN (assumption)", again)
        nxt = copy.deepcopy(inv)
        nxt["DocumentDetails"]["DocumentNumber"] = "44"
        nxt["SourceSystem"]["InvoiceCounter"] = 44
        nxt["ReferenceDetails"]["PreviousIrn"] = irn
        st, ans = post("/v1/register", nxt, token)
        msgs = (ans or {}).get("body", [{}])[0].get("errorMessage", [])
        check(st == 406 and ans["statusCode"] == 406 and
              any("expected : 43" in m for m in msgs),
              "a gap (44 after 42): 406 with \"expected : 43\"", ans)
        nxt["DocumentDetails"]["DocumentNumber"] = "43"
        st, ans = post("/v1/register", nxt, token)
        check(st == 417 and any("Invoice counter" in m and "expected : 43" in m
                                for m in ans["body"][0]["errorMessage"]),
              "a wrong invoice counter alone: 417 with the expected counter", ans)
        nxt["SourceSystem"]["InvoiceCounter"] = 43
        nxt["ReferenceDetails"]["PreviousIrn"] = "SOMETHING-ELSE"
        st, ans = post("/v1/register", nxt, token)
        check(st == 417, "a wrong previous IRN: 417", ans)
        cre = sample("register-credit-note-request")
        cre["DocumentDetails"]["DocumentNumber"] = "43"
        cre["SourceSystem"]["InvoiceCounter"] = 43
        cre["ReferenceDetails"]["PreviousIrn"] = irn
        cre["ReferenceDetails"]["RelatedDocument"] = "NOT-AN-IRN"
        st, ans = post("/v1/register", cre, token)
        check(st == 400, "a credit note whose RelatedDocument is no IRN: 400", ans)
        cre["ReferenceDetails"]["RelatedDocument"] = irn
        cre["TransactionType"] = "B2C"
        st, ans = post("/v1/register", cre, token)
        check(st == 400 and ans["body"][0].get("errorCode") == "7030",
              "a credit note with another transaction type: rule 7030", ans)
        cre["TransactionType"] = "B2B"
        cre["ItemList"][0]["ItemCode"] = "OTHER"
        st, ans = post("/v1/register", cre, token)
        check(st == 400 and ans["body"][0].get("errorCode") == "7020",
              "a credit note with an item not on the invoice: rule 7020", ans)
        cre["ItemList"][0]["ItemCode"] = "SKU-COF-1KG"
        st, ans = post("/v1/register", cre, token)
        cre_irn = (ans or {}).get("body", {}).get("irn")
        check(st == 200 and cre_irn, "the sample credit note (43) registers against 42", ans)
        bad = copy.deepcopy(inv)
        bad["DocumentDetails"]["DocumentNumber"] = "44"
        bad["SourceSystem"]["InvoiceCounter"] = 44
        bad["ReferenceDetails"]["PreviousIrn"] = cre_irn
        bad["ItemList"][0]["TaxAmount"] = 149.0
        st, ans = post("/v1/register", bad, token)
        check(st == 400, "VAT that is not 15 % of the line: 400", ans)
        bad["ItemList"][0]["TaxAmount"] = 150.0
        del bad["SellerDetails"]["VatNumber"]
        st, ans = post("/v1/register", bad, token)
        check(st == 400 and ans["body"][0].get("errorCode") == "1028",
              "VAT lines without the seller's VatNumber: rule 1028", ans)
        st, ans = post("/v1/verify", {"irn": irn}, token)
        check(st == 200 and ans["body"]["status"] == "ACTIVE", "verify: ACTIVE", ans)
        st, ans = post("/v1/verify", {"irn": "nope"}, token)
        check(st == 404, "verify an unknown IRN: 404", ans)
        cancel = sample("cancel-request")
        cancel["Irn"] = irn
        cancel["ReasonCode"] = "7"
        st, ans = post("/v1/cancel", cancel, token)
        check(st == 400, "cancel with ReasonCode 7: 400", ans)
        cancel["ReasonCode"] = "1"
        st, ans = post("/v1/cancel", cancel, token)
        check(st == 200 and set(ans["body"]) == set(sample("cancel-response")["body"]),
              "cancel answers like the sample", ans)
        st, ans2 = post("/v1/cancel", cancel, token)
        check(st == 200 and ans2["body"] == ans["body"], "a repeated cancel answers the same")
        st, ans = post("/v1/verify", {"irn": irn}, token)
        check(st == 200 and ans["body"]["status"] == "CANCELLED", "verify after cancel: CANCELLED")
        st, rep = http_json("GET", base + "/_et/chain/0099990001/PLACEHOLDER-SYSTEM-NO")
        check(st == 200 and [d["number"] for d in rep["registered"]] == [42, 43] and
              rep["refused_sequence"] == 3,
              "the chain holds 42 and 43, three sequence refusals", rep)
        # The RSA-SHA512 envelope, signed by the openssl CLI.
        key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", crt, "-subj", "/CN=et-test", "-days", "2"], check=True,
                       capture_output=True)
        payload = json.dumps({"irn": cre_irn}, separators=(",", ":")).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha512", "-sign", key], input=payload,
                             check=True, capture_output=True).stdout
        with open(crt, "rb") as f:
            pem = f.read()
        env = b'{"request":' + payload + b',"signature":"' + base64.b64encode(sig) + \
            b'","certificate":"' + base64.b64encode(pem) + b'"}'
        st, ans = post("/v1/verify", env, token)
        check(st != 501, "libewtp verifies RSA-SHA512 (ABI 1.3)", ans)
        check(st == 200 and ans["body"]["irn"] == cre_irn, "a signed verify request is accepted",
              ans)
        tampered = env.replace(cre_irn.encode(), irn.encode(), 1)
        st, ans = post("/v1/verify", tampered, token)
        check(st == 400, "a request that does not match its signature: 400", ans)
        st, ans = http_json("POST", base + "/_sim/control", {"require_signature": "true"})
        st, ans = post("/v1/verify", {"irn": cre_irn}, token)
        check(st == 400, "with require_signature an unsigned request is refused", ans)
    finally:
        status = stop(sim)
        check(status == 0, "simulator stops cleanly", status)
        keep_tmp_if_failed(tmp, [("simulator", log)])


if __name__ == "__main__":
    sys.exit(checks.run(main))
