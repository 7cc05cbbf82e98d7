#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/run.sh: OUT/<target>/ for message, json, xml,
config and plugin-<cc>, from the official samples (../shared/reference/*/samples), the
golden vectors (plugins/*/vectors) and the repository's own corpus and configurations.
Usage: seeds.py SOURCE_DIR SHARED_DIR OUT"""
import glob
import hashlib
import json
import os
import sys

src, shared, out = sys.argv[1:4]


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


vectors_json = glob.glob(f"{src}/plugins/*/vectors/*/input.json")
corpus_json = glob.glob(f"{src}/tests/corpus/*/*.json")
sample_json = glob.glob(f"{shared}/reference/*/samples/**/*.json", recursive=True)
sample_xml = glob.glob(f"{shared}/reference/*/samples/**/*.xml", recursive=True)
answer_files = glob.glob(f"{src}/plugins/*/vectors/*/answers/*.json")
be_answers = glob.glob(f"{src}/plugins/be/tests/answers/*.xml")
expected_xml = glob.glob(f"{src}/plugins/*/vectors/*/expected/*.xml")[:60]

for p in vectors_json + corpus_json:
    put("message", read(p))
for p in vectors_json + corpus_json + sample_json + answer_files:
    put("json", read(p))
for p in sample_xml + be_answers + expected_xml:
    put("xml", read(p))
for p in glob.glob(f"{src}/conf/*.conf") + glob.glob(f"{src}/plugins/*/vectors/*/settings.conf"):
    put("config", read(p))


def plugin_seed(cc, mode, case, status, req, headers, body):
    head = f"{mode} {case} {status} {req}\n" + "".join(f"{k}: {v}\n" for k, v in headers) + "\n"
    put(f"plugin-{cc}", head.encode() + (body if isinstance(body, bytes) else body.encode()))


# my: the answers of the answers-* vectors (case 0 submit, 1 poll, 2 cancel), as recorded.
my_case = {"answers-submit": 0, "answers-poll": 1, "answers-cancel": 2}
for p in answer_files:
    vec = os.path.basename(os.path.dirname(os.path.dirname(p)))
    cc = p.split("/plugins/")[1].split("/")[0]
    cc = "zz" if cc == "template" else cc
    doc = json.loads(read(p))
    body = doc.get("body")
    body = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    status = doc.get("status") or (-1 if doc.get("transport_error") else 0)
    hdrs = list((doc.get("headers") or {}).items())
    case = my_case.get(vec, 0)
    plugin_seed(cc, "I", case, status, doc.get("request_index", 0), hdrs, body)
    if cc == "my" and case == 0:
        plugin_seed(cc, "B", case, status, 0, hdrs, body)

xml_ct = [("Content-Type", "application/xml")]
json_ct = [("Content-Type", "application/json")]
# cn: every official sample as an inbound receipt and as an HTTP answer.
for p in glob.glob(f"{shared}/reference/cn/samples/**/*.xml", recursive=True):
    name = os.path.basename(p)
    plugin_seed("cn", "R", 0, 0, 0, [("Name", name)], read(p))
    plugin_seed("cn", "I", 0, 200, 0, xml_ct, read(p))
# be: the IDMS / access point answers as receipts and answers, plus test_be_answers' shapes.
for p in be_answers:
    plugin_seed("be", "R", 0, 1, 0, [("Name", os.path.basename(p))] + xml_ct, read(p))
    plugin_seed("be", "I", 0, 200, 0, xml_ct, read(p))
plugin_seed("be", "I", 0, 503, 0, [("Retry-After", "30")], "")
plugin_seed("be", "I", 0, 409, 0, [], "")
plugin_seed("be", "I", 1, 202, 0, json_ct, '{"id":"ap-778","status":"queued"}')
plugin_seed("be", "I", 1, 200, 0, json_ct, '{"id":"ap-779","status":"delivered"}')
plugin_seed("be", "I", 0, -1, 0, [], "")
# my: official samples as bodies (documents the API echoes back).
for p in glob.glob(f"{shared}/reference/my/samples/*.json")[:6]:
    plugin_seed("my", "I", 1, 200, 0, json_ct, read(p))
# zz: the simulator's answer shapes (tests/unit/test_zz_interpret.c).
for st, body in [(202, '{"reference":"ZZ-1","status":"received"}'),
                 (200, '{"reference":"ZZ-1","status":"approved"}'),
                 (200, '{"reference":"ZZ-1","status":"rejected","code":"R1","message":"no"}'),
                 (400, '{"errors":[{"code":"format","pointer":"/lines/0","message":"bad"}]}'),
                 (429, ''), (503, ''), (200, '{"reference":"ZZ-1","status":"cancelled"}')]:
    plugin_seed("zz", "I", 0, st, 0, json_ct + ([("Retry-After", "5")] if st >= 429 else []), body)
    plugin_seed("zz", "I", 1, st, 0, json_ct, body)
    plugin_seed("zz", "R", 0, 1, 0, [("Name", "/v1/inbound/zz")] + json_ct, body)

# validate-<cc> (fuzz_validate.c): "<vector>\n" and a message of that vector, its input and
# its related messages, for every vector with an input.json.
for p in sorted(glob.glob(f"{src}/plugins/*/vectors/*/input.json")):
    vdir = os.path.dirname(p)
    cc = p.split("/plugins/")[1].split("/")[0]
    cc = "zz" if cc == "template" else cc
    vec = os.path.basename(vdir).encode()
    put(f"validate-{cc}", vec + b"\n" + read(p))
    for r in sorted(glob.glob(f"{vdir}/related/*.json")):
        doc = json.loads(read(r))
        if isinstance(doc.get("message"), dict) and "schema" not in doc:
            doc = doc["message"]
        put(f"validate-{cc}", vec + b"\n" + json.dumps(doc).encode())


# http (fuzz_http.c): raw requests to the daemon it starts (tokens there).
def request(method, path, token=None, body=b"", headers=(), length=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body or method in ("POST", "PUT") or length is not None:
        head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(body) if length is None else length}\r\n"
    return head.encode() + b"\r\n" + body


DEV, OTHER = "dev-token", "other-tenant-token-0123456789abcdef"
ids = []
for p in sorted(glob.glob(f"{src}/plugins/*/vectors/*/input.json")):
    body = read(p)
    put("http", request("POST", "/v1/messages", DEV, body))
    try:
        ids.append(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        pass
for i, mid in enumerate(ids[::8]):
    put("http", request("POST", "/v1/messages", DEV, read(
        glob.glob(f"{src}/plugins/*/vectors/*/input.json")[0])) +
        request("GET", f"/v1/messages/{mid}", DEV))
    for suffix in ("", "/events", "/evidence"):
        put("http", request("GET", f"/v1/messages/{mid}{suffix}", DEV))
    put("http", request("GET", f"/v1/messages/{mid}", OTHER))
    put("http", request("POST", f"/v1/messages/{mid}/cancel", DEV,
                        json.dumps({"reason": f"buyer withdrew the order {i}"}).encode()))
for q in ("", "?limit=5", "?state=accepted&limit=2", "?destination=ZZ&after=abc",
          "?limit=0", "?state=bogus"):
    put("http", request("GET", f"/v1/messages{q}", DEV))
for path in ("/livez", "/readyz", "/metrics", "/v1/openapi.json", "/v1/nothing"):
    put("http", request("GET", path))
put("http", request("HEAD", "/livez"))
put("http", request("OPTIONS", "/v1/messages", DEV))
put("http", request("DELETE", "/v1/messages/x", DEV))
# Refusals at the end of the head: no or a wrong token, a body announced and not sent.
put("http", request("POST", "/v1/messages", None, b"", length=900000))
put("http", request("POST", "/v1/messages", "wrong-token", b"{}"))
put("http", request("POST", "/v1/messages", OTHER, read(
    glob.glob(f"{src}/plugins/template/vectors/*/input.json")[0])))
put("http", request("POST", "/v1/messages/x/cancel", DEV, b'{"reason":' + b'"x",' * 50 + b'"r":1}'))
put("http", request("POST", "/v1/messages", DEV, b"[" * 200 + b"]" * 200))
# Chunked and pipelined bodies, Expect: 100-continue, HTTP/1.0.
body = read(glob.glob(f"{src}/plugins/template/vectors/*/input.json")[0])
put("http", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-token\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n" +
    f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
put("http", request("POST", "/v1/messages", DEV, body, headers=[("Expect", "100-continue")]))
put("http", b"GET /livez HTTP/1.0\r\n\r\n")
put("http", request("GET", "/livez") + request("GET", "/readyz") + request("GET", "/livez"))
# Inbound receipts for be-liege (its token), an unknown instance, a wrong token.
BE = "be-inbound-dev-token"
for p in be_answers[:10] + glob.glob(f"{src}/plugins/be/vectors/*/inbound/*")[:10]:
    put("http", request("POST", "/v1/inbound/be-liege", BE, read(p),
                        headers=[("X-Ewtp-Name", os.path.basename(p))]))
put("http", request("POST", "/v1/inbound/nowhere", BE, b"<x/>"))
put("http", request("POST", "/v1/inbound/be-liege", DEV, b"<x/>"))
