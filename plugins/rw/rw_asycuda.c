/* Rwanda customs: declarations as ASYCUDA World XML (the "XML SAD" the ASYCUDA client imports),
 * written to the spool for the declarant's ASYCUDA client / single-window agent, and the
 * declaration read back with its registration, assessment and receipt blocks filled.
 *
 * Element names and order: ../shared/reference/rw/asycuda/asycuda421-autobot.xsd, the only
 * public schema, with FACTS.md A.4's rules so that the output validates: no Assessment_notice
 * or Global_taxes (customs fills them), Quota and no Quota_code, Item/IncoTerms always before
 * Tarification, the supplier block named Supplier_documents. An absent code is written as
 * ASYCUDA's <null/> marker where the schema allows it, as real exports do. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "rw.h"

/* ---- validate ------------------------------------------------------------------------------ */

static bool digits(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The importer (else the consignee) of an import, the exporter (else the seller) of an
 * export: the Rwandan trader whose TIN ASYCUDA needs. */
static const struct ewtp_party *rw_trader(const struct ewtp_message *m, enum ewtp_role *role)
{
    enum ewtp_role first =
        m->direction == EWTP_DIR_EXPORT ? EWTP_ROLE_EXPORTER : EWTP_ROLE_IMPORTER;
    enum ewtp_role second =
        m->direction == EWTP_DIR_EXPORT ? EWTP_ROLE_SELLER : EWTP_ROLE_CONSIGNEE;
    const struct ewtp_party *p = ewtp_message_party(m, first);
    *role = first;
    if (p == NULL) {
        p = ewtp_message_party(m, second);
        *role = second;
    }
    return p;
}

/* The foreign partner: the exporter (else seller) of an import, the consignee (else buyer)
 * of an export. */
static const struct ewtp_party *foreign_party(const struct ewtp_message *m)
{
    if (m->direction == EWTP_DIR_EXPORT) {
        const struct ewtp_party *p = ewtp_message_party(m, EWTP_ROLE_CONSIGNEE);
        return p ? p : ewtp_message_party(m, EWTP_ROLE_BUYER);
    }
    const struct ewtp_party *p = ewtp_message_party(m, EWTP_ROLE_EXPORTER);
    return p ? p : ewtp_message_party(m, EWTP_ROLE_SELLER);
}

static const char *declarant_code(const struct ewtp_party *p)
{
    const char *v = ewtp_party_id(p, "RW-AGENT");
    return v ? v : ewtp_party_id(p, "TIN");
}

/* UN/EDIFACT 1001 code of a common document type, NULL when unknown. */
static const char *doc_code(const char *type)
{
    static const char *const map[][2] = {
        {"invoice", "380"},
        {"commercial_invoice", "380"},
        {"bill_of_lading", "705"},
        {"air_waybill", "740"},
        {"road_consignment", "730"},
        {"packing_list", "271"},
        {"certificate_of_origin", "861"},
        {"permit", "911"},
        {"licence", "911"},
        {"license", "911"},
        {"phytosanitary_certificate", "851"},
        {"insurance_certificate", "520"},
    };
    if (type == NULL)
        return NULL;
    if (digits(type, 3, 3))
        return type;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], type) == 0)
            return map[i][1];
    return NULL;
}

void rw_decl_validate(const struct rw_state *st, const struct ewtp_call *c,
                      struct ewtp_errors *errs)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_declaration *d = m->declaration;
    if (d == NULL)
        return;
    if (d->type == EWTP_DECL_LOW_VALUE) {
        ewtp_errors_add(errs, "/declaration/type", "unsupported",
                        "Rwanda has no low-value (de minimis) declaration in the public "
                        "references: declare the goods with type \"standard\"");
        return;
    }
    if (d->customs_office == NULL && st->office == NULL)
        ewtp_errors_add(errs, "/declaration/customs_office", "required",
                        "ASYCUDA needs the customs office of clearance (or the instance "
                        "setting office)");
    else if (d->customs_office && strlen(d->customs_office) > 10)
        ewtp_errors_add(errs, "/declaration/customs_office", "format",
                        "an ASYCUDA office code has at most 10 characters");
    if (d->currency == NULL)
        ewtp_errors_add(errs, "/declaration/currency", "required",
                        "ASYCUDA values the goods in the invoice currency: give it");
    if (d->invoice_value.text == NULL)
        ewtp_errors_add(errs, "/declaration/invoice_value", "required",
                        "ASYCUDA needs the invoice value (Valuation/Gs_Invoice)");
    enum ewtp_role role;
    const struct ewtp_party *trader = rw_trader(m, &role);
    if (trader == NULL) {
        ewtp_errors_add(errs,
                        m->direction == EWTP_DIR_EXPORT ? "/parties/exporter" : "/parties/importer",
                        "required",
                        "ASYCUDA needs the Rwandan trader (importer or consignee of an import, "
                        "exporter or seller of an export)");
    } else if (!digits(ewtp_party_id(trader, "TIN"), 9, 9)) {
        ewtp_errors_add(errs, rw_ptr(c->arena, "/parties/%s/ids", ewtp_role_name(role)), "required",
                        "the Rwandan trader needs its 9-digit TIN (scheme TIN)");
    }
    const struct ewtp_party *decl = ewtp_message_party(m, EWTP_ROLE_DECLARANT);
    if (decl == NULL)
        ewtp_errors_add(errs, "/parties/declarant", "required",
                        "an ASYCUDA declaration is lodged by a licensed customs agent: give "
                        "the declarant");
    else if (declarant_code(decl) == NULL)
        ewtp_errors_add(errs, "/parties/declarant/ids", "required",
                        "the declarant needs its agent code (scheme RW-AGENT) or TIN");
    for (size_t i = 0; i < d->n_lines; i++) {
        const struct ewtp_line *l = d->lines[i];
        if (l->hs_code && strlen(l->hs_code) < 8)
            ewtp_errors_add(errs, rw_ptr(c->arena, "/declaration/lines/%zu/hs_code", i), "format",
                            "Rwanda applies the EAC Common External Tariff: give the 8-digit "
                            "tariff line (and up to 2 national digits)");
        if (l->packages && l->packages->kind && !ewtp_code_package_kind(l->packages->kind))
            ewtp_errors_add(errs, rw_ptr(c->arena, "/declaration/lines/%zu/packages/kind", i),
                            "format", "\"%s\" is not a UN/ECE Rec. 21 kind of package",
                            l->packages->kind);
        if (l->procedure && !digits(l->procedure, 4, 4) && !digits(l->procedure, 7, 7))
            ewtp_errors_add(errs, rw_ptr(c->arena, "/declaration/lines/%zu/procedure", i), "format",
                            "an ASYCUDA procedure is a 4-digit CPC (4000), optionally followed "
                            "by the 3-digit national procedure (4000000)");
    }
    for (size_t i = 0; i < d->n_documents; i++)
        if (doc_code(d->documents[i]->type) == NULL)
            ewtp_errors_add(errs, rw_ptr(c->arena, "/declaration/documents/%zu/type", i), "format",
                            "\"%s\" has no ASYCUDA attached-document code: use invoice, "
                            "bill_of_lading, air_waybill, road_consignment, packing_list, "
                            "certificate_of_origin, permit, licence, or the 3-digit UN/EDIFACT "
                            "1001 code",
                            d->documents[i]->type ? d->documents[i]->type : "");
}

/* ---- the document -------------------------------------------------------------------------- */

/* <name>text</name>, or <name><null/></name> when text is NULL (ASYCUDA's null marker). */
static void code(struct ewtp_xml_writer *w, const char *name, const char *text)
{
    if (text) {
        ewtp_xml_elem(w, NULL, name, text);
        return;
    }
    ewtp_xml_start(w, NULL, name);
    ewtp_xml_start(w, NULL, "null");
    ewtp_xml_end(w);
    ewtp_xml_end(w);
}

static void open(struct ewtp_xml_writer *w, const char *name)
{
    ewtp_xml_start(w, NULL, name);
}

static void close_(struct ewtp_xml_writer *w)
{
    ewtp_xml_end(w);
}

/* "2026-11-22..." -> "22/11/2026" (ASYCUDA's dates); NULL stays NULL. */
static const char *asy_date(struct ewtp_arena *a, const char *iso)
{
    if (iso == NULL || strlen(iso) < 10)
        return NULL;
    return ewtp_arena_printf(a, "%.2s/%.2s/%.4s", iso + 8, iso + 5, iso);
}

static const char *party_name(struct ewtp_arena *a, const struct ewtp_party *p)
{
    if (p == NULL)
        return NULL;
    const struct ewtp_address *ad = p->address;
    if (ad == NULL || ad->n_lines == 0)
        return p->name;
    /* ASYCUDA keeps name and address in one text, a line each. */
    char *s = ewtp_arena_strdup(a, p->name);
    for (size_t i = 0; s && i < ad->n_lines; i++)
        s = ewtp_arena_printf(a, "%s\n%s", s, ad->lines[i]);
    if (s && ad->city)
        s = ewtp_arena_printf(a, "%s\n%s", s, ad->city);
    return s;
}

/* An amount block (Gs_Invoice, Item_Invoice ...): foreign amount, currency, and the national
 * amount and rate only when the message gives a rate (customs applies its own otherwise). */
static void amount_block(struct ewtp_xml_writer *w, struct ewtp_arena *a, const char *name,
                         const struct ewtp_num *v, const struct ewtp_declaration *d)
{
    open(w, name);
    struct ewtp_dec nat;
    if (d->exchange_rate.text && ewtp_dec_mul(v->value, d->exchange_rate.value, &nat) == 0)
        ewtp_xml_elem_dec_places(w, NULL, "Amount_national_currency", &nat, 2);
    else
        ewtp_xml_elem(w, NULL, "Amount_national_currency", "");
    ewtp_xml_elem(w, NULL, "Amount_foreign_currency", v->text);
    code(w, "Currency_code", d->currency);
    code(w, "Currency_name", NULL);
    ewtp_xml_elem(w, NULL, "Currency_rate", d->exchange_rate.text ? d->exchange_rate.text : "");
    close_(w);
    (void)a;
}

static void attached(struct ewtp_xml_writer *w, struct ewtp_arena *a, const char *code_,
                     const char *reference, const char *date)
{
    open(w, "Attached_documents");
    code(w, "Attached_document_code", code_);
    code(w, "Attached_document_name", NULL);
    code(w, "Attached_document_reference", reference);
    code(w, "Attached_document_from_rule", "1");
    ewtp_xml_elem(w, NULL, "Attached_document_date", date ? asy_date(a, date) : "");
    close_(w);
}

static int64_t total_packages(const struct ewtp_message *m)
{
    const struct ewtp_declaration *d = m->declaration;
    if (d->has_packages)
        return d->packages;
    int64_t n = 0;
    for (size_t i = 0; i < d->n_lines; i++) {
        int64_t k = 0;
        if (d->lines[i]->packages && d->lines[i]->packages->has_count)
            k = d->lines[i]->packages->count;
        else
            ewtp_json_int(ewtp_json_get(rw_ext_line(m, i), "packages"), &k);
        n += k;
    }
    return n;
}

static void item(struct ewtp_xml_writer *w, struct ewtp_arena *a, const struct rw_state *st,
                 const struct ewtp_message *m, size_t i)
{
    const struct ewtp_declaration *d = m->declaration;
    const struct ewtp_line *l = d->lines[i];
    const struct ewtp_json *ext = rw_ext(m), *xl = rw_ext_line(m, i);
    open(w, "Item");
    /* Documents of the whole declaration go on every item, as ASYCUDA attaches them per item;
     * ext.rw.attached_documents with a line only on that one. */
    if (d->invoice_number)
        attached(w, a, "380", d->invoice_number, d->invoice_date);
    for (size_t k = 0; k < d->n_documents; k++)
        attached(w, a, doc_code(d->documents[k]->type), d->documents[k]->number,
                 d->documents[k]->date);
    const struct ewtp_json *docs = ewtp_json_get(ext, "attached_documents");
    for (size_t k = 0; k < ewtp_json_size(docs); k++) {
        const struct ewtp_json *doc = ewtp_json_index(docs, k);
        int64_t line = 0;
        if (ewtp_json_int(ewtp_json_get(doc, "line"), &line) && line != (int64_t)i + 1)
            continue;
        attached(w, a, ewtp_json_get_string(doc, "code"), ewtp_json_get_string(doc, "reference"),
                 ewtp_json_get_string(doc, "date"));
    }
    /* Packages: the common model's line packages, else ext.rw.lines[n]. */
    int64_t npk = 0;
    const char *kind = NULL, *marks = NULL;
    bool has_npk = false;
    if (l->packages) {
        has_npk = l->packages->has_count;
        npk = l->packages->count;
        kind = l->packages->kind;
        marks = l->packages->marks;
    }
    if (!has_npk)
        has_npk = ewtp_json_int(ewtp_json_get(xl, "packages"), &npk);
    if (kind == NULL)
        kind = ewtp_json_get_string(xl, "package_kind");
    if (marks == NULL)
        marks = ewtp_json_get_string(xl, "marks");
    open(w, "Packages");
    if (has_npk)
        ewtp_xml_elem_int(w, NULL, "Number_of_packages", npk);
    else
        ewtp_xml_elem(w, NULL, "Number_of_packages", "");
    code(w, "Marks1_of_packages", marks);
    code(w, "Marks2_of_packages", NULL);
    code(w, "Kind_of_packages_code", kind);
    code(w, "Kind_of_packages_name", kind ? ewtp_code_package_kind_name(kind) : NULL);
    close_(w);
    open(w, "IncoTerms");
    code(w, "Code", d->incoterm);
    code(w, "Place", ewtp_json_get_string(ext, "incoterm_place"));
    close_(w);
    /* Tarification: CPC from the line's procedure (4 or 4+3 digits), else ext.rw, else the
     * instance's default for the direction. */
    const char *cpc = NULL, *nat = NULL;
    if (l->procedure) {
        cpc = ewtp_arena_strndup(a, l->procedure, 4);
        if (strlen(l->procedure) == 7)
            nat = l->procedure + 4;
    }
    if (cpc == NULL)
        cpc = ewtp_json_get_string(xl, "cpc");
    if (cpc == NULL)
        cpc = ewtp_json_get_string(ext, "cpc");
    if (cpc == NULL)
        cpc = m->direction == EWTP_DIR_EXPORT ? st->cpc_export : st->cpc_import;
    if (nat == NULL)
        nat = ewtp_json_get_string(xl, "national_procedure");
    if (nat == NULL)
        nat = ewtp_json_get_string(ext, "national_procedure");
    if (nat == NULL)
        nat = st->national_procedure;
    const char *pref = l->preference ? l->preference : ewtp_json_get_string(xl, "preference_code");
    open(w, "Tarification");
    open(w, "HScode");
    const char *hs = l->hs_code ? l->hs_code : "";
    ewtp_xml_elem(w, NULL, "Commodity_code", ewtp_arena_strndup(a, hs, 8));
    code(w, "Precision_1", strlen(hs) > 8 ? hs + 8 : "000");
    code(w, "Precision_2", NULL);
    code(w, "Precision_3", NULL);
    code(w, "Precision_4", NULL);
    close_(w);
    code(w, "Preference_code", pref);
    code(w, "Extended_customs_procedure", cpc);
    code(w, "National_customs_procedure", nat);
    open(w, "Quota");
    code(w, "QuotaCode", NULL);
    close_(w);
    open(w, "Supplementary_unit");
    ewtp_xml_elem(w, NULL, "Supplementary_unit_rank", "1");
    code(w, "Suppplementary_unit_code", l->supplementary_unit ? l->supplementary_unit : l->unit);
    code(w, "Suppplementary_unit_name",
         ewtp_code_unit_name(l->supplementary_unit ? l->supplementary_unit : l->unit));
    ewtp_xml_elem(w, NULL, "Suppplementary_unit_quantity",
                  l->supplementary_quantity.text ? l->supplementary_quantity.text
                                                 : l->quantity.text);
    close_(w);
    ewtp_xml_elem(w, NULL, "Item_price", l->amount.text);
    code(w, "Valuation_method_code", NULL);
    code(w, "Value_item", NULL);
    code(w, "Attached_doc_item", NULL);
    code(w, "A.I._code", NULL);
    close_(w);
    open(w, "Goods_description");
    code(w, "Country_of_origin_code", l->origin);
    code(w, "Country_of_origin_region", NULL);
    code(w, "Description_of_goods", NULL); /* the tariff text: customs fills it */
    code(w, "Commercial_Description", l->description);
    close_(w);
    open(w, "Previous_doc");
    code(w, "Summary_declaration", d->waybill_number);
    code(w, "Summary_declaration_sl", NULL);
    code(w, "Previous_document_reference", NULL);
    code(w, "Previous_warehouse_code", NULL);
    close_(w);
    code(w, "Licence_number", NULL);
    code(w, "Free_text_1", l->sku);
    code(w, "Free_text_2", NULL);
    open(w, "Valuation_item");
    open(w, "Weight_itm");
    ewtp_xml_elem(w, NULL, "Gross_weight_itm",
                  l->gross_weight_kg.text ? l->gross_weight_kg.text : "");
    ewtp_xml_elem(w, NULL, "Net_weight_itm", l->net_weight_kg.text ? l->net_weight_kg.text : "");
    close_(w);
    amount_block(w, a, "Item_Invoice", &l->amount, d);
    close_(w);
    close_(w); /* Item */
}

int rw_asycuda_write(const struct rw_state *st, const struct ewtp_message *m, struct ewtp_arena *a,
                     const char **xml, size_t *len)
{
    const struct ewtp_declaration *d = m->declaration;
    const struct ewtp_json *ext = rw_ext(m);
    bool exp = m->direction == EWTP_DIR_EXPORT;
    enum ewtp_role role;
    const struct ewtp_party *trader = rw_trader(m, &role);
    const struct ewtp_party *partner = foreign_party(m);
    const struct ewtp_party *declarant = ewtp_message_party(m, EWTP_ROLE_DECLARANT);
    const struct ewtp_transport *tr = d->transport;
    const char *day = m->created_at ? m->created_at : "";
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (w == NULL)
        return -EWTP_ENOMEM;
    open(w, "ASYCUDA");

    open(w, "Property");
    ewtp_xml_elem(w, NULL, "Sad_flow", exp ? "E" : "I");
    open(w, "Forms");
    ewtp_xml_elem(w, NULL, "Number_of_the_form", "1");
    /* One SAD page holds the first item, each continuation page three more. */
    ewtp_xml_elem_int(w, NULL, "Total_number_of_forms", 1 + ((int64_t)d->n_lines + 1) / 3);
    close_(w);
    open(w, "Nbers");
    ewtp_xml_elem_int(w, NULL, "Total_number_of_items", (int64_t)d->n_lines);
    ewtp_xml_elem_int(w, NULL, "Total_number_of_packages", total_packages(m));
    close_(w);
    code(w, "Place_of_declaration", NULL);
    ewtp_xml_elem(w, NULL, "Date_of_declaration", asy_date(a, day));
    ewtp_xml_elem(w, NULL, "Selected_page", "1");
    close_(w);

    const char *office = d->customs_office ? d->customs_office : st->office;
    open(w, "Identification");
    open(w, "Office_segment");
    code(w, "Customs_clearance_office_code", office);
    const char *office_name = ewtp_json_get_string(ext, "customs_office_name");
    if (office_name == NULL && st->office && office && strcmp(office, st->office) == 0)
        office_name = st->office_name;
    code(w, "Customs_Clearance_office_name", office_name);
    close_(w);
    open(w, "Type");
    ewtp_xml_elem(w, NULL, "Type_of_declaration", exp ? "EX" : "IM");
    const char *gen = ewtp_json_get_string(ext, "general_procedure_code");
    ewtp_xml_elem(w, NULL, "Declaration_gen_procedure_code", gen ? gen : st->gen_procedure);
    code(w, "Type_of_transit_document", NULL);
    close_(w);
    code(w, "Manifest_reference_number", ewtp_json_get_string(ext, "manifest_reference"));
    /* Assigned by customs: sent empty. */
    static const char *const assigned[] = {"Registration", "Assessment", "receipt"};
    for (size_t i = 0; i < 3; i++) {
        open(w, assigned[i]);
        code(w, "Serial_number", NULL);
        ewtp_xml_elem(w, NULL, "Number", "");
        ewtp_xml_elem(w, NULL, "Date", "");
        close_(w);
    }
    close_(w);

    const struct ewtp_party *exporter = exp ? trader : partner;
    const struct ewtp_party *consignee = exp ? partner : trader;
    open(w, "Traders");
    open(w, "Exporter");
    code(w, "Exporter_code", exporter ? ewtp_party_id(exporter, "TIN") : NULL);
    code(w, "Exporter_name", party_name(a, exporter));
    close_(w);
    open(w, "Consignee");
    code(w, "Consignee_code", consignee ? ewtp_party_id(consignee, "TIN") : NULL);
    code(w, "Consignee_name", party_name(a, consignee));
    close_(w);
    open(w, "Financial");
    const char *fin = ewtp_json_get_string(ext, "financial_party_tin");
    code(w, "Financial_code", fin ? fin : (trader ? ewtp_party_id(trader, "TIN") : NULL));
    code(w, "Financial_name", fin ? NULL : (trader ? trader->name : NULL));
    close_(w);
    close_(w);

    open(w, "Declarant");
    code(w, "Declarant_code", declarant ? declarant_code(declarant) : NULL);
    code(w, "Declarant_name", party_name(a, declarant));
    code(w, "Declarant_representative", NULL);
    open(w, "Reference");
    ewtp_xml_elem(w, NULL, "Year", ewtp_arena_strndup(a, day, 4));
    /* Our idempotency key: customs echoes it, and its answers are correlated by it. */
    ewtp_xml_elem(w, NULL, "Number", m->id);
    close_(w);
    close_(w);

    const char *dep = tr && tr->departure ? tr->departure->country : NULL;
    const char *arr = tr && tr->arrival ? tr->arrival->country : NULL;
    const char *export_country = exp ? "RW" : dep;
    const char *dest_country = exp ? arr : "RW";
    const char *trading = partner && partner->country ? partner->country : NULL;
    open(w, "General_information");
    open(w, "Country");
    code(w, "Country_first_destination", exp ? arr : NULL);
    code(w, "Trading_country", trading);
    open(w, "Export");
    code(w, "Export_country_code", export_country);
    code(w, "Export_country_name", export_country ? ewtp_code_country_name(export_country) : NULL);
    code(w, "Export_country_region", NULL);
    close_(w);
    open(w, "Destination");
    code(w, "Destination_country_code", dest_country);
    code(w, "Destination_country_name", dest_country ? ewtp_code_country_name(dest_country) : NULL);
    code(w, "Destination_country_region", NULL);
    close_(w);
    /* One origin for the whole declaration only when every line has it. */
    const char *origin = d->n_lines ? d->lines[0]->origin : NULL;
    for (size_t i = 1; origin && i < d->n_lines; i++)
        if (d->lines[i]->origin == NULL || strcmp(d->lines[i]->origin, origin) != 0)
            origin = NULL;
    ewtp_xml_elem(w, NULL, "Country_of_origin_name",
                  origin ? ewtp_code_country_name(origin) : "Many");
    close_(w);
    ewtp_xml_elem(w, NULL, "Value_details", d->invoice_value.text ? d->invoice_value.text : "");
    code(w, "CAP", NULL);
    code(w, "Additional_information", NULL);
    code(w, "Comments_free_text", NULL);
    close_(w);

    const char *nationality = ewtp_json_get_string(ext, "means_nationality");
    open(w, "Transport");
    open(w, "Means_of_transport");
    open(w, "Departure_arrival_information");
    code(w, "Identity", tr ? tr->means_id : NULL);
    code(w, "Nationality", nationality);
    close_(w);
    open(w, "Border_information");
    code(w, "Identity", tr ? tr->means_id : NULL);
    code(w, "Nationality", nationality);
    code(w, "Mode", tr ? tr->mode : NULL);
    close_(w);
    code(w, "Inland_mode_of_transport", NULL);
    close_(w);
    ewtp_xml_elem(w, NULL, "Container_flag", "false");
    open(w, "Delivery_terms");
    code(w, "Code", d->incoterm);
    code(w, "Place", ewtp_json_get_string(ext, "incoterm_place"));
    code(w, "Situation", NULL);
    close_(w);
    open(w, "Border_office");
    code(w, "Code", ewtp_json_get_string(ext, "border_office"));
    code(w, "Name", NULL);
    close_(w);
    const struct ewtp_place *loading = exp ? NULL : (tr ? tr->departure : NULL);
    open(w, "Place_of_loading");
    code(w, "Code", loading ? loading->location : NULL);
    code(w, "Name", NULL);
    code(w, "Country", loading ? loading->country : NULL);
    close_(w);
    const char *loc = d->location_of_goods ? d->location_of_goods
                                           : ewtp_json_get_string(ext, "location_of_goods");
    code(w, "Location_of_goods", loc);
    close_(w);

    open(w, "Financial");
    open(w, "Financial_transaction");
    code(w, "code1", NULL);
    code(w, "code2", NULL);
    close_(w);
    open(w, "Bank");
    code(w, "Code", NULL);
    code(w, "Name", NULL);
    code(w, "Branch", NULL);
    code(w, "Reference", NULL);
    close_(w);
    open(w, "Terms");
    code(w, "Code", NULL);
    code(w, "Description", NULL);
    close_(w);
    ewtp_xml_elem(w, NULL, "Total_invoice", d->invoice_value.text);
    code(w, "Deffered_payment_reference", ewtp_json_get_string(ext, "deferred_payment_reference"));
    const char *mop = ewtp_json_get_string(ext, "payment_mode");
    ewtp_xml_elem(w, NULL, "Mode_of_payment", mop ? mop : "");
    close_(w);

    open(w, "Valuation");
    ewtp_xml_elem(w, NULL, "Calculation_working_mode", "0");
    open(w, "Weight");
    ewtp_xml_elem(w, NULL, "Gross_weight", d->gross_weight_kg.text ? d->gross_weight_kg.text : "");
    close_(w);
    if (d->invoice_value.text)
        amount_block(w, a, "Gs_Invoice", &d->invoice_value, d);
    if (d->freight.text)
        amount_block(w, a, "Gs_external_freight", &d->freight, d);
    if (d->insurance.text)
        amount_block(w, a, "Gs_insurance", &d->insurance, d);
    open(w, "Total");
    ewtp_xml_elem(w, NULL, "Total_invoice", d->invoice_value.text ? d->invoice_value.text : "");
    ewtp_xml_elem(w, NULL, "Total_weight", d->gross_weight_kg.text ? d->gross_weight_kg.text : "");
    close_(w);
    close_(w);

    for (size_t i = 0; i < d->n_lines; i++)
        item(w, a, st, m, i);

    /* The foreign supplier (an import's exporter); FACTS A.4: the XSD's name. */
    if (!exp && partner) {
        open(w, "Supplier_documents");
        code(w, "Suppliers_document_itmlink", NULL);
        code(w, "Suppliers_document_code", d->invoice_number ? "380" : NULL);
        code(w, "Invoice_supplier_name", partner->name);
        code(w, "Invoice_supplier_country", partner->country);
        code(w, "Invoice_supplier_city", partner->address ? partner->address->city : NULL);
        code(w, "Invoice_supplier_street",
             partner->address && partner->address->n_lines ? partner->address->lines[0] : NULL);
        code(w, "Invoice_supplier_telephone", NULL);
        code(w, "Invoice_supplier_fax", NULL);
        code(w, "Invoice_supplier_zip_code", partner->address ? partner->address->postcode : NULL);
        code(w, "Invoice_suppliert_email_address", partner->email);
        close_(w);
    }
    close_(w); /* ASYCUDA */
    int rc = ewtp_xml_writer_finish(w, a, xml, len);
    ewtp_xml_writer_free(w);
    return rc;
}

int rw_decl_translate(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                      struct ewtp_errors *errs)
{
    const char *xml = NULL;
    size_t len = 0;
    int rc = rw_asycuda_write(st, c->msg, c->arena, &xml, &len);
    if (rc == -EWTP_EFORMAT) {
        ewtp_errors_add(errs, "", "format",
                        "a text of the declaration cannot be written as XML (control "
                        "characters?)");
        return -EWTP_EINVAL;
    }
    if (rc != 0)
        return rc;
    const char *name = ewtp_arena_printf(c->arena, "ASYCUDA-%s.xml", c->msg->id);
    struct ewtp_document doc = EWTP_DOCUMENT_INIT(.name = name, .content_type = "application/xml",
                                                  .data = xml, .len = len);
    rc = ewtp_out_add_document(out, &doc);
    if (rc != 0)
        return rc;
    /* The spool file: the ASYCUDA client (or the single window's agent) imports it; the
     * answer comes back as the declaration with its registration, assessment and receipt. */
    struct ewtp_request req = EWTP_REQUEST_INIT(.method = "SPOOL", .path = name, .body = xml,
                                                .body_len = len, .body_doc = name, .final = false);
    return ewtp_out_add_request(out, &req);
}

int rw_decl_interpret(const struct rw_state *st, const struct ewtp_call *c,
                      const struct ewtp_response *resp, struct ewtp_outcome *o)
{
    (void)st;
    (void)c;
    /* The spool write is the only "answer": an empty 200 when the file was written. Anything
     * else proves nothing (no ASYCUDA web service answers here). */
    if (resp->status >= 200 && resp->status < 300 && resp->body_len == 0) {
        o->verdict = EWTP_V_SUBMITTED;
        o->code = "spooled";
        o->message = "written for the ASYCUDA client; customs answers with the registered "
                     "declaration";
        return 0;
    }
    o->verdict = EWTP_V_RETRY;
    o->code = resp->status ? ewtp_arena_printf(c->arena, "HTTP %d", resp->status) : "transport";
    o->message = resp->transport_error ? resp->transport_error
                 : resp->body_len ? "an answer that only a spool write (an empty answer) can have "
                                    "for a declaration: sent again"
                                  : "the declaration could not be handed over";
    return 0;
}

/* ---- answers from the single window -------------------------------------------------------- */

static const char *xs(struct ewtp_xml_doc *doc, struct ewtp_arena *a, const char *xpath)
{
    const char *v = NULL;
    if (ewtp_xml_xpath_string(doc, NULL, xpath, a, &v) != 0 || v == NULL)
        return NULL;
    /* Trim: the writer of the answer may indent. */
    while (*v == ' ' || *v == '\n' || *v == '\t' || *v == '\r')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\n' || v[n - 1] == '\t' || v[n - 1] == '\r'))
        n--;
    return n ? ewtp_arena_strndup(a, v, n) : NULL;
}

int rw_decl_receive(const struct rw_state *st, const struct ewtp_inbound *in,
                    struct ewtp_correlation *to, struct ewtp_outcome *o)
{
    (void)st;
    struct ewtp_xml_doc *doc = NULL;
    if (in->body == NULL || in->body_len == 0 ||
        ewtp_xml_parse(in->body, in->body_len, NULL, &doc) != 0)
        return -EWTP_ENOTFOUND;
    int rc = 0;
    struct ewtp_arena *a = in->arena;
    if (strcmp(ewtp_xml_node_name(ewtp_xml_root(doc)), "ASYCUDA") != 0) {
        rc = -EWTP_ENOTFOUND;
        goto out;
    }
    const char *ref = xs(doc, a, "/ASYCUDA/Declarant/Reference/Number");
    if (ref == NULL) {
        rc = -EWTP_ENOTFOUND; /* not one of ours: we always write the reference */
        goto out;
    }
    to->message_id = ref;
    const char *office = xs(doc, a,
                            "/ASYCUDA/Identification/Office_segment/"
                            "Customs_clearance_office_code");
    const char *reg_serial = xs(doc, a, "/ASYCUDA/Identification/Registration/Serial_number");
    const char *reg_no = xs(doc, a, "/ASYCUDA/Identification/Registration/Number");
    const char *reg_date = xs(doc, a, "/ASYCUDA/Identification/Registration/Date");
    const char *ass_serial = xs(doc, a, "/ASYCUDA/Identification/Assessment/Serial_number");
    const char *ass_no = xs(doc, a, "/ASYCUDA/Identification/Assessment/Number");
    const char *rcp_serial = xs(doc, a, "/ASYCUDA/Identification/receipt/Serial_number");
    const char *rcp_no = xs(doc, a, "/ASYCUDA/Identification/receipt/Number");
    const char *rcp_date = xs(doc, a, "/ASYCUDA/Identification/receipt/Date");
    const char *comment = xs(doc, a, "/ASYCUDA/General_information/Comments_free_text");
    if (reg_no) {
        /* "RWKGL 2026 C 42": office, year, serial and number, as ASYCUDA shows it. */
        const char *year = reg_date && strlen(reg_date) >= 10 ? reg_date + 6 : "";
        to->authority_ref = ewtp_arena_printf(a, "%s %.4s %s %s", office ? office : "", year,
                                              reg_serial ? reg_serial : "C", reg_no);
        o->authority_ref = to->authority_ref;
    }
    if (reg_no && rcp_no) {
        o->verdict = EWTP_V_APPROVED;
        o->code = "released";
        o->message = ewtp_arena_printf(
            a, "registered %s, assessed %s %s, taxes paid (receipt %s %s of %s): released",
            o->authority_ref, ass_serial ? ass_serial : "L", ass_no ? ass_no : "-",
            rcp_serial ? rcp_serial : "R", rcp_no, rcp_date ? rcp_date : "");
    } else if (reg_no) {
        o->verdict = EWTP_V_SUBMITTED;
        o->code = ass_no ? "assessed" : "registered";
        o->message =
            ass_no ? ewtp_arena_printf(a,
                                       "registered %s and assessed %s %s: taxes to pay "
                                       "before release",
                                       o->authority_ref, ass_serial ? ass_serial : "L", ass_no)
                   : ewtp_arena_printf(a, "registered %s", o->authority_ref);
    } else if (comment && strncmp(comment, "REJECTED", 8) == 0) {
        /* Our single-window agent's convention (README): the declaration comes back
         * unregistered with "REJECTED <code>: <reason>" in Comments_free_text. */
        const char *p = comment + 8;
        while (*p == ' ')
            p++;
        const char *colon = strchr(p, ':');
        o->verdict = EWTP_V_REJECTED;
        o->code = colon && colon > p ? ewtp_arena_strndup(a, p, (size_t)(colon - p)) : "rejected";
        o->message = colon ? ewtp_arena_strdup(a, colon[1] == ' ' ? colon + 2 : colon + 1)
                           : ewtp_arena_strdup(a, comment);
    } else {
        o->verdict = EWTP_V_INFO;
        o->code = "unregistered";
        o->message = "the declaration came back without registration or a rejection";
    }
out:
    ewtp_xml_free(doc);
    return rc;
}
