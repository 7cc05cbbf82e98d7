/* The template plugin's documents and wire requests: translate and poll.
 * TODO(country): the authority's document (its schema, element names and code lists) and its
 * request paths and headers, in place of the ZZ XML and /v1/submissions. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/codes.h>
#include <ewtp/crypto.h>
#include <ewtp/dsig.h>
#include <ewtp/xml.h>

#include "zz.h"

/* Amounts go out with the currency's minor units (ISO 4217), rounded half-up. */
static unsigned currency_places(const char *currency)
{
    unsigned places = 2;
    if (currency == NULL || !ewtp_code_currency(currency, &places))
        return 2;
    return places;
}

static void write_amount(struct ewtp_xml_writer *w, const char *name, const struct ewtp_num *n,
                         const char *currency)
{
    if (n->text == NULL)
        return;
    ewtp_xml_start(w, "zz", name);
    ewtp_xml_attr(w, NULL, "currency", currency);
    char buf[EWTP_DEC_STRMAX];
    if (ewtp_dec_format_places(n->value, currency_places(currency), buf, sizeof(buf)) > 0)
        ewtp_xml_text(w, buf);
    ewtp_xml_end(w);
}

static void write_lines(struct ewtp_xml_writer *w, const struct ewtp_line *const *lines, size_t n,
                        const char *currency)
{
    ewtp_xml_start(w, "zz", "Lines");
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_line *l = lines[i];
        char no[24];
        snprintf(no, sizeof(no), "%lld", (long long)l->line);
        ewtp_xml_start(w, "zz", "Line");
        ewtp_xml_attr(w, NULL, "no", no);
        ewtp_xml_elem(w, "zz", "Description", l->description);
        ewtp_xml_elem(w, "zz", "HsCode", l->hs_code);
        ewtp_xml_elem(w, "zz", "Origin", l->origin);
        if (l->quantity.text) {
            ewtp_xml_start(w, "zz", "Quantity");
            ewtp_xml_attr(w, NULL, "unit", l->unit);
            ewtp_xml_text(w, l->quantity.text); /* exactly as sent: quantities are not money */
            ewtp_xml_end(w);
        }
        write_amount(w, "UnitPrice", &l->unit_price, currency);
        write_amount(w, "Amount", &l->amount, currency);
        for (size_t t = 0; t < l->n_taxes; t++) {
            ewtp_xml_start(w, "zz", "Tax");
            ewtp_xml_attr(w, NULL, "type", l->taxes[t]->type);
            ewtp_xml_attr(w, NULL, "category", l->taxes[t]->category);
            ewtp_xml_attr(w, NULL, "rate", l->taxes[t]->rate.text);
            ewtp_xml_text(w, l->taxes[t]->amount.text);
            ewtp_xml_end(w);
        }
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
}

static void write_party(struct ewtp_xml_writer *w, const char *name, const struct ewtp_party *p)
{
    if (p == NULL)
        return;
    ewtp_xml_start(w, "zz", name);
    ewtp_xml_elem(w, "zz", "Name", p->name);
    for (size_t i = 0; i < p->n_ids; i++) {
        ewtp_xml_start(w, "zz", "Id");
        ewtp_xml_attr(w, NULL, "scheme", p->ids[i]->scheme);
        ewtp_xml_text(w, p->ids[i]->value);
        ewtp_xml_end(w);
    }
    ewtp_xml_elem(w, "zz", "Country", p->country);
    ewtp_xml_end(w);
}

static void write_body(struct ewtp_xml_writer *w, const struct ewtp_message *m)
{
    if (m->order) {
        const struct ewtp_order *o = m->order;
        ewtp_xml_start(w, "zz", "Order");
        ewtp_xml_elem(w, "zz", "Number", o->number);
        ewtp_xml_elem(w, "zz", "OrderedAt", o->ordered_at);
        write_party(w, "Seller", m->parties[EWTP_ROLE_SELLER]);
        write_party(w, "Buyer", m->parties[EWTP_ROLE_BUYER]);
        write_lines(w, o->lines, o->n_lines, o->currency);
        write_amount(w, "GoodsValue", &o->goods_value, o->currency);
        write_amount(w, "Freight", &o->freight, o->currency);
        write_amount(w, "PaidTotal", &o->paid_total, o->currency);
        ewtp_xml_end(w);
    } else if (m->payment) {
        const struct ewtp_payment *p = m->payment;
        ewtp_xml_start(w, "zz", "Payment");
        ewtp_xml_elem(w, "zz", "Number", p->number);
        ewtp_xml_elem(w, "zz", "OrderNumber", p->order_number);
        ewtp_xml_elem(w, "zz", "PaidAt", p->paid_at);
        write_amount(w, "Amount", &p->amount, p->currency);
        ewtp_xml_elem(w, "zz", "Method", p->method);
        ewtp_xml_end(w);
    } else if (m->declaration) {
        const struct ewtp_declaration *d = m->declaration;
        ewtp_xml_start(w, "zz", "Declaration");
        ewtp_xml_attr(w, NULL, "type", d->type == EWTP_DECL_LOW_VALUE ? "low_value" : "standard");
        ewtp_xml_elem(w, "zz", "OrderNumber", d->order_number);
        ewtp_xml_elem(w, "zz", "WaybillNumber", d->waybill_number);
        ewtp_xml_elem(w, "zz", "CustomsOffice", d->customs_office);
        write_party(w, "Importer", m->parties[EWTP_ROLE_IMPORTER]);
        write_lines(w, d->lines, d->n_lines, d->currency);
        write_amount(w, "InvoiceValue", &d->invoice_value, d->currency);
        ewtp_xml_end(w);
    } else if (m->invoice) {
        const struct ewtp_invoice *inv = m->invoice;
        ewtp_xml_start(w, "zz", "Invoice");
        ewtp_xml_attr(w, NULL, "type",
                      inv->type == EWTP_INV_CREDIT_NOTE   ? "credit_note"
                      : inv->type == EWTP_INV_DEBIT_NOTE  ? "debit_note"
                      : inv->type == EWTP_INV_REFUND_NOTE ? "refund_note"
                                                          : "invoice");
        ewtp_xml_elem(w, "zz", "Number", inv->number);
        ewtp_xml_elem(w, "zz", "IssuedAt", inv->issued_at);
        ewtp_xml_elem(w, "zz", "OriginalInvoice", inv->original_invoice);
        write_party(w, "Seller", m->parties[EWTP_ROLE_SELLER]);
        write_party(w, "Buyer", m->parties[EWTP_ROLE_BUYER]);
        write_lines(w, inv->lines, inv->n_lines, inv->currency);
        write_amount(w, "Net", &inv->totals->net, inv->currency);
        write_amount(w, "Tax", &inv->totals->tax, inv->currency);
        write_amount(w, "Gross", &inv->totals->gross, inv->currency);
        ewtp_xml_end(w);
    }
}

/* A stable id per message and operation: a resend after a crash carries the same id, so the
 * authority can drop the duplicate (delivery is at-least-once). */
static void request_id(const struct ewtp_call *c, char out[EWTP_UUID_STRLEN])
{
    char name[256];
    int n = snprintf(name, sizeof(name), "%s/%s/%s", c->tenant ? c->tenant : "", c->msg->id,
                     c->op == EWTP_OP_CANCEL ? "cancel" : "submit");
    ewtp_uuid_v5(EWTP_UUID_NS_EWTP, name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1,
                 out);
}

static int build_document(const struct zz_state *st, const struct ewtp_call *c, const char *rid,
                          const char **xml, size_t *len)
{
    const struct ewtp_message *m = c->msg;
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (w == NULL)
        return -EWTP_ENOMEM;
    char now[40];
    ewtp_time_format(c->now_ms, 0, now, sizeof(now));
    ewtp_xml_start(w, "zz", "Submission");
    ewtp_xml_ns(w, "zz", ZZ_NS);
    ewtp_xml_start(w, "zz", "Header");
    ewtp_xml_elem(w, "zz", "RequestId", rid);
    ewtp_xml_elem(w, "zz", "SenderReference", m->id);
    ewtp_xml_elem(w, "zz", "Sender", st->sender_id);
    ewtp_xml_elem(w, "zz", "Kind", ewtp_kind_name(m->kind));
    ewtp_xml_elem(w, "zz", "Operation", c->op == EWTP_OP_CANCEL ? "cancel" : "submit");
    ewtp_xml_elem(w, "zz", "CreatedAt", now);
    const struct ewtp_json *prio = ewtp_json_get(ewtp_message_ext(m, "zz"), "priority");
    ewtp_xml_elem(w, "zz", "Priority", prio ? ewtp_json_string(prio) : "normal");
    /* Only submissions are numbered: a cancellation names its submission's reference. The
     * number is the host's (taken at dispatch, the same on every retry), never counted here:
     * a plugin keeps no state and cannot know what the authority accepted. */
    if (st->chain_numbering && (c->chain != NULL) && c->op == EWTP_OP_SUBMIT) {
        char number[24];
        snprintf(number, sizeof(number), "%llu", (unsigned long long)c->chain->number);
        ewtp_xml_start(w, "zz", "Sequence");
        ewtp_xml_attr(w, NULL, "number", number);
        ewtp_xml_attr(w, NULL, "previous", c->chain->prev_ref);
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
    if (c->op == EWTP_OP_CANCEL) {
        ewtp_xml_start(w, "zz", "Cancel");
        ewtp_xml_elem(w, "zz", "AuthorityReference", c->authority_ref);
        ewtp_xml_elem(w, "zz", "Reason", c->cancel_reason);
        ewtp_xml_end(w);
    } else {
        write_body(w, m);
    }
    int rc = ewtp_xml_writer_finish(w, c->arena, xml, len);
    ewtp_xml_writer_free(w);
    return rc;
}

int zz_sign(const struct zz_state *st, const struct ewtp_call *c, const char **xml, size_t *len)
{
    struct ewtp_dsig_options opt;
    ewtp_dsig_options_init(&opt, EWTP_SIGN_RSA_SHA256, st->sign_key);
    opt.keyinfo = EWTP_DSIG_X509_CERT;
    const char *signed_xml = NULL;
    size_t signed_len = 0;
    int rc = ewtp_dsig_sign(c->host, &opt, *xml, *len, c->arena, &signed_xml, &signed_len);
    if (rc == 0) {
        *xml = signed_xml;
        *len = signed_len;
    }
    return rc;
}

/* Headers every ZZ request carries; the token is a secret (masked in requests.json). */
static int auth_headers(const struct zz_state *st, const struct ewtp_call *c, const char *rid,
                        const char *content_type, const struct ewtp_header ***out, size_t *n)
{
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 3 * sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    size_t k = 0;
    if (content_type)
        h[k++] = ewtp_header_new(c->arena, "Content-Type", content_type, false);
    /* Everything handed back lives in the arena, never on this stack. */
    h[k++] = ewtp_header_new(c->arena, "X-Request-Id", ewtp_arena_strdup(c->arena, rid), false);
    const char *token = "test-token";
    if (st->token_file && EWTP_HOST_HAS(c->host, read_secret)) {
        size_t len = 0;
        int rc = c->host->read_secret(c->host->ctx, st->token_file, c->arena, &token, &len);
        if (rc != 0)
            return rc;
        while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
            len--;
        token = ewtp_arena_strndup(c->arena, token, len);
    }
    h[k++] = ewtp_header_new(c->arena, "Authorization",
                             ewtp_arena_printf(c->arena, "Bearer %s", token), true);
    *out = h;
    *n = k;
    return 0;
}

int zz_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs)
{
    (void)errs; /* everything the ZZ authority checks was checked by zz_validate */
    const struct zz_state *st = state;
    char rid[EWTP_UUID_STRLEN];
    request_id(c, rid);
    const char *xml = NULL;
    size_t len = 0;
    int rc = build_document(st, c, rid, &xml, &len);
    if (rc != 0)
        return rc;
    bool is_signed = false;
    if (!c->unsigned_ && st->sign_key) {
        rc = zz_sign(st, c, &xml, &len);
        if (rc != 0)
            return rc;
        is_signed = true;
    }
    const char *name = ewtp_arena_printf(c->arena, "ZZ-%s-%s%s.xml", ewtp_kind_name(c->msg->kind),
                                         c->msg->id, c->op == EWTP_OP_CANCEL ? "-cancel" : "");
    struct ewtp_document doc = {.size = sizeof(struct ewtp_document),
                                .name = name,
                                .content_type = "application/xml",
                                .data = xml,
                                .len = len,
                                .signed_ = is_signed};
    if ((rc = ewtp_out_add_document(out, &doc)) != 0)
        return rc;
    const struct ewtp_header **headers = NULL;
    size_t n_headers = 0;
    if ((rc = auth_headers(st, c, rid, "application/xml", &headers, &n_headers)) != 0)
        return rc;
    struct ewtp_request req = {
        .size = sizeof(struct ewtp_request),
        .method = "POST",
        .path = c->op == EWTP_OP_CANCEL
                    ? ewtp_arena_printf(c->arena, "/v1/submissions/%s/cancel", c->authority_ref)
                    : "/v1/submissions",
        .headers = headers,
        .n_headers = n_headers,
        .body = xml,
        .body_len = len,
        .body_doc = name,
        .final = false,
    };
    return ewtp_out_add_request(out, &req);
}

int zz_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out)
{
    const struct zz_state *st = state;
    if (c->authority_ref == NULL)
        return -EWTP_EINVAL;
    char rid[EWTP_UUID_STRLEN];
    request_id(c, rid);
    const struct ewtp_header **headers = NULL;
    size_t n_headers = 0;
    int rc = auth_headers(st, c, rid, NULL, &headers, &n_headers);
    if (rc != 0)
        return rc;
    struct ewtp_request req = {
        .size = sizeof(struct ewtp_request),
        .method = "GET",
        .path = ewtp_arena_printf(c->arena, "/v1/submissions/%s", c->authority_ref),
        .headers = headers,
        .n_headers = n_headers,
        .final = true,
    };
    return ewtp_out_add_request(out, &req);
}
