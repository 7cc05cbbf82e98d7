/* Peppol BIS Billing 3.0 (UBL 2.1 Invoice / CreditNote) for Belgium, and its delivery to an
 * external Peppol access point. Element order follows the UBL 2.1 XSD sequences; business
 * rules follow the CEN EN16931 and Peppol schematrons in ../shared/reference/be/peppol/. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "be.h"

#define CBC "cbc"
#define CAC "cac"

void be_message_uuid(const struct ewtp_call *c, const char *what, char out[37])
{
    char name[256];
    int n = snprintf(name, sizeof(name), "%s/%s/%s", c->tenant ? c->tenant : "", c->msg->id, what);
    ewtp_uuid_v5(EWTP_UUID_NS_EWTP, name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1,
                 out);
}

int be_bearer(const struct ewtp_call *c, const char *token_file, const char **value)
{
    const char *token = "test-token";
    if (token_file && EWTP_HOST_HAS(c->host, read_secret)) {
        size_t len = 0;
        int rc = c->host->read_secret(c->host->ctx, token_file, c->arena, &token, &len);
        if (rc != 0)
            return rc;
        while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
            len--;
        token = ewtp_arena_strndup(c->arena, token, len);
    }
    *value = ewtp_arena_printf(c->arena, "Bearer %s", token);
    return *value ? 0 : -EWTP_ENOMEM;
}

bool be_party_endpoint(const struct ewtp_party *p, struct ewtp_arena *a, const char **scheme,
                       const char **value)
{
    (void)a;
    if (p == NULL)
        return false;
    if (p->endpoint) {
        *scheme = p->endpoint->scheme;
        *value = p->endpoint->value;
        return true;
    }
    /* A Belgian VAT number is BE + the enterprise number (FACTS B2). */
    const char *vat = ewtp_party_id(p, "VAT");
    if (vat && strncmp(vat, "BE", 2) == 0 && be_kbo_valid(vat + 2)) {
        *scheme = "0208";
        *value = vat + 2;
        return true;
    }
    const char *kbo = ewtp_party_id(p, "BE-KBO");
    if (kbo && be_kbo_valid(kbo)) {
        *scheme = "0208";
        *value = kbo;
        return true;
    }
    return false;
}

/* The enterprise number (BT-30 / BT-47, scheme 0208) when the party has one. */
static const char *party_kbo(const struct ewtp_party *p)
{
    const char *s, *v;
    if (be_party_endpoint(p, NULL, &s, &v) && strcmp(s, "0208") == 0)
        return v;
    const char *vat = ewtp_party_id(p, "VAT");
    if (vat && strncmp(vat, "BE", 2) == 0 && be_kbo_valid(vat + 2))
        return vat + 2;
    return NULL;
}

int be_vat_breakdown(const struct ewtp_invoice *inv, struct ewtp_arena *a,
                     struct be_vat_group **out, size_t *n)
{
    struct be_vat_group *g = ewtp_arena_alloc(a, (inv->n_lines + 1) * sizeof(*g));
    if (g == NULL)
        return -EWTP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        const struct ewtp_tax *t = be_line_vat(l);
        if (t == NULL || t->category == NULL || l->amount.text == NULL)
            continue;
        size_t j = 0;
        for (; j < k; j++) {
            if (strcmp(g[j].category, t->category) != 0)
                continue;
            if ((g[j].rate == NULL) != (t->rate.text == NULL))
                continue;
            if (g[j].rate == NULL || ewtp_dec_cmp(g[j].rate->value, t->rate.value) == 0)
                break;
        }
        if (j == k) {
            g[k].category = t->category;
            g[k].rate = t->rate.text ? &t->rate : NULL;
            g[k].taxable = ewtp_dec_from_int(0);
            k++;
        }
        if (g[j].reason == NULL)
            g[j].reason = t->exemption_reason;
        if (ewtp_dec_add(g[j].taxable, l->amount.value, &g[j].taxable) != 0)
            return -EWTP_ERANGE;
    }
    /* BR-S-09 and siblings: VAT per category = taxable x rate / 100, rounded once. */
    for (size_t j = 0; j < k; j++) {
        struct ewtp_dec prod;
        if (g[j].rate == NULL) {
            g[j].tax = ewtp_dec_from_int(0);
            continue;
        }
        if (ewtp_dec_mul(g[j].taxable, g[j].rate->value, &prod) != 0 ||
            ewtp_dec_div(prod, ewtp_dec_from_int(100), 2, &g[j].tax) != 0)
            return -EWTP_ERANGE;
    }
    *out = g;
    *n = k;
    return 0;
}

static void amount(struct ewtp_xml_writer *w, const char *name, struct ewtp_dec d,
                   const char *currency)
{
    char buf[EWTP_DEC_STRMAX];
    ewtp_xml_start(w, CBC, name);
    ewtp_xml_attr(w, NULL, "currencyID", currency);
    if (ewtp_dec_format_places(d, 2, buf, sizeof(buf)) > 0)
        ewtp_xml_text(w, buf);
    ewtp_xml_end(w);
}

/* "2026-11-22T10:00:00+01:00" -> "2026-11-22": the date as the seller wrote it. */
static const char *date_of(const char *t, struct ewtp_arena *a)
{
    return t ? ewtp_arena_strndup(a, t, 10) : NULL;
}

static void write_address(struct ewtp_xml_writer *w, const char *elem, const struct ewtp_party *p)
{
    const struct ewtp_address *ad = p->address;
    ewtp_xml_start(w, CAC, elem);
    if (ad) {
        if (ad->n_lines > 0)
            ewtp_xml_elem(w, CBC, "StreetName", ad->lines[0]);
        if (ad->n_lines > 1)
            ewtp_xml_elem(w, CBC, "AdditionalStreetName", ad->lines[1]);
        ewtp_xml_elem(w, CBC, "CityName", ad->city);
        ewtp_xml_elem(w, CBC, "PostalZone", ad->postcode);
        ewtp_xml_elem(w, CBC, "CountrySubentity", ad->region);
        if (ad->n_lines > 2) {
            ewtp_xml_start(w, CAC, "AddressLine");
            ewtp_xml_elem(w, CBC, "Line", ad->lines[2]);
            ewtp_xml_end(w);
        }
    }
    ewtp_xml_start(w, CAC, "Country");
    ewtp_xml_elem(w, CBC, "IdentificationCode", ad && ad->country ? ad->country : p->country);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
}

static void write_party(struct ewtp_xml_writer *w, const char *wrapper, const struct ewtp_party *p,
                        bool with_vat, struct ewtp_arena *a)
{
    ewtp_xml_start(w, CAC, wrapper);
    ewtp_xml_start(w, CAC, "Party");
    const char *scheme = NULL, *value = NULL;
    if (be_party_endpoint(p, a, &scheme, &value)) {
        ewtp_xml_start(w, CBC, "EndpointID");
        ewtp_xml_attr(w, NULL, "schemeID", scheme);
        ewtp_xml_text(w, value);
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, CAC, "PartyName");
    ewtp_xml_elem(w, CBC, "Name", p->name);
    ewtp_xml_end(w);
    write_address(w, "PostalAddress", p);
    const char *vat = ewtp_party_id(p, "VAT");
    if (with_vat && vat) {
        ewtp_xml_start(w, CAC, "PartyTaxScheme");
        ewtp_xml_elem(w, CBC, "CompanyID", vat);
        ewtp_xml_start(w, CAC, "TaxScheme");
        ewtp_xml_elem(w, CBC, "ID", "VAT");
        ewtp_xml_end(w);
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, CAC, "PartyLegalEntity");
    ewtp_xml_elem(w, CBC, "RegistrationName", p->name);
    const char *kbo = party_kbo(p);
    if (kbo) {
        ewtp_xml_start(w, CBC, "CompanyID");
        ewtp_xml_attr(w, NULL, "schemeID", "0208");
        ewtp_xml_text(w, kbo);
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
    if (p->email || p->phone) {
        ewtp_xml_start(w, CAC, "Contact");
        ewtp_xml_elem(w, CBC, "Telephone", p->phone);
        ewtp_xml_elem(w, CBC, "ElectronicMail", p->email);
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
    ewtp_xml_end(w);
}

/* Default exemption reason codes (VATEX, Peppol P0104-P0111). */
static const char *default_reason(const char *cat)
{
    if (strcmp(cat, "AE") == 0)
        return "VATEX-EU-AE";
    if (strcmp(cat, "K") == 0)
        return "VATEX-EU-IC";
    if (strcmp(cat, "G") == 0)
        return "VATEX-EU-G";
    if (strcmp(cat, "O") == 0)
        return "VATEX-EU-O";
    return NULL;
}

static void write_tax_category(struct ewtp_xml_writer *w, const char *elem, const char *cat,
                               const struct ewtp_num *rate, const char *reason, bool with_reason)
{
    ewtp_xml_start(w, CAC, elem);
    ewtp_xml_elem(w, CBC, "ID", cat);
    if (rate)
        ewtp_xml_elem(w, CBC, "Percent", rate->text);
    if (with_reason && strcmp(cat, "S") != 0 && strcmp(cat, "Z") != 0) {
        const char *r = reason ? reason : default_reason(cat);
        if (r && strncmp(r, "VATEX-", 6) == 0)
            ewtp_xml_elem(w, CBC, "TaxExemptionReasonCode", r);
        else
            ewtp_xml_elem(w, CBC, "TaxExemptionReason", r);
    }
    ewtp_xml_start(w, CAC, "TaxScheme");
    ewtp_xml_elem(w, CBC, "ID", "VAT");
    ewtp_xml_end(w);
    ewtp_xml_end(w);
}

/* GTIN check digit (GS1 mod 10): Peppol checks it for scheme 0160 (PEPPOL-COMMON-R040). */
static bool gtin_valid(const char *s)
{
    size_t n = strlen(s);
    if (n != 8 && n != 12 && n != 13 && n != 14)
        return false;
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (i + 1 < n)
            sum += (s[i] - '0') * (((n - 1 - i) % 2 == 1) ? 3 : 1);
    }
    return (10 - sum % 10) % 10 == s[n - 1] - '0';
}

static void write_line(struct ewtp_xml_writer *w, const struct ewtp_line *l, bool credit,
                       const char *cur)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)l->line);
    ewtp_xml_start(w, CAC, credit ? "CreditNoteLine" : "InvoiceLine");
    ewtp_xml_elem(w, CBC, "ID", id);
    ewtp_xml_start(w, CBC, credit ? "CreditedQuantity" : "InvoicedQuantity");
    ewtp_xml_attr(w, NULL, "unitCode", l->unit ? l->unit : "C62");
    ewtp_xml_text(w, l->quantity.text);
    ewtp_xml_end(w);
    amount(w, "LineExtensionAmount", l->amount.value, cur);
    if (l->discount.text && !ewtp_dec_is_zero(l->discount.value)) {
        /* BG-27 line allowance: code 95 "Discount" (UNCL 5189). */
        ewtp_xml_start(w, CAC, "AllowanceCharge");
        ewtp_xml_elem(w, CBC, "ChargeIndicator", "false");
        ewtp_xml_elem(w, CBC, "AllowanceChargeReasonCode", "95");
        ewtp_xml_elem(w, CBC, "AllowanceChargeReason", "Discount");
        amount(w, "Amount", l->discount.value, cur);
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, CAC, "Item");
    ewtp_xml_elem(w, CBC, "Name", l->description);
    if (l->sku) {
        ewtp_xml_start(w, CAC, "SellersItemIdentification");
        ewtp_xml_elem(w, CBC, "ID", l->sku);
        ewtp_xml_end(w);
    }
    if (l->barcode && gtin_valid(l->barcode)) {
        ewtp_xml_start(w, CAC, "StandardItemIdentification");
        ewtp_xml_start(w, CBC, "ID");
        ewtp_xml_attr(w, NULL, "schemeID", "0160");
        ewtp_xml_text(w, l->barcode);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
    }
    if (l->origin) {
        ewtp_xml_start(w, CAC, "OriginCountry");
        ewtp_xml_elem(w, CBC, "IdentificationCode", l->origin);
        ewtp_xml_end(w);
    }
    if (l->hs_code) {
        ewtp_xml_start(w, CAC, "CommodityClassification");
        ewtp_xml_start(w, CBC, "ItemClassificationCode");
        ewtp_xml_attr(w, NULL, "listID", "HS");
        ewtp_xml_text(w, l->hs_code);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
    }
    const struct ewtp_tax *t = be_line_vat(l);
    write_tax_category(w, "ClassifiedTaxCategory", t->category, t->rate.text ? &t->rate : NULL,
                       NULL, false);
    ewtp_xml_end(w); /* Item */
    ewtp_xml_start(w, CAC, "Price");
    ewtp_xml_start(w, CBC, "PriceAmount");
    ewtp_xml_attr(w, NULL, "currencyID", cur);
    ewtp_xml_text(w, l->unit_price.text);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
}

static const char *type_code(enum ewtp_invoice_type t)
{
    switch (t) {
    case EWTP_INV_CREDIT_NOTE:
    case EWTP_INV_REFUND_NOTE:
        return "381";
    case EWTP_INV_DEBIT_NOTE:
        return "383";
    default:
        return "380";
    }
}

static int build_ubl(const struct be_state *st, const struct ewtp_call *c, const char **xml,
                     size_t *len)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    struct ewtp_arena *a = c->arena;
    bool credit = inv->type == EWTP_INV_CREDIT_NOTE || inv->type == EWTP_INV_REFUND_NOTE;
    const char *cur = inv->currency ? inv->currency : "EUR";
    bool foreign = strcmp(cur, "EUR") != 0 && inv->exchange_rate.text != NULL;
    const struct ewtp_party *seller = m->parties[EWTP_ROLE_SELLER];
    const struct ewtp_party *buyer = m->parties[EWTP_ROLE_BUYER];

    struct be_vat_group *g = NULL;
    size_t ng = 0;
    int rc = be_vat_breakdown(inv, a, &g, &ng);
    if (rc != 0)
        return rc;
    struct ewtp_dec net = ewtp_dec_from_int(0), tax = ewtp_dec_from_int(0), gross, payable;
    bool only_o = ng > 0;
    for (size_t i = 0; i < ng; i++) {
        if (ewtp_dec_add(net, g[i].taxable, &net) != 0 || ewtp_dec_add(tax, g[i].tax, &tax) != 0)
            return -EWTP_ERANGE;
        if (strcmp(g[i].category, "O") != 0)
            only_o = false;
    }
    if (ewtp_dec_add(net, tax, &gross) != 0)
        return -EWTP_ERANGE;
    /* BT-113: what the sender says was paid already (gross - payable). */
    struct ewtp_dec prepaid = ewtp_dec_from_int(0);
    if (inv->totals->payable.text && inv->totals->gross.text &&
        ewtp_dec_sub(inv->totals->gross.value, inv->totals->payable.value, &prepaid) != 0)
        return -EWTP_ERANGE;
    if (ewtp_dec_sub(gross, prepaid, &payable) != 0)
        return -EWTP_ERANGE;

    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_xml_start(w, NULL, credit ? "CreditNote" : "Invoice");
    ewtp_xml_ns(w, NULL, credit ? BE_UBL_CREDITNOTE_NS : BE_UBL_INVOICE_NS);
    ewtp_xml_ns(w, CAC, BE_UBL_CAC_NS);
    ewtp_xml_ns(w, CBC, BE_UBL_CBC_NS);
    ewtp_xml_elem(w, CBC, "CustomizationID", BE_PEPPOL_CUSTOMIZATION);
    ewtp_xml_elem(w, CBC, "ProfileID", st->profile);
    ewtp_xml_elem(w, CBC, "ID", inv->number);
    ewtp_xml_elem(w, CBC, "IssueDate", date_of(inv->issued_at, a));
    if (!credit)
        ewtp_xml_elem(w, CBC, "DueDate", inv->due_date);
    ewtp_xml_elem(w, CBC, credit ? "CreditNoteTypeCode" : "InvoiceTypeCode", type_code(inv->type));
    /* One note only (PEPPOL-EN16931-R002): the reason of a note comes first. */
    if (inv->reason && inv->note)
        ewtp_xml_elem(w, CBC, "Note", ewtp_arena_printf(a, "%s - %s", inv->reason, inv->note));
    else
        ewtp_xml_elem(w, CBC, "Note", inv->reason ? inv->reason : inv->note);
    ewtp_xml_elem(w, CBC, "DocumentCurrencyCode", cur);
    if (foreign)
        ewtp_xml_elem(w, CBC, "TaxCurrencyCode", "EUR");
    ewtp_xml_elem(w, CBC, "BuyerReference", inv->buyer_reference);
    if (inv->billing_period) {
        ewtp_xml_start(w, CAC, "InvoicePeriod");
        ewtp_xml_elem(w, CBC, "StartDate", inv->billing_period->start);
        ewtp_xml_elem(w, CBC, "EndDate", inv->billing_period->end);
        ewtp_xml_end(w);
    }
    if (inv->order_number) {
        ewtp_xml_start(w, CAC, "OrderReference");
        ewtp_xml_elem(w, CBC, "ID", inv->order_number);
        ewtp_xml_end(w);
    }
    if (inv->original_invoice) {
        ewtp_xml_start(w, CAC, "BillingReference");
        ewtp_xml_start(w, CAC, "InvoiceDocumentReference");
        ewtp_xml_elem(w, CBC, "ID", inv->original_invoice);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
    }
    /* BR-O-02: an invoice not subject to VAT carries no VAT identifiers. */
    write_party(w, "AccountingSupplierParty", seller, !only_o, a);
    write_party(w, "AccountingCustomerParty", buyer, !only_o, a);
    const struct ewtp_json *dl = ewtp_json_get(ewtp_message_ext(m, "be"), "delivery");
    bool has_k = false;
    for (size_t i = 0; i < ng; i++)
        has_k = has_k || strcmp(g[i].category, "K") == 0;
    if (dl || has_k) {
        /* BG-13: BR-IC-11/12 want a delivery date and the deliver-to country for K. */
        const char *dcc = ewtp_json_get_string(dl, "country");
        if (dcc == NULL && buyer)
            dcc = buyer->address && buyer->address->country ? buyer->address->country
                                                            : buyer->country;
        ewtp_xml_start(w, CAC, "Delivery");
        ewtp_xml_elem(w, CBC, "ActualDeliveryDate", ewtp_json_get_string(dl, "date"));
        ewtp_xml_start(w, CAC, "DeliveryLocation");
        ewtp_xml_start(w, CAC, "Address");
        ewtp_xml_start(w, CAC, "Country");
        ewtp_xml_elem(w, CBC, "IdentificationCode", dcc);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
        ewtp_xml_end(w);
    }
    const struct ewtp_payment_means *pm = inv->payment_means;
    if (pm && pm->code) {
        ewtp_xml_start(w, CAC, "PaymentMeans");
        ewtp_xml_elem(w, CBC, "PaymentMeansCode", pm->code);
        if (credit)
            ewtp_xml_elem(w, CBC, "PaymentDueDate", inv->due_date);
        ewtp_xml_elem(w, CBC, "PaymentID", pm->reference);
        if (pm->account) {
            ewtp_xml_start(w, CAC, "PayeeFinancialAccount");
            ewtp_xml_elem(w, CBC, "ID", pm->account);
            ewtp_xml_end(w);
        }
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, CAC, "TaxTotal");
    amount(w, "TaxAmount", tax, cur);
    for (size_t i = 0; i < ng; i++) {
        ewtp_xml_start(w, CAC, "TaxSubtotal");
        amount(w, "TaxableAmount", g[i].taxable, cur);
        amount(w, "TaxAmount", g[i].tax, cur);
        write_tax_category(w, "TaxCategory", g[i].category, g[i].rate, g[i].reason, true);
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
    if (foreign) {
        /* BT-111: the VAT total in EUR, the authority's currency (BR-53, PEPPOL R054). */
        struct ewtp_dec eur;
        if (ewtp_dec_mul(tax, inv->exchange_rate.value, &eur) != 0) {
            ewtp_xml_writer_free(w);
            return -EWTP_ERANGE;
        }
        ewtp_xml_start(w, CAC, "TaxTotal");
        amount(w, "TaxAmount", eur, "EUR");
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, CAC, "LegalMonetaryTotal");
    amount(w, "LineExtensionAmount", net, cur);
    amount(w, "TaxExclusiveAmount", net, cur);
    amount(w, "TaxInclusiveAmount", gross, cur);
    if (!ewtp_dec_is_zero(prepaid))
        amount(w, "PrepaidAmount", prepaid, cur);
    amount(w, "PayableAmount", payable, cur);
    ewtp_xml_end(w);
    for (size_t i = 0; i < inv->n_lines; i++)
        write_line(w, inv->lines[i], credit, cur);
    ewtp_xml_end(w);
    rc = ewtp_xml_writer_finish(w, a, xml, len);
    ewtp_xml_writer_free(w);
    return rc;
}

int be_peppol_translate(const struct be_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                        struct ewtp_errors *errs)
{
    (void)errs; /* be_validate checked what Peppol needs */
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    bool credit = inv->type == EWTP_INV_CREDIT_NOTE || inv->type == EWTP_INV_REFUND_NOTE;
    const char *xml = NULL;
    size_t len = 0;
    int rc = build_ubl(st, c, &xml, &len);
    if (rc != 0)
        return rc;
    const char *name =
        ewtp_arena_printf(c->arena, "BE-%s-%s.xml", credit ? "creditnote" : "invoice", m->id);
    /* Peppol documents are not signed by us: the access point seals the AS4 message. */
    struct ewtp_document doc = {.size = sizeof(struct ewtp_document),
                                .name = name,
                                .content_type = "application/xml",
                                .data = xml,
                                .len = len};
    if ((rc = ewtp_out_add_document(out, &doc)) != 0)
        return rc;
    char uuid[EWTP_UUID_STRLEN];
    be_message_uuid(c, "peppol", uuid);
    if (st->delivery == BE_DELIVER_SPOOL) {
        /* The access point picks the file up from its outbound folder and routes it by the
         * EndpointIDs inside; the file name (our message id) is the instance id its Message
         * Level Status receipts refer to. */
        struct ewtp_request req = {.size = sizeof(struct ewtp_request),
                                   .method = "SPOOL",
                                   .path = ewtp_arena_printf(c->arena, "%s.xml", m->id),
                                   .body = xml,
                                   .body_len = len,
                                   .body_doc = name,
                                   .final = false};
        return ewtp_out_add_request(out, &req);
    }
    const char *ss = NULL, *sv = NULL, *rs = NULL, *rv = NULL, *auth = NULL;
    be_party_endpoint(m->parties[EWTP_ROLE_SELLER], c->arena, &ss, &sv);
    be_party_endpoint(m->parties[EWTP_ROLE_BUYER], c->arena, &rs, &rv);
    if ((rc = be_bearer(c, st->ap_token_file, &auth)) != 0)
        return rc;
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 7 * sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    const char *doctype =
        credit ? "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::"
                 "CreditNote##" BE_PEPPOL_CUSTOMIZATION "::2.1"
               : "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::"
                 "Invoice##" BE_PEPPOL_CUSTOMIZATION "::2.1";
    size_t k = 0;
    h[k++] = ewtp_header_new(c->arena, "Content-Type", "application/xml", false);
    h[k++] = ewtp_header_new(c->arena, "X-Request-Id", ewtp_arena_strdup(c->arena, uuid), false);
    h[k++] =
        ewtp_header_new(c->arena, "X-Peppol-Sender",
                        ewtp_arena_printf(c->arena, "iso6523-actorid-upis::%s:%s", ss, sv), false);
    h[k++] =
        ewtp_header_new(c->arena, "X-Peppol-Receiver",
                        ewtp_arena_printf(c->arena, "iso6523-actorid-upis::%s:%s", rs, rv), false);
    h[k++] = ewtp_header_new(c->arena, "X-Peppol-Document-Type", doctype, false);
    h[k++] =
        ewtp_header_new(c->arena, "X-Peppol-Process",
                        ewtp_arena_printf(c->arena, "cenbii-procid-ubl::%s", st->profile), false);
    h[k++] = ewtp_header_new(c->arena, "Authorization", auth, true);
    struct ewtp_request req = {.size = sizeof(struct ewtp_request),
                               .method = "POST",
                               .path = st->ap_path,
                               .headers = h,
                               .n_headers = k,
                               .body = xml,
                               .body_len = len,
                               .body_doc = name,
                               .final = false};
    return ewtp_out_add_request(out, &req);
}
