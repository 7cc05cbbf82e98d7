/* jobs.c — jobs: creating and freeing them, the stored message parsed, the answer to the API, the
 * plugin call of a claimed message with its related messages, the instance's credentials.
 * Part of the dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* The plugin's batch limits (a pointer in the descriptor; NULL: no batching). */
const struct ewtp_batch_limits *dsp_batch_of(const struct ewtp_plugin *p)
{
    return PLUGIN_HAS(p, batch) ? p->batch : NULL;
}

size_t dsp_batch_max_documents(const struct ewtp_plugin *p)
{
    const struct ewtp_batch_limits *b = dsp_batch_of(p);
    return b ? b->max_documents : 0;
}

/* n outcomes, each with the host's size, as the array of pointers interpret_batch takes. */
struct ewtp_outcome **dsp_outcomes_new(struct ewtp_arena *a, size_t n)
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
const struct ewtp_header *const *dsp_header_ptrs(struct ewtp_arena *a, const struct ewtp_header *h,
                                                 size_t n)
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

/* ---- jobs --------------------------------------------------------------------------------- */

struct job *dsp_job_new(struct ewtp_dispatcher *ds, enum job_kind kind)
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

void dsp_job_free(struct job *j)
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

struct ewtp_store *dsp_store_of(struct job *j)
{
    return j->ds->d->store;
}

const struct ewtp_delivery_conf *dsp_policy_conf(struct job *j)
{
    return &ewtp_gen_config(j->gen)->delivery;
}

struct ewtp_backoff_policy dsp_policy(struct job *j)
{
    const struct ewtp_delivery_conf *c = dsp_policy_conf(j);
    struct ewtp_backoff_policy p = {.max_attempts = c->max_attempts,
                                    .max_age_ms = c->max_age_ms,
                                    .base_ms = c->base_delay_ms,
                                    .max_ms = c->max_delay_ms};
    return p;
}

/* A state change was recorded and the store queued its webhook in the same transaction
 * (.webhook of the outcome or receipt): have the webhooks look at the outbox now. */
void dsp_hooks_kick(struct job *j)
{
    ewtp_webhooks_kick(j->ds->wh);
}

int dsp_own(struct job *j, struct ewtp_message *m)
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
struct ewtp_message *dsp_parse_stored(struct job *j, const struct ewtp_store_msg *m)
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
    if (msg && dsp_own(j, msg) != 0)
        msg = NULL;
    return msg;
}

/* A JSON array of one error entry (malloc'd). */
char *dsp_one_error(const char *pointer, const char *code, const char *message, const char *cause)
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
char *dsp_errors_array(const struct ewtp_errors *e)
{
    char *all = ewtp_errors_to_json(e);
    json_t *o = all ? json_loads(all, 0, NULL) : NULL;
    free(all);
    char *s = o ? json_dumps(json_object_get(o, "errors"), JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Sets the job's answer to the API: res and a sentence (fmt may be NULL). Returns res. */
enum ewtp_dispatch_result dsp_result(struct job *j, enum ewtp_dispatch_result res, const char *fmt,
                                     ...)
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

/* ---- building calls ----------------------------------------------------------------------- */

void dsp_call_init(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m,
                   const struct ewtp_message *msg, enum ewtp_op op, int64_t now)
{
    ewtp_call_init(c, ewtp_gen_host(j->gen), j->arena, now, m->tenant,
                   j->gi ? j->gi->conf->name : NULL, msg, op, m->attempts);
    c->cancel_reason = j->reason;
    c->authority_ref = m->authority_ref;
}

/* Related messages of c (relation keys from classify), parsed into the job. Fails closed: a
 * negative code when the store or memory failed (the message is not translated without them). */
int dsp_add_related(struct job *j, struct ewtp_call *c, const struct ewtp_store_msg *m)
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
    int rc = ewtp_store_related(dsp_store_of(j), ri.relation_keys, ri.n_relation_keys, m->tenant,
                                m->id, &rel, &n);
    if (rc != 0)
        return rc;
    const struct ewtp_related **r = n ? ewtp_arena_alloc(j->arena, n * sizeof(*r)) : NULL;
    if (n && r == NULL) {
        ewtp_store_msgs_free(rel, n);
        return -EWTP_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; r && i < n; i++) {
        struct ewtp_message *rm = dsp_parse_stored(j, &rel[i]);
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

void dsp_read_auth(struct job *j)
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
