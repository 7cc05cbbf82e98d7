/* The Rwanda plugin's descriptor, settings, classify and ext.rw checks. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

#ifndef RW_PLUGIN_VERSION
#define RW_PLUGIN_VERSION "1.0.0"
#endif

const char *rw_ptr(struct ewtp_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ewtp_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return s ? s : "";
}

/* ---- settings ------------------------------------------------------------------------------ */

static const char *const rw_known_settings[] = {"tin",
                                                "bhf_id",
                                                "device_serial",
                                                "operator_id",
                                                "operator_name",
                                                "receipt_top",
                                                "receipt_bottom",
                                                "cmc_key_file",
                                                "first_invoice_number",
                                                "tax_rates",
                                                "office",
                                                "office_name",
                                                "gen_procedure",
                                                "cpc_import",
                                                "cpc_export",
                                                "national_procedure",
                                                "trade_name",
                                                "branch_address",
                                                NULL};

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

static char *setting(const struct ewtp_settings *s, const char *name, const char *def,
                     struct ewtp_errors *why)
{
    bool ok = true;
    const char *v = ewtp_settings_string(s, name, def, &ok);
    if (!ok) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(why, ewtp_pointer(p, "/%s", name), "type", "setting %s must be a string",
                        name);
        return NULL;
    }
    return v ? strdup(v) : NULL;
}

static void rw_destroy(void *state)
{
    struct rw_state *st = state;
    if (st == NULL)
        return;
    char **strs[] = {&st->tin,
                     &st->bhf_id,
                     &st->device_serial,
                     &st->operator_id,
                     &st->operator_name,
                     &st->receipt_top,
                     &st->receipt_bottom,
                     &st->cmc_key_file,
                     &st->office,
                     &st->office_name,
                     &st->gen_procedure,
                     &st->cpc_import,
                     &st->cpc_export,
                     &st->national_procedure,
                     &st->trade_name,
                     &st->branch_address};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(*strs[i]);
    free(st);
}

static int rw_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    *state = NULL;
    ewtp_settings_check_known(s, "", rw_known_settings, why);
    static const char *const rates_known[] = {"C", "D", NULL};
    ewtp_settings_check_known(s, "tax_rates", rates_known, why);
    struct rw_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->host = h;
    st->tin = setting(s, "tin", NULL, why);
    st->bhf_id = setting(s, "bhf_id", "00", why);
    st->device_serial = setting(s, "device_serial", NULL, why);
    st->operator_id = setting(s, "operator_id", "ewtp", why);
    st->operator_name = setting(s, "operator_name", "ewtp gateway", why);
    st->receipt_top = setting(s, "receipt_top", NULL, why);
    st->receipt_bottom = setting(s, "receipt_bottom", NULL, why);
    st->cmc_key_file = setting(s, "cmc_key_file", NULL, why);
    st->trade_name = setting(s, "trade_name", NULL, why);
    st->branch_address = setting(s, "branch_address", NULL, why);
    if (st->trade_name && strlen(st->trade_name) > 20)
        ewtp_errors_add(why, "/trade_name", "format",
                        "setting trade_name has at most 20 characters (receipt.trdeNm)");
    st->office = setting(s, "office", NULL, why);
    st->office_name = setting(s, "office_name", NULL, why);
    st->gen_procedure = setting(s, "gen_procedure", "4", why);
    st->cpc_import = setting(s, "cpc_import", "4000", why);
    st->cpc_export = setting(s, "cpc_export", "1000", why);
    st->national_procedure = setting(s, "national_procedure", "000", why);
    bool ok = true;
    st->first_invoice_number = ewtp_settings_int(s, "first_invoice_number", 1, &ok);
    if (!ok || st->first_invoice_number < 1 || st->first_invoice_number > 9999999999LL)
        ewtp_errors_add(why, "/first_invoice_number", "range",
                        "setting first_invoice_number must be an integer from 1 to 9999999999");
    if (st->tin && !all_digits(st->tin, 9, 9))
        ewtp_errors_add(why, "/tin", "format", "setting tin must be the 9-digit Rwandan TIN");
    if (st->bhf_id && (strlen(st->bhf_id) != 2 || !all_digits(st->bhf_id, 2, 2)))
        ewtp_errors_add(why, "/bhf_id", "format",
                        "setting bhf_id must be the 2-digit branch id (\"00\": head office)");
    if (st->device_serial && (st->device_serial[0] == '\0' || strlen(st->device_serial) > 100))
        ewtp_errors_add(why, "/device_serial", "format",
                        "setting device_serial must have 1 to 100 characters");
    if (st->gen_procedure && !all_digits(st->gen_procedure, 1, 1))
        ewtp_errors_add(why, "/gen_procedure", "format", "setting gen_procedure must be one digit");
    if (st->cpc_import && !all_digits(st->cpc_import, 4, 4))
        ewtp_errors_add(why, "/cpc_import", "format", "setting cpc_import must be 4 digits");
    if (st->cpc_export && !all_digits(st->cpc_export, 4, 4))
        ewtp_errors_add(why, "/cpc_export", "format", "setting cpc_export must be 4 digits");
    if (st->national_procedure && !all_digits(st->national_procedure, 3, 3))
        ewtp_errors_add(why, "/national_procedure", "format",
                        "setting national_procedure must be 3 digits");
    /* Rates: data/tax-category.tsv, where "setting" means tax_rates.<category> (default 0). */
    for (int i = 0; i < 4; i++) {
        char cat[2] = {(char)('A' + i), '\0'}, path[16];
        const char *v = ewtp_code_table_get(&rw_codes_tax_category, cat, 1);
        snprintf(path, sizeof(path), "tax_rates.%c", 'A' + i);
        if (v == NULL || strcmp(v, "setting") == 0)
            v = ewtp_settings_string(s, path, "0", &ok);
        else
            ok = true;
        if (!ok || ewtp_dec_parse(v, &st->rate[i]) != 0 || ewtp_dec_is_negative(st->rate[i]) ||
            ewtp_dec_cmp(st->rate[i], ewtp_dec_from_int(100)) >= 0) {
            char p[EWTP_POINTER_MAX];
            ewtp_errors_add(why, ewtp_pointer(p, "/tax_rates/%c", 'A' + i), "format",
                            "setting tax_rates.%c must be a percentage as a decimal string "
                            "(\"0\" to \"99.99\")",
                            'A' + i);
        }
    }
    if (ewtp_errors_blocking(why) > 0) {
        rw_destroy(st);
        return -EWTP_EINVAL;
    }
    *state = st;
    return 0;
}

/* ---- ext.rw -------------------------------------------------------------------------------- */

const struct ewtp_json *rw_ext(const struct ewtp_message *m)
{
    const struct ewtp_json *e = ewtp_message_ext(m, "rw");
    return ewtp_json_type(e) == EWTP_JSON_OBJECT ? e : NULL;
}

const struct ewtp_json *rw_ext_line(const struct ewtp_message *m, size_t i)
{
    const struct ewtp_json *l = ewtp_json_index(ewtp_json_get(rw_ext(m), "lines"), i);
    return ewtp_json_type(l) == EWTP_JSON_OBJECT ? l : NULL;
}

enum vk { V_STR, V_DIGITS, V_ONEOF, V_INT, V_DATE };
struct ext_field {
    const char *name;
    enum vk kind;
    unsigned min, max;   /* length (V_STR, V_DIGITS) or value (V_INT) */
    const char *choices; /* V_ONEOF: space-separated */
    unsigned kinds;      /* EWTP_KIND_BIT of the kinds it belongs to */
};

#define INV EWTP_KIND_BIT(EWTP_KIND_INVOICE)
#define DECL EWTP_KIND_BIT(EWTP_KIND_DECLARATION)

static const struct ext_field ext_top[] = {
    {"sales_type", V_ONEOF, 0, 0, "N", INV},
    {"refund_reason", V_ONEOF, 0, 0, "01 02 03 04 05 06", INV},
    {"purchase_accept", V_ONEOF, 0, 0, "Y N", INV},
    {"payment_type", V_ONEOF, 0, 0, "01 02 03 04 05 06 07", INV},
    {"original_invoice_no", V_INT, 1, 999999999, NULL, INV},
    {"general_procedure_code", V_DIGITS, 1, 1, NULL, DECL},
    {"manifest_reference", V_STR, 1, 35, NULL, DECL},
    {"financial_party_tin", V_DIGITS, 9, 9, NULL, DECL},
    {"means_nationality", V_STR, 2, 2, NULL, DECL},
    {"incoterm_place", V_STR, 1, 35, NULL, DECL},
    {"border_office", V_STR, 1, 10, NULL, DECL},
    {"customs_office_name", V_STR, 1, 70, NULL, DECL},
    {"location_of_goods", V_STR, 1, 35, NULL, DECL},
    {"deferred_payment_reference", V_STR, 1, 35, NULL, DECL},
    {"payment_mode", V_STR, 1, 10, NULL, DECL},
    {"cpc", V_DIGITS, 4, 4, NULL, DECL},
    {"national_procedure", V_DIGITS, 3, 3, NULL, DECL},
    {NULL, 0, 0, 0, NULL, 0},
};
static const struct ext_field ext_line[] = {
    {"item_class_code", V_DIGITS, 10, 10, NULL, INV},
    {"item_type", V_ONEOF, 0, 0, "1 2 3", INV},
    {"package_unit", V_STR, 2, 2, NULL, INV},
    {"item_code", V_STR, 1, 20, NULL, INV},
    {"packages", V_INT, 1, 9999999, NULL, DECL},
    {"package_kind", V_STR, 2, 2, NULL, DECL},
    {"marks", V_STR, 1, 70, NULL, DECL},
    {"cpc", V_DIGITS, 4, 4, NULL, DECL},
    {"national_procedure", V_DIGITS, 3, 3, NULL, DECL},
    {"preference_code", V_STR, 1, 10, NULL, DECL},
    {NULL, 0, 0, 0, NULL, 0},
};
static const struct ext_field ext_doc[] = {
    {"code", V_STR, 1, 4, NULL, DECL},  {"reference", V_STR, 1, 35, NULL, DECL},
    {"date", V_DATE, 0, 0, NULL, DECL}, {"line", V_INT, 1, 999, NULL, DECL},
    {NULL, 0, 0, 0, NULL, 0},
};

static bool one_of(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

static void check_fields(const struct ewtp_json *obj, const struct ext_field *fields,
                         unsigned kind_bit, const char *base, struct ewtp_errors *errs)
{
    if (ewtp_json_type(obj) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, base, "type", "%s must be an object", base);
        return;
    }
    const char *key;
    const struct ewtp_json *v;
    for (size_t i = 0; ewtp_json_member(obj, i, &key, &v); i++) {
        char p[EWTP_POINTER_MAX];
        ewtp_pointer(p, "%s/%s", base, key);
        const struct ext_field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (f->name == NULL) {
            if (fields == ext_top && (strcmp(key, "lines") == 0 ||
                                      (strcmp(key, "attached_documents") == 0 && kind_bit == DECL)))
                continue; /* checked by the caller */
            ewtp_errors_add(errs, p, "unknown_member", "ext.rw has no member \"%s\" here", key);
            continue;
        }
        if (!(f->kinds & kind_bit)) {
            ewtp_errors_add(errs, p, "unknown_member", "%s does not apply to this kind of message",
                            key);
            continue;
        }
        int64_t n = 0;
        const char *s = ewtp_json_string(v);
        switch (f->kind) {
        case V_INT:
            if (!ewtp_json_int(v, &n) || n < f->min || n > f->max)
                ewtp_errors_add(errs, p, "format", "%s must be an integer from %u to %u", key,
                                f->min, f->max);
            break;
        case V_STR:
            if (s == NULL || strlen(s) < f->min || strlen(s) > f->max)
                ewtp_errors_add(errs, p, "format", "%s must be a string of %u to %u characters",
                                key, f->min, f->max);
            break;
        case V_DIGITS:
            if (!all_digits(s, f->min, f->max))
                ewtp_errors_add(errs, p, "format", "%s must be %u digits", key, f->max);
            break;
        case V_ONEOF:
            if (s == NULL || !one_of(f->choices, s))
                ewtp_errors_add(errs, p, "format", "%s must be one of: %s", key, f->choices);
            break;
        case V_DATE:
            if (s == NULL || !ewtp_is_date(s))
                ewtp_errors_add(errs, p, "format", "%s must be a date YYYY-MM-DD", key);
            break;
        }
    }
}

void rw_validate_ext(const struct ewtp_message *m, struct ewtp_errors *errs)
{
    const struct ewtp_json *ext = ewtp_message_ext(m, "rw");
    if (ext == NULL)
        return;
    unsigned bit = EWTP_KIND_BIT(m->kind);
    check_fields(ext, ext_top, bit, "/ext/rw", errs);
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT)
        return;
    const struct ewtp_line *const *lines = NULL;
    size_t n_lines = ewtp_message_lines(m, &lines);
    const struct ewtp_json *ls = ewtp_json_get(ext, "lines");
    if (ls != NULL) {
        if (ewtp_json_type(ls) != EWTP_JSON_ARRAY || ewtp_json_size(ls) > n_lines)
            ewtp_errors_add(errs, "/ext/rw/lines", "rule",
                            "ext.rw.lines must be an array with at most one object per line "
                            "(index n belongs to line n of the body)");
        else
            for (size_t i = 0; i < ewtp_json_size(ls); i++) {
                char p[EWTP_POINTER_MAX];
                check_fields(ewtp_json_index(ls, i), ext_line, bit,
                             ewtp_pointer(p, "/ext/rw/lines/%zu", i), errs);
            }
    }
    const struct ewtp_json *docs = ewtp_json_get(ext, "attached_documents");
    if (docs != NULL && bit == DECL) {
        if (ewtp_json_type(docs) != EWTP_JSON_ARRAY)
            ewtp_errors_add(errs, "/ext/rw/attached_documents", "type",
                            "ext.rw.attached_documents must be an array");
        for (size_t i = 0; i < ewtp_json_size(docs); i++) {
            char p[EWTP_POINTER_MAX];
            const struct ewtp_json *d = ewtp_json_index(docs, i);
            ewtp_pointer(p, "/ext/rw/attached_documents/%zu", i);
            check_fields(d, ext_doc, bit, p, errs);
            if (ewtp_json_type(d) == EWTP_JSON_OBJECT &&
                (!ewtp_json_get(d, "code") || !ewtp_json_get(d, "reference")))
                ewtp_errors_add(errs, p, "required",
                                "an attached document needs its code and reference");
            int64_t line = 0;
            if (ewtp_json_int(ewtp_json_get(d, "line"), &line) && (size_t)line > n_lines) {
                char q[EWTP_POINTER_MAX];
                ewtp_errors_add(errs, ewtp_pointer(q, "%s/line", p), "rule",
                                "attached document line %lld is not a line of the declaration",
                                (long long)line);
            }
        }
    }
}

/* ---- callbacks ----------------------------------------------------------------------------- */

static void rw_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    const struct rw_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (m->kind != EWTP_KIND_INVOICE || m->invoice == NULL)
        return; /* declarations: no order between them, no chain */
    /* One VSDC branch numbers its invoices gap-free: the branch is both the ordering key and
     * the chain. */
    r->ordering_key = rw_inv_ordering_key(st, c);
    r->needs_chain = true;
    if (m->invoice->number)
        ewtp_route_add_relation_key(r, c->arena,
                                    rw_inv_relation_key(st, c->arena, m->invoice->number));
    if (m->invoice->original_invoice && m->invoice->type != EWTP_INV_INVOICE) {
        const char *key = rw_inv_relation_key(st, c->arena, m->invoice->original_invoice);
        ewtp_route_add_relation_key(r, c->arena, key);
        /* A refund receipt names its original's invcNo (orgInvcNo): without
         * ext.rw.original_invoice_no it waits until the original is approved (ABI 1.1), and is
         * refused with a plain cause when the original is rejected first. */
        if (ewtp_json_get(rw_ext(m), "original_invoice_no") == NULL &&
            EWTP_HAS(r, struct ewtp_route_info, wait_state)) {
            r->wait_for = key;
            r->wait_state = EWTP_WAIT_APPROVED;
        }
    }
}

static void rw_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const struct rw_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (c->op != EWTP_OP_SUBMIT) {
        ewtp_errors_add(errs, "", "unsupported",
                        "Rwanda has no cancellation here: a VSDC receipt is corrected by a "
                        "credit note (refund receipt), an ASYCUDA declaration by the customs "
                        "office");
        return;
    }
    rw_validate_ext(m, errs);
    if (m->kind == EWTP_KIND_DECLARATION)
        rw_decl_validate(st, c, errs);
    else if (m->kind == EWTP_KIND_INVOICE)
        rw_inv_validate(st, c, errs);
    else
        ewtp_errors_add(errs, "/kind", "unsupported",
                        "the Rwanda plugin takes declarations and invoices only");
}

static int rw_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                        struct ewtp_errors *errs)
{
    const struct rw_state *st = state;
    if (c->msg->kind == EWTP_KIND_DECLARATION)
        return rw_decl_translate(st, c, out, errs);
    if (c->msg->kind == EWTP_KIND_INVOICE)
        return rw_inv_translate(st, c, out, errs);
    ewtp_errors_add(errs, "/kind", "unsupported",
                    "the Rwanda plugin takes declarations and invoices only");
    return -EWTP_EINVAL;
}

static int rw_interpret(const void *state, const struct ewtp_call *c,
                        const struct ewtp_response *resp, struct ewtp_outcome *o)
{
    const struct rw_state *st = state;
    ewtp_outcome_clear(o);
    if (c->msg->kind == EWTP_KIND_DECLARATION)
        return rw_decl_interpret(st, c, resp, o);
    return rw_inv_interpret(st, c, resp, o);
}

static int rw_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
                      struct ewtp_outcome *o)
{
    ewtp_outcome_clear(o);
    return rw_decl_receive(state, in, to, o);
}

EWTP_PLUGIN_DESCRIPTOR(.name = "rw", .country = "RW",
                       .authority = "Rwanda Revenue Authority: ASYCUDA World (single window) "
                                    "and EBM 2.1 (VSDC)",
                       .version = RW_PLUGIN_VERSION,
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_DECLARATION) |
                                EWTP_KIND_BIT(EWTP_KIND_INVOICE),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT), .create = rw_create,
                       .destroy = rw_destroy, .classify = rw_classify, .validate = rw_validate,
                       .translate = rw_translate, .interpret = rw_interpret, .receive = rw_receive);
