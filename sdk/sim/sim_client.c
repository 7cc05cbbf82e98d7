/* libewtp-sim timers and outgoing callbacks (an authority POSTing receipts to the gateway). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>

#include "sim_internal.h"

/* ---- Timers ------------------------------------------------------------------------------ */

void sim_timers_init(struct ewtp_sim *sim)
{
    sim->timers.prev = sim->timers.next = &sim->timers;
}

static void timer_unlink(struct ewtp_sim_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    event_free(t->ev);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_sim_timer *t = arg;
    struct ewtp_sim *sim = t->sim;
    ewtp_sim_timer_fn fn = t->fn;
    void *fn_arg = t->arg;
    /* Freed before fn runs, so fn may add timers or free what arg points to. */
    timer_unlink(t);
    free(t);
    fn(sim, fn_arg);
}

struct ewtp_sim_timer *ewtp_sim_timer_add(struct ewtp_sim *sim, int64_t delay_ms,
                                          ewtp_sim_timer_fn fn, void *arg)
{
    struct ewtp_sim_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ev = evtimer_new(sim->base, timer_fire, t);
    if (t->ev == NULL) {
        free(t);
        return NULL;
    }
    if (delay_ms < 0)
        delay_ms = 0;
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
    t->sim = sim;
    t->fn = fn;
    t->arg = arg;
    t->next = &sim->timers;
    t->prev = sim->timers.prev;
    sim->timers.prev->next = t;
    sim->timers.prev = t;
    return t;
}

void ewtp_sim_timer_cancel(struct ewtp_sim *sim, struct ewtp_sim_timer *t)
{
    (void)sim;
    if (t == NULL)
        return;
    if (t->free_arg)
        t->free_arg(t->arg);
    timer_unlink(t);
    free(t);
}

void sim_timers_free(struct ewtp_sim *sim)
{
    while (sim->timers.next != &sim->timers) {
        struct ewtp_sim_timer *t = sim->timers.next;
        if (t->free_arg)
            t->free_arg(t->arg);
        timer_unlink(t);
        free(t);
    }
}

/* ---- Outgoing callbacks ------------------------------------------------------------------ */

#define POST_ATTEMPTS 4
#define POST_TIMEOUT_S 5

struct sim_post {
    struct sim_post *prev, *next;
    struct ewtp_sim *sim;
    struct evhttp_uri *uri;
    char *bearer, *content_type, *body;
    size_t len;
    int attempt;
    struct evhttp_connection *conn; /* the attempt in flight, or NULL */
    struct ewtp_sim_timer *retry;   /* the next attempt, or NULL */
};

static void post_free(struct sim_post *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->sim->posts = p->next;
    if (p->next)
        p->next->prev = p->prev;
    evhttp_uri_free(p->uri);
    free(p->bearer);
    free(p->content_type);
    free(p->body);
    free(p);
}

static void post_start(struct ewtp_sim *sim, void *arg);

/* Transport failures and 429/5xx are worth another try; anything else is final. */
static void post_done(struct evhttp_request *req, void *arg)
{
    struct sim_post *p = arg;
    struct ewtp_sim *sim = p->sim;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    /* The connection frees itself after this callback (free_on_completion). */
    p->conn = NULL;
    if (code >= 200 && code < 300) {
        sim->cb_delivered++;
        post_free(p);
        return;
    }
    const char *host = evhttp_uri_get_host(p->uri);
    const char *path = evhttp_uri_get_path(p->uri);
    if ((code == 0 || code == 429 || code >= 500) && p->attempt < POST_ATTEMPTS) {
        int64_t delay = (int64_t)500 << (p->attempt - 1);
        ewtp_sim_log(sim, EWTP_LOG_WARNING, "callback to %s%s: %s (attempt %d); again in %lld ms",
                     host ? host : "", path ? path : "", code ? "HTTP error" : "no answer",
                     p->attempt, (long long)delay);
        p->retry = ewtp_sim_timer_add(sim, delay, post_start, p);
        if (p->retry != NULL)
            return;
    }
    ewtp_sim_log(sim, EWTP_LOG_ERR, "callback to %s%s failed for good: HTTP %d after %d attempts",
                 host ? host : "", path ? path : "", code, p->attempt);
    sim->cb_failed++;
    post_free(p);
}

static SSL_CTX *client_tls(struct ewtp_sim *sim)
{
    if (sim->client_tls == NULL) {
        sim->client_tls = SSL_CTX_new(TLS_client_method());
        /* A test authority calls back test gateways: their certificates are not verified. */
        if (sim->client_tls)
            SSL_CTX_set_verify(sim->client_tls, SSL_VERIFY_NONE, NULL);
    }
    return sim->client_tls;
}

static void post_start(struct ewtp_sim *sim, void *arg)
{
    struct sim_post *p = arg;
    p->retry = NULL;
    p->attempt++;
    const char *scheme = evhttp_uri_get_scheme(p->uri);
    const char *host = evhttp_uri_get_host(p->uri);
    bool https = strcmp(scheme, "https") == 0;
    int port = evhttp_uri_get_port(p->uri);
    if (port < 0)
        port = https ? 443 : 80;
    struct bufferevent *bev = NULL;
    if (https) {
        SSL_CTX *ctx = client_tls(sim);
        SSL *ssl = ctx ? SSL_new(ctx) : NULL;
        if (ssl == NULL) {
            post_done(NULL, p);
            return;
        }
        SSL_set_tlsext_host_name(ssl, host);
        bev = bufferevent_openssl_socket_new(sim->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(ssl);
            post_done(NULL, p);
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    struct evhttp_connection *conn =
        evhttp_connection_base_bufferevent_new(sim->base, NULL, bev, host, (unsigned short)port);
    if (conn == NULL) {
        if (bev)
            bufferevent_free(bev);
        post_done(NULL, p);
        return;
    }
    evhttp_connection_set_timeout(conn, POST_TIMEOUT_S);
    struct evhttp_request *req = evhttp_request_new(post_done, p);
    if (req == NULL) {
        evhttp_connection_free(conn);
        post_done(NULL, p);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", p->content_type);
    evhttp_add_header(h, "Connection", "close");
    if (p->bearer) {
        char auth[1024];
        snprintf(auth, sizeof(auth), "Bearer %s", p->bearer);
        evhttp_add_header(h, "Authorization", auth);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), p->body, p->len);
    const char *path = evhttp_uri_get_path(p->uri);
    const char *query = evhttp_uri_get_query(p->uri);
    char target[2048];
    snprintf(target, sizeof(target), "%s%s%s", path && *path ? path : "/", query ? "?" : "",
             query ? query : "");
    sim->cb_sent++;
    p->conn = conn;
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, target) != 0) {
        /* make_request frees req on failure; the connection is still ours. */
        p->conn = NULL;
        evhttp_connection_free(conn);
        post_done(NULL, p);
        return;
    }
    evhttp_connection_free_on_completion(conn);
}

int ewtp_sim_post(struct ewtp_sim *sim, const char *url, const char *bearer,
                  const char *content_type, const void *body, size_t len)
{
    struct evhttp_uri *uri = url ? evhttp_uri_parse(url) : NULL;
    const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
    if (uri == NULL || scheme == NULL || evhttp_uri_get_host(uri) == NULL ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        evhttp_uri_free(uri);
        ewtp_sim_log(sim, EWTP_LOG_ERR, "callback url \"%s\" is not an http(s) URL",
                     url ? url : "");
        return -EWTP_EINVAL;
    }
    struct sim_post *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        evhttp_uri_free(uri);
        return -EWTP_ENOMEM;
    }
    p->sim = sim;
    p->uri = uri;
    p->bearer = bearer ? strdup(bearer) : NULL;
    p->content_type = strdup(content_type ? content_type : "application/json");
    p->body = malloc(len + 1);
    p->len = len;
    p->next = sim->posts;
    if (sim->posts)
        sim->posts->prev = p;
    sim->posts = p;
    if ((bearer && p->bearer == NULL) || p->content_type == NULL || p->body == NULL) {
        post_free(p);
        return -EWTP_ENOMEM;
    }
    if (len)
        memcpy(p->body, body, len);
    p->body[len] = '\0';
    post_start(sim, p);
    return 0;
}

void sim_posts_free(struct ewtp_sim *sim)
{
    while (sim->posts) {
        struct sim_post *p = sim->posts;
        if (p->conn)
            evhttp_connection_free(p->conn); /* frees the request; post_done does not run */
        if (p->retry)
            ewtp_sim_timer_cancel(sim, p->retry);
        post_free(p);
    }
}
