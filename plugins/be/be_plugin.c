/* The Belgium plugin's descriptor, settings, routing and translate dispatch. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <ewtp/codes.h>

#include "be.h"

/* Excise goods and goods the Belgian IDMS-H7 does not take (FACTS A1: FIN-IDMS-H7 [V],
 * headings [M]): beer, wine, other fermented beverages, spirits; tobacco, heated tobacco and
 * nicotine products; perfumes and toilet waters; energy products. Overridable by the setting
 * h7.excise_hs_prefixes because the list is not verified against the Belgian rules. */
static const char *const be_default_excise[] = {"2203", "2204", "2205", "2206", "2207",
                                                "2208", "2402", "2403", "2404", "2710",
                                                "2711", "3303", NULL};

static const char *const be_known[] = {"h7", "peppol", NULL};
static const char *const be_known_h7[] = {"declarant_eori",     "customs_office",
                                          "location_of_goods",  "transport_document_type",
                                          "vat_payment_method", "path",
                                          "token_file",         "threshold_eur",
                                          "split_check",        "excise_hs_prefixes",
                                          "exchange_rates",     NULL};
static const char *const be_known_peppol[] = {"delivery", "path", "token_file", "profile", NULL};

static void be_destroy(void *state)
{
    struct be_state *st = state;
    if (st == NULL)
        return;
    free((char *)st->declarant_eori);
    free((char *)st->customs_office);
    free((char *)st->location_of_goods);
    free((char *)st->transport_doc_type);
    free((char *)st->vat_payment_method);
    free((char *)st->idms_path);
    free((char *)st->idms_token_file);
    free((char *)st->ap_path);
    free((char *)st->ap_token_file);
    free((char *)st->profile);
    for (size_t i = 0; st->excise_prefixes && st->excise_prefixes[i]; i++)
        free(st->excise_prefixes[i]);
    free(st->excise_prefixes);
    free(st->rates);
    free(st);
}

/* A string setting copied into the state; reports a wrong type. */
static char *setting_str(const struct ewtp_settings *s, const char *path, const char *def,
                         struct ewtp_errors *why)
{
    bool ok = true;
    const char *v = ewtp_settings_string(s, path, def, &ok);
    if (!ok) {
        char p[EWTP_POINTER_MAX];
        ewtp_pointer(p, "/%s", path);
        for (char *q = p; *q; q++)
            if (*q == '.')
                *q = '/';
        ewtp_errors_add(why, p, "type", "setting %s must be a string", path);
        return NULL;
    }
    return v ? strdup(v) : NULL;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void read_excise(const struct ewtp_settings *s, struct be_state *st, struct ewtp_errors *why)
{
    const struct ewtp_settings *list = ewtp_settings_child(s, "h7.excise_hs_prefixes");
    size_t n = 0;
    if (list) {
        if (ewtp_settings_type(s, "h7.excise_hs_prefixes") != EWTP_SET_LIST) {
            ewtp_errors_add(why, "/h7/excise_hs_prefixes", "type",
                            "setting h7.excise_hs_prefixes must be a list of HS prefixes");
            return;
        }
        n = ewtp_settings_count(list);
    } else {
        while (be_default_excise[n])
            n++;
    }
    st->excise_prefixes = calloc(n + 1, sizeof(char *));
    if (st->excise_prefixes == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *v = list ? ewtp_settings_value_string(ewtp_settings_index(list, i, NULL))
                             : be_default_excise[i];
        if (v == NULL || !all_digits(v, 2, 10)) {
            ewtp_errors_add(why, "/h7/excise_hs_prefixes", "format",
                            "h7.excise_hs_prefixes: every entry must be 2 to 10 digits");
            continue;
        }
        st->excise_prefixes[i] = strdup(v);
    }
}

/* h7.exchange_rates = { USD = "0.92"; } : EUR per one unit of the currency. */
static void read_rates(const struct ewtp_settings *s, struct be_state *st, struct ewtp_errors *why)
{
    const struct ewtp_settings *g = ewtp_settings_child(s, "h7.exchange_rates");
    if (g == NULL)
        return;
    if (ewtp_settings_type(s, "h7.exchange_rates") != EWTP_SET_GROUP) {
        ewtp_errors_add(why, "/h7/exchange_rates", "type",
                        "setting h7.exchange_rates must be a group: { USD = \"0.92\"; }");
        return;
    }
    size_t n = ewtp_settings_count(g);
    st->rates = calloc(n + 1, sizeof(*st->rates));
    if (st->rates == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *cur = NULL;
        const struct ewtp_settings *e = ewtp_settings_index(g, i, &cur);
        const char *v = ewtp_settings_value_string(e);
        struct ewtp_dec d;
        if (cur == NULL || !ewtp_code_currency(cur, NULL)) {
            ewtp_errors_add(why, "/h7/exchange_rates", "format",
                            "h7.exchange_rates: \"%s\" is not an ISO 4217 currency",
                            cur ? cur : "");
            continue;
        }
        if (v == NULL || ewtp_dec_parse(v, &d) != 0 || ewtp_dec_is_negative(d) ||
            ewtp_dec_is_zero(d)) {
            ewtp_errors_add(why, "/h7/exchange_rates", "format",
                            "h7.exchange_rates.%s must be a positive decimal string", cur);
            continue;
        }
        memcpy(st->rates[st->n_rates].currency, cur, 3);
        st->rates[st->n_rates].eur_per_unit = d;
        st->n_rates++;
    }
}

static bool eori_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 17 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

static int be_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)h;
    *state = NULL;
    ewtp_settings_check_known(s, "", be_known, why);
    if (ewtp_settings_child(s, "h7"))
        ewtp_settings_check_known(s, "h7", be_known_h7, why);
    if (ewtp_settings_child(s, "peppol"))
        ewtp_settings_check_known(s, "peppol", be_known_peppol, why);
    struct be_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->declarant_eori = setting_str(s, "h7.declarant_eori", NULL, why);
    /* Not a real office: Belgian office codes are not public here (README). */
    st->customs_office = setting_str(s, "h7.customs_office", "BE000000", why);
    st->location_of_goods = setting_str(s, "h7.location_of_goods", "BELGG", why);
    st->transport_doc_type = setting_str(s, "h7.transport_document_type", "N740", why);
    st->vat_payment_method = setting_str(s, "h7.vat_payment_method", "E", why);
    st->idms_path = setting_str(s, "h7.path", "/h7/declarations", why);
    st->idms_token_file = setting_str(s, "h7.token_file", NULL, why);
    st->ap_path = setting_str(s, "peppol.path", "/api/v1/outbound", why);
    st->ap_token_file = setting_str(s, "peppol.token_file", NULL, why);
    st->profile = setting_str(s, "peppol.profile", BE_PEPPOL_PROFILE, why);
    char *threshold = setting_str(s, "h7.threshold_eur", "150.00", why);
    char *split = setting_str(s, "h7.split_check", "warning", why);
    char *delivery = setting_str(s, "peppol.delivery", "spool", why);
    if (threshold && (ewtp_dec_parse(threshold, &st->threshold_eur) != 0 ||
                      ewtp_dec_is_negative(st->threshold_eur)))
        ewtp_errors_add(why, "/h7/threshold_eur", "format",
                        "setting h7.threshold_eur must be a decimal string such as \"150.00\"");
    if (split && strcmp(split, "warning") == 0)
        st->split_is_error = false;
    else if (split && strcmp(split, "error") == 0)
        st->split_is_error = true;
    else if (split)
        ewtp_errors_add(why, "/h7/split_check", "format",
                        "setting h7.split_check must be \"warning\" or \"error\"");
    if (delivery && strcmp(delivery, "spool") == 0)
        st->delivery = BE_DELIVER_SPOOL;
    else if (delivery && strcmp(delivery, "http") == 0)
        st->delivery = BE_DELIVER_HTTP;
    else if (delivery)
        ewtp_errors_add(why, "/peppol/delivery", "format",
                        "setting peppol.delivery must be \"spool\" (the access point's outbound "
                        "folder) or \"http\" (its HTTP API)");
    free(threshold);
    free(split);
    free(delivery);
    if (st->declarant_eori && !eori_ok(st->declarant_eori))
        ewtp_errors_add(why, "/h7/declarant_eori", "format",
                        "setting h7.declarant_eori must be an EORI number (country code and up "
                        "to 15 letters or digits)");
    if (st->customs_office &&
        (strncmp(st->customs_office, "BE", 2) != 0 || !all_digits(st->customs_office + 2, 6, 6)))
        ewtp_errors_add(why, "/h7/customs_office", "format",
                        "setting h7.customs_office must be BE and 6 digits");
    read_excise(s, st, why);
    read_rates(s, st, why);
    if (ewtp_errors_blocking(why) > 0 || st->excise_prefixes == NULL || st->idms_path == NULL ||
        st->ap_path == NULL || st->profile == NULL || st->location_of_goods == NULL ||
        st->transport_doc_type == NULL || st->vat_payment_method == NULL) {
        int rc = ewtp_errors_blocking(why) > 0 ? -EWTP_EINVAL : -EWTP_ENOMEM;
        be_destroy(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* H7 declarations are related by consignee + day (the consignment-splitting check); Peppol
 * invoices of one seller go in order (the access point keeps the sequence). */
static void be_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    (void)state;
    const struct ewtp_message *m = c->msg;
    if (m->declaration) {
        const char *key = be_split_key(m, c->arena);
        if (key)
            ewtp_route_add_relation_key(r, c->arena, key);
    }
}

static int be_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                        struct ewtp_errors *errs)
{
    const struct be_state *st = state;
    if (c->op == EWTP_OP_CANCEL) {
        ewtp_errors_add(errs, "", "unsupported",
                        "the Belgian plugin cannot cancel: IDMS-H7 invalidation messages are not "
                        "public, and a Peppol invoice is corrected with a credit note");
        return -EWTP_EINVAL;
    }
    if (c->msg->invoice)
        return be_peppol_translate(st, c, out, errs);
    if (c->msg->declaration && c->msg->declaration->type == EWTP_DECL_LOW_VALUE)
        return be_h7_translate(st, c, out, errs);
    ewtp_errors_add(errs, ewtp_message_body_pointer(c->msg), "unsupported",
                    "the Belgian plugin serves H7 low-value declarations and Peppol invoices");
    return -EWTP_EINVAL;
}

/* Answers to requests already sent: IDMS-H7 pushes its decisions, the access point reports
 * delivery through its own receipts; so nothing to poll. */

EWTP_PLUGIN_DESCRIPTOR(.name = "be", .country = "BE",
                       .authority = "FOD Financien IDMS-H7 (customs) / Peppol BIS Billing 3.0",
                       .version = "0.1.0",
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_DECLARATION) |
                                EWTP_KIND_BIT(EWTP_KIND_INVOICE),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT), .create = be_create,
                       .destroy = be_destroy, .classify = be_classify, .validate = be_validate,
                       .translate = be_translate, .interpret = be_interpret, .receive = be_receive);
