/* The Ethiopia plugin (EIMS e-invoicing): descriptor, settings and classify.
 *
 * Settings (all optional: empty settings give a clearly marked test identity):
 *   tin                    seller TIN of this EIMS client (10 digits); checked against the
 *                          seller's TIN id when set
 *   system_type            SourceSystem.SystemType                       default "POS"
 *   system_number          SourceSystem.SystemNumber (issued by the MoR)  default "ET-TEST-SYSTEM"
 *   client_id              login clientId
 *   client_secret_file     file holding the login clientSecret
 *   api_key_file           file holding the login apikey
 *   sign_requests          wrap every request in the RSA-SHA512 envelope  default false
 *   sign_key               host key (RSA + certificate) of the envelope   default "et-sign"
 *   first_document_number  DocumentNumber of the chain's number 1         default 1
 *   first_previous_irn     PreviousIrn sent with the chain's number 1     default none (null)
 *   counter_offset         InvoiceCounter = DocumentNumber + this         default 0
 *   cancel_reason_code     cancel ReasonCode when the reason names none   default "1"
 *   verify_after_register  register -> submitted, confirmed by /v1/verify default false
 *   deferred_payment_term  PaymentTerm of an invoice with a due date     default "CREDIT"
 *   sequence_retry_seconds retry delay when EIMS is behind our numbering  default 60
 *   tax_codes              { <VAT category> = "<EIMS TaxCode>"; ... } added to data/tax_codes.tsv
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "et.h"

static const char *const et_known_settings[] = {"tin",
                                                "system_type",
                                                "system_number",
                                                "client_id",
                                                "client_secret_file",
                                                "api_key_file",
                                                "sign_requests",
                                                "sign_key",
                                                "first_document_number",
                                                "first_previous_irn",
                                                "counter_offset",
                                                "cancel_reason_code",
                                                "verify_after_register",
                                                "deferred_payment_term",
                                                "sequence_retry_seconds",
                                                "tax_codes",
                                                NULL};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void et_destroy(void *state)
{
    struct et_state *st = state;
    if (st == NULL)
        return;
    free(st->tin);
    free(st->system_type);
    free(st->system_number);
    free(st->client_id);
    free(st->client_secret_file);
    free(st->api_key_file);
    free(st->sign_key);
    free(st->first_previous_irn);
    free(st->cancel_reason_code);
    free(st->deferred_payment_term);
    for (size_t i = 0; i < st->n_tax_codes; i++) {
        free(st->tax_codes[i].category);
        free(st->tax_codes[i].code);
        free(st->tax_codes[i].rate);
    }
    free(st->tax_codes);
    free(st);
}

static const char *setting_str(const struct ewtp_settings *s, const char *name, const char *def,
                               struct ewtp_errors *why)
{
    bool ok = true;
    const char *v = ewtp_settings_string(s, name, def, &ok);
    if (!ok) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(why, ewtp_pointer(p, "/%s", name), "type", "setting %s must be a string",
                        name);
        return def;
    }
    return v;
}

static int64_t setting_int(const struct ewtp_settings *s, const char *name, int64_t def,
                           int64_t min, int64_t max, struct ewtp_errors *why)
{
    bool ok = true;
    int64_t v = ewtp_settings_int(s, name, def, &ok);
    if (!ok || v < min || v > max) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(why, ewtp_pointer(p, "/%s", name), "range",
                        "setting %s must be an integer from %lld to %lld", name, (long long)min,
                        (long long)max);
        return def;
    }
    return v;
}

static bool setting_bool(const struct ewtp_settings *s, const char *name, bool def,
                         struct ewtp_errors *why)
{
    bool ok = true;
    bool v = ewtp_settings_bool(s, name, def, &ok);
    if (!ok) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(why, ewtp_pointer(p, "/%s", name), "type",
                        "setting %s must be true or false", name);
        return def;
    }
    return v;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* data/tax_codes.tsv, then the instance's tax_codes group (which may add or replace). */
static int load_tax_codes(struct et_state *st, const struct ewtp_settings *s,
                          struct ewtp_errors *why)
{
    const struct ewtp_settings *g = ewtp_settings_child(s, "tax_codes");
    size_t extra = g ? ewtp_settings_count(g) : 0;
    if (g && ewtp_settings_type(s, "tax_codes") != EWTP_SET_GROUP) {
        ewtp_errors_add(why, "/tax_codes", "type",
                        "setting tax_codes must be a group of VAT category = \"EIMS TaxCode\"");
        extra = 0;
    }
    st->tax_codes = calloc(extra + 1, sizeof(*st->tax_codes));
    if (st->tax_codes == NULL)
        return -EWTP_ENOMEM;
    const char *const *std = et_code_find(ET_T_TAX_CODES, "S");
    if (std) {
        st->tax_codes[0] =
            (struct et_tax_code){strdup(std[0]), strdup(std[1]), dup_or_null(std[2])};
        st->n_tax_codes = 1;
    }
    for (size_t i = 0; i < extra; i++) {
        const char *cat = NULL;
        const struct ewtp_settings *v = ewtp_settings_index(g, i, &cat);
        const char *code = ewtp_settings_value_string(v);
        char p[EWTP_POINTER_MAX];
        if (cat == NULL || code == NULL || code[0] == '\0' || strlen(code) > 16) {
            ewtp_errors_add(why, ewtp_pointer(p, "/tax_codes/%s", cat ? cat : "?"), "format",
                            "setting tax_codes.%s must be the EIMS TaxCode (1 to 16 characters)",
                            cat ? cat : "?");
            continue;
        }
        size_t k = 0;
        while (k < st->n_tax_codes && strcmp(st->tax_codes[k].category, cat) != 0)
            k++;
        if (k == st->n_tax_codes) {
            st->n_tax_codes++;
            st->tax_codes[k].category = strdup(cat);
            /* Zero-rated and exempt supplies carry no VAT (inf); other categories any rate. */
            st->tax_codes[k].rate =
                strcmp(cat, "Z") == 0 || strcmp(cat, "E") == 0 ? strdup("0") : NULL;
        }
        free(st->tax_codes[k].code);
        st->tax_codes[k].code = strdup(code);
    }
    return 0;
}

static int et_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)h;
    *state = NULL;
    ewtp_settings_check_known(s, "", et_known_settings, why);
    const char *tin = setting_str(s, "tin", NULL, why);
    const char *stype = setting_str(s, "system_type", "POS", why);
    const char *snum = setting_str(s, "system_number", "ET-TEST-SYSTEM", why);
    const char *client = setting_str(s, "client_id", NULL, why);
    const char *secret = setting_str(s, "client_secret_file", NULL, why);
    const char *apikey = setting_str(s, "api_key_file", NULL, why);
    const char *key = setting_str(s, "sign_key", "et-sign", why);
    const char *first_prev = setting_str(s, "first_previous_irn", NULL, why);
    const char *reason = setting_str(s, "cancel_reason_code", "1", why);
    const char *term = setting_str(s, "deferred_payment_term", "CREDIT", why);
    bool sign = setting_bool(s, "sign_requests", false, why);
    bool verify = setting_bool(s, "verify_after_register", false, why);
    int64_t first = setting_int(s, "first_document_number", 1, 1, INT64_C(999999999999), why);
    int64_t offset =
        setting_int(s, "counter_offset", 0, -INT64_C(999999999999), INT64_C(999999999999), why);
    int64_t retry = setting_int(s, "sequence_retry_seconds", 60, 1, 86400, why);
    if (tin && !all_digits(tin, 10, 10))
        ewtp_errors_add(why, "/tin", "format", "setting tin must be the 10-digit seller TIN");
    if (snum[0] == '\0' || strlen(snum) > 64)
        ewtp_errors_add(why, "/system_number", "format",
                        "setting system_number must be the MoR's billing system number");
    if (et_code_find(ET_T_CANCEL, reason) == NULL)
        ewtp_errors_add(why, "/cancel_reason_code", "format",
                        "setting cancel_reason_code must be one of the EIMS reason codes 1 to 4");
    if (sign && key[0] == '\0')
        ewtp_errors_add(why, "/sign_key", "format",
                        "setting sign_key must name a host RSA key with a certificate");
    struct et_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    int rc = load_tax_codes(st, s, why);
    if (rc != 0 || ewtp_errors_blocking(why) > 0) {
        et_destroy(st);
        return rc != 0 ? rc : -EWTP_EINVAL;
    }
    st->tin = dup_or_null(tin);
    st->system_type = strdup(stype);
    st->system_number = strdup(snum);
    st->client_id = dup_or_null(client);
    st->client_secret_file = dup_or_null(secret);
    st->api_key_file = dup_or_null(apikey);
    st->sign_requests = sign;
    st->sign_key = strdup(key);
    st->first_document_number = first;
    st->first_previous_irn = dup_or_null(first_prev);
    st->counter_offset = offset;
    st->cancel_reason_code = strdup(reason);
    st->verify_after_register = verify;
    st->deferred_payment_term = strdup(term);
    st->sequence_retry_ms = retry * 1000;
    if (st->system_type == NULL || st->system_number == NULL || st->sign_key == NULL ||
        st->cancel_reason_code == NULL || st->deferred_payment_term == NULL) {
        et_destroy(st);
        return -EWTP_ENOMEM;
    }
    *state = st;
    return 0;
}

/* One EIMS billing system numbers its documents in one chain (FACTS.md A.6): the ordering key
 * and the chain are per tenant, seller TIN and system number; registrations of one key go out
 * one at a time, in accept order, each with the host's next number and the previous IRN.
 * Invoices and their notes are related by seller and invoice number (a note names its
 * original's IRN). */
static const char *seller_tin(const struct et_state *st, const struct ewtp_message *m)
{
    const struct ewtp_party *seller = m ? ewtp_message_party(m, EWTP_ROLE_SELLER) : NULL;
    const char *tin = seller ? ewtp_party_id(seller, "TIN") : NULL;
    return tin ? tin : st->tin ? st->tin : "-";
}

const char *et_ordering_key(const struct et_state *st, const struct ewtp_call *c)
{
    return ewtp_arena_printf(c->arena, "et:%s:%s:%s", c->tenant ? c->tenant : "-",
                             seller_tin(st, c->msg), st->system_number);
}

static void et_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    const struct et_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (m->invoice == NULL)
        return; /* declarations are refused by validate */
    const char *tin = seller_tin(st, m);
    r->ordering_key = et_ordering_key(st, c);
    r->needs_chain = true;
    if (m->invoice->number)
        ewtp_route_add_relation_key(
            r, c->arena, ewtp_arena_printf(c->arena, "et-invoice:%s:%s", tin, m->invoice->number));
    if (m->invoice->original_invoice)
        ewtp_route_add_relation_key(
            r, c->arena,
            ewtp_arena_printf(c->arena, "et-invoice:%s:%s", tin, m->invoice->original_invoice));
}

EWTP_PLUGIN_DESCRIPTOR(.name = "et", .country = "ET",
                       .authority = "Ministry of Revenue e-invoicing (EIMS)", .version = "1.0.0",
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_INVOICE) |
                                EWTP_KIND_BIT(EWTP_KIND_DECLARATION),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT) | EWTP_OP_BIT(EWTP_OP_CANCEL),
                       .create = et_create, .destroy = et_destroy, .classify = et_classify,
                       .validate = et_validate, .translate = et_translate,
                       .interpret = et_interpret, .poll = et_poll, .login = et_login,
                       .login_answer = et_login_answer);
