/* dispatcher.c — delivery: claims, translate, transport, interpret, outcome; receipt
 * polling; inbound receipts (spool in-folders and POST /v1/inbound); cancellation;
 * webhooks after every state change. Contract in dispatcher.h.
 *
 * Threads: timers, HTTP sends and replies run on the loop; store calls, plugin calls,
 * message parsing and spool file I/O run as worker jobs (workers.h). Every job is in the
 * dispatcher's live list from creation to its end, so that ewtp_dispatcher_free() (after
 * ewtp_workers_free(), which runs no more done callbacks) can free what was in flight.
 * A job holds a reference on the generation current when it started.
 */
#include "daemon.h"
#include "dispatcher.h"
#include "gen.h"
#include "hostctx.h"
#include "reload.h"
#include "store.h"
#include "workers.h"
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <ewtp/errors.h>

#include "amqp_transport.h"
#include "backoff.h"
#include "batch.h"
#include "runner.h"
#include "store.h"
#include "util.h"
#include "httpc.h"
#include "instance_key.h"
#include "transport.h"
#include "webhooks.h"

#define CLAIM_MAX 64
#define POLL_MAX 32
#define OP_CLAIM_MAX 8
#define INBOUND_MAX_BYTES (16u << 20)
#define SPOOL_UNMATCHED_KEEP_MS (10 * 60 * 1000)

#define PLUGIN_HAS(p, m)                                                                           \
    ((p)->size >= offsetof(struct ewtp_plugin, m) + sizeof((p)->m) && (p)->m != NULL)

/* The plugin's batch limits (a pointer in the descriptor; NULL: no batching). */
static const struct ewtp_batch_limits *batch_of(const struct ewtp_plugin *p)
{
    return PLUGIN_HAS(p, batch) ? p->batch : NULL;
}

static size_t batch_max_documents(const struct ewtp_plugin *p)
{
    const struct ewtp_batch_limits *b = batch_of(p);
    return b ? b->max_documents : 0;
}

/* n outcomes, each with the host's size, as the array of pointers interpret_batch takes. */
static struct ewtp_outcome **outcomes_new(struct ewtp_arena *a, size_t n)
{
    struct ewtp_outcome **o = ewtp_arena_alloc(a, (n ? n : 1) * sizeof(*o));
    for (size_t i = 0; o && i < n; i++) {
        if ((o[i] = ewtp_arena_alloc(a, sizeof(*o[i]))) == NULL)
            return NULL;
        o[i]->size = sizeof(*o[i]);
    }
    return o;
}

/* Host header arrays as the plugin ABI's arrays of pointers to sized copies (arena a). */
static const struct ewtp_header *const *header_ptrs(struct ewtp_arena *a,
                                                    const struct ewtp_header *h, size_t n)
{
    const struct ewtp_header **p = ewtp_arena_alloc(a, (n ? n : 1) * sizeof(*p));
    for (size_t i = 0; p && i < n; i++) {
        struct ewtp_header *one = ewtp_arena_alloc(a, sizeof(*one));
        if (one == NULL)
            return NULL;
        *one = h[i];
        one->size = sizeof(*one);
        p[i] = one;
    }
    return p;
}

/* J_CANCELREQ answers POST /cancel by recording the operation; J_CANCEL delivers a claimed
 * one (store.h, "operations on a message"). */
enum job_kind {
    J_CLAIM,
    J_DELIVER,
    J_POLLCLAIM,
    J_POLL,
    J_CANCELREQ,
    J_CANCEL,
    J_INBOUND,
    J_SPOOL,
    J_LOGIN /* a plugin-built login (ABI 1.3): built on a worker, sent, read on the loop */
};

struct job {
    uint64_t started_us; /* when the attempt began (delivery latency metric) */
    struct job *next, *prev;
    struct ewtp_dispatcher *ds;
    enum job_kind kind;
    struct ewtp_gen *gen;
    const struct ewtp_gen_instance *gi;
    struct ewtp_store_msg *msgs;
    size_t n;
    struct ewtp_arena *arena;
    struct ewtp_message **owned; /* parsed messages (own and related) to free */
    size_t n_owned, cap_owned;
    struct ewtp_call *calls;
    const struct ewtp_call **callp;
    int64_t *chain_number;
    const struct ewtp_request *const *reqs;
    size_t n_reqs, next_req;
    char *auth_header;
    struct job *auth_next; /* waiting for its instance's token */
    struct token *token;   /* J_LOGIN: the token it fetches */
    size_t split;          /* deliver_prepare: send nothing, deliver in this many pieces */
    struct ewtp_httpc_resp *resp;
    bool send;                           /* after the worker step: send reqs from the loop */
    const struct ewtp_transport_ops *tp; /* how reqs go out (transport.h) */
    /* cancel and inbound */
    char *tenant, *id, *reason, *instance;
    ewtpd_reply_fn reply;
    void *reply_arg;
    int status; /* J_LOGIN: the plugin's return code */
    /* the answer to the API (ewtp_dispatch_reply): result, sentence, plugin errors, id */
    enum ewtp_dispatch_result res;
    char *res_text;
    struct ewtp_errors *res_errs;
    char *res_id;
    enum ewtp_store_state res_state;
    struct ewtp_header *hdrs;
    size_t n_hdrs;
    void *data;
    size_t len;
    /* J_CANCEL: the operation and the attempt its lease is for */
    uint64_t op_id;
    uint32_t op_attempt;
    int64_t op_created;
    /* J_CLAIM: operations claimed with the messages */
    struct ewtp_store_op *ops;
    size_t n_ops;
};

struct ewtp_dispatcher {
    struct ewtpd *d;
    struct event *scan_ev, *kick_ev;
    struct ewtp_httpc *tr;
    struct ewtp_webhooks *wh;
    char owner[128];
    bool stopped, claiming, polling, spooling;
    struct ewtp_amqp_pool *amqp; /* broker connections of "amqp" instances (amqp_transport.h) */
    bool amqp_fetching;
    bool evidence_purging;       /* the evidence retention purge runs on a worker */
    int64_t next_evidence_purge; /* loop thread: when the next purge is due */
    size_t in_flight;
    struct job *jobs;
    /* When claim_work next returns expired leases to the queue. Atomic: claim_work runs on
     * worker threads, and a claim and a poll (or two claims) may run at once. */
    _Atomic int64_t next_requeue;
    struct token *tokens;
    struct held *held;
};

/* Claimed messages of one (instance, batch key) waiting for their batch to fill up or for
 * the plugin's maximum wait (batch.h). Their leases run meanwhile; a held message that is
 * lost at shutdown is sent again when its lease expires. Loop thread only. */
struct held {
    struct held *next;
    struct ewtp_dispatcher *ds;
    char *instance, *key;
    struct ewtp_store_msg *msgs;
    size_t n, cap;
    int64_t since; /* when the oldest was claimed */
    struct event *timer;
};

/* A bearer token of an instance (OAuth2 client credentials, JSON login or the plugin's login),
 * fetched by the host and cached until shortly before it expires, or until the authority answers
 * 401. One per instance: an instance is one client (and, for MyInvois intermediaries, one
 * represented taxpayer through auth.onbehalfof). Loop thread only. */
struct token {
    struct token *next;
    struct ewtp_dispatcher *ds;
    char *instance;
    char *conf_id; /* what the token was fetched with: a reload that changes it refetches */
    char *value;   /* "Bearer ..." */
    int64_t expires_at;
    int64_t refresh_at; /* when the next request fetches a new one (before expires_at) */
    bool fetching;
    struct job *waiting;
};

/* ---- jobs --------------------------------------------------------------------------------- */

static struct job *job_new(struct ewtp_dispatcher *ds, enum job_kind kind)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->ds = ds;
    j->kind = kind;
    j->next = ds->jobs;
    if (ds->jobs)
        ds->jobs->prev = j;
    ds->jobs = j;
    return j;
}

static void job_free(struct job *j)
{
    struct ewtp_dispatcher *ds = j->ds;
    if (j->prev)
        j->prev->next = j->next;
    else
        ds->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    for (size_t i = 0; i < j->n_owned; i++)
        ewtp_message_free(j->owned[i]);
    free(j->owned);
    ewtp_store_msgs_free(j->msgs, j->n);
    ewtp_arena_free(j->arena);
    free(j->calls);
    free(j->callp);
    free(j->chain_number);
    free(j->auth_header);
    ewtp_httpc_resp_free(j->resp);
    free(j->tenant);
    free(j->id);
    free(j->reason);
    free(j->instance);
    free(j->res_text);
    free(j->res_id);
    ewtp_errors_free(j->res_errs);
    for (size_t i = 0; i < j->n_hdrs; i++) {
        free((char *)j->hdrs[i].name);
        free((char *)j->hdrs[i].value);
    }
    free(j->hdrs);
    free(j->data);
    ewtp_store_ops_free(j->ops, j->n_ops);
    if (j->gen)
        ewtp_gen_unref(j->gen);
    free(j);
}

static struct ewtp_store *store_of(struct job *j)
{
    return j->ds->d->store;
}

static const struct ewtp_delivery_conf *policy_conf(struct job *j)
{
    return &ewtp_gen_config(j->gen)->delivery;
}

static struct ewtp_backoff_policy policy(struct job *j)
{
    const struct ewtp_delivery_conf *c = policy_conf(j);
    struct ewtp_backoff_policy p = {.max_attempts = c->max_attempts,
                                    .max_age_ms = c->max_age_ms,
                                    .base_ms = c->base_delay_ms,
                                    .max_ms = c->max_delay_ms};
    return p;
}

/* A state change was recorded and the store queued its webhook in the same transaction
 * (.webhook of the outcome or receipt): have the webhooks look at the outbox now. */
static void hooks_kick(struct job *j)
{
    ewtp_webhooks_kick(j->ds->wh);
}

static int own(struct job *j, struct ewtp_message *m)
{
    if (j->n_owned == j->cap_owned) {
        size_t cap = j->cap_owned ? 2 * j->cap_owned : 8;
        struct ewtp_message **n = realloc(j->owned, cap * sizeof(*n));
        if (n == NULL) {
            ewtp_message_free(m);
            return -EWTP_ENOMEM;
        }
        j->owned = n;
        j->cap_owned = cap;
    }
    j->owned[j->n_owned++] = m;
    return 0;
}

/* Parses stored canonical JSON (valid at accept, so errors here mean a plugin set changed). */
static struct ewtp_message *parse_stored(struct job *j, const struct ewtp_store_msg *m)
{
    struct ewtp_parse_opts opts = {.size = sizeof(struct ewtp_parse_opts),
                                   .extra_destinations = ewtp_gen_destinations(j->gen)};
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_message *msg = NULL;
    if (errs && ewtp_message_parse(m->canonical, m->canonical_len, &opts, &msg, errs) == 0 &&
        ewtp_errors_blocking(errs) > 0) {
        ewtp_message_free(msg);
        msg = NULL;
    }
    ewtp_errors_free(errs);
    if (msg && own(j, msg) != 0)
        msg = NULL;
    return msg;
}

/* A JSON array of one error entry (malloc'd). */
static char *one_error(const char *pointer, const char *code, const char *message,
                       const char *cause)
{
    json_t *a = json_pack("[{s:s,s:s,s:s}]", "pointer", pointer ? pointer : "", "code",
                          code ? code : "rejected", "message", message ? message : "");
    if (a && cause && cause[0]) /* ABI 1.6: the plugin's plain cause of the authority's code */
        json_object_set_new(json_array_get(a, 0), "cause", json_string(cause));
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* The "errors" array of an ewtp_errors list (malloc'd). */
static char *errors_array(const struct ewtp_errors *e)
{
    char *all = ewtp_errors_to_json(e);
    json_t *o = all ? json_loads(all, 0, NULL) : NULL;
    free(all);
    char *s = o ? json_dumps(json_object_get(o, "errors"), JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Sets the job's answer to the API: res and a sentence (fmt may be NULL). Returns res. */
static enum ewtp_dispatch_result result(struct job *j, enum ewtp_dispatch_result res,
                                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum ewtp_dispatch_result result(struct job *j, enum ewtp_dispatch_result res,
                                        const char *fmt, ...)
{
    free(j->res_text);
    j->res_text = NULL;
    j->res = res;
    if (fmt) {
        char text[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        j->res_text = strdup(text);
    }
    return res;
}

/* ---- recording ---------------------------------------------------------------------------- */

/* The rejection explainer (ABI 1.6) in an event's detail: the authority's raw code, the
 * plugin's plain cause and the common-message pointer, each when known. */
static void explain_detail(json_t *det, const char *code, const struct ewtp_outcome *o)
{
    if (det == NULL)
        return;
    if (code)
        json_object_set_new(det, "code", json_string(code));
    if (o && o->cause && o->cause[0])
        json_object_set_new(det, "cause", json_string(o->cause));
    if (o && o->pointer && o->pointer[0])
        json_object_set_new(det, "pointer", json_string(o->pointer));
}

/* The evidence of one message's delivery attempt (attempt_evidence()): n entries at e whose
 * names and meta texts are owned by texts; the bodies point into the job's requests and
 * answer, which outlive it. */
struct attempt_evidence {
    struct ewtp_store_evidence *e;
    char **texts; /* 2 per entry: meta, name */
    size_t n;
};

static void attempt_evidence_free(struct attempt_evidence *a)
{
    for (size_t t = 0; a->texts && a->e && t < 2 * a->n; t++)
        free(a->texts[t]);
    free(a->texts);
    free(a->e);
    memset(a, 0, sizeof(*a));
}

/* ABI 1.7: the unique id the plugin wrote into message m's document (its document_id), as the
 * reference the store keeps beside the authority's ("doc:" + id, so that it never meets an
 * authority reference of the same text); NULL when the plugin names none. Malloc'd. */
static char *doc_ref_of(struct job *j, const struct ewtp_store_msg *m)
{
    const struct ewtp_plugin *p = j->gi ? j->gi->plugin : NULL;
    if (p == NULL || !PLUGIN_HAS(p, document_id) || j->calls == NULL || m < j->msgs ||
        m >= j->msgs + j->n || j->calls[m - j->msgs].msg == NULL)
        return NULL;
    const char *id = p->document_id(ewtp_instance_state(j->gi->inst), &j->calls[m - j->msgs]);
    return id && id[0] ? ewtp_asprintf("doc:%s", id) : NULL;
}

/* Records the outcome of attempt m->attempts of m, with what follows: poll schedule, chain,
 * webhook. o->verdict RETRY goes through the backoff. ev (NULL when nothing was sent): the
 * attempt's evidence, committed in the outcome's own transaction. */
static void record_delivery(struct job *j, const struct ewtp_store_msg *m,
                            const struct ewtp_outcome *o, int64_t chain_number,
                            const struct ewtp_httpc_resp *resp, unsigned req_index,
                            const char *errors_json, const struct attempt_evidence *ev, int64_t now)
{
    enum ewtp_store_state st;
    const char *code = o->code, *text = o->message;
    if (!ewtp_backoff_verdict_state(o->verdict, EWTP_OP_SUBMIT, &st)) {
        st = EWTP_STORE_RETRYING;
        code = "unexpected_verdict";
        text = "the plugin gave a verdict a submission cannot have";
    }
    int64_t next = 0;
    if (st == EWTP_STORE_RETRYING) {
        int64_t ra = o->retry_after_ms;
        for (size_t i = 0; ra == 0 && resp && i < resp->n_headers; i++)
            if (strcasecmp(resp->headers[i].name, "Retry-After") == 0)
                ra = ewtp_retry_after_ms(resp->headers[i].value, now);
        struct ewtp_backoff_policy p = policy(j);
        st = ewtp_backoff_decide(&p, m->attempts, m->created_at, now, ra, ewtp_rnd64(), &next);
    }
    /* ABI 1.2 key_blocked: the authority's numbering and the key's chain disagree. The message
     * is dead instead of rejected, and a dead message holds every later one of its key (the
     * claim's blocking states), so nothing more of the key is sent until an admin sets the
     * chain (ewtpctl chain set) and replays it. */
    bool blocked = o->key_blocked && m->ordering_key && st != EWTP_STORE_SUBMITTED &&
                   st != EWTP_STORE_APPROVED;
    if (blocked) {
        st = EWTP_STORE_DEAD;
        ewtpd_log(LOG_ERR,
                  "%s/%s: ordering key %s blocked: %s %s; no later message of the key is sent "
                  "until `ewtpctl chain set %s NUMBER` and `ewtpctl replay %s --tenant %s`",
                  m->tenant, m->id, m->ordering_key, code ? code : "", text ? text : "",
                  m->ordering_key, m->id, m->tenant);
    }
    struct ewtp_store_receipt rec = {.state = st, .code = code, .message = text, .at = now};
    if (resp && resp->body_len) {
        rec.raw = resp->body;
        rec.raw_len = resp->body_len;
    }
    char *errs = NULL;
    if (errors_json)
        errs = strdup(errors_json);
    else if (st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED)
        errs = strdup("[]");
    else
        errs = one_error(o->pointer, code, text, code == o->code ? o->cause : NULL);
    json_t *det = json_object();
    if (resp) {
        json_object_set_new(det, "http_status", json_integer(resp->status));
        json_object_set_new(det, "request", json_integer(req_index));
        if (resp->error)
            json_object_set_new(det, "transport_error", json_string(resp->error));
    }
    explain_detail(det, code, code == o->code ? o : NULL);
    char *detail = json_dumps(det, JSON_COMPACT);
    json_decref(det);
    struct ewtp_store_chain_advance ch = {
        .key = m->ordering_key, .number = chain_number, .ref = o->authority_ref};
    bool chained = m->needs_chain && m->ordering_key && chain_number > 0 &&
                   (st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED);
    struct ewtp_store_outcome out = {.key = m->key,
                                     .attempt = m->attempts,
                                     .state = st,
                                     .authority_ref = o->authority_ref,
                                     .receipt = &rec,
                                     .next_attempt_at = next,
                                     .errors = errs,
                                     .detail = detail,
                                     .chain = chained ? &ch : NULL,
                                     .now = now,
                                     .webhook = ewtp_webhooks_wanted(j->gen, m->tenant),
                                     .owner = m->lease_owner,
                                     .evidence = ev ? ev->e : NULL,
                                     .n_evidence = ev ? ev->n : 0};
    /* ABI 1.2: the plugin's state of the key and the chain's first number, in the same
     * transaction (o is always a host-allocated outcome of this host's size). */
    if (m->ordering_key && (o->key_state_out || o->chain_first > 0)) {
        out.okey = m->ordering_key;
        out.key_state = o->key_state_out;
        out.key_state_len = o->key_state_out ? o->key_state_out_len : 0;
        out.chain_first = o->chain_first <= (uint64_t)INT64_MAX ? (int64_t)o->chain_first : 0;
    }
    char *doc_ref = j->kind == J_DELIVER ? doc_ref_of(j, m) : NULL;
    out.doc_ref = doc_ref;
    int rc = ewtp_store_record_outcome(store_of(j), &out);
    free(doc_ref);
    if (rc == -EWTP_ERANGE && chained) {
        /* Cannot happen with one message in flight per key; keep the answer anyway. */
        ewtpd_log(LOG_ERR, "%s/%s: chain %s out of sequence at %" PRId64, m->tenant, m->id,
                  m->ordering_key, chain_number);
        out.chain = NULL;
        rc = ewtp_store_record_outcome(store_of(j), &out);
    }
    free(errs);
    free(detail);
    if (rc == -EWTP_EINVAL) {
        ewtpd_log(LOG_INFO, "%s/%s: outcome of attempt %u not recorded: decided meanwhile",
                  m->tenant, m->id, m->attempts);
        /* The lease was lost (expired, or a receipt decided first), but what this attempt
         * sent did reach the authority: its evidence is kept beside the lease_expired or
         * receipt event that ended the attempt. */
        int erc = ev && ev->n ? ewtp_store_evidence_add(store_of(j), m->key, ev->e, ev->n) : 0;
        if (erc < 0 && erc != -EWTP_EUNSUPP)
            ewtpd_log(LOG_ERR, "%s/%s: cannot keep the evidence of attempt %u: %s", m->tenant,
                      m->id, m->attempts, ewtp_strerror(erc));
        return;
    }
    if (rc < 0) {
        ewtpd_log(LOG_ERR,
                  "%s/%s: cannot record the outcome and evidence of attempt %u: %s (the lease "
                  "will expire and the message be sent again)",
                  m->tenant, m->id, m->attempts, ewtp_strerror(rc));
        return;
    }
    if (st == EWTP_STORE_SUBMITTED) {
        bool poll = o->poll && j->gi && PLUGIN_HAS(j->gi->plugin, poll);
        int prc = ewtp_store_poll_schedule(store_of(j), m->key,
                                           poll ? now + policy_conf(j)->poll_interval_ms : -1);
        if (prc != 0 && prc != -EWTP_EINVAL)
            ewtpd_log(LOG_ERR, "%s/%s: cannot schedule its poll: %s (polled at once instead)",
                      m->tenant, m->id, ewtp_strerror(prc));
    }
    if (j->started_us)
        ewtp_metrics_delivery(j->ds->d->metrics, m->plugin, ewtp_store_state_name(st),
                              ewtp_metrics_now_us() - j->started_us);
    /* MESSAGE_ID: journalctl MESSAGE_ID=<it> lists every delivery outcome. */
    ewtpd_log_msg(st == EWTP_STORE_DEAD ? LOG_WARNING : LOG_INFO,
                  "6d3c1b9e0f8a4f2b9a1d7e5c4b3a2f10", m->id, m->tenant, m->plugin,
                  "attempt %u -> %s%s%s", m->attempts, ewtp_store_state_name(st), code ? " " : "",
                  code ? code : "");
    hooks_kick(j);
}

/* A failure before anything was sent. */
static void record_local(struct job *j, const struct ewtp_store_msg *m, enum ewtp_verdict v,
                         const char *code, const char *text, const char *errors_json)
{
    struct ewtp_outcome o = EWTP_OUTCOME_INIT(.verdict = v, .code = code, .message = text);
    record_delivery(j, m, &o, 0, NULL, 0, errors_json, NULL, ewtpd_now_ms());
}

/* A receipt (poll, inbound, cancel answer) for m. */
static void record_receipt(struct job *j, const struct ewtp_store_msg *m,
                           const struct ewtp_outcome *o, enum ewtp_op op, const void *raw,
                           size_t raw_len, const char *source, int64_t now)
{
    enum ewtp_store_state st = m->state;
    bool set = ewtp_backoff_verdict_state(o->verdict, op, &st);
    if (o->verdict == EWTP_V_RETRY) {
        set = false;
        st = m->state;
    }
    if (o->verdict == EWTP_V_SUBMITTED &&
        (m->state == EWTP_STORE_SUBMITTED || op == EWTP_OP_CANCEL))
        set = false;
    if (o->verdict == EWTP_V_APPROVED && op == EWTP_OP_CANCEL)
        set = false; /* "cancel request received" is not a cancellation */
    if (o->verdict == EWTP_V_REJECTED && op == EWTP_OP_CANCEL)
        set = false; /* a refused cancellation leaves the message as it was */
    if (!set)
        st = m->state;
    struct ewtp_store_receipt rec = {.state = st,
                                     .code = o->code,
                                     .message = o->message,
                                     .raw = raw_len ? raw : NULL,
                                     .raw_len = raw_len,
                                     .at = now};
    json_t *det =
        json_pack("{s:s,s:s}", "source", source, "op", op == EWTP_OP_CANCEL ? "cancel" : "submit");
    explain_detail(det, o->code, o);
    char *detail = det ? json_dumps(det, JSON_COMPACT) : NULL;
    json_decref(det);
    /* As for a synchronous answer: a decision by receipt replaces the message's errors (a
     * callback rejection keeps the authority's code and the member at fault). */
    char *errs = NULL;
    if (set && st != m->state)
        errs = st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED || st == EWTP_STORE_CANCELLED
                   ? strdup("[]")
                   : one_error(o->pointer, o->code, o->message, o->cause);
    struct ewtp_store_receipt_rec r = {.key = m->key,
                                       .set_state = set,
                                       .state = st,
                                       .authority_ref = o->authority_ref,
                                       .receipt = &rec,
                                       .detail = detail,
                                       .now = now,
                                       .cancel_confirmed = op == EWTP_OP_CANCEL,
                                       .errors = errs,
                                       .webhook = ewtp_webhooks_wanted(j->gen, m->tenant)};
    int rc = ewtp_store_record_receipt(store_of(j), &r);
    free(detail);
    free(errs);
    if (rc < 0) {
        ewtpd_log(LOG_ERR, "%s/%s: cannot record a receipt: %s", m->tenant, m->id,
                  ewtp_strerror(rc));
        return;
    }
    bool changes =
        !ewtp_store_state_terminal(m->state) ||
        (op == EWTP_OP_CANCEL && st == EWTP_STORE_CANCELLED && m->state == EWTP_STORE_APPROVED);
    if (set && st != m->state && changes) {
        ewtpd_log(LOG_INFO, "%s/%s: %s receipt -> %s", m->tenant, m->id, source,
                  ewtp_store_state_name(st));
        hooks_kick(j);
    }
}

/* ---- building calls ----------------------------------------------------------------------- */

static void call_init(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m,
                      const struct ewtp_message *msg, enum ewtp_op op, int64_t now)
{
    ewtp_call_init(c, ewtp_gen_host(j->gen), j->arena, now, m->tenant,
                   j->gi ? j->gi->conf->name : NULL, msg, op, m->attempts);
    c->cancel_reason = j->reason;
    c->authority_ref = m->authority_ref;
}

/* Related messages of c (relation keys from classify), parsed into the job. Fails closed: a
 * negative code when the store or memory failed (the message is not translated without them). */
static int add_related(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    if (!PLUGIN_HAS(p, classify))
        return 0;
    struct ewtp_route_info ri = EWTP_ROUTE_INFO_INIT();
    p->classify(ewtp_instance_state(j->gi->inst), c, &ri);
    if (ri.n_relation_keys == 0 || ri.relation_keys == NULL)
        return 0;
    struct ewtp_store_msg *rel = NULL;
    size_t n = 0;
    int rc = ewtp_store_related(store_of(j), ri.relation_keys, ri.n_relation_keys, m->tenant, m->id,
                                &rel, &n);
    if (rc != 0)
        return rc;
    const struct ewtp_related **r = n ? ewtp_arena_alloc(j->arena, n * sizeof(*r)) : NULL;
    if (n && r == NULL) {
        ewtp_store_msgs_free(rel, n);
        return -EWTP_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; r && i < n; i++) {
        struct ewtp_message *rm = parse_stored(j, &rel[i]);
        struct ewtp_related *one = rm ? ewtp_arena_alloc(j->arena, sizeof(*one)) : NULL;
        if (one == NULL)
            continue;
        *one = (struct ewtp_related)
            EWTP_RELATED_INIT(.msg = rm, .tenant = ewtp_arena_strdup(j->arena, rel[i].tenant),
                              .state = ewtp_store_state_name(rel[i].state),
                              .authority_ref = ewtp_arena_strdup(j->arena, rel[i].authority_ref));
        r[k++] = one;
    }
    ewtp_store_msgs_free(rel, n);
    c->related = r;
    c->n_related = k;
    return 0;
}

static void read_auth(struct job *j)
{
    const struct ewtp_auth_conf *a = &j->gi->conf->auth;
    if (a->kind != EWTP_AUTH_BEARER_FILE || a->token_file == NULL)
        return;
    char *tok = NULL;
    size_t len = 0;
    if (ewtp_read_file(a->token_file, 8192, &tok, &len) != 0) {
        ewtpd_log(LOG_ERR, "instance %s: cannot read %s", j->gi->conf->name, a->token_file);
        return;
    }
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = '\0';
    j->auth_header = ewtp_asprintf("Bearer %s", tok);
    memset(tok, 0, len);
    free(tok);
}

/* ---- delivery: worker steps ---------------------------------------------------------------- */

static void interpret_done(void *arg);
static void send_next(struct job *j);

/* The plugin's byte limits (spec/plugin-abi.md) on what translate made: false when the job
 * is done here, split into smaller batches (j->split) or its message rejected. */
static bool fits_limits(struct job *j, const struct ewtp_out *out)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    const struct ewtp_document *const *docs = NULL;
    size_t nd = ewtp_out_documents(out, &docs);
    size_t *req_bytes = ewtp_arena_alloc(j->arena, (j->n_reqs + 1) * sizeof(size_t));
    size_t *doc_bytes = ewtp_arena_alloc(j->arena, (nd + 1) * sizeof(size_t));
    if (req_bytes == NULL || doc_bytes == NULL)
        return true; /* the authority will say it */
    size_t k = 0;
    for (size_t i = 0; i < j->n_reqs; i++)
        req_bytes[i] = j->reqs[i]->body_len;
    for (size_t i = 0; i < nd; i++) {
        /* A document that is a request's body (the submission envelope) counts as a request. */
        bool body = false;
        for (size_t r = 0; r < j->n_reqs && !body; r++)
            body = j->reqs[r]->body_doc && docs[i]->name &&
                   strcmp(j->reqs[r]->body_doc, docs[i]->name) == 0;
        if (!body)
            doc_bytes[k++] = docs[i]->len;
    }
    size_t pieces = 1, size = 0, limit = 0;
    const char *what = NULL;
    enum ewtp_batch_fit fit = ewtp_batch_fit(batch_of(p), j->n, req_bytes, j->n_reqs, doc_bytes, k,
                                             &pieces, &what, &size, &limit);
    if (fit == EWTP_BATCH_FITS)
        return true;
    if (fit == EWTP_BATCH_SPLIT) {
        j->split = pieces;
        return false;
    }
    char *text = ewtp_asprintf("the %s to the %s authority would be %zu bytes; plugin %s "
                               "accepts at most %zu bytes per %s",
                               what, p->country, size, p->name, limit, what);
    char *ej = one_error("", "size", text, NULL);
    record_local(j, &j->msgs[0], EWTP_V_REJECTED, "size", text, ej);
    free(ej);
    free(text);
    return false;
}

static void transport_start(struct job *j);

static void deliver_prepare(void *arg)
{
    struct job *j = arg;
    int64_t now = ewtpd_now_ms();
    j->started_us = ewtp_metrics_now_us();
    if (j->gi == NULL) {
        for (size_t i = 0; i < j->n; i++)
            record_local(j, &j->msgs[i], EWTP_V_RETRY, "no_instance",
                         "the plugin instance of this message is not in the configuration", NULL);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    j->arena = ewtp_arena_new();
    j->calls = calloc(j->n, sizeof(*j->calls));
    j->callp = calloc(j->n, sizeof(*j->callp));
    j->chain_number = calloc(j->n, sizeof(*j->chain_number));
    struct ewtp_errors *errs = ewtp_errors_new();
    if (!j->arena || !j->calls || !j->callp || !j->chain_number || !errs) {
        ewtp_errors_free(errs);
        for (size_t i = 0; i < j->n; i++)
            record_local(j, &j->msgs[i], EWTP_V_RETRY, "internal", "out of memory", NULL);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        const struct ewtp_store_msg *m = &j->msgs[i];
        struct ewtp_message *msg = parse_stored(j, m);
        if (msg == NULL) {
            /* Send nothing of a batch that cannot be built whole. */
            for (size_t k = 0; k < j->n; k++)
                record_local(j, &j->msgs[k], EWTP_V_RETRY, "unparsable",
                             "the stored message no longer parses with the loaded plugins", NULL);
            ewtp_errors_free(errs);
            return;
        }
        call_init(j, &j->calls[i], m, msg, EWTP_OP_SUBMIT, now);
        int rrc = add_related(j, &j->calls[i], m);
        if (rrc != 0) {
            /* Never translated without its related messages: again later. */
            for (size_t k = 0; k < j->n; k++)
                record_local(j, &j->msgs[k], EWTP_V_RETRY, "related",
                             "the related messages could not be read", NULL);
            ewtpd_log(LOG_ERR, "%s/%s: related messages not read: %s", m->tenant, m->id,
                      ewtp_strerror(rrc));
            ewtp_errors_free(errs);
            return;
        }
        if (m->needs_chain && m->ordering_key) {
            int64_t last = 0;
            char *ref = NULL;
            struct ewtp_chain *ch = ewtp_arena_alloc(j->arena, sizeof(*ch));
            int crc =
                ch ? ewtp_store_chain_get(store_of(j), m->ordering_key, &last, &ref) : -EWTP_ENOMEM;
            if (crc != 0) {
                /* Never sent without its number: the whole job again later. */
                ewtpd_log(LOG_ERR, "%s/%s: chain of %s not read: %s", m->tenant, m->id,
                          m->ordering_key, ewtp_strerror(crc));
                for (size_t k = 0; k < j->n; k++)
                    record_local(j, &j->msgs[k], EWTP_V_RETRY, "store",
                                 "the chain position could not be read", NULL);
                ewtp_errors_free(errs);
                return;
            }
            *ch = (struct ewtp_chain)EWTP_CHAIN_INIT(.number = (uint64_t)last + 1,
                                                     .prev_ref = ewtp_arena_strdup(j->arena, ref));
            j->calls[i].chain = ch;
            j->chain_number[i] = last + 1;
            free(ref);
        }
        if (m->ordering_key && p->abi_minor >= 2) {
            /* ABI 1.2: the state the plugin keeps for the key (a device's initialisation). */
            void *ks = NULL;
            size_t ks_len = 0;
            int krc = ewtp_store_key_state_get(store_of(j), m->ordering_key, &ks, &ks_len);
            if (krc != 0 && krc != -EWTP_ENOTFOUND) {
                ewtpd_log(LOG_ERR, "%s/%s: state of key %s not read: %s", m->tenant, m->id,
                          m->ordering_key, ewtp_strerror(krc));
                for (size_t k = 0; k < j->n; k++)
                    record_local(j, &j->msgs[k], EWTP_V_RETRY, "store",
                                 "the ordering key's state could not be read", NULL);
                ewtp_errors_free(errs);
                return;
            }
            if (krc == 0) {
                j->calls[i].key_state = ewtp_arena_memdup(j->arena, ks, ks_len);
                j->calls[i].key_state_len = j->calls[i].key_state ? ks_len : 0;
            }
            free(ks);
        }
        j->callp[i] = &j->calls[i];
    }
    struct ewtp_out *out = ewtp_out_new(j->arena);
    int rc = out ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && j->n > 1)
        rc = p->translate_batch(state, j->callp, j->n, out, errs);
    else if (rc == 0)
        rc = p->translate(state, &j->calls[0], out, errs);
    if (rc == 0 && ewtp_errors_blocking(errs) == 0) {
        j->n_reqs = ewtp_out_requests(out, &j->reqs);
        if (j->n_reqs == 0)
            rc = -EWTP_EINVAL;
    }
    if (j->n > 1 && ewtp_errors_blocking(errs) > 0) {
        /* translate_batch cannot say whose input it was: halve the batch until the message
         * is alone, so that one bad message does not take the others down with it. */
        ewtp_errors_free(errs);
        j->split = 2;
        return;
    }
    if (rc != 0 || ewtp_errors_blocking(errs) > 0) {
        bool input = ewtp_errors_blocking(errs) > 0;
        char *ej = input ? errors_array(errs) : NULL;
        for (size_t i = 0; i < j->n; i++)
            record_local(
                j, &j->msgs[i], input ? EWTP_V_REJECTED : EWTP_V_RETRY,
                input ? "translate" : "internal",
                input ? "the plugin cannot build the authority's document" : ewtp_strerror(rc), ej);
        free(ej);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    if (!fits_limits(j, out))
        return;
    transport_start(j);
}

/* Ends attempt op_attempt of a J_CANCEL job's operation (fenced by its lease in the store). */
static void op_end(struct job *j, enum ewtp_store_op_end end, int64_t next_at, const char *code,
                   const char *message, int64_t now)
{
    json_t *d = json_pack("{s:s,s:s?,s:s?}", "op", "cancel", "code", code, "message", message);
    char *det = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    int rc = ewtp_store_op_finish(store_of(j), j->op_id, j->op_attempt, end, next_at, det, now);
    free(det);
    if (rc != 0)
        ewtpd_log(rc == -EWTP_EINVAL ? LOG_INFO : LOG_ERR,
                  "%s/%s: cancel attempt %u not recorded: %s (the lease decides)",
                  j->msgs[0].tenant, j->msgs[0].id, j->op_attempt,
                  rc == -EWTP_EINVAL ? "its lease was lost" : ewtp_strerror(rc));
    else
        ewtpd_log(end == EWTP_STORE_OP_FAILED ? LOG_WARNING : LOG_INFO, "%s/%s: cancel %s%s%s",
                  j->msgs[0].tenant, j->msgs[0].id,
                  end == EWTP_STORE_OP_DONE    ? "answered"
                  : end == EWTP_STORE_OP_RETRY ? "to be sent again"
                                               : "given up",
                  code ? ": " : "", code ? code : "");
}

/* A transient failure of the cancel: again after the delivery policy's backoff, or given up
 * when its attempts or age are used up. */
static void op_retry(struct job *j, const char *code, const char *message, int64_t retry_after_ms,
                     int64_t now)
{
    struct ewtp_backoff_policy pol = policy(j);
    int64_t next = 0;
    bool dead = ewtp_backoff_decide(&pol, j->op_attempt, j->op_created, now, retry_after_ms,
                                    ewtp_rnd64(), &next) == EWTP_STORE_DEAD;
    op_end(j, dead ? EWTP_STORE_OP_FAILED : EWTP_STORE_OP_RETRY, next, code, message, now);
}

/* The reference the plugin knows before sending call k's message (ABI 1.4 reference); for an
 * older plugin, what its interpret says of an empty 200 answer, for one message alone. */
static const char *known_reference(struct job *j, size_t k)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    if (PLUGIN_HAS(p, reference))
        return p->reference(state, &j->calls[k]);
    if (j->n != 1)
        return NULL;
    struct ewtp_outcome pi = EWTP_OUTCOME_INIT();
    const struct ewtp_response sr = EWTP_RESPONSE_INIT(.status = 200);
    if (p->interpret(state, &j->calls[k], &sr, &pi) == 0 && pi.verdict == EWTP_V_SUBMITTED)
        return pi.authority_ref;
    return NULL;
}

/* Worker, J_DELIVER: the evidence of this attempt of message i (store.h, issue 18): each
 * request body exactly as sent (after signing) with its endpoint, and the answer with the
 * peer it came from (https: the server certificate's SHA-256; spool: the folder; amqp: the
 * exchange and routing key), into *a for the message's outcome (record_delivery), which
 * commits them in one transaction. Nothing (a->n == 0) when nothing was sent or memory ran
 * out; free with attempt_evidence_free(). */
static void attempt_evidence(struct job *j, size_t i, const struct ewtp_httpc_resp *tr, int64_t now,
                             struct attempt_evidence *a)
{
    memset(a, 0, sizeof(*a));
    if (j->kind != J_DELIVER || j->n_reqs == 0 || i >= j->n)
        return;
    const struct ewtp_instance_conf *ic = j->gi->conf;
    const char *kind = j->tp ? j->tp->name : "https";
    char *where = ic->transport == EWTP_TRANSPORT_SPOOL
                      ? ewtp_asprintf("spool:%s", ic->spool_out ? ic->spool_out : "")
                  : ic->transport == EWTP_TRANSPORT_AMQP
                      ? ewtp_asprintf("amqp:%s/%s", ic->amqp.exchange ? ic->amqp.exchange : "",
                                      ic->amqp.routing_key ? ic->amqp.routing_key : "")
                      : NULL;
    const char *peer = where ? where : tr && tr->peer ? tr->peer : NULL;
    size_t last = j->next_req < j->n_reqs ? j->next_req : j->n_reqs - 1;
    size_t cap = last + 2;
    a->e = calloc(cap, sizeof(*a->e));
    a->texts = calloc(2 * cap, sizeof(*a->texts));
    if (!a->e || !a->texts) {
        free(where);
        attempt_evidence_free(a);
        return;
    }
    uint32_t att = j->msgs[i].attempts;
    size_t k = 0;
    for (size_t r = 0; r <= last; r++, k++) {
        const struct ewtp_request *rq = j->reqs[r];
        const char *doc = rq->body_doc && rq->body_doc[0] ? rq->body_doc : "body";
        json_t *m = json_pack("{s:i,s:i,s:s,s:s,s:s?}", "attempt", (json_int_t)att, "request",
                              (json_int_t)r, "transport", kind, "method",
                              rq->method ? rq->method : "", "path", rq->path);
        if (m && ic->endpoint && ic->transport == EWTP_TRANSPORT_HTTPS)
            json_object_set_new(m, "endpoint", json_string(ic->endpoint));
        if (m && peer)
            json_object_set_new(m, "peer", json_string(peer));
        a->texts[2 * k] = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(m);
        a->texts[2 * k + 1] = ewtp_asprintf("attempt-%u/request-%zu-%s", (unsigned)att, r, doc);
        a->e[k] = (struct ewtp_store_evidence){.kind = "request",
                                               .name = a->texts[2 * k + 1],
                                               .meta = a->texts[2 * k],
                                               .body = rq->body,
                                               .body_len = rq->body_len,
                                               .at = now};
    }
    if (tr) {
        json_t *m = json_pack("{s:i,s:i,s:s,s:i,s:s?}", "attempt", (json_int_t)att, "request",
                              (json_int_t)last, "transport", kind, "status", (json_int_t)tr->status,
                              "transport_error", tr->error);
        if (m && peer)
            json_object_set_new(m, "peer", json_string(peer));
        a->texts[2 * k] = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(m);
        a->texts[2 * k + 1] = ewtp_asprintf("attempt-%u/answer", (unsigned)att);
        a->e[k] = (struct ewtp_store_evidence){.kind = "answer",
                                               .name = a->texts[2 * k + 1],
                                               .meta = a->texts[2 * k],
                                               .body = tr->body,
                                               .body_len = tr->body_len,
                                               .at = now};
        k++;
    }
    a->n = k;
    free(where);
    for (size_t t = 0; t < k; t++)
        if (a->e[t].name == NULL) { /* out of memory: the outcome goes without evidence */
            ewtpd_log(LOG_ERR, "%s/%s: out of memory keeping the evidence of attempt %u",
                      j->msgs[i].tenant, j->msgs[i].id, (unsigned)att);
            attempt_evidence_free(a);
            return;
        }
}

/* The end of a send on a transport that hands messages over (spool, amqp): submitted with
 * the reference the plugin knows, or retried with the transport's error. */
static void handed_over(struct job *j, int64_t now)
{
    const struct ewtp_httpc_resp *tr = j->resp;
    const struct ewtp_transport_ops *tp = j->tp;
    bool ok = tr->status >= 200 && tr->status < 300;
    const char *why = tr->error ? tr->error : "the transport failed";
    j->send = false;
    if (j->kind == J_CANCEL) {
        /* Sent; the authority's answer to the cancel comes back as a receipt. */
        if (ok)
            op_end(j, EWTP_STORE_OP_DONE, 0, tp->handed_code, tp->handed_message, now);
        else
            op_retry(j, tp->name, why, 0, now);
        return;
    }
    if (j->kind != J_DELIVER)
        return;
    for (size_t k = 0; k < j->n; k++) {
        struct ewtp_outcome o = EWTP_OUTCOME_INIT(.verdict = ok ? EWTP_V_SUBMITTED : EWTP_V_RETRY,
                                                  .code = ok ? tp->handed_code : tp->name,
                                                  .message = ok ? tp->handed_message : why);
        /* Receipts come back as files or queue messages and are correlated by the reference
         * the plugin names for the message (China: the CEB key). */
        if (ok)
            o.authority_ref = known_reference(j, k);
        struct attempt_evidence ev;
        attempt_evidence(j, k, tr, now, &ev);
        record_delivery(j, &j->msgs[k], &o, j->chain_number[k], NULL, (unsigned)j->next_req, NULL,
                        &ev, now);
        attempt_evidence_free(&ev);
    }
}

/* Every completion of a send, whatever the transport, ends here (on a worker): the answer is
 * interpreted (https) or the hand-over recorded (spool, amqp). */
static void complete(struct job *j)
{
    int64_t now = ewtpd_now_ms();
    if (!j->tp->answers) {
        handed_over(j, now);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    struct ewtp_httpc_resp *tr = j->resp;
    struct ewtp_response resp =
        EWTP_RESPONSE_INIT(.status = tr->status,
                           .headers = header_ptrs(j->arena, tr->headers, tr->n_headers),
                           .n_headers = tr->n_headers, .body = tr->body, .body_len = tr->body_len,
                           .request_index = (unsigned)j->next_req, .transport_error = tr->error);
    if (resp.headers == NULL)
        resp.n_headers = 0;
    struct ewtp_outcome **o = outcomes_new(j->arena, j->n);
    int rc = o ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && j->n > 1 && PLUGIN_HAS(p, interpret_batch))
        rc = p->interpret_batch(state, j->callp, j->n, &resp, o);
    else if (rc == 0)
        rc = p->interpret(state, &j->calls[0], &resp, o[0]);
    struct ewtp_outcome fail =
        EWTP_OUTCOME_INIT(.verdict = EWTP_V_RETRY, .code = "interpret",
                          .message = "the plugin could not read the authority's answer");
    j->send = false;
    if (j->kind == J_DELIVER) {
        for (size_t i = 0; i < j->n; i++) {
            struct attempt_evidence ev;
            attempt_evidence(j, i, tr, now, &ev);
            record_delivery(j, &j->msgs[i], rc == 0 ? o[i] : &fail, j->chain_number[i], tr,
                            (unsigned)j->next_req, NULL, &ev, now);
            attempt_evidence_free(&ev);
        }
        return;
    }
    const struct ewtp_outcome *oc = rc == 0 ? o[0] : &fail;
    if (j->kind == J_POLL) {
        /* Only answers that say something new are kept: a poll every interval that says
         * "still received" would bury the receipts. */
        if (oc->verdict != EWTP_V_SUBMITTED && oc->verdict != EWTP_V_RETRY)
            record_receipt(j, &j->msgs[0], oc, EWTP_OP_SUBMIT, tr->body, tr->body_len, "poll", now);
        return;
    }
    /* J_CANCEL: the answer is a receipt of the message; the operation ends with it. */
    if (oc->verdict != EWTP_V_RETRY) {
        record_receipt(j, &j->msgs[0], oc, EWTP_OP_CANCEL, tr->body, tr->body_len, "cancel", now);
        op_end(j, oc->verdict == EWTP_V_REJECTED ? EWTP_STORE_OP_FAILED : EWTP_STORE_OP_DONE, 0,
               oc->code, oc->message, now);
        return;
    }
    op_retry(j, oc->code, oc->message, oc->retry_after_ms, now);
}

static void interpret_step(void *arg)
{
    complete(arg);
}

/* ---- delivery: loop steps ------------------------------------------------------------------ */

static void job_end(struct job *j)
{
    struct ewtp_dispatcher *ds = j->ds;
    if (j->kind == J_DELIVER && ds->in_flight > 0)
        ds->in_flight--;
    bool kick = j->kind == J_DELIVER;
    job_free(j);
    if (kick && !ds->stopped)
        ewtp_dispatcher_kick(ds->d);
}

static void submit(struct job *j, ewtp_work_fn work, ewtp_work_fn done)
{
    if (ewtp_workers_submit(j->ds->d->workers, work, done, j) != 0) {
        ewtpd_log(LOG_ERR, "dispatcher: cannot queue work (shutting down?)");
        job_end(j);
    }
}

static void interpret_done(void *arg)
{
    job_end(arg);
}

static void token_refused(struct job *j);

static void on_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct job *j = arg;
    if (resp == NULL)
        resp = calloc(1, sizeof(*resp));
    if (resp == NULL) {
        job_end(j);
        return;
    }
    if (resp->status == 401)
        token_refused(j);
    if (resp->status >= 200 && resp->status < 300 && j->next_req + 1 < j->n_reqs) {
        ewtp_httpc_resp_free(resp);
        j->next_req++;
        send_next(j);
        return;
    }
    ewtp_httpc_resp_free(j->resp);
    j->resp = resp;
    submit(j, interpret_step, interpret_done);
}

static bool need_token(struct job *j);

static struct ewtp_transport_req transport_req(struct job *j)
{
    return (struct ewtp_transport_req){.ic = j->gi->conf,
                                       .req = j->reqs[j->next_req],
                                       .auth_header = j->auth_header,
                                       .timeout_ms = policy_conf(j)->request_timeout_ms,
                                       .arena = j->arena};
}

/* Loop: the next request on a transport that sends from the loop (https). */
static void send_next(struct job *j)
{
    if (need_token(j))
        return; /* sent once the token arrives */
    const struct ewtp_transport_env env = {.http = j->ds->tr, .amqp = j->ds->amqp};
    const struct ewtp_transport_req r = transport_req(j);
    j->tp->send(&env, &r, on_answer, j);
}

static void keep_resp(void *arg, struct ewtp_httpc_resp *resp)
{
    *(struct ewtp_httpc_resp **)arg = resp;
}

/* Worker: every request on a blocking transport (spool, amqp), in order, the next only after
 * a 2xx; then the same completion as an answer from the loop. */
static void send_blocking(struct job *j)
{
    const struct ewtp_transport_env env = {.http = NULL, .amqp = j->ds->amqp};
    struct ewtp_httpc_resp *resp = NULL;
    for (;;) {
        const struct ewtp_transport_req r = transport_req(j);
        resp = NULL;
        j->tp->send(&env, &r, keep_resp, &resp);
        if (resp == NULL || resp->status < 200 || resp->status >= 300 ||
            j->next_req + 1 >= j->n_reqs)
            break;
        ewtp_httpc_resp_free(resp);
        j->next_req++;
    }
    if (resp == NULL)
        resp = ewtp_transport_failure("out of memory");
    if (resp == NULL)
        return; /* the lease expires; sent again later */
    ewtp_httpc_resp_free(j->resp);
    j->resp = resp;
    complete(j);
}

/* Worker, after the job's requests are built: a blocking transport sends now; the others
 * from the loop once the worker step is done (prepared). */
static void transport_start(struct job *j)
{
    j->tp = ewtp_transport_of(j->gi->conf->transport);
    j->next_req = 0;
    if (j->tp->blocking) {
        send_blocking(j);
        return;
    }
    read_auth(j);
    j->send = true;
}

static void start_one(struct ewtp_dispatcher *ds, enum job_kind kind, struct ewtp_gen *gen,
                      struct ewtp_store_msg *msgs, size_t n);

/* A batch over the plugin's limits goes out as j->split smaller batches, each translated
 * again (the leases and attempt numbers stay). */
static void split_job(struct job *j)
{
    struct ewtp_dispatcher *ds = j->ds;
    ewtpd_log(LOG_INFO,
              "instance %s: a batch of %zu does not fit the plugin's limits or has a "
              "refused message: sent as %zu smaller batches",
              j->gi ? j->gi->conf->name : "?", j->n, j->split);
    for (size_t i = 0; i < j->split && !ds->stopped; i++) {
        size_t start = 0, len = ewtp_batch_piece(j->n, j->split, i, &start);
        struct ewtp_store_msg *group = len ? calloc(len, sizeof(*group)) : NULL;
        if (group == NULL)
            continue; /* those leases expire; sent again later */
        memcpy(group, &j->msgs[start], len * sizeof(*group));
        memset(&j->msgs[start], 0, len * sizeof(*group));
        start_one(ds, J_DELIVER, j->gen, group, len);
    }
}

static void prepared(void *arg)
{
    struct job *j = arg;
    if (j->split > 1) {
        split_job(j);
        job_end(j);
        return;
    }
    if (j->send && !j->ds->stopped) {
        send_next(j);
        return;
    }
    job_end(j);
}

/* ---- authority tokens (OAuth2 client credentials, JSON login) ------------------------------ */

#define TOKEN_MARGIN_MS 60000
#define TOKEN_DEFAULT_TTL_MS (10 * 60 * 1000)

static void token_free(struct token *t)
{
    free(t->instance);
    free(t->conf_id);
    if (t->value)
        memset(t->value, 0, strlen(t->value));
    free(t->value);
    free(t);
}

static char *form_escape(const char *v)
{
    size_t n = strlen(v);
    char *o = malloc(3 * n + 1), *p = o;
    for (size_t i = 0; o && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            *p++ = (char)c;
        else
            p += sprintf(p, "%%%02X", c);
    }
    if (o)
        *p = '\0';
    return o;
}

static void token_set(struct token *t, const char *value, int64_t life, const char *why);

static void token_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct token *t = arg;
    struct ewtp_dispatcher *ds = t->ds;
    t->fetching = false;
    const struct ewtp_gen_instance *gi = ewtp_gen_instance(ds->d->gen, t->instance);
    json_t *o = resp && resp->status >= 200 && resp->status < 300 && resp->body
                    ? json_loadb(resp->body, resp->body_len, 0, NULL)
                    : NULL;
    const char *value = NULL;
    if (o && gi && gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN) {
        const char *ptr =
            gi->conf->auth.token_json_pointer ? gi->conf->auth.token_json_pointer : "/token";
        json_t *v = o;
        char *copy = strdup(ptr), *save = NULL;
        for (char *seg = copy ? strtok_r(copy, "/", &save) : NULL; seg && v;
             seg = strtok_r(NULL, "/", &save))
            v = json_object_get(v, seg);
        free(copy);
        value = json_string_value(v);
    } else if (o) {
        value = json_string_value(json_object_get(o, "access_token"));
    }
    json_int_t ttl = o ? json_integer_value(json_object_get(o, "expires_in")) : 0;
    /* The reason ends up in the status of every message waiting for this token: it must
     * tell a wrong secret (the authority's 4xx) from an unreachable token endpoint. */
    char *why = NULL;
    if (value == NULL) {
        if (resp == NULL || resp->status == 0)
            why = ewtp_asprintf("authentication at the authority failed: token request to "
                                "%s: %s",
                                gi && gi->conf->auth.token_url ? gi->conf->auth.token_url
                                                               : "(no token_url)",
                                resp && resp->error ? resp->error : "no answer");
        else if (resp->status < 200 || resp->status >= 300)
            why = ewtp_asprintf("authentication at the authority failed: the token "
                                "endpoint answered HTTP %d (%s; check client_id and "
                                "secret_file)",
                                resp->status,
                                resp->status == 400 || resp->status == 401 || resp->status == 403
                                    ? "credentials refused"
                                    : "token endpoint unavailable");
        else
            why = ewtp_asprintf("authentication at the authority failed: no token in the "
                                "token endpoint's answer (%s)",
                                gi && gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN
                                    ? "check token_json_pointer"
                                    : "no access_token");
    }
    int64_t life = ttl > 0 && ttl < INT64_MAX / 1000 ? (int64_t)ttl * 1000 : 0;
    token_set(t, value, life, why);
    json_decref(o);
    ewtp_httpc_resp_free(resp);
    free(why);
}

/* Keeps the token value (NULL: none, why says so) valid for life_ms (0: the default) and
 * sends, or fails, every job waiting for it. */
static void token_set(struct token *t, const char *value, int64_t life, const char *why)
{
    t->fetching = false;
    if (t->value)
        memset(t->value, 0, strlen(t->value));
    free(t->value);
    t->value = value ? ewtp_asprintf("Bearer %s", value) : NULL;
    if (life <= 0)
        life = TOKEN_DEFAULT_TTL_MS;
    t->expires_at = ewtpd_now_ms() + life;
    /* A fixed margin would make a token that lives no longer than it (some authorities
     * give 30 or 60 s) look expired on arrival, and every request would log in again. */
    t->refresh_at = t->expires_at - (life / 4 < TOKEN_MARGIN_MS ? life / 4 : TOKEN_MARGIN_MS);
    if (t->value == NULL)
        ewtpd_log(LOG_ERR, "instance %s: %s", t->instance,
                  why ? why : "authentication at the authority failed");
    struct job *w = t->waiting;
    t->waiting = NULL;
    while (w) {
        struct job *next = w->auth_next;
        w->auth_next = NULL;
        if (t->value) {
            free(w->auth_header);
            w->auth_header = strdup(t->value);
            send_next(w);
        } else {
            struct ewtp_httpc_resp *fail = calloc(1, sizeof(*fail));
            if (fail)
                fail->error = strdup(why ? why : "authentication at the authority failed");
            on_answer(w, fail);
        }
        w = next;
    }
}

static void token_fetch(struct token *t, const struct ewtp_instance_conf *ic)
{
    const struct ewtp_auth_conf *a = &ic->auth;
    char *secret = NULL;
    size_t len = 0;
    if (a->secret_file && ewtp_read_file(a->secret_file, 8192, &secret, &len) == 0)
        while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
            secret[--len] = '\0';
    char *body = NULL;
    const char *ctype;
    if (a->kind == EWTP_AUTH_OAUTH2) {
        char *id = form_escape(a->client_id ? a->client_id : "");
        char *sec = form_escape(secret ? secret : "");
        char *scope = a->scope ? form_escape(a->scope) : NULL;
        body =
            id && sec
                ? ewtp_asprintf("grant_type=client_credentials&client_id=%s&client_secret=%s%s%s",
                                id, sec, scope ? "&scope=" : "", scope ? scope : "")
                : NULL;
        free(id);
        free(sec);
        free(scope);
        ctype = "application/x-www-form-urlencoded";
    } else {
        json_t *o = json_pack("{s:s,s:s}", "user", a->client_id ? a->client_id : "", "password",
                              secret ? secret : "");
        body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        ctype = "application/json";
    }
    if (secret)
        memset(secret, 0, len);
    free(secret);
    struct ewtp_header h[3] = {EWTP_HEADER_INIT(.name = "Content-Type", .value = ctype),
                               EWTP_HEADER_INIT(.name = "Accept", .value = "application/json"),
                               EWTP_HEADER_INIT(.name = "onbehalfof", .value = a->onbehalfof)};
    /* An intermediary's token represents one taxpayer (MyInvois [LOGIN]). */
    size_t nh = a->kind == EWTP_AUTH_OAUTH2 && a->onbehalfof ? 3 : 2;
    struct ewtp_httpc_tls tls = {ic->ca_file, NULL, NULL};
    ewtp_instance_client_pair(ic, ewtpd_now_ms(), &tls.client_cert, &tls.client_key);
    char *why = NULL;
    t->fetching = true;
    int rc = body ? ewtp_httpc_send(t->ds->tr, a->token_url ? a->token_url : "", "POST", h, nh,
                                    body, strlen(body), &tls, 30000, token_answer, t, &why)
                  : -EWTP_ENOMEM;
    if (body)
        memset(body, 0, strlen(body));
    free(body);
    if (rc != 0) {
        ewtpd_log(LOG_ERR, "instance %s: token request: %s", ic->name,
                  why ? why : ewtp_strerror(rc));
        free(why);
        token_answer(t, NULL);
    }
}

/* ---- the plugin's own login (ABI 1.3 login / login_answer) ---- */

/* True when the instance logs in through its plugin: the plugin has the hook and the
 * instance's auth is none or json_login (the plugin knows the authority's login body). */
static bool plugin_login(const struct ewtp_gen_instance *gi)
{
    const struct ewtp_plugin *p = gi->plugin;
    return PLUGIN_HAS(p, login) && PLUGIN_HAS(p, login_answer) &&
           (gi->conf->auth.kind == EWTP_AUTH_NONE || gi->conf->auth.kind == EWTP_AUTH_JSON_LOGIN);
}

static void login_call(struct job *l, struct ewtp_call *c)
{
    /* A login concerns no message: no tenant, no message, attempt 1. */
    ewtp_call_init(c, ewtp_gen_host(l->gen), l->arena, ewtpd_now_ms(), NULL,
                   l->gi ? l->gi->conf->name : NULL, NULL, EWTP_OP_SUBMIT, 0);
}

/* Worker: the plugin builds the login request (it may read secrets and sign). */
static void login_work(void *arg)
{
    struct job *l = arg;
    struct ewtp_call c;
    login_call(l, &c);
    struct ewtp_out *out = ewtp_out_new(l->arena);
    l->status =
        out ? l->gi->plugin->login(ewtp_instance_state(l->gi->inst), &c, out) : -EWTP_ENOMEM;
    if (l->status == 0) {
        l->n_reqs = ewtp_out_requests(out, &l->reqs);
        if (l->n_reqs == 0)
            l->status = -EWTP_EINVAL;
    }
}

/* Loop: the plugin reads the answer into the token. */
static void login_answer(void *arg, struct ewtp_httpc_resp *tr)
{
    struct job *l = arg;
    struct token *t = l->token;
    struct ewtp_call c;
    login_call(l, &c);
    struct ewtp_response resp =
        EWTP_RESPONSE_INIT(.status = tr ? tr->status : 0,
                           .headers = tr ? header_ptrs(l->arena, tr->headers, tr->n_headers) : NULL,
                           .n_headers = tr ? tr->n_headers : 0, .body = tr ? tr->body : NULL,
                           .body_len = tr ? tr->body_len : 0,
                           .transport_error = tr ? tr->error : "out of memory");
    if (resp.headers == NULL)
        resp.n_headers = 0;
    struct ewtp_token tok = EWTP_TOKEN_INIT();
    int rc = l->gi->plugin->login_answer(ewtp_instance_state(l->gi->inst), &c, &resp, &tok);
    const char *value = rc == 0 && tok.value && tok.value[0] ? tok.value : NULL;
    char *why = NULL;
    if (value == NULL)
        why = ewtp_asprintf("authentication at the authority failed: %s",
                            rc != 0     ? ewtp_strerror(rc)
                            : tok.error ? tok.error
                                        : "the login answer carries no token");
    token_set(t, value, tok.lifetime_ms, why);
    free(why);
    ewtp_httpc_resp_free(tr);
    job_free(l);
}

/* Loop: sends the login request the plugin built. */
static void login_built(void *arg)
{
    struct job *l = arg;
    struct ewtp_dispatcher *ds = l->ds;
    if (ds->stopped) {
        job_free(l);
        return;
    }
    const struct ewtp_instance_conf *ic = l->gi->conf;
    if (l->status != 0) {
        char *why = ewtp_asprintf(
            "authentication at the authority failed: the plugin cannot build its login (%s; "
            "check the instance's login settings and secret files)",
            ewtp_strerror(l->status));
        token_set(l->token, NULL, 0, why);
        free(why);
        job_free(l);
        return;
    }
    const struct ewtp_request *r = l->reqs[0];
    char *url = ic->auth.token_url ? strdup(ic->auth.token_url)
                                   : ewtp_httpc_join(ic->endpoint ? ic->endpoint : "", r->path);
    struct ewtp_header *h = calloc(r->n_headers + 1, sizeof(*h));
    char *why = NULL;
    int rc = -EWTP_ENOMEM;
    if (url && h) {
        for (size_t i = 0; i < r->n_headers; i++)
            ewtp_sized_copy(&h[i], sizeof(*h), r->headers[i]);
        struct ewtp_httpc_tls tls = {ic->ca_file, NULL, NULL};
        ewtp_instance_client_pair(ic, ewtpd_now_ms(), &tls.client_cert, &tls.client_key);
        rc = ewtp_httpc_send(ds->tr, url, r->method, h, r->n_headers, r->body, r->body_len, &tls,
                             30000, login_answer, l, &why);
    }
    free(h);
    free(url);
    if (rc != 0) {
        ewtpd_log(LOG_ERR, "instance %s: login request: %s", ic->name,
                  why ? why : ewtp_strerror(rc));
        struct ewtp_httpc_resp *fail = calloc(1, sizeof(*fail));
        if (fail)
            fail->error = why ? why : strdup(ewtp_strerror(rc));
        else
            free(why);
        login_answer(l, fail);
        return;
    }
    free(why);
}

static void login_start(struct token *t, struct job *j)
{
    struct job *l = job_new(t->ds, J_LOGIN);
    if (l == NULL || (l->arena = ewtp_arena_new()) == NULL) {
        if (l)
            job_free(l);
        token_set(t, NULL, 0, "authentication at the authority failed: out of memory");
        return;
    }
    l->gen = j->gen;
    ewtp_gen_ref(l->gen);
    l->gi = j->gi;
    l->token = t;
    t->fetching = true;
    if (ewtp_workers_submit(t->ds->d->workers, login_work, login_built, l) != 0) {
        job_free(l);
        token_set(t, NULL, 0, "authentication at the authority failed: cannot queue the login");
    }
}

/* What a token is fetched with (not the secret itself: its file), so that a reload that
 * changes the instance's client, scope or represented taxpayer fetches a new one. */
static char *token_conf_id(const struct ewtp_auth_conf *a)
{
    return ewtp_asprintf("%d\n%s\n%s\n%s\n%s\n%s", (int)a->kind, a->token_url ? a->token_url : "",
                         a->client_id ? a->client_id : "", a->secret_file ? a->secret_file : "",
                         a->scope ? a->scope : "", a->onbehalfof ? a->onbehalfof : "");
}

/* The authority refused j's token (401): the next request of the instance logs in again
 * rather than reusing it until it expires. */
static void token_refused(struct job *j)
{
    if (j->auth_header == NULL || j->gi == NULL)
        return;
    for (struct token *t = j->ds->tokens; t; t = t->next) {
        if (strcmp(t->instance, j->gi->conf->name) == 0 && t->value &&
            strcmp(t->value, j->auth_header) == 0) {
            ewtpd_log(LOG_WARNING, "instance %s: the authority refused the token; logging in again",
                      t->instance);
            t->expires_at = 0;
            t->refresh_at = 0;
        }
    }
}

/* True when j must wait for its instance's token (it is queued and sent later). */
static bool need_token(struct job *j)
{
    const struct ewtp_instance_conf *ic = j->gi->conf;
    bool by_plugin = plugin_login(j->gi);
    if (ic->auth.kind != EWTP_AUTH_OAUTH2 && ic->auth.kind != EWTP_AUTH_JSON_LOGIN && !by_plugin)
        return false;
    struct ewtp_dispatcher *ds = j->ds;
    struct token *t = ds->tokens;
    while (t && strcmp(t->instance, ic->name) != 0)
        t = t->next;
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || (t->instance = strdup(ic->name)) == NULL) {
            free(t);
            return false;
        }
        t->ds = ds;
        t->next = ds->tokens;
        ds->tokens = t;
    }
    char *id = token_conf_id(&ic->auth);
    if (id && (t->conf_id == NULL || strcmp(t->conf_id, id) != 0)) {
        free(t->conf_id);
        t->conf_id = id;
        t->expires_at = 0; /* fetched with another configuration */
        t->refresh_at = 0;
        id = NULL;
    }
    free(id);
    /* Refreshed before it expires, so that no request goes out with a dying token. */
    if (t->value && ewtpd_now_ms() < t->refresh_at) {
        if (j->auth_header == NULL || strcmp(j->auth_header, t->value) != 0) {
            free(j->auth_header);
            j->auth_header = strdup(t->value);
        }
        return false;
    }
    j->auth_next = t->waiting;
    t->waiting = j;
    if (!t->fetching) {
        if (by_plugin)
            login_start(t, j);
        else
            token_fetch(t, ic);
    }
    return true;
}

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
        enum ewtp_store_wait w = ewtp_store_wait_decide(store_of(j), &m, now, &cause);
        if (w == EWTP_STORE_WAIT_READY) {
            j->msgs[kept++] = m;
            continue;
        }
        if (w == EWTP_STORE_WAIT_PENDING)
            record_local(j, &m, EWTP_V_RETRY, "waiting",
                         "still waiting for the message this one depends on", NULL);
        else
            record_local(j, &m, EWTP_V_REJECTED,
                         w == EWTP_STORE_WAIT_FAILED ? "dependency_failed" : "wait_timeout",
                         cause ? cause : "the message this one depends on did not arrive", NULL);
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
    const struct ewtp_delivery_conf *c = policy_conf(j);
    /* Only the worker whose compare-exchange moves the deadline requeues: the others would
     * repeat the same scan of the store. Relaxed: the store orders its own writes. */
    int64_t due = atomic_load_explicit(&ds->next_requeue, memory_order_relaxed);
    if (now >= due && atomic_compare_exchange_strong_explicit(
                          &ds->next_requeue, &due, now + (c->lease_ms > 4 ? c->lease_ms / 4 : 1),
                          memory_order_relaxed, memory_order_relaxed)) {
        size_t n = 0;
        int qrc = ewtp_store_requeue_expired(store_of(j), now, &n);
        if (qrc != 0)
            ewtpd_log(LOG_ERR, "cannot return expired leases to the queue: %s", ewtp_strerror(qrc));
        if (n)
            ewtpd_log(LOG_WARNING, "%zu deliveries with an expired lease returned to the queue", n);
    }
    int rc;
    if (j->kind == J_CLAIM)
        rc = ewtp_store_claim_due(store_of(j), now, j->n, c->lease_ms, ds->owner, &j->msgs, &j->n);
    else
        rc = ewtp_store_claim_poll(store_of(j), now, j->n, now + c->poll_interval_ms, &j->msgs,
                                   &j->n);
    if (rc != 0) {
        j->msgs = NULL;
        j->n = 0;
        ewtpd_log(LOG_ERR, "dispatcher: claim failed: %s", ewtp_strerror(rc));
    } else if (j->kind == J_CLAIM) {
        resolve_waits(j, now);
    }
    /* Operations on messages (cancels) are claimed with the deliveries, a few at a time. */
    if (j->kind == J_CLAIM && ewtp_store_op_claim(store_of(j), now, OP_CLAIM_MAX, c->lease_ms,
                                                  ds->owner, &j->ops, &j->n_ops) != 0) {
        j->ops = NULL;
        j->n_ops = 0;
    }
}

static void start_one(struct ewtp_dispatcher *ds, enum job_kind kind, struct ewtp_gen *gen,
                      struct ewtp_store_msg *msgs, size_t n)
{
    struct job *j = job_new(ds, kind);
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
    submit(j, deliver_prepare, prepared);
}

static void poll_prepare(void *arg)
{
    struct job *j = arg;
    const struct ewtp_store_msg *m = &j->msgs[0];
    if (j->gi == NULL || !PLUGIN_HAS(j->gi->plugin, poll) || m->authority_ref == NULL) {
        if (j->gi && !PLUGIN_HAS(j->gi->plugin, poll)) {
            int prc = ewtp_store_poll_schedule(store_of(j), m->key, -1);
            if (prc != 0 && prc != -EWTP_EINVAL)
                ewtpd_log(LOG_ERR, "%s/%s: cannot stop its polls: %s", m->tenant, m->id,
                          ewtp_strerror(prc));
        }
        return;
    }
    j->arena = ewtp_arena_new();
    j->calls = calloc(1, sizeof(*j->calls));
    j->callp = calloc(1, sizeof(*j->callp));
    struct ewtp_message *msg = j->arena && j->calls && j->callp ? parse_stored(j, m) : NULL;
    if (msg == NULL)
        return;
    call_init(j, &j->calls[0], m, msg, EWTP_OP_SUBMIT, ewtpd_now_ms());
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
    transport_start(j);
}

static bool batchable(const struct ewtp_gen_instance *gi, const struct ewtp_store_msg *a,
                      const struct ewtp_store_msg *b)
{
    return gi && batch_max_documents(gi->plugin) > 1 && PLUGIN_HAS(gi->plugin, translate_batch) &&
           a->batch_key && b->batch_key && strcmp(a->batch_key, b->batch_key) == 0 &&
           strcmp(a->plugin, b->plugin) == 0 && !a->needs_chain && !b->needs_chain;
}

/* ---- batches held for their plugin's maximum wait (batch.h) ------------------------------ */

static bool holdable(const struct ewtp_gen_instance *gi, const struct ewtp_store_msg *m)
{
    return gi && batch_max_documents(gi->plugin) > 1 && PLUGIN_HAS(gi->plugin, translate_batch) &&
           m->batch_key && !m->needs_chain;
}

static void held_free(struct held *h)
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
    size_t max = gi ? ewtp_batch_max(batch_of(gi->plugin)) : 1;
    for (size_t i = 0; i < h->n && !ds->stopped;) {
        size_t len = h->n - i < max ? h->n - i : max;
        struct ewtp_store_msg *group = calloc(len, sizeof(*group));
        if (group) {
            memcpy(group, &h->msgs[i], len * sizeof(*group));
            memset(&h->msgs[i], 0, len * sizeof(*group));
            start_one(ds, J_DELIVER, gen, group, len);
        }
        i += len;
    }
    ewtp_gen_unref(gen);
    held_free(h);
}

static void on_held_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    held_flush(arg);
}

/* Moves *m into the batch held for its (instance, batch key); sends the batch when it is full
 * or has no time left to wait. */
static void hold(struct ewtp_dispatcher *ds, const struct ewtp_gen_instance *gi,
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
                start_one(ds, J_DELIVER, ds->d->gen, one, 1);
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
    int64_t wait = ewtp_batch_wait(batch_of(gi->plugin), h->n, h->since, now, lease_ms);
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

static void start_cancel(struct ewtp_dispatcher *ds, struct ewtp_gen *gen,
                         struct ewtp_store_op *op);

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
        job_free(j);
        return;
    }
    for (size_t i = 0; i < j->n_ops; i++)
        start_cancel(ds, j->gen, &j->ops[i]);
    /* Each message moves into a job of its own (or of its batch). */
    bool *used = n ? calloc(n, sizeof(*used)) : NULL;
    for (size_t i = 0; used && i < n; i++) {
        if (used[i])
            continue;
        used[i] = true;
        const struct ewtp_gen_instance *gi = ewtp_gen_instance(j->gen, msgs[i].plugin);
        if (!polls && holdable(gi, &msgs[i])) {
            hold(ds, gi, &msgs[i], policy_conf(j)->lease_ms);
            continue;
        }
        size_t cnt = 1;
        size_t max = gi && batch_max_documents(gi->plugin) ? batch_max_documents(gi->plugin) : 1;
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
            struct job *pj = job_new(ds, J_POLL);
            if (pj == NULL) {
                ewtp_store_msgs_free(group, g);
                continue;
            }
            ewtp_gen_ref(j->gen);
            pj->gen = j->gen;
            pj->msgs = group;
            pj->n = g;
            pj->gi = gi;
            submit(pj, poll_prepare, prepared);
        } else {
            start_one(ds, J_DELIVER, j->gen, group, g);
        }
    }
    if (used == NULL)
        ewtp_store_msgs_free(msgs, n);
    else
        ewtp_store_msgs_free(msgs, n); /* what is left are zeroed husks */
    free(used);
    job_free(j);
}

static void claim(struct ewtp_dispatcher *ds, enum job_kind kind)
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
    struct job *j = job_new(ds, kind);
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
        job_free(j);
    }
}

/* ---- inbound ------------------------------------------------------------------------------- */

/* Finds the message an inbound item concerns (issue 19): by the document's own id first (ABI
 * 1.7, unique per tenant and message), then by message id, then by authority reference, always
 * among this instance's messages, and never by guessing between tenants: a message id or a
 * reference that messages of two tenants hold finds nothing (the store refuses such a
 * reference; here a message id found for a second tenant). */
static int correlate(struct job *j, const struct ewtp_correlation *to, struct ewtp_store_msg **m)
{
    struct ewtp_store *st = store_of(j);
    const char *inst = j->gi->conf->name;
    *m = NULL;
    const char *doc = EWTP_HAS(to, struct ewtp_correlation, document_id) ? to->document_id : NULL;
    if (doc && doc[0]) {
        char *ref = ewtp_asprintf("doc:%s", doc);
        int rc = ref ? ewtp_store_find_by_authority_ref(st, inst, ref, m) : -EWTP_ENOMEM;
        free(ref);
        if (rc == 0)
            return 0;
    }
    if (to->message_id && to->tenant && ewtp_store_get(st, to->tenant, to->message_id, m) == 0) {
        if (strcmp((*m)->plugin, inst) == 0)
            return 0;
        ewtp_store_msgs_free(*m, 1);
        *m = NULL;
    }
    if (to->message_id && to->tenant == NULL) {
        const struct ewtp_config *c = ewtp_gen_config(j->gen);
        struct ewtp_store_msg *found = NULL;
        bool several = false;
        for (size_t i = 0; i < c->n_tenants && !several; i++) {
            struct ewtp_store_msg *x = NULL;
            if (ewtp_store_get(st, c->tenants[i].id, to->message_id, &x) != 0)
                continue;
            if (strcmp(x->plugin, inst) != 0) {
                ewtp_store_msgs_free(x, 1);
            } else if (found) {
                several = true;
                ewtp_store_msgs_free(x, 1);
            } else {
                found = x;
            }
        }
        if (found && !several) {
            *m = found;
            return 0;
        }
        if (found)
            ewtp_store_msgs_free(found, 1);
    }
    if (to->authority_ref && ewtp_store_find_by_authority_ref(st, inst, to->authority_ref, m) == 0)
        return 0;
    *m = NULL;
    return -EWTP_ENOTFOUND;
}

/* One inbound item through receive: the job's answer (result(); j->res_id when OK). */
static enum ewtp_dispatch_result inbound_one(struct job *j, const char *source, const char *name,
                                             const struct ewtp_header *h, size_t nh,
                                             const void *data, size_t len)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    free(j->res_id);
    j->res_id = NULL;
    if (!PLUGIN_HAS(p, receive))
        return result(j, EWTP_DISPATCH_UNSUPPORTED, "plugin %s takes no inbound receipts", p->name);
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return result(j, EWTP_DISPATCH_FAILED, "out of memory");
    int64_t now = ewtpd_now_ms();
    struct ewtp_inbound in = {.size = sizeof(in),
                              .source = source,
                              .name = name,
                              .headers = header_ptrs(a, h, nh),
                              .n_headers = nh,
                              .body = data,
                              .body_len = len,
                              .now_ms = now,
                              .arena = a,
                              .host = ewtp_gen_host(j->gen)};
    if (in.headers == NULL)
        in.n_headers = 0;
    struct ewtp_correlation to = EWTP_CORRELATION_INIT();
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    int rc = p->receive(ewtp_instance_state(j->gi->inst), &in, &to, &o);
    struct ewtp_store_msg *m = NULL;
    enum ewtp_dispatch_result res;
    if (rc != 0) {
        res = result(j, EWTP_DISPATCH_UNRECOGNISED, "plugin %s does not recognise this item",
                     p->name);
    } else if (correlate(j, &to, &m) != 0) {
        res = result(j, EWTP_DISPATCH_NOT_FOUND, "no message matches %s %s",
                     to.message_id ? "id" : "authority reference",
                     to.message_id ? to.message_id
                                   : (to.authority_ref ? to.authority_ref : "(none)"));
    } else {
        /* A cancellation confirmed by a receipt file (China's 624) ends the message as a
         * cancel answer would. */
        record_receipt(j, m, &o, o.verdict == EWTP_V_CANCELLED ? EWTP_OP_CANCEL : EWTP_OP_SUBMIT,
                       data, len, source, now);
        j->res_id = strdup(m->id);
        res = j->res_id ? result(j, EWTP_DISPATCH_OK, NULL)
                        : result(j, EWTP_DISPATCH_FAILED, "out of memory");
        ewtp_store_msgs_free(m, 1);
    }
    ewtp_arena_free(a);
    return res;
}

static void inbound_work(void *arg)
{
    struct job *j = arg;
    if (j->gi == NULL) {
        result(j, EWTP_DISPATCH_NOT_FOUND, "no plugin instance %s", j->instance);
        return;
    }
    inbound_one(j, "http", j->instance, j->hdrs, j->n_hdrs, j->data, j->len);
}

static void reply_done(void *arg)
{
    struct job *j = arg;
    if (j->reply) {
        const struct ewtp_dispatch_reply r = {.result = j->res,
                                              .message = j->res_text,
                                              .errors = j->res_errs,
                                              .id = j->res_id,
                                              .state = j->res_state};
        j->reply(j->reply_arg, &r);
        j->reply = NULL;
    }
    /* A cancel on disk: the dispatcher claims it now (or once the authority has the message). */
    if (j->kind == J_CANCELREQ && j->res == EWTP_DISPATCH_OK && !j->ds->stopped)
        ewtp_dispatcher_kick(j->ds->d);
    job_end(j);
}

/* Answers an API request at once with res and a sentence. */
static void reply_now(ewtpd_reply_fn reply, void *arg, enum ewtp_dispatch_result res,
                      const char *message)
{
    const struct ewtp_dispatch_reply r = {.result = res, .message = message};
    reply(arg, &r);
}

void ewtp_dispatcher_webhook_counts(struct ewtpd *d, uint64_t *delivered, uint64_t *failed)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    *delivered = ds && ds->wh ? ewtp_webhooks_delivered(ds->wh) : 0;
    *failed = ds && ds->wh ? ewtp_webhooks_failed(ds->wh) : 0;
}

/* A job that answers an API request through reply, holding the current generation; NULL
 * (after answering 503) when the dispatcher is not running. */
static struct job *reply_job(struct ewtpd *d, enum job_kind kind, ewtpd_reply_fn reply, void *arg)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    struct job *j = ds && !ds->stopped ? job_new(ds, kind) : NULL;
    if (j == NULL) {
        reply_now(reply, arg, EWTP_DISPATCH_UNAVAILABLE, "the dispatcher is not running");
        return NULL;
    }
    j->reply = reply;
    j->reply_arg = arg;
    j->res = EWTP_DISPATCH_FAILED; /* until the work says otherwise */
    j->gen = ewtpd_gen_acquire(d);
    return j;
}

/* Queues work for a reply_job; answers 503 instead when the job could not be filled in
 * (!filled: out of memory) or queued. */
static void reply_submit(struct ewtpd *d, struct job *j, bool filled, ewtp_work_fn work)
{
    ewtpd_reply_fn reply = j->reply;
    void *arg = j->reply_arg;
    if (!filled) {
        job_free(j);
        reply_now(reply, arg, EWTP_DISPATCH_FAILED, "out of memory");
    } else if (ewtp_workers_submit(d->workers, work, reply_done, j) != 0) {
        job_free(j);
        reply_now(reply, arg, EWTP_DISPATCH_UNAVAILABLE, "shutting down");
    }
}

/* A NUL-terminated copy of len bytes: plugins get NUL-terminated bodies, whatever the
 * transport. */
static char *copy_nul(const void *p, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        if (len)
            memcpy(c, p, len);
        c[len] = '\0';
    }
    return c;
}

void ewtp_dispatcher_inbound(struct ewtpd *d, const char *instance,
                             const struct ewtp_header *headers, size_t n_headers, const void *body,
                             size_t len, ewtpd_reply_fn reply, void *arg)
{
    struct job *j = reply_job(d, J_INBOUND, reply, arg);
    if (j == NULL)
        return;
    j->gi = ewtp_gen_instance(j->gen, instance);
    j->instance = strdup(instance);
    j->hdrs = n_headers ? calloc(n_headers, sizeof(*j->hdrs)) : NULL;
    for (size_t i = 0; j->hdrs && i < n_headers; i++) {
        j->hdrs[i].name = strdup(headers[i].name ? headers[i].name : "");
        j->hdrs[i].value = strdup(headers[i].value ? headers[i].value : "");
        j->hdrs[i].secret = headers[i].secret;
        j->n_hdrs++;
    }
    j->data = copy_nul(body, len);
    if (j->data)
        j->len = len;
    reply_submit(d, j, j->instance && j->data && (!n_headers || j->hdrs), inbound_work);
}

/* Spool in-folders: every file is one inbound item; handled ones go to done/, items no
 * plugin recognises (or unmatched for too long) to failed/. The folder is shared with the
 * other side: everything is relative to the directory opened once, a planted link is moved
 * (never followed) and the subfolders are opened without following links. */
static void spool_move(int dfd, const char *dir, const char *sub, const char *name)
{
    mkdirat(dfd, sub, 0750);
    int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0 || renameat(dfd, name, sfd, name) != 0)
        ewtpd_log(LOG_ERR, "spool: cannot move %s/%s to %s/: %s", dir, name, sub, strerror(errno));
    if (sfd >= 0)
        close(sfd);
}

static void spool_work(void *arg)
{
    struct job *j = arg;
    size_t ni = ewtp_gen_instance_count(j->gen);
    for (size_t i = 0; i < ni; i++) {
        j->gi = ewtp_gen_instance_at(j->gen, i);
        const char *dir = j->gi->conf->spool_in;
        DIR *dh = dir ? opendir(dir) : NULL;
        if (dh == NULL)
            continue;
        int dfd = dirfd(dh);
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            struct stat sb;
            if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                S_ISDIR(sb.st_mode))
                continue; /* done/, failed/ and the other side's hidden temporaries */
            char *data = NULL;
            size_t len = 0;
            const char *why = NULL;
            enum ewtp_dispatch_result res;
            if (ewtp_spool_read(dfd, e->d_name, INBOUND_MAX_BYTES, &data, &len, &sb, &why) == 0)
                res = inbound_one(j, "spool", e->d_name, NULL, 0, data, len);
            else
                res = result(j, EWTP_DISPATCH_UNRECOGNISED, "refused: %s (at most %d bytes)", why,
                             INBOUND_MAX_BYTES);
            int64_t age = ewtpd_now_ms() - (int64_t)sb.st_mtime * 1000;
            if (res == EWTP_DISPATCH_OK)
                spool_move(dfd, dir, "done", e->d_name);
            else if (res == EWTP_DISPATCH_UNSUPPORTED || res == EWTP_DISPATCH_UNRECOGNISED ||
                     (res == EWTP_DISPATCH_NOT_FOUND && age > SPOOL_UNMATCHED_KEEP_MS)) {
                ewtpd_log(LOG_WARNING, "spool %s: %s: %s", dir, e->d_name,
                          j->res_text ? j->res_text : "");
                spool_move(dfd, dir, "failed", e->d_name);
            }
            free(data);
        }
        closedir(dh);
    }
    j->gi = NULL;
}

static void spool_done(void *arg)
{
    struct job *j = arg;
    j->ds->spooling = false;
    job_end(j);
}

/* Starts an inbound scan (spool folders, AMQP queues) on the workers; *busy stays set until
 * its done clears it. */
static void scan_start(struct ewtp_dispatcher *ds, ewtp_work_fn work, ewtp_work_fn done, bool *busy)
{
    struct job *j = job_new(ds, J_SPOOL);
    if (j == NULL)
        return;
    j->gen = ewtpd_gen_acquire(ds->d);
    *busy = true;
    if (ewtp_workers_submit(ds->d->workers, work, done, j) != 0) {
        *busy = false;
        job_free(j);
    }
}

static void spool_scan(struct ewtp_dispatcher *ds)
{
    if (ds->spooling)
        return;
    struct ewtp_gen *g = ds->d->gen;
    bool any = false;
    for (size_t i = 0; i < ewtp_gen_instance_count(g) && !any; i++)
        any = ewtp_gen_instance_at(g, i)->conf->spool_in != NULL;
    if (any)
        scan_start(ds, spool_work, spool_done, &ds->spooling);
}

/* AMQP receipt queues: each message is one inbound item, acked once recorded. One that
 * matches no message yet goes back to the tail of its queue (the receipt may overtake the
 * record of its submission) for as long as a spool file would wait; then, like one no
 * plugin recognises, it is rejected (dead-lettered when the queue has a dead-letter
 * exchange). */
#define AMQP_FETCH_MAX 64

static enum ewtp_amqp_disposition amqp_receipt(void *arg, const struct ewtp_amqp_delivery *d)
{
    struct job *j = arg;
    const char *queue = j->gi->conf->amqp.receipt_queue;
    char *data = copy_nul(d->body, d->len);
    if (data == NULL)
        return EWTP_AMQP_LATER;
    enum ewtp_dispatch_result res =
        inbound_one(j, "amqp", d->message_id ? d->message_id : queue, NULL, 0, data, d->len);
    free(data);
    enum ewtp_amqp_disposition disp = EWTP_AMQP_ACK;
    if (res == EWTP_DISPATCH_NOT_FOUND &&
        ewtpd_now_ms() - d->first_seen_ms <= SPOOL_UNMATCHED_KEEP_MS)
        disp = EWTP_AMQP_LATER;
    else if (res == EWTP_DISPATCH_FAILED || res == EWTP_DISPATCH_UNAVAILABLE)
        disp = EWTP_AMQP_LATER;
    else if (res != EWTP_DISPATCH_OK) {
        ewtpd_log(LOG_WARNING, "amqp %s: queue %s: message %s rejected: %s", j->gi->conf->name,
                  queue, d->message_id ? d->message_id : "(no id)", j->res_text ? j->res_text : "");
        disp = EWTP_AMQP_REJECT;
    }
    return disp;
}

static void amqp_work(void *arg)
{
    struct job *j = arg;
    size_t ni = ewtp_gen_instance_count(j->gen);
    for (size_t i = 0; i < ni; i++) {
        j->gi = ewtp_gen_instance_at(j->gen, i);
        const struct ewtp_instance_conf *ic = j->gi->conf;
        if (ic->transport != EWTP_TRANSPORT_AMQP || ic->amqp.receipt_queue == NULL)
            continue;
        size_t n = 0;
        char *why = NULL;
        /* Not logged here: the pool logs each outage once, and this runs every scan. */
        ewtp_amqp_fetch(j->ds->amqp, ic, AMQP_FETCH_MAX, policy_conf(j)->request_timeout_ms,
                        amqp_receipt, j, &n, &why);
        free(why);
    }
    j->gi = NULL;
}

static void amqp_done(void *arg)
{
    struct job *j = arg;
    j->ds->amqp_fetching = false;
    job_end(j);
}

static void amqp_scan(struct ewtp_dispatcher *ds)
{
    if (ds->amqp_fetching || ds->amqp == NULL)
        return;
    struct ewtp_gen *g = ds->d->gen;
    bool any = false;
    for (size_t i = 0; i < ewtp_gen_instance_count(g) && !any; i++) {
        const struct ewtp_instance_conf *ic = ewtp_gen_instance_at(g, i)->conf;
        any = ic->transport == EWTP_TRANSPORT_AMQP && ic->amqp.receipt_queue != NULL;
    }
    if (any)
        scan_start(ds, amqp_work, amqp_done, &ds->amqp_fetching);
}

/* ---- evidence retention -------------------------------------------------------------------- */

/* Worker: deletes the evidence older than evidence.retention_days (issue 18). */
static void evidence_purge_work(void *arg)
{
    struct job *j = arg;
    const struct ewtp_config *cfg = ewtp_gen_config(j->gen);
    int64_t now = ewtpd_now_ms();
    int64_t before = now - cfg->evidence.retention_days * 86400000;
    uint64_t n = 0;
    int rc = ewtp_store_evidence_purge(store_of(j), before, &n);
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
    job_end(j);
}

/* Loop, every scan: the purge at most once an hour. */
static void evidence_purge(struct ewtp_dispatcher *ds)
{
    int64_t now = ewtpd_now_ms();
    if (ds->evidence_purging || now < ds->next_evidence_purge)
        return;
    ds->next_evidence_purge = now + 3600000;
    scan_start(ds, evidence_purge_work, evidence_purge_done, &ds->evidence_purging);
}

/* ---- cancel -------------------------------------------------------------------------------- */

/* Builds the cancel of j->msgs[0] (op CANCEL call, validate, translate) into j. 0 with the
 * requests in j->reqs; input problems in errs; a negative code otherwise. */
static int cancel_build(struct job *j, int64_t now, struct ewtp_errors *errs)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    j->arena = ewtp_arena_new();
    j->calls = calloc(1, sizeof(*j->calls));
    j->callp = calloc(1, sizeof(*j->callp));
    if (!j->arena || !j->calls || !j->callp)
        return -EWTP_ENOMEM;
    struct ewtp_message *msg = parse_stored(j, &j->msgs[0]);
    if (msg == NULL)
        return -EWTP_EFORMAT;
    call_init(j, &j->calls[0], &j->msgs[0], msg, EWTP_OP_CANCEL, now);
    j->callp[0] = &j->calls[0];
    const void *state = ewtp_instance_state(j->gi->inst);
    p->validate(state, &j->calls[0], errs);
    if (ewtp_errors_blocking(errs) > 0)
        return 0;
    struct ewtp_out *out = ewtp_out_new(j->arena);
    int rc = out ? p->translate(state, &j->calls[0], out, errs) : -EWTP_ENOMEM;
    if (rc == 0 && ewtp_errors_blocking(errs) == 0 &&
        (j->n_reqs = ewtp_out_requests(out, &j->reqs)) == 0)
        rc = -EWTP_EINVAL;
    return rc;
}

/* POST /v1/messages/{id}/cancel (worker): checks what can be checked now, then records the
 * cancel in the store before answering 202, so that the promise survives a crash; the
 * dispatcher sends it once the authority has the message (cancel_prepare). */
static void cancel_work(void *arg)
{
    struct job *j = arg;
    struct ewtp_store_msg *m = NULL;
    int rc = ewtp_store_get(store_of(j), j->tenant, j->id, &m);
    if (rc != 0) {
        if (rc == -EWTP_ENOTFOUND)
            result(j, EWTP_DISPATCH_NOT_FOUND, "no such message");
        else
            result(j, EWTP_DISPATCH_FAILED, "%s", ewtp_strerror(rc));
        return;
    }
    j->msgs = m;
    j->n = 1;
    j->gi = ewtp_gen_instance(j->gen, m->plugin);
    if (j->gi == NULL) {
        result(j, EWTP_DISPATCH_CONFLICT, "plugin instance %s is not configured now", m->plugin);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    if (!(p->ops & EWTP_OP_BIT(EWTP_OP_CANCEL))) {
        result(j, EWTP_DISPATCH_CONFLICT,
               "the %s authority takes no cancellation through plugin %s", p->country, p->name);
        return;
    }
    if (m->state == EWTP_STORE_REJECTED || m->state == EWTP_STORE_CANCELLED) {
        result(j, EWTP_DISPATCH_CONFLICT, "the message is %s: there is nothing to cancel",
               ewtp_store_state_name(m->state));
        return;
    }
    int64_t now = ewtpd_now_ms();
    /* A message the authority has gets its cancel built now, so that one the plugin refuses
     * (a closed window, a missing reference) is answered here rather than failing later. */
    if ((m->state == EWTP_STORE_SUBMITTED || m->state == EWTP_STORE_APPROVED) && m->authority_ref) {
        struct ewtp_errors *errs = ewtp_errors_new();
        rc = errs ? cancel_build(j, now, errs) : -EWTP_ENOMEM;
        if (rc != 0 || ewtp_errors_blocking(errs) > 0) {
            if (errs && ewtp_errors_count(errs)) {
                result(j, EWTP_DISPATCH_CONFLICT, "the plugin refuses this cancel");
                j->res_errs = errs;
                return;
            }
            if (rc == -EWTP_EINVAL)
                result(j, EWTP_DISPATCH_CONFLICT, "the plugin cannot build a cancel request");
            else
                result(j, EWTP_DISPATCH_FAILED, "%s", ewtp_strerror(rc));
            ewtp_errors_free(errs);
            return;
        }
        ewtp_errors_free(errs);
    }
    bool repeat = false;
    enum ewtp_store_state st = m->state;
    rc = ewtp_store_op_request(store_of(j), j->tenant, j->id, "cancel", j->reason, now, &repeat,
                               &st);
    if (rc != 0) {
        if (rc == -EWTP_EINVAL)
            result(j, EWTP_DISPATCH_CONFLICT, "the message is %s: there is nothing to cancel",
                   ewtp_store_state_name(st));
        else
            result(j, EWTP_DISPATCH_UNAVAILABLE, "the cancel could not be recorded: %s",
                   ewtp_strerror(rc));
        return;
    }
    j->res_id = strdup(m->id);
    j->res_state = st;
    if (j->res_id)
        result(j, EWTP_DISPATCH_OK, NULL);
    else
        result(j, EWTP_DISPATCH_FAILED, "out of memory");
}

/* A claimed cancel (worker): closes it when its message ended without the authority, builds
 * it, and hands it to the transport; its end is recorded with the lease's attempt. */
static void cancel_prepare(void *arg)
{
    struct job *j = arg;
    const struct ewtp_store_msg *m = &j->msgs[0];
    int64_t now = ewtpd_now_ms();
    if (m->state == EWTP_STORE_REJECTED || m->state == EWTP_STORE_CANCELLED) {
        char *text = ewtp_asprintf("the message was %s before its cancel was sent",
                                   ewtp_store_state_name(m->state));
        op_end(j, m->state == EWTP_STORE_CANCELLED ? EWTP_STORE_OP_DONE : EWTP_STORE_OP_FAILED, 0,
               "message_ended", text, now);
        free(text);
        return;
    }
    if (j->gi == NULL) {
        op_retry(j, "no_instance",
                 "the plugin instance of this message is not in the configuration", 0, now);
        return;
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    int rc = errs ? cancel_build(j, now, errs) : -EWTP_ENOMEM;
    if (errs && ewtp_errors_blocking(errs) > 0) {
        char *ej = ewtp_errors_to_json(errs);
        op_end(j, EWTP_STORE_OP_FAILED, 0, "translate", ej ? ej : "the plugin refused the cancel",
               now);
        free(ej);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    if (rc != 0) {
        op_retry(j, "internal", ewtp_strerror(rc), 0, now);
        return;
    }
    transport_start(j);
}

/* Moves a claimed operation into a J_CANCEL job of its own. */
static void start_cancel(struct ewtp_dispatcher *ds, struct ewtp_gen *gen, struct ewtp_store_op *op)
{
    struct job *cj = job_new(ds, J_CANCEL);
    struct ewtp_store_msg *m = cj ? malloc(sizeof(*m)) : NULL;
    if (m == NULL) {
        if (cj)
            job_free(cj);
        return; /* the lease expires; claimed again later */
    }
    *m = op->msg;
    memset(&op->msg, 0, sizeof(op->msg));
    ewtp_gen_ref(gen);
    cj->gen = gen;
    cj->msgs = m;
    cj->n = 1;
    cj->reason = op->reason ? op->reason : strdup("");
    op->reason = NULL;
    cj->op_id = op->oid;
    cj->op_attempt = op->attempts;
    cj->op_created = op->created_at;
    cj->gi = ewtp_gen_instance(gen, m->plugin);
    submit(cj, cancel_prepare, prepared);
}

void ewtp_dispatcher_cancel(struct ewtpd *d, const char *tenant, const char *id, const char *reason,
                            ewtpd_reply_fn reply, void *arg)
{
    struct job *j = reply_job(d, J_CANCELREQ, reply, arg);
    if (j == NULL)
        return;
    j->tenant = strdup(tenant);
    j->id = strdup(id);
    j->reason = strdup(reason ? reason : "");
    reply_submit(d, j, j->tenant && j->id && j->reason, cancel_work);
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
    claim(ds, J_CLAIM);
    claim(ds, J_POLLCLAIM);
    spool_scan(ds);
    amqp_scan(ds);
    evidence_purge(ds);
    arm(ds);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ewtp_dispatcher *ds = arg;
    if (!ds->stopped)
        claim(ds, J_CLAIM);
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
        held_free(h);
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
        job_free(ds->jobs);
    while (ds->held) {
        struct held *h = ds->held;
        ds->held = h->next;
        held_free(h);
    }
    while (ds->tokens) {
        struct token *t = ds->tokens;
        ds->tokens = t->next;
        token_free(t);
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
