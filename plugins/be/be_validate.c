/* The Belgium plugin's checks before sending: H7 (IDMS) and Peppol BIS Billing 3.0 rules that
 * can be checked on the common message. Every error points into the common message. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/codes.h>
#include <ewtp/crypto.h>
#include <ewtp/json.h>

#include "be.h"
#include "be_codes.h" /* be_codes_eas: generated from data/eas.txt (BR-CL-25) */

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[n] == '\0';
}

bool be_kbo_valid(const char *d)
{
    if (d == NULL || strlen(d) != 10 || !is_digits(d, 10))
        return false;
    long first8 = 0;
    for (int i = 0; i < 8; i++)
        first8 = first8 * 10 + (d[i] - '0');
    long check = (d[8] - '0') * 10 + (d[9] - '0');
    return 97 - first8 % 97 == check;
}

/* EORI: ISO country code + up to 15 alphanumerics (Reg. 2015/2447 Art. 7; 17 characters). */
static bool eori_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 17)
        return false;
    char cc[3] = {s[0], s[1], '\0'};
    if (!ewtp_code_country(cc) && strcmp(cc, "XI") != 0)
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

/* IOSS: IM + 3-digit member state code + 7 digits (FACTS A2, [M]). */
static bool ioss_valid(const char *s)
{
    return strncmp(s, "IM", 2) == 0 && strlen(s) == 12 && is_digits(s + 2, 10);
}

const char *be_ioss(const struct ewtp_message *m, const char **party_pointer)
{
    static const enum ewtp_role order[] = {EWTP_ROLE_PLATFORM, EWTP_ROLE_SELLER,
                                           EWTP_ROLE_MERCHANT};
    for (size_t r = 0; r < sizeof(order) / sizeof(order[0]); r++) {
        const struct ewtp_party *p = m->parties[order[r]];
        for (size_t i = 0; p && i < p->n_ids; i++)
            if (strcmp(p->ids[i]->scheme, "IOSS") == 0) {
                if (party_pointer)
                    *party_pointer = ewtp_role_name(order[r]);
                return p->ids[i]->value;
            }
    }
    return NULL;
}

const char *be_lrn(const char *id, struct ewtp_arena *a)
{
    if (strlen(id) <= 22)
        return id;
    /* DE 12 09 is an..22: a longer id becomes a stable hash, the same on every resend. */
    unsigned char dig[EWTP_DIGEST_MAX];
    size_t len = 0;
    if (ewtp_digest(EWTP_DIGEST_SHA256, id, strlen(id), dig, &len) != 0)
        return NULL;
    char *hex = ewtp_hex_encode(a, dig, len);
    return hex ? ewtp_arena_printf(a, "%s%.17s", BE_LRN_HASH_PREFIX, hex) : NULL;
}

/* ---- Consignment splitting ------------------------------------------------------------- */

static const struct ewtp_party *consignee_of(const struct ewtp_message *m)
{
    return m->parties[EWTP_ROLE_CONSIGNEE] ? m->parties[EWTP_ROLE_CONSIGNEE]
                                           : m->parties[EWTP_ROLE_IMPORTER];
}

/* Normalised consignee (name folded to lower case, blanks collapsed, postcode, country) and
 * day of the message; hashed so that the stored key carries no personal data. */
const char *be_split_key(const struct ewtp_message *m, struct ewtp_arena *a)
{
    const struct ewtp_party *p = consignee_of(m);
    if (p == NULL || p->name == NULL || m->created_at == NULL || strlen(m->created_at) < 10)
        return NULL;
    char buf[512];
    size_t k = 0;
    bool space = false;
    for (const char *s = p->name; *s && k + 1 < 300; s++) {
        char ch = *s;
        if (ch == ' ' || ch == '\t' || ch == ',' || ch == '.') {
            space = k > 0;
            continue;
        }
        if (space)
            buf[k++] = ' ';
        space = false;
        buf[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    const struct ewtp_address *ad = p->address;
    int n =
        snprintf(buf + k, sizeof(buf) - k, "|%s|%s|%.10s", ad && ad->postcode ? ad->postcode : "",
                 ad && ad->country ? ad->country : (p->country ? p->country : ""), m->created_at);
    if (n < 0)
        return NULL;
    size_t len = k + (size_t)n < sizeof(buf) ? k + (size_t)n : sizeof(buf) - 1;
    unsigned char dig[EWTP_DIGEST_MAX];
    size_t dlen = 0;
    if (ewtp_digest(EWTP_DIGEST_SHA256, buf, len, dig, &dlen) != 0)
        return NULL;
    char *hex = ewtp_hex_encode(a, dig, 16);
    return hex ? ewtp_arena_printf(a, "be-h7-consignee-day:%s", hex) : NULL;
}

int be_intrinsic_eur(const struct be_state *st, const struct ewtp_declaration *d,
                     struct ewtp_dec *eur)
{
    struct ewtp_dec sum = ewtp_dec_from_int(0);
    for (size_t i = 0; i < d->n_lines; i++) {
        if (d->lines[i]->amount.text == NULL)
            continue;
        if (ewtp_dec_add(sum, d->lines[i]->amount.value, &sum) != 0)
            return -EWTP_ERANGE;
    }
    struct ewtp_dec rate;
    if (d->currency == NULL || strcmp(d->currency, "EUR") == 0) {
        rate = ewtp_dec_from_int(1);
    } else if (d->exchange_rate.text) {
        rate = d->exchange_rate.value;
    } else {
        size_t i = 0;
        while (i < st->n_rates && strcmp(st->rates[i].currency, d->currency) != 0)
            i++;
        if (i == st->n_rates)
            return -EWTP_ENOTFOUND;
        rate = st->rates[i].eur_per_unit;
    }
    struct ewtp_dec prod;
    if (ewtp_dec_mul(sum, rate, &prod) != 0 || ewtp_dec_round(prod, 2, eur) != 0)
        return -EWTP_ERANGE;
    return 0;
}

static bool state_counts(const char *state)
{
    return state == NULL || (strcmp(state, "rejected") != 0 && strcmp(state, "dead") != 0 &&
                             strcmp(state, "cancelled") != 0);
}

/* Related H7 declarations of this tenant to the same consignee on the same day whose values
 * together pass the threshold: a warning (or an error when h7.split_check = "error"). Only the
 * tenant's own declarations count (another tenant's totals would leak through the fact). */
static void check_split(const struct be_state *st, const struct ewtp_call *c,
                        struct ewtp_dec own_eur, struct ewtp_errors *errs)
{
    if (c->n_related == 0)
        return;
    const char *key = be_split_key(c->msg, c->arena);
    if (key == NULL)
        return;
    struct ewtp_dec total = own_eur;
    size_t others = 0;
    for (size_t i = 0; i < c->n_related; i++) {
        const struct ewtp_message *m = c->related[i]->msg;
        if (m == NULL || m->declaration == NULL || m->declaration->type != EWTP_DECL_LOW_VALUE ||
            m->destination == NULL || strcmp(m->destination, "BE") != 0 ||
            !state_counts(c->related[i]->state))
            continue;
        /* Another tenant's declarations count for nothing: their values, and even how many
         * there are, would be learnt by posting declarations of chosen values (issue 19,
         * DECISIONS "Tenants and party codes"). Customs sees the whole consignment. */
        if (c->related[i]->tenant && c->tenant && strcmp(c->related[i]->tenant, c->tenant) != 0)
            continue;
        if (strcmp(m->id, c->msg->id) == 0)
            continue; /* ourselves */
        const char *k = be_split_key(m, c->arena);
        struct ewtp_dec eur;
        if (k == NULL || strcmp(k, key) != 0 || be_intrinsic_eur(st, m->declaration, &eur) != 0)
            continue;
        if (ewtp_dec_add(total, eur, &total) != 0)
            return;
        others++;
    }
    if (others == 0 || ewtp_dec_cmp(total, st->threshold_eur) <= 0)
        return;
    char lim[EWTP_DEC_STRMAX];
    ewtp_dec_format_places(st->threshold_eur, 2, lim, sizeof(lim));
    ewtp_errors_add_sev(errs, st->split_is_error ? EWTP_SEV_ERROR : EWTP_SEV_WARNING,
                        consignee_of(c->msg) == c->msg->parties[EWTP_ROLE_CONSIGNEE]
                            ? "/parties/consignee"
                            : "/parties/importer",
                        "rule",
                        "suspected consignment splitting: with %zu other low-value declaration(s) "
                        "to the same consignee on the same day the intrinsic values together "
                        "exceed EUR %s (H7 relief is per consignment, Reg. 1186/2009 Art. 23)",
                        others, lim);
}

/* ---- ext.be ------------------------------------------------------------------------------- */

static void check_ext(const struct ewtp_message *m, struct ewtp_errors *errs)
{
    const struct ewtp_json *ext = ewtp_message_ext(m, "be");
    if (ext == NULL)
        return;
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, "/ext/be", "type", "ext.be must be an object");
        return;
    }
    const char *key;
    const struct ewtp_json *v;
    char p[EWTP_POINTER_MAX];
    for (size_t i = 0; ewtp_json_member(ext, i, &key, &v); i++) {
        ewtp_pointer(p, "/ext/be/%s", key);
        const char *s = ewtp_json_string(v);
        if (strcmp(key, "additional_declaration_type") == 0) {
            if (s == NULL || (strcmp(s, "A") != 0 && strcmp(s, "D") != 0))
                ewtp_errors_add(errs, p, "format",
                                "additional_declaration_type must be \"A\" (standard) or \"D\" "
                                "(lodged before the goods are presented)");
        } else if (strcmp(key, "representative_status") == 0) {
            if (s == NULL || (strcmp(s, "2") != 0 && strcmp(s, "3") != 0))
                ewtp_errors_add(errs, p, "format",
                                "representative_status must be \"2\" (direct) or \"3\" (indirect)");
        } else if (strcmp(key, "ioss") == 0) {
            bool b;
            if (!ewtp_json_bool(v, &b))
                ewtp_errors_add(errs, p, "type", "ext.be.ioss must be true or false");
        } else if (strcmp(key, "previous_documents") == 0) {
            if (ewtp_json_type(v) != EWTP_JSON_ARRAY) {
                ewtp_errors_add(errs, p, "type", "previous_documents must be an array");
                continue;
            }
            for (size_t j = 0; j < ewtp_json_size(v); j++) {
                const struct ewtp_json *e = ewtp_json_index(v, j);
                const char *t = ewtp_json_get_string(e, "type");
                const char *r = ewtp_json_get_string(e, "reference");
                char q[EWTP_POINTER_MAX];
                ewtp_pointer(q, "/ext/be/previous_documents/%zu", j);
                if (t == NULL || strlen(t) != 4)
                    ewtp_errors_add(errs, q, "format",
                                    "a previous document needs a 4-character type code");
                if (r == NULL || r[0] == '\0' || strlen(r) > 70)
                    ewtp_errors_add(errs, q, "format",
                                    "a previous document needs a reference of 1-70 characters");
            }
        } else if (strcmp(key, "delivery") == 0) {
            const char *date = ewtp_json_get_string(v, "date");
            const char *cc = ewtp_json_get_string(v, "country");
            if (ewtp_json_type(v) != EWTP_JSON_OBJECT)
                ewtp_errors_add(errs, p, "type", "ext.be.delivery must be an object");
            else if ((date && !ewtp_is_date(date)) || (cc && !ewtp_code_country(cc)) ||
                     ewtp_json_members(v) != (size_t)(date != NULL) + (size_t)(cc != NULL))
                ewtp_errors_add(errs, p, "format",
                                "ext.be.delivery is {\"date\": YYYY-MM-DD, \"country\": ISO "
                                "3166 code}");
        } else {
            ewtp_errors_add(errs, p, "unknown_member",
                            "ext.be has no member \"%s\" (see plugins/be/ext.schema.json)", key);
        }
    }
}

static bool ext_bool(const struct ewtp_message *m, const char *key)
{
    bool b = false;
    ewtp_json_bool(ewtp_json_get(ewtp_message_ext(m, "be"), key), &b);
    return b;
}

/* ---- H7 ------------------------------------------------------------------------------------ */

/* Field lengths of the H7 data set (an..N). */
static void check_len(struct ewtp_errors *errs, const char *s, size_t max, const char *pointer)
{
    if (s && strlen(s) > max)
        ewtp_errors_add(errs, pointer, "range", "at most %zu characters in H7", max);
}

static bool excise_hs(const struct be_state *st, const char *hs)
{
    for (size_t i = 0; st->excise_prefixes[i]; i++)
        if (strncmp(hs, st->excise_prefixes[i], strlen(st->excise_prefixes[i])) == 0)
            return true;
    return false;
}

static void validate_h7(const struct be_state *st, const struct ewtp_call *c,
                        struct ewtp_errors *errs)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_declaration *d = m->declaration;
    char p[EWTP_POINTER_MAX];
    if (m->direction != EWTP_DIR_IMPORT)
        ewtp_errors_add(errs, "/direction", "rule", "an H7 declaration is an import declaration");
    /* DE 13 05: the declarant's EORI selects the EONGW credentials. */
    const struct ewtp_party *decl = m->parties[EWTP_ROLE_DECLARANT];
    if (decl == NULL) {
        ewtp_errors_add(errs, "/parties/declarant", "required",
                        "an H7 declaration needs the declarant (DE 13 05) with an EORI number");
    } else {
        size_t k = 0;
        while (k < decl->n_ids && strcmp(decl->ids[k]->scheme, "EORI") != 0)
            k++;
        if (k == decl->n_ids) {
            ewtp_errors_add(errs, "/parties/declarant/ids", "required",
                            "the declarant needs an EORI number (ids scheme EORI)");
        } else if (!eori_valid(decl->ids[k]->value)) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/parties/declarant/ids/%zu/value", k), "format",
                            "not an EORI number: an ISO country code followed by up to 15 "
                            "digits or capital letters");
        } else if (st->declarant_eori && strcmp(st->declarant_eori, decl->ids[k]->value) != 0) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/parties/declarant/ids/%zu/value", k), "rule",
                            "this instance lodges for another declarant EORI (credentials at "
                            "the EONGW are per EORI)");
        }
    }
    /* DE 13 01 exporter, DE 13 04 importer (the consignee for B2C parcels). */
    if (m->parties[EWTP_ROLE_SELLER] == NULL && m->parties[EWTP_ROLE_EXPORTER] == NULL)
        ewtp_errors_add(errs, "/parties/seller", "required",
                        "an H7 declaration names the exporter (DE 13 01): the seller or exporter");
    const struct ewtp_party *imp = consignee_of(m);
    if (imp == NULL)
        ewtp_errors_add(errs, "/parties/consignee", "required",
                        "an H7 declaration names the importer (DE 13 04): the consignee or "
                        "importer");
    else if (imp->address == NULL || imp->address->country == NULL || imp->address->city == NULL)
        ewtp_errors_add(errs,
                        imp == m->parties[EWTP_ROLE_CONSIGNEE] ? "/parties/consignee/address"
                                                               : "/parties/importer/address",
                        "required",
                        "the importer's address (city and country) is needed (DE 13 04)");
    const struct ewtp_party *exp = m->parties[EWTP_ROLE_SELLER] ? m->parties[EWTP_ROLE_SELLER]
                                                                : m->parties[EWTP_ROLE_EXPORTER];
    const char *exp_ptr = m->parties[EWTP_ROLE_SELLER] ? "/parties/seller" : "/parties/exporter";
    if (exp && (exp->address == NULL || exp->address->city == NULL ||
                (exp->address->country == NULL && exp->country == NULL)))
        ewtp_errors_add(errs, ewtp_pointer(p, "%s/address", exp_ptr), "required",
                        "the exporter's address (city and country) is needed (DE 13 01)");
    check_len(errs, exp ? exp->name : NULL, 70, ewtp_pointer(p, "%s/name", exp_ptr));
    check_len(errs, imp ? imp->name : NULL, 70,
              imp == m->parties[EWTP_ROLE_CONSIGNEE] ? "/parties/consignee/name"
                                                     : "/parties/importer/name");
    check_len(errs, d->order_number, 35, "/declaration/order_number");
    check_len(errs, d->waybill_number, 70, "/declaration/waybill_number");
    for (size_t i = 0; i < d->n_documents; i++) {
        const char *t = d->documents[i]->type;
        if (t == NULL || strlen(t) != 4)
            ewtp_errors_add(errs, ewtp_pointer(p, "/declaration/documents/%zu/type", i), "format",
                            "H7 supporting documents (DE 12 03) use 4-character Union document "
                            "codes (e.g. N380 commercial invoice)");
        check_len(errs, d->documents[i]->number, 70,
                  ewtp_pointer(p, "/declaration/documents/%zu/number", i));
    }
    const char *loc = d->location_of_goods;
    if (loc && (strlen(loc) != 5 || loc[0] < 'A' || loc[0] > 'Z' || loc[1] < 'A' || loc[1] > 'Z'))
        ewtp_errors_add(errs, "/declaration/location_of_goods", "format",
                        "the location of goods (DE 16 15) is a UN/LOCODE such as BELGG");
    if (d->currency == NULL)
        ewtp_errors_add(errs, "/declaration/currency", "required",
                        "the intrinsic value (DE 14 14) needs a currency");
    if (d->customs_office &&
        (strncmp(d->customs_office, "BE", 2) != 0 || strlen(d->customs_office) != 8 ||
         !is_digits(d->customs_office + 2, 6)))
        ewtp_errors_add(errs, "/declaration/customs_office", "format",
                        "a Belgian customs office code is BE and 6 digits");
    if (d->procedure && strcmp(d->procedure, "4000") != 0 && strcmp(d->procedure, "40") != 0)
        ewtp_errors_add(errs, "/declaration/procedure", "rule",
                        "H7 is release for free circulation only: procedure 40 (40 00)");
    bool f48 = false;
    for (size_t i = 0; i < d->n_additional_procedures; i++) {
        const char *a = d->additional_procedures[i];
        if (strcmp(a, "F48") == 0)
            f48 = true;
        if (strcmp(a, "C07") != 0 && strcmp(a, "C08") != 0 && strcmp(a, "F48") != 0 &&
            strcmp(a, "F49") != 0)
            ewtp_errors_add(errs, ewtp_pointer(p, "/declaration/additional_procedures/%zu", i),
                            "format",
                            "H7 additional procedure codes (DE 11 10) are C07, C08, F48 and F49");
    }
    if (d->n_lines > 999)
        ewtp_errors_add(errs, "/declaration/lines", "range",
                        "at most 999 goods items per declaration");
    for (size_t i = 0; i < d->n_lines; i++) {
        const struct ewtp_line *l = d->lines[i];
        if (l->hs_code && (strlen(l->hs_code) < 6 || !is_digits(l->hs_code, strlen(l->hs_code))))
            ewtp_errors_add(errs, ewtp_pointer(p, "/declaration/lines/%zu/hs_code", i), "format",
                            "H7 needs the 6-digit HS subheading (DE 18 09) or a longer code");
        else if (l->hs_code && excise_hs(st, l->hs_code))
            ewtp_errors_add(errs, ewtp_pointer(p, "/declaration/lines/%zu/hs_code", i), "rule",
                            "excise goods (alcohol, tobacco, perfume, energy products) cannot be "
                            "declared with H7 in Belgium: lodge a standard declaration");
        for (size_t t = 0; t < l->n_taxes; t++)
            if (l->taxes[t]->type && strcmp(l->taxes[t]->type, "EXCISE") == 0)
                ewtp_errors_add(errs,
                                ewtp_pointer(p, "/declaration/lines/%zu/taxes/%zu/type", i, t),
                                "rule", "excise goods cannot be declared with H7 in Belgium");
        check_len(errs, l->description, 512,
                  ewtp_pointer(p, "/declaration/lines/%zu/description", i));
        if (l->amount.text && ewtp_dec_is_negative(l->amount.value))
            ewtp_errors_add(errs, ewtp_pointer(p, "/declaration/lines/%zu/amount", i), "range",
                            "the intrinsic value of a goods item cannot be negative");
    }
    /* IOSS (DE 13 16, role FR5) */
    const char *role = NULL;
    const char *ioss = be_ioss(m, &role);
    if (ioss && !ioss_valid(ioss)) {
        const struct ewtp_party *pp = m->parties[role[0] == 'p'   ? EWTP_ROLE_PLATFORM
                                                 : role[0] == 's' ? EWTP_ROLE_SELLER
                                                                  : EWTP_ROLE_MERCHANT];
        size_t k = 0;
        while (k < pp->n_ids && strcmp(pp->ids[k]->scheme, "IOSS") != 0)
            k++;
        ewtp_errors_add(errs, ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, k), "format",
                        "an IOSS number is IM, the 3-digit code of the member state and 7 "
                        "digits (IMnnnnnnnnnn)");
    }
    if (ioss == NULL && (f48 || ext_bool(m, "ioss")))
        ewtp_errors_add(errs, "/parties/seller/ids", "required",
                        "the seller declares IOSS (%s) but no IOSS number is given (ids scheme "
                        "IOSS of the platform, seller or merchant)",
                        f48 ? "additional procedure F48" : "ext.be.ioss");
    /* DE 14 14: intrinsic value of the consignment at most EUR 150 (Reg. 1186/2009 Art. 23). */
    struct ewtp_dec eur;
    int rc = be_intrinsic_eur(st, d, &eur);
    if (rc == -EWTP_ENOTFOUND) {
        ewtp_errors_add(errs, "/declaration/exchange_rate", "required",
                        "the value is in %s: give exchange_rate (EUR per unit) or configure "
                        "h7.exchange_rates.%s for the EUR %s test",
                        d->currency, d->currency, "150");
    } else if (rc != 0) {
        ewtp_errors_add(errs, "/declaration/lines", "range", "the intrinsic value is too large");
    } else {
        if (ewtp_dec_cmp(eur, st->threshold_eur) > 0) {
            char v[EWTP_DEC_STRMAX], lim[EWTP_DEC_STRMAX];
            ewtp_dec_format_places(eur, 2, v, sizeof(v));
            ewtp_dec_format_places(st->threshold_eur, 2, lim, sizeof(lim));
            ewtp_errors_add(
                errs, d->invoice_value.text ? "/declaration/invoice_value" : "/declaration/lines",
                "rule",
                "the intrinsic value of the consignment is EUR %s, above the H7 "
                "limit of EUR %s: lodge a standard declaration",
                v, lim);
        }
        check_split(st, c, eur, errs);
    }
}

/* ---- Peppol BIS Billing 3.0 -------------------------------------------------------------- */

const struct ewtp_tax *be_line_vat(const struct ewtp_line *l)
{
    for (size_t t = 0; t < l->n_taxes; t++)
        if (l->taxes[t]->type && strcmp(l->taxes[t]->type, "VAT") == 0)
            return l->taxes[t];
    return NULL;
}

static const char *party_country(const struct ewtp_party *p)
{
    if (p->address && p->address->country)
        return p->address->country;
    return p->country;
}

static size_t id_index(const struct ewtp_party *p, const char *scheme)
{
    for (size_t i = 0; p && i < p->n_ids; i++)
        if (strcmp(p->ids[i]->scheme, scheme) == 0)
            return i;
    return (size_t)-1;
}

/* BR-CL-25: the EndpointID scheme is in the EAS code list (data/eas.txt). */
static bool eas_known(const char *scheme)
{
    return ewtp_code_table_find(&be_codes_eas, scheme) != NULL;
}

/* The identifier checks of the Peppol schematron (PEPPOL-COMMON-R040 ...), written after its
 * XPath so that the plugin refuses exactly what the access point would. Where the schematron
 * tests normalize-space(), the value is first stripped of leading and trailing XML blanks
 * (internal blanks fail every pattern anyway); where it tests string(), the value as is. */
static bool xml_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static size_t stripped(const char *s, const char **start)
{
    size_t n = strlen(s);
    while (n > 0 && xml_blank(*s)) {
        s++;
        n--;
    }
    while (n > 0 && xml_blank(s[n - 1]))
        n--;
    *start = s;
    return n;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* u:gln: GS1 check digit, weights 3, 1, 3 ... from the right of the digits before it. */
static bool gln_ok(const char *s, size_t n)
{
    if (n == 0 || !all_digits(s, n))
        return false;
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned d = (unsigned)(s[n - 2 - i] - '0');
        sum = (sum + d * (i % 2 == 0 ? 3u : 1u)) % 10;
    }
    return (10 - sum) % 10 == (unsigned)(s[n - 1] - '0');
}

/* u:mod11 (0192): weights 2..7 repeating from the right of the first 8 digits; number > 0. */
static bool no_orgnr_ok(const char *s, size_t n)
{
    if (n != 9 || !all_digits(s, n))
        return false;
    unsigned sum = 0;
    bool nonzero = false;
    for (size_t i = 0; i < 9; i++)
        nonzero = nonzero || s[i] != '0';
    for (size_t i = 0; i < 8; i++)
        sum += (unsigned)(s[7 - i] - '0') * (unsigned)(i % 6 + 2);
    return nonzero && (11 - sum % 11) % 11 == (unsigned)(s[8] - '0');
}

/* u:checkSEOrgnr (0007): 10 digits, Luhn over the first 9. */
static bool se_orgnr_ok(const char *s, size_t n)
{
    if (n != 10 || !all_digits(s, n))
        return false;
    unsigned sum = 0;
    for (size_t pos = 1; pos <= 9; pos++) {
        unsigned d = (unsigned)(s[9 - pos] - '0');
        sum += pos % 2 == 1 ? (2 * d) % 10 + (2 * d) / 10 : d;
    }
    return (10 - sum % 10) % 10 == (unsigned)(s[9] - '0');
}

/* u:abn (0151): 11 digits, (d1 - 1) x 10 + d2 x 1 + d3 x 3 + ... + d11 x 19, mod 89 = 0. */
static bool abn_ok(const char *s, size_t n)
{
    static const int w[11] = {10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19};
    if (n != 11 || !all_digits(s, n))
        return false;
    int sum = 0;
    for (size_t i = 0; i < 11; i++)
        sum += ((s[i] - '0') - (i == 0 ? 1 : 0)) * w[i];
    return sum % 89 == 0;
}

/* "DK" and 8 digits (0184, 0198). */
static bool dk_prefixed(const char *s)
{
    return strlen(s) == 10 && strncmp(s, "DK", 2) == 0 && all_digits(s + 2, 8);
}

/* Checks an endpoint value for its scheme. Returns NULL when it passes, else the rule broken
 * and, in *what, its subject; *warning tells a warning rule from a fatal one. */
static const char *peppol_id_rule(const char *scheme, const char *value, const char **what,
                                  bool *warning)
{
    const char *v;
    size_t n = stripped(value, &v);
    *warning = false;
    if (strcmp(scheme, "0088") == 0) {
        *what = "a GLN (0088): digits with a valid GS1 check digit";
        return gln_ok(v, n) ? NULL : "PEPPOL-COMMON-R040";
    }
    if (strcmp(scheme, "0192") == 0) {
        *what = "a Norwegian organisation number (0192): 9 digits with a mod-11 check digit";
        return no_orgnr_ok(v, n) ? NULL : "PEPPOL-COMMON-R041";
    }
    if (strcmp(scheme, "0184") == 0) {
        *what = "a Danish CVR number (0184): 8 digits, or DK and 8 digits";
        return dk_prefixed(value) || (strlen(value) == 8 && all_digits(value, 8))
                   ? NULL
                   : "PEPPOL-COMMON-R042";
    }
    if (strcmp(scheme, "0096") == 0) {
        *what = "a Danish P number (0096): 10 digits";
        return strlen(value) == 10 && all_digits(value, 10) ? NULL : "PEPPOL-COMMON-R052";
    }
    if (strcmp(scheme, "0198") == 0) {
        *what = "a Danish SE number (0198): DK and 8 digits";
        return dk_prefixed(value) ? NULL : "PEPPOL-COMMON-R053";
    }
    if (strcmp(scheme, "0007") == 0) {
        *what = "a Swedish organisation number (0007): 10 digits with a Luhn check digit";
        return se_orgnr_ok(v, n) ? NULL : "PEPPOL-COMMON-R049";
    }
    if (strcmp(scheme, "0151") == 0) {
        *what = "an Australian Business Number (0151): 11 digits with the ABN check";
        return abn_ok(v, n) ? NULL : "PEPPOL-COMMON-R050";
    }
    *warning = true;
    if (strcmp(scheme, "0106") == 0) {
        *what = "a Dutch KVK number (0106): 8 digits";
        return n == 8 && all_digits(v, n) ? NULL : "PEPPOL-COMMON-R054";
    }
    if (strcmp(scheme, "0190") == 0) {
        *what = "a Dutch OIN (0190): 20 digits";
        return n == 20 && all_digits(v, n) ? NULL : "PEPPOL-COMMON-R055";
    }
    if (strcmp(scheme, "9944") == 0) {
        *what = "a Dutch VAT number (9944): NL, 9 digits, B and 2 digits";
        return n == 14 && strncmp(v, "NL", 2) == 0 && all_digits(v + 2, 9) && v[11] == 'B' &&
                       all_digits(v + 12, 2)
                   ? NULL
                   : "PEPPOL-COMMON-R056-1";
    }
    if (strcmp(scheme, "0217") == 0) {
        *what = "a Dutch KVK establishment number (0217): 12 digits";
        return n == 12 && all_digits(v, n) ? NULL : "PEPPOL-COMMON-R057";
    }
    /* 0208 is checked by the caller (be_kbo_valid); the Italian checks (R044-R047, warnings)
     * rely on XPath integer casting and are left to the access point. */
    return NULL;
}

static void check_invoice_party(const struct ewtp_message *m, enum ewtp_role role,
                                struct ewtp_errors *errs)
{
    const struct ewtp_party *p = m->parties[role];
    const char *rn = ewtp_role_name(role);
    char ptr[EWTP_POINTER_MAX];
    if (p == NULL) {
        ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s", rn), "required",
                        "a Peppol invoice names the %s (BR-%s)", rn,
                        role == EWTP_ROLE_SELLER ? "06" : "07");
        return;
    }
    if (party_country(p) == NULL)
        ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/address", rn), "required",
                        "the %s's postal address needs a country (BR-%s)", rn,
                        role == EWTP_ROLE_SELLER ? "09" : "11");
    size_t v = id_index(p, "VAT");
    if (v != (size_t)-1) {
        const char *vat = p->ids[v]->value;
        if (strncmp(vat, "BE", 2) == 0 && !be_kbo_valid(vat + 2))
            ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/ids/%zu/value", rn, v), "format",
                            "a Belgian VAT number is BE and 10 digits with a mod-97 check");
        else if (strlen(vat) < 3 || vat[0] < 'A' || vat[0] > 'Z' || vat[1] < 'A' || vat[1] > 'Z')
            ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/ids/%zu/value", rn, v), "format",
                            "a VAT number starts with its country prefix (BR-CO-09)");
    }
    if (p->endpoint) {
        const char *what = NULL, *rule = NULL;
        bool warning = false;
        if (!eas_known(p->endpoint->scheme))
            ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/endpoint/scheme", rn), "format",
                            "\"%s\" is not in the EAS code list of electronic address schemes "
                            "(BR-CL-25): e.g. 0208 Belgian enterprise number, 9925 Belgian VAT, "
                            "0088 GLN",
                            p->endpoint->scheme);
        else if (strcmp(p->endpoint->scheme, "0208") == 0 && !be_kbo_valid(p->endpoint->value))
            ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/endpoint/value", rn), "format",
                            "a Belgian enterprise number (0208) is 10 digits with a mod-97 "
                            "check (PEPPOL-COMMON-R043)");
        else if ((rule = peppol_id_rule(p->endpoint->scheme, p->endpoint->value, &what,
                                        &warning)) != NULL)
            ewtp_errors_add_sev(errs, warning ? EWTP_SEV_WARNING : EWTP_SEV_ERROR,
                                ewtp_pointer(ptr, "/parties/%s/endpoint/value", rn), "format",
                                "not %s (%s)", what, rule);
    } else {
        const char *s, *val;
        if (!be_party_endpoint(p, NULL, &s, &val))
            ewtp_errors_add(errs, ewtp_pointer(ptr, "/parties/%s/endpoint", rn), "required",
                            "the %s needs a Peppol electronic address (PEPPOL-EN16931-R0%s): "
                            "give endpoint, or a Belgian VAT number to derive 0208",
                            rn, role == EWTP_ROLE_SELLER ? "20" : "10");
    }
}

static bool has_buyer_legal_id(const struct ewtp_party *b)
{
    const char *s, *v;
    return b && be_party_endpoint(b, NULL, &s, &v) && strcmp(s, "0208") == 0;
}

static void validate_invoice(const struct be_state *st, const struct ewtp_call *c,
                             struct ewtp_errors *errs)
{
    (void)st;
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    char p[EWTP_POINTER_MAX];
    check_invoice_party(m, EWTP_ROLE_SELLER, errs);
    check_invoice_party(m, EWTP_ROLE_BUYER, errs);
    const struct ewtp_party *seller = m->parties[EWTP_ROLE_SELLER];
    const struct ewtp_party *buyer = m->parties[EWTP_ROLE_BUYER];
    if (inv->buyer_reference == NULL && inv->order_number == NULL)
        ewtp_errors_add(errs, "/invoice/buyer_reference", "required",
                        "Peppol needs a buyer reference or an order number (PEPPOL-EN16931-R003)");
    if (inv->currency && strcmp(inv->currency, "EUR") != 0 && inv->exchange_rate.text == NULL)
        ewtp_errors_add(errs, "/invoice/exchange_rate", "required",
                        "an invoice in %s needs exchange_rate (EUR per unit): Belgian VAT is "
                        "also stated in EUR",
                        inv->currency);
    if (inv->payment_means && inv->payment_means->code &&
        (strcmp(inv->payment_means->code, "30") == 0 ||
         strcmp(inv->payment_means->code, "58") == 0) &&
        inv->payment_means->account == NULL)
        ewtp_errors_add(errs, "/invoice/payment_means/account", "required",
                        "a credit transfer needs the payee's account (BR-61)");
    bool has_o = false, has_other = false, need_seller_vat = false;
    for (size_t i = 0; i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        if (l->quantity.text == NULL)
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/quantity", i), "required",
                            "a Peppol invoice line needs a quantity (BR-22)");
        if (l->unit_price.text == NULL)
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/unit_price", i), "required",
                            "a Peppol invoice line needs a net price (BR-26)");
        else if (ewtp_dec_is_negative(l->unit_price.value))
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/unit_price", i), "range",
                            "the item net price cannot be negative (BR-27)");
        if (l->amount.text && l->amount.value.scale > 2) {
            struct ewtp_dec r;
            if (ewtp_dec_round(l->amount.value, 2, &r) != 0 || ewtp_dec_cmp(r, l->amount.value))
                ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/amount", i), "rule",
                                "Peppol line amounts have at most 2 decimals (BR-DEC-23)");
        }
        if (l->discount.text && ewtp_dec_is_negative(l->discount.value))
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/discount", i), "range",
                            "a line discount cannot be negative");
        const struct ewtp_tax *vat = be_line_vat(l);
        if (vat == NULL) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes", i), "required",
                            "every Peppol invoice line needs a VAT category (taxes type VAT, "
                            "BR-CO-04)");
            continue;
        }
        size_t t = 0;
        while (t < l->n_taxes && l->taxes[t] != vat)
            t++;
        const char *cat = vat->category ? vat->category : "";
        char cp[EWTP_POINTER_MAX], rp[EWTP_POINTER_MAX];
        ewtp_pointer(cp, "/invoice/lines/%zu/taxes/%zu/category", i, t);
        ewtp_pointer(rp, "/invoice/lines/%zu/taxes/%zu/rate", i, t);
        bool zero_rated = strcmp(cat, "Z") == 0 || strcmp(cat, "E") == 0 ||
                          strcmp(cat, "AE") == 0 || strcmp(cat, "K") == 0 || strcmp(cat, "G") == 0;
        if (strcmp(cat, "O") == 0) {
            has_o = true;
            if (vat->rate.text)
                ewtp_errors_add(errs, rp, "rule",
                                "category O (not subject to VAT) has no rate (BR-O-05)");
            continue;
        }
        has_other = true;
        if (strcmp(cat, "S") != 0 && !zero_rated) {
            ewtp_errors_add(errs, cp, "format",
                            "Peppol VAT categories used in Belgium: S, Z, E, AE, K, G, O "
                            "(UNCL 5305 subset)");
            continue;
        }
        need_seller_vat = true;
        if (vat->rate.text == NULL)
            ewtp_errors_add(errs, rp, "required", "category %s needs a VAT rate", cat);
        else if (strcmp(cat, "S") == 0 &&
                 !(ewtp_dec_cmp(vat->rate.value, ewtp_dec_from_int(0)) > 0))
            ewtp_errors_add(errs, rp, "rule", "standard rated (S) needs a rate above 0 (BR-S-05)");
        else if (zero_rated && !ewtp_dec_is_zero(vat->rate.value))
            ewtp_errors_add(errs, rp, "rule", "category %s has rate 0", cat);
        if (zero_rated && vat->amount.text && !ewtp_dec_is_zero(vat->amount.value))
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t),
                            "rule", "category %s carries no VAT amount", cat);
        if (strcmp(cat, "E") == 0 && vat->exemption_reason == NULL)
            ewtp_errors_add(errs,
                            ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/exemption_reason", i, t),
                            "required",
                            "an exempt line (E) needs an exemption reason: text or a VATEX code "
                            "(BR-E-10)");
        if (strcmp(cat, "S") == 0 && vat->exemption_reason)
            ewtp_errors_add(errs,
                            ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/exemption_reason", i, t),
                            "rule", "a standard rated line has no exemption reason (BR-S-10)");
        if (strcmp(cat, "AE") == 0 && buyer && id_index(buyer, "VAT") == (size_t)-1 &&
            !has_buyer_legal_id(buyer))
            ewtp_errors_add(errs, "/parties/buyer/ids", "required",
                            "reverse charge (AE) needs the buyer's VAT number or legal "
                            "registration (BR-AE-02)");
        if (strcmp(cat, "K") == 0) {
            if (buyer && id_index(buyer, "VAT") == (size_t)-1)
                ewtp_errors_add(errs, "/parties/buyer/ids", "required",
                                "an intra-community supply (K) needs the buyer's VAT number "
                                "(BR-IC-02)");
            const struct ewtp_json *dl = ewtp_json_get(ewtp_message_ext(m, "be"), "delivery");
            if (inv->billing_period == NULL && ewtp_json_get_string(dl, "date") == NULL)
                ewtp_errors_add(errs, "/ext/be/delivery", "required",
                                "an intra-community supply (K) needs the delivery date "
                                "(ext.be.delivery.date) or billing_period (BR-IC-11)");
        }
    }
    if (has_o && has_other)
        ewtp_errors_add(errs, "/invoice/lines", "rule",
                        "category O (not subject to VAT) cannot be mixed with other categories "
                        "(BR-O-11)");
    if (need_seller_vat && seller && id_index(seller, "VAT") == (size_t)-1)
        ewtp_errors_add(errs, "/parties/seller/ids", "required",
                        "the seller's VAT number (ids scheme VAT) is needed for VAT categories "
                        "other than O (BR-S-02 and siblings)");
    /* Totals: what Peppol will say against what the sender says. */
    struct be_vat_group *g = NULL;
    size_t n = 0;
    if (be_vat_breakdown(inv, c->arena, &g, &n) != 0)
        return;
    struct ewtp_dec tax = ewtp_dec_from_int(0), net = ewtp_dec_from_int(0), gross;
    for (size_t i = 0; i < n; i++)
        if (ewtp_dec_add(tax, g[i].tax, &tax) != 0 || ewtp_dec_add(net, g[i].taxable, &net) != 0)
            return;
    if (ewtp_dec_add(net, tax, &gross) != 0)
        return;
    if (inv->totals->tax.text && ewtp_dec_cmp(inv->totals->tax.value, tax) != 0) {
        char v[EWTP_DEC_STRMAX];
        ewtp_dec_format_places(tax, 2, v, sizeof(v));
        ewtp_errors_warn(errs, "/invoice/totals/tax", "rule",
                         "Peppol computes VAT per category (BR-CO-17): the invoice states %s "
                         "VAT, not %s",
                         v, inv->totals->tax.text);
    }
    if (inv->totals->payable.text && inv->totals->gross.text &&
        ewtp_dec_cmp(inv->totals->payable.value, inv->totals->gross.value) > 0)
        ewtp_errors_add(errs, "/invoice/totals/payable", "rule",
                        "the amount due cannot exceed the gross total (BR-CO-16 has no room for "
                        "it without a charge)");
}

void be_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const struct be_state *st = state;
    const struct ewtp_message *m = c->msg;
    check_ext(m, errs);
    if (c->op == EWTP_OP_CANCEL) {
        ewtp_errors_add(errs, "", "unsupported",
                        "the Belgian plugin cannot cancel: IDMS-H7 invalidation messages are not "
                        "public, and a Peppol invoice is corrected with a credit note");
        return;
    }
    if (m->declaration) {
        if (m->declaration->type != EWTP_DECL_LOW_VALUE) {
            ewtp_errors_add(errs, "/declaration/type", "unsupported",
                            "the Belgian plugin lodges H7 low-value declarations only; a "
                            "standard (H1) declaration goes through another IDMS channel");
            return;
        }
        validate_h7(st, c, errs);
    } else if (m->invoice) {
        validate_invoice(st, c, errs);
    } else {
        ewtp_errors_add(errs, ewtp_message_body_pointer(m), "unsupported",
                        "the Belgian plugin serves H7 declarations and Peppol invoices");
    }
}
