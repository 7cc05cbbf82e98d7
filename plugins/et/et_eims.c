/* The EIMS /v1/register document (FACTS.md A.5 and the mapping of §C), written as exact JSON:
 * amounts are decimal strings written as JSON numbers digit for digit (2 decimals, ETB
 * cents), never through binary floating point. Keys and their order follow the clients'
 * payloads (and ../shared/reference/et/samples, our reconstruction of them). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/decimal.h>

#include "et.h"

bool et_eims_date(const char *rfc3339, char out[24])
{
    int64_t ms = 0;
    char buf[40];
    if (rfc3339 == NULL || !ewtp_time_parse(rfc3339, &ms))
        return false;
    /* Local time in Addis Ababa (EAT, UTC+3, no daylight saving), without offset. */
    ewtp_time_format(ms, 180, buf, sizeof(buf));
    if (strlen(buf) < 19)
        return false;
    snprintf(out, 24, "%.2s-%.2s-%.4sT%.8s", buf + 8, buf + 5, buf, buf + 11);
    return true;
}

void et_numbers(const struct et_state *st, const struct ewtp_call *c, int64_t *doc_no,
                int64_t *counter, const char **prev_irn)
{
    uint64_t n = c->chain ? c->chain->number : 1;
    if (n == 0)
        n = 1;
    *doc_no = st->first_document_number + (int64_t)n - 1;
    *counter = *doc_no + st->counter_offset;
    *prev_irn = c->chain && c->chain->prev_ref ? c->chain->prev_ref
                : n == 1                       ? st->first_previous_irn
                                               : NULL;
}

/* An amount with 2 decimals (half-up; validate refused amounts that would lose digits). */
static void money(struct ewtp_jsonw *w, const char *key, struct ewtp_dec d)
{
    char buf[EWTP_DEC_STRMAX];
    ewtp_jsonw_key(w, key);
    if (ewtp_dec_format_places(d, 2, buf, sizeof(buf)) > 0)
        ewtp_jsonw_decimal(w, buf);
    else
        ewtp_jsonw_null(w);
}

/* 0 when absent or zero (as the clients write constants), else 2 decimals. */
static void money_or_zero(struct ewtp_jsonw *w, const char *key, const struct ewtp_num *n)
{
    if (n->text == NULL || ewtp_dec_is_zero(n->value)) {
        ewtp_jsonw_kv_int(w, key, 0);
        return;
    }
    money(w, key, n->value);
}

static void money_dec_or_zero(struct ewtp_jsonw *w, const char *key, struct ewtp_dec d)
{
    if (ewtp_dec_is_zero(d))
        ewtp_jsonw_kv_int(w, key, 0);
    else
        money(w, key, d);
}

static void str_or_null(struct ewtp_jsonw *w, const char *key, const char *s)
{
    ewtp_jsonw_kv_string(w, key, s); /* NULL writes null */
}

static const char *address_part(const struct ewtp_party *p, int which)
{
    if (p == NULL || p->address == NULL)
        return NULL;
    return which == 0 ? p->address->region : p->address->city;
}

static void write_buyer(struct ewtp_jsonw *w, const struct ewtp_message *m)
{
    const struct ewtp_party *b = ewtp_message_party(m, EWTP_ROLE_BUYER);
    const char *type = NULL, *number = NULL;
    et_buyer_id(m, &type, &number);
    ewtp_jsonw_key(w, "BuyerDetails");
    ewtp_jsonw_object_begin(w);
    str_or_null(w, "LegalName", b ? b->name : NULL);
    str_or_null(w, "Tin", b ? ewtp_party_id(b, "TIN") : NULL);
    str_or_null(w, "IdType", type);
    str_or_null(w, "IdNumber", number);
    str_or_null(w, "Email", b ? b->email : NULL);
    str_or_null(w, "Phone", b ? b->phone : NULL);
    str_or_null(w, "Region", address_part(b, 0));
    str_or_null(w, "City", address_part(b, 1));
    str_or_null(w, "Wereda", ewtp_json_get_string(et_ext(m, "buyer_address"), "wereda"));
    ewtp_jsonw_object_end(w);
}

static void write_seller(struct ewtp_jsonw *w, const struct ewtp_message *m)
{
    const struct ewtp_party *s = ewtp_message_party(m, EWTP_ROLE_SELLER);
    const struct ewtp_json *a = et_ext(m, "seller_address");
    ewtp_jsonw_key(w, "SellerDetails");
    ewtp_jsonw_object_begin(w);
    str_or_null(w, "LegalName", s ? s->name : NULL);
    str_or_null(w, "Tin", s ? ewtp_party_id(s, "TIN") : NULL);
    str_or_null(w, "VatNumber", s ? ewtp_party_id(s, "VAT") : NULL);
    str_or_null(w, "Email", s ? s->email : NULL);
    str_or_null(w, "Phone", s ? s->phone : NULL);
    str_or_null(w, "Region", address_part(s, 0));
    str_or_null(w, "City", address_part(s, 1));
    str_or_null(w, "SubCity", ewtp_json_get_string(a, "sub_city"));
    str_or_null(w, "Wereda", ewtp_json_get_string(a, "wereda"));
    str_or_null(w, "Kebele", ewtp_json_get_string(a, "kebele"));
    str_or_null(w, "HouseNumber", ewtp_json_get_string(a, "house_number"));
    str_or_null(w, "Locality", ewtp_json_get_string(a, "locality"));
    ewtp_jsonw_object_end(w);
}

static const char *nature(const struct ewtp_message *m, size_t i, const struct ewtp_line *l)
{
    const struct ewtp_json *lines = et_ext(m, "lines");
    const char *n = ewtp_json_get_string(ewtp_json_index(lines, i), "nature");
    if (n)
        return n;
    return l->kind == EWTP_LINE_SERVICE ? "service" : "goods";
}

/* Sums of the lines: discount, VAT and excise. */
struct sums {
    struct ewtp_dec discount, vat, excise;
};

static int write_items(struct ewtp_jsonw *w, const struct et_state *st,
                       const struct ewtp_message *m, struct sums *s)
{
    const struct ewtp_invoice *inv = m->invoice;
    s->discount = s->vat = s->excise = ewtp_dec_from_int(0);
    ewtp_jsonw_key(w, "ItemList");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        const struct ewtp_tax *vat = et_line_tax(l, "VAT");
        const struct ewtp_tax *excise = et_line_tax(l, "EXCISE");
        const struct et_tax_code *code = vat ? et_tax_code(st, vat->category) : NULL;
        const char *const *unit = et_code_find(ET_T_UNITS, l->unit);
        struct ewtp_dec total = l->amount.value;
        for (size_t t = 0; t < l->n_taxes; t++)
            if (l->taxes[t]->amount.text &&
                ewtp_dec_add(total, l->taxes[t]->amount.value, &total) != 0)
                return -EWTP_ERANGE;
        if ((l->discount.text && ewtp_dec_add(s->discount, l->discount.value, &s->discount)) ||
            (vat && vat->amount.text && ewtp_dec_add(s->vat, vat->amount.value, &s->vat)) ||
            (excise && excise->amount.text &&
             ewtp_dec_add(s->excise, excise->amount.value, &s->excise)))
            return -EWTP_ERANGE;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_int(w, "LineNumber", l->line);
        str_or_null(w, "ItemCode", l->sku);
        str_or_null(w, "ProductDescription", l->description);
        str_or_null(w, "NatureOfSupplies", nature(m, i, l));
        ewtp_jsonw_key(w, "Quantity");
        ewtp_jsonw_decimal(w, l->quantity.text);
        str_or_null(w, "Unit", unit ? unit[1] : NULL);
        if (l->unit_price.value.scale <= 2)
            money(w, "UnitPrice", l->unit_price.value);
        else
            ewtp_jsonw_kv_decimal(w, "UnitPrice", l->unit_price.text);
        money_or_zero(w, "Discount", &l->discount);
        money(w, "PreTaxValue", l->amount.value);
        str_or_null(w, "TaxCode", code ? code->code : NULL);
        if (vat && vat->amount.text)
            money(w, "TaxAmount", vat->amount.value);
        else
            ewtp_jsonw_kv_int(w, "TaxAmount", 0);
        money_or_zero(w, "ExciseTaxValue", excise ? &excise->amount : &(struct ewtp_num){0});
        str_or_null(w, "HarmonizationCode", l->hs_code);
        money(w, "TotalLineAmount", total);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    return 0;
}

static const char *payment_mode(const struct ewtp_message *m)
{
    const char *mode = et_ext_string(m, "payment_mode");
    if (mode)
        return mode;
    const struct ewtp_invoice *inv = m->invoice;
    const char *const *row =
        inv->payment_means ? et_code_find(ET_T_PAY_MODES, inv->payment_means->code) : NULL;
    if (row)
        return row[1];
    return inv->due_date ? "CREDIT" : "CASH";
}

static void ext_money_or_zero(struct ewtp_jsonw *w, const char *key, const struct ewtp_message *m,
                              const char *member)
{
    struct ewtp_dec d;
    const char *s = et_ext_string(m, member);
    if (s == NULL || ewtp_dec_parse(s, &d) != 0)
        d = ewtp_dec_from_int(0);
    money_dec_or_zero(w, key, d);
}

int et_register_json(const struct et_state *st, const struct ewtp_call *c, struct ewtp_errors *errs,
                     const char **out, size_t *len)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    const char *type = et_doc_type(inv);
    bool note = strcmp(type, "INV") != 0;
    const char *related = note ? et_related_irn(c, NULL) : NULL;
    if (note && related == NULL) {
        ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                        "the IRN of invoice %s is not known (it was not registered through this "
                        "gateway, or was refused): give it in ext.et.related_irn",
                        inv->original_invoice ? inv->original_invoice : "(none)");
        return -EWTP_EINVAL;
    }
    int64_t doc_no = 0, counter = 0;
    const char *prev = NULL;
    et_numbers(st, c, &doc_no, &counter, &prev);
    char date[24] = "";
    et_eims_date(inv->issued_at, date);
    const struct ewtp_party *buyer = ewtp_message_party(m, EWTP_ROLE_BUYER);
    const char *reason = inv->reason ? inv->reason : et_ext_string(m, "reason");
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    write_buyer(w, m);
    ewtp_jsonw_key(w, "DocumentDetails");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "DocumentNumber",
                         ewtp_arena_printf(c->arena, "%lld", (long long)doc_no));
    ewtp_jsonw_kv_string(w, "Date", date);
    ewtp_jsonw_kv_string(w, "Type", type);
    str_or_null(w, "Reason", note ? reason : NULL);
    ewtp_jsonw_object_end(w);
    struct sums s;
    int rc = write_items(w, st, m, &s);
    if (rc != 0) {
        ewtp_errors_add(errs, "/invoice/lines", "range", "line amounts are too large");
        return -EWTP_EINVAL;
    }
    ewtp_jsonw_key(w, "PaymentDetails");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "Mode", payment_mode(m));
    const char *term = et_ext_string(m, "payment_term");
    ewtp_jsonw_kv_string(w, "PaymentTerm",
                         term            ? term
                         : inv->due_date ? st->deferred_payment_term
                                         : "IMMEDIATE");
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_key(w, "ReferenceDetails");
    ewtp_jsonw_object_begin(w);
    str_or_null(w, "PreviousIrn", prev);
    str_or_null(w, "RelatedDocument", related);
    ewtp_jsonw_object_end(w);
    write_seller(w, m);
    ewtp_jsonw_key(w, "SourceSystem");
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "SystemType", st->system_type);
    ewtp_jsonw_kv_string(w, "SystemNumber", st->system_number);
    ewtp_jsonw_kv_int(w, "InvoiceCounter", counter);
    str_or_null(w, "CashierName", et_ext_string(m, "cashier_name"));
    str_or_null(w, "SalesPersonName", et_ext_string(m, "sales_person_name"));
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_kv_string(w, "TransactionType",
                         buyer && ewtp_party_id(buyer, "TIN") ? "B2B" : "B2C");
    ewtp_jsonw_key(w, "ValueDetails");
    ewtp_jsonw_object_begin(w);
    money(w, "TotalValue", inv->totals->gross.value);
    money(w, "TaxValue", s.vat);
    money_dec_or_zero(w, "Discount", s.discount);
    money_dec_or_zero(w, "ExciseValue", s.excise);
    ext_money_or_zero(w, "IncomeWithholdValue", m, "income_withhold");
    ext_money_or_zero(w, "TransactionWithholdValue", m, "transaction_withhold");
    ewtp_jsonw_kv_string(w, "InvoiceCurrency", inv->currency ? inv->currency : "ETB");
    const char *rate =
        inv->exchange_rate.text ? inv->exchange_rate.text : et_ext_string(m, "exchange_rate");
    ewtp_jsonw_key(w, "ExchangeRate");
    if (rate && !(inv->currency == NULL || strcmp(inv->currency, "ETB") == 0))
        ewtp_jsonw_decimal(w, rate);
    else
        ewtp_jsonw_null(w);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_kv_string(w, "Version", "1");
    ewtp_jsonw_object_end(w);
    return ewtp_jsonw_finish(w, out, len);
}
