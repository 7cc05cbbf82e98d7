/* Webhooks: the store's outbox, drained over HTTP; see webhooks.h. */
#include "webhooks.h"

#include <inttypes.h>
#include <stdarg.h>
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

#include "backoff.h"
#include "daemon.h"
#include "gen.h"
#include "reload.h"
#include "store.h"
#include "workers.h"
#include "runner.h"
#include "store.h"
#include "util.h"
#include "whsig.h"

#define SCAN_MS 1000     /* backstop scan: retries that came due, leases of a dead ewtpd */
#define MAX_IN_FLIGHT 64 /* webhooks claimed and not yet recorded */
#define MIN_LEASE_MS 10000

enum result { R_NONE, R_DONE, R_RETRY, R_GIVE_UP };

/* One claimed outbox row, from its claim to the record of its attempt's result. */
struct item {
    struct item *next, *prev;
    struct ewtp_webhooks *wh;
    struct ewtp_store_webhook row; /* strings owned here */
    char *url;
    char *secret;
    char *msg_id; /* webhook-id */
    char *body;
    char *what; /* "tenant/id -> state", for logs */
    struct ewtp_backoff_policy retry;
    int64_t timeout_ms;
    enum result result;
    int64_t next_at;
    char *error;
    bool recorded; /* the result is in the store (set on a worker, read after the join) */
};

/* One claim: runs on a worker, hands prepared items to the loop. */
struct claim {
    struct ewtp_webhooks *wh;
    struct ewtp_gen *gen;
    size_t limit;
    int64_t lease_ms;
    struct item **items;
    size_t n;
};

struct ewtp_webhooks {
    struct ewtpd *d;
    struct ewtp_httpc *tr;
    struct event *scan_ev, *kick_ev, *wake_ev;
    int64_t wake_at; /* when wake_ev fires, 0 when not armed */
    struct claim *claiming;
    bool again; /* kicked while claiming */
    size_t in_flight;
    struct item *live;
    uint64_t delivered, failed;
};

/* ---- items -------------------------------------------------------------------------------- */

static void item_free(struct item *it)
{
    if (it == NULL)
        return;
    free(it->row.tenant);
    free(it->row.id);
    free(it->row.state);
    free(it->url);
    if (it->secret)
        memset(it->secret, 0, strlen(it->secret));
    free(it->secret);
    free(it->msg_id);
    free(it->body);
    free(it->what);
    free(it->error);
    free(it);
}

static void item_link(struct ewtp_webhooks *wh, struct item *it)
{
    it->wh = wh;
    it->prev = NULL;
    it->next = wh->live;
    if (wh->live)
        wh->live->prev = it;
    wh->live = it;
    wh->in_flight++;
}

static void item_unlink_free(struct item *it)
{
    struct ewtp_webhooks *wh = it->wh;
    if (it->prev)
        it->prev->next = it->next;
    else if (wh->live == it)
        wh->live = it->next;
    if (it->next)
        it->next->prev = it->prev;
    if (wh->in_flight > 0)
        wh->in_flight--;
    item_free(it);
}

static void set_error(struct item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct item *it, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    free(it->error);
    it->error = strdup(text);
}

/* The webhook-id: "msg_" + 32 hex of SHA-256(tenant NUL id NUL state NUL at), so every
 * attempt, before and after a restart, carries the same id. */
static char *webhook_id(const char *tenant, const char *id, const char *state, int64_t at)
{
    char *key = ewtp_asprintf("%s%c%s%c%s%c%" PRId64, tenant, 0, id, 0, state, 0, at);
    if (key == NULL)
        return NULL;
    size_t klen = strlen(tenant) + strlen(id) + strlen(state) + 3;
    klen += strlen(key + klen);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, klen, md);
    free(key);
    char *out = malloc(4 + 2 * 16 + 1);
    if (out) {
        memcpy(out, "msg_", 4);
        for (int i = 0; i < 16; i++)
            snprintf(out + 4 + 2 * i, 3, "%02x", md[i]);
    }
    return out;
}

/* A failed attempt: retry with backoff (transient) or give up. */
static void decide_failure(struct item *it, bool transient, int64_t retry_after_ms, int64_t now)
{
    int64_t next = 0;
    enum ewtp_store_state s =
        transient ? ewtp_backoff_decide(&it->retry, it->row.attempts, it->row.created_at, now,
                                        retry_after_ms, ewtp_rnd64(), &next)
                  : EWTP_STORE_DEAD;
    if (s == EWTP_STORE_DEAD) {
        it->result = R_GIVE_UP;
    } else {
        it->result = R_RETRY;
        it->next_at = next;
    }
}

/* Worker: the rejection explainer (ABI 1.6) in the payload of a refusal: the authority's raw
 * code, the plugin's plain cause and the common-message pointer of the message's first error,
 * while the message is still in the state the webhook announces. */
static void explain(struct item *it, json_t *o)
{
    const char *st = it->row.state;
    if (o == NULL || st == NULL ||
        (strcmp(st, "rejected") != 0 && strcmp(st, "dead") != 0 && strcmp(st, "failed") != 0))
        return;
    struct ewtp_store_status *s = NULL;
    if (ewtp_store_status_get(it->wh->d->store, it->row.tenant, it->row.id, &s) != 0)
        return;
    if (strcmp(ewtp_store_state_name(s->state), st) == 0 && s->errors) {
        json_t *a = json_loads(s->errors, 0, NULL);
        json_t *e = json_array_get(a, 0);
        const char *keys[] = {"code", "cause", "pointer"};
        for (size_t i = 0; e && i < 3; i++) {
            const char *v = json_string_value(json_object_get(e, keys[i]));
            if (v && v[0])
                json_object_set_new(o, keys[i], json_string(v));
        }
        json_decref(a);
    }
    ewtp_store_status_free(s, 1);
}

/* Worker: everything an attempt needs, from the generation of the claim. false: the row
 * needs no attempt (its result is set). */
static bool item_prepare(struct item *it, const struct ewtp_gen *g)
{
    const struct ewtp_config *cfg = ewtp_gen_config(g);
    const struct ewtp_delivery_conf *c = &cfg->delivery;
    it->retry = (struct ewtp_backoff_policy){.max_attempts = c->max_attempts,
                                             .max_age_ms = 0,
                                             .base_ms = c->base_delay_ms,
                                             .max_ms = c->max_delay_ms};
    it->timeout_ms = c->request_timeout_ms;
    it->what = ewtp_asprintf("%s/%s -> %s", it->row.tenant, it->row.id, it->row.state);
    const struct ewtp_tenant_conf *tc = ewtp_config_tenant(cfg, it->row.tenant);
    if (tc == NULL || tc->webhook_url == NULL || tc->webhook_url[0] == '\0') {
        /* The tenant no longer wants webhooks (reload): nobody to tell. */
        ewtpd_log(LOG_INFO, "webhook %s dropped: the tenant has no webhook_url now",
                  it->what ? it->what : "?");
        it->result = R_DONE;
        return false;
    }
    size_t len = 0;
    if (tc->webhook_secret_file &&
        ewtp_read_file(tc->webhook_secret_file, 4096, &it->secret, &len) != 0) {
        ewtpd_log(LOG_ERR, "webhook %s: cannot read %s: retried later", it->what ? it->what : "?",
                  tc->webhook_secret_file);
        set_error(it, "cannot read the webhook secret file");
        decide_failure(it, true, 0, ewtpd_now_ms());
        return false;
    }
    char t[40];
    ewtp_fmt_time(t, sizeof(t), it->row.at);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "message.state", "id", it->row.id,
                          "tenant", it->row.tenant, "state", it->row.state, "at", t);
    explain(it, o);
    it->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    it->url = strdup(tc->webhook_url);
    it->msg_id = webhook_id(it->row.tenant, it->row.id, it->row.state, it->row.at);
    if (it->body == NULL || it->url == NULL || it->what == NULL || it->msg_id == NULL) {
        set_error(it, "out of memory");
        decide_failure(it, true, 0, ewtpd_now_ms());
        return false;
    }
    return true;
}

/* Worker: writes the result of an attempt. */
static void item_record(struct item *it)
{
    struct ewtp_store *st = it->wh->d->store;
    int rc = 0;
    switch (it->result) {
    case R_DONE:
        rc = ewtp_store_webhook_done(st, it->row.wid);
        break;
    case R_RETRY:
        rc = ewtp_store_webhook_retry(st, it->row.wid, it->next_at, it->error);
        break;
    case R_GIVE_UP:
        rc = ewtp_store_webhook_give_up(st, it->row.wid, it->error, 0);
        break;
    case R_NONE:
        return;
    }
    if (rc < 0 && rc != -EWTP_ENOTFOUND)
        ewtpd_log(LOG_ERR, "webhook %s: cannot record the attempt: %s (sent again later)",
                  it->what ? it->what : "?", ewtp_strerror(rc));
    it->recorded = true;
}

/* ---- the loop side ------------------------------------------------------------------------ */

static void pump(struct ewtp_webhooks *wh);

static void record_work(void *arg)
{
    item_record(arg);
}

static void record_done(void *arg)
{
    struct item *it = arg;
    struct ewtp_webhooks *wh = it->wh;
    if (it->result == R_RETRY && it->recorded) {
        /* Wake up when the retry is due instead of waiting for the next scan. */
        int64_t now = ewtpd_now_ms();
        if (wh->wake_at == 0 || it->next_at < wh->wake_at || wh->wake_at < now) {
            int64_t d = it->next_at > now ? it->next_at - now : 0;
            struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
            wh->wake_at = it->next_at;
            evtimer_add(wh->wake_ev, &tv);
        }
    }
    item_unlink_free(it);
    pump(wh);
}

/* The attempt has a result: record it on a worker (the store blocks). */
static void finish(struct item *it)
{
    struct ewtp_webhooks *wh = it->wh;
    if (it->result == R_DONE)
        wh->delivered++;
    else if (it->result == R_GIVE_UP) {
        wh->failed++;
        ewtpd_log(LOG_WARNING, "webhook %s to %s given up after %u attempts: %s",
                  it->what ? it->what : "?", it->url ? it->url : "?", it->row.attempts,
                  it->error ? it->error : "failed");
    }
    if (ewtp_workers_submit(wh->d->workers, record_work, record_done, it) != 0) {
        /* Shutting down: ewtp_webhooks_free() makes it due again. */
        it->result = R_NONE;
    }
}

static void on_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct item *it = arg;
    int st = resp ? resp->status : 0;
    int64_t now = ewtpd_now_ms();
    if (st >= 200 && st < 300) {
        it->result = R_DONE;
    } else {
        int64_t ra = 0;
        for (size_t i = 0; resp && i < resp->n_headers; i++)
            if (strcasecmp(resp->headers[i].name, "Retry-After") == 0)
                ra = ewtp_retry_after_ms(resp->headers[i].value, now);
        if (st)
            set_error(it, "HTTP %d", st);
        else
            set_error(it, "%s", resp && resp->error ? resp->error : "transport failed");
        decide_failure(it, st == 0 || st == 408 || st == 429 || st >= 500, ra, now);
    }
    ewtp_httpc_resp_free(resp);
    finish(it);
}

static void attempt(struct item *it)
{
    int64_t ts = ewtpd_now_ms() / 1000;
    char *sig = NULL;
    char tsbuf[24];
    snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    if (it->secret &&
        ewtp_whsig_sign(it->secret, it->msg_id, ts, it->body, strlen(it->body), &sig) != 0) {
        ewtpd_log(LOG_ERR, "webhook %s: the tenant's secret is not \"whsec_<base64>\": not sent",
                  it->what);
        set_error(it, "the webhook secret is not \"whsec_<base64>\"");
        it->result = R_GIVE_UP;
        finish(it);
        return;
    }
    struct ewtp_header h[4] = {
        EWTP_HEADER_INIT(.name = "Content-Type", .value = "application/json"),
        EWTP_HEADER_INIT(.name = "webhook-id", .value = it->msg_id),
        EWTP_HEADER_INIT(.name = "webhook-timestamp", .value = tsbuf),
        EWTP_HEADER_INIT(.name = "webhook-signature", .value = sig, .secret = true),
    };
    char *why = NULL;
    int rc = ewtp_httpc_send(it->wh->tr, it->url, "POST", h, sig ? 4 : 3, it->body,
                             strlen(it->body), NULL, it->timeout_ms, on_answer, it, &why);
    free(sig);
    if (rc != 0) {
        ewtpd_log(LOG_ERR, "webhook %s: %s", it->what, why ? why : ewtp_strerror(rc));
        set_error(it, "%s", why ? why : ewtp_strerror(rc));
        free(why);
        it->result = R_GIVE_UP; /* a URL the client refuses does not get better by waiting */
        finish(it);
    }
}

static void claim_free(struct claim *cl)
{
    for (size_t i = 0; i < cl->n; i++)
        item_free(cl->items[i]);
    free(cl->items);
    if (cl->gen)
        ewtp_gen_unref(cl->gen);
    free(cl);
}

/* Worker: claims due rows and prepares them; rows needing no attempt are recorded here. */
static void claim_work(void *arg)
{
    struct claim *cl = arg;
    struct ewtp_store_webhook *rows = NULL;
    size_t n = 0;
    int rc = ewtp_store_webhook_claim(cl->wh->d->store, 0, cl->limit, cl->lease_ms, &rows, &n);
    if (rc < 0) {
        ewtpd_log(LOG_ERR, "webhooks: cannot claim from the outbox: %s", ewtp_strerror(rc));
        return;
    }
    cl->items = n ? calloc(n, sizeof(*cl->items)) : NULL;
    for (size_t i = 0; i < n; i++) {
        struct item *it = cl->items ? calloc(1, sizeof(*it)) : NULL;
        if (it == NULL) {
            /* Out of memory: the lease brings the rest back. */
            free(rows[i].tenant);
            free(rows[i].id);
            free(rows[i].state);
            continue;
        }
        it->row = rows[i]; /* takes the strings */
        it->wh = cl->wh;
        if (!item_prepare(it, cl->gen)) {
            item_record(it);
            item_free(it);
            continue;
        }
        cl->items[cl->n++] = it;
    }
    free(rows); /* the strings moved to the items */
}

static void claim_done(void *arg)
{
    struct claim *cl = arg;
    struct ewtp_webhooks *wh = cl->wh;
    wh->claiming = NULL;
    bool full = cl->n == cl->limit;
    for (size_t i = 0; i < cl->n; i++) {
        struct item *it = cl->items[i];
        cl->items[i] = NULL;
        item_link(wh, it);
        attempt(it);
    }
    cl->n = 0;
    claim_free(cl);
    if (full || wh->again) {
        wh->again = false;
        event_active(wh->kick_ev, 0, 0);
    }
}

static void pump(struct ewtp_webhooks *wh)
{
    if (wh->d->stopping)
        return;
    if (wh->claiming) {
        wh->again = true;
        return;
    }
    if (wh->in_flight >= MAX_IN_FLIGHT)
        return; /* record_done pumps again */
    struct claim *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return;
    cl->wh = wh;
    cl->gen = ewtpd_gen_acquire(wh->d);
    cl->limit = MAX_IN_FLIGHT - wh->in_flight;
    /* Longer than any attempt (request timeout) plus the worker queue ahead of its record. */
    int64_t t = cl->gen ? ewtp_gen_config(cl->gen)->delivery.request_timeout_ms : 30000;
    cl->lease_ms = 2 * t > MIN_LEASE_MS ? 2 * t : MIN_LEASE_MS;
    if (cl->gen == NULL || ewtp_workers_submit(wh->d->workers, claim_work, claim_done, cl) != 0) {
        claim_free(cl);
        return;
    }
    wh->claiming = cl;
    wh->again = false;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_webhooks *wh = arg;
    wh->wake_at = 0;
    pump(wh);
}

/* ---- public ------------------------------------------------------------------------------- */

struct ewtp_webhooks *ewtp_webhooks_new(struct ewtpd *d, struct ewtp_httpc *tr)
{
    struct ewtp_webhooks *wh = calloc(1, sizeof(*wh));
    if (wh == NULL)
        return NULL;
    wh->d = d;
    wh->tr = tr;
    wh->scan_ev = event_new(d->base, -1, EV_PERSIST, on_event, wh);
    wh->kick_ev = event_new(d->base, -1, 0, on_event, wh);
    wh->wake_ev = evtimer_new(d->base, on_wake, wh);
    struct timeval tv = {SCAN_MS / 1000, (SCAN_MS % 1000) * 1000};
    if (!wh->scan_ev || !wh->kick_ev || !wh->wake_ev || event_add(wh->scan_ev, &tv) != 0) {
        ewtp_webhooks_free(wh);
        return NULL;
    }
    event_active(wh->kick_ev, 0, 0); /* what a previous run left in the outbox */
    return wh;
}

void ewtp_webhooks_free(struct ewtp_webhooks *wh)
{
    if (wh == NULL)
        return;
    /* Claimed but not recorded: due again at once for the next start, rather than after the
     * lease. The workers are joined, so nothing else touches these items now. */
    int64_t now = ewtpd_now_ms();
    if (wh->claiming) {
        for (size_t i = 0; i < wh->claiming->n; i++)
            if (ewtp_store_webhook_retry(wh->d->store, wh->claiming->items[i]->row.wid, now,
                                         "ewtpd stopped") != 0)
                ewtpd_log(LOG_WARNING,
                          "webhook %" PRIu64 " not made due again (due after "
                          "its lease)",
                          wh->claiming->items[i]->row.wid);
        claim_free(wh->claiming);
    }
    while (wh->live) {
        if (!wh->live->recorded &&
            ewtp_store_webhook_retry(wh->d->store, wh->live->row.wid, now, "ewtpd stopped") != 0)
            ewtpd_log(LOG_WARNING, "webhook %" PRIu64 " not made due again (due after its lease)",
                      wh->live->row.wid);
        item_unlink_free(wh->live);
    }
    if (wh->scan_ev)
        event_free(wh->scan_ev);
    if (wh->kick_ev)
        event_free(wh->kick_ev);
    if (wh->wake_ev)
        event_free(wh->wake_ev);
    free(wh);
}

void ewtp_webhooks_kick(struct ewtp_webhooks *wh)
{
    if (wh)
        event_active(wh->kick_ev, 0, 0);
}

bool ewtp_webhooks_wanted(const struct ewtp_gen *g, const char *tenant)
{
    const struct ewtp_tenant_conf *tc =
        g && tenant ? ewtp_config_tenant(ewtp_gen_config(g), tenant) : NULL;
    return tc && tc->webhook_url && tc->webhook_url[0];
}

uint64_t ewtp_webhooks_delivered(const struct ewtp_webhooks *wh)
{
    return wh->delivered;
}

uint64_t ewtp_webhooks_failed(const struct ewtp_webhooks *wh)
{
    return wh->failed;
}
