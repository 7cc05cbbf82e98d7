/* HTTP(S) client over libevent; see transport.h. */
#include "httpc.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ewtp/errors.h>

#define MAX_RESPONSE_BODY (8u << 20)
#define MAX_RESPONSE_HEADERS (64u << 10)

/* SSL_CTX per distinct (ca_file, client_cert, client_key): loading a CA bundle per request
 * would cost more than the request. */
struct tls_ctx {
    struct tls_ctx *next;
    char *id;
    SSL_CTX *ctx;
};

struct treq {
    struct treq *next, *prev;
    struct ewtp_httpc *t;
    struct evhttp_connection *evcon;
    struct evhttp_request *req;
    struct event *timer; /* total timeout */
    struct event *done;  /* completion, deferred out of evhttp's callback */
    struct ewtp_httpc_resp *resp;
    const char *err; /* from the error callback */
    char *peer;      /* the TLS peer's fingerprint, taken when the answer's head arrived */
    ewtp_httpc_fn cb;
    void *arg;
    bool finished;
};

struct ewtp_httpc {
    struct event_base *base;
    struct tls_ctx *tls;
    struct treq *live;
};

void ewtp_httpc_resp_free(struct ewtp_httpc_resp *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r->error);
    free(r->peer);
    free(r);
}

struct ewtp_httpc *ewtp_httpc_new(struct event_base *base)
{
    struct ewtp_httpc *t = calloc(1, sizeof(*t));
    if (t)
        t->base = base;
    return t;
}

static void treq_free(struct treq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->t->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->evcon)
        evhttp_connection_free(r->evcon); /* frees a pending request without calling back */
    if (r->timer)
        event_free(r->timer);
    if (r->done)
        event_free(r->done);
    ewtp_httpc_resp_free(r->resp);
    free(r->peer);
    free(r);
}

void ewtp_httpc_free(struct ewtp_httpc *t)
{
    if (t == NULL)
        return;
    while (t->live)
        treq_free(t->live);
    for (struct tls_ctx *c = t->tls, *n; c; c = n) {
        n = c->next;
        SSL_CTX_free(c->ctx);
        free(c->id);
        free(c);
    }
    free(t);
}

char *ewtp_httpc_join(const char *endpoint, const char *path)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    if (path == NULL || *path == '\0')
        return ewtp_asprintf("%.*s", (int)n, endpoint);
    return ewtp_asprintf("%.*s%s%s", (int)n, endpoint, path[0] == '/' ? "" : "/", path);
}

static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static SSL_CTX *tls_ctx_get(struct ewtp_httpc *t, const struct ewtp_httpc_tls *tls, char **why)
{
    const char *ca = tls && tls->ca_file ? tls->ca_file : "";
    const char *cert = tls && tls->client_cert ? tls->client_cert : "";
    const char *key = tls && tls->client_key ? tls->client_key : "";
    char *id = ewtp_asprintf("%s\n%s\n%s", ca, cert, key);
    if (id == NULL)
        return NULL;
    for (struct tls_ctx *c = t->tls; c; c = c->next) {
        if (strcmp(c->id, id) == 0) {
            free(id);
            return c->ctx;
        }
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *fail = NULL;
    if (ctx == NULL)
        fail = "cannot create a TLS context";
    else if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        fail = "cannot require TLS 1.2";
    else if (*ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
                 : SSL_CTX_set_default_verify_paths(ctx) != 1)
        fail = "cannot load the CA certificates";
    else if (*cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        fail = "cannot load the client certificate";
    else if (*cert && SSL_CTX_use_PrivateKey_file(ctx, *key ? key : cert, SSL_FILETYPE_PEM) != 1)
        fail = "cannot load the client key";
    else if (*cert && SSL_CTX_check_private_key(ctx) != 1)
        fail = "the client key does not match the client certificate";
    if (fail) {
        if (why)
            *why = ewtp_asprintf("%s (ca_file %s, client_cert %s): %s", fail, *ca ? ca : "system",
                                 *cert ? cert : "none",
                                 ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        free(id);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    struct tls_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        SSL_CTX_free(ctx);
        free(id);
        return NULL;
    }
    c->id = id;
    c->ctx = ctx;
    c->next = t->tls;
    t->tls = c;
    return ctx;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct treq *r = arg;
    struct ewtp_httpc_resp *resp = r->resp;
    ewtp_httpc_fn cb = r->cb;
    void *cb_arg = r->arg;
    r->resp = NULL;
    treq_free(r);
    cb(cb_arg, resp);
}

/* Ends r with resp (taken); the callback runs from the loop, never from inside evhttp. */
static void finish(struct treq *r, struct ewtp_httpc_resp *resp)
{
    if (r->finished) {
        ewtp_httpc_resp_free(resp);
        return;
    }
    r->finished = true;
    r->resp = resp;
    event_del(r->timer);
    event_active(r->done, 0, 0);
}

static struct ewtp_httpc_resp *failure(const char *text)
{
    struct ewtp_httpc_resp *resp = calloc(1, sizeof(*resp));
    if (resp)
        resp->error = strdup(text);
    return resp;
}

static const char *ssl_reason(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    const char *s = e ? ERR_reason_error_string(e) : NULL;
    return s;
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    struct treq *r = arg;
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        r->err = "timeout";
        break;
    case EVREQ_HTTP_EOF:
        r->err = "connection closed by the peer";
        break;
    case EVREQ_HTTP_INVALID_HEADER:
        r->err = "invalid HTTP header in the answer";
        break;
    case EVREQ_HTTP_BUFFER_ERROR:
        r->err = "connection failed";
        break;
    case EVREQ_HTTP_DATA_TOO_LONG:
        r->err = "answer too large";
        break;
    default:
        r->err = "request failed";
        break;
    }
}

/* "sha256:<hex>" of the TLS peer's certificate on evcon, or NULL (plain HTTP, none). */
static char *peer_fingerprint(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    if (cert == NULL)
        return NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char *out = NULL;
    if (X509_digest(cert, EVP_sha256(), md, &len) == 1 && (out = malloc(8 + 2 * len)) != NULL) {
        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < len; i++)
            snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    }
    X509_free(cert);
    return out;
}

/* The answer's head has been read: the TLS peer is taken now, while its connection is up.
 * By on_response it is gone: evhttp resets a connection whose request said "Connection:
 * close" (ours all do) before it calls back, and the reset SSL has no peer any more. */
static int on_headers(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct treq *r = arg;
    if (r->peer == NULL)
        r->peer = peer_fingerprint(r->evcon);
    return 0;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct treq *r = arg;
    r->req = NULL; /* evhttp frees it after this callback */
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status == 0) {
        const char *tls = ssl_reason(r->evcon);
        char *text = tls ? ewtp_asprintf("TLS: %s", tls) : NULL;
        finish(r, failure(text ? text : r->err ? r->err : "connection failed"));
        free(text);
        return;
    }
    struct ewtp_httpc_resp *resp = calloc(1, sizeof(*resp));
    if (resp == NULL) {
        finish(r, failure("out of memory"));
        return;
    }
    resp->status = status;
    resp->peer = r->peer ? r->peer : peer_fingerprint(r->evcon);
    r->peer = NULL;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    size_t n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    resp->headers = n ? calloc(n, sizeof(*resp->headers)) : NULL;
    for (struct evkeyval *kv = h->tqh_first; kv && resp->headers; kv = kv->next.tqe_next) {
        resp->headers[resp->n_headers].name = strdup(kv->key);
        resp->headers[resp->n_headers].value = strdup(kv->value);
        resp->n_headers++;
    }
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    resp->body = malloc(len + 1);
    if (resp->body) {
        evbuffer_remove(b, resp->body, len);
        resp->body[len] = '\0';
        resp->body_len = len;
    }
    finish(r, resp);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct treq *r = arg;
    /* Dropping the connection drops the request without a callback from evhttp. */
    if (r->evcon) {
        evhttp_connection_free(r->evcon);
        r->evcon = NULL;
    }
    finish(r, failure("timeout"));
}

static enum evhttp_cmd_type method_of(const char *m, bool *ok)
{
    *ok = true;
    if (strcmp(m, "GET") == 0)
        return EVHTTP_REQ_GET;
    if (strcmp(m, "POST") == 0)
        return EVHTTP_REQ_POST;
    if (strcmp(m, "PUT") == 0)
        return EVHTTP_REQ_PUT;
    if (strcmp(m, "DELETE") == 0)
        return EVHTTP_REQ_DELETE;
    if (strcmp(m, "PATCH") == 0)
        return EVHTTP_REQ_PATCH;
    *ok = false;
    return EVHTTP_REQ_GET;
}

int ewtp_httpc_send(struct ewtp_httpc *t, const char *url, const char *method,
                    const struct ewtp_header *headers, size_t n_headers, const void *body,
                    size_t len, const struct ewtp_httpc_tls *tls, int64_t timeout_ms,
                    ewtp_httpc_fn cb, void *arg, char **why)
{
    if (why)
        *why = NULL;
    bool ok;
    enum evhttp_cmd_type type = method_of(method ? method : "", &ok);
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    int rc = 0;
    if (!ok) {
        rc = -EWTP_EINVAL;
        if (why)
            *why = ewtp_asprintf("unsupported method %s", method ? method : "(none)");
    } else if (scheme == NULL || host == NULL || *host == '\0' ||
               (strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0)) {
        rc = -EWTP_EINVAL;
        if (why)
            *why = ewtp_asprintf("not an http(s) URL: %s", url);
    } else if (strcasecmp(scheme, "http") == 0 && !is_loopback(host)) {
        rc = -EWTP_EINVAL;
        if (why)
            *why = ewtp_asprintf("plain http is only allowed to loopback addresses: %s", url);
    }
    if (rc < 0) {
        evhttp_uri_free(u);
        return rc;
    }
    bool https = strcasecmp(scheme, "https") == 0;
    int port = evhttp_uri_get_port(u);
    if (port < 0)
        port = https ? 443 : 80;
    const char *path = evhttp_uri_get_path(u);
    const char *query = evhttp_uri_get_query(u);
    char *target =
        ewtp_asprintf("%s%s%s", path && *path ? path : "/", query ? "?" : "", query ? query : "");

    struct treq *r = calloc(1, sizeof(*r));
    struct bufferevent *bev = NULL;
    SSL *ssl = NULL;
    if (r == NULL || target == NULL) {
        rc = -EWTP_ENOMEM;
        goto fail;
    }
    r->t = t;
    r->cb = cb;
    r->arg = arg;
    if (https) {
        SSL_CTX *ctx = tls_ctx_get(t, tls, why);
        if (ctx == NULL) {
            rc = -EWTP_EIO;
            goto fail;
        }
        ssl = SSL_new(ctx);
        if (ssl == NULL) {
            rc = -EWTP_ENOMEM;
            goto fail;
        }
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
        } else {
            SSL_set_tlsext_host_name(ssl, host);
            SSL_set1_host(ssl, host);
        }
        bev = bufferevent_openssl_socket_new(t->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(ssl);
            rc = -EWTP_ENOMEM;
            goto fail;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            rc = -EWTP_ENOMEM;
            goto fail;
        }
    }
    r->evcon =
        evhttp_connection_base_bufferevent_new(t->base, NULL, bev, host, (unsigned short)port);
    if (r->evcon == NULL) {
        bufferevent_free(bev);
        rc = -EWTP_ENOMEM;
        goto fail;
    }
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(r->evcon, &tv);
    evhttp_connection_set_retries(r->evcon, 0);
    evhttp_connection_set_max_body_size(r->evcon, MAX_RESPONSE_BODY);
    evhttp_connection_set_max_headers_size(r->evcon, MAX_RESPONSE_HEADERS);
    r->timer = evtimer_new(t->base, on_timeout, r);
    r->done = event_new(t->base, -1, 0, on_done, r);
    r->req = evhttp_request_new(on_response, r);
    if (r->timer == NULL || r->done == NULL || r->req == NULL) {
        if (r->req)
            evhttp_request_free(r->req);
        r->req = NULL;
        rc = -EWTP_ENOMEM;
        goto fail;
    }
    evhttp_request_set_error_cb(r->req, on_error);
    evhttp_request_set_header_cb(r->req, on_headers);
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    char hostport[300];
    if (evhttp_uri_get_port(u) >= 0)
        snprintf(hostport, sizeof(hostport), "%s:%d", host, port);
    else
        snprintf(hostport, sizeof(hostport), "%s", host);
    evhttp_add_header(out, "Host", hostport);
    evhttp_add_header(out, "Connection", "close");
    evhttp_add_header(out, "User-Agent",
                      "ewtpd/"
                      "0.1");
    for (size_t i = 0; i < n_headers; i++) {
        if (headers[i].name == NULL || headers[i].value == NULL ||
            strcasecmp(headers[i].name, "Host") == 0 ||
            strcasecmp(headers[i].name, "Content-Length") == 0)
            continue;
        evhttp_remove_header(out, headers[i].name);
        evhttp_add_header(out, headers[i].name, headers[i].value);
    }
    if (len > 0)
        evbuffer_add(evhttp_request_get_output_buffer(r->req), body, len);
    /* The link goes in before the request: a synchronous failure inside make_request calls
     * on_response, which must find r in the live list. */
    r->next = t->live;
    if (t->live)
        t->live->prev = r;
    t->live = r;
    struct timeval total = tv;
    evtimer_add(r->timer, &total);
    if (evhttp_make_request(r->evcon, r->req, type, target) != 0) {
        /* evhttp freed the request. */
        r->req = NULL;
        if (!r->finished)
            finish(r, failure("cannot start the request"));
    }
    free(target);
    evhttp_uri_free(u);
    return 0;

fail:
    if (r) {
        if (r->evcon)
            evhttp_connection_free(r->evcon);
        if (r->timer)
            event_free(r->timer);
        if (r->done)
            event_free(r->done);
        free(r);
    }
    free(target);
    evhttp_uri_free(u);
    return rc;
}
