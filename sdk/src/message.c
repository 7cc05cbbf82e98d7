/* message.c — ewtp_message_parse(): the common message ewtp/1 from bytes to typed structs.
 *
 * Steps: (1) refuse before parsing what would make jansson or us misbehave: size, NUL bytes,
 * invalid UTF-8, nesting (an iterative bracket scan, so a 10,000-deep body cannot blow the
 * stack); (2) json_loadb with JSON_REJECT_DUPLICATES; the one-pass reader of json_fast.c
 * builds the same tree first and, when it does, stands in for (1) and (2) (issue 20; see
 * ewtp_message_parse); (3) walk the tree with the tables below,
 * building the structs in an arena and collecting every error; (4) the arithmetic rules of
 * the spec, on exact decimals only.
 *
 * Required members per kind. The spec names the members; it marks only `schema`, the body,
 * `direction` (order, waybill, declaration), Party `name`, Line `description` and the
 * declaration line members as required. The rest is our choice, kept to what every
 * authority we serve needs to process the kind at all (sdk/schema/ewtp-1.schema.json
 * states the same):
 *
 * | where              | required                                                         |
 * |--------------------|------------------------------------------------------------------|
 * | envelope           | schema, id, kind, destination, the body; direction for order,    |
 * |                    | waybill, declaration                                             |
 * | party              | name;  ids[]: scheme, value;  endpoint: scheme, value            |
 * | order              | number, ordered_at, currency, goods_value, paid_total, lines >=1 |
 * |   order line       | line, description, quantity, unit_price, amount                  |
 * | payment            | number, order_number, paid_at, amount, currency                  |
 * | waybill            | number                                                           |
 * | declaration        | type, currency, lines >= 1                                       |
 * |   declaration line | line, description, hs_code, origin, quantity, unit, amount       |
 * |   document         | type, number;  packages (line): count                            |
 * | invoice            | number, type, issued_at, currency, lines >= 1, totals            |
 * |   invoice line     | line, description, quantity, unit_price, amount                  |
 * |   totals           | net, tax, gross;  payment_means: code                            |
 * | status             | waybill_number, event, at                                        |
 * | return             | number, order_number;  return line: line, description            |
 * | manifest           | number, waybills >= 1                                            |
 * | summary            | number, period, declarations >= 1, currency, total_value         |
 * |   summary line     | line, description, hs_code, amount                               |
 * | tax (any line)     | type, amount;  period: start, end                                |
 *
 * Strings are non-empty. Error codes: "required", "type", "format" (syntax of a value and
 * code lists), "range" (integers out of range, decimal overflow in a rule), "unknown_member",
 * "duplicate" (line numbers), "unsupported" (another schema), "rule" (arithmetic).
 *
 * Arithmetic (spec "Rules that apply everywhere"), each only when every member it uses was
 * sent and valid: line amount = quantity x unit_price - discount (discount absent = 0);
 * order paid_total = goods_value + freight + insurance + tax_total - discount (absent = 0);
 * invoice totals.net = sum of line amounts, totals.gross = net + tax, totals.tax = sum of the
 * line tax amounts within one minor unit of the currency per tax category (a category is a
 * distinct (type, category) pair). The spec also wants invoice exchange_rate when the
 * currency differs from the authority's; the authority's currency is the plugin's business,
 * so that check is left to plugins.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ewtp/arena.h>
#include <ewtp/codes.h>
#include <ewtp/message.h>
#include "json_internal.h"

/* ---- the walker's tables ------------------------------------------------------------- */

enum ftype {
    T_STR,      /* non-empty string */
    T_TIME,     /* RFC 3339 with offset */
    T_DATE,     /* YYYY-MM-DD */
    T_DEC,      /* decimal string -> struct ewtp_num */
    T_LINENO,   /* integer >= 1 */
    T_COUNT,    /* integer >= 0, with a has_ flag at off2 */
    T_COUNTRY,  /* ISO 3166-1 alpha-2 */
    T_CURRENCY, /* ISO 4217 */
    T_UNIT,     /* UN/ECE Rec. 20 */
    T_MODE,     /* UN/ECE Rec. 19 */
    T_PKG,      /* UN/ECE Rec. 21 */
    T_HS,       /* 6-10 digits */
    T_EMAIL,    /* local@domain.tld shape */
    T_SCHEME,   /* party id scheme token */
    T_ENUM,     /* one of names[]; stored as int i + 1 */
    T_OBJ,      /* object -> pointer to a struct of shape sub */
    T_EMBED,    /* object -> struct of shape sub embedded at off */
    T_ARR,      /* array of objects -> pointer at off, size_t count at off2 */
    T_STRARR,   /* array of non-empty strings -> pointer at off, size_t count at off2 */
};

#define F_REQ 1u    /* required */
#define F_MIN1 2u   /* array: at least one item */
#define F_UNIQUE 4u /* array of lines: `line` unique */
#define NO_OFF ((size_t)-1)

struct shape;

struct field {
    const char *name;
    enum ftype type;
    size_t off, off2;
    unsigned flags;
    const struct shape *sub;
    const char *const *names;    /* T_ENUM */
    const char *const *also_req; /* T_ARR: members of sub also required here */
};

struct shape {
    const char *what; /* "a line", for messages */
    size_t size;
    const struct field *fields;
    size_t n;
};

/* clang-format off */
#define FLD(st, m, t, fl) {#m, t, offsetof(struct st, m), NO_OFF, fl, NULL, NULL, NULL}
#define FCNT(st, m, has, fl) \
    {#m, T_COUNT, offsetof(struct st, m), offsetof(struct st, has), fl, NULL, NULL, NULL}
#define FENUM(st, m, nm, fl) {#m, T_ENUM, offsetof(struct st, m), NO_OFF, fl, NULL, nm, NULL}
#define FOBJ(st, m, sh, fl) {#m, T_OBJ, offsetof(struct st, m), NO_OFF, fl, &sh, NULL, NULL}
#define FEMB(st, m, sh, fl) {#m, T_EMBED, offsetof(struct st, m), NO_OFF, fl, &sh, NULL, NULL}
#define FARR(st, m, cnt, sh, fl, req) \
    {#m, T_ARR, offsetof(struct st, m), offsetof(struct st, cnt), fl, &sh, NULL, req}
#define FSARR(st, m, cnt, fl) \
    {#m, T_STRARR, offsetof(struct st, m), offsetof(struct st, cnt), fl, NULL, NULL, NULL}
/* clang-format on */
#define SHAPE(name, st, what, fields)                                                              \
    static const struct shape name = {what, sizeof(struct st), fields,                             \
                                      sizeof(fields) / sizeof(fields[0])}

static const struct field place_f[] = {
    FLD(ewtp_place, country, T_COUNTRY, 0),
    FLD(ewtp_place, location, T_STR, 0),
    FLD(ewtp_place, date, T_DATE, 0),
};
SHAPE(place_s, ewtp_place, "a place", place_f);

static const struct field transport_f[] = {
    FLD(ewtp_transport, mode, T_MODE, 0),      FLD(ewtp_transport, means_id, T_STR, 0),
    FLD(ewtp_transport, voyage, T_STR, 0),     FOBJ(ewtp_transport, departure, place_s, 0),
    FOBJ(ewtp_transport, arrival, place_s, 0),
};
SHAPE(transport_s, ewtp_transport, "a transport", transport_f);

static const struct field period_f[] = {
    FLD(ewtp_period, start, T_DATE, F_REQ),
    FLD(ewtp_period, end, T_DATE, F_REQ),
};
SHAPE(period_s, ewtp_period, "a period", period_f);

static const struct field docref_f[] = {
    FLD(ewtp_document_ref, type, T_STR, F_REQ),
    FLD(ewtp_document_ref, number, T_STR, F_REQ),
    FLD(ewtp_document_ref, date, T_DATE, 0),
    FLD(ewtp_document_ref, issuer, T_STR, 0),
};
SHAPE(docref_s, ewtp_document_ref, "a document", docref_f);

static const struct field means_f[] = {
    FLD(ewtp_payment_means, code, T_STR, F_REQ),
    FLD(ewtp_payment_means, account, T_STR, 0),
    FLD(ewtp_payment_means, reference, T_STR, 0),
};
SHAPE(means_s, ewtp_payment_means, "payment means", means_f);

static const struct field packages_f[] = {
    FCNT(ewtp_packages, count, has_count, F_REQ),
    FLD(ewtp_packages, kind, T_PKG, 0),
    FLD(ewtp_packages, marks, T_STR, 0),
};
SHAPE(packages_s, ewtp_packages, "packages", packages_f);

static const struct field tax_f[] = {
    FLD(ewtp_tax, type, T_STR, F_REQ),
    FLD(ewtp_tax, category, T_STR, 0),
    FLD(ewtp_tax, rate, T_DEC, 0),
    FLD(ewtp_tax, amount, T_DEC, F_REQ),
    FLD(ewtp_tax, exemption_reason, T_STR, 0),
};
SHAPE(tax_s, ewtp_tax, "a tax", tax_f);

static const char *const line_kinds[] = {"goods", "service", NULL};

#define LINE_COMMON                                                                                \
    {"line", T_LINENO, offsetof(struct ewtp_line, line), NO_OFF, F_REQ, NULL, NULL, NULL},         \
        FLD(ewtp_line, sku, T_STR, 0), FLD(ewtp_line, description, T_STR, F_REQ),                  \
        FLD(ewtp_line, hs_code, T_HS, 0), FLD(ewtp_line, origin, T_COUNTRY, 0),                    \
        FLD(ewtp_line, quantity, T_DEC, 0), FLD(ewtp_line, unit, T_UNIT, 0),                       \
        FLD(ewtp_line, unit_price, T_DEC, 0), FLD(ewtp_line, amount, T_DEC, 0),                    \
        FLD(ewtp_line, net_weight_kg, T_DEC, 0), FLD(ewtp_line, gross_weight_kg, T_DEC, 0),        \
        FLD(ewtp_line, barcode, T_STR, 0), FLD(ewtp_line, brand, T_STR, 0),                        \
        FLD(ewtp_line, model, T_STR, 0), FENUM(ewtp_line, kind, line_kinds, 0),                    \
        FLD(ewtp_line, discount, T_DEC, 0), FARR(ewtp_line, taxes, n_taxes, tax_s, 0, NULL)

static const struct field line_f[] = {LINE_COMMON};
SHAPE(line_s, ewtp_line, "a line", line_f);

static const struct field decl_line_f[] = {
    LINE_COMMON,
    FOBJ(ewtp_line, packages, packages_s, 0),
    FLD(ewtp_line, procedure, T_STR, 0),
    FLD(ewtp_line, preference, T_STR, 0),
    FLD(ewtp_line, supplementary_quantity, T_DEC, 0),
    FLD(ewtp_line, supplementary_unit, T_UNIT, 0),
};
SHAPE(decl_line_s, ewtp_line, "a declaration line", decl_line_f);

static const char *const priced_line_req[] = {"quantity", "unit_price", "amount", NULL};
static const char *const decl_line_req[] = {"hs_code", "origin", "quantity",
                                            "unit",    "amount", NULL};
static const char *const summary_line_req[] = {"hs_code", "amount", NULL};

static const struct field party_id_f[] = {
    FLD(ewtp_party_id, scheme, T_SCHEME, F_REQ),
    FLD(ewtp_party_id, value, T_STR, F_REQ),
};
SHAPE(party_id_s, ewtp_party_id, "a party id", party_id_f);

static const struct field address_f[] = {
    FSARR(ewtp_address, lines, n_lines, 0),   FLD(ewtp_address, city, T_STR, 0),
    FLD(ewtp_address, region, T_STR, 0),      FLD(ewtp_address, postcode, T_STR, 0),
    FLD(ewtp_address, country, T_COUNTRY, 0),
};
SHAPE(address_s, ewtp_address, "an address", address_f);

static const struct field endpoint_f[] = {
    FLD(ewtp_endpoint, scheme, T_STR, F_REQ),
    FLD(ewtp_endpoint, value, T_STR, F_REQ),
};
SHAPE(endpoint_s, ewtp_endpoint, "an endpoint", endpoint_f);

static const struct field party_f[] = {
    FLD(ewtp_party, name, T_STR, F_REQ),       FARR(ewtp_party, ids, n_ids, party_id_s, 0, NULL),
    FLD(ewtp_party, country, T_COUNTRY, 0),    FOBJ(ewtp_party, address, address_s, 0),
    FLD(ewtp_party, email, T_EMAIL, 0),        FLD(ewtp_party, phone, T_STR, 0),
    FOBJ(ewtp_party, endpoint, endpoint_s, 0),
};
SHAPE(party_s, ewtp_party, "a party", party_f);

static const struct field order_f[] = {
    FLD(ewtp_order, number, T_STR, F_REQ),
    FLD(ewtp_order, ordered_at, T_TIME, F_REQ),
    FLD(ewtp_order, currency, T_CURRENCY, F_REQ),
    FLD(ewtp_order, goods_value, T_DEC, F_REQ),
    FLD(ewtp_order, freight, T_DEC, 0),
    FLD(ewtp_order, discount, T_DEC, 0),
    FLD(ewtp_order, insurance, T_DEC, 0),
    FLD(ewtp_order, tax_total, T_DEC, 0),
    FLD(ewtp_order, paid_total, T_DEC, F_REQ),
    FARR(ewtp_order, lines, n_lines, line_s, F_REQ | F_MIN1 | F_UNIQUE, priced_line_req),
    FLD(ewtp_order, note, T_STR, 0),
};
SHAPE(order_s, ewtp_order, "an order", order_f);

static const struct field payment_f[] = {
    FLD(ewtp_payment, number, T_STR, F_REQ),        FLD(ewtp_payment, order_number, T_STR, F_REQ),
    FLD(ewtp_payment, paid_at, T_TIME, F_REQ),      FLD(ewtp_payment, amount, T_DEC, F_REQ),
    FLD(ewtp_payment, currency, T_CURRENCY, F_REQ), FLD(ewtp_payment, method, T_STR, 0),
};
SHAPE(payment_s, ewtp_payment, "a payment", payment_f);

static const struct field waybill_f[] = {
    FLD(ewtp_waybill, number, T_STR, F_REQ),        FLD(ewtp_waybill, order_number, T_STR, 0),
    FLD(ewtp_waybill, transport_mode, T_MODE, 0),   FOBJ(ewtp_waybill, departure, place_s, 0),
    FOBJ(ewtp_waybill, arrival, place_s, 0),        FLD(ewtp_waybill, freight, T_DEC, 0),
    FLD(ewtp_waybill, insured_value, T_DEC, 0),     FLD(ewtp_waybill, currency, T_CURRENCY, 0),
    FLD(ewtp_waybill, gross_weight_kg, T_DEC, 0),   FCNT(ewtp_waybill, packages, has_packages, 0),
    FLD(ewtp_waybill, goods_description, T_STR, 0),
};
SHAPE(waybill_s, ewtp_waybill, "a waybill", waybill_f);

static const char *const decl_types[] = {"low_value", "standard", NULL};

static const struct field declaration_f[] = {
    FENUM(ewtp_declaration, type, decl_types, F_REQ),
    FLD(ewtp_declaration, order_number, T_STR, 0),
    FLD(ewtp_declaration, waybill_number, T_STR, 0),
    FLD(ewtp_declaration, payment_number, T_STR, 0),
    FLD(ewtp_declaration, customs_office, T_STR, 0),
    FLD(ewtp_declaration, procedure, T_STR, 0),
    FSARR(ewtp_declaration, additional_procedures, n_additional_procedures, 0),
    FOBJ(ewtp_declaration, transport, transport_s, 0),
    FLD(ewtp_declaration, location_of_goods, T_STR, 0),
    FLD(ewtp_declaration, incoterm, T_STR, 0),
    FLD(ewtp_declaration, currency, T_CURRENCY, F_REQ),
    FLD(ewtp_declaration, exchange_rate, T_DEC, 0),
    FLD(ewtp_declaration, invoice_number, T_STR, 0),
    FLD(ewtp_declaration, invoice_date, T_DATE, 0),
    FLD(ewtp_declaration, invoice_value, T_DEC, 0),
    FLD(ewtp_declaration, freight, T_DEC, 0),
    FLD(ewtp_declaration, insurance, T_DEC, 0),
    FLD(ewtp_declaration, gross_weight_kg, T_DEC, 0),
    FLD(ewtp_declaration, net_weight_kg, T_DEC, 0),
    FCNT(ewtp_declaration, packages, has_packages, 0),
    FARR(ewtp_declaration, documents, n_documents, docref_s, 0, NULL),
    FARR(ewtp_declaration, lines, n_lines, decl_line_s, F_REQ | F_MIN1 | F_UNIQUE, decl_line_req),
};
SHAPE(declaration_s, ewtp_declaration, "a declaration", declaration_f);

static const struct field totals_f[] = {
    FLD(ewtp_totals, net, T_DEC, F_REQ),
    FLD(ewtp_totals, tax, T_DEC, F_REQ),
    FLD(ewtp_totals, gross, T_DEC, F_REQ),
    FLD(ewtp_totals, payable, T_DEC, 0),
};
SHAPE(totals_s, ewtp_totals, "totals", totals_f);

static const char *const inv_types[] = {"invoice", "credit_note", "debit_note", "refund_note",
                                        NULL};

static const struct field invoice_f[] = {
    FLD(ewtp_invoice, number, T_STR, F_REQ),
    FENUM(ewtp_invoice, type, inv_types, F_REQ),
    FLD(ewtp_invoice, issued_at, T_TIME, F_REQ),
    FLD(ewtp_invoice, due_date, T_DATE, 0),
    FLD(ewtp_invoice, currency, T_CURRENCY, F_REQ),
    FLD(ewtp_invoice, exchange_rate, T_DEC, 0),
    FLD(ewtp_invoice, original_invoice, T_STR, 0),
    FLD(ewtp_invoice, reason, T_STR, 0),
    FOBJ(ewtp_invoice, billing_period, period_s, 0),
    FLD(ewtp_invoice, order_number, T_STR, 0),
    FARR(ewtp_invoice, lines, n_lines, line_s, F_REQ | F_MIN1 | F_UNIQUE, priced_line_req),
    FOBJ(ewtp_invoice, totals, totals_s, F_REQ),
    FLD(ewtp_invoice, buyer_reference, T_STR, 0),
    FOBJ(ewtp_invoice, payment_means, means_s, 0),
    FLD(ewtp_invoice, note, T_STR, 0),
};
SHAPE(invoice_s, ewtp_invoice, "an invoice", invoice_f);

static const char *const events[] = {"departed", "arrived", "cleared", "delivered",
                                     "returned", "lost",    NULL};

static const struct field status_f[] = {
    FLD(ewtp_status, waybill_number, T_STR, F_REQ), FLD(ewtp_status, order_number, T_STR, 0),
    FENUM(ewtp_status, event, events, F_REQ),       FLD(ewtp_status, at, T_TIME, F_REQ),
    FLD(ewtp_status, location, T_STR, 0),
};
SHAPE(status_s, ewtp_status, "a status", status_f);

static const struct field return_f[] = {
    FLD(ewtp_return, number, T_STR, F_REQ),
    FLD(ewtp_return, order_number, T_STR, F_REQ),
    FLD(ewtp_return, waybill_number, T_STR, 0),
    FLD(ewtp_return, declaration_ref, T_STR, 0),
    FLD(ewtp_return, reason, T_STR, 0),
    FARR(ewtp_return, lines, n_lines, line_s, F_UNIQUE, NULL),
};
SHAPE(return_s, ewtp_return, "a return", return_f);

static const struct field manifest_f[] = {
    FLD(ewtp_manifest, number, T_STR, F_REQ),
    FLD(ewtp_manifest, master_waybill, T_STR, 0),
    FOBJ(ewtp_manifest, transport, transport_s, 0),
    FLD(ewtp_manifest, customs_office, T_STR, 0),
    FSARR(ewtp_manifest, waybills, n_waybills, F_REQ | F_MIN1),
    FCNT(ewtp_manifest, packages, has_packages, 0),
    FLD(ewtp_manifest, gross_weight_kg, T_DEC, 0),
};
SHAPE(manifest_s, ewtp_manifest, "a manifest", manifest_f);

static const struct field summary_f[] = {
    FLD(ewtp_summary, number, T_STR, F_REQ),
    FOBJ(ewtp_summary, period, period_s, F_REQ),
    FLD(ewtp_summary, customs_office, T_STR, 0),
    FSARR(ewtp_summary, declarations, n_declarations, F_REQ | F_MIN1),
    FLD(ewtp_summary, currency, T_CURRENCY, F_REQ),
    FLD(ewtp_summary, total_value, T_DEC, F_REQ),
    FARR(ewtp_summary, lines, n_lines, line_s, F_UNIQUE, summary_line_req),
};
SHAPE(summary_s, ewtp_summary, "a summary", summary_f);

/* Body shape and the message member it goes into, by kind. */
static const struct {
    const struct shape *shape;
    size_t off;
} bodies[EWTP_KIND_COUNT] = {
    [EWTP_KIND_ORDER] = {&order_s, offsetof(struct ewtp_message, order)},
    [EWTP_KIND_PAYMENT] = {&payment_s, offsetof(struct ewtp_message, payment)},
    [EWTP_KIND_WAYBILL] = {&waybill_s, offsetof(struct ewtp_message, waybill)},
    [EWTP_KIND_DECLARATION] = {&declaration_s, offsetof(struct ewtp_message, declaration)},
    [EWTP_KIND_INVOICE] = {&invoice_s, offsetof(struct ewtp_message, invoice)},
    [EWTP_KIND_STATUS] = {&status_s, offsetof(struct ewtp_message, status)},
    [EWTP_KIND_RETURN] = {&return_s, offsetof(struct ewtp_message, return_)},
    [EWTP_KIND_MANIFEST] = {&manifest_s, offsetof(struct ewtp_message, manifest)},
    [EWTP_KIND_SUMMARY] = {&summary_s, offsetof(struct ewtp_message, summary)},
};

/* ---- walking ------------------------------------------------------------------------- */

/* Room for the pointer being built; ewtp_errors truncates what it keeps anyway. */
#define PTR_MAX 1024

struct ctx {
    struct ewtp_arena *a;
    struct ewtp_errors *errs;
    const struct ewtp_parse_opts *opts;
    bool oom;
    char ptr[PTR_MAX];
    size_t plen;
};

/* Appends "/key" (RFC 6901 escaped) to the pointer; returns the length to restore. */
static size_t push(struct ctx *c, const char *key)
{
    size_t old = c->plen;
    if (c->plen + 1 < PTR_MAX)
        c->ptr[c->plen++] = '/';
    for (const char *k = key; *k && c->plen + 3 < PTR_MAX; k++) {
        if (*k == '~' || *k == '/') {
            c->ptr[c->plen++] = '~';
            c->ptr[c->plen++] = *k == '~' ? '0' : '1';
        } else {
            c->ptr[c->plen++] = *k;
        }
    }
    c->ptr[c->plen] = '\0';
    return old;
}

static size_t push_index(struct ctx *c, size_t i)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%zu", i);
    return push(c, buf);
}

static void pop(struct ctx *c, size_t old)
{
    c->plen = old;
    c->ptr[old] = '\0';
}

static void __attribute__((format(printf, 3, 0)))
verr(struct ctx *c, const char *code, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ewtp_errors_add(c->errs, c->ptr, code, "%s", msg);
}

/* An error at the current pointer. */
static void __attribute__((format(printf, 3, 4)))
err(struct ctx *c, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, code, fmt, ap);
    va_end(ap);
}

/* An error at the current pointer + "/key". */
static void __attribute__((format(printf, 4, 5)))
err_at(struct ctx *c, const char *key, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t old = push(c, key);
    verr(c, code, fmt, ap);
    pop(c, old);
    va_end(ap);
}

static void *alloc(struct ctx *c, size_t size)
{
    void *p = ewtp_arena_alloc(c->a, size ? size : 1);
    if (!p)
        c->oom = true;
    return p;
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static bool is_upper(char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static bool is_lower(char ch)
{
    return ch >= 'a' && ch <= 'z';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* [A-Za-z0-9._:-]{1,64} */
static bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_upper(s[i]) && !is_lower(s[i]) && !is_digit(s[i]) && !strchr("._:-", s[i]))
            return false;
    return true;
}

/* [A-Z][A-Z0-9-]{1,31} */
static bool is_scheme(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 32 || !is_upper(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_upper(s[i]) && !is_digit(s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool email_char(char ch)
{
    return ch != '@' && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n';
}

/* ^[^@ \t\r\n]+@[^@ \t\r\n]+\.[^@ \t\r\n]+$ : one @, a dot inside the domain. */
static bool is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; *p; p++)
        if (p != at && !email_char(*p))
            return false;
    const char *dom = at + 1;
    size_t n = strlen(dom);
    for (size_t i = 1; i + 1 < n; i++)
        if (dom[i] == '.')
            return true;
    return false;
}

/* EORI: two-letter country prefix and 1 to 15 upper-case letters or digits. */
static bool is_eori(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 17 || !is_upper(s[0]) || !is_upper(s[1]))
        return false;
    for (size_t i = 2; i < n; i++)
        if (!is_upper(s[i]) && !is_digit(s[i]))
            return false;
    return true;
}

static bool is_extra_destination(const struct ctx *c, const char *s)
{
    const char *const *x = c->opts ? c->opts->extra_destinations : NULL;
    for (; x && *x; x++)
        if (strcmp(*x, s) == 0)
            return true;
    return false;
}

static void fill_object(struct ctx *c, const json_t *obj, const struct shape *sh, void *out,
                        const char *const *also_req);

static bool is_currency(const char *s)
{
    return ewtp_code_currency(s, NULL);
}

/* The check of each code or format type, and what a value that fails it is not. */
static const struct {
    bool (*ok)(const char *s);
    const char *what;
} string_checks[] = {
    [T_TIME] = {ewtp_is_rfc3339, "an RFC 3339 time with offset (2026-11-22T10:00:00+08:00)"},
    [T_DATE] = {ewtp_is_date, "a calendar date YYYY-MM-DD"},
    [T_COUNTRY] = {ewtp_code_country, "an ISO 3166-1 alpha-2 country code"},
    [T_CURRENCY] = {is_currency, "an ISO 4217 currency code"},
    [T_UNIT] = {ewtp_code_unit, "a UN/ECE Rec. 20 unit code (a piece is H87, one is C62)"},
    [T_MODE] = {ewtp_code_transport_mode,
                "a UN/ECE Rec. 19 transport mode (1 sea, 3 road, 4 air, 5 post ...)"},
    [T_PKG] = {ewtp_code_package_kind, "a UN/ECE Rec. 21 package kind (CT, PK, BX ...)"},
    [T_HS] = {ewtp_is_hs_code, "an HS code of 6 to 10 digits"},
    [T_EMAIL] = {is_email, "an e-mail address"},
    [T_SCHEME] = {is_scheme, "an id scheme: an upper-case token [A-Z][A-Z0-9-]{1,31}"},
};

/* Checks a string member of a code or format type; false (and an error) when it is bad. */
static bool check_string(struct ctx *c, const struct field *f, const char *s)
{
    if (!*s) {
        err(c, "format", "%s must not be empty", f->name);
        return false;
    }
    size_t t = (size_t)f->type;
    if (t < sizeof string_checks / sizeof string_checks[0] && string_checks[t].ok &&
        !string_checks[t].ok(s)) {
        err(c, "format", "%s \"%s\" is not %s", f->name, s, string_checks[t].what);
        return false;
    }
    return true;
}

static void fill_field(struct ctx *c, const struct field *f, const json_t *v, char *base)
{
    switch (f->type) {
    case T_STR:
    case T_TIME:
    case T_DATE:
    case T_COUNTRY:
    case T_CURRENCY:
    case T_UNIT:
    case T_MODE:
    case T_PKG:
    case T_HS:
    case T_EMAIL:
    case T_SCHEME:
        if (!json_is_string(v)) {
            err(c, "type", "%s must be a string, not %s", f->name, json_type_name(v));
            return;
        }
        if (check_string(c, f, json_string_value(v))) {
            /* Borrowed from the JSON tree, which lives as long as the message. */
            const char *s = json_string_value(v);
            memcpy(base + f->off, &s, sizeof s);
        }
        return;
    case T_DEC: {
        if (!json_is_string(v)) {
            err(c, "type", "%s must be a decimal string such as \"12.50\", not %s", f->name,
                json_type_name(v));
            return;
        }
        struct ewtp_num num = {json_string_value(v), {0, 0}};
        if (ewtp_dec_parse(num.text, &num.value) != 0) {
            err(c, "format",
                "%s \"%s\" is not a decimal: up to 18 digits, optionally a point and up to 6 "
                "decimals, optionally a leading minus",
                f->name, num.text);
            return;
        }
        memcpy(base + f->off, &num, sizeof num);
        return;
    }
    case T_LINENO:
    case T_COUNT: {
        if (!json_is_integer(v)) {
            err(c, "type", "%s must be an integer, not %s", f->name, json_type_name(v));
            return;
        }
        int64_t n = (int64_t)json_integer_value(v);
        if (f->type == T_LINENO && n < 1) {
            err(c, "range", "%s must be 1 or more (line numbers are 1-based)", f->name);
            return;
        }
        if (f->type == T_COUNT && n < 0) {
            err(c, "range", "%s must not be negative", f->name);
            return;
        }
        memcpy(base + f->off, &n, sizeof n);
        if (f->off2 != NO_OFF) {
            bool t = true;
            memcpy(base + f->off2, &t, sizeof t);
        }
        return;
    }
    case T_ENUM: {
        const char *s = json_string_value(v);
        if (!s) {
            err(c, "type", "%s must be a string, not %s", f->name, json_type_name(v));
            return;
        }
        for (int i = 0; f->names[i]; i++) {
            if (strcmp(s, f->names[i]) == 0) {
                int val = i + 1;
                memcpy(base + f->off, &val, sizeof val);
                return;
            }
        }
        char list[256] = "";
        size_t n = 0;
        for (int i = 0; f->names[i] && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", f->names[i]);
        err(c, "format", "%s \"%s\" is not one of: %s", f->name, s, list);
        return;
    }
    case T_OBJ:
    case T_EMBED: {
        if (!json_is_object(v)) {
            err(c, "type", "%s must be an object, not %s", f->name, json_type_name(v));
            return;
        }
        void *sub = base + f->off;
        if (f->type == T_OBJ) {
            sub = alloc(c, f->sub->size);
            if (!sub)
                return;
            memcpy(base + f->off, &sub, sizeof sub);
        }
        fill_object(c, v, f->sub, sub, NULL);
        return;
    }
    case T_ARR:
    case T_STRARR: {
        if (!json_is_array(v)) {
            err(c, "type", "%s must be an array, not %s", f->name, json_type_name(v));
            return;
        }
        size_t n = json_array_size(v);
        if (n == 0) {
            if (f->flags & F_MIN1)
                err(c, "required", "%s needs at least one item", f->name);
            return;
        }
        size_t isz = f->type == T_ARR ? f->sub->size : sizeof(const char *);
        char *items = alloc(c, n * isz);
        if (!items)
            return;
        /* Arrays of structs cross the ABI as arrays of pointers (ewtp/abi.h). */
        void **ptrs = NULL;
        if (f->type == T_ARR) {
            if (!(ptrs = alloc(c, n * sizeof *ptrs)))
                return;
            for (size_t i = 0; i < n; i++) {
                ptrs[i] = items + i * isz;
                memcpy(ptrs[i], &f->sub->size, sizeof f->sub->size);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_array_get(v, i);
            size_t old = push_index(c, i);
            if (f->type == T_STRARR) {
                const char *s = json_string_value(it);
                if (!s)
                    err(c, "type", "items of %s must be strings, not %s", f->name,
                        json_type_name(it));
                else if (!*s)
                    err(c, "format", "items of %s must not be empty", f->name);
                else
                    memcpy(items + i * isz, &s, sizeof s);
            } else if (!json_is_object(it)) {
                err(c, "type", "items of %s must be objects, not %s", f->name, json_type_name(it));
            } else {
                fill_object(c, it, f->sub, items + i * isz, f->also_req);
            }
            pop(c, old);
        }
        if (ptrs)
            memcpy(base + f->off, &ptrs, sizeof ptrs);
        else
            memcpy(base + f->off, &items, sizeof items);
        memcpy(base + f->off2, &n, sizeof n);
        return;
    }
    }
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Checks the formats the spec names for some party id schemes. */
static void check_party_id(struct ctx *c, const struct ewtp_party_id *id)
{
    if (!id->scheme || !id->value)
        return;
    if (strcmp(id->scheme, "CN-RIC") == 0 && !ewtp_is_cn_ric(id->value))
        err_at(c, "value", "format",
               "a CN-RIC resident ID has 17 digits and a check character (0-9 or X) that "
               "matches them (ISO 7064 MOD 11-2)");
    else if (strcmp(id->scheme, "EORI") == 0 && !is_eori(id->value))
        err_at(c, "value", "format",
               "an EORI number is a two-letter country code and 1 to 15 upper-case letters or "
               "digits");
}

struct line_ref {
    int64_t line;
    size_t index;
};

static int cmp_line_ref(const void *a, const void *b)
{
    const struct line_ref *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Line numbers unique within one array: each repeat is reported at its own position, naming
 * the first item with that number. Sorted, so that a 1 MiB message of lines stays fast. */
static void check_unique_lines(struct ctx *c, const struct ewtp_line *const *lines, size_t n)
{
    if (n < 2)
        return;
    struct line_ref *refs = malloc(n * sizeof *refs);
    if (!refs) {
        c->oom = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (lines[i]->line >= 1)
            refs[k++] = (struct line_ref){lines[i]->line, i};
    qsort(refs, k, sizeof *refs, cmp_line_ref);
    for (size_t i = 1, first = 0; i < k; i++) {
        if (refs[i].line != refs[first].line) {
            first = i;
            continue;
        }
        size_t o1 = push_index(c, refs[i].index);
        err_at(c, "line", "duplicate", "line number %lld is already used by item %zu",
               (long long)refs[i].line, refs[first].index);
        pop(c, o1);
    }
    free(refs);
}

static void fill_object(struct ctx *c, const json_t *obj, const struct shape *sh, void *out,
                        const char *const *also_req)
{
    char *base = out;
    memcpy(base, &sh->size, sizeof sh->size); /* every shape starts with size_t size */
    for (size_t i = 0; i < sh->n; i++) {
        const struct field *f = &sh->fields[i];
        const json_t *v = json_object_get(obj, f->name);
        if (!v) {
            if ((f->flags & F_REQ) || in_list(also_req, f->name))
                err_at(c, f->name, "required", "%s is required in %s", f->name, sh->what);
            continue;
        }
        size_t old = push(c, f->name);
        fill_field(c, f, v, base);
        if (f->type == T_ARR && (f->flags & F_UNIQUE)) {
            const struct ewtp_line *const *lines;
            size_t n;
            memcpy(&lines, base + f->off, sizeof lines);
            memcpy(&n, base + f->off2, sizeof n);
            check_unique_lines(c, lines, n);
        }
        pop(c, old);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sh->n && !known; i++)
            known = strcmp(sh->fields[i].name, key) == 0;
        if (!known)
            err_at(c, key, "unknown_member", "%s has no member \"%s\"", sh->what, key);
    }
    if (sh == &party_id_s)
        check_party_id(c, out);
}

/* ---- arithmetic ---------------------------------------------------------------------- */

/* True when the member is absent or was parsed: a member that was sent but rejected makes a
 * rule that uses it meaningless, so the rule is skipped (its own error is reported). */
static bool usable(const json_t *obj, const char *key, const struct ewtp_num *n)
{
    return n->text || !json_object_get(obj, key);
}

static struct ewtp_dec zero(void)
{
    return ewtp_dec_from_int(0);
}

static struct ewtp_dec val(const struct ewtp_num *n)
{
    return n->text ? n->value : zero();
}

static void fmt_dec(struct ewtp_dec d, char *buf)
{
    if (ewtp_dec_format(d, buf, EWTP_DEC_STRMAX) < 0)
        snprintf(buf, EWTP_DEC_STRMAX, "?");
}

/* amount = quantity x unit_price - discount, for each line that has all three. */
static void rule_lines(struct ctx *c, const json_t *body, const struct ewtp_line *const *lines,
                       size_t n)
{
    const json_t *arr = json_object_get(body, "lines");
    size_t o0 = push(c, "lines");
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_line *l = lines[i];
        const json_t *lj = json_array_get(arr, i);
        if (!l->quantity.text || !l->unit_price.text || !l->amount.text ||
            !usable(lj, "discount", &l->discount))
            continue;
        size_t o1 = push_index(c, i);
        struct ewtp_dec gross, want;
        if (ewtp_dec_mul(l->quantity.value, l->unit_price.value, &gross) != 0 ||
            ewtp_dec_sub(gross, val(&l->discount), &want) != 0) {
            err_at(c, "amount", "range", "quantity x unit_price is too large to compute exactly");
        } else if (ewtp_dec_cmp(want, l->amount.value) != 0) {
            char w[EWTP_DEC_STRMAX];
            fmt_dec(want, w);
            err_at(c, "amount", "rule",
                   "amount %s is not quantity %s x unit_price %s - discount %s = %s",
                   l->amount.text, l->quantity.text, l->unit_price.text,
                   l->discount.text ? l->discount.text : "0", w);
        }
        pop(c, o1);
    }
    pop(c, o0);
}

static void rule_order(struct ctx *c, const json_t *body, const struct ewtp_order *o)
{
    if (!o->paid_total.text || !o->goods_value.text || !usable(body, "freight", &o->freight) ||
        !usable(body, "insurance", &o->insurance) || !usable(body, "tax_total", &o->tax_total) ||
        !usable(body, "discount", &o->discount))
        return;
    struct ewtp_dec s = o->goods_value.value;
    if (ewtp_dec_add(s, val(&o->freight), &s) != 0 ||
        ewtp_dec_add(s, val(&o->insurance), &s) != 0 ||
        ewtp_dec_add(s, val(&o->tax_total), &s) != 0 ||
        ewtp_dec_sub(s, val(&o->discount), &s) != 0) {
        err_at(c, "paid_total", "range", "the order's sum is too large to compute exactly");
        return;
    }
    if (ewtp_dec_cmp(s, o->paid_total.value) != 0) {
        char w[EWTP_DEC_STRMAX];
        fmt_dec(s, w);
        err_at(c, "paid_total", "rule",
               "paid_total %s is not goods_value + freight + insurance + tax_total - discount "
               "= %s",
               o->paid_total.text, w);
    }
}

/* A tax category: the tax type and the authority's category code. */
static bool same_category(const struct ewtp_tax *a, const struct ewtp_tax *b)
{
    const char *ac = a->category ? a->category : "", *bc = b->category ? b->category : "";
    return strcmp(a->type, b->type) == 0 && strcmp(ac, bc) == 0;
}

static void rule_invoice(struct ctx *c, const json_t *body, const struct ewtp_invoice *inv)
{
    const json_t *arr = json_object_get(body, "lines");
    bool lines_ok = inv->n_lines > 0 && inv->n_lines == json_array_size(arr);
    bool taxes_ok = lines_ok;
    struct ewtp_dec net = zero(), tax = zero();
    bool net_range = false, tax_range = false;
    size_t categories = 0;
    for (size_t i = 0; lines_ok && i < inv->n_lines; i++) {
        const struct ewtp_line *l = inv->lines[i];
        const json_t *lj = json_array_get(arr, i);
        const json_t *tj = json_object_get(lj, "taxes");
        if (!l->amount.text) {
            lines_ok = taxes_ok = false;
            break;
        }
        if (ewtp_dec_add(net, l->amount.value, &net) != 0)
            net_range = true;
        if (tj && l->n_taxes != json_array_size(tj))
            taxes_ok = false;
        for (size_t t = 0; taxes_ok && t < l->n_taxes; t++) {
            const struct ewtp_tax *x = l->taxes[t];
            const json_t *xj = json_array_get(tj, t);
            if (!x->amount.text || !x->type || (json_object_get(xj, "category") && !x->category)) {
                taxes_ok = false;
                break;
            }
            if (ewtp_dec_add(tax, x->amount.value, &tax) != 0)
                tax_range = true;
            /* Count the category once, at its first appearance in document order. */
            bool seen = false;
            for (size_t pi = 0; pi <= i && !seen; pi++) {
                const struct ewtp_line *pl = inv->lines[pi];
                size_t lim = pi == i ? t : pl->n_taxes;
                for (size_t pt = 0; pt < lim && !seen; pt++)
                    seen = pl->taxes[pt]->type && same_category(pl->taxes[pt], x);
            }
            if (!seen)
                categories++;
        }
    }
    const struct ewtp_totals *tt = inv->totals;
    if (tt == NULL)
        return; /* "totals is required" is reported already */
    size_t o0 = push(c, "totals");
    char w[EWTP_DEC_STRMAX];
    if (lines_ok && tt->net.text) {
        if (net_range) {
            err_at(c, "net", "range", "the sum of the line amounts is too large");
        } else if (ewtp_dec_cmp(net, tt->net.value) != 0) {
            fmt_dec(net, w);
            err_at(c, "net", "rule", "net %s is not the sum of the line amounts, %s", tt->net.text,
                   w);
        }
    }
    if (tt->net.text && tt->tax.text && tt->gross.text) {
        struct ewtp_dec g;
        if (ewtp_dec_add(tt->net.value, tt->tax.value, &g) != 0) {
            err_at(c, "gross", "range", "net + tax is too large to compute exactly");
        } else if (ewtp_dec_cmp(g, tt->gross.value) != 0) {
            fmt_dec(g, w);
            err_at(c, "gross", "rule", "gross %s is not net + tax = %s", tt->gross.text, w);
        }
    }
    unsigned minor;
    if (taxes_ok && tt->tax.text && inv->currency && ewtp_code_currency(inv->currency, &minor)) {
        struct ewtp_dec tol;
        if (tax_range || ewtp_dec_mul(ewtp_dec_from_int((int64_t)categories),
                                      ewtp_dec_minor_unit(minor), &tol) != 0) {
            err_at(c, "tax", "range", "the sum of the line taxes is too large");
        } else if (!ewtp_dec_within(tax, tt->tax.value, tol)) {
            fmt_dec(tax, w);
            char tw[EWTP_DEC_STRMAX];
            fmt_dec(tol, tw);
            err_at(c, "tax", "rule",
                   "tax %s differs from the sum of the line taxes, %s, by more than %s (one "
                   "minor unit of %s for each of %zu tax categories)",
                   tt->tax.text, w, tw, inv->currency, categories);
        }
    }
    pop(c, o0);
}

static void apply_rules(struct ctx *c, const struct ewtp_message *m, const json_t *body)
{
    const struct ewtp_line *const *lines;
    size_t n = ewtp_message_lines(m, &lines);
    if (n)
        rule_lines(c, body, lines, n);
    if (m->order)
        rule_order(c, body, m->order);
    if (m->invoice)
        rule_invoice(c, body, m->invoice);
}

/* ---- before parsing ------------------------------------------------------------------ */

/* NUL bytes, UTF-8 and nesting in one pass, without recursion. Returns false after adding
 * one error. */
static bool prescan(const unsigned char *p, size_t n, unsigned max_depth, struct ewtp_errors *e)
{
    size_t line = 1, col = 1;
    unsigned depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        if (ch == 0) {
            ewtp_errors_add(e, "", "encoding",
                            "NUL byte at line %zu, column %zu (byte %zu): a message is UTF-8 "
                            "text without NUL",
                            line, col, i);
            return false;
        }
        if (ch >= 0x80) {
            size_t k = ewtp_utf8_seq_(p + i, n - i);
            if (!k) {
                ewtp_errors_add(e, "", "encoding",
                                "invalid UTF-8 at line %zu, column %zu (byte %zu)", line, col, i);
                return false;
            }
            i += k;
            col++;
            continue;
        }
        if (in_str) {
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max_depth) {
                ewtp_errors_add(e, "", "depth",
                                "nesting deeper than %u levels at line %zu, column %zu", max_depth,
                                line, col);
                return false;
            }
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
        if (ch == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i++;
    }
    return true;
}

/* ---- the message --------------------------------------------------------------------- */

struct holder {
    struct ewtp_message m;
    struct ewtp_arena *arena;
    json_t *root;
    const struct ewtp_json *jroot; /* root seen through ewtp/json.h, in the arena */
};

static const char *const envelope_members[] = {
    "schema", "id", "kind", "destination", "direction", "created_at", "parties", "ext", NULL,
};

static const json_t *string_member(struct ctx *c, const json_t *root, const char *key,
                                   bool required)
{
    const json_t *v = json_object_get(root, key);
    if (!v) {
        if (required)
            err_at(c, key, "required", "%s is required", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        err_at(c, key, "type", "%s must be a string, not %s", key, json_type_name(v));
        return NULL;
    }
    return v;
}

static void envelope(struct ctx *c, const json_t *root, struct ewtp_message *m)
{
    const json_t *v;
    m->size = sizeof(*m);
    m->kind = EWTP_KIND_NONE;
    const struct ewtp_party **parties = alloc(c, EWTP_ROLE_COUNT * sizeof(*parties));
    if (!parties)
        return;
    m->parties = parties;
    m->n_parties = EWTP_ROLE_COUNT;
    if ((v = string_member(c, root, "schema", true))) {
        const char *s = json_string_value(v);
        if (strcmp(s, EWTP_SCHEMA_ID) == 0)
            m->schema = s;
        else
            err_at(c, "schema", "unsupported",
                   "schema must be \"" EWTP_SCHEMA_ID "\"; \"%s\" is not supported", s);
    }
    if ((v = string_member(c, root, "id", true))) {
        if (is_id(json_string_value(v)))
            m->id = json_string_value(v);
        else
            err_at(c, "id", "format", "id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
    }
    if ((v = string_member(c, root, "kind", true))) {
        m->kind = ewtp_kind_from_name(json_string_value(v));
        if (m->kind == EWTP_KIND_NONE)
            err_at(c, "kind", "format",
                   "kind \"%s\" is not one of: order, payment, waybill, declaration, invoice, "
                   "status, return, manifest, summary",
                   json_string_value(v));
    }
    if ((v = string_member(c, root, "destination", true))) {
        const char *s = json_string_value(v);
        if (ewtp_code_country(s) || is_extra_destination(c, s))
            m->destination = s;
        else
            err_at(c, "destination", "format",
                   "destination \"%s\" is not an ISO 3166-1 alpha-2 country code that a plugin "
                   "serves",
                   s);
    }
    bool need_dir = m->kind == EWTP_KIND_ORDER || m->kind == EWTP_KIND_WAYBILL ||
                    m->kind == EWTP_KIND_DECLARATION;
    if ((v = string_member(c, root, "direction", need_dir))) {
        const char *s = json_string_value(v);
        if (strcmp(s, "import") == 0)
            m->direction = EWTP_DIR_IMPORT;
        else if (strcmp(s, "export") == 0)
            m->direction = EWTP_DIR_EXPORT;
        else
            err_at(c, "direction", "format", "direction \"%s\" is not import or export", s);
    }
    if ((v = string_member(c, root, "created_at", false))) {
        if (ewtp_is_rfc3339(json_string_value(v)))
            m->created_at = json_string_value(v);
        else
            err_at(c, "created_at", "format",
                   "created_at \"%s\" is not an RFC 3339 time with offset", json_string_value(v));
    }

    if ((v = json_object_get(root, "parties"))) {
        size_t o0 = push(c, "parties");
        if (!json_is_object(v)) {
            err(c, "type", "parties must be an object of parties by role, not %s",
                json_type_name(v));
        } else {
            const char *role;
            json_t *pj;
            json_object_foreach((json_t *)v, role, pj)
            {
                int r = 0;
                while (r < EWTP_ROLE_COUNT && strcmp(role, ewtp_role_name((enum ewtp_role)r)))
                    r++;
                size_t o1 = push(c, role);
                if (r == EWTP_ROLE_COUNT) {
                    err(c, "unknown_member",
                        "\"%s\" is not a role: seller, buyer, platform, merchant, logistics, "
                        "payment_provider, declarant, importer, exporter, consignee, carrier",
                        role);
                } else if (!json_is_object(pj)) {
                    err(c, "type", "a party must be an object, not %s", json_type_name(pj));
                } else {
                    struct ewtp_party *p = alloc(c, sizeof *p);
                    if (p) {
                        fill_object(c, pj, &party_s, p, NULL);
                        parties[r] = p;
                    }
                }
                pop(c, o1);
            }
        }
        pop(c, o0);
    }

    const json_t *body = NULL;
    if (m->kind != EWTP_KIND_NONE) {
        const char *name = ewtp_kind_name(m->kind);
        body = json_object_get(root, name);
        if (!body) {
            err_at(c, name, "required", "a message of kind %s needs a body member \"%s\"", name,
                   name);
        } else if (!json_is_object(body)) {
            err_at(c, name, "type", "%s must be an object, not %s", name, json_type_name(body));
            body = NULL;
        } else {
            void *b = alloc(c, bodies[m->kind].shape->size);
            if (b) {
                size_t o0 = push(c, name);
                fill_object(c, body, bodies[m->kind].shape, b, NULL);
                memcpy((char *)m + bodies[m->kind].off, &b, sizeof b);
                if (m->kind == EWTP_KIND_STATUS && m->status->event != EWTP_EVENT_NONE)
                    ((struct ewtp_status *)b)->event_name =
                        json_string_value(json_object_get(body, "event"));
                apply_rules(c, m, body);
                pop(c, o0);
            }
        }
    }

    if ((v = json_object_get(root, "ext"))) {
        size_t o0 = push(c, "ext");
        if (!json_is_object(v)) {
            err(c, "type", "ext must be an object keyed by lower-case country code, not %s",
                json_type_name(v));
        } else {
            const char *cc;
            json_t *x;
            json_object_foreach((json_t *)v, cc, x)
            {
                char up[3] = {0};
                bool ok = strlen(cc) == 2 && is_lower(cc[0]) && is_lower(cc[1]);
                if (ok) {
                    up[0] = (char)(cc[0] - 'a' + 'A');
                    up[1] = (char)(cc[1] - 'a' + 'A');
                    ok = ewtp_code_country(up) || is_extra_destination(c, up);
                }
                size_t o1 = push(c, cc);
                if (!ok)
                    err(c, "format",
                        "ext members are named by lower-case country code (\"cn\"); \"%s\" is "
                        "not one",
                        cc);
                else if (!json_is_object(x))
                    err(c, "type", "ext.%s must be an object, not %s", cc, json_type_name(x));
                pop(c, o1);
            }
        }
        pop(c, o0);
    }

    /* Unknown members; another kind's body is unknown too (the body is named by kind). */
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)root, key, x)
    {
        if (in_list(envelope_members, key))
            continue;
        enum ewtp_kind k = ewtp_kind_from_name(key);
        if (k != EWTP_KIND_NONE) {
            if (k == m->kind)
                continue;
            if (m->kind == EWTP_KIND_NONE)
                continue; /* kind itself is wrong: that error says it all */
            err_at(c, key, "unknown_member",
                   "a message of kind %s has no member \"%s\": the body is named after kind",
                   ewtp_kind_name(m->kind), key);
            continue;
        }
        err_at(c, key, "unknown_member", "a message has no member \"%s\"", key);
    }
}

int ewtp_message_parse(const void *data, size_t len, const struct ewtp_parse_opts *opts,
                       struct ewtp_message **out, struct ewtp_errors *errs)
{
    if (out)
        *out = NULL;
    if (!out || !errs || (!data && len))
        return -EWTP_EINVAL;
    size_t max_bytes = opts && opts->max_bytes ? opts->max_bytes : EWTP_MESSAGE_MAX_DEFAULT;
    unsigned max_depth = opts && opts->max_depth ? opts->max_depth : EWTP_MESSAGE_MAX_DEPTH;
    if (len > max_bytes) {
        ewtp_errors_add(errs, "", "size", "the message is %zu bytes; at most %zu are accepted", len,
                        max_bytes);
        return -EWTP_EFORMAT;
    }
    /* The one-pass reader first (json_fast.c, issue 20). What it takes is UTF-8 without NUL,
     * so of prescan's checks only the depth is left, and prescan runs only to say where a
     * too deep text goes too deep. Whenever the reader gives up, prescan and jansson run as
     * before and say exactly what is wrong (their errors are the 400 answers). */
    unsigned depth = 0;
    json_t *root = ewtp_json_load_fast_(data ? data : "", len, JSON_REJECT_DUPLICATES, &depth);
    if (root && depth > max_depth) {
        json_decref(root);
        root = NULL;
    }
    if (!root && !prescan(data, len, max_depth, errs))
        return -EWTP_EFORMAT;
    json_error_t je;
    if (!root)
        root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        const char *code = "format";
        switch (json_error_code(&je)) {
        case json_error_duplicate_key:
            code = "duplicate";
            break;
        case json_error_null_character:
            ewtp_errors_add(errs, "", "encoding",
                            "a string holds \\u0000 (NUL) at line %d, column %d: strings of a "
                            "message may not contain NUL",
                            je.line, je.column);
            return -EWTP_EFORMAT;
        case json_error_invalid_utf8:
            code = "encoding";
            break;
        case json_error_out_of_memory:
            return -EWTP_ENOMEM;
        default:
            break;
        }
        ewtp_errors_add(errs, "", code, "not valid JSON: %s at line %d, column %d", je.text,
                        je.line, je.column);
        return -EWTP_EFORMAT;
    }
    if (!json_is_object(root)) {
        ewtp_errors_add(errs, "", "type", "a message must be a JSON object, not %s",
                        json_type_name(root));
        json_decref(root);
        return -EWTP_EFORMAT;
    }

    struct ewtp_arena *a = ewtp_arena_new();
    struct holder *h = a ? ewtp_arena_alloc(a, sizeof *h) : NULL;
    if (!h) {
        ewtp_arena_free(a);
        json_decref(root);
        return -EWTP_ENOMEM;
    }
    h->arena = a;
    h->root = root;
    h->m.priv_ = h;
    /* The caller's options, by the smaller of the two sizes (ewtp/abi.h). */
    struct ewtp_parse_opts o = EWTP_PARSE_OPTS_INIT();
    if (opts)
        ewtp_sized_copy(&o, sizeof o, opts);
    struct ctx c = {.a = a, .errs = errs, .opts = &o};
    c.ptr[0] = '\0';
    envelope(&c, root, &h->m);
    h->jroot = ewtp_json_from_jansson_(a, root);
    if (c.oom || ewtp_errors_oom(errs) || !h->jroot) {
        ewtp_message_free(&h->m);
        return -EWTP_ENOMEM;
    }
    *out = &h->m;
    return 0;
}

void ewtp_message_free(struct ewtp_message *m)
{
    if (!m)
        return;
    struct holder *h = (struct holder *)m->priv_;
    json_decref(h->root);
    ewtp_arena_free(h->arena);
}

const struct ewtp_json *ewtp_message_json(const struct ewtp_message *m)
{
    if (!m)
        return NULL;
    return ((const struct holder *)m->priv_)->jroot;
}

const struct ewtp_json *ewtp_message_ext(const struct ewtp_message *m, const char *cc)
{
    if (!m || !cc)
        return NULL;
    const struct ewtp_json *x =
        ewtp_json_get(ewtp_json_get(((const struct holder *)m->priv_)->jroot, "ext"), cc);
    return ewtp_json_type(x) == EWTP_JSON_OBJECT ? x : NULL;
}

char *ewtp_message_canonical(const struct ewtp_message *m)
{
    if (!m)
        return NULL;
    /* json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT), written in one pass (json_fast.c). */
    return ewtp_json_dump_canonical_(((const struct holder *)m->priv_)->root, NULL);
}

const struct ewtp_party *ewtp_message_party(const struct ewtp_message *m, enum ewtp_role role)
{
    if (!m || !m->parties || (int)role < 0 || (size_t)role >= m->n_parties)
        return NULL;
    return m->parties[role];
}

size_t ewtp_message_lines(const struct ewtp_message *m, const struct ewtp_line *const **lines)
{
    const struct ewtp_line *const *l = NULL;
    size_t n = 0;
    if (m) {
        if (m->order) {
            l = m->order->lines;
            n = m->order->n_lines;
        } else if (m->declaration) {
            l = m->declaration->lines;
            n = m->declaration->n_lines;
        } else if (m->invoice) {
            l = m->invoice->lines;
            n = m->invoice->n_lines;
        } else if (m->return_) {
            l = m->return_->lines;
            n = m->return_->n_lines;
        } else if (m->summary) {
            l = m->summary->lines;
            n = m->summary->n_lines;
        }
    }
    if (lines)
        *lines = n ? l : NULL;
    return n;
}

const char *ewtp_message_body_pointer(const struct ewtp_message *m)
{
    static const char *const ptrs[EWTP_KIND_COUNT] = {
        "/order",  "/payment", "/waybill",  "/declaration", "/invoice",
        "/status", "/return",  "/manifest", "/summary",
    };
    if (!m || (int)m->kind < 0 || (int)m->kind >= EWTP_KIND_COUNT)
        return NULL;
    return ptrs[m->kind];
}

const char *ewtp_party_id(const struct ewtp_party *p, const char *scheme)
{
    if (!p || !scheme)
        return NULL;
    for (size_t i = 0; i < p->n_ids; i++)
        if (p->ids[i]->scheme && p->ids[i]->value && strcmp(p->ids[i]->scheme, scheme) == 0)
            return p->ids[i]->value;
    return NULL;
}
