/* The ZZ test authority's simulator (ewtp-sim --country zz): the protocol of README.md served
 * for real, so the template plugin and the daemon can be tested against it.
 * TODO(country): your authority's endpoints, its official schema (zz.xsd's place), its real
 * answer and error codes, late receipts, and the faults it is known for.
 *
 * What a country writes here is its routes (zz_sim_handle), its validation (read_document,
 * submit) and its receipts (decide, announce); the plumbing is libewtp-sim's kit
 * (<ewtp/sim.h>): settings (ewtp_sim_set_*, ewtp_sim_apply_settings), the bearer check
 * (ewtp_sim_require_bearer, ewtp_sim_reply_401), bodies (ewtp_sim_body_xml, _body_json,
 * _form_field) and their error answers (ewtp_sim_reply_errors), receipts by callback and spool
 * file (ewtp_sim_deliver now, ewtp_sim_deliver_later on a timer), and for an authority reached
 * through folders the out-folder watch (ewtp_sim_spool_watch, as plugins/cn and plugins/rw do).
 * Fault injection (latency, errors, forced statuses, rate limits) is the framework's: do not
 * write your own.
 *
 *   POST /v1/submissions               Bearer token, Content-Type application/xml, X-Request-Id;
 *                                      the document is validated against zz.xsd
 *                                      -> 202 {"reference":"ZZ-<n>","status":"received"}
 *   GET  /v1/submissions/{ref}         -> 200 {"reference","status","errors":[...]}
 *   POST /v1/submissions/{ref}/cancel  -> 200 {"reference","status":"cancelled"} or 409
 *
 * The decision (accepted, or rejected ZZ-150 when a declaration's InvoiceValue exceeds
 * reject_over) is taken decision_delay_ms after receipt; it is then visible to GET, POSTed to
 * callback_url and written into spool_in as {"reference","status","code","message"}, the
 * receipt shape zz_receive() reads.
 *
 * With check_sequence the authority numbers like a chained one (Rwanda's VSDC, Ethiopia's
 * EIMS): each sender's submissions carry Header/Sequence (number, previous reference), a
 * number must be the sender's last accepted + 1 and previous its reference, or the
 * submission is refused (422 ZZ-SEQ). Such an authority decides synchronously what it
 * refuses, so a refusal never uses up a number: the reject_over rule then answers 422
 * ZZ-150 at once instead of deciding later.
 *
 *   POST /v1/login                     {"user","password"} -> {"token","expires_in"}
 *   POST /v1/oauth/token               OAuth2 client credentials (form)
 *                                      -> {"access_token","token_type","expires_in"}
 * With require_login only a token from these (unexpired, not revoked) is accepted.
 *   GET  /_zz/sequence/{sender}        what the simulator accepted and refused (tests) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

#include "zz.h"

#ifndef ZZ_XSD_DEFAULT
#define ZZ_XSD_DEFAULT "zz.xsd"
#endif

#define DEFAULT_DECISION_DELAY_MS 200
#define DEFAULT_TOKEN_TTL_MS (10 * 60 * 1000)

struct zz_chain;

struct zz_sub {
    char *ref;
    char *sender_ref;
    int64_t seq;                  /* Header/Sequence number with check_sequence, else 0 */
    const struct zz_chain *chain; /* its sender's numbering, with check_sequence */
    const char *status;           /* "received", "accepted", "rejected", "cancelled" */
    bool reject;                  /* the decision, taken on receipt and announced later */
    struct ewtp_sim_timer *timer;
    struct zz_sim *st;
};

/* X-Request-Id -> submission (a submit's or a cancel's id). */
struct zz_rid {
    char *rid;
    struct zz_sub *sub;
    bool cancel;
};

/* One sender's numbering (check_sequence). */
struct zz_chain {
    struct zz_chain *next;
    char *sender;
    int64_t last;   /* last accepted number, 0 for none */
    char *last_ref; /* its reference */
    size_t refused; /* submissions refused with ZZ-SEQ */
};

/* One numbered submission as it arrived (check_sequence), whatever the answer: shows that a
 * resend carried the number of its first sending. */
struct zz_seen {
    char *sender_ref;
    int64_t number;     /* 0: no (valid) Header/Sequence */
    const char *answer; /* static: "accepted", "duplicate", "ZZ-SEQ", "ZZ-150", "ZZ-503" */
};

struct zz_sim {
    struct ewtp_sim *sim;
    struct ewtp_xsd *xsd;
    /* settings */
    char *token;          /* expected bearer token; NULL: any non-empty token */
    char *sender_id;      /* expected Header/Sender; NULL: any */
    char *callback_url;   /* receipts are POSTed here when set */
    char *callback_token; /* bearer token for callbacks */
    char *spool_in;       /* receipts are written into this folder when set */
    char *xsd_path;
    int64_t decision_delay_ms;
    bool has_reject_over;
    struct ewtp_dec reject_over;
    /* submissions: subs[n - 1] is "ZZ-<n>" */
    struct zz_sub **subs;
    size_t n_subs, cap_subs;
    struct zz_rid *rids; /* open addressing; rid NULL is empty */
    size_t n_rids, cap_rids;
    bool check_sequence;
    struct zz_chain *chains;
    struct zz_seen *seen;
    size_t n_seen, cap_seen;
    int64_t unavailable; /* the next this many numbered submissions get 503 after reading */
    /* login (require_login): token "zz-login-<n>" expires at token_exp[n - 1] */
    bool require_login;
    char *login_user, *login_password; /* NULL: any non-empty */
    int64_t token_ttl_ms;
    int64_t *token_exp;
    size_t n_tokens, cap_tokens;
};

/* ---- Settings ---------------------------------------------------------------------------- */

static int zz_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct zz_sim *st = state;
    if (strcmp(key, "check_sequence") == 0)
        return ewtp_sim_set_bool(key, value, false, why, &st->check_sequence);
    if (strcmp(key, "require_login") == 0)
        return ewtp_sim_set_bool(key, value, false, why, &st->require_login);
    if (strcmp(key, "login_user") == 0)
        return ewtp_sim_set_string(&st->login_user, value, NULL);
    if (strcmp(key, "login_password") == 0)
        return ewtp_sim_set_string(&st->login_password, value, NULL);
    if (strcmp(key, "unavailable_count") == 0)
        return ewtp_sim_set_int(key, value, 0, 0, 1000000, why, &st->unavailable);
    if (strcmp(key, "token_ttl_ms") == 0)
        return ewtp_sim_set_int(key, value, DEFAULT_TOKEN_TTL_MS, 1000, 86400000, why,
                                &st->token_ttl_ms);
    if (strcmp(key, "revoke_tokens") == 0) {
        /* An action, not a setting: every token issued so far stops working (the authority
         * rotated its keys), so the next request with one gets a 401. */
        bool now = false;
        int rc = ewtp_sim_set_bool(key, value, false, why, &now);
        for (size_t i = 0; rc == 0 && now && i < st->n_tokens; i++)
            st->token_exp[i] = 0;
        return rc;
    }
    if (strcmp(key, "token") == 0)
        return ewtp_sim_set_string(&st->token, value, NULL);
    if (strcmp(key, "sender_id") == 0)
        return ewtp_sim_set_string(&st->sender_id, value, NULL);
    if (strcmp(key, "callback_url") == 0)
        return ewtp_sim_set_string(&st->callback_url, value, NULL);
    if (strcmp(key, "callback_token") == 0)
        return ewtp_sim_set_string(&st->callback_token, value, NULL);
    if (strcmp(key, "spool_in") == 0)
        return ewtp_sim_set_string(&st->spool_in, value, NULL);
    if (strcmp(key, "decision_delay_ms") == 0)
        return ewtp_sim_set_int(key, value, DEFAULT_DECISION_DELAY_MS, 0, 86400000, why,
                                &st->decision_delay_ms);
    if (strcmp(key, "reject_over") == 0) {
        struct ewtp_dec d;
        if (value == NULL || *value == '\0') {
            st->has_reject_over = false;
            return 0;
        }
        if (ewtp_dec_parse(value, &d) != 0) {
            ewtp_errors_add(why, key, "format", "reject_over must be a decimal amount");
            return -EWTP_EINVAL;
        }
        st->reject_over = d;
        st->has_reject_over = true;
        return 0;
    }
    if (strcmp(key, "xsd") == 0) {
        const char *path = value && *value ? value : ZZ_XSD_DEFAULT;
        struct ewtp_xsd *x = NULL;
        if (ewtp_xsd_load(path, why, &x) != 0) {
            ewtp_errors_add(why, key, "format", "cannot load the ZZ schema %s", path);
            return -EWTP_EINVAL;
        }
        ewtp_xsd_free(st->xsd);
        st->xsd = x;
        return ewtp_sim_set_string(&st->xsd_path, path, NULL);
    }
    return -EWTP_ENOTFOUND;
}

static void zz_sim_destroy(void *state)
{
    struct zz_sim *st = state;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_subs; i++) {
        ewtp_sim_timer_cancel(st->sim, st->subs[i]->timer);
        free(st->subs[i]->ref);
        free(st->subs[i]->sender_ref);
        free(st->subs[i]);
    }
    for (size_t i = 0; i < st->cap_rids; i++)
        free(st->rids[i].rid);
    while (st->chains) {
        struct zz_chain *c = st->chains;
        st->chains = c->next;
        free(c->sender);
        free(c->last_ref);
        free(c);
    }
    for (size_t i = 0; i < st->n_seen; i++)
        free(st->seen[i].sender_ref);
    free(st->seen);
    free(st->token_exp);
    free(st->login_user);
    free(st->login_password);
    free(st->rids);
    free(st->subs);
    ewtp_xsd_free(st->xsd);
    free(st->token);
    free(st->sender_id);
    free(st->callback_url);
    free(st->callback_token);
    free(st->spool_in);
    free(st->xsd_path);
    free(st);
}

static int zz_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct zz_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    st->decision_delay_ms = DEFAULT_DECISION_DELAY_MS;
    st->token_ttl_ms = DEFAULT_TOKEN_TTL_MS;
    int rc = ewtp_sim_apply_settings(st, zz_sim_set, NULL, settings,
                                     "token sender_id decision_delay_ms reject_over "
                                     "callback_url callback_token spool_in xsd check_sequence "
                                     "unavailable_count require_login login_user "
                                     "login_password token_ttl_ms",
                                     why);
    if (rc == 0 && st->xsd == NULL)
        rc = zz_sim_set(st, "xsd", NULL, why);
    if (rc != 0) {
        zz_sim_destroy(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* ---- Submissions and request ids --------------------------------------------------------- */

static size_t rid_hash(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static struct zz_rid *rid_find(struct zz_sim *st, const char *rid)
{
    if (st->cap_rids == 0)
        return NULL;
    for (size_t k = rid_hash(rid) & (st->cap_rids - 1); st->rids[k].rid;
         k = (k + 1) & (st->cap_rids - 1)) {
        if (strcmp(st->rids[k].rid, rid) == 0)
            return &st->rids[k];
    }
    return NULL;
}

static void rid_put(struct zz_rid *table, size_t cap, struct zz_rid e)
{
    size_t k = rid_hash(e.rid) & (cap - 1);
    while (table[k].rid)
        k = (k + 1) & (cap - 1);
    table[k] = e;
}

static int rid_add(struct zz_sim *st, const char *rid, struct zz_sub *sub, bool cancel)
{
    if ((st->n_rids + 1) * 2 > st->cap_rids) {
        size_t cap = st->cap_rids ? st->cap_rids * 2 : 64;
        struct zz_rid *t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return -EWTP_ENOMEM;
        for (size_t i = 0; i < st->cap_rids; i++) {
            if (st->rids[i].rid)
                rid_put(t, cap, st->rids[i]);
        }
        free(st->rids);
        st->rids = t;
        st->cap_rids = cap;
    }
    char *copy = strdup(rid);
    if (copy == NULL)
        return -EWTP_ENOMEM;
    rid_put(st->rids, st->cap_rids, (struct zz_rid){.rid = copy, .sub = sub, .cancel = cancel});
    st->n_rids++;
    return 0;
}

static struct zz_sub *sub_find(struct zz_sim *st, const char *ref)
{
    if (strncmp(ref, "ZZ-", 3) != 0 || ref[3] < '1' || ref[3] > '9')
        return NULL;
    int64_t n = 0;
    if (ewtp_sim_parse_int(ref + 3, 1, INT64_MAX, &n) != 0 || (uint64_t)n > st->n_subs)
        return NULL;
    return st->subs[n - 1];
}

static struct zz_sub *sub_new(struct zz_sim *st, const char *sender_ref)
{
    if (st->n_subs == st->cap_subs) {
        size_t cap = st->cap_subs ? st->cap_subs * 2 : 64;
        struct zz_sub **s = realloc(st->subs, cap * sizeof(*s));
        if (s == NULL)
            return NULL;
        st->subs = s;
        st->cap_subs = cap;
    }
    struct zz_sub *sub = calloc(1, sizeof(*sub));
    char ref[32];
    snprintf(ref, sizeof(ref), "ZZ-%zu", st->n_subs + 1);
    if (sub == NULL || (sub->ref = strdup(ref)) == NULL ||
        (sub->sender_ref = strdup(sender_ref)) == NULL) {
        if (sub)
            free(sub->ref);
        free(sub);
        return NULL;
    }
    sub->status = "received";
    sub->st = st;
    st->subs[st->n_subs++] = sub;
    return sub;
}

/* ---- Answers ----------------------------------------------------------------------------- */

#define REJECT_CODE "ZZ-150"
#define REJECT_PATH "/declaration/invoice_value"
#define REJECT_TEXT "the declared invoice value exceeds the limit for this procedure"

static const char *finish(struct ewtp_jsonw *w)
{
    const char *out = NULL;
    size_t len = 0;
    return w && ewtp_jsonw_finish(w, &out, &len) == 0 ? out : NULL;
}

/* {"reference","status"[,"errors":[...]]}: errors lists the rejection, or a 409's reason. */
static const char *status_json(struct ewtp_arena *a, const struct zz_sub *sub, bool with_errors,
                               const char *err_code, const char *err_message)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "reference", sub->ref);
    ewtp_jsonw_kv_string(w, "status", sub->status);
    if (with_errors || err_code) {
        ewtp_jsonw_key(w, "errors");
        ewtp_jsonw_array_begin(w);
        if (err_code) {
            ewtp_jsonw_object_begin(w);
            ewtp_jsonw_kv_string(w, "code", err_code);
            ewtp_jsonw_kv_string(w, "message", err_message);
            ewtp_jsonw_object_end(w);
        } else if (strcmp(sub->status, "rejected") == 0) {
            ewtp_jsonw_object_begin(w);
            ewtp_jsonw_kv_string(w, "code", REJECT_CODE);
            ewtp_jsonw_kv_string(w, "message", REJECT_TEXT);
            ewtp_jsonw_kv_string(w, "path", REJECT_PATH);
            ewtp_jsonw_object_end(w);
        }
        ewtp_jsonw_array_end(w);
    }
    ewtp_jsonw_object_end(w);
    return finish(w);
}

/* json as the answer; NULL (out of memory) answers 500. */
static void reply_json(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                       int status, const char *json)
{
    if (json == NULL)
        ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
    else
        ewtp_sim_reply_json(resp, status, json);
}

static void reply_status(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                         int status, const struct zz_sub *sub, bool with_errors,
                         const char *err_code, const char *err_message)
{
    reply_json(req, resp, status, status_json(req->arena, sub, with_errors, err_code, err_message));
}

/* ---- Decisions --------------------------------------------------------------------------- */

/* The receipt the authority sends when it decides (callback body and spool file). */
static void announce(struct zz_sim *st, const struct zz_sub *sub)
{
    if (st->callback_url == NULL && st->spool_in == NULL)
        return;
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return;
    bool rejected = strcmp(sub->status, "rejected") == 0;
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "reference", sub->ref);
    ewtp_jsonw_kv_string(w, "status", sub->status);
    ewtp_jsonw_kv_string(w, "code", rejected ? REJECT_CODE : "ZZ-000");
    ewtp_jsonw_kv_string(w, "message", rejected ? REJECT_TEXT : "accepted");
    ewtp_jsonw_object_end(w);
    const char *body = finish(w);
    struct ewtp_sim_deliver_to to = {st->callback_url, st->callback_token, st->spool_in};
    if (body)
        ewtp_sim_deliver(st->sim, &to, ewtp_arena_printf(a, "%s-%s.json", sub->ref, sub->status),
                         "application/json", body, strlen(body));
    ewtp_arena_free(a);
}

static void decide(struct ewtp_sim *sim, void *arg)
{
    (void)sim;
    struct zz_sub *sub = arg;
    sub->timer = NULL;
    sub->status = sub->reject ? "rejected" : "accepted";
    announce(sub->st, sub);
}

/* ---- Login ------------------------------------------------------------------------------- */

#define TOKEN_PREFIX "zz-login-"

static bool token_valid(const struct zz_sim *st, const char *token)
{
    size_t n = strlen(TOKEN_PREFIX);
    int64_t k = 0;
    if (strncmp(token, TOKEN_PREFIX, n) != 0 ||
        ewtp_sim_parse_int(token + n, 1, INT64_MAX, &k) != 0 || (uint64_t)k > st->n_tokens)
        return false;
    return ewtp_sim_now_ms(st->sim) < st->token_exp[k - 1];
}

/* A new token valid for token_ttl_ms (in the arena), or NULL when out of memory. */
static const char *token_issue(struct zz_sim *st, struct ewtp_arena *a)
{
    if (st->n_tokens == st->cap_tokens) {
        size_t cap = st->cap_tokens ? st->cap_tokens * 2 : 16;
        int64_t *t = realloc(st->token_exp, cap * sizeof(*t));
        if (t == NULL)
            return NULL;
        st->token_exp = t;
        st->cap_tokens = cap;
    }
    st->token_exp[st->n_tokens++] = ewtp_sim_now_ms(st->sim) + st->token_ttl_ms;
    return ewtp_arena_printf(a, TOKEN_PREFIX "%zu", st->n_tokens);
}

/* POST /v1/login (JSON) or, oauth, POST /v1/oauth/token (client credentials). Every answer
 * is counted in /_sim/received ("login:<user>", "oauth:<client>", "...:refused") so that a
 * test sees how often the host logged in. */
static void login(struct zz_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp, bool oauth)
{
    const char *user = NULL, *password = NULL;
    if (oauth) {
        const char *grant = ewtp_sim_form_field(req, "grant_type");
        if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
            ewtp_sim_reply_error(req, resp, 400, "unsupported_grant_type",
                                 "only grant_type=client_credentials", NULL);
            return;
        }
        user = ewtp_sim_form_field(req, "client_id");
        password = ewtp_sim_form_field(req, "client_secret");
    } else {
        const struct ewtp_json *body = ewtp_json_parse(req->arena, req->body, req->body_len, NULL);
        user = ewtp_json_get_string(body, "user");
        password = ewtp_json_get_string(body, "password");
    }
    const char *kind = oauth ? "oauth" : "login";
    if (user == NULL || *user == '\0' || password == NULL || *password == '\0' ||
        (st->login_user && strcmp(user, st->login_user) != 0) ||
        (st->login_password && strcmp(password, st->login_password) != 0)) {
        ewtp_sim_record(st->sim, ewtp_arena_printf(req->arena, "%s:refused", kind));
        ewtp_sim_reply_error(req, resp, 401, oauth ? "invalid_client" : "ZZ-LOGIN",
                             "wrong user or password", NULL);
        return;
    }
    const char *token = token_issue(st, req->arena);
    struct ewtp_jsonw *w = token ? ewtp_jsonw_new(req->arena, false) : NULL;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, oauth ? "access_token" : "token", token);
    if (oauth)
        ewtp_jsonw_kv_string(w, "token_type", "Bearer");
    /* Whole seconds, as both protocols say; the token lives at least that long. */
    ewtp_jsonw_kv_int(w, "expires_in", st->token_ttl_ms / 1000);
    ewtp_jsonw_object_end(w);
    const char *json = finish(w);
    if (json == NULL) {
        ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
        return;
    }
    ewtp_sim_record(st->sim, ewtp_arena_printf(req->arena, "%s:%s", kind, user));
    ewtp_sim_reply_json(resp, 200, json);
}

/* ---- Sequence (check_sequence) ----------------------------------------------------------- */

static struct zz_chain *chain_of(struct zz_sim *st, const char *sender)
{
    for (struct zz_chain *c = st->chains; c; c = c->next)
        if (strcmp(c->sender, sender) == 0)
            return c;
    struct zz_chain *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->sender = strdup(sender)) == NULL) {
        free(c);
        return NULL;
    }
    c->next = st->chains;
    st->chains = c;
    return c;
}

/* Why Header/Sequence (number, previous: NULL when absent) is not the sender's next, or NULL
 * with *number set. */
static const char *sequence_error(const struct zz_chain *c, const char *number,
                                  const char *previous, struct ewtp_arena *a, int64_t *out)
{
    int64_t n = 0;
    if (number == NULL)
        return "Header/Sequence is required: this authority numbers every submission";
    if (ewtp_sim_parse_int(number, 1, INT64_MAX, &n) != 0 || n != c->last + 1)
        return ewtp_arena_printf(a, "sequence number %s of sender %s is not the next one (%lld)",
                                 number, c->sender, (long long)(c->last + 1));
    bool prev_ok = c->last_ref ? previous && strcmp(previous, c->last_ref) == 0 : !previous;
    if (!prev_ok)
        return ewtp_arena_printf(a,
                                 "previous reference %s is not that of sender %s's last accepted "
                                 "submission (%s)",
                                 previous ? previous : "(none)", c->sender,
                                 c->last_ref ? c->last_ref : "none");
    *out = n;
    return NULL;
}

/* Notes what a numbered submission carried and got (best effort: out of memory skips it). */
static void seen_add(struct zz_sim *st, const char *sender_ref, const char *number,
                     const char *answer)
{
    if (st->n_seen == st->cap_seen) {
        size_t cap = st->cap_seen ? st->cap_seen * 2 : 64;
        struct zz_seen *n = realloc(st->seen, cap * sizeof(*n));
        if (n == NULL)
            return;
        st->seen = n;
        st->cap_seen = cap;
    }
    int64_t v = 0;
    if (number == NULL || ewtp_sim_parse_int(number, 1, INT64_MAX, &v) != 0)
        v = 0;
    char *copy = strdup(sender_ref ? sender_ref : "");
    if (copy == NULL)
        return;
    st->seen[st->n_seen++] = (struct zz_seen){.sender_ref = copy, .number = v, .answer = answer};
}

/* Header/Sequence/@number of a resend, read without validating it (NULL when none). */
static const char *resend_number(const struct ewtp_sim_request *req)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *doc = NULL;
    const char *number = NULL;
    if (errs && ewtp_xml_parse(req->body, req->body_len, errs, &doc) == 0) {
        ewtp_xml_ns_register(doc, "zz", ZZ_NS);
        if (ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Sequence/@number",
                                  req->arena, &number) != 0)
            number = NULL;
    }
    ewtp_xml_free(doc);
    ewtp_errors_free(errs);
    return number;
}

/* GET /_zz/sequence/{sender}: {"sender","last","reference","refused",
 * "accepted":[{"number","reference","sender_reference"}]} in the order of acceptance, and
 * "seen":[{"sender_reference","number","answer"}]: every numbered submission of any sender
 * in the order of arrival (resends and refusals included). */
static void sequence_report(struct zz_sim *st, const struct ewtp_sim_request *req,
                            struct ewtp_sim_response *resp, const char *sender)
{
    const struct zz_chain *c = st->chains;
    while (c && strcmp(c->sender, sender) != 0)
        c = c->next;
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "sender", sender);
    ewtp_jsonw_kv_int(w, "last", c ? c->last : 0);
    ewtp_jsonw_key(w, "reference");
    ewtp_jsonw_string(w, c ? c->last_ref : NULL);
    ewtp_jsonw_kv_int(w, "refused", c ? (int64_t)c->refused : 0);
    ewtp_jsonw_key(w, "accepted");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; c && i < st->n_subs; i++) {
        const struct zz_sub *sub = st->subs[i];
        if (sub->chain != c)
            continue;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_int(w, "number", sub->seq);
        ewtp_jsonw_kv_string(w, "reference", sub->ref);
        ewtp_jsonw_kv_string(w, "sender_reference", sub->sender_ref);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_key(w, "seen");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < st->n_seen; i++) {
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "sender_reference", st->seen[i].sender_ref);
        ewtp_jsonw_kv_int(w, "number", st->seen[i].number);
        ewtp_jsonw_kv_string(w, "answer", st->seen[i].answer);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    reply_json(req, resp, 200, finish(w));
}

/* ---- Requests ---------------------------------------------------------------------------- */

/* Authentication and the headers every call needs; false when resp already holds the answer. */
static bool check_headers(struct zz_sim *st, const struct ewtp_sim_request *req,
                          struct ewtp_sim_response *resp, bool with_body)
{
    const char *token =
        ewtp_sim_require_bearer(req, resp, st->require_login ? NULL : st->token, "zz", "ZZ-401");
    if (token == NULL)
        return false;
    if (st->require_login && !token_valid(st, token)) {
        /* Counted, so that a test can tell a refresh in time from a refused token. */
        ewtp_sim_record(st->sim, "unauthorized");
        ewtp_sim_reply_401(req, resp, "zz", true, "ZZ-401",
                           "the token is unknown, expired or revoked");
        return false;
    }
    if (!with_body)
        return true;
    const char *ct = ewtp_sim_request_header(req, "Content-Type");
    size_t n = ct ? strcspn(ct, "; ") : 0;
    if (ct == NULL || !((n == 15 && strncasecmp(ct, "application/xml", n) == 0) ||
                        (n == 8 && strncasecmp(ct, "text/xml", n) == 0))) {
        ewtp_sim_reply_error(req, resp, 415, "ZZ-415", "the body must be application/xml", NULL);
        return false;
    }
    const char *rid = ewtp_sim_request_header(req, "X-Request-Id");
    if (rid == NULL || *rid == '\0' || strlen(rid) > 64) {
        ewtp_sim_reply_error(req, resp, 400, "ZZ-400", "the X-Request-Id header is required", NULL);
        return false;
    }
    return true;
}

/* Parses and validates the document; NULL when resp holds the 400. The caller frees. */
static struct ewtp_xml_doc *read_document(struct zz_sim *st, const struct ewtp_sim_request *req,
                                          struct ewtp_sim_response *resp, const char *rid)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    if (errs == NULL) {
        ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
        return NULL;
    }
    struct ewtp_xml_doc *doc = ewtp_sim_body_xml(req, resp, NULL, "ZZ-100", errs);
    if (doc == NULL) {
        ewtp_sim_record(st->sim, ewtp_arena_printf(req->arena, "request:%s", rid));
        ewtp_errors_free(errs);
        return NULL;
    }
    ewtp_xml_ns_register(doc, "zz", ZZ_NS);
    const char *sender_ref = NULL;
    if (ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:SenderReference", req->arena,
                              &sender_ref) != 0 ||
        *sender_ref == '\0')
        sender_ref = ewtp_arena_printf(req->arena, "request:%s", rid);
    const char *op = NULL;
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Operation", req->arena, &op);
    ewtp_sim_record(st->sim, op && strcmp(op, "cancel") == 0
                                 ? ewtp_arena_printf(req->arena, "%s/cancel", sender_ref)
                                 : sender_ref);
    if (ewtp_xsd_validate_doc(st->xsd, doc, errs) != 0) {
        ewtp_sim_reply_errors(req, resp, 400, "ZZ-101", errs);
        ewtp_errors_free(errs);
        ewtp_xml_free(doc);
        return NULL;
    }
    ewtp_errors_free(errs);
    const char *doc_rid = NULL, *sender = NULL;
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:RequestId", req->arena, &doc_rid);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Sender", req->arena, &sender);
    if (doc_rid == NULL || strcmp(doc_rid, rid) != 0) {
        ewtp_sim_reply_error(req, resp, 400, "ZZ-102",
                             "Header/RequestId differs from the X-Request-Id header", NULL);
    } else if (st->sender_id && (sender == NULL || strcmp(sender, st->sender_id) != 0)) {
        ewtp_sim_reply_error(req, resp, 403, "ZZ-104", "unknown sender", NULL);
    } else {
        return doc;
    }
    ewtp_xml_free(doc);
    return NULL;
}

/* Records a resend (the same X-Request-Id) as its first request was recorded. */
static void record_resend(struct zz_sim *st, const struct ewtp_sim_request *req,
                          const struct zz_rid *seen)
{
    ewtp_sim_record(st->sim, seen->cancel
                                 ? ewtp_arena_printf(req->arena, "%s/cancel", seen->sub->sender_ref)
                                 : seen->sub->sender_ref);
}

static void submit(struct zz_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    if (!check_headers(st, req, resp, true))
        return;
    const char *rid = ewtp_sim_request_header(req, "X-Request-Id");
    struct zz_rid *seen = rid_find(st, rid);
    if (seen) {
        /* A resend: the authority keeps the first and says where it is. It takes no new
         * number, whatever the resend carries. */
        record_resend(st, req, seen);
        if (st->check_sequence && !seen->cancel)
            seen_add(st, seen->sub->sender_ref, resend_number(req), "duplicate");
        reply_status(req, resp, 409, seen->sub, false, "ZZ-409",
                     "duplicate X-Request-Id: already received");
        return;
    }
    struct ewtp_xml_doc *doc = read_document(st, req, resp, rid);
    if (doc == NULL)
        return;
    const char *op = NULL, *sender_ref = NULL, *value = NULL, *sender = NULL, *number = NULL,
               *previous = NULL;
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Operation", req->arena, &op);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:SenderReference", req->arena,
                          &sender_ref);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Sender", req->arena, &sender);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Sequence/@number", req->arena,
                          &number);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Sequence/@previous", req->arena,
                          &previous);
    bool has_value =
        ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Declaration/zz:InvoiceValue",
                              req->arena, &value) == 0;
    ewtp_xml_free(doc);
    if (op == NULL || strcmp(op, "submit") != 0) {
        ewtp_sim_reply_error(req, resp, 400, "ZZ-103",
                             "a cancellation goes to /v1/submissions/{reference}/cancel", NULL);
        return;
    }
    bool reject = false;
    if (has_value && st->has_reject_over) {
        struct ewtp_dec v;
        /* The schema admits any xs:decimal: allow the widest precision the SDK holds. */
        if (ewtp_dec_parse_ex(value, strlen(value), 38 - EWTP_DEC_MAX_SCALE, EWTP_DEC_MAX_SCALE,
                              &v) != 0 ||
            ewtp_dec_cmp(v, st->reject_over) > 0)
            reject = true;
    }
    struct zz_chain *chain = NULL;
    int64_t seq = 0;
    if (st->check_sequence) {
        if ((chain = chain_of(st, sender ? sender : "")) == NULL) {
            ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
            return;
        }
        if (st->unavailable > 0) {
            /* Read, then failed (a backend down behind the front end): the retry must come
             * with the same number, and it is visible in "seen". */
            st->unavailable--;
            seen_add(st, sender_ref, number, "ZZ-503");
            ewtp_sim_reply_error(req, resp, 503, "ZZ-503", "temporarily unavailable", NULL);
            ewtp_sim_reply_header(resp, "Retry-After", "1");
            return;
        }
        const char *why = sequence_error(chain, number, previous, req->arena, &seq);
        if (why) {
            chain->refused++;
            seen_add(st, sender_ref, number, "ZZ-SEQ");
            ewtp_sim_reply_error(req, resp, 422, "ZZ-SEQ", why, NULL);
            return;
        }
        /* Refused at once, before a number is given: the sender's next submission takes
         * this number (the X-Request-Id is not kept, as nothing was received). */
        if (reject) {
            seen_add(st, sender_ref, number, REJECT_CODE);
            ewtp_sim_reply_error(req, resp, 422, REJECT_CODE, REJECT_TEXT, REJECT_PATH);
            return;
        }
        seen_add(st, sender_ref, number, "accepted");
    }
    struct zz_sub *sub = sub_new(st, sender_ref);
    if (sub == NULL || rid_add(st, rid, sub, false) != 0) {
        ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
        return;
    }
    if (chain) {
        char *ref = strdup(sub->ref);
        if (ref == NULL) {
            ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
            return;
        }
        sub->seq = seq;
        sub->chain = chain;
        chain->last = seq;
        free(chain->last_ref);
        chain->last_ref = ref;
    }
    sub->reject = reject;
    sub->timer = ewtp_sim_timer_add(st->sim, st->decision_delay_ms, decide, sub);
    if (sub->timer == NULL)
        decide(st->sim, sub);
    reply_status(req, resp, 202, sub, false, NULL, NULL);
}

static void cancel(struct zz_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp, const char *ref)
{
    if (!check_headers(st, req, resp, true))
        return;
    struct zz_sub *sub = sub_find(st, ref);
    if (sub == NULL) {
        ewtp_sim_reply_error(req, resp, 404, "ZZ-404", "unknown reference", NULL);
        return;
    }
    const char *rid = ewtp_sim_request_header(req, "X-Request-Id");
    struct zz_rid *seen = rid_find(st, rid);
    if (seen) {
        record_resend(st, req, seen);
        reply_status(req, resp, 409, seen->sub, false, "ZZ-409",
                     "duplicate X-Request-Id: already received");
        return;
    }
    struct ewtp_xml_doc *doc = read_document(st, req, resp, rid);
    if (doc == NULL)
        return;
    const char *op = NULL, *aref = NULL;
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Header/zz:Operation", req->arena, &op);
    ewtp_xml_xpath_string(doc, NULL, "/zz:Submission/zz:Cancel/zz:AuthorityReference", req->arena,
                          &aref);
    ewtp_xml_free(doc);
    if (op == NULL || strcmp(op, "cancel") != 0 || aref == NULL) {
        ewtp_sim_reply_error(req, resp, 400, "ZZ-103", "this endpoint takes a cancellation", NULL);
        return;
    }
    if (strcmp(aref, ref) != 0) {
        ewtp_sim_reply_error(req, resp, 400, "ZZ-105",
                             "Cancel/AuthorityReference differs from the reference in the path",
                             NULL);
        return;
    }
    /* Received and accepted submissions can be cancelled (authorities cancel cleared
     * declarations and validated invoices); a rejected or cancelled one cannot. */
    if (strcmp(sub->status, "rejected") == 0 || strcmp(sub->status, "cancelled") == 0) {
        reply_status(req, resp, 409, sub, false, "ZZ-409",
                     strcmp(sub->status, "rejected") == 0 ? "already rejected"
                                                          : "already cancelled");
        return;
    }
    if (rid_add(st, rid, sub, true) != 0) {
        ewtp_sim_reply_error(req, resp, 500, "ZZ-500", "out of memory", NULL);
        return;
    }
    ewtp_sim_timer_cancel(st->sim, sub->timer);
    sub->timer = NULL;
    sub->status = "cancelled";
    reply_status(req, resp, 200, sub, false, NULL, NULL);
}

static int zz_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct zz_sim *st = state;
    const char *ref[1] = {NULL};
    bool post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0;
    if (ewtp_sim_route(req->path, "/v1/login", req->arena, NULL, 0) ||
        ewtp_sim_route(req->path, "/v1/oauth/token", req->arena, NULL, 0)) {
        if (post)
            login(st, req, resp, strcmp(req->path, "/v1/oauth/token") == 0);
        else
            ewtp_sim_reply_error(req, resp, 405, "ZZ-405", "use POST", NULL);
    } else if (ewtp_sim_route(req->path, "/_zz/sequence/*", req->arena, ref, 1)) {
        if (get)
            sequence_report(st, req, resp, ref[0]);
        else
            ewtp_sim_reply_error(req, resp, 405, "ZZ-405", "use GET", NULL);
    } else if (ewtp_sim_route(req->path, "/v1/submissions", req->arena, NULL, 0)) {
        if (post)
            submit(st, req, resp);
        else
            ewtp_sim_reply_error(req, resp, 405, "ZZ-405", "use POST", NULL);
    } else if (ewtp_sim_route(req->path, "/v1/submissions/*/cancel", req->arena, ref, 1)) {
        if (post)
            cancel(st, req, resp, ref[0]);
        else
            ewtp_sim_reply_error(req, resp, 405, "ZZ-405", "use POST", NULL);
    } else if (ewtp_sim_route(req->path, "/v1/submissions/*", req->arena, ref, 1)) {
        struct zz_sub *sub = NULL;
        if (!get) {
            ewtp_sim_reply_error(req, resp, 405, "ZZ-405", "use GET", NULL);
        } else if (check_headers(st, req, resp, false)) {
            if ((sub = sub_find(st, ref[0])) == NULL)
                ewtp_sim_reply_error(req, resp, 404, "ZZ-404", "unknown reference", NULL);
            else
                reply_status(req, resp, 200, sub, true, NULL, NULL);
        }
    } else {
        ewtp_sim_reply_error(req, resp, 404, "ZZ-404", "no such endpoint", NULL);
    }
    return 0;
}

EWTP_SIM_MODULE(.name = "zz", .country = "ZZ", .authority = "ZZ test authority (template)",
                .create = zz_sim_create, .handle = zz_sim_handle, .destroy = zz_sim_destroy,
                .set = zz_sim_set);
