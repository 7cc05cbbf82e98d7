/* The checks EIMS applies that can be made before sending (FACTS.md A.5, A.6, C), and the
 * refusal of customs declarations (nothing about the Ethiopian single window is public). */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include <ewtp/decimal.h>

#include "et.h"

#define ET_DECLARATION_REFUSAL                                                                     \
    "Ethiopian customs declarations cannot be sent: the Ethiopian Customs Commission (ECC) and "   \
    "the national electronic single window (eSW) have published no interface specification "       \
    "(message format, endpoint, authentication) for third-party systems; lodge it through a "      \
    "licensed customs broker in the ECC system"

const struct ewtp_json *et_ext(const struct ewtp_message *m, const char *member)
{
    return ewtp_json_get(ewtp_message_ext(m, "et"), member);
}

const char *et_ext_string(const struct ewtp_message *m, const char *member)
{
    return ewtp_json_string(et_ext(m, member));
}

const struct et_tax_code *et_tax_code(const struct et_state *st, const char *category)
{
    for (size_t i = 0; category && i < st->n_tax_codes; i++)
        if (strcmp(st->tax_codes[i].category, category) == 0)
            return &st->tax_codes[i];
    return NULL;
}

const char *et_doc_type(const struct ewtp_invoice *inv)
{
    switch (inv->type) {
    case EWTP_INV_CREDIT_NOTE:
    case EWTP_INV_REFUND_NOTE:
        return "CRE";
    case EWTP_INV_DEBIT_NOTE:
        return "DEB";
    default:
        return "INV";
    }
}

const struct ewtp_tax *et_line_tax(const struct ewtp_line *l, const char *type)
{
    for (size_t t = 0; t < l->n_taxes; t++)
        if (l->taxes[t]->type && strcmp(l->taxes[t]->type, type) == 0)
            return l->taxes[t];
    return NULL;
}

const char *et_related_irn(const struct ewtp_call *c, const char **state_out)
{
    if (state_out)
        *state_out = NULL;
    const char *irn = et_ext_string(c->msg, "related_irn");
    if (irn)
        return irn;
    const struct ewtp_invoice *inv = c->msg->invoice;
    if (inv == NULL || inv->original_invoice == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_related; i++) {
        const struct ewtp_related *r = c->related[i];
        const struct ewtp_message *o = r ? r->msg : NULL;
        if (o == NULL || o->invoice == NULL || o->invoice->number == NULL ||
            strcmp(o->invoice->number, inv->original_invoice) != 0)
            continue;
        /* Only this tenant's own invoices: a note never points at another tenant's IRN. */
        if (c->tenant && r->tenant && strcmp(c->tenant, r->tenant) != 0)
            continue;
        if (state_out)
            *state_out = r->state;
        return r->authority_ref;
    }
    return NULL;
}

bool et_buyer_id(const struct ewtp_message *m, const char **type, const char **number)
{
    const struct ewtp_party *b = ewtp_message_party(m, EWTP_ROLE_BUYER);
    if (b == NULL)
        return false;
    const char *want = et_ext_string(m, "buyer_id_type");
    for (size_t i = 0; i < b->n_ids; i++) {
        const char *const *row = et_code_find(ET_T_ID_TYPES, b->ids[i]->scheme);
        if (row == NULL || (want && strcmp(want, row[1]) != 0))
            continue;
        *type = row[1];
        *number = b->ids[i]->value;
        return true;
    }
    return false;
}

static bool digits(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* A party id's index by scheme, or -1. */
static long id_index(const struct ewtp_party *p, const char *scheme)
{
    for (size_t i = 0; p && i < p->n_ids; i++)
        if (strcmp(p->ids[i]->scheme, scheme) == 0)
            return (long)i;
    return -1;
}

/* An amount EIMS receives with 2 decimals must not lose digits. */
static void check_cents(const struct ewtp_num *n, const char *pointer, struct ewtp_errors *errs)
{
    struct ewtp_dec r;
    if (n->text == NULL || ewtp_dec_round(n->value, 2, &r) != 0)
        return;
    if (ewtp_dec_cmp(r, n->value) != 0)
        ewtp_errors_add(errs, pointer, "format",
                        "EIMS takes amounts with at most 2 decimals (ETB cents): %s", n->text);
}

/* ---- ext.et ---- */

static const char *const ext_members[] = {"seller_address",       "buyer_address",
                                          "buyer_id_type",        "reason",
                                          "cashier_name",         "sales_person_name",
                                          "related_irn",          "lines",
                                          "exchange_rate",        "income_withhold",
                                          "transaction_withhold", "payment_mode",
                                          "payment_term",         NULL};
static const char *const seller_address_members[] = {"sub_city",     "wereda",   "kebele",
                                                     "house_number", "locality", NULL};
static const char *const buyer_address_members[] = {"wereda", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void check_string_object(const struct ewtp_json *o, const char *where,
                                const char *const *members, struct ewtp_errors *errs)
{
    char p[EWTP_POINTER_MAX];
    if (ewtp_json_type(o) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s", where), "type",
                        "ext.et.%s must be an object", where);
        return;
    }
    const char *k;
    const struct ewtp_json *v;
    for (size_t i = 0; ewtp_json_member(o, i, &k, &v); i++) {
        if (!in_list(members, k))
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s/%s", where, k), "unknown_member",
                            "ext.et.%s has no member \"%s\"", where, k);
        else if (ewtp_json_type(v) != EWTP_JSON_STRING || strlen(ewtp_json_string(v)) > 100)
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s/%s", where, k), "type",
                            "ext.et.%s.%s must be a string of at most 100 characters", where, k);
    }
}

static void check_decimal_member(const struct ewtp_json *v, const char *name,
                                 struct ewtp_errors *errs)
{
    struct ewtp_dec d;
    const char *s = ewtp_json_string(v);
    if (s == NULL || ewtp_dec_parse(s, &d) != 0 || ewtp_dec_is_negative(d)) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s", name), "format",
                        "ext.et.%s must be a non-negative decimal string", name);
    }
}

static void validate_ext(const struct ewtp_message *m, size_t n_lines, struct ewtp_errors *errs)
{
    const struct ewtp_json *ext = ewtp_message_ext(m, "et");
    if (ext == NULL)
        return;
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, "/ext/et", "type", "ext.et must be an object");
        return;
    }
    char p[EWTP_POINTER_MAX];
    const char *k;
    const struct ewtp_json *v;
    for (size_t i = 0; ewtp_json_member(ext, i, &k, &v); i++) {
        if (!in_list(ext_members, k)) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s", k), "unknown_member",
                            "ext.et has no member \"%s\" (see plugins/et/ext.schema.json)", k);
        } else if (strcmp(k, "seller_address") == 0) {
            check_string_object(v, k, seller_address_members, errs);
        } else if (strcmp(k, "buyer_address") == 0) {
            check_string_object(v, k, buyer_address_members, errs);
        } else if (strcmp(k, "exchange_rate") == 0 || strcmp(k, "income_withhold") == 0 ||
                   strcmp(k, "transaction_withhold") == 0) {
            check_decimal_member(v, k, errs);
        } else if (strcmp(k, "lines") == 0) {
            if (ewtp_json_type(v) != EWTP_JSON_ARRAY || ewtp_json_size(v) > n_lines) {
                ewtp_errors_add(errs, "/ext/et/lines", "type",
                                "ext.et.lines must be an array with at most one entry per line");
                continue;
            }
            for (size_t j = 0; j < ewtp_json_size(v); j++) {
                const struct ewtp_json *e = ewtp_json_index(v, j);
                const char *lk;
                const struct ewtp_json *lv;
                if (ewtp_json_type(e) != EWTP_JSON_OBJECT) {
                    ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/lines/%zu", j), "type",
                                    "ext.et.lines[%zu] must be an object", j);
                    continue;
                }
                for (size_t q = 0; ewtp_json_member(e, q, &lk, &lv); q++) {
                    const char *s = ewtp_json_string(lv);
                    if (strcmp(lk, "nature") != 0)
                        ewtp_errors_add(
                            errs, ewtp_pointer(p, "/ext/et/lines/%zu/%s", j, lk), "unknown_member",
                            "ext.et.lines[%zu] has no member \"%s\" (known: nature)", j, lk);
                    else if (s == NULL || (strcmp(s, "goods") != 0 && strcmp(s, "service") != 0))
                        ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/lines/%zu/nature", j),
                                        "format",
                                        "ext.et.lines[%zu].nature must be \"goods\" or "
                                        "\"service\"",
                                        j);
                }
            }
        } else if (ewtp_json_type(v) != EWTP_JSON_STRING) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s", k), "type",
                            "ext.et.%s must be a string", k);
        } else if (strcmp(k, "buyer_id_type") == 0) {
            bool known = false;
            static const char *const schemes[] = {"PASSPORT", "ET-NID", "ET-KID", "ET-DLS",
                                                  "ET-SID",   "ET-WID", "ET-MRS", NULL};
            for (size_t s = 0; schemes[s]; s++) {
                const char *const *row = et_code_find(ET_T_ID_TYPES, schemes[s]);
                known = known || (row && strcmp(row[1], ewtp_json_string(v)) == 0);
            }
            if (!known)
                ewtp_errors_add(errs, "/ext/et/buyer_id_type", "format",
                                "ext.et.buyer_id_type must be an EIMS IdType: NID, KID, SID, "
                                "WID, PST, DLS or MRS");
        } else if (strcmp(k, "payment_mode") == 0) {
            const char *s = ewtp_json_string(v);
            if (strcmp(s, "CASH") != 0 && strcmp(s, "CREDIT") != 0 && strcmp(s, "ADVANCE") != 0)
                ewtp_errors_add(errs, "/ext/et/payment_mode", "format",
                                "ext.et.payment_mode must be CASH, CREDIT or ADVANCE");
        } else if (strcmp(k, "reason") == 0 && strlen(ewtp_json_string(v)) > ET_REASON_MAX) {
            ewtp_errors_add(errs, "/ext/et/reason", "size",
                            "EIMS takes a reason of at most %d characters", ET_REASON_MAX);
        } else if (strlen(ewtp_json_string(v)) > 300) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/et/%s", k), "size",
                            "ext.et.%s has more than 300 characters", k);
        }
    }
}

/* ---- parties ---- */

static void validate_parties(const struct et_state *st, const struct ewtp_message *m, bool has_vat,
                             struct ewtp_errors *errs)
{
    char p[EWTP_POINTER_MAX];
    const struct ewtp_party *seller = ewtp_message_party(m, EWTP_ROLE_SELLER);
    if (seller == NULL) {
        ewtp_errors_add(errs, "/parties/seller", "required",
                        "EIMS registers invoices of a seller: parties.seller is required");
    } else {
        long t = id_index(seller, "TIN");
        if (t < 0)
            ewtp_errors_add(errs, "/parties/seller/ids", "required",
                            "the seller needs its 10-digit Ethiopian TIN (scheme TIN)");
        else if (!digits(seller->ids[t]->value, 10))
            ewtp_errors_add(errs, ewtp_pointer(p, "/parties/seller/ids/%ld/value", t), "format",
                            "an Ethiopian TIN has 10 digits");
        else if (st->tin && strcmp(st->tin, seller->ids[t]->value) != 0)
            ewtp_errors_add(errs, ewtp_pointer(p, "/parties/seller/ids/%ld/value", t), "rule",
                            "this EIMS client is registered for another seller TIN (setting "
                            "tin): route this seller to its own instance");
        /* Rule 1028 (U5): VAT lines need the seller's VAT registration number. */
        if (has_vat && id_index(seller, "VAT") < 0)
            ewtp_errors_add(errs, "/parties/seller/ids", "required",
                            "the invoice carries VAT: the seller's VAT registration number "
                            "(scheme VAT) is required (EIMS rule 1028)");
        if (seller->phone) {
            const char *ph = seller->phone;
            if (strncmp(ph, "+251", 4) != 0 || !digits(ph + 4, 9))
                ewtp_errors_add(errs, "/parties/seller/phone", "format",
                                "EIMS takes the seller's phone as +251 followed by 9 digits");
        }
    }
    const struct ewtp_party *buyer = ewtp_message_party(m, EWTP_ROLE_BUYER);
    if (buyer == NULL) {
        ewtp_errors_add(errs, "/parties/buyer", "required",
                        "EIMS needs the buyer (BuyerDetails.LegalName at least)");
        return;
    }
    long t = id_index(buyer, "TIN");
    if (t >= 0 && !digits(buyer->ids[t]->value, 10))
        ewtp_errors_add(errs, ewtp_pointer(p, "/parties/buyer/ids/%ld/value", t), "format",
                        "an Ethiopian TIN has 10 digits (a foreign buyer has no TIN id here)");
    const char *want = et_ext_string(m, "buyer_id_type");
    const char *type = NULL, *number = NULL;
    if (want && !et_buyer_id(m, &type, &number))
        ewtp_errors_add(errs, "/parties/buyer/ids", "required",
                        "ext.et.buyer_id_type is %s but the buyer has no id of that kind (schemes "
                        "PASSPORT, ET-NID, ET-KID, ET-SID, ET-WID, ET-DLS, ET-MRS)",
                        want);
}

/* ---- lines ---- */

static void validate_line(const struct et_state *st, const struct ewtp_message *m, size_t i,
                          const struct ewtp_line *l, struct ewtp_errors *errs)
{
    char p[EWTP_POINTER_MAX];
    if (l->sku == NULL)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/sku", i), "required",
                        "EIMS needs an item code (ItemCode) on every line");
    else if (strlen(l->sku) > ET_ITEM_CODE_MAX)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/sku", i), "size",
                        "EIMS takes an item code of at most %d characters", ET_ITEM_CODE_MAX);
    if (l->description && strlen(l->description) > ET_DESCRIPTION_MAX)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/description", i), "size",
                        "EIMS takes a description of at most %d characters", ET_DESCRIPTION_MAX);
    if (l->quantity.text == NULL)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/quantity", i), "required",
                        "EIMS needs the quantity of every line");
    if (l->unit_price.text == NULL)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/unit_price", i), "required",
                        "EIMS needs the unit price of every line");
    if (l->unit == NULL)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/unit", i), "required",
                        "EIMS needs the unit of every line");
    else if (et_code_find(ET_T_UNITS, l->unit) == NULL)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/unit", i), "unsupported",
                        "unit %s has no known EIMS unit (mapped: H87, C62, EA, KGM, LTR, MTR, "
                        "SET, PK; see plugins/et/data/units.tsv)",
                        l->unit);
    check_cents(&l->amount, ewtp_pointer(p, "/invoice/lines/%zu/amount", i), errs);
    check_cents(&l->discount, ewtp_pointer(p, "/invoice/lines/%zu/discount", i), errs);
    bool vat = false;
    for (size_t t = 0; t < l->n_taxes; t++) {
        const struct ewtp_tax *tx = l->taxes[t];
        check_cents(&tx->amount, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t),
                    errs);
        if (strcmp(tx->type, "EXCISE") == 0)
            continue;
        if (strcmp(tx->type, "VAT") != 0) {
            ewtp_errors_add(
                errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/type", i, t), "unsupported",
                "EIMS lines carry VAT and excise only; tax type %s is not known", tx->type);
            continue;
        }
        if (vat) {
            ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu", i, t), "rule",
                            "EIMS takes one VAT code per line");
            continue;
        }
        vat = true;
        const struct et_tax_code *code = et_tax_code(st, tx->category);
        if (code == NULL) {
            ewtp_errors_add(
                errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/category", i, t), "unsupported",
                "VAT category %s has no known EIMS tax code: only standard VAT 15 %% "
                "(S) is known; set tax_codes.%s in the instance settings once the "
                "MoR confirms the code",
                tx->category ? tx->category : "(none)", tx->category ? tx->category : "X");
            continue;
        }
        struct ewtp_dec want;
        if (code->rate && ewtp_dec_parse(code->rate, &want) == 0) {
            if (tx->rate.text == NULL || ewtp_dec_cmp(tx->rate.value, want) != 0) {
                ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/rate", i, t),
                                "rule", "EIMS tax code %s is %s %%; the line says %s %%",
                                code->code, code->rate, tx->rate.text ? tx->rate.text : "nothing");
                continue;
            }
            /* tax = amount x rate / 100, rounded half-up to cents, within one cent. */
            struct ewtp_dec prod, tax, diff;
            if (l->amount.text && tx->amount.text &&
                ewtp_dec_mul(l->amount.value, want, &prod) == 0 &&
                ewtp_dec_div(prod, ewtp_dec_from_int(100), 2, &tax) == 0 &&
                ewtp_dec_sub(tax, tx->amount.value, &diff) == 0 &&
                ewtp_dec_cmp(ewtp_dec_abs(diff), ewtp_dec_minor_unit(2)) > 0) {
                char buf[EWTP_DEC_STRMAX];
                ewtp_dec_format_places(tax, 2, buf, sizeof(buf));
                ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes/%zu/amount", i, t),
                                "rule", "VAT at %s %% of %s is %s, not %s", code->rate,
                                l->amount.text, buf, tx->amount.text);
            }
        }
    }
    if (!vat)
        ewtp_errors_add(errs, ewtp_pointer(p, "/invoice/lines/%zu/taxes", i), "required",
                        "EIMS needs a VAT code on every line (a VAT tax with category S at 15 "
                        "%%, or a category configured in tax_codes)");
    (void)m;
}

static bool line_has_vat(const struct ewtp_line *l)
{
    const struct ewtp_tax *t = et_line_tax(l, "VAT");
    return t && t->amount.text && !ewtp_dec_is_zero(t->amount.value);
}

static void validate_invoice(const struct et_state *st, const struct ewtp_call *c,
                             struct ewtp_errors *errs)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    bool has_vat = false;
    for (size_t i = 0; i < inv->n_lines; i++) {
        validate_line(st, m, i, inv->lines[i], errs);
        has_vat = has_vat || line_has_vat(inv->lines[i]);
    }
    validate_ext(m, inv->n_lines, errs);
    validate_parties(st, m, has_vat, errs);
    if (inv->totals) {
        check_cents(&inv->totals->tax, "/invoice/totals/tax", errs);
        check_cents(&inv->totals->gross, "/invoice/totals/gross", errs);
    }
    if (inv->currency && strcmp(inv->currency, "ETB") != 0 && inv->exchange_rate.text == NULL &&
        et_ext(m, "exchange_rate") == NULL)
        ewtp_errors_add(errs, "/invoice/exchange_rate", "required",
                        "an invoice in %s needs the exchange rate to ETB", inv->currency);
    char date[24];
    if (inv->issued_at && !et_eims_date(inv->issued_at, date))
        ewtp_errors_add(errs, "/invoice/issued_at", "format",
                        "issued_at cannot be written as an EIMS date");
    if (inv->type == EWTP_INV_INVOICE)
        return;
    /* Credit and debit notes (FACTS.md A.5, U4): a reason and the original's IRN. */
    const char *reason = inv->reason ? inv->reason : et_ext_string(m, "reason");
    if (reason == NULL)
        ewtp_errors_add(errs, "/invoice/reason", "required",
                        "EIMS requires the reason of a credit or debit note");
    else if (strlen(reason) > ET_REASON_MAX)
        ewtp_errors_add(errs, inv->reason ? "/invoice/reason" : "/ext/et/reason", "size",
                        "EIMS takes a reason of at most %d characters", ET_REASON_MAX);
    const char *state = NULL;
    const char *irn = et_related_irn(c, &state);
    if (irn != NULL)
        return;
    if (inv->original_invoice == NULL)
        ewtp_errors_add(errs, "/invoice/original_invoice", "required",
                        "a credit or debit note must name its original invoice (EIMS "
                        "RelatedDocument is the original's IRN)");
    else if (state == NULL)
        ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                        "invoice %s was not registered through this gateway: send it first, or "
                        "give its IRN in ext.et.related_irn",
                        inv->original_invoice);
    else if (strcmp(state, "rejected") == 0 || strcmp(state, "dead") == 0 ||
             strcmp(state, "cancelled") == 0)
        ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                        "invoice %s has no IRN (it was %s): a note cannot correct it",
                        inv->original_invoice, state);
    /* Otherwise the original is on its way in the same chain (same seller, same ordering
     * key): it is registered before this note is translated. */
}

static void validate_cancel(const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const char *r = c->cancel_reason;
    if (r && r[0] >= '0' && r[0] <= '9' && r[1] == ':') {
        char code[2] = {r[0], '\0'};
        if (et_code_find(ET_T_CANCEL, code) == NULL)
            ewtp_errors_add(errs, "", "format",
                            "the cancel reason \"%c:...\" names no EIMS reason code (1 to 4)",
                            r[0]);
    }
    if (r && strlen(r) > ET_REASON_MAX)
        ewtp_errors_add(errs, "", "size", "EIMS takes a cancel remark of at most %d characters",
                        ET_REASON_MAX);
}

void et_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const struct et_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (m->kind == EWTP_KIND_DECLARATION) {
        ewtp_errors_add(errs, "/kind", "unsupported", "%s", ET_DECLARATION_REFUSAL);
        return;
    }
    if (m->invoice == NULL)
        return;
    if (c->op == EWTP_OP_CANCEL) {
        validate_cancel(c, errs);
        return;
    }
    validate_invoice(st, c, errs);
}
