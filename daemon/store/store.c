/* store.c — the backend-neutral half of the message store: checks, the accept queue and
 * the group-commit writer thread. See store.h and store_backend.h. */
#include "store_backend.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <ewtp/errors.h>

#define DEFAULT_MAX_BATCH 1024
#define DEFAULT_MAX_QUEUE 65536

/* One queued accept: a deep copy of the request, since the caller's buffers may be gone by
 * the time the writer reaches it. */
struct pending {
    struct pending *next;
    struct ewtp_store_accept_req req;
    char **relations;
    ewtp_store_accept_fn cb;
    void *arg;
    int rc;
    enum ewtp_store_accept_result result;
    enum ewtp_store_state state;
};

struct ewtp_store {
    const struct ewtp_store_ops *ops;
    void *impl;
    size_t max_batch;
    void (*on_commit)(void *arg, uint64_t commit_us, size_t accepts);
    void *on_commit_arg;
    size_t max_queue;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* queue not empty, or closing */
    struct pending *head, *tail;
    size_t queued;
    bool closing;
    bool started;
    pthread_t writer;
    struct ewtp_store_stats stats;
    unsigned char instance_key[32]; /* ewtp_store_instance_key, once read */
    bool have_instance_key;
};

static const char *const state_names[EWTP_STORE_STATE_COUNT] = {
    "accepted", "delivering", "submitted", "approved", "rejected", "retrying", "dead", "cancelled",
};

const char *ewtp_store_state_name(enum ewtp_store_state s)
{
    if ((unsigned)s >= EWTP_STORE_STATE_COUNT)
        return NULL;
    return state_names[s];
}

int ewtp_store_state_from_name(const char *name, enum ewtp_store_state *out)
{
    if (!name)
        return -EWTP_EINVAL;
    for (int i = 0; i < EWTP_STORE_STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum ewtp_store_state)i;
            return 0;
        }
    }
    return -EWTP_EINVAL;
}

bool ewtp_store_state_terminal(enum ewtp_store_state s)
{
    return s == EWTP_STORE_APPROVED || s == EWTP_STORE_REJECTED || s == EWTP_STORE_CANCELLED;
}

int64_t ewtp_store_clock(int64_t now)
{
    return ewtp_clock_ms(now);
}

const char *ewtp_store_fmt_time(char *buf, size_t size, int64_t ms)
{
    return ewtp_fmt_time(buf, size, ms);
}

char *ewtp_store_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ewtp_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

/* ---- accept queue ------------------------------------------------------------------------ */

static void pending_free(struct pending *p)
{
    if (!p)
        return;
    free((char *)p->req.tenant);
    free((char *)p->req.id);
    free((char *)p->req.kind);
    free((char *)p->req.destination);
    free((char *)p->req.plugin);
    free((char *)p->req.canonical);
    free((char *)p->req.hash);
    free((void *)p->req.body);
    free((char *)p->req.ordering_key);
    free((char *)p->req.batch_key);
    free((char *)p->req.warnings);
    free((char *)p->req.wait_key);
    for (size_t i = 0; p->relations && i < p->req.n_relations; i++)
        free(p->relations[i]);
    free(p->relations);
    free(p);
}

static bool dup_str(const char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return true;
    }
    *dst = strdup(src);
    return *dst != NULL;
}

static bool dup_mem(const void **dst, const void *src, size_t len)
{
    if (!src) {
        *dst = NULL;
        return true;
    }
    /* One spare NUL so text bodies can be read as strings; len stays the real size. */
    char *m = malloc(len + 1);
    if (!m)
        return false;
    memcpy(m, src, len);
    m[len] = '\0';
    *dst = m;
    return true;
}

static bool json_array_ok(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    bool ok = j && json_is_array(j);
    json_decref(j);
    return ok;
}

static int check_req(const struct ewtp_store_accept_req *r)
{
    if (!r || !r->tenant || !*r->tenant || !r->id || !*r->id || !r->kind || !r->destination ||
        !r->plugin || !r->canonical || !r->hash || !*r->hash)
        return -EWTP_EINVAL;
    if (r->n_relations && !r->relations)
        return -EWTP_EINVAL;
    for (size_t i = 0; i < r->n_relations; i++)
        if (!r->relations[i])
            return -EWTP_EINVAL;
    if (r->body_len && !r->body)
        return -EWTP_EINVAL;
    if (r->warnings && !json_array_ok(r->warnings))
        return -EWTP_EINVAL;
    return 0;
}

static struct pending *pending_copy(const struct ewtp_store_accept_req *r)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    size_t clen = r->canonical_len ? r->canonical_len : strlen(r->canonical);
    bool ok = dup_str(&p->req.tenant, r->tenant) && dup_str(&p->req.id, r->id) &&
              dup_str(&p->req.kind, r->kind) && dup_str(&p->req.destination, r->destination) &&
              dup_str(&p->req.plugin, r->plugin) && dup_str(&p->req.hash, r->hash) &&
              dup_str(&p->req.ordering_key, r->ordering_key) &&
              dup_str(&p->req.batch_key, r->batch_key) && dup_str(&p->req.warnings, r->warnings) &&
              dup_str(&p->req.wait_key, r->wait_key) && dup_mem(&p->req.body, r->body, r->body_len);
    const void *canon = NULL;
    ok = ok && dup_mem(&canon, r->canonical, clen);
    p->req.canonical = canon;
    p->req.canonical_len = clen;
    p->req.body_len = r->body_len;
    p->req.needs_chain = r->needs_chain;
    p->req.wait_state = r->wait_state;
    p->req.wait_until = r->wait_until;
    p->req.now = ewtp_store_clock(r->now);
    if (ok && r->n_relations) {
        p->relations = calloc(r->n_relations, sizeof(char *));
        ok = p->relations != NULL;
        for (size_t i = 0; ok && i < r->n_relations; i++) {
            p->relations[i] = strdup(r->relations[i]);
            ok = p->relations[i] != NULL;
        }
    }
    p->req.n_relations = r->n_relations;
    p->req.relations = (const char *const *)p->relations;
    if (!ok) {
        pending_free(p);
        return NULL;
    }
    return p;
}

/* Runs one batch through the backend: per-accept failures stay with that accept, a failed
 * begin or commit fails the whole batch (nothing of it is stored). */
static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void run_batch(struct ewtp_store *st, struct pending *batch, size_t count)
{
    uint64_t started = monotonic_us();
    int rc = st->ops->batch_begin(st->impl);
    if (rc == 0) {
        for (struct pending *p = batch; p; p = p->next)
            p->rc = st->ops->batch_accept(st->impl, &p->req, &p->result, &p->state);
        rc = st->ops->batch_commit(st->impl);
        if (rc < 0)
            st->ops->batch_rollback(st->impl);
    }
    if (rc < 0)
        for (struct pending *p = batch; p; p = p->next)
            p->rc = rc;

    pthread_mutex_lock(&st->mu);
    st->stats.accepts += count;
    if (rc == 0) {
        st->stats.batches++;
        if (count > st->stats.max_batch)
            st->stats.max_batch = count;
    } else {
        st->stats.failed++;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == 0 && st->on_commit)
        st->on_commit(st->on_commit_arg, monotonic_us() - started, count);

    /* Callbacks only now: the batch is on stable storage (or definitely not). */
    while (batch) {
        struct pending *next = batch->next;
        batch->cb(batch->arg, batch->rc, batch->result, batch->state);
        pending_free(batch);
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    struct ewtp_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->closing)
            pthread_cond_wait(&st->cv, &st->mu);
        if (!st->head)
            break; /* closing and drained */
        /* Take what has piled up while the last commit was syncing: that is the batch. */
        struct pending *batch = st->head, *last = st->head;
        size_t count = 1;
        while (last->next && count < st->max_batch) {
            last = last->next;
            count++;
        }
        st->head = last->next;
        if (!st->head)
            st->tail = NULL;
        last->next = NULL;
        st->queued -= count;
        pthread_mutex_unlock(&st->mu);
        run_batch(st, batch, count);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int ewtp_store_new(const struct ewtp_store_ops *ops, void *impl, const struct ewtp_store_opts *opts,
                   struct ewtp_store **out, char **why)
{
    struct ewtp_store *st = calloc(1, sizeof(*st));
    if (!st) {
        ops->close(impl);
        return -EWTP_ENOMEM;
    }
    st->ops = ops;
    st->impl = impl;
    st->max_batch = opts && opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    st->max_queue = opts && opts->max_queue ? opts->max_queue : DEFAULT_MAX_QUEUE;
    st->on_commit = opts ? opts->on_commit : NULL;
    st->on_commit_arg = opts ? opts->on_commit_arg : NULL;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    int e = pthread_create(&st->writer, NULL, writer_main, st);
    if (e != 0) {
        if (why)
            *why = ewtp_store_asprintf("store: cannot start the writer thread: %s", strerror(e));
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        ops->close(impl);
        free(st);
        return -EWTP_EIO;
    }
    st->started = true;
    *out = st;
    return 0;
}

void ewtp_store_close(struct ewtp_store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->closing = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (st->started)
        pthread_join(st->writer, NULL);
    st->ops->close(st->impl);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

int ewtp_store_accept_async(struct ewtp_store *st, const struct ewtp_store_accept_req *req,
                            ewtp_store_accept_fn cb, void *arg)
{
    if (!st || !cb)
        return -EWTP_EINVAL;
    int rc = check_req(req);
    if (rc < 0)
        return rc;
    struct pending *p = pending_copy(req);
    if (!p)
        return -EWTP_ENOMEM;
    p->cb = cb;
    p->arg = arg;
    pthread_mutex_lock(&st->mu);
    if (st->closing || st->queued >= st->max_queue) {
        pthread_mutex_unlock(&st->mu);
        pending_free(p);
        return -EWTP_EIO;
    }
    if (st->tail)
        st->tail->next = p;
    else
        st->head = p;
    st->tail = p;
    st->queued++;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    enum ewtp_store_accept_result result;
    enum ewtp_store_state state;
};

static void waiter_done(void *arg, int rc, enum ewtp_store_accept_result result,
                        enum ewtp_store_state state)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->result = result;
    w->state = state;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ewtp_store_accept_wait(struct ewtp_store *st, const struct ewtp_store_accept_req *req,
                           enum ewtp_store_accept_result *result, enum ewtp_store_state *state)
{
    struct waiter w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = ewtp_store_accept_async(st, req, waiter_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
        if (rc == 0 && result)
            *result = w.result;
        if (rc == 0 && state)
            *state = w.state;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

void ewtp_store_stats(struct ewtp_store *st, struct ewtp_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    out->queued = st->queued;
    pthread_mutex_unlock(&st->mu);
}

/* ---- the rest: checks, then the backend -------------------------------------------------- */

static bool json_object_ok(const char *text)
{
    if (!text)
        return true;
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static bool chain_ok(const struct ewtp_store_chain_advance *c)
{
    return !c || (c->key && *c->key && c->number > 0);
}

static bool receipt_ok(const struct ewtp_store_receipt *r)
{
    return !r || ((unsigned)r->state < EWTP_STORE_STATE_COUNT && (r->raw || !r->raw_len));
}

/* Frees the strings of one message row (not the row itself). */
static void msg_clear(struct ewtp_store_msg *m)
{
    free(m->tenant);
    free(m->id);
    free(m->kind);
    free(m->destination);
    free(m->plugin);
    free(m->authority_ref);
    free(m->canonical);
    free(m->hash);
    free(m->ordering_key);
    free(m->batch_key);
    free(m->lease_owner);
    free(m->wait_key);
}

void ewtp_store_msgs_free(struct ewtp_store_msg *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        msg_clear(&msgs[i]);
    free(msgs);
}

void ewtp_store_counts_free(struct ewtp_store_count *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++)
        free(c[i].plugin);
    free(c);
}

int ewtp_store_get(struct ewtp_store *st, const char *tenant, const char *id,
                   struct ewtp_store_msg **out)
{
    if (!st || !tenant || !id || !out)
        return -EWTP_EINVAL;
    return st->ops->get(st->impl, tenant, id, out);
}

static void receipt_rows_free(struct ewtp_store_receipt_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].state);
        free(r[i].code);
        free(r[i].message);
    }
    free(r);
}

void ewtp_store_status_free(struct ewtp_store_status *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].tenant);
        free(s[i].id);
        free(s[i].kind);
        free(s[i].destination);
        free(s[i].plugin);
        free(s[i].authority_ref);
        free(s[i].warnings);
        free(s[i].errors);
        receipt_rows_free(s[i].receipts, s[i].n_receipts);
    }
    free(s);
}

void ewtp_store_events_free(struct ewtp_store_event *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].type);
        free(e[i].state);
        free(e[i].detail);
    }
    free(e);
}

void ewtp_store_page_free(struct ewtp_store_page *p)
{
    if (!p)
        return;
    ewtp_store_status_free(p->items, p->n);
    free(p->next);
    memset(p, 0, sizeof(*p));
}

int ewtp_store_status_get(struct ewtp_store *st, const char *tenant, const char *id,
                          struct ewtp_store_status **out)
{
    if (!st || !tenant || !id || !out)
        return -EWTP_EINVAL;
    *out = NULL;
    return st->ops->status_get(st->impl, tenant, id, out);
}

int ewtp_store_events(struct ewtp_store *st, const char *tenant, const char *id,
                      struct ewtp_store_event **out, size_t *n)
{
    if (!st || !tenant || !id || !out || !n)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    return st->ops->events(st->impl, tenant, id, out, n);
}

int ewtp_store_list(struct ewtp_store *st, const struct ewtp_store_filter *f,
                    struct ewtp_store_page *out)
{
    if (!st || !f || !out)
        return -EWTP_EINVAL;
    memset(out, 0, sizeof(*out));
    enum ewtp_store_state s;
    if (f->state && ewtp_store_state_from_name(f->state, &s) < 0)
        return -EWTP_EINVAL;
    return st->ops->list(st->impl, f, out);
}

int ewtp_store_claim_due(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                         const char *owner, struct ewtp_store_msg **out, size_t *n)
{
    if (!st || !owner || !out || !n || lease_ms <= 0)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    if (limit == 0)
        return 0;
    return st->ops->claim_due(st->impl, ewtp_store_clock(now), limit, lease_ms, owner, out, n);
}

int ewtp_store_claim_poll(struct ewtp_store *st, int64_t now, size_t limit, int64_t next_at,
                          struct ewtp_store_msg **out, size_t *n)
{
    if (!st || !out || !n)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    if (limit == 0)
        return 0;
    return st->ops->claim_poll(st->impl, ewtp_store_clock(now), limit, next_at, out, n);
}

int ewtp_store_poll_schedule(struct ewtp_store *st, uint64_t key, int64_t at)
{
    if (!st)
        return -EWTP_EINVAL;
    return st->ops->poll_schedule(st->impl, key, at);
}

int ewtp_store_requeue_expired(struct ewtp_store *st, int64_t now, size_t *n)
{
    if (!st)
        return -EWTP_EINVAL;
    size_t dummy;
    return st->ops->requeue_expired(st->impl, ewtp_store_clock(now), n ? n : &dummy);
}

/* Entries that a backend can store: kind and name given, a body where a length is. */
static bool evidence_ok(const struct ewtp_store_evidence *e, size_t n)
{
    if (n && !e)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!e[i].kind || !*e[i].kind || !e[i].name || !*e[i].name ||
            (e[i].body_len && !e[i].body) || (e[i].meta && !json_object_ok(e[i].meta)))
            return false;
    return true;
}

int ewtp_store_record_outcome(struct ewtp_store *st, const struct ewtp_store_outcome *o)
{
    if (!st || !o)
        return -EWTP_EINVAL;
    switch (o->state) {
    case EWTP_STORE_SUBMITTED:
    case EWTP_STORE_APPROVED:
    case EWTP_STORE_REJECTED:
    case EWTP_STORE_RETRYING:
    case EWTP_STORE_DEAD:
    case EWTP_STORE_CANCELLED:
        break;
    default:
        return -EWTP_EINVAL;
    }
    if ((o->errors && !json_array_ok(o->errors)) || !json_object_ok(o->detail) ||
        !chain_ok(o->chain) || !receipt_ok(o->receipt) ||
        ((o->key_state || o->chain_first > 0) && (!o->okey || !*o->okey)) || o->chain_first < 0 ||
        !evidence_ok(o->evidence, o->n_evidence))
        return -EWTP_EINVAL;
    struct ewtp_store_outcome c = *o;
    c.now = ewtp_store_clock(o->now);
    if (st->ops->evidence_add == NULL || c.n_evidence == 0) {
        c.evidence = NULL;
        c.n_evidence = 0;
    }
    if (c.next_attempt_at <= 0)
        c.next_attempt_at = c.now;
    return st->ops->record_outcome(st->impl, &c);
}

void ewtp_store_durable_defer(struct ewtp_store *st)
{
    if (st && st->ops->durable_defer)
        st->ops->durable_defer(st->impl);
}

int ewtp_store_durable_end(struct ewtp_store *st)
{
    return st && st->ops->durable_end ? st->ops->durable_end(st->impl) : 0;
}

int ewtp_store_record_receipt(struct ewtp_store *st, const struct ewtp_store_receipt_rec *r)
{
    if (!st || !r || !r->receipt || !receipt_ok(r->receipt) || !json_object_ok(r->detail) ||
        !chain_ok(r->chain) || (r->errors && !json_array_ok(r->errors)))
        return -EWTP_EINVAL;
    if (r->set_state &&
        ((unsigned)r->state >= EWTP_STORE_STATE_COUNT || r->state == EWTP_STORE_DELIVERING))
        return -EWTP_EINVAL;
    struct ewtp_store_receipt_rec c = *r;
    c.now = ewtp_store_clock(r->now);
    return st->ops->record_receipt(st->impl, &c);
}

int ewtp_store_find_by_authority_ref(struct ewtp_store *st, const char *plugin, const char *ref,
                                     struct ewtp_store_msg **out)
{
    if (!st || !plugin || !ref || !out)
        return -EWTP_EINVAL;
    return st->ops->find_by_authority_ref(st->impl, plugin, ref, out);
}

int ewtp_store_add_event(struct ewtp_store *st, uint64_t key, const char *type, uint32_t attempt,
                         const char *detail, int64_t now)
{
    if (!st || !type || !*type || !json_object_ok(detail))
        return -EWTP_EINVAL;
    return st->ops->add_event(st->impl, key, type, attempt, detail, ewtp_store_clock(now));
}

int ewtp_store_replay(struct ewtp_store *st, const char *tenant, const char *id, int64_t now)
{
    if (!st || !tenant || !id)
        return -EWTP_EINVAL;
    return st->ops->replay(st->impl, tenant, id, ewtp_store_clock(now));
}

int ewtp_store_retry_now(struct ewtp_store *st, const char *tenant, const char *id, int64_t now)
{
    if (!st || !tenant || !id)
        return -EWTP_EINVAL;
    return st->ops->retry_now(st->impl, tenant, id, ewtp_store_clock(now));
}

int ewtp_store_chain_get(struct ewtp_store *st, const char *key, int64_t *number, char **ref)
{
    if (!st || !key || !number)
        return -EWTP_EINVAL;
    if (ref)
        *ref = NULL;
    return st->ops->chain_get(st->impl, key, number, ref);
}

int ewtp_store_chain_set(struct ewtp_store *st, const char *key, int64_t number,
                         const char *prev_ref, int64_t now)
{
    if (!st || !key || !*key || number < 1)
        return -EWTP_EINVAL;
    /* Stored as the last accepted number, which the next message follows. */
    return st->ops->chain_set(st->impl, key, number - 1, prev_ref, ewtp_store_clock(now));
}

int ewtp_store_key_state_get(struct ewtp_store *st, const char *key, void **data, size_t *len)
{
    if (!st || !key || !data || !len)
        return -EWTP_EINVAL;
    *data = NULL;
    *len = 0;
    return st->ops->key_state_get(st->impl, key, data, len);
}

int ewtp_store_related(struct ewtp_store *st, const char *const *keys, size_t n,
                       const char *exclude_tenant, const char *exclude_id,
                       struct ewtp_store_msg **out, size_t *n_out)
{
    if (!st || (n && !keys) || !out || !n_out)
        return -EWTP_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!keys[i])
            return -EWTP_EINVAL;
    return st->ops->related(st->impl, keys, n, exclude_tenant, exclude_id, out, n_out);
}

int ewtp_store_counts(struct ewtp_store *st, struct ewtp_store_count **out, size_t *n)
{
    if (!st || !out || !n)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    return st->ops->counts(st->impl, out, n);
}

int ewtp_store_backlog(struct ewtp_store *st, int64_t now, uint64_t *depth, int64_t *oldest_age_ms)
{
    if (!st)
        return -EWTP_EINVAL;
    uint64_t d = 0;
    int64_t a = 0;
    int rc = st->ops->backlog(st->impl, ewtp_store_clock(now), &d, &a);
    if (rc == 0 && depth)
        *depth = d;
    if (rc == 0 && oldest_age_ms)
        *oldest_age_ms = a;
    return rc;
}

/* ---- webhook outbox --------------------------------------------------------------------- */

void ewtp_store_webhooks_free(struct ewtp_store_webhook *w, size_t n)
{
    if (!w)
        return;
    for (size_t i = 0; i < n; i++) {
        free(w[i].tenant);
        free(w[i].id);
        free(w[i].state);
    }
    free(w);
}

int ewtp_store_webhook_enqueue(struct ewtp_store *st, uint64_t key, enum ewtp_store_state state,
                               int64_t at, int64_t now)
{
    if (!st || (unsigned)state >= EWTP_STORE_STATE_COUNT)
        return -EWTP_EINVAL;
    now = ewtp_store_clock(now);
    return st->ops->webhook_enqueue(st->impl, key, state, at > 0 ? at : now, now);
}

int ewtp_store_webhook_claim(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                             struct ewtp_store_webhook **out, size_t *n)
{
    if (!st || !out || !n || lease_ms <= 0)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    if (limit == 0)
        return 0;
    return st->ops->webhook_claim(st->impl, ewtp_store_clock(now), limit, lease_ms, out, n);
}

int ewtp_store_webhook_done(struct ewtp_store *st, uint64_t wid)
{
    if (!st)
        return -EWTP_EINVAL;
    return st->ops->webhook_done(st->impl, wid);
}

int ewtp_store_webhook_retry(struct ewtp_store *st, uint64_t wid, int64_t next_at,
                             const char *error)
{
    if (!st)
        return -EWTP_EINVAL;
    return st->ops->webhook_retry(st->impl, wid, ewtp_store_clock(next_at), error);
}

int ewtp_store_webhook_give_up(struct ewtp_store *st, uint64_t wid, const char *error, int64_t now)
{
    if (!st)
        return -EWTP_EINVAL;
    return st->ops->webhook_give_up(st->impl, wid, error, ewtp_store_clock(now));
}

int ewtp_store_webhook_pending(struct ewtp_store *st, uint64_t *n)
{
    if (!st || !n)
        return -EWTP_EINVAL;
    *n = 0;
    return st->ops->webhook_pending(st->impl, n);
}

/* ---- operations on a message ------------------------------------------------------------ */

void ewtp_store_ops_free(struct ewtp_store_op *ops, size_t n)
{
    for (size_t i = 0; ops && i < n; i++) {
        free(ops[i].op);
        free(ops[i].reason);
        msg_clear(&ops[i].msg);
    }
    free(ops);
}

int ewtp_store_op_request(struct ewtp_store *st, const char *tenant, const char *id, const char *op,
                          const char *reason, int64_t now, bool *repeat,
                          enum ewtp_store_state *state)
{
    if (!st || !tenant || !id || !op || !repeat || !state)
        return -EWTP_EINVAL;
    *repeat = false;
    return st->ops->op_request(st->impl, tenant, id, op, reason, ewtp_store_clock(now), repeat,
                               state);
}

int ewtp_store_op_claim(struct ewtp_store *st, int64_t now, size_t limit, int64_t lease_ms,
                        const char *owner, struct ewtp_store_op **out, size_t *n)
{
    if (!st || !owner || !out || !n || lease_ms <= 0)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    if (limit == 0)
        return 0;
    return st->ops->op_claim(st->impl, ewtp_store_clock(now), limit, lease_ms, owner, out, n);
}

int ewtp_store_op_finish(struct ewtp_store *st, uint64_t oid, uint32_t attempt,
                         enum ewtp_store_op_end end, int64_t next_at, const char *detail,
                         int64_t now)
{
    if (!st || end > EWTP_STORE_OP_FAILED)
        return -EWTP_EINVAL;
    now = ewtp_store_clock(now);
    return st->ops->op_finish(st->impl, oid, attempt, end, next_at > 0 ? next_at : now, detail,
                              now);
}

int ewtp_store_ops_pending(struct ewtp_store *st, uint64_t *n)
{
    if (!st || !n)
        return -EWTP_EINVAL;
    *n = 0;
    return st->ops->ops_pending(st->impl, n);
}

/* ---- waiting for another message ------------------------------------------------------ */

/* The same rule as the claim query: any message of the key in the wanted state (approved
 * also satisfies "submitted") lets m go; otherwise a rejected or cancelled one fails it;
 * otherwise the deadline decides. */
enum ewtp_store_wait ewtp_store_wait_decide(struct ewtp_store *st, const struct ewtp_store_msg *m,
                                            int64_t now, char **cause)
{
    *cause = NULL;
    if (m->wait_key == NULL)
        return EWTP_STORE_WAIT_READY;
    struct ewtp_store_msg *rel = NULL;
    size_t n = 0;
    const char *key = m->wait_key;
    if (ewtp_store_related(st, &key, 1, m->tenant, m->id, &rel, &n) != 0)
        return EWTP_STORE_WAIT_PENDING; /* fail closed: never send on a store error */
    bool ready = false, failed = false;
    for (size_t i = 0; i < n; i++) {
        enum ewtp_store_state s = rel[i].state;
        if (s == m->wait_state ||
            (m->wait_state == EWTP_STORE_SUBMITTED && s == EWTP_STORE_APPROVED))
            ready = true;
        else if (s == EWTP_STORE_REJECTED || s == EWTP_STORE_CANCELLED)
            failed = true;
    }
    ewtp_store_msgs_free(rel, n);
    const char *want = ewtp_store_state_name(m->wait_state);
    if (ready)
        return EWTP_STORE_WAIT_READY;
    if (failed) {
        *cause = ewtp_store_asprintf("the message this one depends on (%s) was rejected or "
                                     "cancelled before it was %s, so this one was not sent",
                                     key, want);
        return EWTP_STORE_WAIT_FAILED;
    }
    if (now >= m->wait_until) {
        *cause = ewtp_store_asprintf(n ? "the message this one depends on (%s) was not %s "
                                         "within the wait timeout, so this one was not sent"
                                       : "no message this one depends on (%s) reached %s "
                                         "within the wait timeout, so this one was not sent",
                                     key, want);
        return EWTP_STORE_WAIT_TIMEOUT;
    }
    return EWTP_STORE_WAIT_PENDING;
}

/* ---- evidence ------------------------------------------------------------------------------ */

void ewtp_store_evidence_free(struct ewtp_store_evidence_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].kind);
        free(r[i].name);
        free(r[i].meta);
        free(r[i].body);
    }
    free(r);
}

int ewtp_store_evidence_add(struct ewtp_store *st, uint64_t key,
                            const struct ewtp_store_evidence *e, size_t n)
{
    if (!st || !evidence_ok(e, n))
        return -EWTP_EINVAL;
    if (st->ops->evidence_add == NULL)
        return -EWTP_EUNSUPP;
    return n ? st->ops->evidence_add(st->impl, key, e, n, ewtp_store_clock(0)) : 0;
}

int ewtp_store_evidence_get(struct ewtp_store *st, const char *tenant, const char *id,
                            struct ewtp_store_evidence_row **out, size_t *n)
{
    if (!st || !tenant || !id || !out || !n)
        return -EWTP_EINVAL;
    *out = NULL;
    *n = 0;
    if (st->ops->evidence_get == NULL)
        return -EWTP_EUNSUPP;
    return st->ops->evidence_get(st->impl, tenant, id, out, n);
}

int ewtp_store_evidence_purge(struct ewtp_store *st, int64_t before, uint64_t *n)
{
    uint64_t dummy = 0;
    if (!st)
        return -EWTP_EINVAL;
    if (st->ops->evidence_purge == NULL)
        return -EWTP_EUNSUPP;
    return st->ops->evidence_purge(st->impl, before, n ? n : &dummy);
}

int ewtp_store_evidence_bytes(struct ewtp_store *st, uint64_t *bytes)
{
    if (!st || !bytes)
        return -EWTP_EINVAL;
    *bytes = 0;
    if (st->ops->evidence_bytes == NULL)
        return -EWTP_EUNSUPP;
    return st->ops->evidence_bytes(st->impl, bytes);
}

int ewtp_store_instance_key(struct ewtp_store *st, unsigned char out[32])
{
    if (!st || !out)
        return -EWTP_EINVAL;
    pthread_mutex_lock(&st->mu);
    bool have = st->have_instance_key;
    if (have)
        memcpy(out, st->instance_key, 32);
    pthread_mutex_unlock(&st->mu);
    if (have)
        return 0;
    if (st->ops->instance_key == NULL)
        return -EWTP_EUNSUPP;
    unsigned char fresh[32];
    if (RAND_bytes(fresh, sizeof(fresh)) != 1)
        return -EWTP_EIO;
    int rc = st->ops->instance_key(st->impl, fresh, out);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    if (rc == 0) {
        pthread_mutex_lock(&st->mu);
        memcpy(st->instance_key, out, 32);
        st->have_instance_key = true;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}
