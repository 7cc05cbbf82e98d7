/* The LHDN MyInvois simulator (ewtp-sim --country my): identity service, document submission,
 * submission and document status, cancellation, as FACTS.md §1 describes them, on loopback.
 *
 *   POST /connect/token                               client credentials (form), optional
 *                                                     onbehalfof header -> {access_token,
 *                                                     token_type, expires_in, scope}
 *   POST /api/v1.0/documentsubmissions/               Bearer; {"documents":[...]} -> 202
 *                                                     {submissionUid, acceptedDocuments[],
 *                                                     rejectedDocuments[]}; 400 BadStructure /
 *                                                     MaximumSizeExceeded, 403
 *                                                     IncorrectSubmitter, 422
 *                                                     DuplicateSubmission (Retry-After)
 *   GET  /api/v1.0/documentsubmissions/{uid}          overallStatus + documentSummary[]
 *   GET  /api/v1.0/documents/{uuid}/details           status + validationResults
 *   PUT  /api/v1.0/documents/state/{uuid}/state       {"status":"cancelled"|"rejected","reason"}
 *   GET  /sim/stats                                   what the simulator saw (tests)
 *
 * What it checks of each document, in MyInvois' validator order [VALID]: at submission
 * (rejectedDocuments): Base64, size (300 KB), documentHash (SHA-256 of the bytes, hex or Base64),
 * structure (UBL 2.1 XSD for XML, the UBL JSON shape for JSON), codeNumber = cbc:ID, one
 * format per submission, issue time within 72 h; after validation_delay_ms (Valid/Invalid in
 * the status answers): Step03 signature (every digest recomputed with the plugin's procedure
 * and the RSA value verified with the certificate's key, DS3xx codes), Step04 taxpayer (the
 * buyer TIN in setting invalid_buyer_tin is "not registered": a test's way to see an
 * Invalid document), Step05 referenced documents (a note's original must be Valid here, or
 * "NA"), Step07 duplicate (the same codeNumber Valid already). Rate limits per minute and
 * client are settings (0: off). Error bodies follow [ERR]: {"error":{propertyName,
 * propertyPath, errorCode, error, errorMS, target, innerError}}.
 *
 * Everything runs on the framework's loop thread; documents and submissions are kept in
 * arrays (a test simulator holds thousands, not millions, so lookups are linear). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>
#include <ewtp/message.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

#include "my.h"

#ifndef MY_XSD_DEFAULT
#define MY_XSD_DEFAULT "UBL-Invoice-2.1.xsd"
#endif

#define NS_INV "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
#define NS_CAC "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
#define NS_CBC "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#define H72_S (72 * 3600)

/* What the simulator found about one document; the status shows it after validation. */
struct sim_doc {
    char uuid[27], long_id[41];
    char *sub_uid;
    char *code_number; /* cbc:ID */
    char *type_code, *version;
    char *issuer_tin, *buyer_tin, *buyer_name;
    char *issued;                 /* RFC 3339 */
    char *total_excl, *total_pay; /* decimal strings as the document says */
    char *ref_uuid;               /* a note's original */
    const char *status;           /* "Submitted", "Valid", "Invalid", "Cancelled" */
    /* The failed validation step, when Invalid. */
    const char *step, *err_code, *err_path;
    char *err_text;
    int64_t received_ms, validated_ms, cancelled_ms, reject_req_ms;
    char *reason;
};

struct sim_sub {
    char uid[27];
    char *owner; /* the taxpayer the token represents (duplicate detection) */
    char hash[65];
    int64_t received_ms;
    size_t *docs; /* indexes into st->docs */
    size_t n_docs;
    struct ewtp_sim_timer *timer;
    struct my_sim *st;
};

struct sim_token {
    char *value;
    char *client_id;
    char *onbehalfof; /* "TIN[:BRN]" or NULL */
    int64_t expires_ms;
};

/* Requests per minute of one kind, in fixed one-minute windows. */
struct rate {
    int64_t window_start;
    int64_t count;
    int64_t rpm; /* 0: off */
};

struct my_sim {
    struct ewtp_sim *sim;
    struct ewtp_xsd *xsd;
    /* settings */
    char *client_id, *client_secret; /* NULL: any */
    char *taxpayer_tin;              /* NULL: any issuer for a taxpayer token */
    char *invalid_buyer_tin;
    char *document_hash; /* "any", "hex", "base64" */
    int64_t token_ttl_s, validation_delay_ms, cancel_window_s, max_issue_age_s, duplicate_window_s;
    bool check_references;
    struct rate rate_token, rate_submit, rate_status, rate_cancel;
    /* state */
    uint64_t counter;
    struct sim_token *tokens;
    size_t n_tokens, cap_tokens;
    struct sim_doc *docs;
    size_t n_docs, cap_docs;
    struct sim_sub **subs;
    size_t n_subs, cap_subs;
    /* statistics for /sim/stats */
    uint64_t token_requests, tokens_issued, submit_requests, rejected_at_submission;
    size_t largest_submission;
};

/* ---- settings ---------------------------------------------------------------------------- */

static int set_int(struct ewtp_errors *why, const char *key, const char *value, int64_t def,
                   int64_t max, int64_t *out)
{
    return ewtp_sim_set_int(key, value, def, 0, max, why, out);
}

static int my_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct my_sim *st = state;
    if (strcmp(key, "client_id") == 0)
        return ewtp_sim_set_string(&st->client_id, value, NULL);
    if (strcmp(key, "client_secret") == 0)
        return ewtp_sim_set_string(&st->client_secret, value, NULL);
    if (strcmp(key, "taxpayer_tin") == 0)
        return ewtp_sim_set_string(&st->taxpayer_tin, value, NULL);
    if (strcmp(key, "invalid_buyer_tin") == 0)
        return ewtp_sim_set_string(&st->invalid_buyer_tin, value, "C99999999990");
    if (strcmp(key, "document_hash") == 0) {
        const char *v = value ? value : "any";
        if (strcmp(v, "any") != 0 && strcmp(v, "hex") != 0 && strcmp(v, "base64") != 0) {
            ewtp_errors_add(why, key, "format", "document_hash must be any, hex or base64");
            return -EWTP_EINVAL;
        }
        return ewtp_sim_set_string(&st->document_hash, v, NULL);
    }
    if (strcmp(key, "check_references") == 0)
        return ewtp_sim_set_bool(key, value, true, why, &st->check_references);
    if (strcmp(key, "token_ttl_s") == 0)
        return set_int(why, key, value, 3600, 86400, &st->token_ttl_s);
    if (strcmp(key, "validation_delay_ms") == 0)
        return set_int(why, key, value, 300, 3600000, &st->validation_delay_ms);
    if (strcmp(key, "cancel_window_s") == 0)
        return set_int(why, key, value, H72_S, 86400 * 365, &st->cancel_window_s);
    if (strcmp(key, "max_issue_age_s") == 0)
        return set_int(why, key, value, H72_S, 86400 * 365, &st->max_issue_age_s);
    if (strcmp(key, "duplicate_window_s") == 0)
        return set_int(why, key, value, 600, 86400, &st->duplicate_window_s);
    if (strcmp(key, "rpm_token") == 0)
        return set_int(why, key, value, 0, 1000000, &st->rate_token.rpm);
    if (strcmp(key, "rpm_submit") == 0)
        return set_int(why, key, value, 0, 1000000, &st->rate_submit.rpm);
    if (strcmp(key, "rpm_status") == 0)
        return set_int(why, key, value, 0, 1000000, &st->rate_status.rpm);
    if (strcmp(key, "rpm_cancel") == 0)
        return set_int(why, key, value, 0, 1000000, &st->rate_cancel.rpm);
    if (strcmp(key, "xsd") == 0) {
        const char *path = value && *value ? value : MY_XSD_DEFAULT;
        struct ewtp_xsd *x = NULL;
        if (ewtp_xsd_load(path, why, &x) != 0) {
            ewtp_errors_add(why, key, "format", "cannot load the UBL 2.1 Invoice schema %s", path);
            return -EWTP_EINVAL;
        }
        ewtp_xsd_free(st->xsd);
        st->xsd = x;
        return 0;
    }
    return -EWTP_ENOTFOUND;
}

static void doc_free(struct sim_doc *d)
{
    free(d->sub_uid);
    free(d->code_number);
    free(d->type_code);
    free(d->version);
    free(d->issuer_tin);
    free(d->buyer_tin);
    free(d->buyer_name);
    free(d->issued);
    free(d->total_excl);
    free(d->total_pay);
    free(d->ref_uuid);
    free(d->err_text);
    free(d->reason);
}

static void my_sim_destroy(void *state)
{
    struct my_sim *st = state;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_subs; i++) {
        ewtp_sim_timer_cancel(st->sim, st->subs[i]->timer);
        free(st->subs[i]->owner);
        free(st->subs[i]->docs);
        free(st->subs[i]);
    }
    free(st->subs);
    for (size_t i = 0; i < st->n_docs; i++)
        doc_free(&st->docs[i]);
    free(st->docs);
    for (size_t i = 0; i < st->n_tokens; i++) {
        free(st->tokens[i].value);
        free(st->tokens[i].client_id);
        free(st->tokens[i].onbehalfof);
    }
    free(st->tokens);
    ewtp_xsd_free(st->xsd);
    free(st->client_id);
    free(st->client_secret);
    free(st->taxpayer_tin);
    free(st->invalid_buyer_tin);
    free(st->document_hash);
    free(st);
}

static const char *const defaults[] = {
    "invalid_buyer_tin", "document_hash",       "check_references",
    "token_ttl_s",       "validation_delay_ms", "cancel_window_s",
    "max_issue_age_s",   "duplicate_window_s",  NULL};

static int my_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct my_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    int rc = ewtp_sim_apply_settings(st, my_sim_set, defaults, settings,
                                     "client_id client_secret taxpayer_tin invalid_buyer_tin "
                                     "document_hash check_references token_ttl_s "
                                     "validation_delay_ms cancel_window_s max_issue_age_s "
                                     "duplicate_window_s rpm_token rpm_submit rpm_status "
                                     "rpm_cancel xsd",
                                     why);
    if (rc == 0 && st->xsd == NULL)
        rc = my_sim_set(st, "xsd", NULL, why);
    if (rc != 0) {
        my_sim_destroy(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* A 26-character identifier in the style of MyInvois' UUIDs and submission UIDs (upper-case
 * letters and digits), unique within this run. */
static void new_id(struct my_sim *st, const char *kind, char *out, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    char seed[96];
    snprintf(seed, sizeof(seed), "%s:%llu:%lld", kind, (unsigned long long)++st->counter,
             (long long)ewtp_sim_now_ms(st->sim));
    unsigned char md[EWTP_DIGEST_MAX];
    size_t n = 0;
    ewtp_digest(EWTP_DIGEST_SHA256, seed, strlen(seed), md, &n);
    for (size_t i = 0; i + 1 < len && i < n; i++)
        out[i] = alphabet[md[i] & 31];
    out[len - 1 < n ? len - 1 : n] = '\0';
}

static const char *iso_time(struct ewtp_arena *a, int64_t ms)
{
    if (ms <= 0)
        return NULL;
    char buf[40];
    ewtp_time_format(ms - ms % 1000, 0, buf, sizeof(buf));
    return ewtp_arena_strdup(a, buf);
}

static const char *finish(struct ewtp_jsonw *w)
{
    const char *out = NULL;
    size_t len = 0;
    return w && ewtp_jsonw_finish(w, &out, &len) == 0 ? out : NULL;
}

static void reply_w(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp, int status,
                    struct ewtp_jsonw *w)
{
    const char *json = finish(w);
    if (json == NULL)
        ewtp_sim_reply_error(req, resp, 500, "InternalServerError", "out of memory", NULL);
    else
        ewtp_sim_reply_json(resp, status, json);
}

/* The standard error body [ERR]. */
static void api_error(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                      int status, const char *code, const char *message, const char *target,
                      const char *path)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "error");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "propertyName", NULL);
    ewtp_jsonw_kv_string(w, "propertyPath", path);
    ewtp_jsonw_kv_string(w, "errorCode", code);
    ewtp_jsonw_kv_string(w, "error", message);
    ewtp_jsonw_kv_string(w, "errorMS", message); /* the Malay text; the simulator has none */
    ewtp_jsonw_kv_string(w, "target", target);
    ewtp_jsonw_kv_string(w, "innerError", NULL);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, status, w);
    char *cid = ewtp_arena_printf(req->arena, "sim-%llu", (unsigned long long)req->body_len);
    ewtp_sim_reply_header(resp, "correlationId", cid);
}

/* false (and a 429 in resp) when this minute's budget of r is spent. */
static bool rate_ok(struct my_sim *st, struct rate *r, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp)
{
    if (r->rpm == 0)
        return true;
    int64_t now = ewtp_sim_now_ms(st->sim);
    if (now - r->window_start >= 60000) {
        r->window_start = now;
        r->count = 0;
    }
    int64_t reset_s = (r->window_start + 60000 - now + 999) / 1000;
    if (reset_s < 1)
        reset_s = 1;
    if (++r->count > r->rpm) {
        api_error(req, resp, 429, "TooManyRequests",
                  "the client sent more requests than allowed per minute", NULL, NULL);
        ewtp_sim_reply_header(resp, "Retry-After",
                              ewtp_arena_printf(req->arena, "%lld", (long long)reset_s));
        ewtp_sim_reply_header(resp, "X-Rate-Limit-Limit",
                              ewtp_arena_printf(req->arena, "%lld", (long long)r->rpm));
        ewtp_sim_reply_header(resp, "X-Rate-Limit-Remaining", "0");
        return false;
    }
    ewtp_sim_reply_header(resp, "X-Rate-Limit-Limit",
                          ewtp_arena_printf(req->arena, "%lld", (long long)r->rpm));
    ewtp_sim_reply_header(resp, "X-Rate-Limit-Remaining",
                          ewtp_arena_printf(req->arena, "%lld", (long long)(r->rpm - r->count)));
    return true;
}

/* ---- identity service -------------------------------------------------------------------- */

static void oauth_error(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                        const char *error, const char *description)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "error", error);
    ewtp_jsonw_kv_string(w, "error_description", description);
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 400, w);
}

static void token(struct my_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp)
{
    st->token_requests++;
    if (!rate_ok(st, &st->rate_token, req, resp))
        return;
    const char *ct = ewtp_sim_request_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oauth_error(req, resp, "invalid_request",
                    "the body must be application/x-www-form-urlencoded");
        return;
    }
    const char *grant = ewtp_sim_form_field(req, "grant_type");
    const char *id = ewtp_sim_form_field(req, "client_id");
    const char *secret = ewtp_sim_form_field(req, "client_secret");
    const char *scope = ewtp_sim_form_field(req, "scope");
    if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
        oauth_error(req, resp, "unsupported_grant_type", "only client_credentials is supported");
        return;
    }
    if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0' ||
        (st->client_id && strcmp(id, st->client_id) != 0) ||
        (st->client_secret && strcmp(secret, st->client_secret) != 0)) {
        oauth_error(req, resp, "invalid_client", "unknown client or wrong secret");
        return;
    }
    if (scope && *scope && strcmp(scope, "InvoicingAPI") != 0) {
        oauth_error(req, resp, "invalid_scope", "the only scope is InvoicingAPI");
        return;
    }
    /* Intermediary: "TIN" or "TIN:BRN" [LOGIN]; the token then represents that taxpayer. */
    const char *obo = ewtp_sim_request_header(req, "onbehalfof");
    if (obo && (*obo == '\0' || strlen(obo) > 40)) {
        oauth_error(req, resp, "invalid_request", "onbehalfof must be TIN or TIN:BRN");
        return;
    }
    if (st->n_tokens == st->cap_tokens) {
        size_t cap = st->cap_tokens ? 2 * st->cap_tokens : 16;
        struct sim_token *t = realloc(st->tokens, cap * sizeof(*t));
        if (t == NULL) {
            api_error(req, resp, 500, "InternalServerError", "out of memory", NULL, NULL);
            return;
        }
        st->tokens = t;
        st->cap_tokens = cap;
    }
    char raw[27];
    new_id(st, "token", raw, sizeof(raw));
    struct sim_token *t = &st->tokens[st->n_tokens];
    memset(t, 0, sizeof(*t));
    t->value = malloc(64);
    if (t->value)
        snprintf(t->value, 64, "sim.%s", raw);
    t->client_id = strdup(id);
    t->onbehalfof = obo ? strdup(obo) : NULL;
    t->expires_ms = ewtp_sim_now_ms(st->sim) + st->token_ttl_s * 1000;
    st->n_tokens++;
    st->tokens_issued++;
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "access_token", t->value);
    ewtp_jsonw_kv_string(w, "token_type", "Bearer");
    ewtp_jsonw_kv_int(w, "expires_in", st->token_ttl_s);
    ewtp_jsonw_kv_string(w, "scope", "InvoicingAPI");
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 200, w);
}

/* The token of the request, or NULL with a 401 in resp. */
static const struct sim_token *authorize(struct my_sim *st, const struct ewtp_sim_request *req,
                                         struct ewtp_sim_response *resp)
{
    const char *token = ewtp_sim_bearer(req);
    if (token) {
        int64_t now = ewtp_sim_now_ms(st->sim);
        for (size_t i = st->n_tokens; i-- > 0;) {
            const struct sim_token *t = &st->tokens[i];
            if (t->value && strcmp(t->value, token) == 0) {
                if (now < t->expires_ms)
                    return t;
                break;
            }
        }
    }
    api_error(req, resp, 401, "Unauthorized", "the access token is missing, unknown or expired",
              NULL, NULL);
    ewtp_sim_reply_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return NULL;
}

/* The taxpayer TIN a token acts for: the onbehalfof TIN, else the setting, else NULL (any). */
static const char *represented_tin(struct my_sim *st, const struct sim_token *t,
                                   struct ewtp_arena *a)
{
    if (t->onbehalfof) {
        size_t n = strcspn(t->onbehalfof, ":");
        return ewtp_arena_strndup(a, t->onbehalfof, n);
    }
    return st->taxpayer_tin;
}

/* ---- documents --------------------------------------------------------------------------- */

/* A rejected document's error (202 rejectedDocuments[].error). */
struct doc_error {
    const char *code, *message, *target, *detail_code, *detail_message, *detail_target;
};

/* Fields read from a document; strings in the request arena. */
struct fields {
    const char *id, *issue_date, *issue_time, *type_code, *version, *supplier_tin, *buyer_tin,
        *buyer_name, *excl, *payable, *ref_uuid;
};

static const char *xs(struct ewtp_xml_doc *x, struct ewtp_arena *a, const char *path)
{
    const char *v = NULL;
    return ewtp_xml_xpath_string(x, NULL, path, a, &v) == 0 ? v : NULL;
}

#define PARTY_TIN "/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='TIN']"

static int read_xml(struct my_sim *st, struct ewtp_arena *a, const char *doc, size_t len,
                    struct fields *f, struct doc_error *e)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *x = NULL;
    if (errs == NULL)
        return -EWTP_ENOMEM;
    if (ewtp_xml_parse(doc, len, errs, &x) != 0) {
        e->detail_code = "DS300";
        e->detail_message = ewtp_arena_printf(
            a, "the document is not well-formed XML%s%s", ewtp_errors_count(errs) ? ": " : "",
            ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "");
        ewtp_errors_free(errs);
        return -EWTP_EINVAL;
    }
    int rc = ewtp_xsd_validate_doc(st->xsd, x, errs);
    if (rc != 0) {
        e->detail_code = "CF001";
        e->detail_message =
            ewtp_arena_printf(a, "UBL 2.1 schema: %s",
                              ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "?");
        e->detail_target = "Invoice";
        ewtp_errors_free(errs);
        ewtp_xml_free(x);
        return -EWTP_EINVAL;
    }
    ewtp_errors_free(errs);
    ewtp_xml_ns_register(x, "inv", NS_INV);
    ewtp_xml_ns_register(x, "cac", NS_CAC);
    ewtp_xml_ns_register(x, "cbc", NS_CBC);
    f->id = xs(x, a, "/inv:Invoice/cbc:ID");
    f->issue_date = xs(x, a, "/inv:Invoice/cbc:IssueDate");
    f->issue_time = xs(x, a, "/inv:Invoice/cbc:IssueTime");
    f->type_code = xs(x, a, "/inv:Invoice/cbc:InvoiceTypeCode");
    f->version = xs(x, a, "/inv:Invoice/cbc:InvoiceTypeCode/@listVersionID");
    f->supplier_tin = xs(x, a, "/inv:Invoice/cac:AccountingSupplierParty" PARTY_TIN);
    f->buyer_tin = xs(x, a, "/inv:Invoice/cac:AccountingCustomerParty" PARTY_TIN);
    f->buyer_name = xs(x, a,
                       "/inv:Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/"
                       "cbc:RegistrationName");
    f->excl = xs(x, a, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount");
    f->payable = xs(x, a, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount");
    f->ref_uuid =
        xs(x, a, "/inv:Invoice/cac:BillingReference/cac:InvoiceDocumentReference/cbc:UUID");
    ewtp_xml_free(x);
    return 0;
}

/* The text of a UBL JSON leaf ([{"_": value}]) at pointer under Invoice[0]. */
static const char *jleaf(const struct ewtp_json *inv, struct ewtp_arena *a, const char *ptr)
{
    const struct ewtp_json *v = ewtp_json_at(inv, ewtp_arena_printf(a, "%s/0/_", ptr));
    const char *s = ewtp_json_string(v);
    return s ? s : ewtp_json_number_text(v);
}

static const char *jleaf_attr(const struct ewtp_json *inv, struct ewtp_arena *a, const char *ptr,
                              const char *attr)
{
    return ewtp_json_string(ewtp_json_at(inv, ewtp_arena_printf(a, "%s/0/%s", ptr, attr)));
}

/* The party TIN in a UBL JSON party: the PartyIdentification entry with schemeID TIN. */
static const char *jtin(const struct ewtp_json *inv, struct ewtp_arena *a, const char *party)
{
    const struct ewtp_json *ids =
        ewtp_json_at(inv, ewtp_arena_printf(a, "/%s/0/Party/0/PartyIdentification", party));
    for (size_t i = 0; i < ewtp_json_size(ids); i++) {
        const struct ewtp_json *id = ewtp_json_at(ewtp_json_index(ids, i), "/ID/0");
        const char *scheme = ewtp_json_get_string(id, "schemeID");
        if (scheme && strcmp(scheme, "TIN") == 0)
            return ewtp_json_get_string(id, "_");
    }
    return NULL;
}

static int read_json(struct ewtp_arena *a, const char *doc, size_t len, struct fields *f,
                     struct doc_error *e)
{
    const struct ewtp_json *j = ewtp_json_parse(a, doc, len, NULL);
    if (j == NULL) {
        e->detail_code = "DS331";
        e->detail_message = "the document is not JSON";
        return -EWTP_EINVAL;
    }
    /* The UBL 2.1 JSON Alternative Representation: namespaces and Invoice[1]. */
    static const char *const ns[] = {"_D", "_A", "_B", NULL};
    for (size_t i = 0; ns[i]; i++) {
        if (ewtp_json_string(ewtp_json_get(j, ns[i])) == NULL) {
            e->detail_code = "CF001";
            e->detail_message = ewtp_arena_printf(a, "the namespace member %s is missing", ns[i]);
            e->detail_target = ns[i];
            return -EWTP_EINVAL;
        }
    }
    const struct ewtp_json *arr = ewtp_json_get(j, "Invoice");
    const struct ewtp_json *inv = ewtp_json_index(arr, 0);
    if (ewtp_json_type(arr) != EWTP_JSON_ARRAY || ewtp_json_size(arr) != 1 ||
        ewtp_json_type(inv) != EWTP_JSON_OBJECT) {
        e->detail_code = "CF001";
        e->detail_message = "Invoice must be an array of one object";
        e->detail_target = "Invoice";
        return -EWTP_EINVAL;
    }
    static const char *const required[] = {"ID",
                                           "IssueDate",
                                           "IssueTime",
                                           "InvoiceTypeCode",
                                           "DocumentCurrencyCode",
                                           "AccountingSupplierParty",
                                           "AccountingCustomerParty",
                                           "TaxTotal",
                                           "LegalMonetaryTotal",
                                           "InvoiceLine",
                                           NULL};
    for (size_t i = 0; required[i]; i++) {
        const struct ewtp_json *m = ewtp_json_get(inv, required[i]);
        if (ewtp_json_type(m) != EWTP_JSON_ARRAY || ewtp_json_size(m) == 0 ||
            ewtp_json_type(ewtp_json_index(m, 0)) != EWTP_JSON_OBJECT) {
            e->detail_code = "CF001";
            e->detail_message = ewtp_arena_printf(
                a, "Invoice.%s is required, as an array of objects (UBL JSON)", required[i]);
            e->detail_target = required[i];
            return -EWTP_EINVAL;
        }
    }
    /* Every member of Invoice[0] is an array of objects in UBL JSON. */
    for (size_t i = 0; i < ewtp_json_members(inv); i++) {
        const char *key = NULL;
        const struct ewtp_json *m = NULL;
        ewtp_json_member(inv, i, &key, &m);
        if (ewtp_json_type(m) != EWTP_JSON_ARRAY) {
            e->detail_code = "CF001";
            e->detail_message = ewtp_arena_printf(a, "Invoice.%s must be an array", key);
            e->detail_target = key;
            return -EWTP_EINVAL;
        }
    }
    f->id = jleaf(inv, a, "/ID");
    f->issue_date = jleaf(inv, a, "/IssueDate");
    f->issue_time = jleaf(inv, a, "/IssueTime");
    f->type_code = jleaf(inv, a, "/InvoiceTypeCode");
    f->version = jleaf_attr(inv, a, "/InvoiceTypeCode", "listVersionID");
    f->supplier_tin = jtin(inv, a, "AccountingSupplierParty");
    f->buyer_tin = jtin(inv, a, "AccountingCustomerParty");
    f->buyer_name =
        jleaf(inv, a, "/AccountingCustomerParty/0/Party/0/PartyLegalEntity/0/RegistrationName");
    f->excl = jleaf(inv, a, "/LegalMonetaryTotal/0/TaxExclusiveAmount");
    f->payable = jleaf(inv, a, "/LegalMonetaryTotal/0/PayableAmount");
    f->ref_uuid = jleaf(inv, a, "/BillingReference/0/InvoiceDocumentReference/0/UUID");
    return 0;
}

static bool self_billed(const char *type_code)
{
    return type_code && type_code[0] == '1';
}

static struct sim_doc *doc_by_uuid(struct my_sim *st, const char *uuid)
{
    for (size_t i = 0; i < st->n_docs; i++)
        if (strcmp(st->docs[i].uuid, uuid) == 0)
            return &st->docs[i];
    return NULL;
}

/* The submission checks of one document (rejectedDocuments); fields in *f. */
static bool check_document(struct my_sim *st, struct ewtp_arena *a, const struct ewtp_json *d,
                           const char *format, const char **bytes, size_t *len, struct fields *f,
                           struct doc_error *e)
{
    const char *b64 = ewtp_json_get_string(d, "document");
    const char *hash = ewtp_json_get_string(d, "documentHash");
    const char *code = ewtp_json_get_string(d, "codeNumber");
    e->code = "BadArgument";
    e->message = "Invalid document";
    e->target = code;
    unsigned char *raw = NULL;
    if (b64 == NULL || ewtp_base64_decode(a, b64, strlen(b64), 0, &raw, len) != 0) {
        e->detail_code = "BadStructure";
        e->detail_message = "document is not Base64";
        e->detail_target = "document";
        return false;
    }
    *bytes = (const char *)raw;
    if (*len > MY_MAX_DOC_BYTES) {
        e->code = "MaximumSizeExceeded";
        e->message = "Document size exceeds the limit";
        e->detail_code = "MaximumSizeExceeded";
        e->detail_message =
            ewtp_arena_printf(a, "the document is %zu bytes; at most %u", *len, MY_MAX_DOC_BYTES);
        e->detail_target = "document";
        return false;
    }
    unsigned char md[EWTP_DIGEST_MAX];
    size_t md_len = 0;
    ewtp_digest(EWTP_DIGEST_SHA256, raw, *len, md, &md_len);
    const char *hex = ewtp_hex_encode(a, md, md_len), *b = ewtp_base64_encode(a, md, md_len);
    bool hash_ok =
        hash && ((strcmp(st->document_hash, "base64") != 0 && hex && strcasecmp(hash, hex) == 0) ||
                 (strcmp(st->document_hash, "hex") != 0 && b && strcmp(hash, b) == 0));
    if (!hash_ok) {
        e->detail_code = "DocumentHashMismatch";
        e->detail_message = "documentHash is not the SHA-256 of the document";
        e->detail_target = "documentHash";
        return false;
    }
    int rc = strcmp(format, "XML") == 0 ? read_xml(st, a, *bytes, *len, f, e)
                                        : read_json(a, *bytes, *len, f, e);
    if (rc != 0) {
        if (e->detail_code == NULL) {
            e->detail_code = "BadStructure";
            e->detail_message = "out of memory";
        }
        return false;
    }
    if (f->id == NULL || code == NULL || strcmp(f->id, code) != 0) {
        e->detail_code = "CF002";
        e->detail_message = "codeNumber differs from the document's ID";
        e->detail_target = "codeNumber";
        return false;
    }
    int64_t issued = 0;
    const char *ts = ewtp_arena_printf(a, "%sT%s", f->issue_date ? f->issue_date : "",
                                       f->issue_time ? f->issue_time : "");
    int64_t now = ewtp_sim_now_ms(st->sim);
    if (!ewtp_time_parse(ts, &issued)) {
        e->detail_code = "CF320";
        e->detail_message = "IssueDate/IssueTime is not a UTC date and time";
        e->detail_target = "DatetimeIssued";
        return false;
    }
    if (st->max_issue_age_s && now - issued > st->max_issue_age_s * 1000) {
        e->detail_code = "CF321";
        e->detail_message = "Issuance date time value of the document is too old that cannot be "
                            "submitted.";
        e->detail_target = "DatetimeIssued";
        return false;
    }
    if (issued > now + 5 * 60 * 1000) {
        e->detail_code = "CF322";
        e->detail_message = "Issuance date time value of the document is in the future.";
        e->detail_target = "DatetimeIssued";
        return false;
    }
    return true;
}

/* The asynchronous validators, in MyInvois' order; the first failure makes it Invalid. */
static void validate_document(struct my_sim *st, struct ewtp_arena *a, struct sim_doc *sd,
                              const char *bytes, size_t len, bool json)
{
    sd->status = "Valid";
    if (sd->version && strcmp(sd->version, "1.1") == 0) {
        const char *code = NULL, *why = NULL;
        if (my_verify_digests(a, bytes, len, json, &code, &why) != 0) {
            sd->status = "Invalid";
            sd->step = "Step03-Signature Validator";
            sd->err_code = code;
            sd->err_text = strdup(why ? why : "signature validation failed");
            sd->err_path = "Invoice.UBLExtensions";
            return;
        }
    }
    if (st->invalid_buyer_tin && sd->buyer_tin &&
        strcmp(sd->buyer_tin, st->invalid_buyer_tin) == 0) {
        sd->status = "Invalid";
        sd->step = "Step04-Taxpayer Validator";
        sd->err_code = "CF410";
        sd->err_text = strdup("The buyer TIN is not registered with LHDN (simulator: "
                              "setting invalid_buyer_tin)");
        sd->err_path = "Invoice.AccountingCustomerParty.Party.PartyIdentification.ID";
        return;
    }
    if (st->check_references && sd->ref_uuid && strcmp(sd->ref_uuid, "NA") != 0) {
        struct sim_doc *orig = doc_by_uuid(st, sd->ref_uuid);
        if (orig == NULL || strcmp(orig->status, "Valid") != 0) {
            sd->status = "Invalid";
            sd->step = "Step05-Referenced Documents Validator";
            sd->err_code = "CF501";
            sd->err_text = strdup(orig ? "The referenced document is not Valid"
                                       : "The referenced document UUID is unknown");
            sd->err_path = "Invoice.BillingReference.InvoiceDocumentReference.UUID";
            return;
        }
    }
    for (size_t i = 0; i < st->n_docs; i++) {
        const struct sim_doc *o = &st->docs[i];
        if (o != sd && strcmp(o->status, "Valid") == 0 && o->issuer_tin && sd->issuer_tin &&
            strcmp(o->issuer_tin, sd->issuer_tin) == 0 &&
            strcmp(o->code_number, sd->code_number) == 0 &&
            strcmp(o->type_code ? o->type_code : "", sd->type_code ? sd->type_code : "") == 0) {
            /* [ERR]'s example reuses DS302 here: the step name tells them apart. */
            sd->status = "Invalid";
            sd->step = "Step07-Duplicate Document Validator";
            sd->err_code = "DS302";
            sd->err_text = strdup("Duplicated Submission Validator: a document with this number "
                                  "is already Valid");
            sd->err_path = "Invoice.ID";
            return;
        }
    }
}

static void decide(struct ewtp_sim *sim, void *arg)
{
    struct sim_sub *sub = arg;
    struct my_sim *st = sub->st;
    sub->timer = NULL;
    int64_t now = ewtp_sim_now_ms(sim);
    for (size_t i = 0; i < sub->n_docs; i++) {
        struct sim_doc *d = &st->docs[sub->docs[i]];
        if (strcmp(d->status, "Submitted") != 0)
            continue;
        d->status = d->step ? "Invalid" : "Valid";
        d->validated_ms = now;
        if (d->step == NULL)
            new_id(st, "long", d->long_id, sizeof(d->long_id));
    }
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 64;
    void *p = realloc(*arr, c * elem);
    if (p == NULL)
        return -EWTP_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

static void submit(struct my_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    st->submit_requests++;
    const struct sim_token *t = authorize(st, req, resp);
    if (t == NULL || !rate_ok(st, &st->rate_submit, req, resp))
        return;
    struct ewtp_arena *a = req->arena;
    const char *ct = ewtp_sim_request_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        api_error(req, resp, 400, "BadStructure", "Content-Type must be application/json", NULL,
                  NULL);
        return;
    }
    if (req->body_len > MY_MAX_SUBMISSION_BYTES) {
        api_error(req, resp, 400, "MaximumSizeExceeded",
                  ewtp_arena_printf(a, "the submission is %zu bytes; at most %u", req->body_len,
                                    MY_MAX_SUBMISSION_BYTES),
                  NULL, NULL);
        return;
    }
    const struct ewtp_json *body = ewtp_sim_body_json(req, resp, NULL);
    const struct ewtp_json *docs = ewtp_json_get(body, "documents");
    if (ewtp_json_type(docs) != EWTP_JSON_ARRAY || ewtp_json_size(docs) == 0) {
        api_error(req, resp, 400, "BadStructure",
                  "the body must be {\"documents\":[{format, document, documentHash, "
                  "codeNumber}]}",
                  NULL, "documents");
        return;
    }
    size_t n = ewtp_json_size(docs);
    if (n > MY_MAX_DOCS) {
        api_error(
            req, resp, 400, "MaximumSizeExceeded",
            ewtp_arena_printf(a, "%zu documents; a submission holds at most %d", n, MY_MAX_DOCS),
            NULL, "documents");
        return;
    }
    const char *format = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_json *d = ewtp_json_index(docs, i);
        const char *fmt = ewtp_json_get_string(d, "format");
        if (ewtp_json_type(d) != EWTP_JSON_OBJECT || fmt == NULL ||
            (strcmp(fmt, "XML") != 0 && strcmp(fmt, "JSON") != 0) ||
            ewtp_json_get_string(d, "codeNumber") == NULL) {
            api_error(req, resp, 400, "BadStructure",
                      "every document needs format (XML or JSON), document, documentHash and "
                      "codeNumber",
                      NULL, ewtp_arena_printf(a, "documents[%zu]", i));
            return;
        }
        if (format && strcmp(format, fmt) != 0) {
            api_error(req, resp, 400, "BadStructure",
                      "all documents of a submission must have the same format", NULL,
                      ewtp_arena_printf(a, "documents[%zu].format", i));
            return;
        }
        format = fmt;
    }
    /* The same payload by the same taxpayer within the window [SUBMIT]. */
    const char *owner = represented_tin(st, t, a);
    if (owner == NULL)
        owner = t->client_id;
    unsigned char md[EWTP_DIGEST_MAX];
    size_t md_len = 0;
    ewtp_digest(EWTP_DIGEST_SHA256, req->body, req->body_len, md, &md_len);
    const char *hash = ewtp_hex_encode(a, md, md_len);
    int64_t now = ewtp_sim_now_ms(st->sim);
    for (size_t i = st->n_subs; hash && i-- > 0;) {
        const struct sim_sub *s = st->subs[i];
        if (now - s->received_ms >= st->duplicate_window_s * 1000)
            break;
        if (strcmp(s->hash, hash) == 0 && strcmp(s->owner, owner) == 0) {
            int64_t left = (s->received_ms + st->duplicate_window_s * 1000 - now + 999) / 1000;
            api_error(req, resp, 422, "DuplicateSubmission",
                      ewtp_arena_printf(a, "the same submission was received as %s", s->uid), NULL,
                      NULL);
            ewtp_sim_reply_header(resp, "Retry-After",
                                  ewtp_arena_printf(a, "%lld", (long long)(left > 0 ? left : 1)));
            return;
        }
    }
    /* Check every document before keeping any: a 403 keeps nothing. */
    struct fields *f = ewtp_arena_alloc(a, n * sizeof(*f));
    struct doc_error *e = ewtp_arena_alloc(a, n * sizeof(*e));
    const char **bytes = ewtp_arena_alloc(a, n * sizeof(*bytes));
    size_t *lens = ewtp_arena_alloc(a, n * sizeof(*lens));
    bool *ok = ewtp_arena_alloc(a, n * sizeof(*ok));
    if (!f || !e || !bytes || !lens || !ok) {
        api_error(req, resp, 500, "InternalServerError", "out of memory", NULL, NULL);
        return;
    }
    memset(f, 0, n * sizeof(*f));
    memset(e, 0, n * sizeof(*e));
    const char *tin = represented_tin(st, t, a);
    for (size_t i = 0; i < n; i++) {
        ok[i] = check_document(st, a, ewtp_json_index(docs, i), format, &bytes[i], &lens[i], &f[i],
                               &e[i]);
        const char *issuer = ok[i] && f[i].type_code && self_billed(f[i].type_code)
                                 ? f[i].buyer_tin
                                 : f[i].supplier_tin;
        if (ok[i] && tin && (issuer == NULL || strcmp(issuer, tin) != 0)) {
            api_error(req, resp, 403, "IncorrectSubmitter",
                      ewtp_arena_printf(a,
                                        "document %s is issued by %s, but the token acts for %s "
                                        "(onbehalfof)",
                                        f[i].id, issuer ? issuer : "nobody", tin),
                      f[i].id, NULL);
            return;
        }
    }
    struct sim_sub *sub = calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->owner = strdup(owner)) == NULL ||
        (sub->docs = calloc(n, sizeof(*sub->docs))) == NULL ||
        grow((void **)&st->subs, &st->cap_subs, st->n_subs, sizeof(*st->subs)) != 0) {
        if (sub) {
            free(sub->owner);
            free(sub->docs);
        }
        free(sub);
        api_error(req, resp, 500, "InternalServerError", "out of memory", NULL, NULL);
        return;
    }
    sub->st = st;
    sub->received_ms = now;
    snprintf(sub->hash, sizeof(sub->hash), "%s", hash ? hash : "");
    new_id(st, "submission", sub->uid, sizeof(sub->uid));
    st->subs[st->n_subs++] = sub;
    if (n > st->largest_submission)
        st->largest_submission = n;
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "submissionUid", sub->uid);
    ewtp_jsonw_key(w, "acceptedDocuments");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        if (!ok[i] || grow((void **)&st->docs, &st->cap_docs, st->n_docs, sizeof(*st->docs)) != 0)
            continue;
        struct sim_doc *sd = &st->docs[st->n_docs];
        memset(sd, 0, sizeof(*sd));
        new_id(st, "document", sd->uuid, sizeof(sd->uuid));
        sd->sub_uid = strdup(sub->uid);
        sd->code_number = strdup(f[i].id);
        sd->type_code = dup_or_null(f[i].type_code);
        sd->version = dup_or_null(f[i].version);
        sd->issuer_tin =
            dup_or_null(self_billed(f[i].type_code) ? f[i].buyer_tin : f[i].supplier_tin);
        sd->buyer_tin = dup_or_null(f[i].buyer_tin);
        sd->buyer_name = dup_or_null(f[i].buyer_name);
        sd->issued = dup_or_null(
            ewtp_arena_printf(a, "%sT%s", f[i].issue_date, f[i].issue_time ? f[i].issue_time : ""));
        sd->total_excl = dup_or_null(f[i].excl);
        sd->total_pay = dup_or_null(f[i].payable);
        sd->ref_uuid = dup_or_null(f[i].ref_uuid);
        sd->received_ms = now;
        validate_document(st, a, sd, bytes[i], lens[i], strcmp(format, "JSON") == 0);
        /* Decided now (sd->step says how), shown after the delay: "Submitted" until then. */
        sd->status = "Submitted";
        sub->docs[sub->n_docs++] = st->n_docs++;
        ewtp_sim_record(st->sim, sd->code_number);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "uuid", sd->uuid);
        ewtp_jsonw_kv_string(w, "invoiceCodeNumber", sd->code_number);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_key(w, "rejectedDocuments");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        if (ok[i])
            continue;
        st->rejected_at_submission++;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "invoiceCodeNumber", e[i].target);
        ewtp_jsonw_key(w, "error");
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "code", e[i].code);
        ewtp_jsonw_kv_string(w, "message", e[i].message);
        ewtp_jsonw_kv_string(w, "target", e[i].target);
        ewtp_jsonw_key(w, "details");
        ewtp_jsonw_array_begin(w);
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "code", e[i].detail_code);
        ewtp_jsonw_kv_string(w, "message", e[i].detail_message);
        ewtp_jsonw_kv_string(w, "target", e[i].detail_target);
        ewtp_jsonw_object_end(w);
        ewtp_jsonw_array_end(w);
        ewtp_jsonw_object_end(w);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    sub->timer = ewtp_sim_timer_add(st->sim, st->validation_delay_ms, decide, sub);
    if (sub->timer == NULL)
        decide(st->sim, sub);
    reply_w(req, resp, 202, w);
}

/* ---- status ------------------------------------------------------------------------------ */

static void summary_fields(struct ewtp_jsonw *w, struct ewtp_arena *a, const struct sim_doc *d)
{
    ewtp_jsonw_kv_string(w, "uuid", d->uuid);
    ewtp_jsonw_kv_string(w, "submissionUid", d->sub_uid);
    ewtp_jsonw_kv_string(w, "longId", d->long_id[0] ? d->long_id : NULL);
    ewtp_jsonw_kv_string(w, "internalId", d->code_number);
    ewtp_jsonw_kv_string(w, "typeName", d->type_code);
    ewtp_jsonw_kv_string(w, "typeVersionName", d->version);
    ewtp_jsonw_kv_string(w, "issuerTin", d->issuer_tin);
    ewtp_jsonw_kv_string(w, "receiverId", d->buyer_tin);
    ewtp_jsonw_kv_string(w, "receiverName", d->buyer_name);
    ewtp_jsonw_kv_string(w, "dateTimeIssued", d->issued);
    ewtp_jsonw_kv_string(w, "dateTimeReceived", iso_time(a, d->received_ms));
    ewtp_jsonw_kv_string(w, "dateTimeValidated", iso_time(a, d->validated_ms));
    /* Amounts as the document states them (the simulator converts no currency). */
    if (d->total_excl)
        ewtp_jsonw_kv_decimal(w, "totalExcludingTax", d->total_excl);
    if (d->total_pay)
        ewtp_jsonw_kv_decimal(w, "totalPayableAmount", d->total_pay);
    ewtp_jsonw_kv_string(w, "status", d->status);
    ewtp_jsonw_kv_string(w, "cancelDateTime", iso_time(a, d->cancelled_ms));
    ewtp_jsonw_kv_string(w, "rejectRequestDateTime", iso_time(a, d->reject_req_ms));
    ewtp_jsonw_kv_string(w, "documentStatusReason", d->reason);
    ewtp_jsonw_kv_string(w, "createdByUserId", "ewtp-sim");
}

static struct sim_sub *sub_by_uid(struct my_sim *st, const char *uid)
{
    for (size_t i = 0; i < st->n_subs; i++)
        if (strcmp(st->subs[i]->uid, uid) == 0)
            return st->subs[i];
    return NULL;
}

/* The value of a query parameter as an integer in [min, max]; def when absent; false when
 * present but out of range. */
static bool query_int(const char *q, const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out)
{
    *out = def;
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            char buf[24];
            if (len - nl - 1 >= sizeof(buf))
                return false;
            memcpy(buf, p + nl + 1, len - nl - 1);
            buf[len - nl - 1] = '\0';
            return ewtp_sim_parse_int(buf, min, max, out) == 0;
        }
        p = end ? end + 1 : NULL;
    }
    return true;
}

static void get_submission(struct my_sim *st, const struct ewtp_sim_request *req,
                           struct ewtp_sim_response *resp, const char *uid)
{
    if (authorize(st, req, resp) == NULL || !rate_ok(st, &st->rate_status, req, resp))
        return;
    struct sim_sub *sub = sub_by_uid(st, uid);
    int64_t page = 1, size = 100;
    if (!query_int(req->query, "pageNo", 1, 1000000, 1, &page) ||
        !query_int(req->query, "pageSize", 1, 100, 100, &size)) {
        api_error(req, resp, 400, "BadArgument", "pageNo >= 1 and pageSize from 1 to 100", NULL,
                  NULL);
        return;
    }
    if (sub == NULL) {
        api_error(req, resp, 404, "NotFound", "no such submission", uid, NULL);
        return;
    }
    size_t valid = 0, invalid = 0, pending = 0;
    for (size_t i = 0; i < sub->n_docs; i++) {
        const char *s = st->docs[sub->docs[i]].status;
        if (strcmp(s, "Submitted") == 0)
            pending++;
        else if (strcmp(s, "Invalid") == 0)
            invalid++;
        else
            valid++; /* Valid, or Cancelled after being Valid */
    }
    const char *overall = pending        ? "in progress"
                          : invalid == 0 ? "valid"
                          : valid == 0   ? "invalid"
                                         : "partially valid";
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "submissionUid", sub->uid);
    ewtp_jsonw_kv_int(w, "documentCount", (int64_t)sub->n_docs);
    ewtp_jsonw_kv_string(w, "dateTimeReceived", iso_time(req->arena, sub->received_ms));
    ewtp_jsonw_kv_string(w, "overallStatus", overall);
    ewtp_jsonw_key(w, "documentSummary");
    ewtp_jsonw_array_begin(w);
    for (size_t i = (size_t)((page - 1) * size); i < sub->n_docs && i < (size_t)(page * size);
         i++) {
        ewtp_jsonw_object_begin(w);
        summary_fields(w, req->arena, &st->docs[sub->docs[i]]);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 200, w);
}

static void step(struct ewtp_jsonw *w, const char *name, const char *status,
                 const struct sim_doc *d)
{
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "status", status);
    ewtp_jsonw_kv_string(w, "name", name);
    if (strcmp(status, "Invalid") == 0) {
        ewtp_jsonw_key(w, "error");
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "propertyName", NULL);
        ewtp_jsonw_kv_string(w, "propertyPath", d->err_path);
        ewtp_jsonw_kv_string(w, "errorCode", d->err_code);
        ewtp_jsonw_kv_string(w, "error", d->err_text);
        ewtp_jsonw_kv_string(w, "errorMs", d->err_text);
        ewtp_jsonw_kv_string(w, "innerError", NULL);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_object_end(w);
}

static void get_details(struct my_sim *st, const struct ewtp_sim_request *req,
                        struct ewtp_sim_response *resp, const char *uuid)
{
    if (authorize(st, req, resp) == NULL || !rate_ok(st, &st->rate_status, req, resp))
        return;
    const struct sim_doc *d = doc_by_uuid(st, uuid);
    if (d == NULL) {
        api_error(req, resp, 404, "NotFound", "no such document", uuid, NULL);
        return;
    }
    static const char *const steps[] = {"Step01-Structure Validator",
                                        "Step02-Core Fields Validator",
                                        "Step03-Signature Validator",
                                        "Step04-Taxpayer Validator",
                                        "Step05-Referenced Documents Validator",
                                        "Step06-Code Validator",
                                        "Step07-Duplicate Document Validator",
                                        "Step08-Currency Validator",
                                        NULL};
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    summary_fields(w, req->arena, d);
    bool pending = strcmp(d->status, "Submitted") == 0;
    bool invalid = strcmp(d->status, "Invalid") == 0;
    ewtp_jsonw_key(w, "validationResults");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "status", pending ? "Submitted" : invalid ? "Invalid" : "Valid");
    ewtp_jsonw_key(w, "validationSteps");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; !pending && steps[i]; i++) {
        bool failed = invalid && d->step && strcmp(steps[i], d->step) == 0;
        step(w, steps[i], failed ? "Invalid" : "Valid", d);
        if (failed)
            break; /* validators after the failing one do not run */
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 200, w);
}

/* ---- cancel / reject --------------------------------------------------------------------- */

static void put_state(struct my_sim *st, const struct ewtp_sim_request *req,
                      struct ewtp_sim_response *resp, const char *uuid)
{
    const struct sim_token *t = authorize(st, req, resp);
    if (t == NULL || !rate_ok(st, &st->rate_cancel, req, resp))
        return;
    struct ewtp_arena *a = req->arena;
    const struct ewtp_json *body = ewtp_sim_body_json(req, resp, NULL);
    const char *status = ewtp_json_get_string(body, "status");
    const char *reason = ewtp_json_get_string(body, "reason");
    if (status == NULL || (strcmp(status, "cancelled") != 0 && strcmp(status, "rejected") != 0)) {
        api_error(req, resp, 400, "BadArgument", "status must be \"cancelled\" or \"rejected\"",
                  NULL, "status");
        return;
    }
    if (reason == NULL || *reason == '\0' || strlen(reason) > 300) {
        api_error(req, resp, 400, "BadArgument", "reason is required (at most 300 characters)",
                  NULL, "reason");
        return;
    }
    struct sim_doc *d = doc_by_uuid(st, uuid);
    if (d == NULL) {
        api_error(req, resp, 404, "NotFound", "no such document", uuid, NULL);
        return;
    }
    const char *tin = represented_tin(st, t, a);
    bool cancel = strcmp(status, "cancelled") == 0;
    /* The issuer cancels; the buyer asks for a rejection [CANCEL] [REJECT]. */
    const char *who = cancel ? d->issuer_tin : d->buyer_tin;
    if (tin && (who == NULL || strcmp(who, tin) != 0)) {
        api_error(req, resp, 403, "Forbidden",
                  cancel ? "only the issuer may cancel the document"
                         : "only the buyer may request a rejection",
                  uuid, NULL);
        return;
    }
    if (strcmp(d->status, "Valid") != 0) {
        api_error(req, resp, 400, "IncorrectState",
                  ewtp_arena_printf(a, "the document is %s; only a Valid document can be %s",
                                    d->status, cancel ? "cancelled" : "rejected"),
                  uuid, NULL);
        return;
    }
    int64_t now = ewtp_sim_now_ms(st->sim);
    if (now - d->validated_ms > st->cancel_window_s * 1000) {
        api_error(req, resp, 400, "OperationPeriodOver",
                  "the 72-hour period after validation is over: issue a credit note instead", uuid,
                  NULL);
        return;
    }
    for (size_t i = 0; cancel && i < st->n_docs; i++) {
        const struct sim_doc *o = &st->docs[i];
        if (o->ref_uuid && strcmp(o->ref_uuid, d->uuid) == 0 && strcmp(o->status, "Valid") == 0) {
            api_error(
                req, resp, 400, "ActiveReferencingDocuments",
                ewtp_arena_printf(a, "document %s references it: cancel that one first", o->uuid),
                uuid, NULL);
            return;
        }
    }
    if (!cancel && d->reject_req_ms) {
        api_error(req, resp, 400, "IncorrectState", "a rejection was requested already", uuid,
                  NULL);
        return;
    }
    free(d->reason);
    d->reason = strdup(reason);
    if (cancel) {
        d->status = "Cancelled";
        d->cancelled_ms = now;
    } else {
        d->reject_req_ms = now; /* the document stays Valid until its issuer cancels */
    }
    ewtp_sim_record(st->sim, ewtp_arena_printf(a, "%s/%s", d->code_number, status));
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "uuid", d->uuid);
    ewtp_jsonw_kv_string(w, "status", cancel ? "Cancelled" : "Requested for Rejection");
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 200, w);
}

/* ---- what the simulator saw -------------------------------------------------------------- */

static void stats(struct my_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp)
{
    size_t counts[4] = {0};
    static const char *const names[4] = {"Submitted", "Valid", "Invalid", "Cancelled"};
    for (size_t i = 0; i < st->n_docs; i++)
        for (size_t k = 0; k < 4; k++)
            if (strcmp(st->docs[i].status, names[k]) == 0)
                counts[k]++;
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "token_requests", (int64_t)st->token_requests);
    ewtp_jsonw_kv_int(w, "tokens_issued", (int64_t)st->tokens_issued);
    ewtp_jsonw_key(w, "tokens");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < st->n_tokens; i++) {
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "client_id", st->tokens[i].client_id);
        ewtp_jsonw_kv_string(w, "onbehalfof", st->tokens[i].onbehalfof);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_kv_int(w, "submit_requests", (int64_t)st->submit_requests);
    ewtp_jsonw_kv_int(w, "submissions", (int64_t)st->n_subs);
    ewtp_jsonw_key(w, "submission_sizes");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < st->n_subs; i++)
        ewtp_jsonw_int(w, (int64_t)st->subs[i]->n_docs);
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_kv_int(w, "largest_submission", (int64_t)st->largest_submission);
    ewtp_jsonw_kv_int(w, "documents", (int64_t)st->n_docs);
    ewtp_jsonw_kv_int(w, "rejected_at_submission", (int64_t)st->rejected_at_submission);
    for (size_t k = 0; k < 4; k++)
        ewtp_jsonw_kv_int(w, names[k], (int64_t)counts[k]);
    /* Notes found Invalid for their reference (an unknown or not Valid original). */
    size_t unknown_ref = 0;
    for (size_t i = 0; i < st->n_docs; i++)
        unknown_ref += st->docs[i].err_code && strcmp(st->docs[i].err_code, "CF501") == 0;
    ewtp_jsonw_kv_int(w, "CF501", (int64_t)unknown_ref);
    ewtp_jsonw_object_end(w);
    reply_w(req, resp, 200, w);
}

static int my_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct my_sim *st = state;
    const char *p[1] = {NULL};
    const char *m = req->method;
    struct ewtp_arena *a = req->arena;
    /* MyInvois' paths are documented with a trailing slash ("documentsubmissions/"). */
    size_t pl = strlen(req->path);
    const char *path =
        pl > 1 && req->path[pl - 1] == '/' ? ewtp_arena_strndup(a, req->path, pl - 1) : req->path;
    if (path == NULL)
        return -EWTP_ENOMEM;
    if (ewtp_sim_route(path, "/connect/token", a, NULL, 0)) {
        if (strcmp(m, "POST") == 0)
            token(st, req, resp);
        else
            api_error(req, resp, 405, "MethodNotAllowed", "use POST", NULL, NULL);
    } else if (ewtp_sim_route(path, "/api/v1.0/documentsubmissions", a, NULL, 0)) {
        if (strcmp(m, "POST") == 0)
            submit(st, req, resp);
        else
            api_error(req, resp, 405, "MethodNotAllowed", "use POST", NULL, NULL);
    } else if (ewtp_sim_route(path, "/api/v1.0/documentsubmissions/*", a, p, 1)) {
        if (strcmp(m, "GET") == 0)
            get_submission(st, req, resp, p[0]);
        else
            api_error(req, resp, 405, "MethodNotAllowed", "use GET", NULL, NULL);
    } else if (ewtp_sim_route(path, "/api/v1.0/documents/*/details", a, p, 1)) {
        if (strcmp(m, "GET") == 0)
            get_details(st, req, resp, p[0]);
        else
            api_error(req, resp, 405, "MethodNotAllowed", "use GET", NULL, NULL);
    } else if (ewtp_sim_route(path, "/api/v1.0/documents/state/*/state", a, p, 1)) {
        if (strcmp(m, "PUT") == 0)
            put_state(st, req, resp, p[0]);
        else
            api_error(req, resp, 405, "MethodNotAllowed", "use PUT", NULL, NULL);
    } else if (ewtp_sim_route(path, "/sim/stats", a, NULL, 0) && strcmp(m, "GET") == 0) {
        stats(st, req, resp);
    } else {
        api_error(req, resp, 404, "NotFound", "no such endpoint", req->path, NULL);
    }
    return 0;
}

EWTP_SIM_MODULE(.name = "my", .country = "MY", .authority = "LHDN MyInvois (simulator)",
                .create = my_sim_create, .handle = my_sim_handle, .destroy = my_sim_destroy,
                .set = my_sim_set);
