/* fuzz_http.c — libFuzzer target for the daemon's HTTP request path (issue 19): the input is
 * the raw bytes a client sends on one connection (request head, body, pipelined requests).
 *
 * The daemon runs in the fuzzing process as ewtpd.c's run() starts it: a configuration
 * generation (a dev-like configuration written to a temporary folder: dev_mode, two tenants,
 * every plugin of EWTP_FUZZ_PLUGIN_DIR with the settings of conf/dev.conf, the routes of
 * conf/dev.conf, https endpoints on a closed loopback port, spool folders in the temporary
 * folder), a real SQLite store file, the worker pool, the dispatcher and the real libevent
 * evhttp listener of daemon/api/http.c on 127.0.0.1 (port 0: the kernel's choice). Each input
 * is written to a fresh loopback connection, whose write side is then shut; the event loop runs
 * until the daemon closes the connection (bounded), so the head check (authentication when the
 * head ends), evhttp's parser and limits, routing, the body bounds, the JSON checks, the plugins'
 * classify and validate, the store's accept, cancels and inbound receipts all see it.
 *
 * Oracles: no sanitizer report, no hang, no 500 answer (an error of ours), and the daemon
 * answers /livez on a new connection after every input that kept it busy.
 * Tokens: tenant "dev" has "dev-token", tenant "other" OTHER_TOKEN; instance be-liege's inbound
 * token is "be-inbound-dev-token" (tests/fuzz/seeds.py uses them). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <ewtp/errors.h>

#include "daemon.h"
#include "dispatcher.h"
#include "gen.h"
#include "http.h"
#include "metrics.h"
#include "reload.h"
#include "services.h"
#include "store.h"
#include "workers.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OTHER_TOKEN "other-tenant-token-0123456789abcdef"
/* How long one input may keep its connection open. The daemon's own timeouts (header and
 * body: 2 s in the configuration below) close any connection long before. */
#define INPUT_DEADLINE_S 10
/* Answers kept per input for the status check. */
#define REPLY_MAX (1u << 20)

static struct ewtpd d;
static char tmpdir[256];
static int port;
/* Answers by status (index 0: anything else), printed at exit under EWTP_FUZZ_VERBOSE. */
static size_t by_status[600];

static const char config_text[] =
    "dev_mode = true;\n"
    "plugin_dir = \"%s\";\n"
    "state_dir = \"run\";\n"
    "listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n"
    "tenants = (\n"
    "  { id = \"dev\"; token_file = \"dev-token\"; destinations = [ \"*\" ];\n"
    "    parties = [ \"CN-CUSTOMS:3301960ABC\", \"CN-CUSTOMS:3301960PAY\",\n"
    "      \"CN-CUSTOMS:3301980AGT\", \"CN-CUSTOMS:3301980EXP\", \"VAT:BE0123456749\",\n"
    "      \"VAT:BE0999999999\", \"EORI:BE0403170701\", \"EORI:BE0123456749\",\n"
    "      \"TIN:C25845632020\", \"TIN:C20876543210\", \"TIN:0099990001\",\n"
    "      \"VAT:PLACEHOLDER-VAT-NO\", \"TIN:107654321\", \"TIN:108877665\", \"TIN:999991130\",\n"
    "      \"RW-AGENT:AG0123\" ]; },\n"
    "  { id = \"other\"; token_file = \"other-token\"; destinations = [ \"ZZ\", \"CN\" ]; }\n"
    ");\n"
    "store = { backend = \"sqlite\"; path = \"ewtpd.sqlite\"; };\n"
    /* One delivery attempt soon after the accept, the next an hour later: the fuzzed
     * requests, not the deliveries, should take the time. */
    "delivery = { max_attempts = 2; base_delay_ms = 3600000; max_delay_ms = 3600000;\n"
    "  request_timeout_ms = 1000; lease_ms = 60000; poll_interval_ms = 3600000;\n"
    "  scan_interval_ms = 1000; workers = 2; };\n"
    "limits = { header_timeout_ms = 2000; timeout_ms = 2000; };\n"
    "plugins = (\n"
    "  { name = \"zz-test\"; plugin = \"zz\"; settings = { sender_id = \"ZZ-DEV-SENDER\"; };\n"
    "    transport = \"https\"; endpoint = \"http://127.0.0.1:9\"; },\n"
    "  { name = \"cn-hangzhou\"; plugin = \"cn\";\n"
    "    settings = { cop_code = \"3301960ABC\"; cop_name = \"EWTP DEV PLATFORM\";\n"
    "      dxp_id = \"DXPENT0000000001\"; receiver_import = \"DXPEDCCEB0000002\";\n"
    "      receiver_export = \"DXPEDCCEB0000003\"; };\n"
    "    transport = \"spool\"; spool_out = \"spool/cn/out\"; spool_in = \"spool/cn/in\"; },\n"
    "  { name = \"be-liege\"; plugin = \"be\";\n"
    "    settings = { h7 = { exchange_rates = { USD = \"0.92\"; CNY = \"0.13\"; GBP = \"1.15\"; "
    "}; };\n"
    "      peppol = { delivery = \"http\"; }; };\n"
    "    transport = \"https\"; endpoint = \"http://127.0.0.1:9\";\n"
    "    inbound_token_file = \"be-inbound-token\"; },\n"
    "  { name = \"my-dev\"; plugin = \"my\"; settings = { taxpayer_tin = \"C25845632020\"; };\n"
    "    transport = \"https\"; endpoint = \"http://127.0.0.1:9\";\n"
    "    auth = { kind = \"oauth2\"; token_url = \"http://127.0.0.1:9/connect/token\";\n"
    "      client_id = \"ewtp-dev\"; secret_file = \"my-client-secret\"; scope = "
    "\"InvoicingAPI\"; }; },\n"
    "  { name = \"rw-ebm\"; plugin = \"rw\";\n"
    "    settings = { tin = \"999991130\"; bhf_id = \"00\"; device_serial = \"dvcv1130\";\n"
    "      operator_id = \"ewtp-dev\"; operator_name = \"ewtp dev\"; };\n"
    "    transport = \"https\"; endpoint = \"http://127.0.0.1:9\"; },\n"
    "  { name = \"rw-customs\"; plugin = \"rw\";\n"
    "    settings = { office = \"RWKGL\"; office_name = \"Kigali\"; };\n"
    "    transport = \"spool\"; spool_out = \"spool/rw/out\"; spool_in = \"spool/rw/in\"; },\n"
    "  { name = \"et-dev\"; plugin = \"et\";\n"
    "    settings = { tin = \"0099990001\"; system_number = \"ET-DEV-POS-1\";\n"
    "      client_id = \"ewtp-dev\"; client_secret_file = \"et-client-secret\";\n"
    "      api_key_file = \"et-api-key\"; };\n"
    "    transport = \"https\"; endpoint = \"http://127.0.0.1:9\"; }\n"
    ");\n"
    "routes = (\n"
    "  { destination = \"ZZ\"; kinds = [ \"*\" ]; instance = \"zz-test\"; },\n"
    "  { destination = \"CN\"; kinds = [ \"*\" ]; instance = \"cn-hangzhou\"; },\n"
    "  { destination = \"BE\"; kinds = [ \"declaration\", \"invoice\" ]; instance = "
    "\"be-liege\"; },\n"
    "  { destination = \"MY\"; kinds = [ \"invoice\" ]; instance = \"my-dev\"; },\n"
    "  { destination = \"RW\"; kinds = [ \"invoice\" ]; instance = \"rw-ebm\"; },\n"
    "  { destination = \"RW\"; kinds = [ \"declaration\" ]; instance = \"rw-customs\"; },\n"
    "  { destination = \"ET\"; kinds = [ \"invoice\", \"declaration\" ]; instance = \"et-dev\"; "
    "}\n"
    ");\n";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_http: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void die_errors(const char *what, const struct ewtp_errors *why)
{
    for (size_t i = 0; i < ewtp_errors_count(why); i++)
        fprintf(stderr, "fuzz_http: %s\n", ewtp_errors_at(why, i)->message);
    die(what, NULL);
}

/* A file of the temporary folder; secrets with mode 0600 as the daemon wants them. */
static void put_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0)
        die("cannot write", path);
}

static void make_dir(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        die("cannot create", path);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void on_store_commit(void *arg, uint64_t commit_us, size_t accepts)
{
    (void)accepts;
    ewtp_metrics_store_commit(((struct ewtpd *)arg)->metrics, commit_us);
}

/* The port the kernel gave the API listener: the one listening TCP socket of the process. */
static int find_listener_port(void)
{
    for (int fd = 3; fd < 4096; fd++) {
        int on = 0;
        socklen_t ol = sizeof(on);
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == 0 && on &&
            getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sin_family == AF_INET)
            return ntohs(sa.sin_port);
    }
    return -1;
}

static void stop_daemon(void)
{
    if (getenv("EWTP_FUZZ_VERBOSE")) {
        fprintf(stderr, "fuzz_http: answers by status (the /livez checks included):");
        for (int i = 0; i < 600; i++)
            if (by_status[i])
                fprintf(stderr, " %d: %zu", i, by_status[i]);
        fprintf(stderr, "\n");
    }
    ewtpd_services_free(&d);
    memset(&d, 0, sizeof(d));
    if (tmpdir[0] && getenv("EWTP_FUZZ_KEEP_TMP") == NULL)
        nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *pdir = getenv("EWTP_FUZZ_PLUGIN_DIR");
    if (pdir == NULL)
        die("set EWTP_FUZZ_PLUGIN_DIR (<build>/plugins)", NULL);
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/ewtp-fuzz-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        die("cannot create a temporary folder", strerror(errno));
    put_file("dev-token", "dev-token");
    put_file("other-token", OTHER_TOKEN);
    put_file("be-inbound-token", "be-inbound-dev-token");
    put_file("my-client-secret", "my-dev-client-secret");
    put_file("et-client-secret", "et-dev-client-secret");
    put_file("et-api-key", "et-dev-api-key");
    const char *dirs[] = {"run",         "spool",    "spool/cn",     "spool/cn/out",
                          "spool/cn/in", "spool/rw", "spool/rw/out", "spool/rw/in"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        make_dir(dirs[i]);
    char conf[sizeof(config_text) + 4096], path[512];
    snprintf(conf, sizeof(conf), config_text, pdir);
    put_file("fuzz.conf", conf);
    snprintf(path, sizeof(path), "%s/fuzz.conf", tmpdir);

    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    static char config_path[512];
    snprintf(config_path, sizeof(config_path), "%s", path);
    d.config_path = config_path;
    d.started_ms = ewtpd_now_ms();
    d.base = event_base_new();
    struct ewtp_errors *why = ewtp_errors_new();
    if (d.base == NULL || why == NULL)
        die("out of memory", NULL);
    if (ewtp_gen_build(config_path, ++d.next_gen_id, &d.gen, why) != 0)
        die_errors("the configuration is refused", why);
    const struct ewtp_config *c = ewtp_gen_config(d.gen);
    struct ewtp_store_opts so = {.on_commit = on_store_commit, .on_commit_arg = &d};
    char *swhy = NULL;
    if ((d.metrics = ewtp_metrics_new()) == NULL ||
        ewtp_store_open_sqlite(c->store.path, &so, &d.store, &swhy) != 0)
        die("cannot open the store", swhy);
    if ((d.workers = ewtp_workers_new(d.base, c->delivery.workers, c->delivery.nice)) == NULL)
        die("cannot start the workers", NULL);
    if (ewtp_dispatcher_start(&d, why) != 0 || ewtp_http_start(&d, why) != 0)
        die_errors("cannot start the daemon", why);
    ewtp_errors_free(why);
    if ((port = find_listener_port()) <= 0)
        die("no listening socket after ewtp_http_start", NULL);
    atexit(stop_daemon);
    return 0;
}

struct client {
    int fd;
    const uint8_t *data;
    size_t size, off;
    bool shut;
    bool done;
    struct event *ev;
    char *reply;
    size_t reply_len;
};

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct client *cl = arg;
    if (what & EV_TIMEOUT) {
        cl->done = true;
        return;
    }
    if ((what & EV_WRITE) && !cl->shut) {
        while (cl->off < cl->size) {
            ssize_t n = send(fd, cl->data + cl->off, cl->size - cl->off, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0) {
                cl->off = cl->size; /* the daemon closed on us: read what it said */
                break;
            }
            cl->off += (size_t)n;
        }
        if (cl->off == cl->size) {
            shutdown(fd, SHUT_WR);
            cl->shut = true;
            event_del(cl->ev);
            struct timeval tv = {INPUT_DEADLINE_S, 0};
            event_assign(cl->ev, d.base, fd, EV_READ | EV_PERSIST, on_client, cl);
            event_add(cl->ev, &tv);
        }
    }
    if (what & EV_READ) {
        char buf[16384];
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n <= 0) {
                cl->done = true;
                return;
            }
            size_t keep = cl->reply_len + (size_t)n <= REPLY_MAX ? (size_t)n : 0;
            memcpy(cl->reply + cl->reply_len, buf, keep);
            cl->reply_len += keep;
        }
    }
}

/* Writes data on a new connection, shuts the write side and runs the loop until the daemon
 * closes it (or the deadline). The answers are in reply (NUL-terminated). */
static size_t exchange(const uint8_t *data, size_t size, char *reply)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        die("connect to the daemon", strerror(errno));
    struct client cl = {.fd = fd, .data = data, .size = size, .reply = reply};
    cl.ev = event_new(d.base, fd, EV_READ | EV_WRITE | EV_PERSIST, on_client, &cl);
    struct timeval tv = {INPUT_DEADLINE_S, 0};
    if (cl.ev == NULL || event_add(cl.ev, &tv) != 0)
        die("event_new", NULL);
    while (!cl.done)
        event_base_loop(d.base, EVLOOP_ONCE);
    event_free(cl.ev);
    close(fd);
    reply[cl.reply_len] = '\0';
    return cl.reply_len;
}

/* Aborts on a 500 answer: the daemon says it failed itself. */
static void check_statuses(const char *reply, size_t len)
{
    for (const char *p = reply; p && p < reply + len; p = strstr(p + 1, "HTTP/1.")) {
        if (strncmp(p, "HTTP/1.", 7) != 0 || (p != reply && p[-1] != '\n'))
            continue;
        int status = p[8] == ' ' ? atoi(p + 9) : 0;
        by_status[status > 0 && status < 600 ? status : 0]++;
        if (status == 500) {
            fprintf(stderr, "fuzz_http: the daemon answered 500:\n%.2000s\n", p);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *reply;
    if (reply == NULL && (reply = malloc(REPLY_MAX + 1)) == NULL)
        return 0;
    size_t n = exchange(data, size, reply);
    check_statuses(reply, n);
    /* Still serving: /livez answers 200 on a new connection. */
    static const char livez[] = "GET /livez HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    n = exchange((const uint8_t *)livez, sizeof(livez) - 1, reply);
    check_statuses(reply, n);
    if (strncmp(reply, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "fuzz_http: /livez did not answer 200 after the input:\n%.500s\n", reply);
        abort();
    }
    return 0;
}

#ifdef EWTP_FUZZ_LIBFUZZER
/* ---- structure-aware mutation (libFuzzer builds only) ------------------------------------
 * A mutated body no longer matches its Content-Length, so evhttp waits for the rest (and sees
 * the end of the input) or reads the surplus as the next request: byte mutations rarely reach
 * the JSON checks and the plugins behind them. Most of the time the first request is split
 * into head and body, the head or the body is mutated (a JSON body through json_mutate.h,
 * anything else by libFuzzer) and Content-Length is set to the new body's length; the rest
 * gets libFuzzer's own mutations, with Content-Length left as they make it. */
#include "json_mutate.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* The head with its Content-Length value set to body_len (when it has one), into out. */
static size_t set_content_length(const uint8_t *head, size_t hl, size_t body_len, uint8_t *out,
                                 size_t out_max)
{
    static const char name[] = "\r\ncontent-length:";
    size_t nl = sizeof(name) - 1;
    for (size_t i = 0; i + nl <= hl; i++) {
        if (strncasecmp((const char *)head + i, name, nl) != 0)
            continue;
        size_t v = i + nl;
        while (v < hl && head[v] == ' ')
            v++;
        size_t e = v;
        while (e < hl && head[e] >= '0' && head[e] <= '9')
            e++;
        char num[32];
        int n = snprintf(num, sizeof(num), "%zu", body_len);
        if (v + (size_t)n + (hl - e) > out_max)
            break;
        memmove(out, head, v);
        memcpy(out + v, num, (size_t)n);
        memmove(out + v + n, head + e, hl - e);
        return v + (size_t)n + (hl - e);
    }
    if (hl > out_max)
        return 0;
    memmove(out, head, hl);
    return hl;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    unsigned r = seed * 2654435761u + 12345u;
    const uint8_t *end = size >= 4 ? memmem(data, size, "\r\n\r\n", 4) : NULL;
    if (end == NULL || r % 5 == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    size_t hl = (size_t)(end - data) + 4;
    /* The first request's body: what Content-Length says, or the rest of the input. */
    size_t body_len = size - hl;
    const char *cl = memmem(data, hl, "Content-Length:", 15);
    if (cl) {
        size_t want = strtoul(cl + 15, NULL, 10);
        if (want < body_len)
            body_len = want;
    }
    size_t rest = size - hl - body_len; /* pipelined requests after it, kept as they are */
    static uint8_t head[65536], body[65536], tail[65536];
    if (hl > sizeof(head) || body_len > sizeof(body) || rest > sizeof(tail))
        return LLVMFuzzerMutate(data, size, max_size);
    memcpy(head, data, hl);
    memcpy(body, data + hl, body_len);
    memcpy(tail, data + hl + body_len, rest);
    if (r % 5 == 1) {
        hl = LLVMFuzzerMutate(head, hl, sizeof(head) / 2);
    } else {
        json_t *root = json_loadb((const char *)body, body_len, 0, NULL);
        if (root && r % 5 != 2) {
            mutate_json(&root, r / 5);
            char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            if (text && strlen(text) <= sizeof(body)) {
                body_len = strlen(text);
                memcpy(body, text, body_len);
            }
            free(text);
        } else {
            body_len = LLVMFuzzerMutate(body, body_len, sizeof(body));
        }
        json_decref(root);
    }
    size_t out = set_content_length(head, hl, body_len, data, max_size);
    if (out == 0 || out + body_len + rest > max_size)
        return LLVMFuzzerMutate(data, size, max_size);
    memcpy(data + out, body, body_len);
    memcpy(data + out + body_len, tail, rest);
    return out + body_len + rest;
}
#endif
