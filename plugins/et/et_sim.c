/* The EIMS simulator (ewtp-sim --country et): the MoR e-invoicing API as FACTS.md §A
 * reconstructs it, on loopback.
 *
 *   POST /auth/login     {"clientId","clientSecret","apikey","tin"} (plain, or in the signed
 *                        envelope) -> {"statusCode":200,"message":"SUCCESS","data":
 *                        {"accessToken","refreshToken","expiresIn"}}; 401 otherwise
 *   POST /v1/register    Bearer; the invoice object (A.5) -> body {irn, ackDate,
 *                        signedInvoice, signedQR}; 400 with body[].errorMessage[] (and our
 *                        errorCode) for a malformed document or a broken rule (1028, 7020,
 *                        7030); 406 (document number) / 417 (invoice counter, previous IRN)
 *                        "... expected : N" when out of sequence
 *   POST /v1/verify      {"irn"} -> body {irn, status ACTIVE|CANCELLED, documentNumber}; 404
 *   POST /v1/cancel      {"Irn","ReasonCode" 1-4,"Remark"} -> body {cancellationDate, message}
 *   GET  /_et/chain/{tin}/{system}  what was registered, for tests: {"last","last_irn",
 *                        "registered":[{"number","counter","irn","type","related","previous",
 *                        "status","resends"}], "refused_sequence", "logins" (tokens issued)}
 *
 * Sequencing (A.6): per seller TIN and system number, DocumentNumber and InvoiceCounter must
 * each be the last registered + 1 and PreviousIrn the last IRN (null or "" for the first).
 * An identical resend (the same payload bytes) returns the original answer and IRN without
 * using a number: an ASSUMPTION (DECISIONS "Chains"), no client shows it.
 *
 * Settings: client_id, client_secret, api_key, tin (expected login values; unset: any
 * non-empty), require_login (true), require_signature (false: the RSA-SHA512 envelope is
 * then accepted but not required), token_ttl_s (3600), start_document_number (1: the number
 * EIMS expects first), start_counter (same as start_document_number), revoke_tokens (action). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/crypto.h>
#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/message.h>
#include <ewtp/sim.h>

struct et_doc {
    struct et_doc *next;
    char *irn, *tin, *system, *type, *related, *transaction_type;
    char *previous; /* its ReferenceDetails.PreviousIrn (NULL for the first) */
    char *hash;     /* SHA-256 of the payload bytes: identical resends */
    char *answer;   /* the original answer body */
    char **items;   /* ItemCode of each line */
    size_t n_items;
    struct ewtp_dec total;
    int64_t number, counter;
    bool cancelled;
    char *cancel_date;
    unsigned resends;
};

struct et_chain {
    struct et_chain *next;
    char *tin, *system;
    int64_t last, last_counter;
    char *last_irn;
    size_t refused;
};

struct et_sim {
    struct ewtp_sim *sim;
    char *client_id, *client_secret, *api_key, *tin;
    bool require_login, require_signature;
    int64_t token_ttl_s, start_number, start_counter;
    int64_t *token_exp; /* token "et-access-<n>" expires at token_exp[n - 1] */
    size_t n_tokens, cap_tokens;
    struct et_doc *docs;
    struct et_chain *chains;
    uint64_t irn_seq;
};

/* ---- settings ---- */

static int et_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct et_sim *st = state;
    if (strcmp(key, "client_id") == 0)
        return ewtp_sim_set_string(&st->client_id, value, NULL);
    if (strcmp(key, "client_secret") == 0)
        return ewtp_sim_set_string(&st->client_secret, value, NULL);
    if (strcmp(key, "api_key") == 0)
        return ewtp_sim_set_string(&st->api_key, value, NULL);
    if (strcmp(key, "tin") == 0)
        return ewtp_sim_set_string(&st->tin, value, NULL);
    if (strcmp(key, "require_login") == 0)
        return ewtp_sim_set_bool(key, value, true, why, &st->require_login);
    if (strcmp(key, "require_signature") == 0)
        return ewtp_sim_set_bool(key, value, false, why, &st->require_signature);
    if (strcmp(key, "token_ttl_s") == 0)
        return ewtp_sim_set_int(key, value, 3600, 1, 86400 * 30, why, &st->token_ttl_s);
    if (strcmp(key, "start_document_number") == 0) {
        int rc = ewtp_sim_set_int(key, value, 1, 1, INT64_C(999999999999), why, &st->start_number);
        if (rc == 0)
            st->start_counter = st->start_number;
        return rc;
    }
    if (strcmp(key, "start_counter") == 0)
        return ewtp_sim_set_int(key, value, st->start_number, 1, INT64_C(999999999999), why,
                                &st->start_counter);
    if (strcmp(key, "revoke_tokens") == 0) {
        bool now = false;
        int rc = ewtp_sim_set_bool(key, value, false, why, &now);
        for (size_t i = 0; rc == 0 && now && i < st->n_tokens; i++)
            st->token_exp[i] = 0;
        return rc;
    }
    return -EWTP_ENOTFOUND;
}

static void doc_free(struct et_doc *d)
{
    free(d->irn);
    free(d->tin);
    free(d->system);
    free(d->type);
    free(d->related);
    free(d->previous);
    free(d->transaction_type);
    free(d->hash);
    free(d->answer);
    for (size_t i = 0; i < d->n_items; i++)
        free(d->items[i]);
    free(d->items);
    free(d->cancel_date);
    free(d);
}

static void et_sim_destroy(void *state)
{
    struct et_sim *st = state;
    if (st == NULL)
        return;
    while (st->docs) {
        struct et_doc *d = st->docs;
        st->docs = d->next;
        doc_free(d);
    }
    while (st->chains) {
        struct et_chain *c = st->chains;
        st->chains = c->next;
        free(c->tin);
        free(c->system);
        free(c->last_irn);
        free(c);
    }
    free(st->token_exp);
    free(st->client_id);
    free(st->client_secret);
    free(st->api_key);
    free(st->tin);
    free(st);
}

static int et_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct et_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    st->require_login = true;
    st->token_ttl_s = 3600;
    st->start_number = st->start_counter = 1;
    int rc = ewtp_sim_apply_settings(st, et_sim_set, NULL, settings,
                                     "client_id client_secret api_key tin require_login "
                                     "require_signature token_ttl_s start_document_number "
                                     "start_counter",
                                     why);
    if (rc != 0) {
        et_sim_destroy(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* ---- answers ---- */

static void answer(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp, int status,
                   const char *message, const char *body_json)
{
    const char *json =
        ewtp_arena_printf(req->arena, "{\"statusCode\":%d,\"message\":\"%s\",\"body\":%s}", status,
                          message, body_json ? body_json : "null");
    ewtp_sim_reply_json(resp, status, json);
}

/* {"statusCode":status,"message":...,"body":[{"errorCode"?, "errorMessage":[texts]}]} */
static void refuse(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp, int status,
                   const char *message, const char *code, const char *const *texts, size_t n)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "statusCode", status);
    ewtp_jsonw_kv_string(w, "message", message);
    ewtp_jsonw_key(w, "body");
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    if (code)
        ewtp_jsonw_kv_string(w, "errorCode", code);
    ewtp_jsonw_key(w, "errorMessage");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        ewtp_jsonw_string(w, texts[i]);
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (ewtp_jsonw_finish(w, &out, &len) != 0)
        out = "{\"statusCode\":500,\"message\":\"INTERNAL\"}";
    ewtp_sim_reply_json(resp, status, out);
}

static void refuse1(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp, int status,
                    const char *code, const char *text)
{
    const char *texts[1] = {text};
    refuse(req, resp, status,
           status == 400   ? "BAD_REQUEST"
           : status == 404 ? "NOT_FOUND"
           : status == 401 ? "UNAUTHORIZED"
                           : "NOT_ACCEPTABLE",
           code, texts, 1);
}

/* ---- the signed envelope ---- */

/* The span of the JSON value starting at p (object, array, string or scalar); NULL when
 * malformed. Strings are skipped with their escapes, so braces inside them do not count. */
static const char *value_end(const char *p, const char *end)
{
    int depth = 0;
    bool scalar = *p != '{' && *p != '[' && *p != '"';
    for (; p < end; p++) {
        char ch = *p;
        if (ch == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            if (p >= end)
                return NULL;
            if (depth == 0)
                return p + 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (scalar)
                return p;
            if (--depth == 0)
                return p + 1;
        } else if (scalar && (ch == ',' || ch == ' ' || ch == '\n')) {
            return p;
        }
    }
    return scalar ? p : NULL;
}

/* The raw bytes of the top-level member "request" of an envelope. */
static bool raw_request(const char *body, size_t len, const char **start, size_t *n)
{
    const char *end = body + len, *p = body;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= end || *p != '{')
        return false;
    p++;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ','))
            p++;
        if (p >= end || *p != '"')
            return false;
        const char *k = p + 1;
        const char *ke = value_end(p, end);
        if (ke == NULL)
            return false;
        bool is_request = (size_t)(ke - k - 1) == 7 && strncmp(k, "request", 7) == 0;
        p = ke;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t' || *p == '\r'))
            p++;
        const char *ve = p < end ? value_end(p, end) : NULL;
        if (ve == NULL)
            return false;
        if (is_request) {
            *start = p;
            *n = (size_t)(ve - p);
            return true;
        }
        p = ve;
    }
    return false;
}

/* RSA-SHA512 (ABI 1.3's EWTP_SIGN_RSA_SHA512). */
static int sig_verify(const unsigned char *der, size_t der_len, const void *data, size_t len,
                      const unsigned char *sig, size_t sig_len)
{
    return ewtp_sig_verify(der, der_len, EWTP_SIGN_RSA_SHA512, data, len, sig, sig_len);
}

/* Unwraps (and with a signature, verifies) the request: 0 and the payload bytes, or an
 * answer already set. */
static int unwrap(struct et_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp, const char **payload, size_t *len)
{
    const struct ewtp_json *root = ewtp_sim_body_json(req, resp, NULL);
    if (root == NULL) {
        refuse1(req, resp, 400, NULL, "the request body is not a JSON object");
        return -1;
    }
    bool wrapped = ewtp_json_get(root, "request") && ewtp_json_get(root, "signature");
    if (!wrapped) {
        if (st->require_signature) {
            refuse1(req, resp, 400, NULL,
                    "the request must be signed: {request, signature, certificate}");
            return -1;
        }
        *payload = req->body;
        *len = req->body_len;
        return 0;
    }
    const char *raw = NULL;
    size_t raw_len = 0;
    const char *sig_b64 = ewtp_json_get_string(root, "signature");
    const char *cert_b64 = ewtp_json_get_string(root, "certificate");
    unsigned char *sig = NULL, *pem = NULL, *der = NULL;
    size_t sig_len = 0, pem_len = 0, der_len = 0;
    if (!raw_request(req->body, req->body_len, &raw, &raw_len) || sig_b64 == NULL ||
        cert_b64 == NULL ||
        ewtp_base64_decode(req->arena, sig_b64, strlen(sig_b64), 0, &sig, &sig_len) != 0 ||
        ewtp_base64_decode(req->arena, cert_b64, strlen(cert_b64), 0, &pem, &pem_len) != 0) {
        refuse1(req, resp, 400, NULL, "malformed signed envelope");
        return -1;
    }
    const char *b = strstr((const char *)pem, "-----BEGIN CERTIFICATE-----");
    const char *e = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;
    if (b == NULL || e == NULL) {
        refuse1(req, resp, 400, NULL, "certificate is not a base64 PEM certificate");
        return -1;
    }
    b += strlen("-----BEGIN CERTIFICATE-----");
    if (ewtp_base64_decode(req->arena, b, (size_t)(e - b), EWTP_BASE64_ALLOW_WS, &der, &der_len) !=
            0 ||
        sig_verify(der, der_len, raw, raw_len, sig, sig_len) != 0) {
        refuse1(req, resp, 400, NULL,
                "signature does not verify (RSA-SHA512 over the request bytes)");
        return -1;
    }
    *payload = raw;
    *len = raw_len;
    return 0;
}

/* ---- login and tokens ---- */

static bool matches(const char *want, const char *got)
{
    return got && got[0] && (want == NULL || strcmp(want, got) == 0);
}

static void login(struct et_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp)
{
    const char *p = NULL;
    size_t n = 0;
    if (unwrap(st, req, resp, &p, &n) != 0)
        return;
    const struct ewtp_json *o = ewtp_json_parse(req->arena, p, n, NULL);
    if (!matches(st->client_id, ewtp_json_get_string(o, "clientId")) ||
        !matches(st->client_secret, ewtp_json_get_string(o, "clientSecret")) ||
        !matches(st->api_key, ewtp_json_get_string(o, "apikey")) ||
        !matches(st->tin, ewtp_json_get_string(o, "tin"))) {
        ewtp_sim_reply_json(resp, 401,
                            "{\"statusCode\":401,\"message\":\"Invalid client credentials\"}");
        return;
    }
    if (st->n_tokens == st->cap_tokens) {
        size_t cap = st->cap_tokens ? 2 * st->cap_tokens : 16;
        int64_t *t = realloc(st->token_exp, cap * sizeof(*t));
        if (t == NULL) {
            ewtp_sim_reply_json(resp, 500, "{\"statusCode\":500,\"message\":\"INTERNAL\"}");
            return;
        }
        st->token_exp = t;
        st->cap_tokens = cap;
    }
    st->token_exp[st->n_tokens++] = ewtp_sim_now_ms(st->sim) + st->token_ttl_s * 1000;
    ewtp_sim_reply_json(
        resp, 200,
        ewtp_arena_printf(req->arena,
                          "{\"statusCode\":200,\"message\":\"SUCCESS\",\"data\":{\"accessToken\":"
                          "\"et-access-%zu\",\"refreshToken\":\"et-refresh-%zu\",\"expiresIn\":"
                          "%lld}}",
                          st->n_tokens, st->n_tokens, (long long)st->token_ttl_s));
}

static bool authorised(struct et_sim *st, const struct ewtp_sim_request *req)
{
    const char *token = ewtp_sim_bearer(req);
    if (token == NULL)
        return false;
    if (!st->require_login)
        return true;
    unsigned long long n = 0;
    char tail = 0;
    if (sscanf(token, "et-access-%llu%c", &n, &tail) != 1 || n == 0 || n > st->n_tokens)
        return false;
    return ewtp_sim_now_ms(st->sim) < st->token_exp[n - 1];
}

/* ---- register ---- */

static struct et_chain *chain_of(struct et_sim *st, const char *tin, const char *system)
{
    for (struct et_chain *c = st->chains; c; c = c->next)
        if (strcmp(c->tin, tin) == 0 && strcmp(c->system, system) == 0)
            return c;
    struct et_chain *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->tin = strdup(tin)) == NULL || (c->system = strdup(system)) == NULL) {
        if (c)
            free(c->tin);
        free(c);
        return NULL;
    }
    c->last = st->start_number - 1;
    c->last_counter = st->start_counter - 1;
    c->next = st->chains;
    st->chains = c;
    return c;
}

static struct et_doc *doc_by_irn(struct et_sim *st, const char *irn)
{
    for (struct et_doc *d = st->docs; irn && d; d = d->next)
        if (strcmp(d->irn, irn) == 0)
            return d;
    return NULL;
}

/* A JSON number (or numeric string) as an exact decimal. */
static bool num(const struct ewtp_json *j, struct ewtp_dec *out)
{
    const char *t = ewtp_json_number_text(j);
    enum ewtp_json_type ty = ewtp_json_type(j);
    if (t == NULL || (ty != EWTP_JSON_INTEGER && ty != EWTP_JSON_REAL))
        return false;
    return ewtp_dec_parse_ex(t, strlen(t), 18, 6, out) == 0;
}

static bool int_or_string(const struct ewtp_json *j, int64_t *out)
{
    if (ewtp_json_int(j, out))
        return true;
    const char *s = ewtp_json_string(j);
    struct ewtp_dec d;
    return s && ewtp_dec_parse(s, &d) == 0 && ewtp_dec_to_int(d, out) == 0;
}

static bool is_date(const char *s)
{
    /* dd-mm-yyyyTHH:MM:SS */
    static const char shape[] = "99-99-9999T99:99:99";
    if (s == NULL || strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == '9' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    return true;
}

static bool ten_digits(const char *s)
{
    if (s == NULL || strlen(s) != 10)
        return false;
    for (size_t i = 0; i < 10; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

struct problems {
    const char *texts[32];
    size_t n;
    const char *code;
};

static void problem(struct problems *p, const char *code, const char *text)
{
    if (p->n < 32)
        p->texts[p->n++] = text;
    if (p->code == NULL && code)
        p->code = code;
}

static bool near_cent(struct ewtp_dec a, struct ewtp_dec b)
{
    return ewtp_dec_within(a, b, ewtp_dec_minor_unit(2));
}

/* Structure and arithmetic of the invoice object (A.5); rules 1028, 7020, 7030. */
static void check_invoice(struct et_sim *st, struct ewtp_arena *a, const struct ewtp_json *o,
                          struct problems *p, struct ewtp_dec *total_out)
{
    static const char *const sections[] = {"BuyerDetails",
                                           "DocumentDetails",
                                           "ItemList",
                                           "PaymentDetails",
                                           "ReferenceDetails",
                                           "SellerDetails",
                                           "SourceSystem",
                                           "TransactionType",
                                           "ValueDetails",
                                           "Version",
                                           NULL};
    for (size_t i = 0; sections[i]; i++)
        if (ewtp_json_get(o, sections[i]) == NULL)
            problem(p, NULL, ewtp_arena_printf(a, "%s is required", sections[i]));
    if (p->n)
        return;
    const struct ewtp_json *dd = ewtp_json_get(o, "DocumentDetails");
    const struct ewtp_json *sel = ewtp_json_get(o, "SellerDetails");
    const struct ewtp_json *vd = ewtp_json_get(o, "ValueDetails");
    const char *type = ewtp_json_get_string(dd, "Type");
    const char *ver = ewtp_json_get_string(o, "Version");
    const char *tt = ewtp_json_get_string(o, "TransactionType");
    if (ver == NULL || strcmp(ver, "1") != 0)
        problem(p, NULL, "Version must be \"1\"");
    if (type == NULL || (strcmp(type, "INV") && strcmp(type, "CRE") && strcmp(type, "DEB")))
        problem(p, NULL, "DocumentDetails.Type must be INV, CRE or DEB");
    if (!is_date(ewtp_json_get_string(dd, "Date")))
        problem(p, NULL, "DocumentDetails.Date must be dd-mm-yyyyTHH:MM:SS");
    if (tt == NULL || (strcmp(tt, "B2B") && strcmp(tt, "B2C")))
        problem(p, NULL, "TransactionType must be B2B or B2C");
    if (!ten_digits(ewtp_json_get_string(sel, "Tin")))
        problem(p, NULL, "SellerDetails.Tin must have 10 digits");
    if (ewtp_json_get_string(sel, "LegalName") == NULL)
        problem(p, NULL, "SellerDetails.LegalName is required");
    const char *btin = ewtp_json_get_string(ewtp_json_get(o, "BuyerDetails"), "Tin");
    if (btin && !ten_digits(btin))
        problem(p, NULL, "BuyerDetails.Tin must have 10 digits");
    if (tt && strcmp(tt, "B2B") == 0 && btin == NULL)
        problem(p, NULL, "a B2B sale needs BuyerDetails.Tin");
    const struct ewtp_json *items = ewtp_json_get(o, "ItemList");
    size_t n = ewtp_json_size(items);
    if (n == 0)
        problem(p, NULL, "ItemList must have at least one item");
    struct ewtp_dec sum_total = ewtp_dec_from_int(0), sum_tax = ewtp_dec_from_int(0);
    bool vat = false;
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_json *it = ewtp_json_index(items, i);
        struct ewtp_dec qty, price, pre, tax, excise, total, disc;
        const char *code = ewtp_json_get_string(it, "ItemCode");
        const char *tc = ewtp_json_get_string(it, "TaxCode");
        const char *nat = ewtp_json_get_string(it, "NatureOfSupplies");
        if (code == NULL || strlen(code) > 15)
            problem(p, NULL,
                    ewtp_arena_printf(a,
                                      "item %zu: ItemCode (1-15 characters) is "
                                      "required",
                                      i + 1));
        if (nat == NULL || (strcasecmp(nat, "goods") && strcasecmp(nat, "service")))
            problem(
                p, NULL,
                ewtp_arena_printf(a, "item %zu: NatureOfSupplies must be goods or service", i + 1));
        if (ewtp_json_get_string(it, "Unit") == NULL)
            problem(p, NULL, ewtp_arena_printf(a, "item %zu: Unit is required", i + 1));
        if (!num(ewtp_json_get(it, "Quantity"), &qty) ||
            !num(ewtp_json_get(it, "UnitPrice"), &price) ||
            !num(ewtp_json_get(it, "PreTaxValue"), &pre) ||
            !num(ewtp_json_get(it, "TaxAmount"), &tax) ||
            !num(ewtp_json_get(it, "Discount"), &disc) ||
            !num(ewtp_json_get(it, "TotalLineAmount"), &total)) {
            problem(p, NULL,
                    ewtp_arena_printf(a,
                                      "item %zu: Quantity, UnitPrice, Discount, "
                                      "PreTaxValue, TaxAmount and TotalLineAmount "
                                      "must be numbers",
                                      i + 1));
            continue;
        }
        if (!num(ewtp_json_get(it, "ExciseTaxValue"), &excise))
            excise = ewtp_dec_from_int(0);
        struct ewtp_dec x, y;
        if (ewtp_dec_mul(qty, price, &x) == 0 && ewtp_dec_sub(x, disc, &x) == 0 &&
            !near_cent(x, pre))
            problem(p, NULL,
                    ewtp_arena_printf(a,
                                      "item %zu: PreTaxValue is not Quantity x UnitPrice - "
                                      "Discount",
                                      i + 1));
        if (tc == NULL || strcmp(tc, "VAT15") != 0) {
            problem(p, NULL,
                    ewtp_arena_printf(a, "item %zu: TaxCode %s is not known", i + 1,
                                      tc ? tc : "(none)"));
        } else if (ewtp_dec_mul(pre, (struct ewtp_dec){15, 2}, &y) == 0 &&
                   ewtp_dec_round(y, 2, &y) == 0 && !near_cent(y, tax)) {
            problem(p, NULL,
                    ewtp_arena_printf(a, "item %zu: TaxAmount is not 15 %% of PreTaxValue", i + 1));
        }
        if (!ewtp_dec_is_zero(tax))
            vat = true;
        if (ewtp_dec_add(pre, tax, &x) == 0 && ewtp_dec_add(x, excise, &x) == 0 &&
            !near_cent(x, total))
            problem(p, NULL,
                    ewtp_arena_printf(a,
                                      "item %zu: TotalLineAmount is not PreTaxValue + "
                                      "TaxAmount + ExciseTaxValue",
                                      i + 1));
        ewtp_dec_add(sum_total, total, &sum_total);
        ewtp_dec_add(sum_tax, tax, &sum_tax);
    }
    struct ewtp_dec tv, tax;
    if (!num(ewtp_json_get(vd, "TotalValue"), &tv) || !num(ewtp_json_get(vd, "TaxValue"), &tax))
        problem(p, NULL, "ValueDetails.TotalValue and TaxValue must be numbers");
    else if (!ewtp_dec_within(tv, sum_total, ewtp_dec_minor_unit(2)) ||
             !ewtp_dec_within(tax, sum_tax, ewtp_dec_minor_unit(2)))
        problem(p, NULL, "ValueDetails totals differ from the sum of the items");
    else
        *total_out = tv;
    const char *cur = ewtp_json_get_string(vd, "InvoiceCurrency");
    struct ewtp_dec rate;
    if (cur && strcmp(cur, "ETB") != 0 && !num(ewtp_json_get(vd, "ExchangeRate"), &rate))
        problem(p, NULL, "ValueDetails.ExchangeRate is required when the currency is not ETB");
    if (vat && ewtp_json_get_string(sel, "VatNumber") == NULL)
        problem(p, "1028", "1028: the seller has no VatNumber but the items carry VAT");
    if (p->n || type == NULL || strcmp(type, "INV") == 0)
        return;
    const char *reason = ewtp_json_get_string(dd, "Reason");
    if (reason == NULL || reason[0] == '\0' || strlen(reason) > 300)
        problem(p, NULL, "DocumentDetails.Reason (1-300 characters) is required for CRE and DEB");
    const char *rel = ewtp_json_get_string(ewtp_json_get(o, "ReferenceDetails"), "RelatedDocument");
    struct et_doc *orig = doc_by_irn(st, rel);
    if (orig == NULL || strcmp(orig->type, "INV") != 0) {
        problem(p, NULL,
                "ReferenceDetails.RelatedDocument must be the IRN of a registered "
                "invoice");
        return;
    }
    if (orig->cancelled)
        problem(p, NULL, "the related invoice is cancelled");
    if (tt && strcmp(orig->transaction_type, tt) != 0)
        problem(p, "7030", "7030: TransactionType differs from the related invoice's");
    for (size_t i = 0; i < n; i++) {
        const char *code = ewtp_json_get_string(ewtp_json_index(items, i), "ItemCode");
        bool found = false;
        for (size_t k = 0; code && k < orig->n_items; k++)
            found = found || strcmp(orig->items[k], code) == 0;
        if (!found) {
            problem(p, "7020",
                    ewtp_arena_printf(a, "7020: item %zu is not an item of the related invoice",
                                      i + 1));
            break;
        }
    }
    if (strcmp(type, "CRE") == 0 && ewtp_dec_cmp(*total_out, orig->total) > 0)
        problem(p, NULL, "the credit note exceeds the related invoice's total");
}

static char *sha256_hex(struct ewtp_arena *a, const void *data, size_t len)
{
    unsigned char md[EWTP_DIGEST_MAX];
    size_t n = 0;
    if (ewtp_digest(EWTP_DIGEST_SHA256, data, len, md, &n) != 0)
        return NULL;
    return ewtp_hex_encode(a, md, n);
}

static void iso_now(struct et_sim *st, char buf[40])
{
    ewtp_time_format(ewtp_sim_now_ms(st->sim), 180, buf, 40);
    buf[19] = '\0'; /* local time without offset, as the clients show it */
}

static void register_doc(struct et_sim *st, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct ewtp_arena *a = req->arena;
    const char *payload = NULL;
    size_t len = 0;
    if (unwrap(st, req, resp, &payload, &len) != 0)
        return;
    const char *hash = sha256_hex(a, payload, len);
    for (struct et_doc *d = st->docs; hash && d; d = d->next) {
        if (strcmp(d->hash, hash) == 0) {
            d->resends++;
            ewtp_sim_log(st->sim, EWTP_LOG_INFO, "identical resend of document %lld: IRN %s",
                         (long long)d->number, d->irn);
            ewtp_sim_reply_json(resp, 200, ewtp_arena_strdup(a, d->answer));
            return;
        }
    }
    const struct ewtp_json *o = ewtp_json_parse(a, payload, len, NULL);
    if (ewtp_json_type(o) != EWTP_JSON_OBJECT) {
        refuse1(req, resp, 400, NULL, "the invoice is not a JSON object");
        return;
    }
    struct problems p = {0};
    struct ewtp_dec total = ewtp_dec_from_int(0);
    check_invoice(st, a, o, &p, &total);
    if (p.n) {
        refuse(req, resp, 400, "BAD_REQUEST", p.code, p.texts, p.n);
        return;
    }
    const struct ewtp_json *dd = ewtp_json_get(o, "DocumentDetails");
    const struct ewtp_json *ss = ewtp_json_get(o, "SourceSystem");
    const char *tin = ewtp_json_get_string(ewtp_json_get(o, "SellerDetails"), "Tin");
    const char *system = ewtp_json_get_string(ss, "SystemNumber");
    int64_t number = 0, counter = 0;
    if (system == NULL || !int_or_string(ewtp_json_get(dd, "DocumentNumber"), &number) ||
        !int_or_string(ewtp_json_get(ss, "InvoiceCounter"), &counter)) {
        refuse1(req, resp, 400, NULL,
                "DocumentNumber, SourceSystem.SystemNumber and InvoiceCounter are required");
        return;
    }
    struct et_chain *c = chain_of(st, tin, system);
    if (c == NULL) {
        ewtp_sim_reply_json(resp, 500, "{\"statusCode\":500,\"message\":\"INTERNAL\"}");
        return;
    }
    const struct ewtp_json *ref = ewtp_json_get(o, "ReferenceDetails");
    const char *prev = ewtp_json_get_string(ref, "PreviousIrn");
    /* A seller that starts at a later number has a previous IRN the simulator never saw. */
    bool prev_ok = c->last_irn ? prev && strcmp(prev, c->last_irn) == 0
                               : st->start_number > 1 || prev == NULL || prev[0] == '\0';
    const char *texts[3];
    size_t nt = 0;
    int status = 0;
    if (number != c->last + 1) {
        texts[nt++] = ewtp_arena_printf(a,
                                        "Document number %lld is not in sequence, expected : "
                                        "%lld",
                                        (long long)number, (long long)(c->last + 1));
        status = 406;
    }
    if (counter != c->last_counter + 1) {
        texts[nt++] = ewtp_arena_printf(a,
                                        "Invoice counter %lld is not in sequence, expected : "
                                        "%lld",
                                        (long long)counter, (long long)(c->last_counter + 1));
        status = status ? status : 417;
    }
    if (!prev_ok) {
        texts[nt++] = ewtp_arena_printf(a,
                                        "Previous IRN does not match the last registered "
                                        "document of this system (document %lld)",
                                        (long long)c->last);
        status = status ? status : 417;
    }
    if (nt) {
        c->refused++;
        refuse(req, resp, status, "NOT_ACCEPTABLE", NULL, texts, nt);
        return;
    }
    struct et_doc *d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto oom;
    char irn_name[256];
    snprintf(irn_name, sizeof(irn_name), "%s|%s|%lld|%llu", tin, system, (long long)number,
             (unsigned long long)++st->irn_seq);
    const char *irn = sha256_hex(a, irn_name, strlen(irn_name));
    char now[40];
    iso_now(st, now);
    const char *type = ewtp_json_get_string(dd, "Type");
    const char *qr = ewtp_arena_printf(a, "%s|%s|%lld|%s", irn, tin, (long long)number, now);
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "statusCode", 200);
    ewtp_jsonw_kv_string(w, "message", "SUCCESS");
    ewtp_jsonw_key(w, "body");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "irn", irn);
    ewtp_jsonw_kv_string(w, "ackDate", now);
    ewtp_jsonw_kv_string(w, "signedInvoice", ewtp_base64_encode(a, payload, len));
    ewtp_jsonw_kv_string(w, "signedQR", ewtp_base64_encode(a, qr, strlen(qr)));
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_object_end(w);
    const char *body = NULL;
    size_t blen = 0;
    if (irn == NULL || ewtp_jsonw_finish(w, &body, &blen) != 0)
        goto oom;
    const struct ewtp_json *items = ewtp_json_get(o, "ItemList");
    d->n_items = ewtp_json_size(items);
    d->items = calloc(d->n_items + 1, sizeof(char *));
    for (size_t i = 0; d->items && i < d->n_items; i++) {
        const char *code = ewtp_json_get_string(ewtp_json_index(items, i), "ItemCode");
        d->items[i] = strdup(code ? code : "");
    }
    d->irn = strdup(irn);
    d->tin = strdup(tin);
    d->system = strdup(system);
    d->type = strdup(type);
    d->transaction_type = strdup(ewtp_json_get_string(o, "TransactionType"));
    d->hash = strdup(hash);
    const char *rel = ewtp_json_get_string(ref, "RelatedDocument");
    d->related = rel ? strdup(rel) : NULL;
    d->previous = prev && prev[0] ? strdup(prev) : NULL;
    d->answer = strdup(body);
    d->total = total;
    d->number = number;
    d->counter = counter;
    if (d->items == NULL || d->irn == NULL || d->tin == NULL || d->system == NULL ||
        d->type == NULL || d->transaction_type == NULL || d->hash == NULL || d->answer == NULL) {
        doc_free(d);
        goto oom;
    }
    char *last = strdup(irn);
    if (last == NULL) {
        doc_free(d);
        goto oom;
    }
    free(c->last_irn);
    c->last_irn = last;
    c->last = number;
    c->last_counter = counter;
    d->next = st->docs;
    st->docs = d;
    ewtp_sim_record(st->sim, ewtp_arena_printf(a, "%s/%s/%lld", tin, system, (long long)number));
    ewtp_sim_reply_json(resp, 200, body);
    return;
oom:
    free(d);
    ewtp_sim_reply_json(resp, 500, "{\"statusCode\":500,\"message\":\"INTERNAL\"}");
}

/* ---- verify and cancel ---- */

static void verify(struct et_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    const char *p = NULL;
    size_t n = 0;
    if (unwrap(st, req, resp, &p, &n) != 0)
        return;
    const struct ewtp_json *o = ewtp_json_parse(req->arena, p, n, NULL);
    struct et_doc *d = doc_by_irn(st, ewtp_json_get_string(o, "irn"));
    if (d == NULL) {
        refuse1(req, resp, 404, NULL, "IRN not found");
        return;
    }
    answer(req, resp, 200, "SUCCESS",
           ewtp_arena_printf(req->arena,
                             "{\"irn\":\"%s\",\"status\":\"%s\",\"documentNumber\":\"%lld\","
                             "\"type\":\"%s\"}",
                             d->irn, d->cancelled ? "CANCELLED" : "ACTIVE", (long long)d->number,
                             d->type));
}

static void cancel(struct et_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    const char *p = NULL;
    size_t n = 0;
    if (unwrap(st, req, resp, &p, &n) != 0)
        return;
    const struct ewtp_json *o = ewtp_json_parse(req->arena, p, n, NULL);
    const char *reason = ewtp_json_get_string(o, "ReasonCode");
    if (reason == NULL || strlen(reason) != 1 || reason[0] < '1' || reason[0] > '4') {
        refuse1(req, resp, 400, NULL, "ReasonCode must be 1, 2, 3 or 4");
        return;
    }
    struct et_doc *d = doc_by_irn(st, ewtp_json_get_string(o, "Irn"));
    if (d == NULL) {
        refuse1(req, resp, 404, NULL, "IRN not found");
        return;
    }
    if (!d->cancelled) {
        char now[40];
        iso_now(st, now);
        d->cancel_date = strdup(now);
        d->cancelled = d->cancel_date != NULL;
    }
    /* A repeated cancel answers as the first did (an assumption, like identical resends). */
    answer(req, resp, 200, "SUCCESS",
           ewtp_arena_printf(req->arena,
                             "{\"cancellationDate\":\"%s\",\"message\":\"Invoice cancelled\"}",
                             d->cancel_date ? d->cancel_date : ""));
}

static void chain_report(struct et_sim *st, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp, const char *tin, const char *system)
{
    struct et_chain *c = NULL;
    for (c = st->chains; c; c = c->next)
        if (strcmp(c->tin, tin) == 0 && strcmp(c->system, system) == 0)
            break;
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "last", c ? c->last : st->start_number - 1);
    ewtp_jsonw_kv_string(w, "last_irn", c ? c->last_irn : NULL);
    ewtp_jsonw_kv_int(w, "refused_sequence", c ? (int64_t)c->refused : 0);
    ewtp_jsonw_kv_int(w, "logins", (int64_t)st->n_tokens);
    ewtp_jsonw_key(w, "registered");
    ewtp_jsonw_array_begin(w);
    /* Oldest first: the list is newest first. */
    size_t n = 0;
    for (struct et_doc *d = st->docs; d; d = d->next)
        n++;
    for (size_t i = n; i > 0; i--) {
        struct et_doc *d = st->docs;
        for (size_t k = 1; k < i; k++)
            d = d->next;
        if (strcmp(d->tin, tin) != 0 || strcmp(d->system, system) != 0)
            continue;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_int(w, "number", d->number);
        ewtp_jsonw_kv_int(w, "counter", d->counter);
        ewtp_jsonw_kv_string(w, "irn", d->irn);
        ewtp_jsonw_kv_string(w, "type", d->type);
        ewtp_jsonw_kv_string(w, "related", d->related);
        ewtp_jsonw_kv_string(w, "previous", d->previous);
        ewtp_jsonw_kv_string(w, "status", d->cancelled ? "CANCELLED" : "ACTIVE");
        ewtp_jsonw_kv_int(w, "resends", d->resends);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (ewtp_jsonw_finish(w, &out, &len) != 0)
        out = "{}";
    ewtp_sim_reply_json(resp, 200, out);
}

static int et_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct et_sim *st = state;
    const char *params[2] = {NULL, NULL};
    if (strcmp(req->method, "GET") == 0 &&
        ewtp_sim_route(req->path, "/_et/chain/*/*", req->arena, params, 2)) {
        chain_report(st, req, resp, params[0], params[1]);
        return 0;
    }
    if (strcmp(req->method, "POST") != 0) {
        refuse1(req, resp, 405, NULL, "EIMS calls are POST");
        return 0;
    }
    if (strcmp(req->path, "/auth/login") == 0) {
        login(st, req, resp);
        return 0;
    }
    bool known = strcmp(req->path, "/v1/register") == 0 || strcmp(req->path, "/v1/verify") == 0 ||
                 strcmp(req->path, "/v1/cancel") == 0;
    if (!known) {
        refuse1(req, resp, 404, NULL, "no such EIMS endpoint");
        return 0;
    }
    if (!authorised(st, req)) {
        ewtp_sim_reply_json(resp, 401, "{\"statusCode\":401,\"message\":\"Unauthorized\"}");
        return 0;
    }
    if (strcmp(req->path, "/v1/register") == 0)
        register_doc(st, req, resp);
    else if (strcmp(req->path, "/v1/verify") == 0)
        verify(st, req, resp);
    else
        cancel(st, req, resp);
    return 0;
}

EWTP_SIM_MODULE(.name = "et", .country = "ET",
                .authority = "Ministry of Revenue e-invoicing (EIMS), reconstructed",
                .create = et_sim_create, .handle = et_sim_handle, .destroy = et_sim_destroy,
                .set = et_sim_set);
