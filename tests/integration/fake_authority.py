"""A tiny scripted ZZ authority for the dispatcher tests (tests/integration/dispatch_*.py).

Speaks the template plugin's API (plugins/template/README.md):
  POST /v1/submissions                 -> {"reference","status":"received"|"accepted"|"rejected"}
  POST /v1/submissions/{ref}/cancel    -> {"reference","status":"cancelled"}
  GET  /v1/submissions/{ref}           -> the decision (poll)
and receives webhooks at POST /hooks/<anything>.

What it answers depends on the message id (zz:SenderReference) prefix:
  acc-*    received; the poll then says accepted
  now-*    accepted at once
  rej-*    rejected with an error naming /order/lines/0/hs_code
  flaky-*  503 with Retry-After: 1 twice, then received (poll: accepted)
  slow-*   answers after `slow_s` seconds (received)
  ord-*    received, the poll says accepted (order of arrival is logged)
  cb-*     received; the decision comes by inbound callback (poll says received)
POST /token answers an OAuth2 client-credentials token ("tok-N", N = requests so far).
While `down` is set, every request is dropped without an answer (connection closed).
"""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Authority:
    def __init__(self):
        self.lock = threading.Lock()
        self.log = []        # (method, path, sender_reference or None, time)
        self.hooks = []      # (headers dict, body bytes)
        self.refs = {}       # reference -> message id
        self.tries = {}      # message id -> submissions seen
        self.down = False
        self.slow_s = 0.0
        self.poll_status = {}  # reference -> status the poll answers
        self.authz = {}        # message id -> Authorization header of its last submission
        self.token_requests = []  # bodies POSTed to /token
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def submissions(self, prefix=""):
        with self.lock:
            return [e for e in self.log if e[0] == "POST" and e[1] == "/v1/submissions"
                    and (e[2] or "").startswith(prefix)]

    def _handler(self):
        auth = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, obj, headers=()):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                if auth.down:
                    self.close_connection = True
                    return
                m = re.fullmatch(r"/v1/submissions/([^/]+)", self.path)
                with auth.lock:
                    auth.log.append(("GET", self.path, None, time.time()))
                    if not m or m.group(1) not in auth.refs:
                        return self._reply(404, {"errors": [{"code": "unknown", "message": "no such reference"}]})
                    ref = m.group(1)
                    status = auth.poll_status.get(ref, "received")
                self._reply(200, {"reference": ref, "status": status})

            def do_POST(self):
                body = self._body()
                if self.path.startswith("/hooks"):
                    with auth.lock:
                        auth.hooks.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    return self._reply(204 if False else 200, {})
                if self.path == "/token":
                    with auth.lock:
                        auth.token_requests.append(body)
                    return self._reply(200, {"access_token": "tok-%d" % len(auth.token_requests),
                                             "token_type": "Bearer", "expires_in": 3600})
                if auth.down:
                    self.close_connection = True
                    return
                mid = re.search(rb"<zz:SenderReference>([^<]*)</zz:SenderReference>", body)
                mid = mid.group(1).decode() if mid else None
                with auth.lock:
                    auth.log.append(("POST", self.path, mid, time.time()))
                    n = auth.tries[mid] = auth.tries.get(mid, 0) + 1
                    auth.authz[mid] = self.headers.get("Authorization")
                m = re.fullmatch(r"/v1/submissions/([^/]+)/cancel", self.path)
                if m:
                    return self._reply(200, {"reference": m.group(1), "status": "cancelled"})
                if self.path != "/v1/submissions" or mid is None:
                    return self._reply(404, {"errors": [{"code": "path", "message": "unknown"}]})
                ref = "ZZREF-" + mid
                if mid.startswith("flaky-") and n <= 2:
                    return self._reply(503, {"errors": [{"code": "busy", "message": "busy"}]},
                                       [("Retry-After", "1")])
                if mid.startswith("rej-"):
                    return self._reply(200, {"reference": ref, "status": "rejected", "errors": [
                        {"code": "ZZ-E042", "message": "HS code 999999 is not in the tariff",
                         "path": "/order/lines/0/hs_code"}]})
                if mid.startswith("slow-"):
                    time.sleep(auth.slow_s)
                with auth.lock:
                    auth.refs[ref] = mid
                    if not mid.startswith("cb-"):
                        auth.poll_status[ref] = "accepted"
                if mid.startswith("now-"):
                    return self._reply(200, {"reference": ref, "status": "accepted"})
                self._reply(202, {"reference": ref, "status": "received"})

        return H
