/* dispatcher.c — the dispatcher's lifecycle: start, the scan and kick timers, stop and free;
 * evidence retention. Part of the dispatcher (dispatcher.h); what its files share is
 * delivery_int.h. */
#include "delivery_int.h"

/* ---- evidence retention -------------------------------------------------------------------- */

/* Worker: deletes the evidence older than evidence.retention_days (issue 18). */
static void evidence_purge_work(void *arg)
{
    struct job *j = arg;
    const struct ewtp_config *cfg = ewtp_gen_config(j->gen);
    int64_t now = ewtpd_now_ms();
    int64_t before = now - cfg->evidence.retention_days * 86400000;
    uint64_t n = 0;
    int rc = ewtp_store_evidence_purge(dsp_store_of(j), before, &n);
    if (rc < 0 && rc != -EWTP_EUNSUPP)
        ewtpd_log(LOG_ERR, "evidence: cannot purge what is older than %lld days: %s",
                  (long long)cfg->evidence.retention_days, ewtp_strerror(rc));
    else if (n > 0)
        ewtpd_log(LOG_INFO, "evidence: %llu entries older than %lld days purged",
                  (unsigned long long)n, (long long)cfg->evidence.retention_days);
}

static void evidence_purge_done(void *arg)
{
    struct job *j = arg;
    j->ds->evidence_purging = false;
    dsp_job_end(j);
}

/* Loop, every scan: the purge at most once an hour. */
static void evidence_purge(struct ewtp_dispatcher *ds)
{
    int64_t now = ewtpd_now_ms();
    if (ds->evidence_purging || now < ds->next_evidence_purge)
        return;
    ds->next_evidence_purge = now + 3600000;
    dsp_scan_start(ds, evidence_purge_work, evidence_purge_done, &ds->evidence_purging);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void arm(struct ewtp_dispatcher *ds)
{
    int64_t ms = ewtp_gen_config(ds->d->gen)->delivery.scan_interval_ms;
    if (ms <= 0)
        ms = 200;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ds->scan_ev, &tv);
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_dispatcher *ds = arg;
    if (ds->stopped)
        return;
    dsp_claim(ds, J_CLAIM);
    dsp_claim(ds, J_POLLCLAIM);
    dsp_spool_scan(ds);
    dsp_amqp_scan(ds);
    evidence_purge(ds);
    arm(ds);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_dispatcher *ds = arg;
    if (!ds->stopped)
        dsp_claim(ds, J_CLAIM);
}

int ewtp_dispatcher_start(struct ewtpd *d, struct ewtp_errors *why)
{
    struct ewtp_dispatcher *ds = calloc(1, sizeof(*ds));
    if (ds == NULL) {
        ewtp_errors_add(why, "", "internal", "dispatcher: out of memory");
        return -EWTP_ENOMEM;
    }
    ds->d = d;
    atomic_init(&ds->next_requeue, 0);
    char host[64] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(ds->owner, sizeof(ds->owner), "%s:%ld:%" PRId64, host, (long)getpid(), ewtpd_now_ms());
    ds->tr = ewtp_httpc_new(d->base);
    ds->wh = ds->tr ? ewtp_webhooks_new(d, ds->tr) : NULL;
    ds->scan_ev = evtimer_new(d->base, on_scan, ds);
    ds->kick_ev = event_new(d->base, -1, 0, on_kick, ds);
    ds->amqp = ewtp_amqp_pool_new(ewtpd_log);
    d->dispatcher = ds;
    /* The instance secret, for the ids plugins derive through the host's instance_mac (ABI
     * 1.7), before any delivery: a message must never be translated with an id the secret
     * would not give. */
    unsigned char ikey[32];
    int krc = ewtp_store_instance_key(d->store, ikey);
    if (krc != 0) {
        ewtp_errors_add(why, "", "store", "dispatcher: cannot read the instance secret");
        ewtp_dispatcher_free(d);
        return krc;
    }
    ewtp_instance_key_set(ikey);
    OPENSSL_cleanse(ikey, sizeof(ikey));
    if (!ds->tr || !ds->wh || !ds->scan_ev || !ds->kick_ev || !ds->amqp) {
        ewtp_errors_add(why, "", "internal", "dispatcher: out of memory");
        ewtp_dispatcher_free(d);
        return -EWTP_ENOMEM;
    }
    arm(ds);
    event_active(ds->kick_ev, 0, 0);
    return 0;
}

void ewtp_dispatcher_stop(struct ewtpd *d)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    if (ds == NULL || ds->stopped)
        return;
    ds->stopped = true;
    event_del(ds->scan_ev);
    event_del(ds->kick_ev);
    /* Held batches are not sent any more: their leases expire and the next start sends them. */
    while (ds->held) {
        struct held *h = ds->held;
        ds->held = h->next;
        dsp_held_free(h);
    }
}

void ewtp_dispatcher_free(struct ewtpd *d)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    if (ds == NULL)
        return;
    /* Pending HTTP requests and webhooks go first (no callbacks), then every job left. */
    ewtp_webhooks_free(ds->wh);
    ewtp_httpc_free(ds->tr);
    while (ds->jobs)
        dsp_job_free(ds->jobs);
    while (ds->held) {
        struct held *h = ds->held;
        ds->held = h->next;
        dsp_held_free(h);
    }
    while (ds->tokens) {
        struct token *t = ds->tokens;
        ds->tokens = t->next;
        dsp_token_free(t);
    }
    if (ds->scan_ev)
        event_free(ds->scan_ev);
    if (ds->kick_ev)
        event_free(ds->kick_ev);
    ewtp_amqp_pool_free(ds->amqp); /* no worker runs any more (workers freed first) */
    free(ds);
    d->dispatcher = NULL;
}

void ewtp_dispatcher_kick(struct ewtpd *d)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    if (ds && !ds->stopped)
        event_active(ds->kick_ev, 0, 0);
}
