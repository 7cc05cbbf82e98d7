/* Reading what E-port and customs send back: CEB receipts (312 ... 792), the format-check
 * receipt CEB900, tax bills 816/818, DXP-level answers (DxpRep) and DxpMsg-wrapped receipts,
 * as the customs client drops them into the spool in-folder (receive) or as the answer to a
 * spool write (interpret). Nothing in a receipt can crash the plugin: unknown or malformed
 * input is -EWTP_ENOTFOUND (receive) or RETRY/REJECTED with a clear text (interpret). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/xml.h>

#include "cn.h"

/* What a returnStatus means for the message of each receipt type (FACTS §5). */
static enum ewtp_verdict map_status(int receipt, const char *status)
{
    char *end = NULL;
    long s = strtol(status, &end, 10);
    if (end == status || *end != '\0')
        return EWTP_V_RETRY; /* not a number: unknown, ask again / look at it */
    if (s < 0)
        return receipt == 624 || receipt == 606 ? EWTP_V_INFO : EWTP_V_REJECTED;
    bool inventory = receipt == 622 || receipt == 604;
    bool cancel = receipt == 624 || receipt == 606;
    switch (s) {
    case 1: /* stored at E-port only (appStatus 1) */
    case 2: /* E-port accepted, declaring */
    case 3: /* sent to customs */
        return EWTP_V_SUBMITTED;
    case 4: /* E-port could not forward to customs: platform-side, transient */
        return EWTP_V_RETRY;
    case 100: /* customs rejected (退单) */
        return cancel ? EWTP_V_INFO : EWTP_V_REJECTED;
    case 120: /* stored by customs: the normal end of an order/payment/waybill */
        return inventory || cancel || receipt == 626 ? EWTP_V_SUBMITTED : EWTP_V_APPROVED;
    case 300: /* manual review */
    case 500: /* inspection */
    case 501:
    case 502:
    case 503:
    case 505:
    case 599:
    case 600:
        return EWTP_V_SUBMITTED;
    case 399: /* concluded (审结); an inventory is released only with 800 */
        return inventory ? EWTP_V_SUBMITTED : cancel ? EWTP_V_CANCELLED : EWTP_V_APPROVED;
    case 700: /* returned abroad */
        return EWTP_V_REJECTED;
    case 800: /* released (放行) */
        return cancel ? EWTP_V_CANCELLED : EWTP_V_APPROVED;
    case 899: /* closed (结关): already approved */
        return EWTP_V_INFO;
    default:
        return EWTP_V_SUBMITTED;
    }
}

struct rdoc {
    struct ewtp_arena *a;
    struct ewtp_xml_doc *doc;
    const struct ewtp_xml_node *ent; /* the first receipt entity */
    const char **guid;               /* out: the guid of the document answered (or NULL) */
};

static const char *get(struct rdoc *r, const char *name)
{
    const char *v = NULL;
    char xp[64];
    snprintf(xp, sizeof(xp), "ceb:%s", name);
    if (ewtp_xml_xpath_string(r->doc, r->ent, xp, r->a, &v) != 0 || v == NULL)
        return NULL;
    /* Official samples carry stray tabs and spaces around values (624's copNo). */
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    return n ? ewtp_arena_strndup(r->a, v, n) : NULL;
}

static const char *key(struct rdoc *r, const char *fmt, const char *a, const char *b)
{
    if (a == NULL || (b == NULL && strstr(fmt, "%s:%s")))
        return NULL;
    return ewtp_arena_printf(r->a, fmt, a, b ? b : "");
}

/* The correlation key the original request's interpret set (cn_correlation_key), from a
 * receipt entity. */
static const char *receipt_key(struct rdoc *r, int no)
{
    switch (no) {
    case 312:
    case 304:
        return key(r, no == 312 ? "CEB311:%s:%s" : "CEB303:%s:%s", get(r, "ebpCode"),
                   get(r, "orderNo"));
    case 412:
        return key(r, "CEB411:%s:%s", get(r, "payCode"), get(r, "payTransactionId"));
    case 404:
        return key(r, "CEB403:%s:%s", get(r, "ebcCode"), get(r, "orderNo"));
    case 512:
        return key(r, "CEB511:%s:%s", get(r, "logisticsCode"), get(r, "logisticsNo"));
    case 506:
        return key(r, "CEB505:%s:%s", get(r, "logisticsCode"), get(r, "logisticsNo"));
    case 514:
        return key(r, "CEB513:%s:%s", get(r, "logisticsCode"), get(r, "logisticsNo"));
    case 622:
    case 624: /* the cancel carries its inventory's copNo */
        return key(r, "CEB621:%s", get(r, "copNo"), NULL);
    case 604:
    case 606:
        return key(r, "CEB603:%s", get(r, "copNo"), NULL);
    case 626:
        return key(r, "CEB625:%s", get(r, "copNo"), NULL);
    case 712:
        return key(r, "CEB711:%s", get(r, "copNo"), NULL);
    case 508:
        return key(r, "CEB507:%s", get(r, "copNo"), NULL);
    case 510:
        return key(r, "CEB509:%s", get(r, "copNo"), NULL);
    case 608:
        return key(r, "CEB607:%s", get(r, "copNo"), NULL);
    case 702:
        return key(r, "CEB701:%s", get(r, "copNo"), NULL);
    default:
        return NULL;
    }
}

static const char *const receipt_entities[] = {"OrderReturn",      "PaymentReturn",
                                               "LogisticsReturn",  "LogisticsStatusReturn",
                                               "InventoryReturn",  "InvtCancelReturn",
                                               "InvtRefundReturn", "DeliveryReturn",
                                               "ReceiptsReturn",   "ArrivalReturn",
                                               "DepartureReturn",  "WayBillReturn",
                                               "SummaryReturn",    NULL};

static int read_ceb(struct rdoc *r, int no, const char **k, struct ewtp_outcome *o);

/* The correlation key cn_correlation_key gave a request document, read back from the
 * document itself (the original message a CEB900 carries); NULL when it cannot be told. The
 * first entity decides: we send one per message. */
static const char *request_key(struct ewtp_arena *a, const char *data, size_t len,
                               const char **guid)
{
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    struct ewtp_xml_doc *doc = NULL;
    if (len == 0 || ewtp_xml_parse(data, len, NULL, &doc) != 0)
        return NULL;
    ewtp_xml_ns_register(doc, "ceb", CN_NS_CEB);
    const struct ewtp_xml_node *root = ewtp_xml_root(doc);
    const char *name = ewtp_xml_node_name(root), *ns = ewtp_xml_node_ns(root);
    int no = ns && strcmp(ns, CN_NS_CEB) == 0 && strncmp(name, "CEB", 3) == 0 ? atoi(name + 3) : 0;
    const char *f1 = NULL, *f2 = NULL;
    switch (no) {
    case 311:
    case 303:
        f1 = "ebpCode", f2 = "orderNo";
        break;
    case 411:
        f1 = "payCode", f2 = "payTransactionId";
        break;
    case 403:
        f1 = "ebcCode", f2 = "orderNo";
        break;
    case 511:
    case 505:
    case 513:
        f1 = "logisticsCode", f2 = "logisticsNo";
        break;
    default:
        f1 = "copNo";
        break;
    }
    const char *v1 = NULL, *v2 = NULL, *key = NULL;
    if (no > 0)
        ewtp_xml_xpath_string(doc, NULL, "string(/*/@guid)", a, guid);
    char xp[64];
    snprintf(xp, sizeof(xp), "(//ceb:%s)[1]", f1);
    ewtp_xml_xpath_string(doc, NULL, xp, a, &v1);
    if (f2) {
        snprintf(xp, sizeof(xp), "(//ceb:%s)[1]", f2);
        ewtp_xml_xpath_string(doc, NULL, xp, a, &v2);
    }
    if (no > 0 && v1 && *v1 && (f2 == NULL || (v2 && *v2))) {
        int keyno = no == 623 ? 621 : no == 605 ? 603 : no; /* a cancel's key is its inventory's */
        key = f2 ? ewtp_arena_printf(a, "CEB%d:%s:%s", keyno, v1, v2)
                 : ewtp_arena_printf(a, "CEB%d:%s", keyno, v1);
    }
    ewtp_xml_free(doc);
    return key;
}

/* The rejection explainer (ABI 1.6): the plain cause of a returnStatus (codes/return-status.tsv;
 * "-" for every negative one) or, for a refusal, of the words of its returnInfo
 * (codes/return-info.tsv), with the common-message member at fault where the words name it. */
static void explain(struct ewtp_outcome *o, const char *status, const char *info)
{
    if (status == NULL)
        return;
    bool refused = status[0] == '-' || strcmp(status, "100") == 0 || strcmp(status, "700") == 0;
    for (size_t i = 0; refused && info && ewtp_code_table_row(&cn_codes_return_info, i); i++) {
        const char *const *row = ewtp_code_table_row(&cn_codes_return_info, i);
        if (row[0][0] && strstr(info, row[0])) {
            ewtp_outcome_set_cause(o, row[1], cn_codes_return_info.n_cols > 2 ? row[2] : NULL);
            return;
        }
    }
    const char *key = status[0] == '-' ? "-" : status;
    ewtp_outcome_set_cause(o, ewtp_code_table_get(&cn_codes_return_status, key, 1),
                           ewtp_code_table_get(&cn_codes_return_status, key, 2));
}

/* CEB900: the message failed E-port's format check. oriBizMessage may hold the original
 * message (as XML text or Base64): then the correlation is that message's own key, which the
 * message got when it was written (the CopMsgId is not kept by the host). */
static int read_900(struct rdoc *r, const char **k, struct ewtp_outcome *o)
{
    const char *status = get(r, "returnStatus");
    if (status == NULL)
        return -EWTP_ENOTFOUND;
    o->verdict = status[0] == '-' ? EWTP_V_REJECTED : EWTP_V_SUBMITTED;
    o->code = ewtp_arena_printf(r->a, "CEB900:%s", status);
    o->message = get(r, "returnInfo");
    explain(o, status, o->message);
    const char *id = get(r, "oriCopMsgId");
    *k = id ? ewtp_arena_printf(r->a, "DXP:%s", id) : NULL;
    const char *biz = get(r, "oriBizMessage");
    if (biz && *biz) {
        const char *key = NULL;
        unsigned char *raw = NULL;
        size_t raw_len = 0;
        if (*biz == '<')
            key = request_key(r->a, biz, strlen(biz), r->guid);
        else if (ewtp_base64_decode(r->a, biz, strlen(biz), EWTP_BASE64_ALLOW_WS, &raw, &raw_len) ==
                 0)
            key = request_key(r->a, (const char *)raw, raw_len, r->guid);
        if (key)
            *k = key;
    }
    return 0;
}

static int read_tax(struct rdoc *r, int no, const char **k, struct ewtp_outcome *o)
{
    /* Tax bills are informational receipts of their inventory (by invtNo, which the
     * inventory's 622 made its authority reference). */
    const char *invt = NULL, *tax_no = NULL, *status = NULL;
    const char *head = no == 816 ? "ceb:Tax/ceb:TaxHeadRd" : "ceb:Tax/ceb:TaxHeadStatus";
    char xp[96];
    snprintf(xp, sizeof(xp), "%s/ceb:invtNo", head);
    ewtp_xml_xpath_string(r->doc, NULL, ewtp_arena_printf(r->a, "/*/%s", xp), r->a, &invt);
    snprintf(xp, sizeof(xp), "/*/%s/ceb:taxNo", head);
    ewtp_xml_xpath_string(r->doc, NULL, xp, r->a, &tax_no);
    snprintf(xp, sizeof(xp), "/*/%s/ceb:status", head);
    ewtp_xml_xpath_string(r->doc, NULL, xp, r->a, &status);
    if (invt == NULL || invt[0] == '\0')
        return -EWTP_ENOTFOUND;
    o->verdict = EWTP_V_INFO;
    o->code = ewtp_arena_printf(r->a, "CEB%d:%s", no, status ? status : "");
    if (no == 816) {
        const char *duty = NULL, *vat = NULL, *cons = NULL;
        ewtp_xml_xpath_string(r->doc, NULL, "/*/ceb:Tax/ceb:TaxHeadRd/ceb:customsTax", r->a, &duty);
        ewtp_xml_xpath_string(r->doc, NULL, "/*/ceb:Tax/ceb:TaxHeadRd/ceb:valueAddedTax", r->a,
                              &vat);
        ewtp_xml_xpath_string(r->doc, NULL, "/*/ceb:Tax/ceb:TaxHeadRd/ceb:consumptionTax", r->a,
                              &cons);
        o->message = ewtp_arena_printf(r->a,
                                       "electronic tax bill %s: duty %s, VAT %s, consumption "
                                       "tax %s",
                                       tax_no ? tax_no : "?", duty ? duty : "?", vat ? vat : "?",
                                       cons ? cons : "?");
    } else {
        o->message = ewtp_arena_printf(r->a,
                                       "tax bill %s status %s (1 generated, 2 summarised, "
                                       "3 void)",
                                       tax_no ? tax_no : "?", status ? status : "?");
    }
    o->authority_ref = invt;
    *k = invt;
    return 0;
}

static int read_792(struct rdoc *r, const char **k, struct ewtp_outcome *o)
{
    const char *sum = NULL, *state = NULL;
    ewtp_xml_xpath_string(r->doc, NULL, "/*/ceb:SummaryResult/ceb:SummaryResultHead/ceb:sumNo",
                          r->a, &sum);
    ewtp_xml_xpath_string(r->doc, NULL, "/*/ceb:SummaryResult/ceb:SummaryResultHead/ceb:decState",
                          r->a, &state);
    if (sum == NULL || sum[0] == '\0')
        return -EWTP_ENOTFOUND;
    o->verdict = EWTP_V_INFO;
    o->code = ewtp_arena_printf(r->a, "CEB792:%s", state ? state : "");
    o->message = "summary declaration result (declaration state of the summary)";
    *k = sum;
    o->authority_ref = sum;
    return 0;
}

static int read_ceb(struct rdoc *r, int no, const char **k, struct ewtp_outcome *o)
{
    if (no == 900) {
        const struct ewtp_xml_node **n = NULL;
        size_t cnt = 0;
        if (ewtp_xml_xpath_nodes(r->doc, NULL, "/*/ceb:MessageReturn", r->a, &n, &cnt) != 0 ||
            cnt == 0)
            return -EWTP_ENOTFOUND;
        r->ent = n[0];
        return read_900(r, k, o);
    }
    if (no == 816 || no == 818)
        return read_tax(r, no, k, o);
    if (no == 792)
        return read_792(r, k, o);
    for (size_t i = 0; receipt_entities[i]; i++) {
        const struct ewtp_xml_node **n = NULL;
        size_t cnt = 0;
        char xp[64];
        snprintf(xp, sizeof(xp), "/*/ceb:%s", receipt_entities[i]);
        if (ewtp_xml_xpath_nodes(r->doc, NULL, xp, r->a, &n, &cnt) == 0 && cnt > 0) {
            /* One document per request message (README): the last entity is the newest
             * state when E-port batches several. */
            r->ent = n[cnt - 1];
            break;
        }
    }
    if (r->ent == NULL)
        return -EWTP_ENOTFOUND;
    const char *status = get(r, "returnStatus");
    *k = receipt_key(r, no);
    /* The guid of the document answered: the official receipts repeat the request's guid
     * (CEB312 and CEB311, CEB626 and CEB625, CEB712 and CEB711 samples; "新增申报成功[guid]"),
     * and it is the only key unique per tenant and message (README "Receipts"). */
    *r->guid = get(r, "guid");
    if (status == NULL || *k == NULL)
        return -EWTP_ENOTFOUND;
    o->verdict = map_status(no, status);
    o->code = ewtp_arena_printf(r->a, "CEB%d:%s", no, status);
    o->message = get(r, "returnInfo");
    explain(o, status, o->message);
    /* The inventory number, once customs assigned it, is what 623/625/816 refer to. */
    const char *invt = get(r, "invtNo");
    const char *sum = get(r, "sumNo");
    if ((no == 622 || no == 604) && invt)
        o->authority_ref = invt;
    else if (no == 702 && sum)
        o->authority_ref = sum;
    else
        o->authority_ref = *k;
    return 0;
}

/* DXP-level answer (spec §7.1): 4-digit codes; 3xxx are transient system errors. */
static int read_dxprep(struct rdoc *r, const char **k, struct ewtp_outcome *o)
{
    const char *code = NULL, *info = NULL, *id = NULL;
    ewtp_xml_xpath_string(r->doc, NULL, "/dxp:DxpRep/dxp:Response/dxp:ResponseCode", r->a, &code);
    ewtp_xml_xpath_string(r->doc, NULL, "/dxp:DxpRep/dxp:Response/dxp:ResponseInfo", r->a, &info);
    ewtp_xml_xpath_string(r->doc, NULL, "/dxp:DxpRep/dxp:Response/dxp:OriHead/dxp:CopMsgId", r->a,
                          &id);
    if (code == NULL || code[0] == '\0')
        return -EWTP_ENOTFOUND;
    long c = strtol(code, NULL, 10);
    o->code = ewtp_arena_printf(r->a, "DXP:%s", code);
    o->message = info && info[0] ? info : "DXP answer";
    if (c == 0)
        o->verdict = EWTP_V_SUBMITTED;
    else if (c >= 3000 && c <= 3999)
        o->verdict = EWTP_V_RETRY;
    else
        o->verdict = EWTP_V_REJECTED;
    *k = id && id[0] ? ewtp_arena_printf(r->a, "DXP:%s", id) : NULL;
    return 0;
}

static int read_any(struct ewtp_arena *a, const void *data, size_t len, int depth, const char **k,
                    const char **guid, struct ewtp_outcome *o);

/* A DxpMsg from E-port: the receipt is Base64 in Data. */
static int read_dxpmsg(struct rdoc *r, int depth, const char **k, struct ewtp_outcome *o)
{
    const char *data = NULL;
    if (ewtp_xml_xpath_string(r->doc, NULL, "/dxp:DxpMsg/dxp:Data", r->a, &data) != 0 ||
        data == NULL)
        return -EWTP_ENOTFOUND;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (ewtp_base64_decode(r->a, data, strlen(data), EWTP_BASE64_ALLOW_WS, &raw, &raw_len) != 0)
        return -EWTP_ENOTFOUND;
    return read_any(r->a, raw, raw_len, depth + 1, k, r->guid, o);
}

static int read_any(struct ewtp_arena *a, const void *data, size_t len, int depth, const char **k,
                    const char **guid, struct ewtp_outcome *o)
{
    if (depth > 2 || data == NULL || len == 0)
        return -EWTP_ENOTFOUND;
    /* Some senders put a UTF-8 BOM first (the official 311 sample does). */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data = (const char *)data + 3;
        len -= 3;
    }
    struct rdoc r = {.a = a, .guid = guid};
    if (ewtp_xml_parse(data, len, NULL, &r.doc) != 0)
        return -EWTP_ENOTFOUND;
    ewtp_xml_ns_register(r.doc, "ceb", CN_NS_CEB);
    ewtp_xml_ns_register(r.doc, "dxp", CN_NS_DXP);
    const struct ewtp_xml_node *root = ewtp_xml_root(r.doc);
    const char *name = ewtp_xml_node_name(root);
    const char *ns = ewtp_xml_node_ns(root);
    int rc = -EWTP_ENOTFOUND;
    if (ns && strcmp(ns, CN_NS_DXP) == 0 && strcmp(name, "DxpMsg") == 0) {
        rc = read_dxpmsg(&r, depth, k, o);
    } else if (ns && strcmp(ns, CN_NS_DXP) == 0 && strcmp(name, "DxpRep") == 0) {
        rc = read_dxprep(&r, k, o);
    } else if (ns && strcmp(ns, CN_NS_CEB) == 0 && strncmp(name, "CEB", 3) == 0) {
        int no = atoi(name + 3);
        char want[24];
        snprintf(want, sizeof(want), "CEB%dMessage", no);
        if (strcmp(name, want) == 0)
            rc = read_ceb(&r, no, k, o);
    }
    ewtp_xml_free(r.doc);
    return rc;
}

int cn_read_receipt(struct ewtp_arena *a, const void *data, size_t len, const char **k,
                    const char **guid, struct ewtp_outcome *o)
{
    ewtp_outcome_clear(o);
    *k = NULL;
    const char *g = NULL;
    int rc = read_any(a, data, len, 0, k, &g, o);
    if (guid)
        *guid = rc == 0 && g && g[0] ? g : NULL;
    return rc;
}

int cn_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o)
{
    (void)state;
    ewtp_outcome_clear(o);
    const char *key = cn_correlation_key(c);
    if (resp->status == 0) {
        o->verdict = EWTP_V_RETRY;
        o->code = "spool";
        o->message = resp->transport_error ? resp->transport_error : "no answer";
        return 0;
    }
    if (resp->body_len > 0) {
        const char *k = NULL;
        struct ewtp_outcome r = EWTP_OUTCOME_INIT();
        if (cn_read_receipt(c->arena, resp->body, resp->body_len, &k, NULL, &r) == 0) {
            ewtp_outcome_copy(o, &r);
            if (o->authority_ref == NULL || strncmp(o->authority_ref, "DXP:", 4) == 0)
                o->authority_ref = key;
            if (o->verdict == EWTP_V_INFO)
                o->verdict = EWTP_V_SUBMITTED;
            return 0;
        }
        if (resp->status >= 400) {
            o->verdict =
                resp->status >= 500 || resp->status == 429 ? EWTP_V_RETRY : EWTP_V_REJECTED;
            o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
            o->message = "the exchange refused the message and its answer is no DXP/CEB receipt";
            return 0;
        }
        if (resp->status < 300) {
            /* An empty 2xx is a hand-over (hosts before ABI 1.4 ask that way for the
             * reference); a body that is no receipt (a proxy's page, a truncated file) proves
             * nothing: send again. */
            o->verdict = EWTP_V_RETRY;
            o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
            o->message = "the exchange's answer is neither empty nor a DXP/CEB receipt";
            return 0;
        }
    }
    if (resp->status >= 500 || resp->status == 429) {
        o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the exchange is unavailable";
        return 0;
    }
    if (resp->status >= 300) {
        o->verdict = resp->status >= 400 ? EWTP_V_REJECTED : EWTP_V_RETRY;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the exchange refused the message without a receipt";
        return 0;
    }
    /* The file is in the customs client's out-folder: receipts follow through receive. */
    o->verdict = EWTP_V_SUBMITTED;
    o->code = "spooled";
    o->message = "handed to the customs client (DXP); receipts arrive in the spool in-folder";
    o->authority_ref = c->op == EWTP_OP_CANCEL ? c->authority_ref : key;
    return 0;
}

/* ABI 1.4: the reference known before sending. A submission is correlated by its CEB key
 * (cn_correlation_key: the copNo/guid written into the document), which the receipts that come
 * back through the spool or the AMQP queue quote; a cancel keeps the message's reference. */
const char *cn_reference(const void *state, const struct ewtp_call *c)
{
    (void)state;
    return c->op == EWTP_OP_CANCEL ? c->authority_ref : cn_correlation_key(c);
}

int cn_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o)
{
    (void)state;
    ewtp_sized_clear(to);
    const char *k = NULL, *guid = NULL;
    int rc = cn_read_receipt(in->arena, in->body, in->body_len, &k, &guid, o);
    if (rc != 0)
        return rc;
    if (k == NULL)
        return -EWTP_ENOTFOUND;
    to->authority_ref = k;
    /* ABI 1.7: the guid first; the CEB key (a business key two tenants may share) after. */
    if (guid && EWTP_HAS(to, struct ewtp_correlation, document_id))
        to->document_id = guid;
    return 0;
}

/* ABI 1.7: the guid written into c's document (translate's root and head guid), which its
 * receipts repeat. */
const char *cn_document_id(const void *state, const struct ewtp_call *c)
{
    (void)state;
    int no = cn_doc_number(c);
    if (no == 0 || c->msg == NULL)
        return NULL;
    char what[16];
    snprintf(what, sizeof(what), "CEB%d", no);
    return cn_guid(c, what);
}
