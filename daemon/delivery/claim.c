/* claim.c — claims: due messages, polls and operations taken from the store under a lease, waits
 * resolved, and batches held for their plugin's maximum wait (batch.h).
 * Part of the dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- claims -------------------------------------------------------------------------------- */

/* Decides the waits of the messages just claimed (store.h, ewtp_store_wait_decide): those
 * whose wait is over go on; one whose other message failed or never came is rejected here
 * with a plain cause, before anything is translated or sent; one still waiting (the other
 * changed since the claim) goes back to the queue. */
static void resolve_waits(struct job *j, int64_t now)
{
    size_t kept = 0, n = j->n, n_drop = 0;
    bool waits = false;
    for (size_t i = 0; i < n; i++)
        waits = waits || j->msgs[i].wait_key != NULL;
    if (!waits)
        return;
    struct ewtp_store_msg *drop = calloc(n, sizeof(*drop));
    if (drop == NULL) {
        /* Nothing is decided or sent: the leases expire and the claim comes again. */
        ewtp_store_msgs_free(j->msgs, n);
        j->msgs = NULL;
        j->n = 0;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct ewtp_store_msg m = j->msgs[i];
        char *cause = NULL;
        enum ewtp_store_wait w = ewtp_store_wait_decide(dsp_store_of(j), &m, now, &cause);
        if (w == EWTP_STORE_WAIT_READY) {
            j->msgs[kept++] = m;
            continue;
        }
        if (w == EWTP_STORE_WAIT_PENDING)
            dsp_record_local(j, &m, EWTP_V_RETRY, "waiting",
                             "still waiting for the message this one depends on", NULL);
        else
            dsp_record_local(j, &m, EWTP_V_REJECTED,
                             w == EWTP_STORE_WAIT_FAILED ? "dependency_failed" : "wait_timeout",
                             cause ? cause : "the message this one depends on did not arrive",
                             NULL);
        free(cause);
        drop[n_drop++] = m;
    }
    /* Dropped rows were copied out whole: free their strings, not the claim's array. */
    ewtp_store_msgs_free(drop, n_drop);
    j->n = kept;
}

static void claim_work(void *arg)
{
    struct job *j = arg;
    struct ewtp_dispatcher *ds = j->ds;
    int64_t now = ewtpd_now_ms();
    const struct ewtp_delivery_conf *c = dsp_policy_conf(j);
    /* Only the worker whose compare-exchange moves the deadline requeues: the others would
     * repeat the same scan of the store. Relaxed: the store orders its own writes. */
    int64_t due = atomic_load_explicit(&ds->next_requeue, memory_order_relaxed);
    if (now >= due && atomic_compare_exchange_strong_explicit(
                          &ds->next_requeue, &due, now + (c->lease_ms > 4 ? c->lease_ms / 4 : 1),
                          memory_order_relaxed, memory_order_relaxed)) {
        size_t n = 0;
        int qrc = ewtp_store_requeue_expired(dsp_store_of(j), now, &n);
        if (qrc != 0)
            ewtpd_log(LOG_ERR, "cannot return expired leases to the queue: %s", ewtp_strerror(qrc));
        if (n)
            ewtpd_log(LOG_WARNING, "%zu deliveries with an expired lease returned to the queue", n);
    }
    int rc;
    if (j->kind == J_CLAIM)
        rc = ewtp_store_claim_due(dsp_store_of(j), now, j->n, c->lease_ms, ds->owner, &j->msgs,
                                  &j->n);
    else
        rc = ewtp_store_claim_poll(dsp_store_of(j), now, j->n, now + c->poll_interval_ms, &j->msgs,
                                   &j->n);
    if (rc != 0) {
        j->msgs = NULL;
        j->n = 0;
        ewtpd_log(LOG_ERR, "dispatcher: claim failed: %s", ewtp_strerror(rc));
    } else if (j->kind == J_CLAIM) {
        resolve_waits(j, now);
    }
    /* Operations on messages (cancels) are claimed with the deliveries, a few at a time. */
    if (j->kind == J_CLAIM && ewtp_store_op_claim(dsp_store_of(j), now, OP_CLAIM_MAX, c->lease_ms,
                                                  ds->owner, &j->ops, &j->n_ops) != 0) {
        j->ops = NULL;
        j->n_ops = 0;
    }
}

void dsp_start_one(struct ewtp_dispatcher *ds, enum job_kind kind, struct ewtp_gen *gen,
                   struct ewtp_store_msg *msgs, size_t n)
{
    struct job *j = dsp_job_new(ds, kind);
    if (j == NULL) {
        ewtp_store_msgs_free(msgs, n); /* the lease expires; sent again later */
        return;
    }
    ewtp_gen_ref(gen);
    j->gen = gen;
    j->msgs = msgs;
    j->n = n;
    j->gi = ewtp_gen_instance(gen, msgs[0].plugin);
    if (kind == J_DELIVER)
        ds->in_flight++;
    dsp_submit(j, dsp_deliver_prepare, dsp_prepared);
}

static void poll_prepare(void *arg)
{
    struct job *j = arg;
    const struct ewtp_store_msg *m = &j->msgs[0];
    if (j->gi == NULL || !PLUGIN_HAS(j->gi->plugin, poll) || m->authority_ref == NULL) {
        if (j->gi && !PLUGIN_HAS(j->gi->plugin, poll)) {
            int prc = ewtp_store_poll_schedule(dsp_store_of(j), m->key, -1);
            if (prc != 0 && prc != -EWTP_EINVAL)
                ewtpd_log(LOG_ERR, "%s/%s: cannot stop its polls: %s", m->tenant, m->id,
                          ewtp_strerror(prc));
        }
        return;
    }
    j->arena = ewtp_arena_new();
    j->calls = calloc(1, sizeof(*j->calls));
    j->callp = calloc(1, sizeof(*j->callp));
    struct ewtp_message *msg = j->arena && j->calls && j->callp ? dsp_parse_stored(j, m) : NULL;
    if (msg == NULL)
        return;
    dsp_call_init(j, &j->calls[0], m, msg, EWTP_OP_SUBMIT, ewtpd_now_ms());
    j->callp[0] = &j->calls[0];
    struct ewtp_out *out = ewtp_out_new(j->arena);
    if (out == NULL ||
        j->gi->plugin->poll(ewtp_instance_state(j->gi->inst), &j->calls[0], out) != 0)
        return;
    j->n_reqs = ewtp_out_requests(out, &j->reqs);
    /* Only a transport the authority answers on can ask it (receipts of the others come
     * back inbound). */
    if (j->n_reqs == 0 || !ewtp_transport_of(j->gi->conf->transport)->answers)
        return;
    dsp_transport_start(j);
}

static bool batchable(const struct ewtp_gen_instance *gi, const struct ewtp_store_msg *a,
                      const struct ewtp_store_msg *b)
{
    return gi && dsp_batch_max_documents(gi->plugin) > 1 &&
           PLUGIN_HAS(gi->plugin, translate_batch) && a->batch_key && b->batch_key &&
           strcmp(a->batch_key, b->batch_key) == 0 && strcmp(a->plugin, b->plugin) == 0 &&
           !a->needs_chain && !b->needs_chain;
}

/* ---- batches held for their plugin's maximum wait (batch.h) ------------------------------ */

static bool holdable(const struct ewtp_gen_instance *gi, const struct ewtp_store_msg *m)
{
    return gi && dsp_batch_max_documents(gi->plugin) > 1 &&
           PLUGIN_HAS(gi->plugin, translate_batch) && m->batch_key && !m->needs_chain;
}

void dsp_held_free(struct held *h)
{
    if (h->timer)
        event_free(h->timer);
    ewtp_store_msgs_free(h->msgs, h->n);
    free(h->instance);
    free(h->key);
    free(h);
}

static void held_unlink(struct held *h)
{
    struct held **pp = &h->ds->held;
    while (*pp && *pp != h)
        pp = &(*pp)->next;
    if (*pp)
        *pp = h->next;
}

/* Sends what h holds, in batches of at most max_documents, and forgets h. */
static void held_flush(struct held *h)
{
    struct ewtp_dispatcher *ds = h->ds;
    held_unlink(h);
    struct ewtp_gen *gen = ewtpd_gen_acquire(ds->d);
    const struct ewtp_gen_instance *gi = ewtp_gen_instance(gen, h->instance);
    size_t max = gi ? ewtp_batch_max(dsp_batch_of(gi->plugin)) : 1;
    for (size_t i = 0; i < h->n && !ds->stopped;) {
        size_t len = h->n - i < max ? h->n - i : max;
        struct ewtp_store_msg *group = calloc(len, sizeof(*group));
        if (group) {
            memcpy(group, &h->msgs[i], len * sizeof(*group));
            memset(&h->msgs[i], 0, len * sizeof(*group));
            dsp_start_one(ds, J_DELIVER, gen, group, len);
        }
        i += len;
    }
    ewtp_gen_unref(gen);
    dsp_held_free(h);
}

static void on_held_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    held_flush(arg);
}

/* Moves *m into the batch held for its (instance, batch key); sends the batch when it is full
 * or has no time left to wait. */
void dsp_hold(struct ewtp_dispatcher *ds, const struct ewtp_gen_instance *gi,
              struct ewtp_store_msg *m, int64_t lease_ms)
{
    struct held *h = ds->held;
    while (h && !(strcmp(h->instance, m->plugin) == 0 && strcmp(h->key, m->batch_key) == 0))
        h = h->next;
    int64_t now = ewtpd_now_ms();
    if (h == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL || (h->instance = strdup(m->plugin)) == NULL ||
            (h->key = strdup(m->batch_key)) == NULL) {
            if (h)
                free(h->instance);
            free(h);
            struct ewtp_store_msg *one = calloc(1, sizeof(*one));
            if (one) { /* no memory to hold it: send it alone */
                *one = *m;
                memset(m, 0, sizeof(*m));
                dsp_start_one(ds, J_DELIVER, ds->d->gen, one, 1);
            }
            return;
        }
        h->ds = ds;
        h->since = now;
        h->next = ds->held;
        ds->held = h;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        struct ewtp_store_msg *a = realloc(h->msgs, cap * sizeof(*a));
        if (a == NULL) {
            held_flush(h); /* send what is there; m waits for its lease */
            return;
        }
        h->msgs = a;
        h->cap = cap;
    }
    h->msgs[h->n++] = *m;
    memset(m, 0, sizeof(*m));
    int64_t wait = ewtp_batch_wait(dsp_batch_of(gi->plugin), h->n, h->since, now, lease_ms);
    if (wait == 0 || ds->stopped) {
        held_flush(h);
        return;
    }
    if (h->timer == NULL) {
        h->timer = evtimer_new(ds->d->base, on_held_timer, h);
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        if (h->timer == NULL || evtimer_add(h->timer, &tv) != 0)
            held_flush(h);
    }
}

static void claim_done(void *arg)
{
    struct job *j = arg;
    struct ewtp_dispatcher *ds = j->ds;
    bool polls = j->kind == J_POLLCLAIM;
    if (polls)
        ds->polling = false;
    else
        ds->claiming = false;
    struct ewtp_store_msg *msgs = j->msgs;
    size_t n = j->n;
    j->msgs = NULL;
    j->n = 0;
    if (ds->stopped) {
        ewtp_store_msgs_free(msgs, n); /* leases expire; the next start sends them */
        dsp_job_free(j);
        return;
    }
    for (size_t i = 0; i < j->n_ops; i++)
        dsp_start_cancel(ds, j->gen, &j->ops[i]);
    /* Each message moves into a job of its own (or of its batch). */
    bool *used = n ? calloc(n, sizeof(*used)) : NULL;
    for (size_t i = 0; used && i < n; i++) {
        if (used[i])
            continue;
        used[i] = true;
        const struct ewtp_gen_instance *gi = ewtp_gen_instance(j->gen, msgs[i].plugin);
        if (!polls && holdable(gi, &msgs[i])) {
            dsp_hold(ds, gi, &msgs[i], dsp_policy_conf(j)->lease_ms);
            continue;
        }
        size_t cnt = 1;
        size_t max =
            gi && dsp_batch_max_documents(gi->plugin) ? dsp_batch_max_documents(gi->plugin) : 1;
        for (size_t k = i + 1; !polls && k < n && cnt < max; k++)
            if (!used[k] && batchable(gi, &msgs[i], &msgs[k]))
                cnt++;
        struct ewtp_store_msg *group = calloc(cnt, sizeof(*group));
        if (group == NULL)
            continue;
        group[0] = msgs[i];
        memset(&msgs[i], 0, sizeof(msgs[i]));
        size_t g = 1;
        for (size_t k = i + 1; !polls && k < n && g < cnt; k++) {
            if (!used[k] && batchable(gi, &group[0], &msgs[k])) {
                used[k] = true;
                group[g++] = msgs[k];
                memset(&msgs[k], 0, sizeof(msgs[k]));
            }
        }
        if (polls) {
            struct job *pj = dsp_job_new(ds, J_POLL);
            if (pj == NULL) {
                ewtp_store_msgs_free(group, g);
                continue;
            }
            ewtp_gen_ref(j->gen);
            pj->gen = j->gen;
            pj->msgs = group;
            pj->n = g;
            pj->gi = gi;
            dsp_submit(pj, poll_prepare, dsp_prepared);
        } else {
            dsp_start_one(ds, J_DELIVER, j->gen, group, g);
        }
    }
    if (used == NULL)
        ewtp_store_msgs_free(msgs, n);
    else
        ewtp_store_msgs_free(msgs, n); /* what is left are zeroed husks */
    free(used);
    dsp_job_free(j);
}

void dsp_claim(struct ewtp_dispatcher *ds, enum job_kind kind)
{
    struct ewtpd *d = ds->d;
    const struct ewtp_delivery_conf *c = &ewtp_gen_config(d->gen)->delivery;
    size_t limit;
    if (kind == J_CLAIM) {
        size_t max = c->max_in_flight ? c->max_in_flight : 64;
        if (ds->claiming || ds->in_flight >= max)
            return;
        limit = max - ds->in_flight;
        if (limit > CLAIM_MAX)
            limit = CLAIM_MAX;
        ds->claiming = true;
    } else {
        if (ds->polling)
            return;
        limit = POLL_MAX;
        ds->polling = true;
    }
    struct job *j = dsp_job_new(ds, kind);
    if (j == NULL) {
        ds->claiming = ds->polling = false;
        return;
    }
    j->gen = ewtpd_gen_acquire(d);
    j->n = limit; /* the limit, until claim_work replaces it with the count */
    if (ewtp_workers_submit(d->workers, claim_work, claim_done, j) != 0) {
        if (kind == J_CLAIM)
            ds->claiming = false;
        else
            ds->polling = false;
        j->n = 0;
        dsp_job_free(j);
    }
}
