"""The OpenAPI document (sdk/schema/openapi.json, served at GET /v1/openapi.json) against the
running ewtpd (issue 11.7).

1. The document itself: it parses, `openapi` is 3.1.x, every `$ref` resolves (the file's one
   reference to ewtp-1.schema.json beside it included), operation ids are unique, every
   operation has responses.
2. The served document: no credentials needed, application/json, the file with the ewtp/1
   schema embedded (equal to sdk/schema/ewtp-1.schema.json), self-contained (every `$ref`
   resolves inside it).
3. ewtpd (ZZ template plugin, its simulator, a webhook receiver) driven through each
   operation and every status it can be made to give here; each answer's status must be one
   the document lists for that operation (an undocumented status fails), its Content-Type
   one of that response's media types, its documented headers present, and its JSON body
   valid against that response's schema (Draft 2020-12, references resolved within the
   document). Webhooks received are checked against the document's `webhooks`. Requests sent
   are checked against the request schemas too.

Not provoked here (the document lists them): 429 and 503 (load and shutdown; http_api.sh and
reload_under_load.sh drive those), 500."""
import base64
import copy
import json
import os
import re
import sys
import urllib.parse

from jsonschema import Draft202012Validator, RefResolver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (SRC, Api, DaemonAndSim, PostRecorder, check, checks,  # noqa: E402
                          free_port, http_call, keep_tmp_if_failed, load_json, make_tmp,
                          parse_json, wait_until, webhook_signature_ok, write_ewtpd_config,
                          write_token, zz_order)

DOC_PATH = os.path.join(SRC, "sdk/schema/openapi.json")
SCHEMA_PATH = os.path.join(SRC, "sdk/schema/ewtp-1.schema.json")
TOKEN = "openapi-token-0123456789abcdef0123456789"
TOKEN2 = "openapi-token2-0123456789abcdef012345678"
INBOUND = "openapi-inbound-0123456789abcdef01234567"
SECRET = "whsec_" + base64.b64encode(b"openapi-contract-webhook-secret!").decode()
BASE = "https://ewtp.example/v1/openapi.json"  # where served documents are resolved from
MAX_BODY = 65536


# ---- the document itself ------------------------------------------------------------------------
def unescape(token):
    return urllib.parse.unquote(token).replace("~1", "/").replace("~0", "~")


def pointer_get(doc, pointer):
    """The value at a JSON Pointer (KeyError/IndexError when there is none)."""
    v = doc
    if pointer in ("", "/"):
        return v
    for tok in pointer.lstrip("/").split("/"):
        tok = unescape(tok)
        v = v[int(tok)] if isinstance(v, list) else v[tok]
    return v


def refs_unresolved(doc, doc_uri, load_external):
    """Every $ref of doc (a document at doc_uri) that does not resolve: [(where, ref)]. Base URIs
    follow $id (a schema embedded with its own $id resolves "#/..." within itself); a reference
    to another file is resolved through load_external(uri) -> document or None, and that
    file's references are checked in turn."""
    bad, seen = [], set()
    resources = {}

    def index(node, base):
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                base = urllib.parse.urljoin(base, node["$id"])
                resources[base.split("#")[0]] = node
            for v in node.values():
                index(v, base)
        elif isinstance(node, list):
            for v in node:
                index(v, base)

    def walk(node, base, where, root_uri):
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                base = urllib.parse.urljoin(base, node["$id"])
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = urllib.parse.urljoin(base, ref)
                uri, _, frag = target.partition("#")
                res = resources.get(uri)
                if res is None:
                    ext = load_external(uri)
                    if ext is not None and uri not in seen:
                        seen.add(uri)
                        resources[uri] = ext
                        index(ext, uri)
                        walk(ext, uri, uri, uri)
                    res = ext
                try:
                    if res is None:
                        raise KeyError(uri)
                    pointer_get(res, frag)
                except (KeyError, IndexError, ValueError, TypeError):
                    bad.append((where, ref))
            for k, v in node.items():
                walk(v, base, where + "/" + k.replace("~", "~0").replace("/", "~1"), root_uri)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, base, "%s/%d" % (where, i), root_uri)

    resources[doc_uri] = doc
    index(doc, doc_uri)
    walk(doc, doc_uri, "", doc_uri)
    return bad


METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operations(doc):
    """[(path, method, operation)] of doc's paths."""
    out = []
    for path, item in doc.get("paths", {}).items():
        for m in METHODS:
            if m in item:
                out.append((path, m, item[m]))
    return out


def check_document(doc, label, load_external):
    check(isinstance(doc, dict) and re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))),
          "%s: openapi is 3.1.x (%r)" % (label, doc.get("openapi") if isinstance(doc, dict) else doc))
    check(isinstance(doc.get("info"), dict) and doc["info"].get("title") and
          doc["info"].get("version"), "%s: info has title and version" % label)
    bad = refs_unresolved(doc, "file://" + DOC_PATH if load_external else BASE, load_external
                          or (lambda uri: None))
    check(not bad, "%s: every $ref resolves" % label, bad[:10])
    ops = operations(doc)
    ids = [op.get("operationId") for _, _, op in ops]
    check(all(ids) and len(ids) == len(set(ids)), "%s: %d operations, unique operationIds"
          % (label, len(ops)), ids)
    check(all(op.get("responses") for _, _, op in ops), "%s: every operation has responses"
          % label)
    check(set(doc.get("webhooks", {})) == {"message.state"}, "%s: webhooks: message.state" % label)
    schemes = doc.get("components", {}).get("securitySchemes", {})
    check(schemes.get("bearerAuth", {}).get("scheme") == "bearer" and
          schemes.get("mutualTLS", {}).get("type") == "mutualTLS",
          "%s: security schemes bearer and mutualTLS" % label)
    check(doc["paths"].get("/v1/openapi.json", {}).get("get", {}).get("security") == [],
          "%s: /v1/openapi.json needs no credentials" % label)


def load_file_uri(uri):
    if not uri.startswith("file://"):
        return None
    try:
        return load_json(uri[len("file://"):])
    except (OSError, ValueError):
        return None


# ---- the contract: answers against the document ------------------------------------------------
class Contract:
    def __init__(self, doc):
        self.doc = doc
        # The document under BASE; schemas embedded with their own $id (the ewtp/1 schema)
        # are resources of their own, as JSON Schema 2020-12 says.
        self.store = {BASE: doc}
        for s in doc["components"]["schemas"].values():
            if isinstance(s, dict) and "$id" in s:
                self.store[s["$id"]] = s
        self.seen = set()  # (path, method, status) checked against the document

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = pointer_get(self.doc, node["$ref"].partition("#")[2])
        return node

    def validator(self, pointer):
        # python3-jsonschema 4.10 (Debian 12): RefResolver, one per validator (it keeps scope).
        resolver = RefResolver(BASE, self.doc, store=dict(self.store))
        return Draft202012Validator({"$ref": BASE + "#" + pointer}, resolver=resolver)

    @staticmethod
    def esc(s):
        return s.replace("~", "~0").replace("/", "~1")

    def request_ok(self, path, method, body, what):
        """A JSON request body against the operation's request schema."""
        op = self.doc["paths"][path][method]
        media = op["requestBody"]["content"]
        if "application/json" not in media:
            return
        ptr = "/paths/%s/%s/requestBody/content/application~1json/schema" % (self.esc(path), method)
        errs = [e.message for e in self.validator(ptr).iter_errors(body)]
        check(not errs, "%s: the request is valid against %s %s's request schema"
              % (what, method.upper(), path), errs[:3])

    def answer(self, path, method, status, data, headers, what):
        """Checks one answer; returns its parsed JSON (or None)."""
        op = self.doc["paths"][path][method]
        responses = op["responses"]
        label = "%s: %s %s -> %d" % (what, method.upper(), path, status)
        if not check(str(status) in responses, label + " is a documented status",
                     "documented: %s; body %s" % (sorted(responses), data[:300])):
            return parse_json(data)
        self.seen.add((path, method, str(status)))
        resp = self.resolve(responses[str(status)])
        ctype = headers.get("content-type", "")
        media = resp.get("content", {})
        mt = next((m for m in media if m.split(";")[0].strip() == ctype.split(";")[0].strip()
                   or m == "*/*"), None)
        check(mt is not None, label + ": Content-Type %r documented" % ctype, sorted(media))
        missing = [h for h in resp.get("headers", {}) if h.lower() not in headers]
        check(not missing, label + ": documented headers present", missing)
        body = None
        if mt and mt.split(";")[0].strip() == "application/json":
            body = parse_json(data)
            ptr = "/paths/%s/%s/responses/%d/content/application~1json/schema" % (
                self.esc(path), method, status)
            ref = responses[str(status)].get("$ref")
            if ref:  # a shared response of components/responses
                ptr = ref.partition("#")[2] + "/content/application~1json/schema"
            errs = ["%s at %s" % (e.message, "/".join(map(str, e.absolute_path)))
                    for e in self.validator(ptr).iter_errors(body)]
            check(not errs, label + ": body valid against the documented schema", errs[:3])
        return body if body is not None else parse_json(data)


def setup():
    tmp = make_tmp("ewtp-openapi-")
    api_port, sim_port = free_port(), free_port()
    os.makedirs(os.path.join(tmp, "run"))
    write_token(tmp, "t1.token", TOKEN)
    write_token(tmp, "t2.token", TOKEN2)
    write_token(tmp, "inbound.token", INBOUND)
    write_token(tmp, "t1.whsec", SECRET)
    hooks = PostRecorder().start()
    conf = write_ewtpd_config(tmp, api_port, """
tenants = (
  { id = "t1"; token_file = "t1.token"; destinations = [ "ZZ" ];
    webhook_url = "http://127.0.0.1:%(hooks)d/hooks"; webhook_secret_file = "t1.whsec"; },
  { id = "t2"; token_file = "t2.token"; destinations = [ "CN" ]; }
);
delivery = { max_attempts = 50; max_age_ms = 600000; base_delay_ms = 100; max_delay_ms = 400;
  request_timeout_ms = 3000; lease_ms = 5000; poll_interval_ms = 100; scan_interval_ms = 50;
  workers = 2; };
limits = { max_body_bytes = %(max)d; };
plugins = (
  { name = "zz-a"; plugin = "zz"; settings = { sign_key = ""; };
    transport = "https"; endpoint = "http://127.0.0.1:%(sim)d";
    inbound_token_file = "inbound.token"; }
);
routes = ( { destination = "ZZ"; instance = "zz-a"; } );
""" % {"hooks": hooks.port, "sim": sim_port, "max": MAX_BODY})
    return tmp, hooks, DaemonAndSim(tmp, conf, api_port, sim_port, "zz",
                                    {"decision_delay_ms": 50})


def main():
    # 1. The document as committed.
    try:
        doc = load_json(DOC_PATH)
    except ValueError as e:
        check(False, "sdk/schema/openapi.json parses", e)
        return
    check(True, "sdk/schema/openapi.json parses")
    check_document(doc, "file", load_file_uri)
    check(doc["components"]["schemas"].get("Message") == {"$ref": "ewtp-1.schema.json"},
          "file: Message is the ewtp/1 schema by reference")
    schema = load_json(SCHEMA_PATH)

    tmp, hooks, env = setup()
    api = Api(env.api_port, TOKEN)
    base = "http://127.0.0.1:%d" % env.api_port
    try:
        if not (check(env.start_sim(), "simulator up") and check(env.start_daemon(), "ewtpd up")):
            return

        # 2. The served document.
        st, data, hdrs = http_call("GET", base + "/v1/openapi.json")
        served = parse_json(data)
        check(st == 200 and hdrs.get("content-type") == "application/json",
              "GET /v1/openapi.json without credentials -> 200 application/json",
              (st, hdrs.get("content-type")))
        if not isinstance(served, dict) or "_not_json" in served:
            check(False, "the served document is JSON", data[:200])
            return
        check_document(served, "served", None)
        want = copy.deepcopy(doc)
        want["components"]["schemas"]["Message"] = schema
        check(served == want, "served: the file with sdk/schema/ewtp-1.schema.json embedded")
        c = Contract(served)
        st, data, hdrs = http_call("GET", base + "/v1/openapi.json", token="not-a-token")
        c.answer("/v1/openapi.json", "get", st, data, hdrs, "openapi.json with a bad token")
        st, data, hdrs = http_call("GET", base + "/v1/openapi.json")
        c.answer("/v1/openapi.json", "get", st, data, hdrs, "openapi.json")

        def call(path, method, what, url_path=None, body=None, token=TOKEN, ctype="application/json"):
            st, data, hdrs = http_call(method.upper(), base + (url_path or path), body=body,
                                       token=token, ctype=ctype)
            return st, c.answer(path, method, st, data, hdrs, what)

        msgs = "/v1/messages"
        one = "/v1/messages/{id}"
        events = "/v1/messages/{id}/events"
        cancel = "/v1/messages/{id}/cancel"
        inbound = "/v1/inbound/{instance}"

        # ---- POST /v1/messages ------------------------------------------------------------
        m1 = zz_order("oa-1")
        # ZZ is the template plugin's test destination, accepted because a plugin declares
        # it (the document says so); the schema's country list is ISO 3166 only.
        as_iso = dict(m1, destination="BE")
        check(not list(Draft202012Validator(schema).iter_errors(as_iso)),
              "the order sent (destination ZZ read as BE) is valid against the ewtp/1 schema")
        c.request_ok(msgs, "post", as_iso, "oa-1 (destination ZZ read as BE)")
        st, body = call(msgs, "post", "new message", body=m1)
        check(st == 202 and body == {"id": "oa-1", "state": "accepted"}, "new message -> 202", body)
        st, body = call(msgs, "post", "exact repeat", body=json.dumps(m1, indent=2))
        check(st == 200 and body.get("id") == "oa-1", "exact repeat -> 200 with the status")
        other = zz_order("oa-1")
        other["order"]["lines"][0]["sku"] = "OTHER"
        st, _ = call(msgs, "post", "same id, other content", body=other)
        check(st == 409, "same id, other content -> 409", st)
        st, body = call(msgs, "post", "unparsable", body='{"schema": "ewtp/1", "id": ')
        check(st == 400, "unparsable -> 400", st)
        st, _ = call(msgs, "post", "no token", body=zz_order("oa-x"), token=None)
        check(st == 401, "no token -> 401", st)
        st, _ = call(msgs, "post", "bad token", body=zz_order("oa-x"), token="wrong-token")
        check(st == 401, "bad token -> 401", st)
        st, _ = call(msgs, "post", "destination not allowed", body=zz_order("oa-t2"), token=TOKEN2)
        check(st == 403, "destination not allowed -> 403", st)
        bad = zz_order("oa-bad")
        del bad["order"]["currency"]
        bad["order"]["lines"][0]["amount"] = "not-a-number"
        st, body = call(msgs, "post", "invalid", body=bad)
        ptrs = sorted(e.get("pointer") for e in (body or {}).get("errors", []))
        check(st == 422 and "/order/currency" in ptrs and "/order/lines/0/amount" in ptrs,
              "invalid -> 422 with pointers /order/currency and /order/lines/0/amount", ptrs)
        big = zz_order("oa-big")
        big["order"]["note"] = "x" * (MAX_BODY + 1024)
        st, _ = call(msgs, "post", "body over max_body_bytes", body=big)
        check(st == 413, "body over max_body_bytes -> 413", st)

        # ---- GET /v1/messages/{id}, events -----------------------------------------------
        st, body = call(one, "get", "status", "/v1/messages/oa-1")
        check(st == 200 and body.get("id") == "oa-1", "status -> 200", st)
        st, _ = call(one, "get", "status of an unknown id", "/v1/messages/oa-none")
        check(st == 404, "status of an unknown id -> 404", st)
        st, _ = call(one, "get", "another tenant's message", "/v1/messages/oa-1", token=TOKEN2)
        check(st == 404, "another tenant's message -> 404", st)
        st, _ = call(one, "get", "status without a token", "/v1/messages/oa-1", token=None)
        check(st == 401, "status without a token -> 401", st)
        st, body = call(events, "get", "events", "/v1/messages/oa-1/events")
        check(st == 200 and body["events"] and body["events"][0]["type"] == "accepted",
              "events -> 200, accepted first", st)
        st, _ = call(events, "get", "events of an unknown id", "/v1/messages/oa-none/events")
        check(st == 404, "events of an unknown id -> 404", st)
        st, _ = call(events, "get", "events without a token", "/v1/messages/oa-1/events",
                     token=None)
        check(st == 401, "events without a token -> 401", st)
        # The evidence bundle itself (200, a tar) is tests/integration/evidence.py's: this
        # configuration has no evidence key.
        evidence = "/v1/messages/{id}/evidence"
        st, _ = call(evidence, "get", "evidence without an evidence key",
                     "/v1/messages/oa-1/evidence")
        check(st == 501, "evidence without an evidence key -> 501", st)
        st, _ = call(evidence, "get", "evidence without a token", "/v1/messages/oa-1/evidence",
                     token=None)
        check(st == 401, "evidence without a token -> 401", st)

        # ---- GET /v1/messages: pages, filters --------------------------------------------
        for i in (2, 3, 4):
            st, _ = call(msgs, "post", "oa-%d" % i, body=zz_order("oa-%d" % i))
            check(st == 202, "oa-%d -> 202" % i, st)
        st, page = call(msgs, "get", "list, limit 2", "/v1/messages?limit=2")
        check(st == 200 and len(page["items"]) == 2 and isinstance(page["next"], str),
              "list limit 2 -> 200, 2 items and a next cursor", page and page.get("next"))
        seen_ids = [x["id"] for x in page.get("items", [])]
        while st == 200 and page.get("next"):
            st, page = call(msgs, "get", "list, next page",
                            "/v1/messages?limit=2&after=" + urllib.parse.quote(page["next"]))
            seen_ids += [x["id"] for x in (page or {}).get("items", [])]
        check(seen_ids == ["oa-1", "oa-2", "oa-3", "oa-4"] and page.get("next") is None,
              "following next gives every message once, then next is null", seen_ids)
        st, page = call(msgs, "get", "list by destination", "/v1/messages?destination=ZZ&state=accepted")
        check(st == 200, "list by destination and state -> 200", st)
        for q in ("state=bogus", "limit=0", "limit=1001", "after=not-a-cursor", "colour=red"):
            st, _ = call(msgs, "get", "list ?" + q, "/v1/messages?" + q)
            check(st == 400, "list ?%s -> 400" % q, st)
        st, _ = call(msgs, "get", "list without a token", token=None)
        check(st == 401, "list without a token -> 401", st)

        # ---- inbound --------------------------------------------------------------------
        final = api.wait_state("oa-2", ("submitted", "approved"), 20)
        ref = final.get("authority_ref")
        check(bool(ref), "oa-2 has an authority reference", final)
        cb = {"reference": ref, "status": "accepted", "code": "OK", "message": "cleared"}
        st, _ = call(inbound, "post", "inbound without a token", "/v1/inbound/zz-a", body=cb,
                     token=None)
        check(st == 401, "inbound without the instance's token -> 401", st)
        st, _ = call(inbound, "post", "inbound with a tenant's token", "/v1/inbound/zz-a",
                     body=cb, token=TOKEN)
        check(st == 401, "inbound with a tenant's token -> 401", st)
        st, _ = call(inbound, "post", "inbound to an unknown instance", "/v1/inbound/zz-none",
                     body=cb, token=INBOUND)
        check(st == 404, "inbound to an unknown instance -> 404", st)
        st, _ = call(inbound, "post", "inbound not recognised", "/v1/inbound/zz-a",
                     body=b"not a receipt", token=INBOUND, ctype="text/plain")
        check(st == 400, "inbound the plugin does not recognise -> 400", st)
        st, _ = call(inbound, "post", "inbound for an unknown reference", "/v1/inbound/zz-a",
                     body={"reference": "ZZ-nope", "status": "accepted"}, token=INBOUND)
        check(st == 404, "inbound for an unknown reference -> 404", st)
        st, body = call(inbound, "post", "inbound", "/v1/inbound/zz-a", body=cb, token=INBOUND)
        check(st == 200 and body == {"message": "oa-2"}, "inbound -> 200 naming oa-2", body)

        # ---- cancel ---------------------------------------------------------------------
        final = api.wait_state("oa-1", ("approved",), 20)
        check(final.get("state") == "approved", "oa-1 approved", final.get("state"))
        reason = {"reason": "customer withdrew"}
        c.request_ok(cancel, "post", reason, "cancel oa-1")
        st, body = call(cancel, "post", "cancel", "/v1/messages/oa-1/cancel", body=reason)
        check(st == 202 and body.get("cancel") == "requested", "cancel -> 202", body)
        st, _ = call(cancel, "post", "cancel of an unknown id", "/v1/messages/oa-none/cancel",
                     body=reason)
        check(st == 404, "cancel of an unknown id -> 404", st)
        st, body = call(cancel, "post", "cancel with an empty reason",
                        "/v1/messages/oa-3/cancel", body={"reason": ""})
        check(st == 422 and [e["pointer"] for e in body["errors"]] == ["/reason"],
              "cancel with an empty reason -> 422 at /reason", body)
        st, _ = call(cancel, "post", "cancel with a body not JSON", "/v1/messages/oa-3/cancel",
                     body="reason=please", ctype="text/plain")
        check(st == 400, "cancel with a body that is not JSON -> 400", st)
        st, _ = call(cancel, "post", "cancel without a token", "/v1/messages/oa-3/cancel",
                     body=reason, token=None)
        check(st == 401, "cancel without a token -> 401", st)
        final = api.wait_state("oa-1", ("cancelled",), 20)
        check(final.get("state") == "cancelled", "oa-1 cancelled", final.get("state"))
        st, body = call(cancel, "post", "cancel of a cancelled message",
                        "/v1/messages/oa-1/cancel", body=reason)
        check(st == 409, "cancel of a cancelled message -> 409", body)

        # ---- operations endpoints -------------------------------------------------------
        st, _ = call("/livez", "get", "livez", token=None)
        check(st == 200, "livez -> 200", st)
        st, _ = call("/readyz", "get", "readyz", token=None)
        check(st == 200, "readyz -> 200", st)
        st, text = call("/metrics", "get", "metrics", token=None)
        check(st == 200, "metrics -> 200 (Prometheus text)", st)

        # Refusals before routing, described in info.description: Problem bodies.
        problem = c.validator("/components/schemas/Problem")
        for method, path, want in (("GET", "/v1/nothing", 404), ("DELETE", "/v1/messages", 405),
                                   ("GET", "/v1/messages/oa-1/cancel", 405)):
            st, data, _ = http_call(method, base + path, token=TOKEN)
            errs = list(problem.iter_errors(parse_json(data)))
            check(st == want and not errs, "%s %s -> %d with a Problem body" % (method, path, want),
                  (st, data[:200]))

        # ---- webhooks -------------------------------------------------------------------
        wh = c.doc["webhooks"]["message.state"]["post"]
        payload = c.validator("/webhooks/message.state/post/requestBody/content/application~1json/schema")
        got = wait_until(lambda: [p for p in hooks.posts("/hooks")
                                  if json.loads(p[2]).get("state") == "cancelled"], 20)
        posts = hooks.posts("/hooks")
        check(got and len(posts) >= 3, "webhooks received (%d)" % len(posts))
        bad = []
        for _, h, raw in posts:
            body = json.loads(raw)
            bad += ["body %s: %s" % (body, e.message) for e in payload.iter_errors(body)]
            for p in wh["parameters"]:
                name = p["name"].lower()
                if name not in h:
                    if p.get("required"):
                        bad.append("missing header " + name)
                    continue
                if not re.fullmatch(p["schema"]["pattern"], h[name].split(" ")[0]):
                    bad.append("header %s %r" % (name, h[name]))
            if not webhook_signature_ok(SECRET, h, raw):
                bad.append("signature of %s" % body)
        check(not bad, "every webhook's body and headers match the document", bad[:5])

        # ---- coverage -------------------------------------------------------------------
        for path, method, _ in operations(c.doc):
            statuses = sorted(s for p, m, s in c.seen if p == path and m == method)
            check(statuses, "%s %s exercised: %s" % (method.upper(), path, ", ".join(statuses)))
        print("%d (operation, status) pairs of %d operations checked against the document"
              % (len(c.seen), len(operations(c.doc))), flush=True)
    finally:
        check(env.stop(), "ewtpd stops cleanly, no sanitizer report")
        hooks.stop()
        keep_tmp_if_failed(tmp, [("ewtpd", env.daemon_log), ("sim", env.sim_log)])


if __name__ == "__main__":
    sys.exit(checks.run(main))
