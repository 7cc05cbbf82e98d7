"""AMQP transport end to end: the real ewtpd with a China instance on transport "amqp", against
a real rabbitmq-server this test starts on loopback (own node name, ports, epmd, data and
config under a temp dir; stopped at the end).

Checks: a CEB311 order is published to the customs exchange (persistent, message-id = the DXP
file name, a DxpMsg whose Base64 Data is a CEB311Message with the order number); a CEB312
receipt put into the receipt queue takes the message to `approved` and is acked; a receipt for
no known message stays in the queue, one no plugin recognises is rejected (removed); the broker
killed (SIGKILL) mid-way: an order sent meanwhile is retried and published once the broker is
back, nothing lost; `ewtpd -t` refuses bad amqp settings with file:line. Prints
"N passed, M failed" and exits non-zero on failure."""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ewtp_harness import (BUILD, SRC, Api, check, check_config, checks, free_port,  # noqa: E402
                          load_json, make_sm2_cert, make_tmp, print_logs, read_log, remove_tmp,
                          sanitizer_env, sanitizer_report, spawn_ewtpd, stop, wait_port, write,
                          write_ewtpd_config, write_token)

TOOL = os.path.join(BUILD, "tests", "ewtp-amqp-tool")
RABBIT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EXCHANGE, KEY, CUSTOMS_Q, RECEIPT_Q = "ceb.exchange", "ceb.import", "customs.in", "ewtp.receipts"
USER, PASS = "ewtp", "amqp-s3cret:x"


class Broker:
    """A private rabbitmq-server: everything under tmp, loopback only."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "rabbit")
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.dist, self.epmd = free_port(), free_port(), free_port()
        self.node = "ewtptest%d@localhost" % os.getpid()
        write(os.path.join(self.dir, "rabbitmq.conf"),
              "listeners.tcp.default = 127.0.0.1:%d\n"
              "default_user = %s\ndefault_pass = %s\n"
              # CI disks can be nearly full: a disk alarm would block every publish.
              "disk_free_limit.absolute = 1MB\n" % (self.port, USER, PASS))
        write(os.path.join(self.dir, "enabled_plugins"), "[].\n")
        write(os.path.join(self.dir, "rabbitmq-env.conf"), "")
        d = self.dir
        self.env = dict(os.environ)
        self.env.update({
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_LOGS": os.path.join(d, "log", "node.log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbit.pid"),
            # Erlang distribution on loopback too.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd),
            "HOME": d,  # the Erlang cookie
            "AMQP_USER": USER,
            "AMQP_PASS": PASS,
        })
        self.proc = None
        self.out = open(os.path.join(d, "server.out"), "a")

    def start(self, timeout=60):
        self.proc = subprocess.Popen([RABBIT], env=self.env, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self.tool("wait", str(timeout), timeout=timeout + 5).returncode == 0

    def kill(self):
        """SIGKILL to the server's whole process group (a crash, not a clean stop)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        # Until the port is free again (bounded).
        end = time.time() + 10
        while time.time() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.1)
            except OSError:
                break

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()
        # Our own epmd (own port): nothing else is registered with it.
        subprocess.run(["epmd", "-kill"], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)

    def tool(self, *args, timeout=20):
        return subprocess.run([TOOL, args[0], str(self.port)] + list(args[1:]), env=self.env,
                              capture_output=True, text=True, timeout=timeout)


def order(mid, number):
    m = load_json(os.path.join(SRC, "plugins/cn/vectors/import-order-311/input.json"))
    m["id"] = mid
    m["order"]["number"] = number
    return m


def receipt_312(number, status, info):
    """A CEB312 receipt as the exchange returns it: DxpMsg-wrapped, Base64 data."""
    ceb = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<CEB312Message xmlns="http://www.chinaport.gov.cn/ceb" guid="%s" version="1.0">'
           '<OrderReturn><guid>%s</guid><ebpCode>3301960ABC</ebpCode><ebcCode>3301960XYZ</ebcCode>'
           '<orderNo>%s</orderNo><returnStatus>%s</returnStatus>'
           '<returnTime>20261122100500000</returnTime><returnInfo>%s</returnInfo>'
           '</OrderReturn></CEB312Message>') % ("R-" + number, "R-" + number, number, status, info)
    data = base64.b64encode(ceb.encode()).decode()
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<dxp:DxpMsg xmlns:dxp="http://www.chinaport.gov.cn/dxp" ver="1.0"><dxp:TransInfo>'
            '<dxp:CopMsgId>R-%s</dxp:CopMsgId><dxp:SenderId>DXPEDCCEB0000002</dxp:SenderId>'
            '<dxp:ReceiverIds><dxp:ReceiverId>DXPENT0000000001</dxp:ReceiverId></dxp:ReceiverIds>'
            '<dxp:CreatTime>2026-11-22T10:05:00</dxp:CreatTime>'
            '<dxp:MsgType>CEB312Message</dxp:MsgType></dxp:TransInfo>'
            '<dxp:Data>%s</dxp:Data></dxp:DxpMsg>\n') % (number, data)


def wait_queue(broker, queue, ok, seconds=20):
    """The queue's message count once ok(count) holds, or the last count after seconds (the
    gateway acks and rejects on its own scan interval, slower on a loaded machine)."""
    end = time.time() + seconds
    n = queue_count(broker, queue)
    while not ok(n) and time.time() < end:
        time.sleep(0.2)
        n = queue_count(broker, queue)
    return n


def config(tmp, api_port, broker, extra_amqp=""):
    write_token(tmp, "t.token", "cn-token")
    write_token(tmp, "amqp.credentials", "%s:%s" % (USER, PASS))
    conf = """tenants = ( { id = "t"; token_file = "t.token"; destinations = [ "CN" ]; } );
delivery = { max_attempts = 100; max_age_ms = 600000; base_delay_ms = 200; max_delay_ms = 1000;
  request_timeout_ms = 5000; lease_ms = 30000; poll_interval_ms = 1000; scan_interval_ms = 100;
  workers = 2; };
keys = ( { name = "cn-sign"; key = "cn-sign.key"; cert = "cn-sign.crt"; } );
plugins = (
  { name = "cn-amqp"; plugin = "cn";
    settings = { cop_code = "3301960ABC"; cop_name = "EWTP TEST PLATFORM";
                 dxp_id = "DXPENT0000000001"; sign_key = "cn-sign"; sign_alg = "sm2-sm3"; };
    transport = "amqp";
    amqp = { url = "amqp://127.0.0.1:%(port)d/%%2f"; credentials_file = "amqp.credentials";
             exchange = "%(ex)s"; routing_key = "%(key)s"; receipt_queue = "%(rq)s";
             heartbeat_s = 10; connect_timeout_ms = 2000; %(extra)s }; }
);
routes = ( { tenant = "t"; destination = "CN"; instance = "cn-amqp"; } );
""" % {"port": broker.port, "ex": EXCHANGE, "key": KEY, "rq": RECEIPT_Q,
       "extra": extra_amqp}
    return write_ewtpd_config(tmp, api_port, conf)


def get_envelope(broker, out, timeout=10):
    """The next message of the customs queue: (message_id, content_type, mode, body) or None."""
    end = time.time() + timeout
    while time.time() < end:
        r = broker.tool("get", CUSTOMS_Q, out)
        if r.returncode == 0:
            mid, ctype, mode = r.stdout.rstrip("\n").split("\t")
            with open(out, "rb") as f:
                return mid, ctype, mode, f.read()
        time.sleep(0.2)
    return None


def check_envelope(env, number, what):
    check(env is not None, "%s: a message in the customs queue" % what)
    if env is None:
        return
    mid, ctype, mode, body = env
    check(re.match(r"^CEB311Message_[^/]+\.xml$", mid) is not None,
          "%s: message-id is the DXP file name (%s)" % (what, mid))
    check(ctype == "application/xml" and mode == "2",
          "%s: application/xml, persistent (%s, %s)" % (what, ctype, mode))
    text = body.decode("utf-8", "replace")
    m = re.search(r"<(?:\w+:)?Data>([^<]+)</(?:\w+:)?Data>", text)
    check("DxpMsg" in text and m is not None, "%s: a DxpMsg envelope with Data" % what)
    if m:
        ceb = base64.b64decode(m.group(1)).decode("utf-8", "replace")
        check(re.search(r"<(?:\w+:)?CEB311Message[\s>]", ceb) is not None and
              ("<ceb:orderNo>%s</ceb:orderNo>" % number) in ceb,
              "%s: Data is a CEB311Message of order %s" % (what, number))


def queue_count(broker, q):
    r = broker.tool("count", q)
    return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else -1


def main():
    if not os.path.exists(RABBIT) or not os.path.exists(TOOL):
        print("SKIP: needs rabbitmq-server (%s) and %s (librabbitmq-dev)" % (RABBIT, TOOL))
        checks.summary()
        sys.exit(77 if os.environ.get("EWTP_ALLOW_SKIP") else 1)
    tmp = make_tmp("ewtp-amqp-")
    make_sm2_cert(os.path.join(tmp, "cn-sign.key"), os.path.join(tmp, "cn-sign.crt"),
                  "/CN=ewtp amqp test key", days=30)
    broker = Broker(tmp)
    proc = None
    log = os.path.join(tmp, "ewtpd.log")
    out = os.path.join(tmp, "got.xml")
    try:
        t0 = time.time()
        ok = broker.start()
        check(ok, "rabbitmq-server up on 127.0.0.1:%d (%.1f s)" % (broker.port, time.time() - t0))
        if not ok:
            return
        r = broker.tool("declare", EXCHANGE, CUSTOMS_Q, KEY)
        check(r.returncode == 0, "exchange + customs queue declared (%s)" % r.stderr.strip())
        r = broker.tool("queue", RECEIPT_Q)
        check(r.returncode == 0, "receipt queue declared (%s)" % r.stderr.strip())

        api_port = free_port()
        conf = config(tmp, api_port, broker)
        r = check_config(conf, timeout=30)
        check(r.returncode == 0, "ewtpd -t accepts the amqp configuration (%s)" % r.stderr.strip())
        # Bad settings: a password in the URL, cleartext to a remote host, no routing.
        bad = config(os.path.join(tmp), api_port, broker)
        with open(bad) as f:
            text = f.read()
        text = text.replace('url = "amqp://127.0.0.1', 'url = "amqp://u:pw@127.0.0.1')
        write(os.path.join(tmp, "bad1.conf"), text)
        r = check_config(os.path.join(tmp, "bad1.conf"), timeout=30)
        msg = r.stdout + r.stderr
        check(r.returncode != 0 and re.search(r"bad1\.conf:\d+: plugins\[0\]\.amqp\.url: .*password",
                                              msg) is not None,
              "ewtpd -t refuses a password in the URL with file:line (%s)" % msg.strip()[:200])
        text2 = text.replace('amqp://u:pw@127.0.0.1', 'amqp://broker.example.com')
        write(os.path.join(tmp, "bad2.conf"), text2)
        r = check_config(os.path.join(tmp, "bad2.conf"), timeout=30)
        msg = r.stdout + r.stderr
        check(r.returncode != 0 and "amqps://" in msg,
              "ewtpd -t refuses cleartext amqp:// to a remote host (%s)" % msg.strip()[:200])
        # The server configuration is good again (the bad copies are other files).
        proc = spawn_ewtpd(conf, log, env=sanitizer_env())
        if not wait_port(api_port, proc):
            check(False, "ewtpd listens")
            return
        api = Api(api_port, "cn-token")

        # 1. published to the customs exchange, confirmed -> submitted
        code, body = api.call("POST", "/v1/messages", order("amqp-1", "SO-AMQP-1"))
        check(code == 202, "order amqp-1 accepted (%s %s)" % (code, body))
        st = api.wait_state("amqp-1", ["submitted", "rejected", "dead"])
        check(st.get("state") == "submitted", "amqp-1 submitted after the broker's confirm (%s)"
              % json.dumps(st)[:300])
        check_envelope(get_envelope(broker, out), "SO-AMQP-1", "amqp-1")

        # 2. the receipt from the receipt queue -> approved, acked
        write(out, receipt_312("SO-AMQP-1", "120", "入库成功"))
        r = broker.tool("publish", "", RECEIPT_Q, out, "CEB312-R-1")
        check(r.returncode == 0, "CEB312 receipt published (%s)" % r.stderr.strip())
        st = api.wait_state("amqp-1", ["approved", "rejected"])
        check(st.get("state") == "approved", "amqp-1 approved by the CEB312 from AMQP (%s)"
              % json.dumps(st)[:300])
        check(wait_queue(broker, RECEIPT_Q, lambda n: n == 0) == 0,
              "the receipt was acked (queue empty)")

        # 3. unmatched receipt stays; unrecognisable message is rejected
        write(out, receipt_312("SO-NOBODY", "120", "x"))
        broker.tool("publish", "", RECEIPT_Q, out, "CEB312-unmatched")
        write(out, "this is not a receipt")
        broker.tool("publish", "", RECEIPT_Q, out, "junk")
        n = wait_queue(broker, RECEIPT_Q, lambda k: k == 1)
        check(n == 1, "unmatched receipt kept in the queue, junk rejected (%d left)" % n)

        # 4. broker crash: an order sent while it is down is retried, then published
        broker.kill()
        code, body = api.call("POST", "/v1/messages", order("amqp-2", "SO-AMQP-2"))
        check(code == 202, "order amqp-2 accepted while the broker is down (%s)" % code)
        # A first attempt fails against the stopped broker: wait for retrying, not a while.
        st = api.wait_state("amqp-2", ["retrying", "submitted", "rejected", "dead"], timeout=60)
        check(st.get("state") == "retrying",
              "amqp-2 waits for the broker in retrying (%s)" % st.get("state"))
        t0 = time.time()
        ok = broker.start()
        check(ok, "rabbitmq-server restarted (%.1f s)" % (time.time() - t0))
        # Generous: a loaded CI machine can take long to bring the broker's queues back.
        st = api.wait_state("amqp-2", ["submitted", "rejected", "dead"], timeout=120)
        check(st.get("state") == "submitted", "amqp-2 submitted after the broker came back (%s)"
              % json.dumps(st)[:300])
        code, ev = api.call("GET", "/v1/messages/amqp-2/events")
        evs = ev.get("events", []) if isinstance(ev, dict) else []
        retried = any("retrying" in json.dumps(e) for e in evs)
        check(retried, "amqp-2 went through retrying (events: %d)" % len(evs))
        check_envelope(get_envelope(broker, out), "SO-AMQP-2", "amqp-2 after the restart")
        n = queue_count(broker, RECEIPT_Q)
        # At least once: a copy put back at the tail just before the crash may be there twice.
        check(n >= 1, "the unmatched receipt survived the crash (persistent, %d)" % n)

        write(out, receipt_312("SO-AMQP-2", "120", "入库成功"))
        broker.tool("publish", "", RECEIPT_Q, out, "CEB312-R-2")
        st = api.wait_state("amqp-2", ["approved", "rejected"], timeout=60)
        check(st.get("state") == "approved", "amqp-2 approved by its receipt after the restart (%s)"
              % json.dumps(st)[:200])
        r = broker.tool("get", CUSTOMS_Q, out)
        check(r.returncode == 3, "no duplicate or stray envelope in the customs queue")
    finally:
        if proc is not None and proc.poll() is None:
            rc = stop(proc, 30)
            check(rc == 0, "ewtpd exits 0 on SIGTERM (%s)" % rc)
        broker.stop()
        check(not sanitizer_report(read_log(log)), "no sanitizer reports")
        if checks.failed:
            print_logs([("ewtpd log", log)], 8000)
        remove_tmp(tmp, keep=bool(checks.failed))
        checks.summary()
    sys.exit(1 if checks.failed else 0)

if __name__ == "__main__":
    main()
