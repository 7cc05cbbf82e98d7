/* Webhooks; see webhooks.h. */
#include "webhooks.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <ewtp/errors.h>

#include "ewtpd.h"
#include "runner.h"
#include "store_backend.h"
#include "whsig.h"

struct ewtp_webhook {
    struct ewtp_webhook *next, *prev;
    struct ewtp_webhooks *wh;
    char *url;
    char *secret;
    char *msg_id; /* webhook-id: the same on every attempt, so receivers deduplicate */
    char *body;
    char *what; /* "tenant/id -> state", for logs */
    unsigned attempt;
    struct ewtp_backoff_policy retry;
    int64_t timeout_ms;
    int64_t first_at;
    struct event *timer;
    bool sending;
};

struct ewtp_webhooks {
    struct event_base *base;
    struct ewtp_httpc *tr;
    struct ewtp_webhook *live;
    uint64_t delivered, failed;
};

struct ewtp_webhooks *ewtp_webhooks_new(struct event_base *base, struct ewtp_httpc *tr)
{
    struct ewtp_webhooks *wh = calloc(1, sizeof(*wh));
    if (wh) {
        wh->base = base;
        wh->tr = tr;
    }
    return wh;
}

void ewtp_webhook_free(struct ewtp_webhook *w)
{
    if (w == NULL)
        return;
    if (w->timer)
        event_free(w->timer);
    free(w->url);
    if (w->secret)
        memset(w->secret, 0, strlen(w->secret));
    free(w->secret);
    free(w->msg_id);
    free(w->body);
    free(w->what);
    free(w);
}

static void unlink_free(struct ewtp_webhook *w)
{
    struct ewtp_webhooks *wh = w->wh;
    if (w->prev)
        w->prev->next = w->next;
    else if (wh->live == w)
        wh->live = w->next;
    if (w->next)
        w->next->prev = w->prev;
    ewtp_webhook_free(w);
}

void ewtp_webhooks_free(struct ewtp_webhooks *wh)
{
    if (wh == NULL)
        return;
    while (wh->live)
        unlink_free(wh->live);
    free(wh);
}

uint64_t ewtp_webhooks_delivered(const struct ewtp_webhooks *wh)
{
    return wh->delivered;
}

uint64_t ewtp_webhooks_failed(const struct ewtp_webhooks *wh)
{
    return wh->failed;
}

struct ewtp_webhook *ewtp_webhook_prepare(const struct ewtp_gen *g, const char *tenant,
                                          const char *id, const char *state, int64_t at)
{
    const struct ewtp_tenant_conf *tc = ewtp_config_tenant(ewtp_gen_config(g), tenant);
    if (tc == NULL || tc->webhook_url == NULL || tc->webhook_url[0] == '\0')
        return NULL;
    struct ewtp_webhook *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    size_t len = 0;
    if (tc->webhook_secret_file &&
        ewtp_read_file(tc->webhook_secret_file, 4096, &w->secret, &len) != 0) {
        ewtpd_log(LOG_ERR, "webhook of tenant %s: cannot read %s: not sent", tenant,
                  tc->webhook_secret_file);
        ewtp_webhook_free(w);
        return NULL;
    }
    char t[40];
    ewtp_store_fmt_time(t, sizeof(t), at);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "message.state", "id", id, "tenant",
                          tenant, "state", state, "at", t);
    w->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    /* A stable id per (tenant, message, state, time): a receiver sees retries as one. */
    unsigned char md[SHA256_DIGEST_LENGTH];
    char *key = ewtp_store_asprintf("%s%c%s%c%s%c%" PRId64, tenant, 0, id, 0, state, 0, at);
    w->url = strdup(tc->webhook_url);
    w->what = ewtp_store_asprintf("%s/%s -> %s", tenant, id, state);
    if (key) {
        size_t klen = strlen(tenant) + strlen(id) + strlen(state) + 3;
        klen += strlen(key + klen);
        SHA256((const unsigned char *)key, klen, md);
        w->msg_id = malloc(4 + 2 * 16 + 1);
        if (w->msg_id) {
            memcpy(w->msg_id, "msg_", 4);
            for (int i = 0; i < 16; i++)
                snprintf(w->msg_id + 4 + 2 * i, 3, "%02x", md[i]);
        }
    }
    free(key);
    if (w->body == NULL || w->url == NULL || w->what == NULL || w->msg_id == NULL) {
        ewtp_webhook_free(w);
        return NULL;
    }
    return w;
}

static void attempt(struct ewtp_webhook *w);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

static void on_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct ewtp_webhook *w = arg;
    struct ewtp_webhooks *wh = w->wh;
    w->sending = false;
    int st = resp ? resp->status : 0;
    if (st >= 200 && st < 300) {
        wh->delivered++;
        ewtp_httpc_resp_free(resp);
        unlink_free(w);
        return;
    }
    bool transient = st == 0 || st == 408 || st == 429 || st >= 500;
    int64_t now = ewtpd_now_ms();
    int64_t ra = 0;
    for (size_t i = 0; resp && i < resp->n_headers; i++)
        if (strcasecmp(resp->headers[i].name, "Retry-After") == 0)
            ra = ewtp_backoff_retry_after(resp->headers[i].value, now);
    uint64_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
    int64_t next = 0;
    enum ewtp_store_state s =
        transient ? ewtp_backoff_decide(&w->retry, w->attempt, w->first_at, now, ra, rnd, &next)
                  : EWTP_STORE_DEAD;
    if (s == EWTP_STORE_DEAD) {
        wh->failed++;
        ewtpd_log(LOG_WARNING, "webhook %s to %s given up after %u attempts: %s", w->what, w->url,
                  w->attempt, st ? "HTTP error" : (resp && resp->error ? resp->error : "failed"));
        ewtp_httpc_resp_free(resp);
        unlink_free(w);
        return;
    }
    ewtp_httpc_resp_free(resp);
    int64_t d = next - now;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

static void attempt(struct ewtp_webhook *w)
{
    w->attempt++;
    int64_t ts = ewtpd_now_ms() / 1000;
    char *sig = NULL;
    char tsbuf[24];
    snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    const char *secret = w->secret ? w->secret : "";
    if (w->secret && ewtp_whsig_sign(secret, w->msg_id, ts, w->body, strlen(w->body), &sig) != 0) {
        ewtpd_log(LOG_ERR, "webhook %s: the tenant's secret is not \"whsec_<base64>\": not sent",
                  w->what);
        w->wh->failed++;
        unlink_free(w);
        return;
    }
    struct ewtp_header h[4] = {
        {"Content-Type", "application/json", false},
        {"webhook-id", w->msg_id, false},
        {"webhook-timestamp", tsbuf, false},
        {"webhook-signature", sig, true},
    };
    char *why = NULL;
    w->sending = true;
    int rc = ewtp_httpc_send(w->wh->tr, w->url, "POST", h, sig ? 4 : 3, w->body, strlen(w->body),
                             NULL, w->timeout_ms, on_answer, w, &why);
    free(sig);
    if (rc != 0) {
        w->sending = false;
        ewtpd_log(LOG_ERR, "webhook %s: %s", w->what, why ? why : ewtp_strerror(rc));
        free(why);
        w->wh->failed++;
        unlink_free(w);
    }
}

void ewtp_webhooks_send(struct ewtp_webhooks *wh, struct ewtp_webhook *w,
                        const struct ewtp_backoff_policy *retry, int64_t timeout_ms)
{
    if (w == NULL)
        return;
    if (wh == NULL) {
        ewtp_webhook_free(w);
        return;
    }
    w->wh = wh;
    w->retry = *retry;
    w->retry.max_age_ms = 0;
    w->timeout_ms = timeout_ms;
    w->first_at = ewtpd_now_ms();
    w->timer = evtimer_new(wh->base, on_timer, w);
    if (w->timer == NULL) {
        ewtp_webhook_free(w);
        return;
    }
    w->next = wh->live;
    if (wh->live)
        wh->live->prev = w;
    wh->live = w;
    attempt(w);
}
