/* The MyInvois UBL 2.1 document (v1.1 field rules, FACTS.md §2 and §4), built once as a neutral
 * tree and written either as XML or as the OASIS "UBL JSON alternative representation" that
 * MyInvois accepts, so that the two formats can never drift apart. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include <ewtp/codes.h>
#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "my.h"

#define NS_INVOICE "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
#define NS_CAC "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
#define NS_CBC "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
#define NS_EXT "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
#define NS_SIG "urn:oasis:names:specification:ubl:schema:xsd:CommonSignatureComponents-2"
#define NS_SAC "urn:oasis:names:specification:ubl:schema:xsd:SignatureAggregateComponents-2"
#define NS_SBC "urn:oasis:names:specification:ubl:schema:xsd:SignatureBasicComponents-2"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define NS_XADES "http://uri.etsi.org/01903/v1.3.2#"
#define SHA256_URI "http://www.w3.org/2001/04/xmlenc#sha256"
#define EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"

enum ns { NS_NONE, NS_A, NS_B };
enum vt { VT_STR, VT_NUM };

struct attr {
    const char *name, *value;
};

/* One UBL element: either a leaf with a value or an aggregate with children. */
struct node {
    enum ns ns;
    const char *name;
    const char *text; /* leaf value; NULL for an aggregate */
    enum vt vt;
    struct attr attrs[3];
    int n_attrs;
    bool sig_marker; /* cac:Signature: written after the body in JSON */
    struct node *child, *last, *next;
};

struct b {
    struct ewtp_arena *a;
    bool oom;
};

static struct node *el(struct b *b, struct node *parent, enum ns ns, const char *name)
{
    struct node *n = ewtp_arena_alloc(b->a, sizeof(*n));
    if (n == NULL) {
        b->oom = true;
        return NULL;
    }
    n->ns = ns;
    n->name = name;
    if (parent) {
        if (parent->last)
            parent->last->next = n;
        else
            parent->child = n;
        parent->last = n;
    }
    return n;
}

/* A cbc leaf; NULL text adds nothing (optional members vanish). */
static struct node *leaf(struct b *b, struct node *parent, const char *name, const char *text)
{
    if (text == NULL || parent == NULL)
        return NULL;
    struct node *n = el(b, parent, NS_B, name);
    if (n)
        n->text = text;
    return n;
}

static struct node *leaf_num(struct b *b, struct node *parent, const char *name, const char *text)
{
    struct node *n = leaf(b, parent, name, text);
    if (n)
        n->vt = VT_NUM;
    return n;
}

static void attr(struct node *n, const char *name, const char *value)
{
    if (n && value && n->n_attrs < 3)
        n->attrs[n->n_attrs++] = (struct attr){name, value};
}

static struct node *amount(struct b *b, struct node *parent, const char *name, const char *text,
                           const char *currency)
{
    struct node *n = leaf_num(b, parent, name, text);
    attr(n, "currencyID", currency);
    return n;
}

static const char *dec_text(struct b *b, struct ewtp_dec d, unsigned places)
{
    char buf[EWTP_DEC_STRMAX];
    if (ewtp_dec_format_places(d, places, buf, sizeof(buf)) < 0)
        return "0";
    return ewtp_arena_strdup(b->a, buf);
}

/* ---- parties ---- */

static const char *alpha3(const char *alpha2)
{
    const char *a3 = alpha2 ? ewtp_code_country_alpha3(alpha2) : NULL;
    return a3 ? a3 : "MYS";
}

static bool is_general_tin(const char *tin)
{
    return tin && strncmp(tin, "EI000000000", 11) == 0;
}

static void address(struct b *b, struct node *parent, const struct ewtp_address *ad,
                    const char *party_country)
{
    struct node *pa = el(b, parent, NS_A, "PostalAddress");
    if (ad == NULL) {
        /* Only general-TIN parties may come without an address (validate): "NA" as the
         * IRBM guideline's consolidated example does. */
        leaf(b, pa, "CityName", "NA");
        leaf(b, pa, "CountrySubentityCode", "17");
        struct node *l = el(b, pa, NS_A, "AddressLine");
        leaf(b, l, "Line", "NA");
        struct node *c = el(b, pa, NS_A, "Country");
        struct node *id = leaf(b, c, "IdentificationCode", alpha3(party_country));
        attr(id, "listID", "ISO3166-1");
        attr(id, "listAgencyID", "6");
        return;
    }
    const char *country = ad->country ? ad->country : party_country;
    leaf(b, pa, "CityName", ad->city);
    leaf(b, pa, "PostalZone", ad->postcode);
    const char *state = country && strcmp(country, "MY") != 0 ? "17" : my_state_code(ad->region);
    leaf(b, pa, "CountrySubentityCode", state ? state : "17");
    for (size_t i = 0; i < ad->n_lines && i < 3; i++) {
        struct node *l = el(b, pa, NS_A, "AddressLine");
        leaf(b, l, "Line", ad->lines[i]);
    }
    struct node *c = el(b, pa, NS_A, "Country");
    struct node *id = leaf(b, c, "IdentificationCode", alpha3(country));
    attr(id, "listID", "ISO3166-1");
    attr(id, "listAgencyID", "6");
}

static void party_id(struct b *b, struct node *party, const char *scheme, const char *value)
{
    struct node *pi = el(b, party, NS_A, "PartyIdentification");
    struct node *id = leaf(b, pi, "ID", value);
    attr(id, "schemeID", scheme);
}

/* The registration scheme MyInvois knows (BRN, NRIC, PASSPORT, ARMY) and its value. */
static void registration(const struct ewtp_party *p, const char **scheme, const char **value)
{
    static const char *const schemes[] = {"BRN", "NRIC", "PASSPORT", "ARMY"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = ewtp_party_id(p, schemes[i]);
        if (v) {
            *scheme = schemes[i];
            *value = v;
            return;
        }
    }
    *scheme = "BRN";
    *value = "NA";
}

static void party(struct b *b, struct node *parent, const char *role, const struct ewtp_party *p,
                  const char *msic, const char *activity, const char *certex)
{
    struct node *r = el(b, parent, NS_A, role);
    if (certex) {
        struct node *acc = leaf(b, r, "AdditionalAccountID", certex);
        attr(acc, "schemeAgencyName", "CertEX");
    }
    struct node *pt = el(b, r, NS_A, "Party");
    if (msic) {
        struct node *ic = leaf(b, pt, "IndustryClassificationCode", msic);
        attr(ic, "name", activity);
    }
    const char *tin = ewtp_party_id(p, "TIN");
    party_id(b, pt, "TIN", tin);
    const char *scheme, *value;
    registration(p, &scheme, &value);
    party_id(b, pt, scheme, value);
    const char *sst = ewtp_party_id(p, "SST");
    party_id(b, pt, "SST", sst ? sst : "NA");
    const char *ttx = ewtp_party_id(p, "TTX");
    party_id(b, pt, "TTX", ttx ? ttx : "NA");
    address(b, pt, p->address, p->country);
    struct node *le = el(b, pt, NS_A, "PartyLegalEntity");
    leaf(b, le, "RegistrationName", p->name);
    struct node *ct = el(b, pt, NS_A, "Contact");
    leaf(b, ct, "Telephone", p->phone ? p->phone : is_general_tin(tin) ? "NA" : NULL);
    leaf(b, ct, "ElectronicMail", p->email);
}

/* ---- taxes ---- */

/* Line TaxTotal: one subtotal per tax of the line. */
static void line_taxes(struct b *b, struct node *ln, const struct ewtp_message *m, size_t i,
                       const char *cur)
{
    const struct ewtp_line *l = m->invoice->lines[i];
    struct ewtp_dec sum = ewtp_dec_from_int(0);
    for (size_t t = 0; t < l->n_taxes; t++)
        ewtp_dec_add(sum, l->taxes[t]->amount.value, &sum);
    struct node *tt = el(b, ln, NS_A, "TaxTotal");
    amount(b, tt, "TaxAmount", dec_text(b, sum, 2), cur);
    for (size_t t = 0; t < l->n_taxes; t++) {
        const struct ewtp_tax *tx = l->taxes[t];
        struct node *st = el(b, tt, NS_A, "TaxSubtotal");
        amount(b, st, "TaxableAmount", l->amount.text, cur);
        amount(b, st, "TaxAmount", tx->amount.text ? tx->amount.text : "0", cur);
        leaf_num(b, st, "Percent", tx->rate.text);
        struct node *cat = el(b, st, NS_A, "TaxCategory");
        leaf(b, cat, "ID", tx->category);
        if (tx->category && strcmp(tx->category, "E") == 0) {
            const char *why = my_ext_line_string(m, i, "exemption_reason");
            leaf(b, cat, "TaxExemptionReason", why ? why : tx->exemption_reason);
        }
        struct node *sc = el(b, cat, NS_A, "TaxScheme");
        struct node *id = leaf(b, sc, "ID", "OTH");
        attr(id, "schemeID", "UN/ECE 5153");
        attr(id, "schemeAgencyID", "6");
    }
}

/* Invoice TaxTotal: the line taxes grouped by tax type, in order of first appearance. */
static void invoice_taxes(struct b *b, struct node *root, const struct ewtp_invoice *inv,
                          const char *cur)
{
    struct node *tt = el(b, root, NS_A, "TaxTotal");
    amount(b, tt, "TaxAmount", inv->totals->tax.text, cur);
    const char *cats[16];
    size_t n_cats = 0;
    for (size_t i = 0; i < inv->n_lines; i++)
        for (size_t t = 0; t < inv->lines[i]->n_taxes; t++) {
            const char *cat = inv->lines[i]->taxes[t]->category;
            bool seen = cat == NULL;
            for (size_t k = 0; k < n_cats && !seen; k++)
                seen = strcmp(cats[k], cat) == 0;
            if (!seen && n_cats < 16)
                cats[n_cats++] = cat;
        }
    for (size_t k = 0; k < n_cats; k++) {
        struct ewtp_dec taxable = ewtp_dec_from_int(0), tax = ewtp_dec_from_int(0);
        for (size_t i = 0; i < inv->n_lines; i++) {
            bool counted = false;
            for (size_t t = 0; t < inv->lines[i]->n_taxes; t++) {
                const struct ewtp_tax *tx = inv->lines[i]->taxes[t];
                if (tx->category == NULL || strcmp(tx->category, cats[k]) != 0)
                    continue;
                ewtp_dec_add(tax, tx->amount.value, &tax);
                if (!counted)
                    ewtp_dec_add(taxable, inv->lines[i]->amount.value, &taxable);
                counted = true;
            }
        }
        struct node *st = el(b, tt, NS_A, "TaxSubtotal");
        amount(b, st, "TaxableAmount", dec_text(b, taxable, 2), cur);
        amount(b, st, "TaxAmount", dec_text(b, tax, 2), cur);
        struct node *cat = el(b, st, NS_A, "TaxCategory");
        leaf(b, cat, "ID", cats[k]);
        struct node *sc = el(b, cat, NS_A, "TaxScheme");
        struct node *id = leaf(b, sc, "ID", "OTH");
        attr(id, "schemeID", "UN/ECE 5153");
        attr(id, "schemeAgencyID", "6");
    }
}

/* ---- the document ---- */

static void doc_ref(struct b *b, struct node *root, const char *id, const char *type,
                    const char *desc)
{
    if (id == NULL)
        return;
    struct node *r = el(b, root, NS_A, "AdditionalDocumentReference");
    leaf(b, r, "ID", id);
    leaf(b, r, "DocumentType", type);
    leaf(b, r, "DocumentDescription", desc);
}

static struct node *build_tree(const struct my_state *st, const struct ewtp_call *c, struct b *b)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    const char *cur = inv->currency ? inv->currency : "MYR";
    struct node *root = el(b, NULL, NS_NONE, "Invoice");
    leaf(b, root, "ID", inv->number);
    int64_t ms = 0;
    ewtp_time_parse(inv->issued_at, &ms);
    char t[40];
    ewtp_time_format(ms - ms % 1000, 0, t, sizeof(t)); /* "2026-11-22T10:00:00Z" */
    leaf(b, root, "IssueDate", ewtp_arena_strndup(b->a, t, 10));
    leaf(b, root, "IssueTime", ewtp_arena_strdup(b->a, t + 11));
    struct node *tc = leaf(b, root, "InvoiceTypeCode", my_type_code(m));
    attr(tc, "listVersionID", st->version);
    leaf(b, root, "Note", inv->reason ? inv->reason : inv->note);
    leaf(b, root, "DocumentCurrencyCode", cur);
    leaf(b, root, "TaxCurrencyCode", "MYR");
    if (inv->billing_period) {
        struct node *p = el(b, root, NS_A, "InvoicePeriod");
        leaf(b, p, "StartDate", inv->billing_period->start);
        leaf(b, p, "EndDate", inv->billing_period->end);
        leaf(b, p, "Description", my_ext_string(m, "billing_frequency"));
    }
    if (inv->original_invoice) {
        struct node *br = el(b, root, NS_A, "BillingReference");
        struct node *r = el(b, br, NS_A, "InvoiceDocumentReference");
        leaf(b, r, "ID", inv->original_invoice);
        const char *uuid = my_original_uuid(c);
        leaf(b, r, "UUID", uuid ? uuid : "NA");
    }
    doc_ref(b, root, my_ext_string(m, "customs_import_form"), "CustomsImportForm", NULL);
    doc_ref(b, root, my_ext_string(m, "free_trade_agreement"), "FreeTradeAgreement", NULL);
    doc_ref(b, root, my_ext_string(m, "customs_export_form"), "K2", NULL);
    doc_ref(b, root, my_ext_string(m, "incoterms"), NULL, NULL);
    struct node *sig = el(b, root, NS_A, "Signature");
    if (sig) {
        sig->sig_marker = true;
        leaf(b, sig, "ID", "urn:oasis:names:specification:ubl:signature:Invoice");
        leaf(b, sig, "SignatureMethod", "urn:oasis:names:specification:ubl:dsig:enveloped:xades");
    }
    const char *msic = my_ext_string(m, "msic_code");
    const char *activity = my_ext_string(m, "business_activity");
    if (msic == NULL) {
        msic = st->msic_code;
        if (activity == NULL)
            activity = st->business_activity;
    }
    if (msic && activity == NULL) {
        const char *name = ewtp_code_table_get(&my_codes_msic, msic, 1);
        activity = name ? name : "NA";
    }
    party(b, root, "AccountingSupplierParty", m->parties[EWTP_ROLE_SELLER], msic, activity,
          my_ext_string(m, "certified_exporter"));
    party(b, root, "AccountingCustomerParty", m->parties[EWTP_ROLE_BUYER], NULL, NULL, NULL);
    const struct ewtp_party *cons = m->parties[EWTP_ROLE_CONSIGNEE];
    if (cons) {
        struct node *d = el(b, root, NS_A, "Delivery");
        struct node *dp = el(b, d, NS_A, "DeliveryParty");
        const char *tin = ewtp_party_id(cons, "TIN");
        if (tin)
            party_id(b, dp, "TIN", tin);
        const char *scheme, *value;
        registration(cons, &scheme, &value);
        party_id(b, dp, scheme, value);
        if (cons->address)
            address(b, dp, cons->address, cons->country);
        struct node *le = el(b, dp, NS_A, "PartyLegalEntity");
        leaf(b, le, "RegistrationName", cons->name);
    }
    if (inv->payment_means) {
        struct node *pm = el(b, root, NS_A, "PaymentMeans");
        leaf(b, pm, "PaymentMeansCode", my_payment_code(inv->payment_means->code));
        if (inv->payment_means->account) {
            struct node *acc = el(b, pm, NS_A, "PayeeFinancialAccount");
            leaf(b, acc, "ID", inv->payment_means->account);
        }
    }
    if (strcmp(cur, "MYR") != 0) {
        struct node *x = el(b, root, NS_A, "TaxExchangeRate");
        leaf(b, x, "SourceCurrencyCode", cur);
        leaf(b, x, "TargetCurrencyCode", "MYR");
        const char *rate =
            inv->exchange_rate.text ? inv->exchange_rate.text : my_ext_string(m, "exchange_rate");
        leaf_num(b, x, "CalculationRate", rate);
    }
    /* Tax amounts of FX documents: in the document currency (UBL) unless fx_tax_in_myr. */
    invoice_taxes(b, root, inv, st->fx_tax_in_myr ? "MYR" : cur);
    struct node *lmt = el(b, root, NS_A, "LegalMonetaryTotal");
    amount(b, lmt, "LineExtensionAmount", inv->totals->net.text, cur);
    amount(b, lmt, "TaxExclusiveAmount", inv->totals->net.text, cur);
    amount(b, lmt, "TaxInclusiveAmount", inv->totals->gross.text, cur);
    amount(b, lmt, "PayableAmount",
           inv->totals->payable.text ? inv->totals->payable.text : inv->totals->gross.text, cur);
    for (size_t i = 0; i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        struct node *ln = el(b, root, NS_A, "InvoiceLine");
        leaf(b, ln, "ID", ewtp_arena_printf(b->a, "%lld", (long long)l->line));
        struct node *q = leaf_num(b, ln, "InvoicedQuantity", l->quantity.text);
        attr(q, "unitCode", l->unit);
        amount(b, ln, "LineExtensionAmount", l->amount.text, cur);
        if (l->discount.text && !ewtp_dec_is_zero(l->discount.value)) {
            struct node *ac = el(b, ln, NS_A, "AllowanceCharge");
            struct node *ci = leaf(b, ac, "ChargeIndicator", "false");
            (void)ci;
            leaf(b, ac, "AllowanceChargeReason", "Discount");
            amount(b, ac, "Amount", l->discount.text, cur);
        }
        line_taxes(b, ln, m, i, st->fx_tax_in_myr ? "MYR" : cur);
        struct node *it = el(b, ln, NS_A, "Item");
        leaf(b, it, "Description", l->description);
        if (l->origin) {
            struct node *oc = el(b, it, NS_A, "OriginCountry");
            leaf(b, oc, "IdentificationCode", alpha3(l->origin));
        }
        if (l->hs_code) {
            struct node *cc = el(b, it, NS_A, "CommodityClassification");
            struct node *code = leaf(b, cc, "ItemClassificationCode", l->hs_code);
            attr(code, "listID", "PTC");
        }
        const char *cls = my_ext_line_string(m, i, "classification");
        struct node *cc = el(b, it, NS_A, "CommodityClassification");
        struct node *code =
            leaf(b, cc, "ItemClassificationCode", cls ? cls : my_ext_string(m, "classification"));
        attr(code, "listID", "CLASS");
        struct node *pr = el(b, ln, NS_A, "Price");
        amount(b, pr, "PriceAmount", l->unit_price.text ? l->unit_price.text : l->amount.text, cur);
        /* Subtotal = unit price x quantity [MATH]; without a quantity, the amount before the
         * discount. */
        struct ewtp_dec sub = l->amount.value;
        if (l->quantity.text && l->unit_price.text)
            ewtp_dec_mul(l->quantity.value, l->unit_price.value, &sub);
        else if (l->discount.text)
            ewtp_dec_add(l->amount.value, l->discount.value, &sub);
        struct node *pe = el(b, ln, NS_A, "ItemPriceExtension");
        amount(b, pe, "Amount", dec_text(b, sub, 2), cur);
    }
    return b->oom ? NULL : root;
}

/* ---- XML ---- */

static const char *xml_prefix(enum ns ns)
{
    return ns == NS_A ? "cac" : ns == NS_B ? "cbc" : NULL;
}

static void xml_node(struct ewtp_xml_writer *w, const struct node *n)
{
    ewtp_xml_start(w, xml_prefix(n->ns), n->name);
    for (int i = 0; i < n->n_attrs; i++)
        ewtp_xml_attr(w, NULL, n->attrs[i].name, n->attrs[i].value);
    if (n->text)
        ewtp_xml_text(w, n->text);
    for (const struct node *k = n->child; k; k = k->next)
        xml_node(w, k);
    ewtp_xml_end(w);
}

/* ext:UBLExtensions with the XAdES signature, laid out as LHDN's samples (FACTS.md §3.2.7).
 * Its namespaces are declared inside it, never on the root: the document digest is over the
 * root without this element, and inclusive C14N would render root declarations. */
static void xml_signature(struct ewtp_xml_writer *w, const struct my_sig_parts *s)
{
    ewtp_xml_start(w, NULL, "UBLExtensions");
    ewtp_xml_ns(w, NULL, NS_EXT);
    ewtp_xml_start(w, NULL, "UBLExtension");
    ewtp_xml_elem(w, NULL, "ExtensionURI",
                  "urn:oasis:names:specification:ubl:dsig:enveloped:xades");
    ewtp_xml_start(w, NULL, "ExtensionContent");
    ewtp_xml_start(w, "sig", "UBLDocumentSignatures");
    ewtp_xml_ns(w, "sig", NS_SIG);
    ewtp_xml_ns(w, "sac", NS_SAC);
    ewtp_xml_ns(w, "sbc", NS_SBC);
    ewtp_xml_start(w, "sac", "SignatureInformation");
    ewtp_xml_elem(w, "cbc", "ID", "urn:oasis:names:specification:ubl:signature:1");
    ewtp_xml_elem(w, "sbc", "ReferencedSignatureID",
                  "urn:oasis:names:specification:ubl:signature:Invoice");
    ewtp_xml_start(w, "ds", "Signature");
    ewtp_xml_ns(w, "ds", NS_DS);
    ewtp_xml_attr(w, NULL, "Id", "signature");
    ewtp_xml_start(w, "ds", "SignedInfo");
    /* The URIs LHDN's own signed samples carry (FACTS.md §3.2: the digest is nevertheless
     * over inclusive C14N; the validator recomputes it its own way). */
    ewtp_xml_start(w, "ds", "CanonicalizationMethod");
    ewtp_xml_attr(w, NULL, "Algorithm", EXC_C14N);
    ewtp_xml_end(w);
    ewtp_xml_start(w, "ds", "SignatureMethod");
    ewtp_xml_attr(w, NULL, "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    ewtp_xml_end(w);
    ewtp_xml_start(w, "ds", "Reference");
    ewtp_xml_attr(w, NULL, "Id", "id-doc-signed-data");
    ewtp_xml_attr(w, NULL, "URI", "");
    ewtp_xml_start(w, "ds", "Transforms");
    static const char *const xpaths[] = {"not(//ancestor-or-self::ext:UBLExtensions)",
                                         "not(//ancestor-or-self::cac:Signature)"};
    for (size_t i = 0; i < 2; i++) {
        ewtp_xml_start(w, "ds", "Transform");
        ewtp_xml_attr(w, NULL, "Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116");
        ewtp_xml_elem(w, "ds", "XPath", xpaths[i]);
        ewtp_xml_end(w);
    }
    ewtp_xml_start(w, "ds", "Transform");
    ewtp_xml_attr(w, NULL, "Algorithm", EXC_C14N);
    ewtp_xml_end(w);
    ewtp_xml_end(w); /* Transforms */
    ewtp_xml_start(w, "ds", "DigestMethod");
    ewtp_xml_attr(w, NULL, "Algorithm", SHA256_URI);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "ds", "DigestValue", s->doc_digest);
    ewtp_xml_end(w); /* Reference */
    ewtp_xml_start(w, "ds", "Reference");
    ewtp_xml_attr(w, NULL, "Type", "http://www.w3.org/2000/09/xmldsig#SignatureProperties");
    ewtp_xml_attr(w, NULL, "URI", "#id-xades-signed-props");
    ewtp_xml_start(w, "ds", "DigestMethod");
    ewtp_xml_attr(w, NULL, "Algorithm", SHA256_URI);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "ds", "DigestValue", s->props_digest);
    ewtp_xml_end(w); /* Reference */
    ewtp_xml_end(w); /* SignedInfo */
    ewtp_xml_elem(w, "ds", "SignatureValue", s->signature_value);
    ewtp_xml_start(w, "ds", "KeyInfo");
    ewtp_xml_start(w, "ds", "X509Data");
    ewtp_xml_elem(w, "ds", "X509Certificate", s->cert_b64);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    ewtp_xml_start(w, "ds", "Object");
    ewtp_xml_start(w, "xades", "QualifyingProperties");
    ewtp_xml_ns(w, "xades", NS_XADES);
    ewtp_xml_attr(w, NULL, "Target", "signature");
    /* Must parse to exactly what my_xml_signed_props serialised and digested. */
    ewtp_xml_start(w, "xades", "SignedProperties");
    ewtp_xml_attr(w, NULL, "Id", "id-xades-signed-props");
    ewtp_xml_start(w, "xades", "SignedSignatureProperties");
    ewtp_xml_elem(w, "xades", "SigningTime", s->signing_time);
    ewtp_xml_start(w, "xades", "SigningCertificate");
    ewtp_xml_start(w, "xades", "Cert");
    ewtp_xml_start(w, "xades", "CertDigest");
    ewtp_xml_start(w, "ds", "DigestMethod");
    ewtp_xml_attr(w, NULL, "Algorithm", SHA256_URI);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "ds", "DigestValue", s->cert_digest);
    ewtp_xml_end(w); /* CertDigest */
    ewtp_xml_start(w, "xades", "IssuerSerial");
    ewtp_xml_elem(w, "ds", "X509IssuerName", s->issuer_name);
    ewtp_xml_elem(w, "ds", "X509SerialNumber", s->serial);
    /* everything still open closes below */
    for (int i = 0; i < 13; i++)
        ewtp_xml_end(w); /* IssuerSerial .. UBLExtensions */
}

static int write_xml(const struct node *root, const struct my_sig_parts *sig, bool body_only,
                     struct ewtp_arena *a, const char **out, size_t *len)
{
    /* No indentation: whitespace-only text would be dropped by LHDN's transform anyway, and
     * compact documents keep under the 300 KB limit longer. */
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(body_only ? EWTP_XML_NO_DECL : 0);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_xml_start(w, NULL, root->name);
    ewtp_xml_ns(w, NULL, NS_INVOICE);
    ewtp_xml_ns(w, "cac", NS_CAC);
    ewtp_xml_ns(w, "cbc", NS_CBC);
    if (sig && !body_only)
        xml_signature(w, sig);
    for (const struct node *k = root->child; k; k = k->next)
        if (!(body_only && k->sig_marker))
            xml_node(w, k);
    ewtp_xml_end(w);
    int rc = ewtp_xml_writer_finish(w, a, out, len);
    ewtp_xml_writer_free(w);
    return rc;
}

/* ---- UBL JSON ---- */

static void json_value(struct ewtp_jsonw *w, const struct node *n);

/* Members of an aggregate: consecutive siblings with one name share one array. */
static void json_members(struct ewtp_jsonw *w, const struct node *first, bool skip_marker)
{
    for (const struct node *k = first; k;) {
        if (skip_marker && k->sig_marker) {
            k = k->next;
            continue;
        }
        ewtp_jsonw_key(w, k->name);
        ewtp_jsonw_array_begin(w);
        const struct node *j = k;
        for (; j && strcmp(j->name, k->name) == 0; j = j->next)
            json_value(w, j);
        ewtp_jsonw_array_end(w);
        k = j;
    }
}

static void json_value(struct ewtp_jsonw *w, const struct node *n)
{
    ewtp_jsonw_object_begin(w);
    if (n->text) {
        ewtp_jsonw_key(w, "_");
        if (n->vt == VT_NUM)
            ewtp_jsonw_decimal(w, n->text);
        else if (strcmp(n->name, "ChargeIndicator") == 0)
            ewtp_jsonw_bool(w, strcmp(n->text, "true") == 0);
        else
            ewtp_jsonw_string(w, n->text);
        for (int i = 0; i < n->n_attrs; i++)
            ewtp_jsonw_kv_string(w, n->attrs[i].name, n->attrs[i].value);
    } else {
        json_members(w, n->child, false);
    }
    ewtp_jsonw_object_end(w);
}

/* {"_":"text"} and {"_":"","Algorithm":uri} as the official JSON samples write leaves. */
static void jleaf(struct ewtp_jsonw *w, const char *key, const char *text)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "_", text);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
}

static void jalg(struct ewtp_jsonw *w, const char *key, const char *uri)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "_", "");
    ewtp_jsonw_kv_string(w, "Algorithm", uri);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
}

static void jopen(struct ewtp_jsonw *w, const char *key)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
}

static void jclose(struct ewtp_jsonw *w)
{
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
}

static void json_signature(struct ewtp_jsonw *w, const struct my_sig_parts *s)
{
    jopen(w, "UBLExtensions");
    jopen(w, "UBLExtension");
    jleaf(w, "ExtensionURI", "urn:oasis:names:specification:ubl:dsig:enveloped:xades");
    jopen(w, "ExtensionContent");
    jopen(w, "UBLDocumentSignatures");
    jopen(w, "SignatureInformation");
    jleaf(w, "ID", "urn:oasis:names:specification:ubl:signature:1");
    jleaf(w, "ReferencedSignatureID", "urn:oasis:names:specification:ubl:signature:Invoice");
    jopen(w, "Signature");
    ewtp_jsonw_kv_string(w, "Id", "signature");
    jopen(w, "Object");
    ewtp_jsonw_key(w, "QualifyingProperties");
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_raw(w, s->props_json); /* byte for byte what was digested */
    ewtp_jsonw_array_end(w);
    jclose(w); /* Object */
    jopen(w, "KeyInfo");
    jopen(w, "X509Data");
    jleaf(w, "X509Certificate", s->cert_b64);
    jleaf(w, "X509SubjectName", s->subject_name);
    jopen(w, "X509IssuerSerial");
    jleaf(w, "X509IssuerName", s->issuer_name);
    jleaf(w, "X509SerialNumber", s->serial);
    jclose(w);
    jclose(w); /* X509Data */
    jclose(w); /* KeyInfo */
    jleaf(w, "SignatureValue", s->signature_value);
    jopen(w, "SignedInfo");
    jalg(w, "SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    ewtp_jsonw_key(w, "Reference");
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "Type", "http://uri.etsi.org/01903/v1.3.2#SignedProperties");
    ewtp_jsonw_kv_string(w, "URI", "#id-xades-signed-props");
    jalg(w, "DigestMethod", SHA256_URI);
    jleaf(w, "DigestValue", s->props_digest);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "Type", "");
    ewtp_jsonw_kv_string(w, "URI", "");
    jalg(w, "DigestMethod", SHA256_URI);
    jleaf(w, "DigestValue", s->doc_digest);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
    jclose(w); /* SignedInfo */
    jclose(w); /* Signature */
    jclose(w); /* SignatureInformation */
    jclose(w); /* UBLDocumentSignatures */
    jclose(w); /* ExtensionContent */
    jclose(w); /* UBLExtension */
    jclose(w); /* UBLExtensions */
}

static int write_json(const struct node *root, const struct my_sig_parts *sig, bool body_only,
                      struct ewtp_arena *a, const char **out, size_t *len)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "_D", NS_INVOICE);
    ewtp_jsonw_kv_string(w, "_A", NS_CAC);
    ewtp_jsonw_kv_string(w, "_B", NS_CBC);
    ewtp_jsonw_key(w, "Invoice");
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    json_members(w, root->child, true);
    if (!body_only) {
        /* The official PowerShell appends both at the end of Invoice[0]. */
        if (sig)
            json_signature(w, sig);
        for (const struct node *k = root->child; k; k = k->next)
            if (k->sig_marker) {
                ewtp_jsonw_key(w, "Signature");
                ewtp_jsonw_array_begin(w);
                json_value(w, k);
                ewtp_jsonw_array_end(w);
            }
    }
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    return ewtp_jsonw_finish(w, out, len);
}

int my_ubl_build(const struct my_state *st, const struct ewtp_call *c, enum my_format fmt,
                 const struct my_sig_parts *sig, bool body_only, const char **out, size_t *len)
{
    if (c->msg->invoice == NULL)
        return -EWTP_EINVAL;
    struct b b = {.a = c->arena};
    struct node *root = build_tree(st, c, &b);
    if (root == NULL)
        return -EWTP_ENOMEM;
    return fmt == MY_FMT_JSON ? write_json(root, sig, body_only, c->arena, out, len)
                              : write_xml(root, sig, body_only, c->arena, out, len);
}
