/* The HTTP API of ewtpd: listeners (plain and TLS on libevent's evhttp), connection limits,
 * authentication, routing, replies and /metrics. The endpoints' work is in http_messages.c.
 *
 * Everything here runs on the loop thread, except on_store_accept (the store's writer
 * thread), which only queues the request for the loop. Slow work (parsing, plugins, store
 * reads) goes to the worker pool; commits go to the store's writer thread; the loop only
 * routes, authenticates and writes replies.
 *
 * libevent 2.1 notes that shaped this file:
 * - evhttp has one timeout per server (evhttp_set_timeout_tv), used as the bufferevent's
 *   read and write timeout: an *idle* timeout that a client trickling one byte at a time
 *   never trips. The slow-header guard is ours: a timer per connection, armed with
 *   header_timeout when the connection waits for a request (accept, then after each
 *   reply), re-armed with timeout_ms for the body once the head's blank line went by
 *   (watch_input), and disarmed when the complete request reaches us; when it fires, the
 *   connection is freed. An idle keep-alive connection is closed after header_timeout.
 * - evhttp disables reading while the user handles a request (evhttp_handle_request), so a
 *   request waiting for a worker or the store is not cut by the read timeout.
 * - 2.1 has no per-connection user data and no max-connections setting: connections are
 *   found by their evhttp_connection pointer in a small hash, and listeners are paused
 *   (evconnlistener_disable) while max_connections are open.
 * - Requests that evhttp refuses itself (malformed head, head or body too large) are
 *   answered by evhttp_send_error(), whose body is an HTML page; rewrite_error_page() turns
 *   those into JSON on their way out.
 */
#include "http.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certs.h"
#include "config.h"
#include "openapi.h"
#include "util.h"

#define CONN_BUCKETS 1024u
/* How old the store's figures in /metrics may be (ms). */
#define METRICS_STORE_MS 1000

/* The store's figures of one read for /metrics. */
struct metrics_snap {
    int rc;
    struct ewtp_store_count *counts;
    size_t n_counts;
    uint64_t depth;
    int64_t oldest_ms;
    uint64_t ops_pending;
    uint64_t evidence_bytes;
};
/* Latency histogram upper bounds in microseconds (Prometheus' usual seconds buckets). */
static const uint64_t hist_bounds_us[] = {1000,    2500,    5000,    10000,  25000,
                                          50000,   100000,  250000,  500000, 1000000,
                                          2500000, 5000000, 10000000};
#define HIST_N (sizeof(hist_bounds_us) / sizeof(hist_bounds_us[0]))
#define CODE_MAX 600

struct listener {
    struct ewtp_http *h;
    size_t index;
    struct evhttp *evh;
    struct evhttp_bound_socket *sock;
    SSL_CTX *ssl; /* TLS listeners */
    bool admin;
    int port;
    /* The socket as configured at start: a reload's listeners[index] serves its certificates
     * here only when it still names this socket (choose_cert). */
    char *address;
    int conf_port;
};

/* One client connection: its slow-header guard and its place in the hash. */
struct conn {
    struct ewtp_http *h;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until attached (right after accept) */
    struct event *guard;
    bool busy;    /* a request of it is being handled by us */
    bool in_body; /* the current request's head is complete */
    bool nl;      /* watch_input: the last significant byte was a line feed */
    bool held;    /* we hold a reference on bev until attached */
    bool closing; /* refused at the end of its head: closed once the answer is written */
    /* The current request's head as it arrives (watch_input), up to max_header_bytes. */
    char *head;
    size_t head_len, head_cap; /* head_cap: the bytes head was allocated with */
    struct client *client;     /* its address's count (max_connections_per_client) */
    /* Output side of rewrite_error_page(). */
    bool rewriting;
    struct evbuffer_cb_entry *out_cb, *in_cb;
    struct conn *prev, *next, *hnext;
};

/* Open connections from one client address. */
struct client {
    unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned n;
    struct client *next;
};

struct ewtp_http {
    struct ewtpd *d;
    struct listener *ls;
    size_t n_ls;
    struct timeval header_tv, body_tv;
    unsigned max_connections;
    unsigned max_per_client;
    size_t max_head;
    uint64_t refused_per_client;
    size_t max_pending;
    size_t n_conns;
    bool paused;
    bool stopped;
    struct conn *conns;
    struct conn *buckets[CONN_BUCKETS];
    struct client *clients[CONN_BUCKETS];
    struct http_req *reqs; /* live requests */
    /* Accept completions from the store's writer thread. */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct http_req *done_head, *done_tail;
    size_t accepts_pending;
    struct event *accept_ev;
    /* Metrics (loop thread). */
    uint64_t by_code[CODE_MAX];
    uint64_t hist[HIST_N + 1];
    uint64_t hist_count, hist_sum_us;
    /* The store's figures for /metrics (workers, under snap_mu): read at most once per
     * METRICS_STORE_MS whatever the scrape rate, since counting messages by state costs rows
     * that grow with the store and the backlog (issue 19). snap_reads counts the reads. */
    pthread_mutex_t snap_mu;
    struct metrics_snap snap;
    int64_t snap_at_ms; /* monotonic ms of the last read; 0: never */
    uint64_t snap_reads;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* ---- JSON bodies ------------------------------------------------------------------------ */

char *ewtp_http_error_json(const char *error, const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "message", message ? message : "");
    if (o == NULL)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static const char *error_word(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 429:
        return "too_many_requests";
    case 501:
        return "not_implemented";
    case 503:
        return "unavailable";
    default:
        return "error";
    }
}

/* ---- requests --------------------------------------------------------------------------- */

static void req_free(struct http_req *r)
{
    struct ewtp_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    ewtp_message_free(r->msg);
    ewtp_arena_free(r->arena);
    ewtp_store_counts_free(r->counts, r->n_counts);
    ewtp_gen_unref(r->gen);
    free(r->id);
    free(r->body);
    free(r->q_state);
    free(r->q_destination);
    free(r->q_after);
    free(r->reply);
    free(r->canonical);
    free(r);
}

static void observe_latency(struct ewtp_http *h, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t i = 0;
    while (i < HIST_N && (uint64_t)us > hist_bounds_us[i])
        i++;
    h->hist[i]++;
    h->hist_count++;
    h->hist_sum_us += (uint64_t)us;
}

void ewtp_http_reply(struct http_req *r, int status, char *json)
{
    struct ewtp_http *h = r->h;
    if (json == NULL) {
        status = 500;
        json = ewtp_http_error_json("internal", "out of memory");
    }
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->er);
    evhttp_add_header(out, "Content-Type", r->content_type ? r->content_type : "application/json");
    evhttp_add_header(out, "Cache-Control", "no-store");
    if (r->retry_after)
        evhttp_add_header(out, "Retry-After", r->retry_after);
    if (status == 401)
        evhttp_add_header(out, "WWW-Authenticate", "Bearer realm=\"ewtp\"");
    if (buf && json)
        evbuffer_add(buf, json, r->reply_len && status == 200 ? r->reply_len : strlen(json));
    free(json);
    evhttp_send_reply(r->er, status, ewtp_http_reason(status), buf);
    if (buf)
        evbuffer_free(buf);
    if (status >= 100 && status < CODE_MAX)
        h->by_code[status]++;
    if (r->route == HTTP_R_SUBMIT && (status == 202 || status == 200))
        observe_latency(h, mono_us() - r->start_us);
    req_free(r);
}

void ewtp_http_reply_error(struct http_req *r, int status, const char *error, const char *message)
{
    ewtp_http_reply(r, status, ewtp_http_error_json(error, message));
}

void ewtp_http_done_reply(void *arg)
{
    struct http_req *r = arg;
    char *json = r->reply;
    r->reply = NULL;
    ewtp_http_reply(r, r->status ? r->status : 500, json);
}

/* On the workers' interactive lane: a client waits, and no API job may queue behind a
 * delivery's fsync or network I/O (workers.h, issue 20). */
void ewtp_http_run(struct http_req *r, void (*work)(void *), void (*done)(void *))
{
    if (ewtp_workers_submit_interactive(r->d->workers, work, done, r) != 0) {
        r->retry_after = "1";
        ewtp_http_reply_error(r, 503, "unavailable", "the gateway is shutting down");
    }
}

/* ---- store accept completions ---------------------------------------------------------- */

/* Writer thread: only queue the request for the loop. */
static void on_store_accept(void *arg, int rc, enum ewtp_store_accept_result result,
                            enum ewtp_store_state state)
{
    (void)state;
    struct http_req *r = arg;
    struct ewtp_http *h = r->h;
    r->accept_rc = rc;
    r->accept_result = result;
    pthread_mutex_lock(&h->lock);
    r->done_next = NULL;
    if (h->done_tail)
        h->done_tail->done_next = r;
    else
        h->done_head = r;
    h->done_tail = r;
    h->accepts_pending--;
    event_active(h->accept_ev, EV_READ, 0);
    pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
}

static void on_accepts(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_http *h = arg;
    pthread_mutex_lock(&h->lock);
    struct http_req *r = h->done_head;
    h->done_head = h->done_tail = NULL;
    pthread_mutex_unlock(&h->lock);
    bool kick = false;
    while (r) {
        struct http_req *next = r->done_next;
        if (r->accept_rc < 0) {
            ewtpd_log(LOG_ERR, "store accept failed: %s", ewtp_strerror(r->accept_rc));
            r->retry_after = "1";
            ewtp_http_reply_error(r, 503, "unavailable",
                                  "the message store failed; nothing was stored, try again");
        } else if (r->accept_result == EWTP_STORE_NEW) {
            json_t *o = json_pack("{s:s, s:s}", "id", r->id, "state", "accepted");
            char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
            kick = true;
            ewtp_http_reply(r, 202, s);
        } else if (r->accept_result == EWTP_STORE_REPEAT) {
            ewtp_http_run(r, ewtp_http_status_work, ewtp_http_done_reply);
        } else {
            ewtp_http_reply_error(r, 409, "conflict",
                                  "a different message with this id was accepted before");
        }
        r = next;
    }
    if (kick)
        ewtp_dispatcher_kick(h->d);
}

static void accept_refused(struct http_req *r, const char *message)
{
    r->retry_after = "1";
    r->status = 503;
    free(r->reply);
    r->reply = ewtp_http_error_json("unavailable", message);
}

int ewtp_http_accept_enqueue(struct http_req *r)
{
    struct ewtp_http *h = r->h;
    struct ewtpd *d = r->d;
    struct ewtp_store_stats st;
    ewtp_store_stats(d->store, &st);
    if (st.queued >= h->max_pending) {
        accept_refused(r, "too many messages are waiting for the store; try again");
        return -1;
    }
    struct ewtp_store_accept_req a = {
        .tenant = r->tenant->id,
        .id = r->id,
        .kind = r->kind,
        .destination = r->destination,
        .plugin = r->instance,
        .canonical = r->canonical,
        .hash = r->hash,
        .body = r->body,
        .body_len = r->body_len,
        .ordering_key = r->ordering_key,
        .relations = r->n_relations ? r->relations : NULL,
        .n_relations = r->n_relations,
        .batch_key = r->batch_key,
        .needs_chain = r->needs_chain,
        .warnings = r->warnings,
        .now = ewtpd_now_ms(),
        .wait_key = r->wait_for,
        .wait_state = r->wait_state,
    };
    /* The wait ends at the latest wait_timeout_ms after accept (then rejected with a cause). */
    a.wait_until = a.now + ewtp_gen_config(r->gen)->delivery.wait_timeout_ms;
    /* Counted before queueing: the callback may run before accept_async returns. */
    pthread_mutex_lock(&h->lock);
    h->accepts_pending++;
    pthread_mutex_unlock(&h->lock);
    /* Once queued, r is the loop's: answered and freed there, maybe before accept_async
     * returns. The parsed message (which a's strings point into) is freed here after the
     * store copied them, and nothing of r is touched after a successful queueing. */
    struct ewtp_message *msg = r->msg;
    r->msg = NULL;
    int rc = ewtp_store_accept_async(d->store, &a, on_store_accept, r);
    if (rc != 0) {
        r->msg = msg;
        pthread_mutex_lock(&h->lock);
        h->accepts_pending--;
        pthread_mutex_unlock(&h->lock);
        ewtpd_log(LOG_ERR, "store refused an accept: %s", ewtp_strerror(rc));
        accept_refused(r, "the message store is not taking messages");
        return -1;
    }
    ewtp_workers_skip_done(); /* on_accepts answers */
    ewtp_message_free(msg);
    return 0;
}

/* ---- connections: slow-header guard and max_connections --------------------------------- */

static size_t bucket_of(const struct evhttp_connection *evcon)
{
    return (size_t)(((uintptr_t)evcon >> 4) % CONN_BUCKETS);
}

static struct conn *conn_find(struct ewtp_http *h, const struct evhttp_connection *evcon)
{
    for (struct conn *c = h->buckets[bucket_of(evcon)]; c; c = c->hnext)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static void set_paused(struct ewtp_http *h, bool pause)
{
    if (h->paused == pause || h->stopped)
        return;
    h->paused = pause;
    for (size_t i = 0; i < h->n_ls; i++) {
        if (h->ls[i].sock == NULL)
            continue;
        struct evconnlistener *el = evhttp_bound_socket_get_listener(h->ls[i].sock);
        if (pause)
            evconnlistener_disable(el);
        else
            evconnlistener_enable(el);
    }
    if (pause)
        ewtpd_log(LOG_WARNING, "%u connections open: not accepting more for now",
                  h->max_connections);
}

static size_t client_bucket(const unsigned char addr[16])
{
    uint64_t x = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        x = (x ^ addr[i]) * 1099511628211ull;
    return (size_t)(x % CONN_BUCKETS);
}

/* Counts c against its peer's address; the number of connections now open from it (0 when the
 * address is unknown: not counted). */
static unsigned client_add(struct conn *c)
{
    struct ewtp_http *h = c->h;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    unsigned char key[16] = {0};
    if (ss.ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(key, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else {
        return 0;
    }
    size_t b = client_bucket(key);
    struct client *cl = h->clients[b];
    while (cl && memcmp(cl->addr, key, 16) != 0)
        cl = cl->next;
    if (cl == NULL) {
        if ((cl = calloc(1, sizeof(*cl))) == NULL)
            return 0;
        memcpy(cl->addr, key, 16);
        cl->next = h->clients[b];
        h->clients[b] = cl;
    }
    c->client = cl;
    return ++cl->n;
}

static void conn_free(struct conn *c)
{
    struct ewtp_http *h = c->h;
    if (c->evcon) {
        struct conn **pp = &h->buckets[bucket_of(c->evcon)];
        while (*pp && *pp != c)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = c->hnext;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->n_conns--;
    if (c->guard)
        event_free(c->guard);
    /* The bufferevent may outlive c for a moment (evhttp frees it after the close
     * callback): nothing of it may call back into c. */
    if (c->out_cb)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    if (c->in_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    if (c->held)
        bufferevent_decref(c->bev);
    if (c->client && --c->client->n == 0) {
        struct client **pp = &h->clients[client_bucket(c->client->addr)];
        while (*pp && *pp != c->client)
            pp = &(*pp)->next;
        if (*pp)
            *pp = c->client->next;
        free(c->client);
    }
    free(c->head);
    free(c);
    if (h->n_conns < h->max_connections)
        set_paused(h, false);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    /* Called once per connection; cleared so that a second notification cannot reach a
     * freed conn. */
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    conn_free(arg);
}

static void check_head(struct conn *c);

/* Keeps n more bytes of the current head (up to max_head; beyond, evhttp answers 413). */
static void head_add(struct conn *c, const char *p, size_t n)
{
    /* The buffer's own capacity bounds it, whatever the limits are by now. */
    size_t max = c->head ? c->head_cap : c->h->max_head;
    if (c->head_len > max || n > max - c->head_len) {
        c->head_len = SIZE_MAX; /* too long: not checked here */
        return;
    }
    if (c->head == NULL) {
        if ((c->head = malloc(max)) == NULL) {
            c->head_len = SIZE_MAX;
            return;
        }
        c->head_cap = max;
    }
    memcpy(c->head + c->head_len, p, n);
    c->head_len += n;
}

/* Input as it arrives, before evhttp parses it: the end of a request head is a line feed,
 * optionally a carriage return, and another line feed. The head is kept meanwhile and checked
 * when it ends (check_head), before evhttp waits for a body. */
static void watch_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (info->n_added == 0 || c->busy || c->in_body)
        return;
    size_t len = evbuffer_get_length(in);
    size_t at = len >= info->n_added ? len - info->n_added : 0;
    struct evbuffer_ptr ptr;
    if (evbuffer_ptr_set(in, &ptr, at, EVBUFFER_PTR_SET) != 0)
        return;
    char buf[2048];
    while (at < len) {
        ev_ssize_t got = evbuffer_copyout_from(in, &ptr, buf, sizeof(buf));
        if (got <= 0)
            return;
        for (ev_ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n') {
                if (c->nl) {
                    c->in_body = true;
                    if (c->guard)
                        evtimer_add(c->guard, &c->h->body_tv);
                    head_add(c, buf, (size_t)i + 1);
                    check_head(c);
                    return;
                }
                c->nl = true;
            } else if (buf[i] != '\r') {
                c->nl = false;
            }
        }
        head_add(c, buf, (size_t)got);
        at += (size_t)got;
        if (evbuffer_ptr_set(in, &ptr, (size_t)got, EVBUFFER_PTR_ADD) != 0)
            return;
    }
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->evcon && c->closing) {
        evhttp_connection_free(c->evcon); /* its refusal is written (or it will not read) */
        return;
    }
    if (c->busy || c->evcon == NULL)
        return;
    const struct timeval *tv = c->in_body ? &c->h->body_tv : &c->h->header_tv;
    ewtpd_log(LOG_INFO, "closing a connection whose request %s did not arrive in %lld ms",
              c->in_body ? "body" : "head", (long long)tv->tv_sec * 1000 + tv->tv_usec / 1000);
    /* Frees c through on_conn_close. */
    evhttp_connection_free(c->evcon);
}

/* Right after evhttp made the connection around our bufferevent (same loop turn): find the
 * evhttp_connection (the bufferevent's callback argument) and hook its close. */
static void on_attach(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    bufferevent_data_cb rcb = NULL, wcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &cbarg);
    if (ecb == NULL || cbarg == NULL) {
        conn_free(c); /* evhttp already gave the connection up */
        return;
    }
    c->evcon = cbarg;
    size_t b = bucket_of(c->evcon);
    c->hnext = c->h->buckets[b];
    c->h->buckets[b] = c;
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    bufferevent_decref(c->bev);
    c->held = false;
    struct ewtp_http *h = c->h;
    if (client_add(c) > h->max_per_client) {
        if (h->refused_per_client++ % 1000 == 0)
            ewtpd_log(LOG_WARNING,
                      "a client has %u connections open: closing its next ones at once (%" PRIu64
                      " so far)",
                      h->max_per_client, h->refused_per_client);
        evhttp_connection_free(c->evcon); /* frees c through on_conn_close */
    }
}

/* evhttp's libevent 2.1 error pages (evhttp_send_error) are HTML; ours are JSON. An output
 * buffer callback sees every response whole before it is written (evhttp builds a response
 * synchronously), so a response with evhttp's text/html Content-Type is replaced by the
 * same status with a JSON body. */
static void rewrite_error_page(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (info->n_added == 0 || c->rewriting)
        return;
    size_t len = evbuffer_get_length(out);
    if (len < 12 || len > 4096)
        return;
    struct evbuffer_ptr head_end = evbuffer_search(out, "\r\n\r\n", 4, NULL);
    if (head_end.pos < 0)
        return;
    char head[4096];
    size_t hl = (size_t)head_end.pos;
    if (hl >= sizeof(head))
        return;
    evbuffer_copyout(out, head, hl);
    head[hl] = '\0';
    if (strncmp(head, "HTTP/1.", 7) != 0 || strstr(head, "\r\nContent-Type: text/html") == NULL)
        return;
    const char *cl = strstr(head, "\r\nContent-Length: ");
    if (cl == NULL)
        return;
    size_t body_len = strtoul(cl + 18, NULL, 10);
    if (len < hl + 4 + body_len)
        return; /* the body is still being added */
    int status = atoi(head + 9);
    char msg[128];
    snprintf(msg, sizeof(msg), "%s",
             status == 413   ? "the request head or body is larger than this gateway accepts"
             : status == 400 ? "the request is not valid HTTP"
             : status == 501 ? "this method is not implemented"
                             : "the request could not be handled");
    char *json = ewtp_http_error_json(error_word(status), msg);
    if (json == NULL)
        return;
    c->rewriting = true;
    evbuffer_drain(out, len);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                        status, ewtp_http_reason(status), strlen(json), json);
    c->rewriting = false;
    c->h->by_code[status >= 100 && status < CODE_MAX ? status : 0]++;
    free(json);
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    struct listener *l = arg;
    struct ewtp_http *h = l->h;
    struct bufferevent *bev;
    if (l->ssl) {
        SSL *ssl = SSL_new(l->ssl);
        if (ssl == NULL)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            SSL_free(ssl);
            return NULL;
        }
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL)
            return NULL;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return bev; /* served without a guard rather than not at all */
    c->h = h;
    c->bev = bev;
    c->guard = evtimer_new(base, on_guard, c);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    if (c->guard)
        evtimer_add(c->guard, &h->header_tv);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), rewrite_error_page, c);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), watch_input, c);
    /* Held until on_attach, so that it can tell a live bufferevent from a freed one. */
    bufferevent_incref(bev);
    c->held = true;
    if (event_base_once(base, -1, EV_TIMEOUT, on_attach, c, NULL) != 0)
        conn_free(c);
    if (h->n_conns >= h->max_connections)
        set_paused(h, true);
    return bev;
}

static void on_complete(struct evhttp_request *er, void *arg)
{
    (void)er;
    struct conn *c = arg;
    c->busy = false;
    c->in_body = false;
    c->nl = false;
    c->head_len = 0;
    if (c->guard)
        evtimer_add(c->guard, &c->h->header_tv);
}

/* ---- authentication --------------------------------------------------------------------- */

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(struct evhttp_request *er)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(er), "Authorization");
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return NULL;
    v += 7;
    while (*v == ' ')
        v++;
    return *v ? v : NULL;
}

/* The verified client certificate's subject (RFC 2253) of a TLS connection, or NULL. */
static char *bev_subject(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl == NULL)
        return NULL;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return NULL;
    char *out = NULL;
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
            char *p = NULL;
            long n = BIO_get_mem_data(b, &p);
            /* The BIO's bytes are not NUL-terminated: copy exactly n of them. */
            if (n >= 0 && p && (out = malloc((size_t)n + 1)) != NULL) {
                memcpy(out, p, (size_t)n);
                out[n] = '\0';
            }
        }
        BIO_free(b);
    }
    X509_free(cert);
    return out;
}

/* The tenant a TLS connection's verified client certificate authenticates, or NULL: the
 * tenant whose cert_subject is the certificate's subject, and only when the certificate chains
 * to that tenant's own cert_ca_file (issue 19): the listener's client_ca_file may hold several
 * customers' CAs, and any of them could issue a certificate with another tenant's subject. */
static const struct ewtp_tenant_conf *bev_tenant(struct bufferevent *bev, const struct ewtp_gen *g)
{
    char *subject = bev_subject(bev);
    const struct ewtp_tenant_conf *t = subject ? ewtp_gen_tenant_by_subject(g, subject) : NULL;
    free(subject);
    if (t == NULL)
        return NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    bool ok = cert && ewtp_gen_tenant_cert_trusted(g, t, cert, SSL_get_peer_cert_chain(ssl));
    X509_free(cert);
    return ok ? t : NULL;
}

static const struct ewtp_tenant_conf *client_tenant(struct evhttp_request *er,
                                                    const struct ewtp_gen *g)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? bev_tenant(bev, g) : NULL;
}

/* /metrics outside the admin listeners (issue 19, DECISIONS "Tenants and party codes"): only in
 * dev_mode, or to the metrics token (compared as the tenants' tokens are, by SHA-256 in
 * constant time): 0 when allowed, else 404 (no token configured: it lives on the admin
 * listener) or 401. A tenant's token does not do. */
static int metrics_refused(const struct listener *l, struct http_req *r)
{
    const struct ewtp_config *c = ewtp_gen_config(r->gen);
    if (l->admin || (c && c->dev_mode))
        return 0;
    if (c == NULL || c->metrics_token_sha256 == NULL)
        return 404;
    const char *token = bearer_token(r->er);
    char hex[65];
    if (token == NULL || ewtp_sha256_hex(token, strlen(token), hex) != 0 ||
        strlen(c->metrics_token_sha256) != 64 || CRYPTO_memcmp(hex, c->metrics_token_sha256, 64))
        return 401;
    return 0;
}

static const struct ewtp_tenant_conf *authenticate(struct http_req *r)
{
    const char *token = bearer_token(r->er);
    if (token)
        return ewtp_gen_tenant_by_token(r->gen, token);
    return client_tenant(r->er, r->gen);
}

/* ---- credentials when the head ends ------------------------------------------------------ */

/* What check_head needs of a request head: the target, the first Authorization value (both
 * pointing into the head) and whether a body is announced. */
struct head_info {
    const char *target, *auth;
    size_t target_len, auth_len;
    bool body;
};

static void parse_head(const char *h, size_t n, struct head_info *hi)
{
    memset(hi, 0, sizeof(*hi));
    const char *end = h + n;
    for (const char *line = h; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        const char *le = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
        if (line == h) { /* METHOD SP target SP version */
            const char *sp = memchr(line, ' ', (size_t)(le - line));
            if (sp) {
                hi->target = sp + 1;
                const char *sp2 = memchr(hi->target, ' ', (size_t)(le - hi->target));
                hi->target_len = (size_t)((sp2 ? sp2 : le) - hi->target);
            }
        } else {
            const char *colon = memchr(line, ':', (size_t)(le - line));
            size_t nl = colon ? (size_t)(colon - line) : 0;
            const char *v = colon ? colon + 1 : le, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                for (const char *p = v; p < ve; p++)
                    if (*p != '0')
                        hi->body = true; /* not a plain 0 (evhttp refuses what is no number) */
            } else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                hi->body = true;
            } else if (nl == 13 && strncasecmp(line, "Authorization", 13) == 0 && !hi->auth) {
                hi->auth = v;
                hi->auth_len = (size_t)(ve - v);
            }
        }
        line = eol + 1;
    }
}

static void close_soon(struct conn *c)
{
    static const struct timeval now = {0, 0};
    evtimer_add(c->guard, &now); /* on_guard: c->closing */
}

static void on_refusal_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    close_soon(arg);
}

static void on_refusal_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    close_soon(arg);
}

/* 401 (or 404) and close, straight on the connection: evhttp gets nothing more of it (its
 * callbacks replaced, reading off); the connection is freed once the answer is written, or
 * when the header timeout ends a client that does not read. */
static void refuse_head(struct conn *c, int status, const char *error, const char *message)
{
    struct ewtp_http *h = c->h;
    char *json = ewtp_http_error_json(error, message);
    c->closing = true;
    bufferevent_setcb(c->bev, NULL, on_refusal_written, on_refusal_event, c);
    bufferevent_disable(c->bev, EV_READ);
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Cache-Control: no-store\r\n%s"
                        "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                        status, ewtp_http_reason(status),
                        status == 401 ? "WWW-Authenticate: Bearer realm=\"ewtp\"\r\n" : "",
                        json ? strlen(json) : 0, json ? json : "");
    free(json);
    bufferevent_enable(c->bev, EV_WRITE);
    evtimer_add(c->guard, &h->header_tv);
    h->by_code[status]++;
}

/* A head announcing a body is checked as soon as it is complete, before evhttp waits for and
 * buffers the body: without credentials good for its path (the instance's inbound token for
 * /v1/inbound/NAME, a tenant's token or client certificate otherwise), 401 and close now (404
 * for an instance that does not exist, as after the body).
 * Heads without a body take the usual way (authenticate() once evhttp has parsed them). */
static void check_head(struct conn *c)
{
    struct head_info hi;
    size_t n = c->head_len;
    c->head_len = 0;
    if (c->evcon == NULL || c->guard == NULL || c->head == NULL || n > c->head_cap)
        return;
    parse_head(c->head, n, &hi);
    if (!hi.body)
        return;
    char *token = NULL;
    if (hi.auth && hi.auth_len > 7 && strncasecmp(hi.auth, "Bearer ", 7) == 0) {
        const char *t = hi.auth + 7, *te = hi.auth + hi.auth_len;
        if (te > c->head + n) /* never past the head (parse_head keeps inside it) */
            te = c->head + n;
        while (t < te && *t == ' ')
            t++;
        size_t tl = t < te ? (size_t)(te - t) : 0;
        if (tl && memchr(t, '\0', tl) == NULL && (token = malloc(tl + 1)) != NULL) {
            memcpy(token, t, tl);
            token[tl] = '\0';
        }
    }
    static const char inbound[] = "/v1/inbound/";
    struct ewtp_gen *g = ewtpd_gen_acquire(c->h->d);
    bool ok = false, found = true;
    if (hi.target_len > sizeof(inbound) - 1 &&
        memcmp(hi.target, inbound, sizeof(inbound) - 1) == 0) {
        const char *name = hi.target + sizeof(inbound) - 1;
        size_t rest = hi.target_len - (sizeof(inbound) - 1), nl = 0;
        while (nl < rest && name[nl] != '/' && name[nl] != '?')
            nl++;
        char *inst = strndup(name, nl);
        const struct ewtp_gen_instance *gi = inst ? ewtp_gen_instance(g, inst) : NULL;
        found = gi != NULL || inst == NULL;
        ok = ewtp_http_inbound_token_ok(gi, token);
        free(inst);
    } else if (token) {
        ok = ewtp_gen_tenant_by_token(g, token) != NULL;
    } else {
        ok = bev_tenant(c->bev, g) != NULL;
    }
    ewtp_gen_unref(g);
    free(token);
    if (!found)
        refuse_head(c, 404, "not_found", "no plugin instance of this name");
    else if (!ok)
        refuse_head(c, 401, "unauthorized",
                    "a valid bearer token or client certificate is required");
}

/* ---- routing ------------------------------------------------------------------------------ */

/* Ids are the spec's [A-Za-z0-9._:-]{1,64}; instance names the same set, longer allowed. */
static bool valid_id(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

/* 0: route found (*route, *id malloc'd or NULL, *allowed = methods); -1: no such path. */
static int match_path(const char *path, enum http_route *get, enum http_route *post, char **id)
{
    *id = NULL;
    *get = *post = HTTP_R_NONE;
    if (strcmp(path, "/livez") == 0) {
        *get = HTTP_R_LIVEZ;
        return 0;
    }
    if (strcmp(path, "/readyz") == 0) {
        *get = HTTP_R_READYZ;
        return 0;
    }
    if (strcmp(path, "/metrics") == 0) {
        *get = HTTP_R_METRICS;
        return 0;
    }
    if (strcmp(path, "/v1/openapi.json") == 0) {
        *get = HTTP_R_OPENAPI;
        return 0;
    }
    if (strcmp(path, "/v1/messages") == 0) {
        *get = HTTP_R_LIST;
        *post = HTTP_R_SUBMIT;
        return 0;
    }
    static const char msgs[] = "/v1/messages/", inbound[] = "/v1/inbound/";
    if (strncmp(path, inbound, sizeof(inbound) - 1) == 0) {
        const char *name = path + sizeof(inbound) - 1;
        if (!valid_id(name, strlen(name), 128))
            return -1;
        *post = HTTP_R_INBOUND;
        *id = strdup(name);
        return 0;
    }
    if (strncmp(path, msgs, sizeof(msgs) - 1) != 0)
        return -1;
    const char *s = path + sizeof(msgs) - 1;
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!valid_id(s, n, 64))
        return -1;
    if (slash == NULL)
        *get = HTTP_R_STATUS;
    else if (strcmp(slash, "/events") == 0)
        *get = HTTP_R_EVENTS;
    else if (strcmp(slash, "/evidence") == 0)
        *get = HTTP_R_EVIDENCE;
    else if (strcmp(slash, "/cancel") == 0)
        *post = HTTP_R_CANCEL;
    else
        return -1;
    *id = strndup(s, n);
    return 0;
}

static bool is_route(enum http_route r)
{
    return r != HTTP_R_NONE;
}

static int parse_query(struct http_req *r, const char *query)
{
    r->q_limit = 0;
    if (query == NULL || *query == '\0')
        return 0;
    struct evkeyvalq q = {0};
    if (evhttp_parse_query_str(query, &q) != 0)
        return -1;
    int rc = 0;
    for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcmp(kv->key, "state") == 0) {
            free(r->q_state);
            r->q_state = strdup(kv->value);
        } else if (strcmp(kv->key, "destination") == 0) {
            free(r->q_destination);
            r->q_destination = strdup(kv->value);
        } else if (strcmp(kv->key, "after") == 0) {
            free(r->q_after);
            r->q_after = strdup(kv->value);
        } else if (strcmp(kv->key, "limit") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long v = strtoul(kv->value, &end, 10);
            if (errno || end == kv->value || *end || v < 1 || v > 1000 || kv->value[0] == '-')
                rc = -1;
            else
                r->q_limit = v;
        } else {
            rc = -1;
        }
    }
    evhttp_clear_headers(&q);
    return rc;
}

static void readyz_work(void *arg)
{
    struct http_req *r = arg;
    r->store_rc = ewtp_store_backlog(r->d->store, ewtpd_now_ms(), &r->depth, &r->oldest_ms);
}

static void readyz_done(void *arg)
{
    struct http_req *r = arg;
    if (r->d->stopping || r->store_rc != 0 || r->gen == NULL) {
        r->retry_after = "5";
        ewtp_http_reply_error(r, 503, "not_ready",
                              r->d->stopping ? "shutting down"
                                             : "the message store does not answer");
        return;
    }
    json_t *o =
        json_pack("{s:s, s:I}", "status", "ready", "generation", (json_int_t)ewtp_gen_id(r->gen));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    ewtp_http_reply(r, 200, s);
}

/* Reads the store's figures into s (its old counts freed). */
static void snap_read(struct ewtpd *d, struct metrics_snap *s)
{
    ewtp_store_counts_free(s->counts, s->n_counts);
    *s = (struct metrics_snap){0};
    s->rc = ewtp_store_counts(d->store, &s->counts, &s->n_counts);
    if (s->rc == 0)
        s->rc = ewtp_store_backlog(d->store, ewtpd_now_ms(), &s->depth, &s->oldest_ms);
    if (s->rc == 0)
        s->rc = ewtp_store_ops_pending(d->store, &s->ops_pending);
    if (s->rc == 0 && ewtp_store_evidence_bytes(d->store, &s->evidence_bytes) != 0)
        s->evidence_bytes = 0; /* a backend without evidence */
}

/* Worker: the store's figures, from the snapshot when it is recent enough. Concurrent scrapes
 * wait for one read rather than each reading. */
static void metrics_work(void *arg)
{
    struct http_req *r = arg;
    struct ewtp_http *h = r->h;
    int64_t now = mono_us() / 1000;
    pthread_mutex_lock(&h->snap_mu);
    if (h->snap_at_ms == 0 || now - h->snap_at_ms >= METRICS_STORE_MS || h->snap.rc != 0) {
        snap_read(r->d, &h->snap);
        h->snap_at_ms = now > 0 ? now : 1;
        h->snap_reads++;
    }
    const struct metrics_snap *s = &h->snap;
    r->store_rc = s->rc;
    r->depth = s->depth;
    r->oldest_ms = s->oldest_ms;
    r->ops_pending = s->ops_pending;
    r->evidence_bytes = s->evidence_bytes;
    r->snap_reads = h->snap_reads;
    r->counts = s->n_counts ? calloc(s->n_counts, sizeof(*r->counts)) : NULL;
    for (size_t i = 0; r->counts && i < s->n_counts; i++) {
        r->counts[i] = s->counts[i];
        r->counts[i].plugin = s->counts[i].plugin ? strdup(s->counts[i].plugin) : NULL;
    }
    r->n_counts = r->counts ? s->n_counts : 0;
    pthread_mutex_unlock(&h->snap_mu);
}

/* Microseconds as decimal seconds; trimmed ("0.0025", "1") for labels. */
static void fmt_seconds(char *buf, size_t size, uint64_t us, bool trim)
{
    snprintf(buf, size, "%llu.%06llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
    if (!trim)
        return;
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void metrics_done(void *arg)
{
    struct http_req *r = arg;
    struct ewtp_http *h = r->h;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        ewtp_http_reply(r, 500, NULL);
        return;
    }
    fputs("# HELP ewtp_http_requests_total HTTP requests answered, by status code.\n"
          "# TYPE ewtp_http_requests_total counter\n",
          f);
    for (int code = 100; code < CODE_MAX; code++)
        if (h->by_code[code])
            fprintf(f, "ewtp_http_requests_total{code=\"%d\"} %llu\n", code,
                    (unsigned long long)h->by_code[code]);
    fputs("# HELP ewtp_accept_latency_seconds From a complete POST /v1/messages to its "
          "202 or 200.\n# TYPE ewtp_accept_latency_seconds histogram\n",
          f);
    uint64_t cum = 0;
    char s[48];
    for (size_t i = 0; i < HIST_N; i++) {
        cum += h->hist[i];
        fmt_seconds(s, sizeof(s), hist_bounds_us[i], true);
        fprintf(f, "ewtp_accept_latency_seconds_bucket{le=\"%s\"} %llu\n", s,
                (unsigned long long)cum);
    }
    fprintf(f, "ewtp_accept_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)h->hist_count);
    fmt_seconds(s, sizeof(s), h->hist_sum_us, false);
    fprintf(f, "ewtp_accept_latency_seconds_sum %s\n", s);
    fprintf(f, "ewtp_accept_latency_seconds_count %llu\n", (unsigned long long)h->hist_count);
    if (r->store_rc == 0) {
        fputs("# HELP ewtp_messages Messages in the store by plugin instance and state.\n"
              "# TYPE ewtp_messages gauge\n",
              f);
        for (size_t i = 0; i < r->n_counts; i++) {
            fputs("ewtp_messages{plugin=\"", f);
            put_label(f, r->counts[i].plugin ? r->counts[i].plugin : "");
            fprintf(f, "\",state=\"%s\"} %llu\n", ewtp_store_state_name(r->counts[i].state),
                    (unsigned long long)r->counts[i].n);
        }
        fprintf(f,
                "# HELP ewtp_queue_depth Messages still to deliver.\n"
                "# TYPE ewtp_queue_depth gauge\newtp_queue_depth %llu\n",
                (unsigned long long)r->depth);
        fmt_seconds(s, sizeof(s), (uint64_t)(r->oldest_ms > 0 ? r->oldest_ms : 0) * 1000, true);
        fprintf(f,
                "# HELP ewtp_oldest_pending_age_seconds Age of the oldest message still to "
                "deliver.\n# TYPE ewtp_oldest_pending_age_seconds gauge\n"
                "ewtp_oldest_pending_age_seconds %s\n",
                s);
        fprintf(f,
                "# HELP ewtp_operations_pending Operations on messages (cancels) recorded and "
                "not ended yet.\n# TYPE ewtp_operations_pending gauge\n"
                "ewtp_operations_pending %llu\n",
                (unsigned long long)r->ops_pending);
        fprintf(f,
                "# HELP ewtp_evidence_bytes Bytes of evidence kept (the documents sent, the "
                "answers).\n# TYPE ewtp_evidence_bytes gauge\n"
                "ewtp_evidence_bytes %llu\n",
                (unsigned long long)r->evidence_bytes);
    }
    fprintf(f,
            "# HELP ewtp_metrics_store_reads_total Reads of the store's figures for /metrics "
            "(at most one a second, whatever the scrape rate).\n"
            "# TYPE ewtp_metrics_store_reads_total counter\newtp_metrics_store_reads_total %llu\n",
            (unsigned long long)r->snap_reads);
    fprintf(f,
            "# HELP ewtp_store_up Whether the message store answered.\n"
            "# TYPE ewtp_store_up gauge\newtp_store_up %d\n",
            r->store_rc == 0);
    fprintf(f,
            "# HELP ewtp_generation Configuration generation in use.\n"
            "# TYPE ewtp_generation gauge\newtp_generation %llu\n",
            (unsigned long long)ewtp_gen_id(r->gen));
    ewtp_certs_write_metrics(ewtp_gen_certs(r->gen), ewtpd_now_ms(), f);
    fprintf(f,
            "# HELP ewtp_reloads_total Configuration reloads by result.\n"
            "# TYPE ewtp_reloads_total counter\n"
            "ewtp_reloads_total{result=\"ok\"} %llu\newtp_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)r->d->reloads_ok, (unsigned long long)r->d->reloads_failed);
    uint64_t wh_ok = 0, wh_failed = 0;
    ewtp_dispatcher_webhook_counts(r->d, &wh_ok, &wh_failed);
    fprintf(f,
            "# HELP ewtp_webhooks_delivered_total Webhooks the receiver took (2xx), this process.\n"
            "# TYPE ewtp_webhooks_delivered_total counter\newtp_webhooks_delivered_total %llu\n"
            "# HELP ewtp_webhooks_failed_total Webhooks given up (refused or out of attempts), "
            "this process.\n"
            "# TYPE ewtp_webhooks_failed_total counter\newtp_webhooks_failed_total %llu\n",
            (unsigned long long)wh_ok, (unsigned long long)wh_failed);
    ewtp_metrics_write(r->d->metrics, f);
    fprintf(f,
            "# HELP ewtp_http_connections Open client connections.\n"
            "# TYPE ewtp_http_connections gauge\newtp_http_connections %zu\n",
            h->n_conns);
    fclose(f);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    ewtp_http_reply(r, 200, text);
}

static void send_plain_error(struct evhttp_request *er, struct ewtp_http *h, int status,
                             const char *allow, const char *message)
{
    char *json = ewtp_http_error_json(error_word(status), message);
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *out = evhttp_request_get_output_headers(er);
    evhttp_add_header(out, "Content-Type", "application/json");
    if (allow)
        evhttp_add_header(out, "Allow", allow);
    if (status == 503)
        evhttp_add_header(out, "Retry-After", "5");
    if (buf && json)
        evbuffer_add(buf, json, strlen(json));
    free(json);
    evhttp_send_reply(er, status, ewtp_http_reason(status), buf);
    if (buf)
        evbuffer_free(buf);
    h->by_code[status]++;
}

/* GET /v1/openapi.json: public API documentation, no credentials; the compiled-in bytes are
 * sent by reference, never copied or read per request. */
static void send_openapi(struct evhttp_request *er, struct ewtp_http *h)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *out = evhttp_request_get_output_headers(er);
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Cache-Control", "no-cache");
    if (buf)
        evbuffer_add_reference(buf, ewtp_openapi_json, ewtp_openapi_json_len, NULL, NULL);
    evhttp_send_reply(er, buf ? 200 : 503, ewtp_http_reason(buf ? 200 : 503), buf);
    if (buf)
        evbuffer_free(buf);
    h->by_code[buf ? 200 : 503]++;
}

static void on_request(struct evhttp_request *er, void *arg)
{
    struct listener *l = arg;
    struct ewtp_http *h = l->h;
    struct ewtpd *d = h->d;
    struct evhttp_connection *evcon = evhttp_request_get_connection(er);
    struct conn *c = evcon ? conn_find(h, evcon) : NULL;
    if (c) {
        if (c->guard)
            evtimer_del(c->guard);
        c->busy = true;
        evhttp_request_set_on_complete_cb(er, on_complete, c);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum http_route get, post;
    char *id = NULL;
    if (path == NULL || match_path(path, &get, &post, &id) != 0 ||
        (l->admin && get != HTTP_R_LIVEZ && get != HTTP_R_READYZ && get != HTTP_R_METRICS)) {
        free(id);
        send_plain_error(er, h, 404, NULL, "no such resource");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(er);
    enum http_route route;
    if (method == EVHTTP_REQ_GET && is_route(get)) {
        route = get;
    } else if (method == EVHTTP_REQ_POST && is_route(post)) {
        route = post;
    } else {
        free(id);
        send_plain_error(er, h, 405, is_route(get) ? "GET" : "POST",
                         "this method is not allowed here");
        return;
    }
    if (d->stopping && route != HTTP_R_LIVEZ) {
        free(id);
        send_plain_error(er, h, 503, NULL, "the gateway is shutting down");
        return;
    }
    if (route == HTTP_R_OPENAPI) {
        free(id);
        send_openapi(er, h);
        return;
    }
    struct http_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        free(id);
        send_plain_error(er, h, 503, NULL, "out of memory");
        return;
    }
    r->h = h;
    r->d = d;
    r->er = er;
    r->route = route;
    r->id = id;
    r->start_us = mono_us();
    r->gen = ewtpd_gen_acquire(d);
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;

    switch (route) {
    case HTTP_R_LIVEZ:
        ewtp_http_reply(r, 200, strdup("{\"status\":\"ok\"}"));
        return;
    case HTTP_R_READYZ:
        ewtp_http_run(r, readyz_work, readyz_done);
        return;
    case HTTP_R_METRICS: {
        int refused = metrics_refused(l, r);
        if (refused == 404)
            ewtp_http_reply_error(r, 404, "not_found",
                                  "/metrics is served on the admin listener (or on this one with "
                                  "metrics_token_file)");
        else if (refused)
            ewtp_http_reply_error(r, 401, "unauthorized", "/metrics needs the metrics token here");
        else
            ewtp_http_run(r, metrics_work, metrics_done);
        return;
    }
    default:
        break;
    }

    /* Bodies: evhttp refused anything over max_body_bytes already (413). */
    if (route == HTTP_R_SUBMIT || route == HTTP_R_CANCEL || route == HTTP_R_INBOUND) {
        struct evbuffer *in = evhttp_request_get_input_buffer(er);
        size_t n = evbuffer_get_length(in);
        if (n > ewtp_gen_config(r->gen)->limits.max_body_bytes) {
            ewtp_http_reply_error(r, 413, "too_large", "the body is larger than allowed");
            return;
        }
        r->body = malloc(n + 1);
        if (r->body == NULL) {
            ewtp_http_reply(r, 500, NULL);
            return;
        }
        evbuffer_remove(in, r->body, n);
        r->body[n] = '\0';
        r->body_len = n;
    }
    if (route == HTTP_R_INBOUND) {
        ewtp_http_inbound(r); /* authenticated per instance */
        return;
    }
    r->tenant = authenticate(r);
    if (r->tenant == NULL) {
        ewtp_http_reply_error(r, 401, "unauthorized",
                              "a valid bearer token or client certificate is required");
        return;
    }
    switch (route) {
    case HTTP_R_SUBMIT:
        if (ewtp_workers_pending(d->workers) >= h->max_pending) {
            r->retry_after = "1";
            ewtp_http_reply_error(r, 429, "too_many_requests",
                                  "too many requests are being processed; try again");
            return;
        }
        ewtp_http_run(r, ewtp_http_submit_work, ewtp_http_submit_done);
        return;
    case HTTP_R_STATUS:
        ewtp_http_run(r, ewtp_http_status_work, ewtp_http_done_reply);
        return;
    case HTTP_R_EVENTS:
        ewtp_http_run(r, ewtp_http_events_work, ewtp_http_done_reply);
        return;
    case HTTP_R_EVIDENCE: /* built on a worker: reads the store and signs */
        ewtp_http_run(r, ewtp_http_evidence_work, ewtp_http_done_reply);
        return;
    case HTTP_R_LIST:
        if (parse_query(r, uri ? evhttp_uri_get_query(uri) : NULL) != 0) {
            ewtp_http_reply_error(r, 400, "bad_request",
                                  "query parameters are state, destination, limit (1-1000) "
                                  "and after");
            return;
        }
        ewtp_http_run(r, ewtp_http_list_work, ewtp_http_done_reply);
        return;
    case HTTP_R_CANCEL:
        ewtp_http_cancel(r);
        return;
    default:
        ewtp_http_reply(r, 500, NULL);
        return;
    }
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static void tls_error(struct ewtp_errors *why, size_t i, const char *what, const char *file)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    ewtp_errors_add(why, "", "tls", "listeners[%zu]: %s %s: %s", i, what, file ? file : "(none)",
                    buf[0] ? buf : "failed");
}

static SSL_CTX *make_tls(const struct ewtp_listener_conf *lc, size_t i, struct ewtp_errors *why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_error(why, i, "cannot create a TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Mozilla's "intermediate" profile (v5.7): TLS 1.2 with ECDHE (or DHE) and AEAD suites
     * only, no static RSA key exchange, no CBC; TLS 1.3's suites are all acceptable. */
    static const char intermediate[] =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    if (SSL_CTX_set_cipher_list(ctx, intermediate) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") != 1) {
        ewtp_errors_add(why, "", "tls", "listeners[%zu]: cannot set the TLS cipher suites", i);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, lc->cert_file) != 1) {
        tls_error(why, i, "cannot use certificate", lc->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, lc->key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error(why, i, "cannot use key", lc->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(why, i, "key does not match the certificate", lc->key_file);
        goto fail;
    }
    if (lc->client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, lc->client_ca_file, NULL) != 1) {
            tls_error(why, i, "cannot load client CA", lc->client_ca_file);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(lc->client_ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* Sessions are not resumed across listeners with different CAs. */
        static const unsigned char sid[] = "ewtpd-mtls";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Each TLS handshake takes the certificate of the current generation's listener at this
 * moment (certs.h, issue 18): a successor (next = { ... from; }) takes over at its from, and
 * after a reload that changed the files new connections get the new pair while open ones keep
 * theirs; nothing is read from disk here. The context's own pair (loaded at start) serves
 * when the current configuration has no TLS pair for this socket (a listener whose address
 * changed needs a restart). Loop thread (the handshake runs in the bufferevent). */
static int choose_cert(SSL *ssl, void *arg)
{
    struct listener *l = arg;
    const struct ewtp_gen *g = l->h->d->gen;
    const struct ewtp_config *c = g ? ewtp_gen_config(g) : NULL;
    if (c == NULL || l->index >= c->n_listeners)
        return 1;
    const struct ewtp_listener_conf *lc = &c->listeners[l->index];
    if (lc->port != l->conf_port || lc->address == NULL || strcmp(lc->address, l->address) != 0)
        return 1;
    ewtp_certs_use_listener(ewtp_gen_certs(g), l->index, ewtpd_now_ms(), ssl);
    return 1;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int bound_port(struct evhttp_bound_socket *sock)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int ewtp_http_start(struct ewtpd *d, struct ewtp_errors *why)
{
    const struct ewtp_config *conf = ewtp_gen_config(d->gen);
    const struct ewtp_limits_conf *lim = &conf->limits;
    struct ewtp_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    h->d = d;
    d->http = h;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->snap_mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    h->header_tv = ms_tv(lim->header_timeout_ms > 0 ? lim->header_timeout_ms : 10000);
    h->max_connections = lim->max_connections ? lim->max_connections : 1024;
    h->max_per_client = lim->max_connections_per_client ? lim->max_connections_per_client : 64;
    /* evhttp's limit is on the header lines; the request line comes on top. */
    h->max_head = (lim->max_header_bytes ? lim->max_header_bytes : 16384) + 8192;
    h->max_pending = lim->max_pending ? lim->max_pending : 10000;
    h->accept_ev = event_new(d->base, -1, 0, on_accepts, h);
    h->ls = calloc(conf->n_listeners ? conf->n_listeners : 1, sizeof(*h->ls));
    if (h->accept_ev == NULL || h->ls == NULL)
        return -EWTP_ENOMEM;
    struct timeval timeout = ms_tv(lim->timeout_ms > 0 ? lim->timeout_ms : 30000);
    h->body_tv = timeout;
    for (size_t i = 0; i < conf->n_listeners; i++) {
        const struct ewtp_listener_conf *lc = &conf->listeners[i];
        struct listener *l = &h->ls[i];
        h->n_ls++;
        l->h = h;
        l->index = i;
        l->admin = lc->admin;
        l->port = -1;
        l->evh = evhttp_new(d->base);
        if (l->evh == NULL)
            return -EWTP_ENOMEM;
        if (lc->tls && (l->ssl = make_tls(lc, i, why)) == NULL)
            return -EWTP_EINVAL;
        l->conf_port = lc->port;
        if ((l->address = strdup(lc->address)) == NULL)
            return -EWTP_ENOMEM;
        if (l->ssl)
            SSL_CTX_set_cert_cb(l->ssl, choose_cert, l);
        evhttp_set_timeout_tv(l->evh, &timeout);
        evhttp_set_max_body_size(
            l->evh,
            (ev_ssize_t)(lim->max_body_bytes ? lim->max_body_bytes : EWTP_MESSAGE_MAX_DEFAULT));
        evhttp_set_max_headers_size(
            l->evh, (ev_ssize_t)(lim->max_header_bytes ? lim->max_header_bytes : 16384));
        /* A body over the limit is read and dropped before the 413, so that a client
         * still sending it gets the answer rather than a reset. The slow-header guard
         * bounds how long that can take. */
        evhttp_set_flags(l->evh, EVHTTP_SERVER_LINGERING_CLOSE);
        /* Every method reaches on_request, which answers 405 in JSON. */
        evhttp_set_allowed_methods(l->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                               EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                               EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
        evhttp_set_gencb(l->evh, on_request, l);
        evhttp_set_bevcb(l->evh, on_new_bev, l);
        l->sock = evhttp_bind_socket_with_handle(l->evh, lc->address, (ev_uint16_t)lc->port);
        if (l->sock == NULL) {
            ewtp_errors_add(why, "", "listen", "listeners[%zu]: cannot listen on %s port %d: %s", i,
                            lc->address, lc->port, strerror(errno));
            return -EWTP_EIO;
        }
        l->port = bound_port(l->sock);
        ewtpd_log(LOG_INFO, "listening on %s://%s%s%s:%d%s%s", lc->tls ? "https" : "http",
                  strchr(lc->address, ':') ? "[" : "", lc->address,
                  strchr(lc->address, ':') ? "]" : "", l->port,
                  lc->client_ca_file ? " (client certificates required)" : "",
                  lc->admin ? " (admin: /livez /readyz /metrics only)" : "");
    }
    return 0;
}

void ewtp_http_stop(struct ewtpd *d)
{
    struct ewtp_http *h = d->http;
    if (h == NULL || h->stopped)
        return;
    for (size_t i = 0; i < h->n_ls; i++) {
        if (h->ls[i].sock) {
            evhttp_del_accept_socket(h->ls[i].evh, h->ls[i].sock);
            h->ls[i].sock = NULL;
        }
    }
    h->stopped = true;
    /* Idle keep-alive connections go now; those with a request in flight get its reply. */
    for (struct conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (!c->busy && c->evcon)
            evhttp_connection_free(c->evcon);
    }
}

void ewtp_http_free(struct ewtpd *d)
{
    struct ewtp_http *h = d ? d->http : NULL;
    if (h == NULL)
        return;
    /* Accepts queued with the store finish on its writer thread (which still runs); their
     * callbacks point at our requests, so wait for them, bounded. */
    pthread_mutex_lock(&h->lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    while (h->accepts_pending > 0)
        if (pthread_cond_timedwait(&h->idle, &h->lock, &until) != 0)
            break;
    size_t left = h->accepts_pending;
    pthread_mutex_unlock(&h->lock);
    if (left) {
        /* Cannot free requests the store may still call back with: leak them, loudly. */
        ewtpd_log(LOG_ERR, "%zu accepts still pending in the store at exit", left);
    } else {
        while (h->reqs)
            req_free(h->reqs);
    }
    for (size_t i = 0; i < h->n_ls; i++) {
        if (h->ls[i].evh)
            evhttp_free(h->ls[i].evh); /* frees its connections: on_conn_close */
        if (h->ls[i].ssl)
            SSL_CTX_free(h->ls[i].ssl);
        free(h->ls[i].address);
    }
    while (h->conns)
        conn_free(h->conns); /* never attached */
    if (h->accept_ev)
        event_free(h->accept_ev);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    ewtp_store_counts_free(h->snap.counts, h->snap.n_counts);
    pthread_mutex_destroy(&h->snap_mu);
    free(h->ls);
    free(h);
    d->http = NULL;
}
