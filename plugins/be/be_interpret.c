/* The Belgium plugin's reading of answers: the EONGW's synchronous acknowledgement and the IDMS
 * notifications pushed to the call-back URL (H7), and the access point's answers and Peppol
 * Message Level Status receipts (invoices). Nothing an authority sends can crash the plugin. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "be.h"
#include "be_codes.h"

static const char *xs(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx, const char *xp,
                      struct ewtp_arena *a)
{
    const char *s = NULL;
    if (ewtp_xml_xpath_string(doc, ctx, xp, a, &s) != 0 || s == NULL || s[0] == '\0')
        return NULL;
    return s;
}

/* Maps the path of an IE001 element named in an IDMS error to the common message. */
static const char *map_pointer(const char *path, struct ewtp_arena *a)
{
    if (path == NULL)
        return NULL;
    const char *gi = strstr(path, "GoodsItem[");
    if (gi) {
        long n = strtol(gi + 10, NULL, 10);
        if (n < 1 || n > 99999)
            return NULL;
        static const char *const map[][2] = {{"HarmonizedSystemSubHeadingCode", "hs_code"},
                                             {"IntrinsicValue", "amount"},
                                             {"DescriptionOfGoods", "description"},
                                             {"GrossMass", "gross_weight_kg"}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (strstr(gi, map[i][0]))
                return ewtp_arena_printf(a, "/declaration/lines/%ld/%s", n - 1, map[i][1]);
        return ewtp_arena_printf(a, "/declaration/lines/%ld", n - 1);
    }
    static const char *const top[][2] = {
        {"Declarant", "/parties/declarant"},
        {"Exporter", "/parties/seller"},
        {"AdditionalFiscalReference", "/parties/seller/ids"},
        {"CustomsOfficeOfLodgement", "/declaration/customs_office"},
        {"TransportDocument", "/declaration/waybill_number"},
        {"LocationOfGoods", "/declaration/location_of_goods"}};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        if (strstr(path, top[i][0]))
            return top[i][1];
    return NULL;
}

/* The rejection explainer (ABI 1.6): the plain cause of code (data/causes.tsv), else of the
 * first Peppol rule id (BR-..., PEPPOL-...) in text, with the member at fault when known. */
static bool explain(struct ewtp_outcome *o, const char *code, const char *text,
                    struct ewtp_arena *a)
{
    const char *const *row = ewtp_code_table_find(&be_codes_causes, code);
    for (const char *p = text; row == NULL && p && *p; p++) {
        if (strncmp(p, "BR-", 3) != 0 && strncmp(p, "PEPPOL-", 7) != 0)
            continue;
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-'))
            continue;
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        while (n > 0 && p[n - 1] == '-')
            n--;
        row = ewtp_code_table_find(&be_codes_causes, ewtp_arena_strndup(a, p, n));
    }
    if (row)
        ewtp_outcome_set_cause(o, row[1], row[2]);
    return row != NULL;
}

/* An IDMS notification (IE928/IE906/IE416/IE428/IE429/IE451) into an outcome and, when to is
 * not NULL, the message it concerns. Returns -EWTP_ENOTFOUND when doc is not one. */
static int h7_notification(struct ewtp_xml_doc *doc, struct ewtp_arena *a, struct ewtp_outcome *o,
                           struct ewtp_correlation *to)
{
    const struct ewtp_xml_node *root = ewtp_xml_root(doc);
    const char *ns = ewtp_xml_node_ns(root);
    const char *type = ewtp_xml_node_name(root);
    if (ns == NULL || strcmp(ns, BE_H7_NS) != 0 || strlen(type) != 5 || strncmp(type, "IE", 2))
        return -EWTP_ENOTFOUND;
    ewtp_xml_ns_register(doc, "h7", BE_H7_NS);
    const char *lrn = xs(doc, NULL, "/*/h7:LRN", a);
    const char *mrn = xs(doc, NULL, "/*/h7:MRN", a);
    if (lrn == NULL)
        return -EWTP_ENOTFOUND;
    o->code = ewtp_arena_strdup(a, type);
    if (strcmp(type, "IE928") == 0) {
        o->verdict = EWTP_V_SUBMITTED;
        o->message = "IDMS received the declaration";
        o->authority_ref = lrn;
    } else if (strcmp(type, "IE428") == 0) {
        if (mrn == NULL)
            return -EWTP_ENOTFOUND;
        /* Accepted with an MRN; release (IE429) may follow within about two hours, or the
         * consignment is selected for control. */
        o->verdict = EWTP_V_SUBMITTED;
        o->message = "IDMS accepted the declaration and allocated the MRN; release pending";
        o->authority_ref = mrn;
    } else if (strcmp(type, "IE429") == 0) {
        o->verdict = EWTP_V_APPROVED;
        o->message = "goods released for free circulation";
        o->authority_ref = mrn;
    } else if (strcmp(type, "IE451") == 0) {
        /* Not released after control: the reason code (e.g. CTRL) and text, when IDMS gives
         * them, stay in the outcome as IE451/<code> and the message. */
        o->verdict = EWTP_V_REJECTED;
        o->message = "goods not released";
        o->authority_ref = mrn;
        const char *code = xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorCode", a);
        const char *reason = xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorReason", a);
        if (code)
            o->code = ewtp_arena_printf(a, "IE451/%s", code);
        if (reason)
            o->message = ewtp_arena_printf(a, "goods not released: %s", reason);
        o->pointer = map_pointer(xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorPointer", a), a);
        explain(o, code, NULL, a);
    } else if (strcmp(type, "IE906") == 0 || strcmp(type, "IE416") == 0) {
        o->verdict = EWTP_V_REJECTED;
        o->message = strcmp(type, "IE906") == 0 ? "IDMS rejected the declaration (validation)"
                                                : "IDMS rejected the declaration";
        const char *code = xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorCode", a);
        const char *reason = xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorReason", a);
        if (code)
            o->code = ewtp_arena_printf(a, "%s/%s", type, code);
        if (reason)
            o->message = reason;
        o->pointer = map_pointer(xs(doc, NULL, "/*/h7:Error[1]/h7:ErrorPointer", a), a);
        explain(o, code, NULL, a);
    } else {
        return -EWTP_ENOTFOUND;
    }
    if (to) {
        /* LRN = message id unless the id was too long for DE 12 09 (then hashed). */
        if (strncmp(lrn, BE_LRN_HASH_PREFIX, strlen(BE_LRN_HASH_PREFIX)) != 0)
            to->message_id = lrn;
        bool by_mrn = mrn && (strcmp(type, "IE429") == 0 || strcmp(type, "IE451") == 0);
        to->authority_ref = by_mrn ? mrn : lrn;
    }
    return 0;
}

/* Peppol Message Level Status (BIS MLS 1.0 ApplicationResponse): AB received, AP accepted,
 * RE rejected by the receiving access point. */
static int peppol_mls(struct ewtp_xml_doc *doc, struct ewtp_arena *a, struct ewtp_outcome *o,
                      struct ewtp_correlation *to)
{
    const struct ewtp_xml_node *root = ewtp_xml_root(doc);
    const char *ns = ewtp_xml_node_ns(root);
    if (ns == NULL || strcmp(ns, BE_UBL_AR_NS) != 0)
        return -EWTP_ENOTFOUND;
    ewtp_xml_ns_register(doc, "cac", BE_UBL_CAC_NS);
    ewtp_xml_ns_register(doc, "cbc", BE_UBL_CBC_NS);
    const char *code = xs(doc, NULL, "/*/cac:DocumentResponse/cac:Response/cbc:ResponseCode", a);
    const char *ref = xs(doc, NULL, "/*/cac:DocumentResponse/cac:DocumentReference/cbc:ID", a);
    if (code == NULL || ref == NULL)
        return -EWTP_ENOTFOUND;
    if (strcmp(code, "AP") == 0) {
        o->verdict = EWTP_V_APPROVED;
        o->message = "delivered to and accepted by the receiver's access point";
    } else if (strcmp(code, "AB") == 0) {
        o->verdict = EWTP_V_SUBMITTED;
        o->message = "received by the receiver's access point";
    } else if (strcmp(code, "RE") == 0) {
        o->verdict = EWTP_V_REJECTED;
        o->message = "rejected by the receiver's access point";
        const char *why =
            xs(doc, NULL, "/*/cac:DocumentResponse/cac:Response/cac:Status/cbc:StatusReason", a);
        const char *rule = xs(
            doc, NULL, "/*/cac:DocumentResponse/cac:Response/cac:Status/cbc:StatusReasonCode", a);
        if (why)
            o->message = why;
        if (rule)
            code = ewtp_arena_printf(a, "RE/%s", rule);
        /* A rule id in the text says more than the reason code (BV: business rules). */
        if (!explain(o, NULL, why, a))
            explain(o, rule, NULL, a);
    } else {
        return -EWTP_ENOTFOUND;
    }
    o->code = code;
    /* The instance id the receipt refers to: our message id when we gave the access point the
     * document through its outbound folder (the file name), or the id its API answered with
     * (kept as authority_ref) when we sent it over HTTP; the host tries both. */
    to->message_id = ref;
    to->authority_ref = ref;
    return 0;
}

static void set_retry(struct ewtp_outcome *o, const char *code, const char *message)
{
    o->verdict = EWTP_V_RETRY;
    o->code = code;
    o->message = message;
}

static int interpret_h7(const struct ewtp_call *c, const struct ewtp_response *resp,
                        struct ewtp_outcome *o)
{
    const char *lrn = be_lrn(c->msg->id, c->arena);
    struct ewtp_xml_doc *doc = NULL;
    if (resp->body_len > 0 && ewtp_xml_parse(resp->body, resp->body_len, NULL, &doc) == 0) {
        int rc = h7_notification(doc, c->arena, o, NULL);
        ewtp_xml_free(doc);
        if (rc == 0) {
            if (o->verdict == EWTP_V_SUBMITTED && o->authority_ref == NULL)
                o->authority_ref = lrn;
            return 0;
        }
    } else if (resp->body_len > 0 && resp->status >= 200 && resp->status < 300) {
        /* An acknowledgement we cannot read (a proxy's page, a truncated answer) proves
         * nothing: send again; if the EONGW did take it, the resend answers 409 (duplicate). */
        o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the EONGW's acknowledgement is not the XML it promises";
        o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
        return 0;
    }
    ewtp_outcome_clear(o);
    o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
    if (resp->status >= 200 && resp->status < 300) {
        o->verdict = EWTP_V_SUBMITTED;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the EONGW acknowledged the declaration; IDMS answers by call-back";
        o->authority_ref = lrn;
    } else if (resp->status == 409) {
        o->verdict = EWTP_V_SUBMITTED;
        o->code = "duplicate";
        o->message = "IDMS already has a declaration with this LRN";
        o->authority_ref = lrn;
    } else {
        o->verdict = EWTP_V_REJECTED;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the EONGW refused the declaration";
    }
    return 0;
}

static void take_json_error(const struct ewtp_json *body, struct ewtp_outcome *o)
{
    const struct ewtp_json *e = ewtp_json_index(ewtp_json_get(body, "errors"), 0);
    if (e == NULL)
        return;
    if (ewtp_json_get_string(e, "code"))
        o->code = ewtp_json_get_string(e, "code");
    if (ewtp_json_get_string(e, "message"))
        o->message = ewtp_json_get_string(e, "message");
}

/* An access point's JSON error: its code, else a rule id in its text, explained. */
static void explain_json_error(const struct ewtp_json *body, struct ewtp_outcome *o,
                               struct ewtp_arena *a)
{
    const struct ewtp_json *e = ewtp_json_index(ewtp_json_get(body, "errors"), 0);
    if (e == NULL)
        return;
    explain(o, ewtp_json_get_string(e, "code"), ewtp_json_get_string(e, "message"), a);
}

static int interpret_peppol(const struct ewtp_call *c, const struct ewtp_response *resp,
                            struct ewtp_outcome *o)
{
    const struct ewtp_json *body = ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL);
    o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
    if (resp->status >= 200 && resp->status < 300 && resp->body_len > 0 &&
        (ewtp_json_type(body) != EWTP_JSON_OBJECT ||
         (ewtp_json_get_string(body, "id") == NULL &&
          ewtp_json_get_string(body, "status") == NULL))) {
        /* A body that is not the access point's JSON ({"id","status"}: a proxy's page, a
         * truncated answer) proves nothing: send again; an access point that did take it
         * answers 409. */
        o->verdict = EWTP_V_RETRY;
        o->message = "the access point's answer is not the JSON object it promises";
        return 0;
    }
    if (resp->status >= 200 && resp->status < 300) {
        const char *st = ewtp_json_get_string(body, "status");
        o->verdict = st && strcmp(st, "delivered") == 0 ? EWTP_V_APPROVED : EWTP_V_SUBMITTED;
        o->message = o->verdict == EWTP_V_APPROVED
                         ? "the access point delivered the invoice to the receiver's access point"
                         : "the access point accepted the invoice for sending";
        o->authority_ref = ewtp_json_get_string(body, "id");
        if (o->authority_ref == NULL)
            o->authority_ref = ewtp_response_header(resp, "Location");
        if (o->authority_ref == NULL)
            o->authority_ref = c->msg->id;
        return 0;
    }
    if (resp->status == 409) {
        o->verdict = EWTP_V_SUBMITTED;
        o->code = "duplicate";
        o->message = "the access point already had this invoice";
        o->authority_ref = ewtp_json_get_string(body, "id");
        return 0;
    }
    o->verdict = EWTP_V_REJECTED;
    o->message = "the access point refused the invoice";
    take_json_error(body, o);
    explain_json_error(body, o, c->arena);
    return 0;
}

int be_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o)
{
    (void)state;
    ewtp_outcome_clear(o);
    if (resp->status == 0) {
        set_retry(o, "transport", resp->transport_error ? resp->transport_error : "no answer");
        return 0;
    }
    if (resp->status == 429 || resp->status >= 500) {
        set_retry(o, ewtp_arena_printf(c->arena, "HTTP %d", resp->status),
                  resp->status == 429 ? "asked to slow down" : "the service is unavailable");
        o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
        return 0;
    }
    if (resp->status == 401 || resp->status == 403) {
        /* Our credentials, not the message: retried until an admin fixes them. */
        set_retry(o, ewtp_arena_printf(c->arena, "HTTP %d", resp->status),
                  "our credentials were refused (check token_file)");
        return 0;
    }
    if (c->msg->invoice)
        return interpret_peppol(c, resp, o);
    return interpret_h7(c, resp, o);
}

int be_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o)
{
    (void)state;
    ewtp_outcome_clear(o);
    ewtp_sized_clear(to);
    struct ewtp_xml_doc *doc = NULL;
    if (in->body_len == 0 || ewtp_xml_parse(in->body, in->body_len, NULL, &doc) != 0)
        return -EWTP_ENOTFOUND;
    int rc = h7_notification(doc, in->arena, o, to);
    if (rc == -EWTP_ENOTFOUND)
        rc = peppol_mls(doc, in->arena, o, to);
    ewtp_xml_free(doc);
    return rc;
}
