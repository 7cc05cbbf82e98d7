/* The H7 declaration (IE001) as ewtp lodges it in IDMS-H7: our own XML (schema/be-h7.xsd,
 * built from the EU H7 data requirements) and the EONGW request. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "be.h"

#define H7 "h7"

static const struct ewtp_party *first_of(const struct ewtp_message *m, enum ewtp_role a,
                                         enum ewtp_role b)
{
    return m->parties[a] ? m->parties[a] : m->parties[b];
}

static void write_address(struct ewtp_xml_writer *w, const struct ewtp_party *p)
{
    const struct ewtp_address *ad = p->address;
    ewtp_xml_start(w, H7, "Address");
    if (ad && ad->n_lines > 0)
        ewtp_xml_elem(w, H7, "StreetAndNumber", ad->lines[0]);
    ewtp_xml_elem(w, H7, "Postcode", ad ? ad->postcode : NULL);
    ewtp_xml_elem(w, H7, "City", ad ? ad->city : NULL);
    ewtp_xml_elem(w, H7, "Country", ad && ad->country ? ad->country : p->country);
    ewtp_xml_end(w);
}

static void write_amount(struct ewtp_xml_writer *w, const char *name, struct ewtp_dec d,
                         const char *currency)
{
    char buf[EWTP_DEC_STRMAX];
    ewtp_xml_start(w, H7, name);
    ewtp_xml_attr(w, NULL, "currency", currency);
    if (ewtp_dec_format_places(d, 2, buf, sizeof(buf)) > 0)
        ewtp_xml_text(w, buf);
    ewtp_xml_end(w);
}

static void write_doc(struct ewtp_xml_writer *w, const char *elem, const char *type,
                      const char *ref)
{
    ewtp_xml_start(w, H7, elem);
    ewtp_xml_elem(w, H7, "Type", type);
    ewtp_xml_elem(w, H7, "ReferenceNumber", ref);
    ewtp_xml_end(w);
}

/* DE 11 10: C07 (negligible value) unless C08 (private gift) is declared; F48 when the
 * seller collected VAT under IOSS, unless F49 (special arrangements) is declared. */
static void additional_procedures(const struct ewtp_declaration *d, bool ioss, bool out[4])
{
    static const char *const codes[4] = {"C07", "C08", "F48", "F49"};
    memset(out, 0, 4 * sizeof(bool));
    for (size_t i = 0; i < d->n_additional_procedures; i++)
        for (int k = 0; k < 4; k++)
            if (strcmp(d->additional_procedures[i], codes[k]) == 0)
                out[k] = true;
    if (!out[1])
        out[0] = true;
    if (ioss && !out[3])
        out[2] = true;
}

static const char *location_of_goods(const struct be_state *st, const struct ewtp_declaration *d)
{
    if (d->location_of_goods)
        return d->location_of_goods;
    if (d->transport && d->transport->arrival && d->transport->arrival->location)
        return d->transport->arrival->location;
    return st->location_of_goods;
}

static int build_h7(const struct be_state *st, const struct ewtp_call *c, const char *msg_uuid,
                    const char **xml, size_t *len)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_declaration *d = m->declaration;
    const struct ewtp_json *ext = ewtp_message_ext(m, "be");
    const struct ewtp_party *exporter = first_of(m, EWTP_ROLE_SELLER, EWTP_ROLE_EXPORTER);
    const struct ewtp_party *importer = first_of(m, EWTP_ROLE_CONSIGNEE, EWTP_ROLE_IMPORTER);
    const struct ewtp_party *declarant = m->parties[EWTP_ROLE_DECLARANT];
    const char *eori = ewtp_party_id(declarant, "EORI");
    const char *ioss = be_ioss(m, NULL);
    const char *cur = d->currency ? d->currency : "EUR";
    const char *adt = ewtp_json_get_string(ext, "additional_declaration_type");
    const char *rep = ewtp_json_get_string(ext, "representative_status");
    bool procs[4];
    additional_procedures(d, ioss != NULL, procs);

    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (w == NULL)
        return -EWTP_ENOMEM;
    char now[40];
    ewtp_time_format(c->now_ms, 0, now, sizeof(now));
    ewtp_xml_start(w, H7, "H7Declaration");
    ewtp_xml_ns(w, H7, BE_H7_NS);
    ewtp_xml_start(w, H7, "MessageHeader");
    ewtp_xml_elem(w, H7, "MessageIdentification", msg_uuid);
    ewtp_xml_elem(w, H7, "MessageType", "IE001");
    ewtp_xml_elem(w, H7, "PreparationDateAndTime", now);
    ewtp_xml_elem(w, H7, "Sender", eori);
    ewtp_xml_end(w);

    ewtp_xml_start(w, H7, "Declaration");
    ewtp_xml_elem(w, H7, "DeclarationType", "IM");
    ewtp_xml_elem(w, H7, "AdditionalDeclarationType", adt ? adt : "A");
    ewtp_xml_elem(w, H7, "LRN", be_lrn(m->id, c->arena));
    ewtp_xml_elem(w, H7, "ReferenceNumberUCR", d->order_number);
    ewtp_xml_elem(w, H7, "CustomsOfficeOfLodgement",
                  d->customs_office ? d->customs_office : st->customs_office);
    if (d->gross_weight_kg.text && !ewtp_dec_is_zero(d->gross_weight_kg.value))
        ewtp_xml_elem(w, H7, "GrossMass", d->gross_weight_kg.text);
    ewtp_xml_elem_int(w, H7, "NumberOfPackages", d->has_packages ? d->packages : 1);
    ewtp_xml_start(w, H7, "Procedure");
    ewtp_xml_elem(w, H7, "RequestedProcedure", "40");
    ewtp_xml_elem(w, H7, "PreviousProcedure", "00");
    ewtp_xml_end(w);

    ewtp_xml_start(w, H7, "Exporter");
    ewtp_xml_elem(w, H7, "Name", exporter->name);
    write_address(w, exporter);
    ewtp_xml_end(w);
    ewtp_xml_start(w, H7, "Importer");
    ewtp_xml_elem(w, H7, "IdentificationNumber", ewtp_party_id(importer, "EORI"));
    ewtp_xml_elem(w, H7, "Name", importer->name);
    write_address(w, importer);
    ewtp_xml_end(w);
    ewtp_xml_start(w, H7, "Declarant");
    ewtp_xml_elem(w, H7, "IdentificationNumber", eori);
    ewtp_xml_elem(w, H7, "Name", declarant->name);
    ewtp_xml_end(w);
    if (rep) {
        /* The declarant acts for the importer (express carrier, postal operator, broker). */
        ewtp_xml_start(w, H7, "Representative");
        ewtp_xml_elem(w, H7, "IdentificationNumber", eori);
        ewtp_xml_elem(w, H7, "Status", rep);
        ewtp_xml_end(w);
    }
    if (ioss) {
        ewtp_xml_start(w, H7, "AdditionalFiscalReference");
        ewtp_xml_elem(w, H7, "Role", "FR5");
        ewtp_xml_elem(w, H7, "VatIdentificationNumber", ioss);
        ewtp_xml_end(w);
    }
    if (d->waybill_number)
        write_doc(w, "TransportDocument", st->transport_doc_type, d->waybill_number);
    const struct ewtp_json *prev = ewtp_json_get(ext, "previous_documents");
    for (size_t i = 0; i < ewtp_json_size(prev); i++) {
        const struct ewtp_json *e = ewtp_json_index(prev, i);
        write_doc(w, "PreviousDocument", ewtp_json_get_string(e, "type"),
                  ewtp_json_get_string(e, "reference"));
    }
    for (size_t i = 0; i < d->n_documents; i++)
        write_doc(w, "SupportingDocument", d->documents[i]->type, d->documents[i]->number);
    ewtp_xml_start(w, H7, "LocationOfGoods");
    ewtp_xml_elem(w, H7, "UNLocode", location_of_goods(st, d));
    ewtp_xml_end(w);
    /* DE 14 15: given separately, so not part of the intrinsic value (DA Art. 1(48)). */
    if (d->freight.text || d->insurance.text) {
        struct ewtp_dec costs = ewtp_dec_from_int(0);
        if (d->freight.text)
            ewtp_dec_add(costs, d->freight.value, &costs);
        if (d->insurance.text)
            ewtp_dec_add(costs, d->insurance.value, &costs);
        write_amount(w, "TransportAndInsuranceCosts", costs, cur);
    }
    static const char *const codes[4] = {"C07", "C08", "F48", "F49"};
    for (size_t i = 0; i < d->n_lines; i++) {
        const struct ewtp_line *l = d->lines[i];
        ewtp_xml_start(w, H7, "GoodsItem");
        ewtp_xml_elem_int(w, H7, "GoodsItemNumber", (int64_t)i + 1);
        for (int k = 0; k < 4; k++)
            if (procs[k])
                ewtp_xml_elem(w, H7, "AdditionalProcedure", codes[k]);
        ewtp_xml_elem(w, H7, "DescriptionOfGoods", l->description);
        ewtp_xml_elem(w, H7, "HarmonizedSystemSubHeadingCode",
                      l->hs_code ? ewtp_arena_strndup(c->arena, l->hs_code, 6) : NULL);
        write_amount(w, "IntrinsicValue", l->amount.value, cur);
        if (l->gross_weight_kg.text && !ewtp_dec_is_zero(l->gross_weight_kg.value))
            ewtp_xml_elem(w, H7, "GrossMass", l->gross_weight_kg.text);
        /* Import VAT is declared here only when it was not collected under IOSS. */
        for (size_t t = 0; ioss == NULL && t < l->n_taxes; t++) {
            const struct ewtp_tax *tx = l->taxes[t];
            if (tx->type == NULL || strcmp(tx->type, "VAT") != 0)
                continue;
            ewtp_xml_start(w, H7, "DutiesAndTaxes");
            ewtp_xml_elem(w, H7, "TaxType", "B00");
            ewtp_xml_elem(w, H7, "MethodOfPayment", st->vat_payment_method);
            ewtp_xml_elem(w, H7, "TaxRate", tx->rate.text);
            if (tx->amount.text)
                write_amount(w, "PayableTaxAmount", tx->amount.value, cur);
            ewtp_xml_end(w);
        }
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w); /* Declaration */
    ewtp_xml_end(w);
    int rc = ewtp_xml_writer_finish(w, c->arena, xml, len);
    ewtp_xml_writer_free(w);
    return rc;
}

int be_h7_translate(const struct be_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                    struct ewtp_errors *errs)
{
    (void)errs; /* be_validate checked what H7 needs */
    char uuid[37];
    be_message_uuid(c, "h7", uuid);
    const char *xml = NULL;
    size_t len = 0;
    int rc = build_h7(st, c, uuid, &xml, &len);
    if (rc != 0)
        return rc;
    const char *name = ewtp_arena_printf(c->arena, "BE-H7-%s.xml", c->msg->id);
    struct ewtp_document doc = {.size = sizeof(struct ewtp_document),
                                .name = name,
                                .content_type = "application/xml",
                                .data = xml,
                                .len = len};
    if ((rc = ewtp_out_add_document(out, &doc)) != 0)
        return rc;
    const char *auth = NULL;
    if ((rc = be_bearer(c, st->idms_token_file, &auth)) != 0)
        return rc;
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 3 * sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    h[0] = ewtp_header_new(c->arena, "Content-Type", "application/xml", false);
    h[1] = ewtp_header_new(c->arena, "X-Message-Id", ewtp_arena_strdup(c->arena, uuid), false);
    h[2] = ewtp_header_new(c->arena, "Authorization", auth, true);
    /* The EONGW acknowledges synchronously; the decision is pushed to the call-back URL. */
    struct ewtp_request req = {.size = sizeof(struct ewtp_request),
                               .method = "POST",
                               .path = st->idms_path,
                               .headers = h,
                               .n_headers = 3,
                               .body = xml,
                               .body_len = len,
                               .body_doc = name,
                               .final = false};
    return ewtp_out_add_request(out, &req);
}
