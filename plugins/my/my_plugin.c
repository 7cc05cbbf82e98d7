/* The Malaysia plugin (LHDN MyInvois): descriptor, settings, classify and the checks MyInvois
 * applies that can be made before sending (FACTS.md §2 and §4). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/codes.h>
#include <ewtp/decimal.h>
#include <ewtp/json.h>

#include "my.h"

/* ---- settings ---- */

static const char *const my_known_settings[] = {"format",
                                                "document_version",
                                                "sign_key",
                                                "issuer_name",
                                                "document_hash",
                                                "taxpayer_tin",
                                                "intermediary",
                                                "onbehalfof",
                                                "msic_code",
                                                "business_activity",
                                                "max_issue_age_hours",
                                                "cancel_window_hours",
                                                "fx_tax_currency",
                                                "portal_url",
                                                "xsd_path",
                                                NULL};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void my_destroy(void *state)
{
    struct my_state *st = state;
    if (st == NULL)
        return;
    free((char *)st->version);
    free((char *)st->sign_key);
    free((char *)st->issuer_name);
    free((char *)st->taxpayer_tin);
    free((char *)st->onbehalfof);
    free((char *)st->msic_code);
    free((char *)st->business_activity);
    free((char *)st->portal_url);
    ewtp_xsd_free(st->xsd);
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

static int my_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)h;
    *state = NULL;
    ewtp_settings_check_known(s, "", my_known_settings, why);
    const char *format = setting_str(s, "format", "xml", why);
    const char *version = setting_str(s, "document_version", "1.1", why);
    const char *key = setting_str(s, "sign_key", "my-sign", why);
    const char *issuer = setting_str(s, "issuer_name", NULL, why);
    const char *hash = setting_str(s, "document_hash", "hex", why);
    const char *tin = setting_str(s, "taxpayer_tin", NULL, why);
    const char *obo = setting_str(s, "onbehalfof", NULL, why);
    const char *msic = setting_str(s, "msic_code", NULL, why);
    const char *activity = setting_str(s, "business_activity", NULL, why);
    const char *fx = setting_str(s, "fx_tax_currency", "document", why);
    const char *portal = setting_str(s, "portal_url", "https://myinvois.hasil.gov.my", why);
    const char *xsd_path = setting_str(s, "xsd_path", NULL, why);
    bool ok_i = true, ok_a = true, ok_c = true;
    bool intermediary = ewtp_settings_bool(s, "intermediary", false, &ok_i);
    int64_t age = ewtp_settings_int(s, "max_issue_age_hours", 72, &ok_a);
    int64_t window = ewtp_settings_int(s, "cancel_window_hours", 72, &ok_c);
    if (!ok_i)
        ewtp_errors_add(why, "/intermediary", "type", "setting intermediary must be a boolean");
    if (!ok_a || age < 0 || age > 24 * 365)
        ewtp_errors_add(why, "/max_issue_age_hours", "range",
                        "setting max_issue_age_hours must be an integer from 0 (no check) to 8760");
    if (!ok_c || window < 0 || window > 24 * 365)
        ewtp_errors_add(why, "/cancel_window_hours", "range",
                        "setting cancel_window_hours must be an integer from 0 to 8760");
    if (strcmp(format, "xml") != 0 && strcmp(format, "json") != 0)
        ewtp_errors_add(why, "/format", "format", "setting format must be \"xml\" or \"json\"");
    if (strcmp(version, "1.1") != 0 && strcmp(version, "1.0") != 0)
        ewtp_errors_add(why, "/document_version", "format",
                        "setting document_version must be \"1.1\" (signed) or \"1.0\"");
    if (strcmp(hash, "hex") != 0 && strcmp(hash, "base64") != 0)
        ewtp_errors_add(why, "/document_hash", "format",
                        "setting document_hash must be \"hex\" or \"base64\"");
    if (strcmp(fx, "document") != 0 && strcmp(fx, "MYR") != 0)
        ewtp_errors_add(why, "/fx_tax_currency", "format",
                        "setting fx_tax_currency must be \"document\" or \"MYR\"");
    if (msic && ewtp_code_table_find(&my_codes_msic, msic) == NULL)
        ewtp_errors_add(why, "/msic_code", "format",
                        "setting msic_code \"%s\" is not in the MSIC code table", msic);
    if (key[0] == '\0')
        ewtp_errors_add(why, "/sign_key", "format", "setting sign_key must name a host key");
    struct ewtp_xsd *xsd = NULL;
    if (xsd_path && ewtp_xsd_load(xsd_path, why, &xsd) != 0)
        ewtp_errors_add(why, "/xsd_path", "format",
                        "setting xsd_path: cannot load the UBL Invoice schema %s", xsd_path);
    if (ewtp_errors_blocking(why) > 0) {
        ewtp_xsd_free(xsd);
        return -EWTP_EINVAL;
    }
    struct my_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        ewtp_xsd_free(xsd);
        return -EWTP_ENOMEM;
    }
    st->format = strcmp(format, "json") == 0 ? MY_FMT_JSON : MY_FMT_XML;
    st->version = strdup(version);
    st->sign_key = strdup(key);
    st->issuer_name = dup_or_null(issuer);
    st->hash_enc = strcmp(hash, "base64") == 0 ? MY_HASH_BASE64 : MY_HASH_HEX;
    st->taxpayer_tin = dup_or_null(tin);
    st->intermediary = intermediary;
    st->onbehalfof = dup_or_null(obo);
    st->msic_code = dup_or_null(msic);
    st->business_activity = dup_or_null(activity);
    st->max_issue_age_ms = age * 3600 * 1000;
    st->cancel_window_ms = window * 3600 * 1000;
    st->fx_tax_in_myr = strcmp(fx, "MYR") == 0;
    st->portal_url = strdup(portal);
    st->xsd = xsd;
    if (st->version == NULL || st->sign_key == NULL || st->portal_url == NULL) {
        my_destroy(st);
        return -EWTP_ENOMEM;
    }
    *state = st;
    return 0;
}

/* ---- helpers shared with the writer ---- */

const char *my_ext_string(const struct ewtp_message *m, const char *member)
{
    return ewtp_json_get_string(ewtp_message_ext(m, "my"), member);
}

const char *my_ext_line_string(const struct ewtp_message *m, size_t i, const char *member)
{
    const struct ewtp_json *lines = ewtp_json_get(ewtp_message_ext(m, "my"), "lines");
    return ewtp_json_get_string(ewtp_json_index(lines, i), member);
}

bool my_self_billed(const struct ewtp_message *m)
{
    bool v = false;
    return ewtp_json_bool(ewtp_json_get(ewtp_message_ext(m, "my"), "self_billed"), &v) && v;
}

const char *my_type_code(const struct ewtp_message *m)
{
    static const char *const codes[2][5] = {{"01", "01", "02", "03", "04"},
                                            {"11", "11", "12", "13", "14"}};
    unsigned t = m->invoice ? (unsigned)m->invoice->type : 0;
    return codes[my_self_billed(m) ? 1 : 0][t < 5 ? t : 0];
}

const char *my_state_code(const char *region)
{
    if (region == NULL)
        return NULL;
    const char *const *row;
    for (size_t i = 0; (row = ewtp_code_table_row(&my_codes_state, i)) != NULL; i++)
        if (strcmp(row[0], region) == 0 || strcasecmp(row[1], region) == 0)
            return row[0];
    return NULL;
}

const char *my_payment_code(const char *code)
{
    if (code == NULL)
        return NULL;
    if (ewtp_code_table_find(&my_codes_payment_method, code))
        return code; /* already a MyInvois code */
    /* UNCL 4461 -> MyInvois: 01 cash, 02 cheque, 03 bank transfer, 04 credit card, 05 debit
     * card, 06 e-wallet, 07 digital bank, 08 others. */
    static const char *const map[][2] = {{"10", "01"}, {"20", "02"}, {"30", "03"}, {"31", "03"},
                                         {"42", "03"}, {"58", "03"}, {"59", "03"}, {"48", "04"},
                                         {"54", "04"}, {"55", "05"}, {"68", "06"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], code) == 0)
            return map[i][1];
    return "08";
}

/* ---- classify ---- */

static void my_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    const struct my_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (m->invoice == NULL)
        return;
    /* One submission holds one taxpayer's documents in one format: the token (onbehalfof)
     * is per taxpayer. */
    const struct ewtp_party *issuer =
        m->parties[my_self_billed(m) ? EWTP_ROLE_BUYER : EWTP_ROLE_SELLER];
    const char *tin = issuer ? ewtp_party_id(issuer, "TIN") : NULL;
    r->batch_key = ewtp_arena_printf(c->arena, "my:%s:%s",
                                     st->format == MY_FMT_JSON ? "json" : "xml", tin ? tin : "-");
    /* A note is related to its original (validate reads the original's LHDN UUID). Invoice
     * numbers are the issuer's own: the key holds the issuer's TIN, so that another
     * taxpayer's invoice with the same number is never taken for the original. */
    ewtp_route_add_relation_key(
        r, c->arena,
        ewtp_arena_printf(c->arena, "my-invoice:%s:%s", tin ? tin : "-", m->invoice->number));
    const char *orig = m->invoice->original_invoice;
    if (orig == NULL || !my_is_note(m->invoice))
        return;
    const char *key = ewtp_arena_printf(c->arena, "my-invoice:%s:%s", tin ? tin : "-", orig);
    ewtp_route_add_relation_key(r, c->arena, key);
    /* MyInvois validates a note's reference against a Valid original (Step05): without
     * ext.my.original_uuid the note waits until its original is approved, and is refused
     * with a plain cause when the original is rejected or cancelled first. */
    if (my_ext_string(m, "original_uuid") == NULL &&
        EWTP_HAS(r, struct ewtp_route_info, wait_state)) {
        r->wait_for = key;
        r->wait_state = EWTP_WAIT_APPROVED;
    }
}

/* ABI 1.5: an invoice is sent by its issuer, the buyer of a self-billed one. */
static enum ewtp_role my_sender_role(const void *state, const struct ewtp_call *c)
{
    (void)state;
    if (c->msg->kind == EWTP_KIND_INVOICE)
        return my_self_billed(c->msg) ? EWTP_ROLE_BUYER : EWTP_ROLE_SELLER;
    return c->msg->kind == EWTP_KIND_DECLARATION ? EWTP_ROLE_DECLARANT : EWTP_ROLE_COUNT;
}

static const struct ewtp_batch_limits my_batch =
    EWTP_BATCH_LIMITS_INIT(.max_documents = MY_MAX_DOCS,
                           .max_request_bytes = MY_MAX_SUBMISSION_BYTES,
                           .max_document_bytes = MY_MAX_DOC_BYTES, .max_wait_ms = 2000);

EWTP_PLUGIN_DESCRIPTOR(.name = "my", .country = "MY", .authority = "LHDN (IRBM) MyInvois e-invoice",
                       .version = "1.0.0",
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_INVOICE) |
                                EWTP_KIND_BIT(EWTP_KIND_DECLARATION),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT) | EWTP_OP_BIT(EWTP_OP_CANCEL),
                       .batch = &my_batch, .create = my_create, .destroy = my_destroy,
                       .classify = my_classify, .validate = my_validate, .translate = my_translate,
                       .interpret = my_interpret, .poll = my_poll,
                       .translate_batch = my_translate_batch, .interpret_batch = my_interpret_batch,
                       .sender_role = my_sender_role);
