/* The /v1 endpoints' work: what runs on the worker pool for POST /v1/messages (parse,
 * route, classify, related messages, plugin validate, canonical form) and the store reads
 * of the GET endpoints; cancel and inbound hand over to the dispatcher on the loop.
 *
 * The *_work functions run on a worker thread and touch only their request, the
 * generation it holds and the store (thread-safe); their done callbacks run on the loop.
 */
#include "http.h"

#include "api_json.h"
#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>

#include "config.h"
#include "evidence.h"
#include "gen.h"
#include "hostctx.h"
#include "util.h"

static char *errors_body(const struct ewtp_errors *errs)
{
    return ewtp_errors_to_json(errs);
}

static void set_error(struct http_req *r, int status, const char *error, const char *message)
{
    r->status = status;
    free(r->reply);
    r->reply = ewtp_http_error_json(error, message);
}

/* {"errors":[{pointer,code,message}]} with one entry. */
static void set_one_error(struct http_req *r, int status, const char *pointer, const char *code,
                          const char *message)
{
    struct ewtp_errors *e = ewtp_errors_new();
    if (e)
        ewtp_errors_add(e, pointer, code, "%s", message);
    r->status = status;
    free(r->reply);
    r->reply = e ? errors_body(e) : NULL;
    ewtp_errors_free(e);
}

static bool tenant_allows(const struct ewtp_tenant_conf *t, const char *destination,
                          enum ewtp_kind kind)
{
    uint32_t kinds = t->kinds ? t->kinds : EWTP_KINDS_ALL;
    if ((kinds & EWTP_KIND_BIT(kind)) == 0)
        return false;
    for (size_t i = 0; i < t->n_destinations; i++)
        if (strcmp(t->destinations[i], "*") == 0 ||
            strcasecmp(t->destinations[i], destination) == 0)
            return true;
    return false;
}

/* The role whose party sends a message of kind k, for plugins without the ABI 1.5
 * sender_role hook (DECISIONS "Tenants and party codes"); EWTP_ROLE_COUNT: none is checked. */
static enum ewtp_role default_sender_role(enum ewtp_kind k)
{
    switch (k) {
    case EWTP_KIND_ORDER:
        return EWTP_ROLE_PLATFORM;
    case EWTP_KIND_PAYMENT:
        return EWTP_ROLE_PAYMENT_PROVIDER;
    case EWTP_KIND_WAYBILL:
        return EWTP_ROLE_LOGISTICS;
    case EWTP_KIND_DECLARATION:
        return EWTP_ROLE_DECLARANT;
    case EWTP_KIND_INVOICE:
        return EWTP_ROLE_SELLER;
    default:
        return EWTP_ROLE_COUNT;
    }
}

static bool holds(const struct ewtp_tenant_conf *t, const char *scheme, size_t slen,
                  const char *value)
{
    for (size_t i = 0; i < t->n_parties; i++) {
        const char *c = t->parties[i];
        if (strncmp(c, scheme, slen) == 0 && c[slen] == ':' &&
            (value == NULL || strcmp(c + slen + 1, value) == 0))
            return true;
    }
    return false;
}

static bool held_by_other(const struct ewtp_config *conf, const struct ewtp_tenant_conf *t,
                          const char *scheme, size_t slen, const char *value)
{
    for (size_t i = 0; i < conf->n_tenants; i++)
        if (conf->tenants[i].id && strcmp(conf->tenants[i].id, t->id) != 0 &&
            holds(&conf->tenants[i], scheme, slen, value))
            return true;
    return false;
}

/* The sender party check (ISSUE 19, DECISIONS "Tenants and party codes"): a tenant with
 * parties may send a message only when the party of its sender role carries at least one of
 * its codes, and no code that another tenant holds or that is of a scheme the tenant holds
 * codes of but not this one (so that a relation or correlation key the plugin builds from
 * that party is the tenant's). An absent party is left to the plugin's validate. NULL when
 * allowed, else the 403 sentence in arena a: it names the role and scheme only. */
static const char *sender_refusal(const struct ewtp_config *conf, const struct ewtp_tenant_conf *t,
                                  const struct ewtp_plugin *p, const void *state,
                                  const struct ewtp_call *c)
{
    if (t->n_parties == 0)
        return NULL;
    enum ewtp_role role = EWTP_PLUGIN_HAS(p, sender_role) && p->sender_role
                              ? p->sender_role(state, c)
                              : default_sender_role(c->msg->kind);
    if ((unsigned)role >= EWTP_ROLE_COUNT)
        return NULL;
    const struct ewtp_party *party = ewtp_message_party(c->msg, role);
    if (party == NULL || party->n_ids == 0)
        return NULL;
    size_t held = 0;
    for (size_t i = 0; i < party->n_ids; i++) {
        const struct ewtp_party_id *id = party->ids[i];
        if (id == NULL || id->scheme == NULL || id->value == NULL)
            continue;
        size_t slen = strlen(id->scheme);
        if (holds(t, id->scheme, slen, id->value)) {
            held++;
            continue;
        }
        if (holds(t, id->scheme, slen, NULL) || held_by_other(conf, t, id->scheme, slen, id->value))
            return ewtp_arena_printf(c->arena,
                                     "the %s's %s code is not one this tenant may act as (the "
                                     "tenant's parties list the codes it may send as)",
                                     ewtp_role_name(role), id->scheme);
    }
    if (held == 0)
        return ewtp_arena_printf(c->arena,
                                 "the %s carries no party code this tenant may act as (the "
                                 "tenant's parties list the codes it may send as, e.g. %s:...)",
                                 ewtp_role_name(role),
                                 party->ids[0] && party->ids[0]->scheme ? party->ids[0]->scheme
                                                                        : "SCHEME");
    return NULL;
}

/* The array inside {"errors":[...]} (the warnings an accepted message keeps), in arena. */
static const char *warnings_array(struct ewtp_arena *a, const struct ewtp_errors *errs)
{
    if (ewtp_errors_count(errs) == 0)
        return NULL;
    char *all = ewtp_errors_to_json(errs);
    static const char prefix[] = "{\"errors\":";
    const char *out = NULL;
    size_t n = all ? strlen(all) : 0;
    if (n > sizeof(prefix) && strncmp(all, prefix, sizeof(prefix) - 1) == 0 && all[n - 1] == '}')
        out = ewtp_arena_strndup(a, all + sizeof(prefix) - 1, n - sizeof(prefix));
    free(all);
    return out;
}

struct related_set {
    struct ewtp_store_msg *rows;
    size_t n_rows;
    struct ewtp_message **msgs;
    struct ewtp_related *items;
    const struct ewtp_related **ptrs; /* the plugin ABI's array of pointers to items */
    size_t n;
};

static void related_free(struct related_set *s)
{
    for (size_t i = 0; s->msgs && i < s->n_rows; i++)
        ewtp_message_free(s->msgs[i]);
    free(s->msgs);
    free(s->items);
    free(s->ptrs);
    ewtp_store_msgs_free(s->rows, s->n_rows);
}

/* Other messages sharing a relation key, any tenant, parsed for the plugin. Fails closed: 0,
 * or a negative code when the store or memory failed, and the message must not be validated
 * without them (a check against a related message would silently pass). */
static int related_load(struct http_req *r, const struct ewtp_parse_opts *opts,
                        struct related_set *s)
{
    if (r->n_relations == 0)
        return 0;
    int rc = ewtp_store_related(r->d->store, r->relations, r->n_relations, r->tenant->id, r->id,
                                &s->rows, &s->n_rows);
    if (rc != 0 || s->n_rows == 0)
        return rc;
    s->msgs = calloc(s->n_rows, sizeof(*s->msgs));
    s->items = calloc(s->n_rows, sizeof(*s->items));
    s->ptrs = calloc(s->n_rows, sizeof(*s->ptrs));
    struct ewtp_errors *ignored = ewtp_errors_new();
    if (s->msgs == NULL || s->items == NULL || s->ptrs == NULL || ignored == NULL) {
        ewtp_errors_free(ignored);
        return -EWTP_ENOMEM;
    }
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct ewtp_store_msg *row = &s->rows[i];
        ewtp_errors_clear(ignored);
        if (row->canonical == NULL ||
            ewtp_message_parse(row->canonical, row->canonical_len, opts, &s->msgs[i], ignored) != 0)
            continue;
        s->items[s->n] =
            (struct ewtp_related)EWTP_RELATED_INIT(.msg = s->msgs[i], .tenant = row->tenant,
                                                   .state = ewtp_store_state_name(row->state),
                                                   .authority_ref = row->authority_ref);
        s->n++;
    }
    ewtp_errors_free(ignored);
    /* The plugin sees the tenant's own messages first, then those of tenants whose sender
     * codes are checked (parties), then the rest; newest first within each (the store's
     * order): a tenant without parties cannot put its messages before a checked one. */
    const struct ewtp_config *conf = ewtp_gen_config(r->gen);
    size_t k = 0;
    for (int rank = 0; rank < 3; rank++)
        for (size_t i = 0; i < s->n; i++) {
            const char *t = s->items[i].tenant;
            const struct ewtp_tenant_conf *tc = ewtp_config_tenant(conf, t);
            int ri = t && strcmp(t, r->tenant->id) == 0 ? 0 : tc && tc->n_parties ? 1 : 2;
            if (ri == rank)
                s->ptrs[k++] = &s->items[i];
        }
    return 0;
}

void ewtp_http_submit_work(void *arg)
{
    struct http_req *r = arg;
    const struct ewtp_config *conf = ewtp_gen_config(r->gen);
    struct ewtp_errors *errs = ewtp_errors_new();
    r->arena = ewtp_arena_new();
    if (errs == NULL || r->arena == NULL) {
        ewtp_errors_free(errs);
        set_error(r, 500, "internal", "out of memory");
        return;
    }
    struct ewtp_parse_opts opts = {
        .size = sizeof(struct ewtp_parse_opts),
        .max_bytes = conf->limits.max_body_bytes,
        .extra_destinations = ewtp_gen_destinations(r->gen),
    };
    int rc = ewtp_message_parse(r->body ? r->body : "", r->body_len, &opts, &r->msg, errs);
    if (rc == -EWTP_EFORMAT) {
        r->status = 400;
        r->reply = errors_body(errs);
        goto out;
    }
    if (rc != 0) {
        set_error(r, 500, "internal", ewtp_strerror(rc));
        goto out;
    }
    if (ewtp_errors_blocking(errs) > 0) {
        r->status = 422;
        r->reply = errors_body(errs);
        goto out;
    }
    const struct ewtp_message *m = r->msg;
    /* The body's id is the idempotency key: it replaces nothing from the path. */
    free(r->id);
    r->id = strdup(m->id);
    r->kind = ewtp_kind_name(m->kind);
    r->destination = m->destination;
    if (r->id == NULL) {
        set_error(r, 500, "internal", "out of memory");
        goto out;
    }
    const struct ewtp_gen_instance *gi =
        ewtp_gen_route(r->gen, r->tenant->id, m->destination, m->kind);
    if (gi == NULL) {
        if (!tenant_allows(r->tenant, m->destination, m->kind)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "this tenant may not send %s messages to %s", r->kind,
                     m->destination);
            set_error(r, 403, "forbidden", msg);
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "no plugin instance serves %s messages to %s here", r->kind,
                     m->destination);
            set_one_error(r, 422, "/destination", "unsupported", msg);
        }
        goto out;
    }
    const struct ewtp_plugin *p = gi->plugin;
    if ((p->kinds & EWTP_KIND_BIT(m->kind)) == 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the %s plugin does not take %s messages", p->name, r->kind);
        set_one_error(r, 422, "/kind", "unsupported", msg);
        goto out;
    }
    r->instance = gi->conf->name;
    const void *state = ewtp_instance_state(gi->inst);
    struct ewtp_call c;
    ewtp_call_init(&c, ewtp_gen_host(r->gen), r->arena, ewtpd_now_ms(), r->tenant->id, r->instance,
                   m, EWTP_OP_SUBMIT, 0);
    const char *refusal = sender_refusal(conf, r->tenant, p, state, &c);
    if (refusal) {
        set_error(r, 403, "forbidden", refusal);
        goto out;
    }
    struct ewtp_route_info ri = EWTP_ROUTE_INFO_INIT();
    if (p->classify)
        p->classify(state, &c, &ri);
    r->ordering_key = ri.ordering_key;
    r->batch_key = ri.batch_key;
    r->needs_chain = ri.needs_chain;
    r->relations = ri.relation_keys; /* in r->arena, like every answer of classify */
    r->n_relations = ri.relation_keys ? ri.n_relation_keys : 0;
    r->wait_for = ri.wait_for;
    r->wait_state =
        ri.wait_state == EWTP_WAIT_APPROVED ? EWTP_STORE_APPROVED : EWTP_STORE_SUBMITTED;

    struct related_set rel = {0};
    int rrc = related_load(r, &opts, &rel);
    if (rrc != 0) {
        related_free(&rel);
        ewtpd_log(LOG_ERR, "%s/%s: related messages not read: %s; the message is refused",
                  r->tenant->id, r->id, ewtp_strerror(rrc));
        r->retry_after = "1";
        set_error(r, 503, "unavailable", "the message store does not answer");
        goto out;
    }
    c.related = rel.ptrs;
    c.n_related = rel.n;
    p->validate(state, &c, errs);
    related_free(&rel);
    if (ewtp_errors_blocking(errs) > 0) {
        r->status = 422;
        r->reply = errors_body(errs);
        goto out;
    }
    r->warnings = warnings_array(r->arena, errs);
    r->canonical = ewtp_message_canonical(m);
    if (r->canonical == NULL || ewtp_sha256_hex(r->canonical, strlen(r->canonical), r->hash) != 0) {
        set_error(r, 500, "internal", "cannot compute the message digest");
        goto out;
    }
    ewtp_http_accept_enqueue(r); /* queued: r is not ours any more (only errs below is) */
out:
    ewtp_errors_free(errs);
}

void ewtp_http_submit_done(void *arg)
{
    struct http_req *r = arg;
    ewtp_http_done_reply(r); /* the worker's error (500 if it set none) */
}

static void store_result(struct http_req *r, int rc, char *json)
{
    if (rc == 0) {
        r->status = 200;
        r->reply = json;
    } else if (rc == -EWTP_ENOTFOUND) {
        set_error(r, 404, "not_found", "no message with this id");
    } else if (rc == -EWTP_EINVAL) {
        set_error(r, 400, "bad_request", "a query parameter (state or after) is not valid");
    } else {
        r->retry_after = "1";
        set_error(r, 503, "unavailable", "the message store does not answer");
    }
}

void ewtp_http_status_work(void *arg)
{
    struct http_req *r = arg;
    char *json = NULL;
    int rc = ewtp_api_status_json(r->d->store, r->tenant->id, r->id, &json);
    store_result(r, rc, json);
}

void ewtp_http_events_work(void *arg)
{
    struct http_req *r = arg;
    char *json = NULL;
    int rc = ewtp_api_events_json(r->d->store, r->tenant->id, r->id, &json);
    store_result(r, rc, json);
}

/* GET /v1/messages/{id}/evidence: the message's evidence bundle (evidence.h), a tar archive
 * signed with the configured evidence key. Worker. */
void ewtp_http_evidence_work(void *arg)
{
    struct http_req *r = arg;
    const struct ewtp_config *cfg = ewtp_gen_config(r->gen);
    unsigned char *tar = NULL;
    size_t len = 0;
    char *why = NULL;
    if (cfg->evidence.key == NULL) {
        set_error(r, 501, "not_configured",
                  "evidence bundles need an evidence key (evidence = { key = \"NAME\"; })");
        return;
    }
    int rc = ewtp_evidence_bundle(r->d->store, ewtp_gen_host(r->gen), cfg->evidence.key,
                                  r->tenant->id, r->id, ewtpd_now_ms(), &tar, &len, &why);
    if (rc == 0) {
        r->status = 200;
        r->reply = (char *)tar;
        r->reply_len = len;
        r->content_type = "application/x-tar";
    } else if (rc == -EWTP_ENOTFOUND && why == NULL) {
        set_error(r, 404, "not_found", "no message with this id");
    } else if (rc == -EWTP_EUNSUPP) {
        set_error(r, 501, "not_supported", "evidence is not supported by this store backend");
    } else if (why) {
        set_error(r, 500, "evidence", why);
    } else {
        r->retry_after = "1";
        set_error(r, 503, "unavailable", "the message store does not answer");
    }
    free(why);
}

void ewtp_http_list_work(void *arg)
{
    struct http_req *r = arg;
    enum ewtp_store_state st;
    if (r->q_state && ewtp_store_state_from_name(r->q_state, &st) != 0) {
        set_error(r, 400, "bad_request", "state is not one of the message states");
        return;
    }
    /* Cursors are sealed per tenant (cursor.h): the store's position never leaves the
     * gateway, and another tenant's cursor, or an altered one, is refused. */
    unsigned char secret[32];
    int rc = ewtp_store_instance_key(r->d->store, secret);
    if (rc < 0) {
        store_result(r, rc == -EWTP_EINVAL ? -EWTP_EIO : rc, NULL);
        return;
    }
    char *position = NULL;
    if (r->q_after && *r->q_after &&
        ewtp_cursor_open(secret, r->tenant->id, r->q_after, &position) != 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        set_error(r, 400, "bad_request", "after is not a cursor this gateway gave out");
        return;
    }
    struct ewtp_store_filter f = {
        .tenant = r->tenant->id,
        .state = r->q_state && *r->q_state ? r->q_state : NULL,
        .destination = r->q_destination && *r->q_destination ? r->q_destination : NULL,
        .limit = r->q_limit,
        .after = position,
    };
    struct ewtp_store_page page = {0};
    rc = ewtp_store_list(r->d->store, &f, &page);
    free(position);
    if (rc == 0 && page.next) {
        char *sealed = NULL;
        rc = ewtp_cursor_seal(secret, r->tenant->id, page.next, &sealed);
        free(page.next);
        page.next = sealed;
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc == -EWTP_EINVAL) {
        ewtp_store_page_free(&page);
        set_error(r, 400, "bad_request", "after is not a cursor this gateway gave out");
        return;
    }
    char *json = NULL;
    if (rc == 0)
        rc = ewtp_api_dump_take(ewtp_api_list_obj(&page), &json);
    ewtp_store_page_free(&page);
    store_result(r, rc, json);
}

/* ---- cancel and inbound (loop thread) ---------------------------------------------------- */

/* Limits on a JSON body read on the loop thread. */
struct json_limits {
    unsigned depth;    /* nesting of objects and arrays */
    size_t keys;       /* members of one object */
    size_t string_len; /* bytes of one string (key or value), as written */
};

/* The cancel body is {"reason": "..."} (reason: 1 to 1000 characters): its checks run on the
 * loop thread, so the body is bounded first and every check below costs at most that. */
#define CANCEL_BODY_MAX 8192
static const struct json_limits cancel_limits = {.depth = 8, .keys = 16, .string_len = 4096};
/* Inbound bodies go to the dispatcher and the plugin's receive; JSON ones are held to these. */
static const struct json_limits inbound_limits = {
    .depth = 64, .keys = 1000, .string_len = 4u << 20};

/* One pass over the bytes (O(len), no allocation): true when the JSON text stays within the
 * limits; otherwise false with a sentence naming the limit in why. Syntax is left to the
 * parser. */
static bool json_within(const char *s, size_t len, const struct json_limits *lim, char *why,
                        size_t whylen)
{
    size_t keys[65] = {0}; /* members so far of each open object (depth capped at 64) */
    bool obj[65] = {0};
    unsigned depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            size_t start = ++i;
            for (; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            if (i - start > lim->string_len) {
                snprintf(why, whylen,
                         "a string of %zu bytes at offset %zu: at most %zu bytes per string",
                         i - start, start, lim->string_len);
                return false;
            }
            /* A string directly followed by ':' is a key of the innermost object. */
            size_t k = i + 1;
            while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
                k++;
            if (k < len && s[k] == ':' && depth > 0 && obj[depth] && ++keys[depth] > lim->keys) {
                snprintf(why, whylen,
                         "an object with more than %zu members: at most %zu keys per object",
                         lim->keys, lim->keys);
                return false;
            }
        } else if (c == '{' || c == '[') {
            if (depth >= lim->depth || depth >= 64) {
                snprintf(why, whylen, "nesting deeper than %u levels: at most %u levels",
                         lim->depth, lim->depth);
                return false;
            }
            depth++;
            obj[depth] = c == '{';
            keys[depth] = 0;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* The dispatcher's answer (cancel, inbound) as HTTP: 202 (cancel) or 200 (inbound) when OK,
 * else the status of the result and an error list, the plugin's errors when it gave some. */
static int dispatch_status(enum ewtp_dispatch_result res)
{
    switch (res) {
    case EWTP_DISPATCH_OK:
        return 200;
    case EWTP_DISPATCH_NOT_FOUND:
        return 404;
    case EWTP_DISPATCH_CONFLICT:
        return 409;
    case EWTP_DISPATCH_UNSUPPORTED:
    case EWTP_DISPATCH_UNRECOGNISED:
        return 400;
    case EWTP_DISPATCH_UNAVAILABLE:
    case EWTP_DISPATCH_FAILED:
        break;
    }
    return 503;
}

static const char *dispatch_code(enum ewtp_dispatch_result res)
{
    switch (res) {
    case EWTP_DISPATCH_OK:
        return "ok";
    case EWTP_DISPATCH_NOT_FOUND:
        return "not_found";
    case EWTP_DISPATCH_CONFLICT:
        return "conflict";
    case EWTP_DISPATCH_UNSUPPORTED:
        return "unsupported";
    case EWTP_DISPATCH_UNRECOGNISED:
        return "unrecognised";
    case EWTP_DISPATCH_UNAVAILABLE:
        return "unavailable";
    case EWTP_DISPATCH_FAILED:
        break;
    }
    return "internal";
}

static char *dispatch_error_json(const struct ewtp_dispatch_reply *d)
{
    if (d->errors && ewtp_errors_count(d->errors) > 0)
        return ewtp_errors_to_json(d->errors);
    json_t *o = json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "pointer", "", "code",
                          dispatch_code(d->result), "message", d->message ? d->message : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void cancel_reply(void *arg, const struct ewtp_dispatch_reply *d)
{
    struct http_req *r = arg;
    if (d->result != EWTP_DISPATCH_OK) {
        ewtp_http_reply(r, dispatch_status(d->result), dispatch_error_json(d));
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:s}", "id", d->id, "state", ewtp_store_state_name(d->state),
                          "cancel", "requested");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    ewtp_http_reply(r, 202, s);
}

static void inbound_reply(void *arg, const struct ewtp_dispatch_reply *d)
{
    struct http_req *r = arg;
    if (d->result != EWTP_DISPATCH_OK) {
        ewtp_http_reply(r, dispatch_status(d->result), dispatch_error_json(d));
        return;
    }
    json_t *o = json_pack("{s:s}", "message", d->id);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    ewtp_http_reply(r, 200, s);
}

void ewtp_http_cancel(struct http_req *r)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_errors *errs = ewtp_errors_new();
    if (a == NULL || errs == NULL) {
        ewtp_arena_free(a);
        ewtp_errors_free(errs);
        ewtp_http_reply(r, 500, NULL);
        return;
    }
    char why[200];
    if (r->body_len > CANCEL_BODY_MAX) {
        snprintf(why, sizeof(why), "the cancel body is %zu bytes: at most %d bytes are accepted",
                 r->body_len, CANCEL_BODY_MAX);
        ewtp_http_reply_error(r, 413, "too_large", why);
        ewtp_arena_free(a);
        ewtp_errors_free(errs);
        return;
    }
    if (!json_within(r->body ? r->body : "", r->body_len, &cancel_limits, why, sizeof(why))) {
        ewtp_errors_add(errs, "", "limit", "the cancel body holds %s", why);
        ewtp_http_reply(r, 400, ewtp_errors_to_json(errs));
        ewtp_arena_free(a);
        ewtp_errors_free(errs);
        return;
    }
    const struct ewtp_json *j = ewtp_json_parse(a, r->body ? r->body : "", r->body_len, errs);
    if (j == NULL || ewtp_json_type(j) != EWTP_JSON_OBJECT) {
        if (j != NULL)
            ewtp_errors_add(errs, "", "type", "the body must be a JSON object {\"reason\": ...}");
        ewtp_http_reply(r, 400, ewtp_errors_to_json(errs));
    } else {
        const char *reason = ewtp_json_get_string(j, "reason");
        const char *key = NULL;
        const struct ewtp_json *v = NULL;
        for (size_t i = 0; ewtp_json_member(j, i, &key, &v); i++)
            if (strcmp(key, "reason") != 0)
                ewtp_errors_add(errs, "", "unknown_member", "unknown member \"%s\"", key);
        if (reason == NULL || reason[0] == '\0' || strlen(reason) > 1000)
            ewtp_errors_add(errs, "/reason", ewtp_json_get(j, "reason") ? "format" : "required",
                            "reason must be a text of 1 to 1000 characters");
        if (ewtp_errors_count(errs) > 0) {
            ewtp_http_reply(r, 422, ewtp_errors_to_json(errs));
        } else {
            /* Copies: the dispatcher may reply (and so free r and its generation reference)
             * before it returns. */
            char *copy = strdup(reason), *tenant = strdup(r->tenant->id), *id = strdup(r->id);
            if (copy == NULL || tenant == NULL || id == NULL)
                ewtp_http_reply(r, 500, NULL);
            else
                ewtp_dispatcher_cancel(r->d, tenant, id, copy, cancel_reply, r);
            free(copy);
            free(tenant);
            free(id);
        }
    }
    ewtp_arena_free(a);
    ewtp_errors_free(errs);
}

/* Constant-time comparison of two hex digests of equal length. */
static bool same_digest(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool ewtp_http_inbound_token_ok(const struct ewtp_gen_instance *gi, const char *token)
{
    if (gi == NULL || token == NULL || *token == '\0' || gi->conf->inbound_token_sha256 == NULL)
        return false;
    char hex[65];
    if (ewtp_sha256_hex(token, strlen(token), hex) != 0)
        return false;
    char want[65];
    snprintf(want, sizeof(want), "%s", gi->conf->inbound_token_sha256);
    for (char *p = want; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    return same_digest(hex, want);
}

void ewtp_http_inbound(struct http_req *r)
{
    const struct ewtp_gen_instance *gi = ewtp_gen_instance(r->gen, r->id);
    if (gi == NULL) {
        ewtp_http_reply_error(r, 404, "not_found", "no plugin instance of this name");
        return;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r->er), "Authorization");
    const char *token = NULL;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        token = auth + 7;
        while (*token == ' ')
            token++;
    }
    bool ok = ewtp_http_inbound_token_ok(gi, token);
    if (!ok) {
        ewtp_http_reply_error(r, 401, "unauthorized", "this instance's inbound token is required");
        return;
    }
    {
        size_t k = 0;
        while (k < r->body_len && strchr(" \t\r\n", r->body[k]))
            k++;
        char why[200];
        if (k < r->body_len && (r->body[k] == '{' || r->body[k] == '[') &&
            !json_within(r->body, r->body_len, &inbound_limits, why, sizeof(why))) {
            char msg[240];
            snprintf(msg, sizeof(msg), "the inbound body holds %s", why);
            ewtp_http_reply_error(r, 400, "limit", msg);
            return;
        }
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->er);
    size_t n = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    struct ewtp_header *hs = calloc(n ? n : 1, sizeof(*hs));
    if (hs == NULL) {
        ewtp_http_reply(r, 500, NULL);
        return;
    }
    size_t i = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next, i++) {
        hs[i].name = kv->key;
        hs[i].value = kv->value;
        hs[i].secret = strcasecmp(kv->key, "Authorization") == 0;
    }
    /* Headers and body are copied by the dispatcher; it may reply before returning. */
    const char *instance = gi->conf->name;
    char *body = r->body;
    size_t len = r->body_len;
    r->body = NULL; /* kept alive below even if the reply frees r synchronously */
    ewtp_dispatcher_inbound(r->d, instance, hs, n, body ? body : "", len, inbound_reply, r);
    free(body);
    free(hs);
}
