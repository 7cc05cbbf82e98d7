/* MyInvois rules checked before sending (FACTS.md §2.2, §2.4, §4): every error at once, each
 * pointing into the common message. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include <ewtp/codes.h>
#include <ewtp/decimal.h>
#include <ewtp/json.h>

#include "my.h"

#define E(errs, code, ...) ewtp_errors_add(errs, p, code, __VA_ARGS__)

static bool all_digits(const char *s, size_t from)
{
    if (s[from] == '\0')
        return false;
    for (size_t i = from; s[i]; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_general_tin(const char *tin)
{
    return strcmp(tin, "EI00000000010") == 0 || strcmp(tin, "EI00000000020") == 0 ||
           strcmp(tin, "EI00000000030") == 0 || strcmp(tin, "EI00000000040") == 0;
}

/* TIN formats [CB-05] (community; LHDN only offers the validate-TIN API): IG + digits for
 * individuals; a non-individual prefix + digits without a leading zero ending in 0; the
 * general TINs. At most 14 characters. */
static bool tin_ok(const char *tin)
{
    size_t n = strlen(tin);
    if (n < 3 || n > 14)
        return false;
    if (is_general_tin(tin))
        return true;
    if (strncmp(tin, "IG", 2) == 0)
        return all_digits(tin, 2);
    static const char *const prefixes[] = {"CS", "FA", "PT", "TA", "TC", "TN", "TR",
                                           "TP", "LE", "C",  "D",  "F",  "J"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(tin, prefixes[i], pl) == 0)
            return all_digits(tin, pl) && tin[pl] != '0' && tin[n - 1] == '0';
    }
    return false;
}

static bool phone_ok(const char *s)
{
    size_t n = strlen(s), from = s[0] == '+' ? 1 : 0;
    return n >= 8 && n <= 20 && all_digits(s, from);
}

static bool max_places(const struct ewtp_num *n, unsigned places)
{
    return n->text == NULL || n->value.scale <= places;
}

static const char *role_name(enum ewtp_role r)
{
    return ewtp_role_name(r);
}

static size_t id_index(const struct ewtp_party *p, const char *scheme)
{
    for (size_t i = 0; i < p->n_ids; i++)
        if (p->ids[i]->scheme && strcmp(p->ids[i]->scheme, scheme) == 0)
            return i;
    return (size_t)-1;
}

static void check_party(const struct my_state *st, const struct ewtp_message *m, enum ewtp_role r,
                        bool issuer, struct ewtp_errors *errs)
{
    char p[EWTP_POINTER_MAX];
    const struct ewtp_party *pt = m->parties[r];
    const char *role = role_name(r);
    if (pt == NULL) {
        ewtp_pointer(p, "/parties/%s", role);
        E(errs, "required", "MyInvois needs the %s (name, TIN, registration, address, phone)",
          role);
        return;
    }
    if (pt->name && strlen(pt->name) > 300) {
        ewtp_pointer(p, "/parties/%s/name", role);
        E(errs, "size", "MyInvois allows at most 300 characters for a party name");
    }
    size_t ti = id_index(pt, "TIN");
    const char *tin = ti != (size_t)-1 ? pt->ids[ti]->value : NULL;
    bool general = tin && is_general_tin(tin);
    if (tin == NULL) {
        ewtp_pointer(p, "/parties/%s/ids", role);
        E(errs, "required",
          "MyInvois needs the %s's TIN (ids scheme TIN; a general TIN such as EI00000000010 "
          "for buyers without one)",
          role);
    } else if (!tin_ok(tin)) {
        ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, ti);
        E(errs, "format",
          "not a Malaysian TIN: IG + digits for individuals, C/CS/D/F/FA/PT/TA/TC/TN/TR/TP/J/LE + "
          "digits ending in 0 for others, or a general TIN EI000000000x0; at most 14 characters");
    } else if (general) {
        bool self_billed = my_self_billed(m);
        bool allowed = r == EWTP_ROLE_BUYER ? strcmp(tin, "EI00000000030") != 0 || self_billed
                                            : (self_billed && (strcmp(tin, "EI00000000030") == 0 ||
                                                               strcmp(tin, "EI00000000010") == 0));
        if (!allowed) {
            ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, ti);
            E(errs, "rule",
              "general TIN %s is not allowed for the %s here (EI00000000010/20/40 are for "
              "buyers, EI00000000030 for foreign suppliers of self-billed documents)",
              tin, role);
        }
    }
    if (issuer && tin && st->taxpayer_tin && !st->intermediary &&
        strcmp(tin, st->taxpayer_tin) != 0) {
        ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, ti);
        E(errs, "rule",
          "the issuer's TIN must be this instance's taxpayer_tin (or set intermediary = true "
          "to submit on behalf of it)");
    }
    static const char *const regs[] = {"BRN", "NRIC", "PASSPORT", "ARMY"};
    bool has_reg = false;
    for (size_t k = 0; k < 4; k++) {
        size_t i = id_index(pt, regs[k]);
        if (i == (size_t)-1)
            continue;
        has_reg = true;
        const char *v = pt->ids[i]->value;
        ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, i);
        if (strcmp(v, "NA") == 0)
            continue;
        if ((k == 0 || k == 1) && !(strlen(v) == 12 && all_digits(v, 0)))
            E(errs, "format", "a %s is 12 digits (%s)", regs[k],
              k == 0 ? "the SSM registration number" : "the MyKad number without dashes");
        else if (strlen(v) > 20)
            E(errs, "size", "MyInvois allows at most 20 characters for a %s", regs[k]);
    }
    if (!has_reg && !general) {
        ewtp_pointer(p, "/parties/%s/ids", role);
        E(errs, "required",
          "MyInvois needs the %s's registration: an id with scheme BRN, NRIC, PASSPORT or ARMY",
          role);
    }
    size_t si = id_index(pt, "SST");
    if (si != (size_t)-1 && strlen(pt->ids[si]->value) > 35) {
        ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, si);
        E(errs, "size", "an SST number has at most 35 characters (two joined by ';')");
    }
    size_t xi = id_index(pt, "TTX");
    if (xi != (size_t)-1 && strlen(pt->ids[xi]->value) > 17) {
        ewtp_pointer(p, "/parties/%s/ids/%zu/value", role, xi);
        E(errs, "size", "a tourism tax number has at most 17 characters");
    }
    if (pt->phone == NULL && !general) {
        ewtp_pointer(p, "/parties/%s/phone", role);
        E(errs, "required", "MyInvois needs the %s's phone number", role);
    } else if (pt->phone && !phone_ok(pt->phone) && strcmp(pt->phone, "NA") != 0) {
        ewtp_pointer(p, "/parties/%s/phone", role);
        E(errs, "format", "MyInvois phone numbers are 8 to 20 digits with an optional leading +");
    }
    const struct ewtp_address *ad = pt->address;
    if (ad == NULL) {
        if (!general) {
            ewtp_pointer(p, "/parties/%s/address", role);
            E(errs, "required", "MyInvois needs the %s's address", role);
        }
        return;
    }
    if (ad->n_lines == 0) {
        ewtp_pointer(p, "/parties/%s/address/lines", role);
        E(errs, "required", "MyInvois needs at least one address line");
    }
    for (size_t i = 0; i < ad->n_lines; i++)
        if (i >= 3 || strlen(ad->lines[i]) > 150) {
            ewtp_pointer(p, "/parties/%s/address/lines/%zu", role, i);
            E(errs, "size", "MyInvois takes at most 3 address lines of 150 characters");
        }
    if (ad->city == NULL) {
        ewtp_pointer(p, "/parties/%s/address/city", role);
        E(errs, "required", "MyInvois needs the city of the address");
    } else if (strlen(ad->city) > 50) {
        ewtp_pointer(p, "/parties/%s/address/city", role);
        E(errs, "size", "MyInvois allows at most 50 characters for a city");
    }
    const char *country = ad->country ? ad->country : pt->country;
    if (country == NULL) {
        ewtp_pointer(p, "/parties/%s/address/country", role);
        E(errs, "required", "MyInvois needs the country of the address");
    } else {
        const char *a3 = ewtp_code_country_alpha3(country);
        if (a3 == NULL || ewtp_code_table_find(&my_codes_country, a3) == NULL) {
            ewtp_pointer(p, "/parties/%s/address/country", role);
            E(errs, "format", "country %s is not in the MyInvois country table", country);
        }
    }
    if (country && strcmp(country, "MY") == 0) {
        if (my_state_code(ad->region) == NULL) {
            ewtp_pointer(p, "/parties/%s/address/region", role);
            E(errs, ad->region ? "format" : "required",
              "a Malaysian address needs its state in region: a code 01-17 or the state's name "
              "(Johor, Selangor, Wilayah Persekutuan Kuala Lumpur ...)");
        }
        if (ad->postcode && !(strlen(ad->postcode) == 5 && all_digits(ad->postcode, 0))) {
            ewtp_pointer(p, "/parties/%s/address/postcode", role);
            E(errs, "format", "a Malaysian postcode has 5 digits");
        }
    }
}

/* ext.my: known members and their types (ext.schema.json). */
static void check_ext(const struct ewtp_message *m, struct ewtp_errors *errs)
{
    static const char *const strings[] = {
        "original_uuid",     "classification",      "msic_code",           "business_activity",
        "billing_frequency", "customs_import_form", "customs_export_form", "free_trade_agreement",
        "incoterms",         "certified_exporter",  "exchange_rate",       NULL};
    const struct ewtp_json *ext = ewtp_message_ext(m, "my");
    if (ext == NULL)
        return;
    char p[EWTP_POINTER_MAX];
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, "/ext/my", "type", "ext.my must be an object");
        return;
    }
    const char *key;
    const struct ewtp_json *v;
    for (size_t i = 0; ewtp_json_member(ext, i, &key, &v); i++) {
        ewtp_pointer(p, "/ext/my/%s", key);
        bool known = false;
        for (size_t k = 0; strings[k]; k++)
            if (strcmp(strings[k], key) == 0) {
                known = true;
                if (ewtp_json_type(v) != EWTP_JSON_STRING)
                    E(errs, "type", "ext.my.%s must be a string", key);
            }
        if (strcmp(key, "self_billed") == 0) {
            known = true;
            if (ewtp_json_type(v) != EWTP_JSON_TRUE && ewtp_json_type(v) != EWTP_JSON_FALSE)
                E(errs, "type", "ext.my.self_billed must be true or false");
        } else if (strcmp(key, "lines") == 0) {
            known = true;
            if (ewtp_json_type(v) != EWTP_JSON_ARRAY)
                E(errs, "type", "ext.my.lines must be an array (one object per invoice line)");
            for (size_t l = 0; l < ewtp_json_size(v); l++) {
                const struct ewtp_json *o = ewtp_json_index(v, l);
                const char *lk;
                const struct ewtp_json *lv;
                if (ewtp_json_type(o) != EWTP_JSON_OBJECT) {
                    ewtp_pointer(p, "/ext/my/lines/%zu", l);
                    E(errs, "type", "each ext.my.lines entry must be an object");
                    continue;
                }
                for (size_t j = 0; ewtp_json_member(o, j, &lk, &lv); j++) {
                    ewtp_pointer(p, "/ext/my/lines/%zu/%s", l, lk);
                    if (strcmp(lk, "classification") != 0 && strcmp(lk, "exemption_reason") != 0)
                        E(errs, "unknown_member",
                          "ext.my.lines entries know classification and exemption_reason");
                    else if (ewtp_json_type(lv) != EWTP_JSON_STRING)
                        E(errs, "type", "ext.my.lines.%s must be a string", lk);
                }
            }
        }
        if (!known)
            E(errs, "unknown_member",
              "ext.my has no member \"%s\" (see plugins/my/ext.schema.json)", key);
    }
    const char *uuid = my_ext_string(m, "original_uuid");
    if (uuid && strcmp(uuid, "NA") != 0 && strlen(uuid) != 26) {
        ewtp_errors_add(errs, "/ext/my/original_uuid", "format",
                        "an LHDN document UUID has 26 characters (or NA for an original issued "
                        "before e-invoicing)");
    }
}

bool my_is_note(const struct ewtp_invoice *inv)
{
    return inv->type == EWTP_INV_CREDIT_NOTE || inv->type == EWTP_INV_DEBIT_NOTE ||
           inv->type == EWTP_INV_REFUND_NOTE;
}

const struct ewtp_related *my_original(const struct ewtp_call *c)
{
    const char *orig = c->msg->invoice->original_invoice;
    for (size_t i = 0; orig && i < c->n_related; i++) {
        const struct ewtp_message *r = c->related[i]->msg;
        if (r && r->invoice && r->invoice->number && strcmp(r->invoice->number, orig) == 0)
            return c->related[i];
    }
    return NULL;
}

static bool failed(const struct ewtp_related *r)
{
    return r && r->state &&
           (strcmp(r->state, "rejected") == 0 || strcmp(r->state, "cancelled") == 0);
}

const char *my_original_uuid(const struct ewtp_call *c)
{
    const char *u = my_ext_string(c->msg, "original_uuid");
    if (u)
        return u;
    const struct ewtp_related *r = my_original(c);
    return r && !failed(r) ? r->authority_ref : NULL;
}

static void check_lines(const struct ewtp_message *m, struct ewtp_errors *errs)
{
    const struct ewtp_invoice *inv = m->invoice;
    char p[EWTP_POINTER_MAX];
    if (ewtp_json_size(ewtp_json_get(ewtp_message_ext(m, "my"), "lines")) > inv->n_lines)
        ewtp_errors_add(errs, "/ext/my/lines", "size",
                        "ext.my.lines has more entries than invoice.lines");
    for (size_t i = 0; i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        const char *cls = my_ext_line_string(m, i, "classification");
        if (cls == NULL)
            cls = my_ext_string(m, "classification");
        if (cls == NULL) {
            ewtp_pointer(p, "/invoice/lines/%zu", i);
            E(errs, "required",
              "MyInvois needs a classification code per line: ext.my.lines[%zu]->classification "
              "or ext.my.classification (e.g. 022 others, 004 consolidated, 008 e-commerce)",
              i);
        } else if (ewtp_code_table_find(&my_codes_classification, cls) == NULL) {
            if (my_ext_line_string(m, i, "classification"))
                ewtp_pointer(p, "/ext/my/lines/%zu/classification", i);
            else
                ewtp_pointer(p, "/ext/my/classification");
            E(errs, "format", "classification %s is not in the MyInvois table (001-045)", cls);
        }
        if (l->description && strlen(l->description) > 300) {
            ewtp_pointer(p, "/invoice/lines/%zu/description", i);
            E(errs, "size", "MyInvois allows at most 300 characters for a description");
        }
        if (l->unit && ewtp_code_table_find(&my_codes_unit, l->unit) == NULL) {
            ewtp_pointer(p, "/invoice/lines/%zu/unit", i);
            E(errs, "format", "unit %s is not in the MyInvois unit table", l->unit);
        }
        if (l->hs_code && strlen(l->hs_code) > 12) {
            ewtp_pointer(p, "/invoice/lines/%zu/hs_code", i);
            E(errs, "size", "MyInvois tariff codes have at most 12 characters");
        }
        if (l->origin) {
            const char *a3 = ewtp_code_country_alpha3(l->origin);
            if (a3 == NULL || ewtp_code_table_find(&my_codes_country, a3) == NULL) {
                ewtp_pointer(p, "/invoice/lines/%zu/origin", i);
                E(errs, "format", "country %s is not in the MyInvois country table", l->origin);
            }
        }
        if (!max_places(&l->amount, 2)) {
            ewtp_pointer(p, "/invoice/lines/%zu/amount", i);
            E(errs, "format", "MyInvois amounts have at most 2 decimals");
        }
        if (l->n_taxes == 0) {
            ewtp_pointer(p, "/invoice/lines/%zu/taxes", i);
            E(errs, "required",
              "MyInvois needs a tax type per line (taxes[].category 01-06 or E; 06 = not "
              "applicable)");
        }
        for (size_t t = 0; t < l->n_taxes; t++) {
            const struct ewtp_tax *tx = l->taxes[t];
            if (tx->category == NULL ||
                ewtp_code_table_find(&my_codes_tax_type, tx->category) == NULL) {
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/category", i, t);
                E(errs, tx->category ? "format" : "required",
                  "MyInvois tax types are 01 sales, 02 service, 03 tourism, 04 high-value goods, "
                  "05 low value goods, 06 not applicable, E exemption");
                continue;
            }
            bool exempt = strcmp(tx->category, "E") == 0;
            bool none = strcmp(tx->category, "06") == 0;
            if (exempt && tx->exemption_reason == NULL &&
                my_ext_line_string(m, i, "exemption_reason") == NULL) {
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/exemption_reason", i, t);
                E(errs, "required", "tax type E needs the exemption reason");
            }
            if (tx->amount.text == NULL) {
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t);
                E(errs, "required", "MyInvois needs the tax amount of every line tax");
                continue;
            }
            if (!max_places(&tx->amount, 2)) {
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t);
                E(errs, "format", "MyInvois amounts have at most 2 decimals");
                continue;
            }
            if ((exempt || none) && !ewtp_dec_is_zero(tx->amount.value)) {
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t);
                E(errs, "rule", "tax type %s carries no tax: the amount must be 0", tx->category);
                continue;
            }
            if (tx->rate.text == NULL) {
                if (!exempt && !none) {
                    ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/rate", i, t);
                    E(errs, "required", "MyInvois needs the tax rate (percent)");
                }
                continue;
            }
            /* MyInvois recomputes tax = taxable x rate / 100 rounded half-up to 2 decimals. */
            struct ewtp_dec prod, want;
            if (l->amount.text && ewtp_dec_mul(l->amount.value, tx->rate.value, &prod) == 0 &&
                ewtp_dec_div(prod, ewtp_dec_from_int(100), 2, &want) == 0 &&
                ewtp_dec_cmp(want, tx->amount.value) != 0) {
                char buf[EWTP_DEC_STRMAX];
                ewtp_dec_format_places(want, 2, buf, sizeof(buf));
                ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t);
                E(errs, "rule",
                  "tax amount %s differs from %s x %s%% rounded half-up to 2 decimals = %s",
                  tx->amount.text, l->amount.text, tx->rate.text, buf);
            }
        }
    }
}

void my_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const struct my_state *st = state;
    const struct ewtp_message *m = c->msg;
    char p[EWTP_POINTER_MAX];
    if (m->kind == EWTP_KIND_DECLARATION) {
        ewtp_errors_add(errs, "/kind", "unsupported",
                        "no public machine interface for Malaysian customs declarations: RMCD's "
                        "uCustoms exchanges declarations only through licensed service providers "
                        "(MyNSW / Dagang Net) under a non-public specification; lodge it through "
                        "a licensed agent");
        return;
    }
    if (m->invoice == NULL) {
        ewtp_errors_add(errs, "/kind", "unsupported",
                        "the MyInvois plugin serves invoices (and their notes) only");
        return;
    }
    if (c->op == EWTP_OP_CANCEL) {
        if (c->cancel_reason == NULL || c->cancel_reason[0] == '\0')
            ewtp_errors_add(errs, "", "required", "MyInvois needs a reason to cancel a document");
        else if (strlen(c->cancel_reason) > 300)
            ewtp_errors_add(errs, "", "size",
                            "MyInvois cancellation reasons have at most 300 "
                            "characters");
        return; /* the document itself was checked when it was submitted */
    }
    const struct ewtp_invoice *inv = m->invoice;
    check_ext(m, errs);
    if (inv->number && strlen(inv->number) > 50)
        ewtp_errors_add(errs, "/invoice/number", "size",
                        "MyInvois document numbers have at most 50 characters");
    int64_t issued = 0;
    if (inv->issued_at && ewtp_time_parse(inv->issued_at, &issued) && st->max_issue_age_ms > 0) {
        if (c->now_ms - issued > st->max_issue_age_ms)
            ewtp_errors_add(errs, "/invoice/issued_at", "rule",
                            "MyInvois refuses documents issued more than %lld hours before "
                            "submission",
                            (long long)(st->max_issue_age_ms / 3600000));
        else if (issued - c->now_ms > 5 * 60 * 1000)
            ewtp_errors_add(errs, "/invoice/issued_at", "rule",
                            "the issue time lies in the future");
    }
    const char *cur = inv->currency ? inv->currency : "MYR";
    if (ewtp_code_table_find(&my_codes_currency, cur) == NULL)
        ewtp_errors_add(errs, "/invoice/currency", "format",
                        "currency %s is not in the MyInvois currency table", cur);
    if (strcmp(cur, "MYR") != 0 && inv->exchange_rate.text == NULL &&
        my_ext_string(m, "exchange_rate") == NULL)
        ewtp_errors_add(errs, "/invoice/exchange_rate", "required",
                        "MyInvois needs the exchange rate (MYR per 1 %s) for a document in %s", cur,
                        cur);
    if (inv->exchange_rate.text && strlen(inv->exchange_rate.text) > 15)
        ewtp_errors_add(errs, "/invoice/exchange_rate", "size",
                        "MyInvois exchange rates have at most 15 characters");
    bool note = my_is_note(inv);
    if (note) {
        if (inv->original_invoice == NULL)
            ewtp_errors_add(errs, "/invoice/original_invoice", "required",
                            "a credit, debit or refund note must reference the original "
                            "invoice's number");
        else if (my_ext_string(m, "original_uuid") == NULL && failed(my_original(c)))
            ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                            "invoice %s was %s: a note cannot reference it", inv->original_invoice,
                            my_original(c)->state);
        /* A note whose original is here but not validated yet waits for it (classify). */
        else if (my_ext_string(m, "original_uuid") == NULL && my_original(c) == NULL)
            ewtp_errors_add(errs, "/ext/my/original_uuid", "required",
                            "a note needs the LHDN UUID of invoice %s: set ext.my.original_uuid "
                            "(NA for an invoice issued before e-invoicing), or submit the "
                            "original through this gateway first",
                            inv->original_invoice);
    } else if (inv->original_invoice) {
        ewtp_errors_warn(errs, "/invoice/original_invoice", "rule",
                         "an invoice references no original: original_invoice is ignored");
    }
    if (!max_places(&inv->totals->net, 2))
        ewtp_errors_add(errs, "/invoice/totals/net", "format",
                        "MyInvois amounts have at most 2 "
                        "decimals");
    if (!max_places(&inv->totals->tax, 2))
        ewtp_errors_add(errs, "/invoice/totals/tax", "format",
                        "MyInvois amounts have at most 2 "
                        "decimals");
    if (!max_places(&inv->totals->gross, 2))
        ewtp_errors_add(errs, "/invoice/totals/gross", "format",
                        "MyInvois amounts have at most 2 decimals");
    /* ewtp/1 has no prepayment or rounding amount: MyInvois' payable = inclusive total. */
    if (inv->totals->payable.text && inv->totals->gross.text &&
        ewtp_dec_cmp(inv->totals->payable.value, inv->totals->gross.value) != 0)
        ewtp_errors_add(errs, "/invoice/totals/payable", "rule",
                        "payable must equal gross for MyInvois (no prepayment or rounding "
                        "amount can be carried)");
    /* Per tax type, the document total must be the sum of the lines exactly (MyInvois sums
     * the rounded line taxes; the common model allows one minor unit per category). */
    struct ewtp_dec sum = ewtp_dec_from_int(0);
    for (size_t i = 0; i < inv->n_lines; i++)
        for (size_t t = 0; t < inv->lines[i]->n_taxes; t++)
            if (inv->lines[i]->taxes[t]->amount.text)
                ewtp_dec_add(sum, inv->lines[i]->taxes[t]->amount.value, &sum);
    if (inv->totals->tax.text && ewtp_dec_cmp(sum, inv->totals->tax.value) != 0) {
        char buf[EWTP_DEC_STRMAX];
        ewtp_dec_format_places(sum, 2, buf, sizeof(buf));
        ewtp_errors_add(errs, "/invoice/totals/tax", "rule",
                        "MyInvois' tax total is the sum of the line taxes exactly: %s", buf);
    }
    if (inv->payment_means && inv->payment_means->code == NULL)
        ewtp_errors_add(errs, "/invoice/payment_means/code", "required",
                        "MyInvois needs the payment means code");
    const char *msic = my_ext_string(m, "msic_code");
    if (msic == NULL && st->msic_code == NULL)
        ewtp_errors_add(errs, "/ext/my/msic_code", "required",
                        "MyInvois needs the supplier's MSIC code (ext.my.msic_code, or the "
                        "instance setting msic_code; 00000 = not applicable)");
    else if (msic && ewtp_code_table_find(&my_codes_msic, msic) == NULL)
        ewtp_errors_add(errs, "/ext/my/msic_code", "format",
                        "%s is not a 5-digit code of the MSIC table", msic);
    bool self_billed = my_self_billed(m);
    check_party(st, m, EWTP_ROLE_SELLER, !self_billed, errs);
    check_party(st, m, EWTP_ROLE_BUYER, self_billed, errs);
    check_lines(m, errs);
    (void)p;
}
