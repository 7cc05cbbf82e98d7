/* amqp_transport.c — publisher and receipt fetcher over librabbitmq. Contract in
 * amqp_transport.h.
 *
 * Each connection uses channel 1 in confirm mode: publishes are numbered from 1 on it, and
 * the broker's basic.ack / basic.nack name those numbers. One publish is outstanding at a
 * time (the connection's mutex is held until its confirm), so any error leaves no doubt
 * about which message it concerns; the connection is then dropped whole, which also resets
 * the numbering and returns unacked receipts to their queue.
 */
#include "amqp_transport.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <ewtp/errors.h>

#include "runner.h"

#define CHANNEL 1
#define FRAME_MAX 131072
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define CREDENTIALS_MAX 4096
#define IDLE_NO_HEARTBEAT_MS 60000
/* The header that carries first_seen_ms across LATER (republish at the tail). */
#define FIRST_SEEN_HEADER "x-ewtp-first-seen"

struct conn {
    struct conn *next;
    char *key; /* "<instance>\n<out|in>" */
    pthread_mutex_t mu;
    /* Below: under mu. */
    char *sig; /* the settings the connection was opened with */
    amqp_connection_state_t st;
    uint64_t next_tag; /* delivery tag of the next publish on CHANNEL */
    int64_t last_io_ms;
    int64_t idle_limit_ms;
    int64_t retry_at_ms, backoff_ms;
    bool was_up; /* for logging transitions only */
};

struct ewtp_amqp_pool {
    pthread_mutex_t mu;
    struct conn *conns;
    ewtp_amqp_log_fn log;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_of(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static char *bytes_str(amqp_bytes_t b)
{
    return strndup(b.bytes ? (const char *)b.bytes : "", b.len);
}

/* ---- pool ---------------------------------------------------------------------------------- */

struct ewtp_amqp_pool *ewtp_amqp_pool_new(ewtp_amqp_log_fn log)
{
    struct ewtp_amqp_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->log = log;
    return p;
}

static void conn_close(struct conn *c, bool graceful)
{
    if (c->st == NULL)
        return;
    if (graceful) {
        amqp_channel_close(c->st, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(c->st, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(c->st);
    c->st = NULL;
}

void ewtp_amqp_pool_free(struct ewtp_amqp_pool *p)
{
    if (p == NULL)
        return;
    while (p->conns) {
        struct conn *c = p->conns;
        p->conns = c->next;
        conn_close(c, true);
        pthread_mutex_destroy(&c->mu);
        free(c->key);
        free(c->sig);
        free(c);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* The connection of (instance, role), locked. Connections are never freed before the pool,
 * so the pointer stays valid without the pool lock. */
static struct conn *conn_lock(struct ewtp_amqp_pool *p, const char *instance, const char *role)
{
    char *key = ewtp_asprintf("%s\n%s", instance, role);
    if (key == NULL)
        return NULL;
    pthread_mutex_lock(&p->mu);
    struct conn *c = p->conns;
    while (c && strcmp(c->key, key) != 0)
        c = c->next;
    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
        c->key = key;
        key = NULL;
        pthread_mutex_init(&c->mu, NULL);
        c->next = p->conns;
        p->conns = c;
    }
    pthread_mutex_unlock(&p->mu);
    free(key);
    if (c)
        pthread_mutex_lock(&c->mu);
    return c;
}

/* The client pair is the one in use now (client_next takes over at its from, config.h): a
 * connection opened with the old one is replaced at the next call after from. */
static char *signature(const struct ewtp_instance_conf *ic)
{
    const struct ewtp_amqp_conf *a = &ic->amqp;
    const char *cert, *key;
    ewtp_instance_client_pair(ic, ewtp_clock_ms(0), &cert, &key);
    return ewtp_asprintf("%s\n%s\n%s\n%s\n%s\n%d\n%" PRId64, a->url ? a->url : "",
                         a->credentials_file ? a->credentials_file : "",
                         ic->ca_file ? ic->ca_file : "", cert ? cert : "", key ? key : "",
                         a->heartbeat_s, a->connect_timeout_ms);
}

/* Drops the connection after a failure: the next call reconnects after the backoff. */
static void conn_fail(struct ewtp_amqp_pool *p, struct conn *c, const char *instance,
                      const char *why)
{
    conn_close(c, false);
    /* One line per outage: when it starts, not at every attempt while it lasts. */
    if (p->log && (c->was_up || c->backoff_ms == 0))
        p->log(LOG_WARNING, "amqp %s: %s: %s", instance,
               c->was_up ? "connection lost" : "cannot reach the broker", why ? why : "error");
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->retry_at_ms = now_ms() + c->backoff_ms;
    c->was_up = false;
}

/* Text of a failed RPC reply (malloc'd). */
static char *reply_text(amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return ewtp_asprintf("%s: ok", what);
    case AMQP_RESPONSE_NONE:
        return ewtp_asprintf("%s: no answer from the broker", what);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return ewtp_asprintf("%s: %s", what, amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            return ewtp_asprintf("%s: connection closed by the broker: %u %.*s", what,
                                 m->reply_code, (int)m->reply_text.len,
                                 (const char *)m->reply_text.bytes);
        }
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            return ewtp_asprintf("%s: channel closed by the broker: %u %.*s", what, m->reply_code,
                                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        }
        return ewtp_asprintf("%s: broker error (method 0x%08x)", what, r.reply.id);
    }
    return ewtp_asprintf("%s: unknown error", what);
}

static int read_credentials(const char *file, char **user, char **password, char **why)
{
    char *buf = NULL;
    size_t len = 0;
    if (ewtp_read_file(file, CREDENTIALS_MAX, &buf, &len) != 0) {
        *why = ewtp_asprintf("cannot read the credentials file %s: %s", file, strerror(errno));
        return -EWTP_EIO;
    }
    const char *w = NULL;
    int rc = ewtp_amqp_credentials_parse(buf, len, user, password, &w);
    if (rc != 0)
        *why = ewtp_asprintf("credentials file %s: %s", file, w);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

/* Opens c for ic (TCP or TLS, login, channel, confirm mode). 0, or -EWTP_EIO with *why. */
static int conn_open(struct conn *c, const struct ewtp_instance_conf *ic, char **why)
{
    const struct ewtp_amqp_conf *a = &ic->amqp;
    struct ewtp_amqp_url u;
    const char *w = NULL;
    if (ewtp_amqp_url_parse(a->url, &u, &w) != 0) {
        *why = ewtp_asprintf("url: %s", w);
        return -EWTP_EINVAL;
    }
    char *user = NULL, *password = NULL;
    int rc = 0;
    if (a->credentials_file)
        rc = read_credentials(a->credentials_file, &user, &password, why);
    else {
        /* RabbitMQ's guest account, which it only accepts over loopback. */
        user = strdup(u.user ? u.user : "guest");
        password = strdup("guest");
        if (user == NULL || password == NULL)
            rc = -EWTP_ENOMEM;
    }
    amqp_connection_state_t st = rc == 0 ? amqp_new_connection() : NULL;
    amqp_socket_t *sock = NULL;
    if (rc == 0 && st == NULL)
        rc = -EWTP_ENOMEM;
    if (rc == 0)
        sock = u.tls ? amqp_ssl_socket_new(st) : amqp_tcp_socket_new(st);
    if (rc == 0 && sock == NULL) {
        *why = ewtp_asprintf("cannot create a %s socket", u.tls ? "TLS" : "TCP");
        rc = -EWTP_EIO;
    }
    if (rc == 0 && u.tls) {
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        if (ic->ca_file) {
            if (amqp_ssl_socket_set_cacert(sock, ic->ca_file) != AMQP_STATUS_OK) {
                *why = ewtp_asprintf("cannot load ca_file %s", ic->ca_file);
                rc = -EWTP_EIO;
            }
        } else {
            SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
            if (ctx == NULL || SSL_CTX_set_default_verify_paths(ctx) != 1) {
                *why = ewtp_asprintf("cannot load the system's CA certificates");
                rc = -EWTP_EIO;
            }
        }
        const char *cert, *key;
        ewtp_instance_client_pair(ic, ewtp_clock_ms(0), &cert, &key);
        if (rc == 0 && cert && amqp_ssl_socket_set_key(sock, cert, key) != AMQP_STATUS_OK) {
            *why = ewtp_asprintf("cannot load client certificate %s / its key", cert);
            rc = -EWTP_EIO;
        }
    }
    int64_t cto = a->connect_timeout_ms > 0 ? a->connect_timeout_ms : 10000;
    struct timeval tv = tv_of(cto);
    if (rc == 0) {
        int s = amqp_socket_open_noblock(sock, u.host, u.port, &tv);
        if (s != AMQP_STATUS_OK) {
            *why =
                ewtp_asprintf("cannot connect to %s:%d: %s", u.host, u.port, amqp_error_string2(s));
            rc = -EWTP_EIO;
        }
    }
    if (rc == 0) {
        /* Bounds the login handshake and every later synchronous RPC. */
        amqp_set_handshake_timeout(st, &tv);
        amqp_set_rpc_timeout(st, &tv);
        amqp_rpc_reply_t r = amqp_login(st, u.vhost, 0, FRAME_MAX, a->heartbeat_s,
                                        AMQP_SASL_METHOD_PLAIN, user, password);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            *why = reply_text(r, "login");
            rc = -EWTP_EIO;
        }
    }
    if (rc == 0) {
        amqp_channel_open(st, CHANNEL);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            amqp_confirm_select(st, CHANNEL);
            r = amqp_get_rpc_reply(st);
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            *why = reply_text(r, "channel");
            rc = -EWTP_EIO;
        }
    }
    if (password)
        OPENSSL_cleanse(password, strlen(password));
    free(user);
    free(password);
    if (rc != 0) {
        if (*why == NULL)
            *why = ewtp_asprintf("%s", ewtp_strerror(rc));
        if (st)
            amqp_destroy_connection(st);
        ewtp_amqp_url_clear(&u);
        return rc < 0 ? rc : -EWTP_EIO;
    }
    c->st = st;
    c->next_tag = 1;
    c->last_io_ms = now_ms();
    c->idle_limit_ms = a->heartbeat_s > 0 ? (int64_t)a->heartbeat_s * 1000 : IDLE_NO_HEARTBEAT_MS;
    ewtp_amqp_url_clear(&u);
    return 0;
}

/* c connected for ic (reusing it when fit). 0, or -EWTP_EIO with *why. fresh says whether
 * it was opened by this call. */
static int conn_ready(struct ewtp_amqp_pool *p, struct conn *c, const struct ewtp_instance_conf *ic,
                      bool *fresh, char **why)
{
    *fresh = false;
    char *sig = signature(ic);
    if (sig == NULL) {
        *why = ewtp_asprintf("out of memory");
        return -EWTP_ENOMEM;
    }
    if (c->st && (c->sig == NULL || strcmp(c->sig, sig) != 0)) {
        conn_close(c, true); /* the instance's settings changed (reload) */
        c->retry_at_ms = 0;
        c->backoff_ms = 0;
    }
    if (c->st && now_ms() - c->last_io_ms > c->idle_limit_ms)
        conn_close(c, true); /* heartbeats were not serviced while idle: do not trust it */
    free(c->sig);
    c->sig = sig;
    if (c->st)
        return 0;
    int64_t wait = c->retry_at_ms - now_ms();
    if (wait > 0) {
        *why = ewtp_asprintf(
            "the broker was unreachable moments ago; next connection attempt in %" PRId64 " ms",
            wait);
        return -EWTP_EIO;
    }
    int rc = conn_open(c, ic, why);
    if (rc != 0) {
        conn_fail(p, c, ic->name, *why);
        return -EWTP_EIO;
    }
    *fresh = true;
    c->backoff_ms = 0;
    c->retry_at_ms = 0;
    if (p->log)
        p->log(c->was_up ? LOG_DEBUG : LOG_INFO, "amqp %s: connected to %s", ic->name,
               ic->amqp.url);
    c->was_up = true;
    return 0;
}

/* Answers a broker's channel.close / connection.close so that it sees an orderly end. */
static void answer_close(struct conn *c, const amqp_frame_t *f)
{
    if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(c->st, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(c->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

/* Outcome of one publish: 0 confirmed, 1 refused by the broker (nack, return, channel
 * closed), -1 connection-level failure (worth one retry on a fresh connection). */
static int publish_once(struct conn *c, const char *exchange, const char *routing_key,
                        const amqp_basic_properties_t *props, const void *body, size_t len,
                        int64_t timeout_ms, char **why)
{
    amqp_bytes_t b = {len, (void *)(uintptr_t)body};
    int s = amqp_basic_publish(c->st, CHANNEL, amqp_cstring_bytes(exchange),
                               amqp_cstring_bytes(routing_key), 1, 0, props, b);
    if (s != AMQP_STATUS_OK) {
        *why = ewtp_asprintf("publish: %s", amqp_error_string2(s));
        return -1;
    }
    uint64_t tag = c->next_tag++;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
    char *returned = NULL;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            *why = ewtp_asprintf("no confirm from the broker within %" PRId64 " ms", timeout_ms);
            free(returned);
            return -1;
        }
        amqp_frame_t f;
        struct timeval tv = tv_of(left);
        s = amqp_simple_wait_frame_noblock(c->st, &f, &tv);
        if (s == AMQP_STATUS_TIMEOUT)
            continue;
        if (s != AMQP_STATUS_OK) {
            *why = ewtp_asprintf("waiting for the confirm: %s", amqp_error_string2(s));
            free(returned);
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_number_t id = f.payload.method.id;
        if (id == AMQP_BASIC_ACK_METHOD || id == AMQP_BASIC_NACK_METHOD) {
            uint64_t t;
            bool multiple;
            if (id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *m = f.payload.method.decoded;
                t = m->delivery_tag;
                multiple = m->multiple;
            } else {
                amqp_basic_nack_t *m = f.payload.method.decoded;
                t = m->delivery_tag;
                multiple = m->multiple;
            }
            if (!(t == tag || (multiple && t >= tag)))
                continue; /* an earlier publish's late answer */
            if (id == AMQP_BASIC_NACK_METHOD) {
                free(returned);
                *why = ewtp_asprintf("the broker refused the message (basic.nack)");
                return 1;
            }
            if (returned) {
                *why = returned;
                return 1;
            }
            c->last_io_ms = now_ms();
            return 0;
        }
        if (id == AMQP_BASIC_RETURN_METHOD) {
            /* Mandatory and no queue took it: the ack that follows is not a delivery. */
            amqp_basic_return_t *m = f.payload.method.decoded;
            free(returned);
            returned = ewtp_asprintf(
                "the broker could not route the message: %u %.*s (exchange \"%.*s\", "
                "routing key \"%.*s\")",
                m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                (int)m->exchange.len, (const char *)m->exchange.bytes, (int)m->routing_key.len,
                (const char *)m->routing_key.bytes);
            amqp_message_t msg;
            amqp_rpc_reply_t r = amqp_read_message(c->st, f.channel, &msg, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                *why = returned;
                return -1;
            }
            amqp_destroy_message(&msg);
            continue;
        }
        if (id == AMQP_CHANNEL_CLOSE_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_channel_close_t *m = f.payload.method.decoded; /* same leading fields */
            const char *what = id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection";
            char *t;
            if (id == AMQP_CHANNEL_CLOSE_METHOD)
                t = ewtp_asprintf("%s closed by the broker: %u %.*s", what, m->reply_code,
                                  (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            else {
                amqp_connection_close_t *cm = f.payload.method.decoded;
                t = ewtp_asprintf("%s closed by the broker: %u %.*s", what, cm->reply_code,
                                  (int)cm->reply_text.len, (const char *)cm->reply_text.bytes);
            }
            answer_close(c, &f);
            free(returned);
            *why = t;
            /* A closed channel (no such exchange, access refused) is the broker's answer
             * about this message; a closed connection may be a restart. */
            return id == AMQP_CHANNEL_CLOSE_METHOD ? 1 : -1;
        }
    }
}

static const char *content_type_of(const struct ewtp_instance_conf *ic,
                                   const struct ewtp_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i]->name && r->headers[i]->value &&
            strcasecmp(r->headers[i]->name, "Content-Type") == 0)
            return r->headers[i]->value;
    return ic->amqp.content_type ? ic->amqp.content_type : "application/xml";
}

int ewtp_amqp_publish(struct ewtp_amqp_pool *p, const struct ewtp_instance_conf *ic,
                      const struct ewtp_request *r, int64_t confirm_timeout_ms, char **why)
{
    *why = NULL;
    struct conn *c = conn_lock(p, ic->name, "out");
    if (c == NULL) {
        *why = ewtp_asprintf("out of memory");
        return -EWTP_EIO;
    }
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
    props.content_type = amqp_cstring_bytes(content_type_of(ic, r));
    props.delivery_mode = 2; /* persistent: survives a broker restart in a durable queue */
    props.timestamp = (uint64_t)(wall_ms() / 1000);
    props.app_id = amqp_cstring_bytes("ewtpd");
    if (r->path && r->path[0]) {
        /* The file name the spool transport would use: the customs side keys on it. */
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(r->path);
    }
    const char *ex = ic->amqp.exchange ? ic->amqp.exchange : "";
    const char *rk = ic->amqp.routing_key ? ic->amqp.routing_key : "";
    int rc = -EWTP_EIO;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        free(*why);
        *why = NULL;
        if (conn_ready(p, c, ic, &fresh, why) != 0)
            break;
        int o = publish_once(c, ex, rk, &props, r->body, r->body_len, confirm_timeout_ms, why);
        if (o == 0) {
            rc = 0;
            break;
        }
        conn_fail(p, c, ic->name, *why);
        /* A connection that broke while it sat idle (broker restart) gets one more try on a
         * fresh one; a refusal, or a failure on a fresh connection, is the answer. */
        if (o > 0 || fresh)
            break;
        c->retry_at_ms = 0;
    }
    if (c->st)
        amqp_maybe_release_buffers(c->st);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0 && *why == NULL)
        *why = ewtp_asprintf("AMQP publish failed");
    return rc;
}

/* ---- receipts ------------------------------------------------------------------------------ */

static int64_t first_seen(const amqp_basic_properties_t *pr)
{
    if (pr->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < pr->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &pr->headers.entries[i];
            if (e->key.len == strlen(FIRST_SEEN_HEADER) &&
                memcmp(e->key.bytes, FIRST_SEEN_HEADER, e->key.len) == 0) {
                if (e->value.kind == AMQP_FIELD_KIND_I64)
                    return e->value.value.i64;
                if (e->value.kind == AMQP_FIELD_KIND_U64)
                    return (int64_t)e->value.value.u64;
            }
        }
    }
    if ((pr->_flags & AMQP_BASIC_TIMESTAMP_FLAG) && pr->timestamp > 0 &&
        pr->timestamp < (uint64_t)INT64_MAX / 1000)
        return (int64_t)pr->timestamp * 1000;
    return wall_ms();
}

/* Puts msg back at the tail of queue with its first-seen time (confirmed). 0 or -1/1 as
 * publish_once. */
static int requeue_tail(struct conn *c, const char *queue, const amqp_message_t *msg, int64_t seen,
                        int64_t timeout_ms, char **why)
{
    amqp_basic_properties_t props = msg->properties;
    /* Its own headers, minus an older first-seen, plus ours. */
    int n = (props._flags & AMQP_BASIC_HEADERS_FLAG) ? props.headers.num_entries : 0;
    amqp_table_entry_t *e = calloc((size_t)n + 1, sizeof(*e));
    if (e == NULL) {
        *why = ewtp_asprintf("out of memory");
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        const amqp_table_entry_t *o = &props.headers.entries[i];
        if (o->key.len == strlen(FIRST_SEEN_HEADER) &&
            memcmp(o->key.bytes, FIRST_SEEN_HEADER, o->key.len) == 0)
            continue;
        e[k++] = *o;
    }
    e[k].key = amqp_cstring_bytes(FIRST_SEEN_HEADER);
    e[k].value.kind = AMQP_FIELD_KIND_I64;
    e[k].value.value.i64 = seen;
    k++;
    props.headers.num_entries = k;
    props.headers.entries = e;
    props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    /* The default exchange routes by queue name. */
    int rc = publish_once(c, "", queue, &props, msg->body.bytes, msg->body.len, timeout_ms, why);
    free(e);
    return rc;
}

int ewtp_amqp_fetch(struct ewtp_amqp_pool *p, const struct ewtp_instance_conf *ic, size_t max,
                    int64_t timeout_ms, ewtp_amqp_receipt_fn fn, void *arg, size_t *n_handled,
                    char **why)
{
    *why = NULL;
    *n_handled = 0;
    const char *queue = ic->amqp.receipt_queue;
    if (queue == NULL)
        return 0;
    struct conn *c = conn_lock(p, ic->name, "in");
    if (c == NULL) {
        *why = ewtp_asprintf("out of memory");
        return -EWTP_EIO;
    }
    bool fresh = false;
    int rc = conn_ready(p, c, ic, &fresh, why);
    for (size_t i = 0; rc == 0 && i < max; i++) {
        amqp_rpc_reply_t r = amqp_basic_get(c->st, CHANNEL, amqp_cstring_bytes(queue), 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char *w = reply_text(r, "basic.get");
            *why = ewtp_asprintf("%s (queue \"%s\")", w ? w : "basic.get failed", queue);
            free(w);
            rc = -EWTP_EIO;
            break;
        }
        c->last_io_ms = now_ms();
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break;
        amqp_basic_get_ok_t *ok = r.reply.decoded;
        uint64_t tag = ok->delivery_tag;
        amqp_message_t msg;
        r = amqp_read_message(c->st, CHANNEL, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            *why = reply_text(r, "reading a receipt");
            rc = -EWTP_EIO;
            break;
        }
        char *mid = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
                        ? bytes_str(msg.properties.message_id)
                        : NULL;
        struct ewtp_amqp_delivery d = {.message_id = mid,
                                       .body = msg.body.bytes,
                                       .len = msg.body.len,
                                       .first_seen_ms = first_seen(&msg.properties)};
        enum ewtp_amqp_disposition disp = fn(arg, &d);
        (*n_handled)++;
        int s = AMQP_STATUS_OK;
        bool stop = false;
        if (disp == EWTP_AMQP_ACK) {
            s = amqp_basic_ack(c->st, CHANNEL, tag, 0);
        } else if (disp == EWTP_AMQP_REJECT) {
            s = amqp_basic_reject(c->st, CHANNEL, tag, 0);
        } else {
            /* The copy at the tail is confirmed before the original goes, so a crash in
             * between leaves two copies, never none. */
            char *w = NULL;
            int o = requeue_tail(c, queue, &msg, d.first_seen_ms, timeout_ms, &w);
            if (o == 0)
                s = amqp_basic_ack(c->st, CHANNEL, tag, 0);
            else if (o > 0)
                s = amqp_basic_reject(c->st, CHANNEL, tag, 1);
            else {
                *why = w;
                w = NULL;
                rc = -EWTP_EIO;
            }
            free(w);
            stop = true;
        }
        if (rc == 0 && s != AMQP_STATUS_OK) {
            *why = ewtp_asprintf("acknowledging a receipt: %s", amqp_error_string2(s));
            rc = -EWTP_EIO;
        }
        free(mid);
        amqp_destroy_message(&msg);
        amqp_maybe_release_buffers(c->st);
        if (stop)
            break;
    }
    if (rc != 0 && c->st)
        conn_fail(p, c, ic->name, *why);
    pthread_mutex_unlock(&c->mu);
    if (rc != 0 && *why == NULL)
        *why = ewtp_asprintf("AMQP fetch failed");
    return rc == 0 ? 0 : -EWTP_EIO;
}
